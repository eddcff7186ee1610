package validate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol/internal/argocd"
)

// ArgoApp is one Application of an Argo CD stack repo and what Argo CD's repo server would
// render for it.
type ArgoApp struct {
	App     argocd.Application
	File    string // the file that defines it, or the ApplicationSet's generator file
	Objects []Rendered
}

// ArgoRepo validates a stack repo that Argo CD reconciles. entry (clusters/<stack>) holds
// root.yaml, the app of apps, whose path is entry/argocd. Every Argo CD object there is checked
// against Argo CD's own CRD schemas (opts.Schemas must hold them); every Application's source
// is rendered as the repo server renders it (a kustomization with kustomize, a chart with
// Helm's SDK and its value files, $ref sources resolved) and every object checked; the
// ApplicationSet's Applications are generated from the repo as the ApplicationSet controller
// generates them, then rendered and checked the same way. CRDs a source ships are added to the
// schemas for the sources of later sync waves.
func ArgoRepo(ctx context.Context, opts Options) (Report, []ArgoApp, error) {
	if opts.Root == "" {
		return Report{}, nil, errors.New("validate: Options.Root is empty")
	}
	entry, err := cleanRel(opts.Entry)
	if err != nil {
		return Report{}, nil, err
	}
	schemas := opts.Schemas.clone()
	var findings []Finding
	add := func(f Finding) { findings = append(findings, f) }
	fsys := os.DirFS(opts.Root)

	// The wiring: root.yaml, and what the root Application syncs.
	var objs []Rendered
	files := []string{path.Join(entry, "root.yaml")}
	more, err := fs.Glob(fsys, path.Join(entry, "argocd", "*.yaml"))
	if err != nil {
		return Report{}, nil, err
	}
	files = append(files, more...)
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			add(Finding{Severity: SeverityError, Path: f, Message: err.Error()})
			continue
		}
		for _, doc := range splitYAML(b) {
			u, err := decodeObject(doc)
			if err != nil {
				add(Finding{Severity: SeverityError, Path: f, Message: "not YAML: " + err.Error()})
				continue
			}
			if u != nil {
				objs = append(objs, Rendered{File: f, Object: u})
			}
		}
	}
	var apps []ArgoApp
	var sets []Rendered
	for _, r := range objs {
		for _, f := range schemas.Check(r.Object) {
			f.Path = r.File
			add(f)
		}
		if r.Object.GroupVersionKind().Group != argocd.Group {
			continue
		}
		switch r.Object.GetKind() {
		case argocd.ApplicationKind:
			var app argocd.Application
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(r.Object.Object, &app); err != nil {
				add(Finding{Severity: SeverityError, Path: r.File, Object: objectID(r.Object), Message: err.Error()})
				continue
			}
			apps = append(apps, ArgoApp{App: app, File: r.File})
		case argocd.ApplicationSetKind:
			sets = append(sets, r)
		}
	}
	// Sync waves: lower first (the infrastructure's CRDs before the offers).
	sort.SliceStable(apps, func(i, j int) bool { return wave(apps[i].App.Annotations) < wave(apps[j].App.Annotations) })
	for _, s := range sets {
		var set argocd.ApplicationSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(s.Object.Object, &set); err != nil {
			add(Finding{Severity: SeverityError, Path: s.File, Object: objectID(s.Object), Message: err.Error()})
			continue
		}
		gen, err := argocd.Generate(&set, fsys)
		if err != nil {
			add(Finding{Severity: SeverityError, Path: s.File, Object: objectID(s.Object), Field: "spec.generators", Message: err.Error()})
			continue
		}
		for _, app := range gen {
			apps = append(apps, ArgoApp{App: app, File: s.File})
		}
	}

	for i := range apps {
		if err := ctx.Err(); err != nil {
			return Report{}, nil, err
		}
		a := &apps[i]
		id := argocd.ApplicationKind + "/" + a.App.Namespace + "/" + a.App.Name
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&a.App)
		if err != nil {
			return Report{}, nil, err
		}
		for _, f := range schemas.Check(&unstructured.Unstructured{Object: u}) {
			f.Path, f.Object = a.File, id
			f.Message = "generated Application: " + f.Message
			add(f)
		}
		if a.App.Spec.Source != nil && a.App.Spec.Source.Path == path.Join(entry, "argocd") {
			continue // the app of apps: its objects are the wiring checked above
		}
		rendered, fds := renderArgoApp(opts.Root, entry, &a.App, schemas, a.File, id)
		for _, f := range fds {
			add(f)
		}
		a.Objects = rendered
		// CRDs this Application ships are known to its own objects (Argo CD syncs CRDs before
		// the rest of an Application, and SkipDryRunOnMissingResource lets their CRs wait for
		// them) and to the later waves.
		for _, r := range rendered {
			if isKind(r.Object, "apiextensions.k8s.io", "CustomResourceDefinition") {
				crd := &apiextv1.CustomResourceDefinition{}
				if runtime.DefaultUnstructuredConverter.FromUnstructured(r.Object.Object, crd) == nil {
					_ = schemas.Add(crd)
				}
			}
		}
		for _, f := range checkRendered(schemas, rendered, id) {
			add(f)
		}
	}
	sortFindings(findings)
	return Report{Findings: findings}, apps, nil
}

// renderArgoApp renders an Application's sources as the repo server would. Sources from other
// repositories are not rendered (a warning); ref sources only provide $ref value files.
func renderArgoApp(root, entry string, app *argocd.Application, schemas *Schemas, file, id string) ([]Rendered, []Finding) {
	var out []Rendered
	var fds []Finding
	sources := app.Spec.Sources
	if app.Spec.Source != nil {
		sources = append([]argocd.ApplicationSource{*app.Spec.Source}, sources...)
	}
	refs := map[string]bool{}
	for _, s := range sources {
		if s.Ref != "" {
			refs[s.Ref] = true
		}
	}
	for i, s := range sources {
		field := fmt.Sprintf("spec.sources[%d]", i)
		if s.Ref != "" && s.Path == "" {
			continue
		}
		p, err := cleanRel(s.Path)
		if err != nil || s.Path == "" {
			fds = append(fds, Finding{Severity: SeverityError, Path: file, Object: id, Field: field + ".path", Message: fmt.Sprintf("path %q is not a path in the repo", s.Path)})
			continue
		}
		dir := filepath.Join(root, filepath.FromSlash(p))
		switch {
		case exists(filepath.Join(dir, "Chart.yaml")):
			values := map[string]any{}
			release := app.Name
			if s.Helm != nil {
				if s.Helm.ReleaseName != "" {
					release = s.Helm.ReleaseName
				}
				for _, vf := range s.Helm.ValueFiles {
					var vp string
					if strings.HasPrefix(vf, "$") {
						ref, rest, _ := strings.Cut(strings.TrimPrefix(vf, "$"), "/")
						if !refs[ref] {
							fds = append(fds, Finding{Severity: SeverityError, Path: file, Object: id, Field: field + ".helm.valueFiles", Message: fmt.Sprintf("%s: no source has ref %q", vf, ref)})
							continue
						}
						vp = rest
					} else {
						vp = path.Join(p, vf)
					}
					b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(path.Clean(vp))))
					if err != nil {
						fds = append(fds, Finding{Severity: SeverityError, Path: file, Object: id, Field: field + ".helm.valueFiles", Message: fmt.Sprintf("%s: %v", vf, err)})
						continue
					}
					var v map[string]any
					if err := yaml.Unmarshal(b, &v); err != nil {
						fds = append(fds, Finding{Severity: SeverityError, Path: vp, Object: id, Message: "values are not a YAML map: " + err.Error()})
						continue
					}
					values = mergeValues(values, v)
				}
			}
			objs, err := RenderChart(root, p, release, app.Spec.Destination.Namespace, values, schemas)
			if err != nil {
				fds = append(fds, Finding{Severity: SeverityError, Path: file, Object: id, Field: field, Message: err.Error()})
				continue
			}
			out = append(out, objs...)
		case exists(filepath.Join(dir, "kustomization.yaml")) || exists(filepath.Join(dir, "kustomization.yml")) || exists(filepath.Join(dir, "Kustomization")):
			objs, err := Objects(root, p)
			if err != nil {
				fds = append(fds, Finding{Severity: SeverityError, Path: file, Object: id, Field: field, Message: "kustomize build " + p + ": " + err.Error()})
				continue
			}
			for _, o := range objs {
				if o.GetNamespace() == "" && app.Spec.Destination.Namespace != "" {
					if namespaced, known := schemas.scope(o.GroupVersionKind()); !known || namespaced {
						o.SetNamespace(app.Spec.Destination.Namespace)
					}
				}
				out = append(out, Rendered{File: p, Object: o})
			}
		default:
			fds = append(fds, Finding{Severity: SeverityWarning, Path: file, Object: id, Field: field, Message: fmt.Sprintf("%s is neither a chart nor a kustomization: not rendered here", p)})
		}
	}
	return out, fds
}

func wave(ann map[string]string) int {
	var w int
	_, _ = fmt.Sscan(ann[argocd.SyncWave], &w)
	return w
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ArgoSchemas loads Argo CD's CRDs (embedded by internal/argocd) into s.
func ArgoSchemas(s *Schemas) error {
	files, err := fs.Glob(argocd.CRDs, "crds/*.yaml")
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := fs.ReadFile(argocd.CRDs, f)
		if err != nil {
			return err
		}
		crd := &apiextv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, crd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := s.Add(crd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}
