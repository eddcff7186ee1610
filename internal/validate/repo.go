package validate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Flux API groups and kinds the walker understands.
const (
	kustomizeGroup = "kustomize.toolkit.fluxcd.io"
	sourceGroup    = "source.toolkit.fluxcd.io"
	helmGroup      = "helm.toolkit.fluxcd.io"

	// defaultFluxNamespace is assumed for the entry path's objects when no Kustomization in
	// the repo syncs the entry path (bootstrap puts the root Kustomization there).
	defaultFluxNamespace = "flux-system"
)

// wellKnownNamespaces exist in every cluster (flux-system once Flux is installed).
var wellKnownNamespaces = map[string]bool{
	"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true, defaultFluxNamespace: true,
}

// Options says what to validate.
type Options struct {
	// Root is the stack repo checked out in a directory (only read, never written).
	Root string
	// Entry is the path of the root Flux Kustomization, e.g. "clusters/dev".
	Entry string
	// Schemas holds the CRDs the cluster has before the repo is applied (e.g. the Flux CRDs).
	// CRDs the repo ships itself are added on top for the paths that apply after them. May
	// be nil.
	Schemas *Schemas
}

// node is one reconciler path: the entry, or a Flux Kustomization from the repo.
type node struct {
	id     string // namespace/name of the Kustomization, "" for an entry nobody syncs
	ks     *unstructured.Unstructured
	ksItem *item // where the Kustomization object itself was found
	path   string
	parent *node
	deps   []string
	items  []*item
	failed bool
}

func (n *node) name() string {
	if n.id != "" {
		return n.id
	}
	return "(entry " + n.path + ")"
}

// namespace is the namespace objects of this path without one end up in.
func (n *node) namespace() string {
	if n.ks != nil && n.ks.GetNamespace() != "" {
		return n.ks.GetNamespace()
	}
	return defaultFluxNamespace
}

// item is one built object.
type item struct {
	obj  *unstructured.Unstructured
	file string // repo-relative file from the origin annotation, "" when unknown
	node *node
}

func (it *item) path() string {
	if it.file != "" {
		return it.file
	}
	return it.node.path
}

// walker holds the state of one Repo run.
type walker struct {
	ctx     context.Context
	opts    Options
	tmp     string
	src     string
	entry   string
	schemas *Schemas

	index    map[objKey][]*item // every built object, by group, kind, effective namespace, name
	byID     map[string]*node   // built Kustomizations by namespace/name
	nodes    []*node            // in build order
	order    []*node            // in apply order (see applyOrder)
	ks       map[string]*item   // Flux Kustomizations by namespace/name
	findings []Finding
	// selfURL is spec.url of the GitRepository that syncs the entry path, when one does;
	// GitRepositories with another URL are other repositories and are not built.
	selfURL string
}

func (w *walker) add(f Finding) { w.findings = append(w.findings, f) }

func (w *walker) errorf(it *item, fieldPath, format string, args ...any) {
	w.add(Finding{Severity: SeverityError, Path: it.path(), Object: objectID(it.obj), Field: fieldPath, Message: fmt.Sprintf(format, args...)})
}

func (w *walker) warnf(it *item, fieldPath, format string, args ...any) {
	w.add(Finding{Severity: SeverityWarning, Path: it.path(), Object: objectID(it.obj), Field: fieldPath, Message: fmt.Sprintf(format, args...)})
}

// Repo builds every reconciler path of the stack repo at opts.Root the way Flux would (the
// entry path, then every Kustomization found in a build whose source is this repo, as
// kustomize-controller builds it) and checks every object against its schema plus the rules
// a Flux user wants checked before pushing. Problems are Findings; the error is for failures
// to read the repo or use the temp dir.
func Repo(ctx context.Context, opts Options) (Report, error) {
	if opts.Root == "" {
		return Report{}, errors.New("validate: Options.Root is empty")
	}
	entry, err := cleanRel(opts.Entry)
	if err != nil {
		return Report{}, err
	}
	tmp, err := os.MkdirTemp("", "obol-validate-")
	if err != nil {
		return Report{}, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	w := &walker{ctx: ctx, opts: opts, tmp: tmp, entry: entry, ks: map[string]*item{}, index: map[objKey][]*item{}, byID: map[string]*node{}}
	if err := w.materialise(nil); err != nil {
		return Report{}, err
	}
	if err := w.walk(); err != nil {
		return Report{}, err
	}
	w.order = w.applyOrder()
	w.schemas = opts.Schemas.clone()
	w.addRepoCRDs()
	w.checkObjects()
	w.checkDuplicates()
	w.checkFlux()
	sortFindings(w.findings)
	return Report{Findings: w.findings, Built: w.built()}, nil
}

func (w *walker) materialise(ignore *string) error {
	if w.src != "" {
		if err := os.RemoveAll(w.src); err != nil {
			return err
		}
	}
	w.src = filepath.Join(w.tmp, fmt.Sprintf("src%d", len(w.nodes)))
	return materialise(w.opts.Root, w.src, ignore)
}

// walk builds the entry, then every Kustomization whose source is this repo.
func (w *walker) walk() error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	root := &node{path: w.entry}
	w.build(root)

	// The Kustomization that syncs the entry (flux-system from bootstrap) is the entry's own
	// identity: it is not built a second time, and its source is this repo.
	if self, src := w.selfSync(root); self != nil {
		root.id, root.ks, root.ksItem = nsName(self.obj, root.namespace()), self.obj, self
		root.deps = dependsOnOf(self)
		w.selfURL, _, _ = unstructured.NestedString(src.Object, "spec", "url")
		ignore, hasIgnore, _ := unstructured.NestedString(src.Object, "spec", "ignore")
		if hasIgnore || shapesBuild(self.obj) {
			// Rebuild with what the cluster really uses: the artifact filtered by
			// spec.ignore, the build shaped by the Kustomization.
			if hasIgnore {
				if err := w.materialise(&ignore); err != nil {
					return err
				}
			}
			root.items, root.failed = nil, false
			w.findings = nil
			w.build(root)
			if again, _ := w.selfSync(root); again != nil && nsName(again.obj, root.namespace()) == root.id {
				root.ksItem = again
			}
		}
	}
	w.nodes = []*node{root}
	w.register(root)

	// Then every Kustomization found, as soon as its source is known; among those, one
	// whose dependencies are built goes first, so postBuild.substituteFrom sees what the
	// cluster would already have.
	var pending []*item
	queue := []*node{root}
	for {
		for _, n := range queue {
			for _, it := range n.items {
				if isKind(it.obj, kustomizeGroup, "Kustomization") && w.ks[nsName(it.obj, n.namespace())] == it && it != root.ksItem {
					pending = append(pending, it)
				}
			}
		}
		queue = nil
		if len(pending) == 0 {
			return nil
		}
		if err := w.ctx.Err(); err != nil {
			return err
		}
		pick := -1
		for i, it := range pending {
			if w.sourceKnown(it) && w.depsBuilt(it) {
				pick = i
				break
			}
		}
		if pick < 0 {
			for i, it := range pending {
				if w.sourceKnown(it) {
					pick = i
					break
				}
			}
		}
		if pick < 0 {
			// Nothing left to build could define the missing sources.
			for _, it := range pending {
				kind, name, ns := sourceRef(it, "spec", "sourceRef")
				w.errorf(it, "spec.sourceRef", "%s %s/%s is not defined in the repo; this Kustomization would never be built", kind, ns, name)
			}
			return nil
		}
		it := pending[pick]
		pending = append(pending[:pick], pending[pick+1:]...)
		if child := w.follow(it); child != nil {
			queue = append(queue, child)
		}
	}
}

// sourceKnown says whether the walk can decide about a Kustomization now: its source is a
// GitRepository built already, or not a GitRepository at all.
func (w *walker) sourceKnown(it *item) bool {
	kind, name, ns := sourceRef(it, "spec", "sourceRef")
	return kind != "GitRepository" || w.find(sourceGroup, kind, ns, name) != nil
}

// depsBuilt says whether every dependency of a Kustomization that the repo defines is built.
func (w *walker) depsBuilt(it *item) bool {
	for _, d := range dependsOnOf(it) {
		if _, defined := w.ks[d]; !defined {
			continue
		}
		if _, built := w.byID[d]; !built {
			return false
		}
	}
	return true
}

// objKey identifies an object the way find looks it up.
type objKey struct{ group, kind, ns, name string }

// register indexes the objects of a build. For Kustomizations the first definition of a name
// wins (duplicates are reported by checkDuplicates).
func (w *walker) register(n *node) {
	if n.id != "" {
		if _, ok := w.byID[n.id]; !ok {
			w.byID[n.id] = n
		}
	}
	for _, it := range n.items {
		gvk := it.obj.GroupVersionKind()
		k := objKey{gvk.Group, gvk.Kind, effectiveNS(it), it.obj.GetName()}
		w.index[k] = append(w.index[k], it)
	}
	for _, it := range n.items {
		if isKind(it.obj, kustomizeGroup, "Kustomization") {
			id := nsName(it.obj, n.namespace())
			if _, ok := w.ks[id]; !ok {
				w.ks[id] = it
			}
		}
	}
}

// follow builds the path of a Kustomization whose source is known (sourceKnown), or says
// in a finding why it does not.
func (w *walker) follow(it *item) *node {
	kind, name, ns := sourceRef(it, "spec", "sourceRef")
	if kind != "GitRepository" {
		if kind != "" {
			w.warnf(it, "spec.sourceRef", "not built: its source is a %s; only GitRepository sources of this repo are built", kind)
		}
		return nil
	}
	src := w.find(sourceGroup, "GitRepository", ns, name)
	if url, _, _ := unstructured.NestedString(src.obj.Object, "spec", "url"); w.selfURL != "" && url != w.selfURL {
		w.warnf(it, "spec.sourceRef", "not built: GitRepository %s/%s is another repository (%s)", ns, name, url)
		return nil
	}
	rawPath, _, _ := unstructured.NestedString(it.obj.Object, "spec", "path")
	p, err := cleanRel(rawPath)
	if err != nil {
		w.errorf(it, "spec.path", "%v", err)
		return nil
	}
	if fi, err := os.Stat(filepath.Join(w.src, filepath.FromSlash(p))); err != nil || !fi.IsDir() {
		w.errorf(it, "spec.path", "path %q does not exist in the repo (after .sourceignore rules)", rawPath)
		return nil
	}
	n := &node{id: nsName(it.obj, it.node.namespace()), ks: it.obj, ksItem: it, path: p, parent: it.node, deps: dependsOnOf(it)}
	w.nodes = append(w.nodes, n)
	w.build(n)
	w.register(n)
	return n
}

// build runs the kustomize build of n and records its objects, or a finding when it fails.
func (w *walker) build(n *node) {
	ks := unstructured.Unstructured{Object: map[string]any{}}
	if n.ks != nil {
		ks = *n.ks.DeepCopy()
		if ks.GetNamespace() == "" {
			ks.SetNamespace(n.namespace())
		}
	}
	res, err := buildPath(w.ctx, w.src, n.path, ks, true, w.lookupFor(n))
	if err != nil {
		n.failed = true
		f := Finding{Severity: SeverityError, Path: n.path, Message: err.Error()}
		if n.ksItem != nil {
			f.Object = objectID(n.ksItem.obj)
		}
		if file := w.brokenYAML(n.path); file != "" {
			f.Path = file
		} else if dup := w.kustomizeDuplicate(n.path, err); dup != nil {
			dup.Message += "; " + f.Message
			f = *dup
		}
		w.add(f)
		return
	}
	for i, obj := range res.objects {
		n.items = append(n.items, &item{obj: obj, file: res.origins[i], node: n})
	}
	for _, f := range res.notes {
		f.Path = n.path
		if n.ksItem != nil {
			f.Path, f.Object = n.ksItem.path(), objectID(n.ksItem.obj)
		}
		w.add(f)
	}
}

// lookupFor serves postBuild.substituteFrom from the objects built so far, in the namespace
// of n's Kustomization.
func (w *walker) lookupFor(n *node) substituteLookup {
	return func(kind, ns, name string) *unstructured.Unstructured {
		if it := w.find("", kind, ns, name); it != nil {
			return it.obj
		}
		return nil
	}
}

// find looks an object up in everything built so far, by its effective namespace.
func (w *walker) find(group, kind, ns, name string) *item {
	if its := w.index[objKey{group, kind, ns, name}]; len(its) > 0 {
		return its[0]
	}
	return nil
}

// selfSync finds, in the entry build, the Kustomization whose path is the entry and whose
// source is a GitRepository of the same build.
func (w *walker) selfSync(root *node) (*item, *unstructured.Unstructured) {
	for _, it := range root.items {
		if !isKind(it.obj, kustomizeGroup, "Kustomization") {
			continue
		}
		rawPath, _, _ := unstructured.NestedString(it.obj.Object, "spec", "path")
		if p, err := cleanRel(rawPath); err != nil || p != root.path {
			continue
		}
		kind, name, ns := sourceRef(it, "spec", "sourceRef")
		if ns == "" {
			ns = effectiveNS(it)
		}
		if kind != "GitRepository" {
			continue
		}
		for _, s := range root.items {
			if isKind(s.obj, sourceGroup, "GitRepository") && s.obj.GetName() == name && effectiveNS(s) == ns {
				return it, s.obj
			}
		}
	}
	return nil, nil
}

// brokenYAML returns the first YAML file under dir that does not parse, if any: the likely
// cause of a failed build.
func (w *walker) brokenYAML(dir string) string {
	base := filepath.Join(w.src, filepath.FromSlash(dir))
	found := ""
	_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		if yamlBroken(p) {
			rel, _ := filepath.Rel(w.src, p)
			found = filepath.ToSlash(rel)
		}
		return nil
	})
	return found
}

// addRepoCRDs adds the CRDs the repo ships to the schema set (replacing a caller-given
// CRD of the same name: the repo's is what the cluster will serve), remembering which path
// applies them.
func (w *walker) addRepoCRDs() {
	added := map[string]bool{}
	for _, n := range w.order {
		for _, it := range n.items {
			if !isKind(it.obj, "apiextensions.k8s.io", "CustomResourceDefinition") || it.obj.GroupVersionKind().Version != "v1" {
				continue
			}
			if added[it.obj.GetName()] {
				continue // the first path to apply it owns it; checkDuplicates reports the rest
			}
			added[it.obj.GetName()] = true
			crd := &apiextv1.CustomResourceDefinition{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(it.obj.Object, crd); err != nil {
				continue // checkObjects reports why it does not decode
			}
			for _, e := range w.schemas.add(crd, n.name()) {
				w.add(Finding{Severity: SeverityError, Path: it.path(), Object: objectID(it.obj), Field: e.Field, Message: "CRD rejected: " + e.ErrorBody()})
			}
		}
	}
}

// checkObjects runs the per-object checks.
func (w *walker) checkObjects() {
	namespaces := map[string]bool{}
	for _, n := range w.nodes {
		for _, it := range n.items {
			if isKind(it.obj, "", "Namespace") {
				namespaces[it.obj.GetName()] = true
			}
		}
	}
	for _, n := range w.nodes {
		for _, it := range n.items {
			w.checkObject(it, namespaces)
		}
	}
}

func (w *walker) checkObject(it *item, namespaces map[string]bool) {
	obj := it.obj
	gvk := obj.GroupVersionKind()

	namespaced, known := w.schemas.scope(gvk)

	// What kustomize-controller itself refuses before applying, then the API server's
	// metadata rules (name format, namespace, labels, annotations, finalizers).
	if obj.GetAPIVersion() == "" || obj.GetKind() == "" || obj.GetName() == "" {
		w.errorf(it, "metadata.name", "object has no apiVersion, kind or metadata.name; kustomize-controller refuses the whole build")
	} else {
		meta := obj.DeepCopy()
		switch {
		case known && !namespaced:
			meta.SetNamespace("") // the API server ignores it
		case meta.GetNamespace() == "":
			meta.SetNamespace(effectiveNS(it)) // reported below
		}
		for _, e := range apivalidation.ValidateObjectMetaAccessor(meta, !known || namespaced, nameRule(gvk.GroupKind()), field.NewPath("metadata")) {
			w.errorf(it, e.Field, "%s", e.ErrorBody())
		}
	}

	// A SOPS-encrypted Secret is applied decrypted: its encrypted form is no Secret.
	if _, sops := obj.Object["sops"]; !(sops && isKind(obj, "", "Secret")) {
		for _, f := range w.schemas.Check(obj) {
			f.Path = it.path()
			w.add(f)
		}
	}

	if known && namespaced {
		if obj.GetNamespace() == "" {
			w.warnf(it, "metadata.namespace", "namespaced %s has no namespace after the build (the Kustomization applying it is in %s); set namespace: in its kustomization.yaml or the Kustomization's spec.targetNamespace", gvk.Kind, it.node.namespace())
		} else if ns := obj.GetNamespace(); !namespaces[ns] && !wellKnownNamespaces[ns] {
			w.warnf(it, "metadata.namespace", "namespace %q is not created by any path of the repo; it must already exist in the cluster", ns)
		}
	}
	// A CRD shipped by the repo must be applied before the objects using it.
	if cv, kind := w.schemas.lookup(gvk); cv != nil && kind.origin != "" && !w.appliedBefore(kind.origin, it.node) {
		w.warnf(it, "", "its CRD is applied by %s, which %s neither depends on nor is created by; the first reconcile may fail", kind.origin, it.node.name())
	}

	if isKind(obj, "", "Secret") {
		w.checkSecret(it)
	}
}

// nameRule is the API server's rule for the names of a kind: DNS-1123 subdomains, except
// Namespaces (DNS-1123 labels), Services (DNS-1035 labels) and RBAC objects (path segments,
// e.g. "system:viewer").
func nameRule(gk schema.GroupKind) apivalidation.ValidateNameFunc {
	switch {
	case gk.Group == "" && gk.Kind == "Namespace":
		return apivalidation.ValidateNamespaceName
	case gk.Group == "" && gk.Kind == "Service":
		return apivalidation.NameIsDNS1035Label
	case gk.Group == "rbac.authorization.k8s.io":
		return pathSegmentName
	}
	return apivalidation.NameIsDNSSubdomain
}

// pathSegmentName is the API server's rule for RBAC names: anything that is a safe URL path
// segment (apimachinery deprecated its copy and asks callers to keep their own).
func pathSegmentName(name string, prefix bool) []string {
	if name == "." || name == ".." {
		return []string{fmt.Sprintf("may not be '%s'", name)}
	}
	var errs []string
	for _, bad := range []string{"/", "%"} {
		if strings.Contains(name, bad) {
			errs = append(errs, fmt.Sprintf("may not contain '%s'", bad))
		}
	}
	return errs
}

// appliedBefore says whether the path named origin is n itself, created n (an ancestor), or
// is among the Kustomizations n depends on, directly or not.
func (w *walker) appliedBefore(origin string, n *node) bool {
	for p := n; p != nil; p = p.parent {
		if p.name() == origin {
			return true
		}
	}
	byID := w.byID
	seen := map[string]bool{}
	var visit func(m *node) bool
	visit = func(m *node) bool {
		for _, d := range m.deps {
			if seen[d] {
				continue
			}
			seen[d] = true
			dn := byID[d]
			if dn == nil {
				continue
			}
			for p := dn; p != nil; p = p.parent {
				if p.name() == origin {
					return true
				}
			}
			if visit(dn) {
				return true
			}
		}
		return false
	}
	for p := n; p != nil; p = p.parent {
		if visit(p) {
			return true
		}
	}
	return false
}

// checkSecret enforces "secrets never go into git in plain text": a Secret may carry data
// only when it is SOPS-encrypted and the Kustomization applying it decrypts.
func (w *walker) checkSecret(it *item) {
	data, _, _ := unstructured.NestedMap(it.obj.Object, "data")
	stringData, _, _ := unstructured.NestedMap(it.obj.Object, "stringData")
	if len(data) == 0 && len(stringData) == 0 {
		return
	}
	if _, sops := it.obj.Object["sops"]; sops {
		if it.node.ks == nil {
			return
		}
		if _, ok, _ := unstructured.NestedMap(it.node.ks.Object, "spec", "decryption"); !ok {
			w.errorf(it, "sops", "SOPS-encrypted Secret, but Kustomization %s has no spec.decryption: it would be applied encrypted", it.node.name())
		}
		return
	}
	fieldName := "data"
	if len(data) == 0 {
		fieldName = "stringData"
	}
	w.errorf(it, fieldName, "Secret with %s committed in plain text: secrets never go into git in plain text (reference a Secret created at bootstrap, or encrypt it with SOPS)", fieldName)
}

// checkDuplicates reports objects that more than one place applies: the API server has one
// object per group, kind, namespace and name, whatever the version.
func (w *walker) checkDuplicates() {
	type key struct{ group, kind, ns, name string }
	first := map[key]*item{}
	for _, n := range w.order {
		for _, it := range n.items {
			gvk := it.obj.GroupVersionKind()
			ns := ""
			if namespaced, known := w.schemas.scope(gvk); !known || namespaced {
				ns = effectiveNS(it)
			}
			k := key{gvk.Group, gvk.Kind, ns, it.obj.GetName()}
			if prev, ok := first[k]; ok {
				where := prev.path()
				if prev.node != it.node {
					where = fmt.Sprintf("%s (built by %s)", prev.path(), prev.node.name())
				}
				w.errorf(it, "", "duplicate object: also defined in %s; two Kustomizations would fight over it", where)
				continue
			}
			first[k] = it
		}
	}
}

// applyOrder sorts the paths in the order Flux applies them: parents before the
// Kustomizations they create, dependencies before dependents, otherwise in build order.
func (w *walker) applyOrder() []*node {
	byID := map[string]*node{}
	for _, n := range w.nodes {
		if n.id != "" {
			byID[n.id] = n
		}
	}
	indeg := map[*node]int{}
	next := map[*node][]*node{}
	edge := func(from, to *node) {
		next[from] = append(next[from], to)
		indeg[to]++
	}
	for _, n := range w.nodes {
		if n.parent != nil {
			edge(n.parent, n)
		}
		for _, d := range n.deps {
			if dn := byID[d]; dn != nil && dn != n {
				edge(dn, n)
			}
		}
	}
	var order []*node
	done := map[*node]bool{}
	for len(order) < len(w.nodes) {
		var pick *node
		for _, n := range w.nodes {
			if !done[n] && indeg[n] == 0 {
				pick = n
				break
			}
		}
		if pick == nil { // a dependsOn cycle (reported by checkFlux): finish in build order
			for _, n := range w.nodes {
				if !done[n] {
					pick = n
					break
				}
			}
		}
		done[pick] = true
		order = append(order, pick)
		for _, m := range next[pick] {
			indeg[m]--
		}
	}
	return order
}

// built summarises the paths in apply order.
func (w *walker) built() []BuiltPath {
	out := make([]BuiltPath, 0, len(w.order))
	for _, n := range w.order {
		b := BuiltPath{Kustomization: n.id, Path: n.path, DependsOn: n.deps, Objects: len(n.items), Failed: n.failed, Kinds: map[string]int{}}
		if n.parent != nil {
			b.Parent = n.parent.name()
		}
		for _, it := range n.items {
			b.Kinds[it.obj.GetKind()]++
		}
		out = append(out, b)
	}
	return out
}

// --- helpers over unstructured Flux objects ---

func isKind(obj *unstructured.Unstructured, group, kind string) bool {
	gvk := obj.GroupVersionKind()
	return gvk.Kind == kind && (group == "" && gvk.Group == "" || gvk.Group == group)
}

// effectiveNS is the namespace an object is applied in: its own, else the namespace of the
// Kustomization applying it.
func effectiveNS(it *item) string {
	if ns := it.obj.GetNamespace(); ns != "" {
		return ns
	}
	return it.node.namespace()
}

func nsName(obj *unstructured.Unstructured, defaultNS string) string {
	ns := obj.GetNamespace()
	if ns == "" {
		ns = defaultNS
	}
	return ns + "/" + obj.GetName()
}

// sourceRef reads a {kind, name, namespace} reference at fields of it's object; namespace
// defaults to the object's effective namespace.
func sourceRef(it *item, fields ...string) (kind, name, ns string) {
	obj := it.obj.Object
	kind, _, _ = unstructured.NestedString(obj, append(fields, "kind")...)
	name, _, _ = unstructured.NestedString(obj, append(fields, "name")...)
	ns, _, _ = unstructured.NestedString(obj, append(fields, "namespace")...)
	if ns == "" {
		ns = effectiveNS(it)
	}
	return kind, name, ns
}

// dependsOn lists a Kustomization's dependencies as namespace/name.
func dependsOn(obj *unstructured.Unstructured) []string {
	deps, _, _ := unstructured.NestedSlice(obj.Object, "spec", "dependsOn")
	var out []string
	for _, d := range deps {
		m, ok := d.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		ns, _ := m["namespace"].(string)
		if ns == "" {
			ns = obj.GetNamespace()
			if ns == "" {
				ns = defaultFluxNamespace
			}
		}
		out = append(out, ns+"/"+name)
	}
	return out
}

// shapesBuild reports whether a Kustomization sets fields that change its build: the ones
// the Generator reads, and postBuild.
func shapesBuild(obj *unstructured.Unstructured) bool {
	spec, _ := obj.Object["spec"].(map[string]any)
	for _, f := range []string{"targetNamespace", "namePrefix", "nameSuffix", "patches", "components", "patchesStrategicMerge", "patchesJson6902", "images", "buildMetadata", "postBuild"} {
		if _, ok := spec[f]; ok {
			return true
		}
	}
	return false
}

// reAlreadyRegistered matches kustomize's error for two resources with the same id, e.g.
// "may not add resource with an already registered id: ServiceOffer.v1alpha1.obol.org/a.obol".
var reAlreadyRegistered = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`already registered id: ([^.\s]+)\.([^./\s]+)\.([^/\s]*)/([^\s']+)`)
})

// kustomizeDuplicate turns kustomize's "already registered id" build error into a duplicate
// object finding naming the files that define the object.
func (w *walker) kustomizeDuplicate(dir string, err error) *Finding {
	m := reAlreadyRegistered().FindStringSubmatch(err.Error())
	if m == nil {
		return nil
	}
	kind, rest := m[1], m[4]
	name, ns := rest, ""
	if j := strings.LastIndex(rest, "."); j >= 0 {
		// ResId prints name.namespace; a name may itself contain dots, a namespace not.
		name, ns = rest[:j], rest[j+1:]
		if ns == "[noNs]" || ns == "~X" {
			ns = ""
		}
	}
	var files []string
	base := filepath.Join(w.src, filepath.FromSlash(dir))
	_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, doc := range splitYAML(b) {
			var meta struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if yaml.Unmarshal(doc, &meta) == nil && meta.Kind == kind && meta.Metadata.Name == name {
				rel, _ := filepath.Rel(w.src, p)
				files = append(files, filepath.ToSlash(rel))
				break
			}
		}
		return nil
	})
	f := &Finding{Severity: SeverityError, Path: dir, Object: idOf(kind, ns, name), Message: "duplicate object: kustomize refuses to build " + dir}
	if len(files) > 0 {
		f.Path = files[len(files)-1]
	}
	if len(files) > 1 {
		f.Message = fmt.Sprintf("duplicate object: also defined in %s; kustomize refuses to build %s", strings.Join(files[:len(files)-1], ", "), dir)
	}
	return f
}
