package validate

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// Rendered is one object a chart rendered, with the chart file it came from.
type Rendered struct {
	File   string // repo-relative template path
	Object *unstructured.Unstructured
}

// ChartError is a chart that does not load, rejects its values or does not render; Field says
// which (chart, values).
type ChartError struct {
	Field string
	Err   error
}

func (e *ChartError) Error() string { return e.Err.Error() }

// RenderChart renders the chart at src/chartRel for a release in namespace with values, as
// Helm's SDK renders an install (helm-controller and Argo CD's repo server both do this):
// values.schema.json enforced, objects without a namespace put in the release's when their
// kind is namespaced (scope from schemas; unknown kinds count as namespaced).
func RenderChart(src, chartRel, release, namespace string, values map[string]any, schemas *Schemas) ([]Rendered, error) {
	chrt, err := loader.Load(filepath.Join(src, filepath.FromSlash(chartRel)))
	if err != nil {
		return nil, &ChartError{Field: "chart", Err: fmt.Errorf("chart %s does not load: %w", chartRel, err)}
	}
	opts := common.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValuesWithSchemaValidation(chrt, values, opts, common.DefaultCapabilities, false)
	if err != nil {
		return nil, &ChartError{Field: "values", Err: fmt.Errorf("chart %s rejects the values: %w", chartRel, err)}
	}
	out, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, &ChartError{Field: "chart", Err: fmt.Errorf("chart %s does not render: %w", chartRel, err)}
	}
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	var objs []Rendered
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
			continue // NOTES.txt and helpers
		}
		file := path.Join(chartRel, strings.TrimPrefix(name, chrt.Name()+"/"))
		for _, doc := range splitYAML([]byte(out[name])) {
			u, err := decodeObject(doc)
			if err != nil {
				return nil, &ChartError{Field: "chart", Err: fmt.Errorf("%s: rendered manifest is not YAML: %w", file, err)}
			}
			if u == nil {
				continue
			}
			if u.GetNamespace() == "" {
				if namespaced, known := schemas.scope(u.GroupVersionKind()); !known || namespaced {
					u.SetNamespace(namespace)
				}
			}
			objs = append(objs, Rendered{File: file, Object: u})
		}
	}
	return objs, nil
}

// checkRendered checks rendered objects against the schemas; by names what rendered them.
// Kinds without a schema here are warnings: their CRDs come from outside the repo.
func checkRendered(schemas *Schemas, objs []Rendered, by string) []Finding {
	var out []Finding
	for _, r := range objs {
		for _, f := range schemas.Check(r.Object) {
			f.Path = r.File
			f.Message = "rendered by " + by + ": " + f.Message
			if strings.Contains(f.Message, ": no schema for ") {
				f.Severity = SeverityWarning
				f.Message += " (its CRD must be installed in the cluster)"
			}
			out = append(out, f)
		}
	}
	return out
}

// renderChart renders a chart taken from this repo with the HelmRelease's values, as
// helm-controller would (valuesFrom in order, then spec.values on top), and checks every object
// it makes.
func (w *walker) renderChart(it *item, chartRel string, values map[string]any) {
	obj := it.obj
	ns, _, _ := unstructured.NestedString(obj.Object, "spec", "targetNamespace")
	if ns == "" {
		ns = effectiveNS(it)
	}
	release, _, _ := unstructured.NestedString(obj.Object, "spec", "releaseName")
	if release == "" {
		// helm-controller's default: <targetNamespace>-<name> when a target namespace is set.
		release = obj.GetName()
		if t, _, _ := unstructured.NestedString(obj.Object, "spec", "targetNamespace"); t != "" {
			release = t + "-" + release
		}
	}
	objs, err := RenderChart(w.src, chartRel, release, ns, values, w.schemas)
	if err != nil {
		field := "spec.chart.spec.chart"
		var ce *ChartError
		if errors.As(err, &ce) && ce.Field == "values" {
			field = "spec.valuesFrom"
		}
		w.errorf(it, field, "%v", err)
		return
	}
	for _, f := range checkRendered(w.schemas, objs, "HelmRelease "+objectID(obj)) {
		w.add(f)
	}
}

// decodeObject decodes one YAML document as the API server decodes a request body (integers
// stay int64, not float64: CEL rules compare them as int), as build.go decodes kustomize's
// output. It returns nil for a document with nothing in it (blank or comments only).
func decodeObject(doc []byte) (*unstructured.Unstructured, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := utiljson.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// mergeValues deep-merges src into dst, as Helm merges values files: maps merge key by key,
// anything else is replaced.
func mergeValues(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}
