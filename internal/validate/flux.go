package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// checkFlux runs the Flux-specific checks over every built object: Kustomization
// dependencies, HelmRelease chart sources and values.
func (w *walker) checkFlux() {
	for _, n := range w.nodes {
		for _, it := range n.items {
			switch {
			case isKind(it.obj, kustomizeGroup, "Kustomization"):
				w.checkDependsOn(it)
			case isKind(it.obj, helmGroup, "HelmRelease"):
				w.checkHelmRelease(it)
			}
		}
	}
	w.checkDependsOnCycles()
}

func (w *walker) checkDependsOn(it *item) {
	for i, d := range dependsOnOf(it) {
		if _, ok := w.ks[d]; !ok {
			w.errorf(it, fmt.Sprintf("spec.dependsOn[%d]", i), "Kustomization %s is not defined in the repo; this Kustomization would wait for it forever", d)
		}
	}
}

// dependsOnOf is dependsOn with namespaces defaulted to the effective namespace.
func dependsOnOf(it *item) []string {
	obj := it.obj
	if obj.GetNamespace() == "" {
		obj = obj.DeepCopy()
		obj.SetNamespace(effectiveNS(it))
	}
	return dependsOn(obj)
}

// checkDependsOnCycles reports Kustomizations that (transitively) depend on themselves.
func (w *walker) checkDependsOnCycles() {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	reported := map[string]bool{}
	var stack []string
	var visit func(id string)
	visit = func(id string) {
		it := w.ks[id]
		if it == nil {
			return
		}
		color[id] = grey
		stack = append(stack, id)
		for _, d := range dependsOnOf(it) {
			switch color[d] {
			case white:
				visit(d)
			case grey:
				start := 0
				for i, s := range stack {
					if s == d {
						start = i
					}
				}
				cycle := append(append([]string{}, stack[start:]...), d)
				if !reported[d] {
					reported[d] = true
					w.errorf(w.ks[d], "spec.dependsOn", "dependsOn cycle: %s; none of them would ever be applied", strings.Join(cycle, " -> "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
	}
	for _, n := range w.nodes {
		for _, it := range n.items {
			if isKind(it.obj, kustomizeGroup, "Kustomization") {
				if id := nsName(it.obj, effectiveNS(it)); w.ks[id] == it && color[id] == white {
					visit(id)
				}
			}
		}
	}
}

func (w *walker) checkHelmRelease(it *item) {
	obj := it.obj
	ns := effectiveNS(it)
	chartRel := "" // set when the chart comes from this repo and is there
	values := map[string]any{}
	valuesOK := true

	if _, ok, _ := unstructured.NestedMap(obj.Object, "spec", "chart", "spec"); ok {
		kind, name, srcNS := sourceRef(it, "spec", "chart", "spec", "sourceRef")
		chart, _, _ := unstructured.NestedString(obj.Object, "spec", "chart", "spec", "chart")
		chartRel = w.chartSource(it, "spec.chart.spec", kind, name, srcNS, chart)
	}
	if _, ok, _ := unstructured.NestedMap(obj.Object, "spec", "chartRef"); ok {
		kind, name, srcNS := sourceRef(it, "spec", "chartRef")
		src := w.find(sourceGroup, kind, srcNS, name)
		switch {
		case src == nil:
			w.warnf(it, "spec.chartRef", "%s %s/%s is not defined in the repo; it must exist in the cluster", kind, srcNS, name)
		case kind == "HelmChart":
			// A HelmChart shared by many releases: its chart is rendered with this release's values.
			skind, _, _ := unstructured.NestedString(src.obj.Object, "spec", "sourceRef", "kind")
			sname, _, _ := unstructured.NestedString(src.obj.Object, "spec", "sourceRef", "name")
			chart, _, _ := unstructured.NestedString(src.obj.Object, "spec", "chart")
			// A HelmChart's source is always in its own namespace.
			chartRel = w.chartSource(it, "spec.chartRef", skind, sname, src.obj.GetNamespace(), chart)
		}
	}

	refs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "valuesFrom")
	for i, r := range refs {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		kind, _ := m["kind"].(string)
		name, _ := m["name"].(string)
		optional, _ := m["optional"].(bool)
		key, _ := m["valuesKey"].(string)
		if key == "" {
			key = "values.yaml"
		}
		if kind != "ConfigMap" || optional {
			continue // Secrets are never in the repo; optional ones may be absent
		}
		fieldPath := fmt.Sprintf("spec.valuesFrom[%d]", i)
		var cm *item
		for _, c := range it.node.items {
			if isKind(c.obj, "", "ConfigMap") && c.obj.GetName() == name && effectiveNS(c) == ns {
				cm = c
				break
			}
		}
		if cm == nil {
			hint := ""
			if other := w.find("", "ConfigMap", ns, name); other != nil {
				hint = fmt.Sprintf(" (it is defined in %s, applied by %s)", other.path(), other.node.name())
			} else if gen := w.generatedLike(it.node, ns, name); gen != "" {
				hint = fmt.Sprintf(" (the build has %s: a configMapGenerator adds a hash suffix unless the HelmRelease's valuesFrom is declared as a name reference or disableNameSuffixHash is set)", gen)
			}
			w.errorf(it, fieldPath, "ConfigMap %s/%s is not built by %s%s", ns, name, it.node.path, hint)
			continue
		}
		data, _, _ := unstructured.NestedMap(cm.obj.Object, "data")
		bin, _, _ := unstructured.NestedMap(cm.obj.Object, "binaryData")
		text, ok := data[key].(string)
		if !ok {
			valuesOK = false
			if _, ok := bin[key]; !ok {
				w.errorf(it, fieldPath+".valuesKey", "ConfigMap %s/%s has no key %q", ns, name, key)
			}
			continue
		}
		var v map[string]any
		if err := yaml.Unmarshal([]byte(text), &v); err != nil {
			valuesOK = false
			w.errorf(it, fieldPath, "ConfigMap %s/%s key %q is not a YAML map of values: %v", ns, name, key, err)
			continue
		}
		values = mergeValues(values, v)
	}
	if inline, ok, _ := unstructured.NestedMap(obj.Object, "spec", "values"); ok {
		values = mergeValues(values, inline)
	}
	if chartRel != "" && valuesOK {
		w.renderChart(it, chartRel, values)
	}
}

// chartSource checks the source of a chart (the HelmRelease's chart template, or the HelmChart
// its chartRef names) and returns the chart's repo-relative directory when the chart comes from
// this repo and is there. field names where the reference is, for findings.
func (w *walker) chartSource(it *item, field, kind, name, srcNS, chart string) string {
	switch kind {
	case "GitRepository", "Bucket":
		src := w.find(sourceGroup, kind, srcNS, name)
		if src == nil {
			if kind == "GitRepository" {
				w.errorf(it, field+".sourceRef", "GitRepository %s/%s is not defined in the repo", srcNS, name)
			} else {
				w.warnf(it, field+".sourceRef", "%s %s/%s is not defined in the repo; it must exist in the cluster", kind, srcNS, name)
			}
			return ""
		}
		url, _, _ := unstructured.NestedString(src.obj.Object, "spec", "url")
		if kind == "GitRepository" && (w.selfURL == "" || url == w.selfURL) {
			return w.checkChartPath(it, field+".chart", chart)
		}
	case "HelmRepository":
		if w.find(sourceGroup, kind, srcNS, name) == nil {
			w.warnf(it, field+".sourceRef", "HelmRepository %s/%s is not defined in the repo; it must exist in the cluster", srcNS, name)
		}
	}
	return ""
}

// generatedLike finds a ConfigMap in n whose name is name plus a kustomize hash suffix.
func (w *walker) generatedLike(n *node, ns, name string) string {
	for _, c := range n.items {
		if isKind(c.obj, "", "ConfigMap") && effectiveNS(c) == ns && strings.HasPrefix(c.obj.GetName(), name+"-") && len(c.obj.GetName()) == len(name)+11 {
			return c.obj.GetName()
		}
	}
	return ""
}

// checkChartPath checks that a chart taken from this repo is there, and returns its
// repo-relative directory ("" when it is not).
func (w *walker) checkChartPath(it *item, field, chart string) string {
	p, err := cleanRel(chart)
	if err != nil || chart == "" {
		w.errorf(it, field, "chart path %q is not a path in the repo", chart)
		return ""
	}
	if _, err := os.Stat(filepath.Join(w.src, filepath.FromSlash(p), "Chart.yaml")); err != nil {
		w.warnf(it, field, "chart %q has no Chart.yaml in the repo; the HelmRelease will fail until the chart is committed", chart)
		return ""
	}
	return p
}

// yamlBroken reports whether a file is not valid (multi-document) YAML.
func yamlBroken(p string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	for _, doc := range splitYAML(b) {
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return true
		}
	}
	return false
}

// splitYAML splits a multi-document YAML stream at "---" lines.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	var cur []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "---") && strings.TrimSpace(strings.TrimLeft(line, "-")) == "" {
			docs = append(docs, []byte(strings.Join(cur, "\n")))
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	return append(docs, []byte(strings.Join(cur, "\n")))
}
