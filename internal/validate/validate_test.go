package validate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/kustomize"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// The committed Flux CRDs are exactly what scripts/gen-flux-crds.sh generates from the API
// modules in go.mod.
func TestFluxCRDsUpToDate(t *testing.T) {
	checkGenerated(t, "gen-flux-crds.sh", filepath.Join("clusters", "flux-system", "crds"))
}

// The vendored Gateway API CRDs are exactly what scripts/gen-gateway-api-crds.sh takes from the
// pinned sigs.k8s.io/gateway-api module.
func TestGatewayAPICRDsUpToDate(t *testing.T) {
	checkGenerated(t, "gen-gateway-api-crds.sh", filepath.Join("templates", "infrastructure", "gateway-api"))
}

// Argo CD's CRDs are exactly what scripts/gen-argocd-crds.sh takes from the pinned module.
func TestArgoCDCRDsUpToDate(t *testing.T) {
	checkGenerated(t, "gen-argocd-crds.sh", filepath.Join("internal", "argocd", "crds"))
}

// checkGenerated runs scripts/<script> into a temp dir and compares its YAML files with the
// committed dir (relative to the module root).
func checkGenerated(t *testing.T, script, dir string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
	root := moduleRoot(t)
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", script), out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, b)
	}
	want := yamlFiles(t, out)
	got := yamlFiles(t, filepath.Join(root, dir))
	if len(want) == 0 {
		t.Fatalf("%s wrote nothing", script)
	}
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s is generated but not committed", name)
		case !bytes.Equal(g, w):
			t.Errorf("%s differs from the generator's output", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is committed but no longer generated", name)
		}
	}
	if t.Failed() {
		t.Logf("run scripts/%s (or make generate) and commit %s", script, dir)
	}
}

func yamlFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// The committed CRDs cover the kinds a stack uses and load as schemas.
func TestFluxCRDsLoad(t *testing.T) {
	s := fluxSchemas(t)
	kinds := map[string]bool{}
	for _, gvk := range s.Kinds() {
		kinds[gvk.String()] = true
	}
	for _, k := range []string{
		"source.toolkit.fluxcd.io/v1, Kind=GitRepository",
		"source.toolkit.fluxcd.io/v1, Kind=HelmRepository",
		"source.toolkit.fluxcd.io/v1, Kind=OCIRepository",
		"kustomize.toolkit.fluxcd.io/v1, Kind=Kustomization",
		"helm.toolkit.fluxcd.io/v2, Kind=HelmRelease",
	} {
		if !kinds[k] {
			t.Errorf("no schema for %s (have %v)", k, s.Kinds())
		}
	}
}

// fluxcd/pkg/kustomize's generator, on a directory without kustomization.yaml, lists every
// YAML manifest below it, descending into directories without a kustomization file and
// listing directories that have one as a whole (without descending). Only the top directory
// gets a generated file; no kustomization.yaml is generated in subdirectories.
func TestGeneratorNestedLayout(t *testing.T) {
	dir := t.TempDir()
	tree{
		"applications/sell-http/a/kustomization.yaml":       "resources:\n- cm.yaml\n",
		"applications/sell-http/a/cm.yaml":                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
		"applications/sell-http/a/nested/x.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
		"applications/sell-http/extra/cm.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
		"applications/sell-inference/b/kustomization.yaml":  "resources:\n- cm.yaml\n",
		"applications/sell-inference/b/cm.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
		"applications/notes.yml":                            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n",
		"applications/README.md":                            "not yaml\n",
		"applications/sell-inference/deep/er/z/zz.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: zz\n",
		"applications/sell-inference/deep/er/z/ignored.txt": "x\n",
	}.write(t, dir)

	g := kustomize.NewGenerator(dir, unstructured.Unstructured{Object: map[string]any{}})
	manifest, kfile, action, err := g.GenerateManifest(filepath.Join(dir, "applications"))
	if err != nil {
		t.Fatal(err)
	}
	if action != kustomize.CreatedAction || kfile != filepath.Join(dir, "applications", "kustomization.yaml") {
		t.Fatalf("action %s, file %s", action, kfile)
	}
	var k kustypes.Kustomization
	if err := yaml.Unmarshal(manifest, &k); err != nil {
		t.Fatal(err)
	}
	want := []string{"./notes.yml", "./sell-http/a", "./sell-http/extra/cm.yaml", "./sell-inference/b", "./sell-inference/deep/er/z/zz.yaml"}
	if !reflect.DeepEqual(k.Resources, want) {
		t.Errorf("resources = %q, want %q", k.Resources, want)
	}

	// The same build through Objects: x.yaml under a/ is not part of it.
	objs, err := Objects(dir, "applications")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"a", "b", "extra", "notes", "zz"}) {
		t.Errorf("objects %v", names)
	}
	// Objects works on a copy: nothing was generated in the input.
	if _, err := os.Stat(filepath.Join(dir, "applications", "kustomization.yaml")); !os.IsNotExist(err) {
		t.Errorf("kustomization.yaml written into the input: %v", err)
	}

	// A YAML file the generator lists must be a Kubernetes object: a values file outside a
	// kustomization directory breaks the whole build.
	tree{"applications/sell-http/values.yaml": "replicas: 2\n"}.write(t, dir)
	if _, err := Objects(dir, "applications"); err == nil || !strings.Contains(err.Error(), "sell-http/values.yaml") {
		t.Errorf("stray values.yaml: err = %v", err)
	}
}

// The origin annotations Repo asks kustomize for change nothing but the annotation.
func TestOriginAnnotationsChangeNothingElse(t *testing.T) {
	dir := t.TempDir()
	miniStack(t).write(t, dir)
	for _, p := range []string{"clusters/dev", "infrastructure", "applications"} {
		plain, err := Objects(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(t.TempDir(), "src")
		if err := materialise(dir, src, nil); err != nil {
			t.Fatal(err)
		}
		res, err := buildPath(context.Background(), src, p, unstructured.Unstructured{Object: map[string]any{}}, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.objects) != len(plain) {
			t.Fatalf("%s: %d objects with origins, %d without", p, len(res.objects), len(plain))
		}
		for i := range plain {
			if !reflect.DeepEqual(plain[i].Object, res.objects[i].Object) {
				t.Errorf("%s: object %d differs:\n%v\n%v", p, i, plain[i].Object, res.objects[i].Object)
			}
			if res.origins[i] == "" {
				t.Errorf("%s: no origin for %s", p, objectID(res.objects[i]))
			}
		}
		// The generated/rewritten kustomization files were put back.
		if b, err := os.ReadFile(filepath.Join(src, "infrastructure", "kustomization.yaml")); err != nil || string(b) != miniStack(t)["infrastructure/kustomization.yaml"] {
			t.Errorf("infrastructure/kustomization.yaml not restored: %q %v", b, err)
		}
		if _, err := os.Stat(filepath.Join(src, "applications", "kustomization.yaml")); !os.IsNotExist(err) {
			t.Errorf("generated applications/kustomization.yaml left behind")
		}
	}
}

// Repo never writes into the input directory.
func TestRepoDoesNotModifyInput(t *testing.T) {
	dir := t.TempDir()
	tr := miniStack(t)
	tr[".sourceignore"] = "/docs/\n"
	tr["docs/x.yaml"] = "not: [valid\n"
	tr.write(t, dir)
	before := snapshot(t, dir)
	rep, err := Repo(context.Background(), Options{Root: dir, Entry: "clusters/dev", Schemas: fluxSchemas(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("not OK:\n%s", rep)
	}
	if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
		t.Errorf("input changed:\nbefore %v\nafter  %v", before, after)
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		entry := fmt.Sprintf("%v %v", fi.Mode(), fi.ModTime().UnixNano())
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entry += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[p] = entry
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A bootstrap-style entry: the flux-system Kustomization syncs clusters/dev itself. It is
// the entry's identity (not built twice), and its GitRepository's spec.ignore and the
// repo's .sourceignore shape the artifact every path is built from.
func TestRepoSelfSyncAndIgnoreRules(t *testing.T) {
	tr := miniStack(t)
	delete(tr, "clusters/dev/gitrepository.yaml")
	tr["clusters/dev/flux-system/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-sync.yaml\n"
	tr["clusters/dev/flux-system/gotk-sync.yaml"] = strings.Replace(gitRepositoryYAML, "  ref:\n", "  ignore: |\n    /applications/sell-http/\n  ref:\n", 1) + `---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m
  path: ./clusters/dev
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
`
	// Not in the artifact: an archive the default rules would drop anyway, a broken file
	// .sourceignore drops.
	tr[".sourceignore"] = "/scratch/\n"
	tr["scratch/broken.yaml"] = "{{{"
	rep := run(t, tr)
	expectExactly(t, rep)
	if len(rep.Built) != 3 {
		t.Fatalf("built:\n%s", rep)
	}
	if b := rep.Built[0]; b.Kustomization != "flux-system/flux-system" || b.Path != "clusters/dev" || b.Objects != 4 {
		t.Errorf("entry = %+v", b)
	}
	// spec.ignore removed sell-http/: only slice b is built.
	if b := rep.Built[2]; b.Kustomization != "flux-system/applications" || b.Objects != 3 || b.Parent != "flux-system/flux-system" {
		t.Errorf("applications = %+v", b)
	}

	// A .sourceignore rule can make a Kustomization's path vanish from the artifact.
	tr[".sourceignore"] += "/infrastructure/\n"
	rep = run(t, tr)
	found := false
	for _, f := range rep.Errors() {
		if f.Object == "Kustomization/flux-system/infrastructure" && f.Field == "spec.path" {
			found = true
		}
	}
	if !found {
		t.Errorf("no spec.path error for an ignored path:\n%s", rep)
	}
}

// x-kubernetes-validations rules are evaluated with the API server's CEL validator.
func TestRepoCELRules(t *testing.T) {
	crd := &apiextv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal([]byte(serviceOfferCRD(t)), crd); err != nil {
		t.Fatal(err)
	}
	sch := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	spec := sch.Properties["spec"]
	payment := spec.Properties["payment"]
	price := payment.Properties["price"]
	price.XValidations = apiextv1.ValidationRules{{
		Rule:    "[has(self.perRequest), has(self.perMTok), has(self.perHour)].filter(x, x).size() == 1",
		Message: "exactly one price model",
	}}
	payment.Properties["price"] = price
	spec.Properties["payment"] = payment
	sch.Properties["spec"] = spec
	b, err := yaml.Marshal(crd)
	if err != nil {
		t.Fatal(err)
	}
	tr := miniStack(t)
	tr["infrastructure/crds/obol.org_serviceoffers.yaml"] = string(b)
	expectExactly(t, run(t, tr)) // both offers have one price

	offer := "applications/sell-http/a/offer.yaml"
	tr[offer] = strings.Replace(tr[offer], `perRequest: "0.001"`, "perRequest: \"0.001\"\n      perHour: \"1\"", 1)
	expectExactly(t, run(t, tr), want{SeverityError, offer, "ServiceOffer/obol/a", "spec.payment.price", "exactly one price model"})
}

func TestLoadSchemas(t *testing.T) {
	if _, err := LoadSchemas([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")); err == nil {
		t.Error("a ConfigMap loaded as a CRD")
	}
	if _, err := LoadSchemas([]byte("not: [yaml")); err == nil {
		t.Error("broken YAML loaded")
	}
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, listKind: WidgetList, singular: widget}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
  - name: v1beta1
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
`
	s, err := LoadSchemas([]byte("# comment only\n---\n" + crd + "---\n"))
	if err != nil {
		t.Fatal(err)
	}
	obj := func(version, body string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte("apiVersion: example.com/"+version+"\nkind: Widget\nmetadata:\n  name: w\n"+body), &u.Object); err != nil {
			t.Fatal(err)
		}
		return u
	}
	if fs := s.Check(obj("v1", "spec:\n  size: 2\n")); len(fs) != 0 {
		t.Errorf("valid widget: %v", fs)
	}
	if fs := s.Check(obj("v1", "spec:\n  size: 0\n")); len(fs) != 1 || fs[0].Field != "spec.size" {
		t.Errorf("size 0: %v", fs)
	}
	if fs := s.Check(obj("v1beta1", "")); len(fs) != 1 || !strings.Contains(fs[0].Message, "version v1beta1 of CRD widgets.example.com is not served") {
		t.Errorf("unserved version: %v", fs)
	}
	if fs := s.Check(obj("v2", "")); len(fs) != 1 || !strings.Contains(fs[0].Message, "version v2 is not defined by CRD widgets.example.com") {
		t.Errorf("unknown version: %v", fs)
	}
	if namespaced, known := s.scope(obj("v1", "").GroupVersionKind()); namespaced || !known {
		t.Errorf("scope: %v %v", namespaced, known)
	}

	bad := &apiextv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal([]byte(crd), bad); err != nil {
		t.Fatal(err)
	}
	bad.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = apiextv1.JSONSchemaProps{} // no type: not structural
	if err := s.Add(bad); err == nil || !strings.Contains(err.Error(), "type") {
		t.Errorf("non-structural CRD added: %v", err)
	}
}

// Built-in kinds are decoded strictly into their client-go types.
func TestCheckBuiltin(t *testing.T) {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: x}
spec:
  replicas: 2
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
      - name: c
        imagee: foo
`), &u.Object); err != nil {
		t.Fatal(err)
	}
	s := NewSchemas()
	fs := s.Check(u)
	if len(fs) != 1 || fs[0].Field != "spec.template.spec.containers[0].imagee" || !strings.Contains(fs[0].Message, "unknown field") {
		t.Errorf("unknown field: %v", fs)
	}
	u.Object["spec"].(map[string]any)["replicas"] = "two"
	fs = s.Check(u)
	if len(fs) != 1 || fs[0].Field != "spec.replicas" || !strings.Contains(fs[0].Message, "cannot unmarshal string") {
		t.Errorf("wrong type: %v", fs)
	}
	if namespaced, known := s.scope(u.GroupVersionKind()); !namespaced || !known {
		t.Error("Deployment is namespaced")
	}
}

// postBuild substitutions run as kustomize-controller runs them: inline vars plus
// substituteFrom ConfigMaps the repo defines (here in infrastructure, which applications
// depends on, so it is built first).
func TestRepoPostBuild(t *testing.T) {
	tr := miniStack(t)
	tr["clusters/dev/applications.yaml"] = applicationsKsYAML + `  postBuild:
    substitute:
      UPSTREAM: echo
    substituteFrom:
    - kind: ConfigMap
      name: cluster-vars
`
	tr["infrastructure/kustomization.yaml"] += "- cluster-vars.yaml\n"
	tr["infrastructure/cluster-vars.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n  namespace: flux-system\ndata:\n  NETWORK: base-sepolia\n  PRICE: \"0.002\"\n"
	offer := "applications/sell-http/a/offer.yaml"
	tr[offer] = strings.Replace(strings.Replace(tr[offer], "network: base-sepolia", "network: ${NETWORK}", 1), "service: echo", "service: ${UPSTREAM}", 1)
	expectExactly(t, run(t, tr))

	// The substituted object is what gets checked. This is Flux's classic gotcha: the
	// substitution runs on kustomize's YAML output, where "${PRICE}" is an unquoted scalar,
	// so 0.002 becomes a number.
	gotcha := tr.clone()
	gotcha[offer] = strings.Replace(gotcha[offer], `perRequest: "0.001"`, `perRequest: "${PRICE}"`, 1)
	expectExactly(t, run(t, gotcha), want{SeverityError, offer, "ServiceOffer/obol/a", "spec.payment.price.perRequest", "must be of type string"})

	// A substituteFrom the repo does not define: substituted as empty, with a warning.
	missing := tr.clone()
	missing["clusters/dev/applications.yaml"] = strings.Replace(missing["clusters/dev/applications.yaml"], "name: cluster-vars", "name: cluster-vars2", 1)
	expectExactly(t, run(t, missing),
		want{SeverityWarning, "clusters/dev/applications.yaml", "Kustomization/flux-system/applications", "spec.postBuild.substituteFrom", "ConfigMap/cluster-vars2 is not defined in the repo"},
		want{SeverityError, offer, "ServiceOffer/obol/a", "spec.payment.network", "Required value"},
	)
}

func TestRepoDependsOnCycle(t *testing.T) {
	tr := miniStack(t)
	tr["clusters/dev/infrastructure.yaml"] = infrastructureKsYAML + "  dependsOn:\n  - name: applications\n"
	rep := run(t, tr)
	expectExactly(t, rep, want{SeverityError, "", "Kustomization/flux-system/*", "spec.dependsOn", "dependsOn cycle: flux-system/"})
	if len(rep.Built) != 3 {
		t.Errorf("built:\n%s", rep)
	}
}

func TestRepoSOPSSecret(t *testing.T) {
	tr := miniStack(t)
	k := "applications/sell-http/a/kustomization.yaml"
	tr[k] = strings.Replace(tr[k], "- helmrelease.yaml\n", "- helmrelease.yaml\n- secret.yaml\n", 1)
	tr["applications/sell-http/a/secret.yaml"] = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: key\ndata:\n  key: ENC[AES256_GCM,data:abc,type:str]\nsops:\n  version: 3.9.0\n"
	// Encrypted, but applications does not decrypt: it would be applied encrypted.
	expectExactly(t, run(t, tr),
		want{SeverityError, "applications/sell-http/a/secret.yaml", "Secret/obol/key", "sops", "has no spec.decryption"},
	)
	// With decryption it is fine (its encrypted form is not schema-checked).
	tr["clusters/dev/applications.yaml"] = applicationsKsYAML + "  decryption:\n    provider: sops\n"
	expectExactly(t, run(t, tr))
}

// Without schemas for the Flux kinds every Flux object is reported, but the walk still
// follows the Kustomizations.
func TestRepoWithoutSchemas(t *testing.T) {
	dir := t.TempDir()
	miniStack(t).write(t, dir)
	rep, err := Repo(context.Background(), Options{Root: dir, Entry: "clusters/dev"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Built) != 3 || rep.Built[2].Objects != 6 {
		t.Fatalf("built:\n%s", rep)
	}
	n := 0
	for _, f := range rep.Errors() {
		if strings.HasPrefix(f.Message, "no schema for ") && strings.Contains(f.Message, "toolkit.fluxcd.io") {
			n++
		}
	}
	if n != 5 { // GitRepository, 2 Kustomizations, 2 HelmReleases
		t.Errorf("%d no-schema errors:\n%s", n, rep)
	}
}

func TestRepoBadInput(t *testing.T) {
	if _, err := Repo(context.Background(), Options{Root: filepath.Join(t.TempDir(), "nope"), Entry: "clusters/dev"}); err == nil {
		t.Error("missing root: no error")
	}
	dir := t.TempDir()
	miniStack(t).write(t, dir)
	rep, err := Repo(context.Background(), Options{Root: dir, Entry: "clusters/prod", Schemas: fluxSchemas(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Errors()) != 1 || !strings.Contains(rep.Errors()[0].Message, "kustomization path not found: clusters/prod") {
		t.Errorf("missing entry:\n%s", rep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Repo(ctx, Options{Root: dir, Entry: "clusters/dev"}); err == nil {
		t.Error("cancelled context: no error")
	}
}

// A Kustomization whose build contains itself is built once; building a path twice makes
// every object in it a duplicate.
func TestRepoKustomizationLoop(t *testing.T) {
	tr := miniStack(t)
	tr["infrastructure/kustomization.yaml"] += "- loop.yaml\n"
	loop := strings.Replace(infrastructureKsYAML, "name: infrastructure", "name: loop", 1)
	loop = strings.Replace(loop, "namespace: flux-system", "namespace: obol", 1)
	tr["infrastructure/loop.yaml"] = loop + "    namespace: flux-system\n" // the sourceRef's
	rep := run(t, tr)
	if len(rep.Built) != 4 || rep.Built[3].Kustomization != "obol/loop" || rep.Built[3].Parent != "flux-system/infrastructure" {
		t.Fatalf("built:\n%s", rep)
	}
	expectExactly(t, rep,
		want{SeverityError, "infrastructure/namespace.yaml", "Namespace/obol", "", "duplicate object: also defined in infrastructure/namespace.yaml (built by flux-system/infrastructure)"},
		want{SeverityError, "infrastructure/crds/obol.org_serviceoffers.yaml", "CustomResourceDefinition/serviceoffers.obol.org", "", "duplicate object"},
		want{SeverityError, "infrastructure/loop.yaml", "Kustomization/obol/loop", "", "duplicate object"},
	)
}

// Repo may run concurrently with one shared schema set.
func TestRepoConcurrent(t *testing.T) {
	dir := t.TempDir()
	miniStack(t).write(t, dir)
	s := fluxSchemas(t)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			rep, err := Repo(context.Background(), Options{Root: dir, Entry: "clusters/dev", Schemas: s})
			if err == nil && !rep.OK() {
				err = fmt.Errorf("not OK:\n%s", rep)
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if len(s.Kinds()) != len(fluxSchemas(t).Kinds()) {
		t.Error("Repo changed the caller's schema set")
	}
}
