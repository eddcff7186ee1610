package validate

import (
	"bytes"
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
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// renderChart renders a chart taken from this repo with the HelmRelease's values, as
// helm-controller would (valuesFrom in order, then spec.values on top; the chart's
// values.schema.json enforced), and checks every object it makes. Kinds without a schema here
// (e.g. Gateway API routes) are warnings: their CRDs come from outside the repo.
func (w *walker) renderChart(it *item, chartRel string, values map[string]any) {
	obj := it.obj
	dir := filepath.Join(w.src, filepath.FromSlash(chartRel))
	chrt, err := loader.Load(dir)
	if err != nil {
		w.errorf(it, "spec.chart.spec.chart", "chart %s does not load: %v", chartRel, err)
		return
	}
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
	opts := common.ReleaseOptions{Name: release, Namespace: ns, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValuesWithSchemaValidation(chrt, values, opts, common.DefaultCapabilities, false)
	if err != nil {
		w.errorf(it, "spec.valuesFrom", "chart %s rejects the values: %v", chartRel, err)
		return
	}
	out, err := engine.Render(chrt, vals)
	if err != nil {
		w.errorf(it, "spec.chart.spec.chart", "chart %s does not render: %v", chartRel, err)
		return
	}
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
			continue // NOTES.txt and helpers
		}
		file := path.Join(chartRel, strings.TrimPrefix(name, chrt.Name()+"/"))
		for _, doc := range splitYAML([]byte(out[name])) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			// Decoded as build.go decodes kustomize's output (integers stay int64, as the API
			// server's JSON decoding keeps them: CEL rules compare them as int).
			u := &unstructured.Unstructured{}
			if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(u); err != nil {
				w.add(Finding{Severity: SeverityError, Path: file, Object: objectID(obj), Message: fmt.Sprintf("rendered manifest is not YAML: %v", err)})
				continue
			}
			if len(u.Object) == 0 {
				continue
			}
			if u.GetNamespace() == "" {
				if namespaced, known := w.schemas.scope(u.GroupVersionKind()); !known || namespaced {
					u.SetNamespace(ns)
				}
			}
			for _, f := range w.schemas.Check(u) {
				f.Path = file
				f.Message = "rendered by HelmRelease " + objectID(obj) + ": " + f.Message
				if strings.Contains(f.Message, ": no schema for ") {
					f.Severity = SeverityWarning
					f.Message += " (its CRD must be installed in the cluster)"
				}
				w.add(f)
			}
		}
	}
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
