package validate

import (
	"strings"
	"testing"
)

func TestRepoValidMiniStack(t *testing.T) {
	rep := run(t, miniStack(t))
	expectExactly(t, rep)
	if !rep.OK() {
		t.Fatalf("not OK:\n%s", rep)
	}
	type row struct {
		ks, path, parent string
		objects          int
		kinds            map[string]int
	}
	wantBuilt := []row{
		{"", "clusters/dev", "", 3, map[string]int{"GitRepository": 1, "Kustomization": 2}},
		{"flux-system/infrastructure", "infrastructure", "(entry clusters/dev)", 2, map[string]int{"Namespace": 1, "CustomResourceDefinition": 1}},
		{"flux-system/applications", "applications", "(entry clusters/dev)", 6, map[string]int{"ServiceOffer": 2, "HelmRelease": 2, "ConfigMap": 2}},
	}
	if len(rep.Built) != len(wantBuilt) {
		t.Fatalf("built %d paths, want %d:\n%s", len(rep.Built), len(wantBuilt), rep)
	}
	for i, w := range wantBuilt {
		b := rep.Built[i]
		if b.Kustomization != w.ks || b.Path != w.path || b.Parent != w.parent || b.Objects != w.objects || b.Failed {
			t.Errorf("built[%d] = %+v, want %+v", i, b, w)
		}
		for k, n := range w.kinds {
			if b.Kinds[k] != n {
				t.Errorf("built[%d] %s: %d, want %d", i, k, b.Kinds[k], n)
			}
		}
	}
	if got := rep.Built[2].DependsOn; len(got) != 1 || got[0] != "flux-system/infrastructure" {
		t.Errorf("applications dependsOn = %v", got)
	}
}

// Each defect gives exactly the expected findings.
func TestRepoDefects(t *testing.T) {
	const (
		offerA = "applications/sell-http/a/offer.yaml"
		hrA    = "applications/sell-http/a/helmrelease.yaml"
		soA    = "ServiceOffer/obol/a"
	)
	tests := []struct {
		name   string
		change func(tr tree)
		ok     bool // report still OK (warnings only)
		want   []want
	}{
		{
			name: "unknown field in a ServiceOffer",
			change: func(tr tree) {
				tr[offerA] = strings.Replace(tr[offerA], "    network: base-sepolia\n", "    network: base-sepolia\n    payto: \"0x1\"\n", 1)
			},
			want: []want{{SeverityError, offerA, soA, "spec.payment.payto", `unknown field "spec.payment.payto"`}},
		},
		{
			name: "wrong type",
			change: func(tr tree) {
				tr[offerA] = strings.Replace(tr[offerA], "port: 8080", "port: eighty", 1)
			},
			want: []want{{SeverityError, offerA, soA, "spec.upstream.port", "must be of type integer"}},
		},
		{
			name: "missing required field",
			change: func(tr tree) {
				tr[offerA] = strings.Replace(tr[offerA], "    payTo: \"0x1111111111111111111111111111111111111111\"\n", "", 1)
			},
			want: []want{{SeverityError, offerA, soA, "spec.payment.payTo", "Required value"}},
		},
		{
			name: "enum violation",
			change: func(tr tree) {
				tr[offerA] = strings.Replace(tr[offerA], "type: http", "type: webhook", 1)
			},
			want: []want{{SeverityError, offerA, soA, "spec.type", `Unsupported value: "webhook"`}},
		},
		{
			name: "pattern violation",
			change: func(tr tree) {
				tr[offerA] = strings.Replace(tr[offerA], `perRequest: "0.001"`, `perRequest: "0,001"`, 1)
			},
			want: []want{{SeverityError, offerA, soA, "spec.payment.price.perRequest", "should match"}},
		},
		{
			name: "invalid name and label",
			change: func(tr tree) {
				tr[offerA] = strings.Replace(tr[offerA], "  name: a\n", "  name: a\n  labels:\n    tier: \"not valid!\"\n", 1)
				k := "applications/sell-http/a/kustomization.yaml"
				tr[k] = strings.Replace(tr[k], "- helmrelease.yaml\n", "- helmrelease.yaml\n- service.yaml\n", 1)
				tr["applications/sell-http/a/service.yaml"] = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a.gateway\nspec:\n  ports:\n  - port: 80\n"
			},
			want: []want{
				{SeverityError, offerA, soA, "metadata.labels", `Invalid value: "not valid!"`},
				{SeverityError, "applications/sell-http/a/service.yaml", "Service/obol/a.gateway", "metadata.name", "a DNS-1035 label"},
			},
		},
		{
			name: "namespaced objects without a namespace",
			change: func(tr tree) {
				k := "applications/sell-inference/b/kustomization.yaml"
				tr[k] = strings.Replace(tr[k], "namespace: obol\n", "", 1)
			},
			ok: true,
			want: []want{
				{SeverityWarning, "applications/sell-inference/b/offer.yaml", "ServiceOffer/b", "metadata.namespace", "namespaced ServiceOffer has no namespace after the build (the Kustomization applying it is in flux-system)"},
				{SeverityWarning, "applications/sell-inference/b/helmrelease.yaml", "HelmRelease/b", "metadata.namespace", "namespaced HelmRelease has no namespace"},
				{SeverityWarning, "applications/sell-inference/b/kustomization.yaml", "ConfigMap/b-values", "metadata.namespace", "namespaced ConfigMap has no namespace"},
			},
		},
		{
			name: "bad Flux Kustomization field",
			change: func(tr tree) {
				tr["clusters/dev/applications.yaml"] = strings.Replace(applicationsKsYAML, "prune: true", `prune: "yes"`, 1)
			},
			want: []want{{SeverityError, "clusters/dev/applications.yaml", "Kustomization/flux-system/applications", "spec.prune", "must be of type boolean"}},
		},
		{
			name: "Kustomization path that does not exist",
			change: func(tr tree) {
				tr["clusters/dev/infrastructure.yaml"] = strings.Replace(infrastructureKsYAML, "./infrastructure", "./infra", 1)
			},
			// infrastructure is not built, so the CRD is missing for the offers too.
			want: []want{
				{SeverityError, "clusters/dev/infrastructure.yaml", "Kustomization/flux-system/infrastructure", "spec.path", `path "./infra" does not exist`},
				{SeverityError, offerA, soA, "", "no schema for obol.org/v1alpha1/ServiceOffer; is its CRD installed by infrastructure/?"},
				{SeverityError, "applications/sell-inference/b/offer.yaml", "ServiceOffer/obol/b", "", "no schema for obol.org/v1alpha1/ServiceOffer"},
				{SeverityWarning, "", "ConfigMap/obol/a-values-*", "metadata.namespace", `namespace "obol" is not created`},
				{SeverityWarning, "", "ConfigMap/obol/b-values", "metadata.namespace", `namespace "obol" is not created`},
				{SeverityWarning, "", "HelmRelease/obol/a", "metadata.namespace", `namespace "obol" is not created`},
				{SeverityWarning, "", "HelmRelease/obol/b", "metadata.namespace", `namespace "obol" is not created`},
			},
		},
		{
			name: "dangling dependsOn",
			change: func(tr tree) {
				tr["clusters/dev/applications.yaml"] = strings.Replace(applicationsKsYAML, "name: infrastructure", "name: infra", 1)
			},
			want: []want{
				{SeverityError, "clusters/dev/applications.yaml", "Kustomization/flux-system/applications", "spec.dependsOn[0]", "Kustomization flux-system/infra is not defined in the repo"},
				// Without the dependency nothing orders the CRD before the offers.
				{SeverityWarning, offerA, soA, "", "its CRD is applied by flux-system/infrastructure, which flux-system/applications neither depends on nor is created by"},
				{SeverityWarning, "applications/sell-inference/b/offer.yaml", "ServiceOffer/obol/b", "", "its CRD is applied by flux-system/infrastructure"},
			},
		},
		{
			name: "sourceRef not in the repo",
			change: func(tr tree) {
				tr["clusters/dev/applications.yaml"] = strings.Replace(applicationsKsYAML, "name: flux-system", "name: stack", 1)
			},
			want: []want{{SeverityError, "clusters/dev/applications.yaml", "Kustomization/flux-system/applications", "spec.sourceRef", "GitRepository flux-system/stack is not defined in the repo"}},
		},
		{
			name: "source that is not this repo",
			change: func(tr tree) {
				tr["clusters/dev/applications.yaml"] = strings.Replace(applicationsKsYAML, "kind: GitRepository", "kind: OCIRepository", 1)
			},
			ok:   true,
			want: []want{{SeverityWarning, "clusters/dev/applications.yaml", "Kustomization/flux-system/applications", "spec.sourceRef", "not built: its source is a OCIRepository"}},
		},
		{
			name: "unknown kind",
			change: func(tr tree) {
				k := "applications/sell-http/a/kustomization.yaml"
				tr[k] = strings.Replace(tr[k], "- helmrelease.yaml\n", "- helmrelease.yaml\n- widget.yaml\n", 1)
				tr["applications/sell-http/a/widget.yaml"] = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n"
			},
			want: []want{{SeverityError, "applications/sell-http/a/widget.yaml", "Widget/obol/w", "", "no schema for example.com/v1/Widget; is its CRD installed by infrastructure/?"}},
		},
		{
			name: "duplicate object across two slices",
			change: func(tr tree) {
				for k, v := range sliceFiles("sell-http", "c", httpOfferSpec, false) {
					tr[k] = v
				}
				// Slice c's offer claims the name of slice a's.
				tr["applications/sell-http/c/offer.yaml"] = strings.Replace(tr["applications/sell-http/c/offer.yaml"], "name: c", "name: a", 1)
			},
			// Both slices are in the one build of applications/: kustomize itself refuses it.
			want: []want{{SeverityError, "applications/sell-http/c/offer.yaml", soA, "", "duplicate object: also defined in " + offerA + "; kustomize refuses to build applications"}},
		},
		{
			name: "duplicate object across two reconciler paths",
			change: func(tr tree) {
				tr["infrastructure/kustomization.yaml"] += "- offer.yaml\n"
				tr["infrastructure/offer.yaml"] = "apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nmetadata:\n  name: a\n  namespace: obol\nspec:\n" + httpOfferSpec
			},
			want: []want{{SeverityError, offerA, soA, "", "duplicate object: also defined in infrastructure/offer.yaml (built by flux-system/infrastructure)"}},
		},
		{
			name: "plain-text Secret",
			change: func(tr tree) {
				k := "applications/sell-http/a/kustomization.yaml"
				tr[k] = strings.Replace(tr[k], "- helmrelease.yaml\n", "- helmrelease.yaml\n- secret.yaml\n", 1)
				tr["applications/sell-http/a/secret.yaml"] = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: facilitator\nstringData:\n  apiKey: hunter2\n"
			},
			want: []want{{SeverityError, "applications/sell-http/a/secret.yaml", "Secret/obol/facilitator", "stringData", "secrets never go into git in plain text"}},
		},
		{
			name: "broken YAML in a slice",
			change: func(tr tree) {
				tr[offerA] = "apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nmetadata:\n  name: a\n spec: [\n"
			},
			want: []want{{SeverityError, offerA, "Kustomization/flux-system/applications", "", "kustomize build failed"}},
		},
		{
			name: "broken YAML the generator scans",
			change: func(tr tree) {
				tr["applications/stray.yaml"] = "kind: ConfigMap\nmetadata: {name: x\n"
			},
			want: []want{{SeverityError, "applications/stray.yaml", "Kustomization/flux-system/applications", "", "applications/stray.yaml"}},
		},
		{
			name: "chart values violate the chart's values.schema.json",
			change: func(tr tree) {
				tr["charts/obol-gateway/values.schema.json"] = `{"type":"object","properties":{"mode":{"enum":["sell-http","sell-inference"]}}}`
				tr["applications/sell-http/a/values.yaml"] = "offer: a\nmode: ftp\n"
			},
			want: []want{{SeverityError, hrA, "HelmRelease/obol/a", "spec.valuesFrom", "chart charts/obol-gateway rejects the values"}},
		},
		{
			name: "chart renders an object with an unknown field",
			change: func(tr tree) {
				tr["charts/obol-gateway/templates/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\ndataa:\n  mode: {{ .Values.mode }}\n"
			},
			want: []want{
				{SeverityError, "charts/obol-gateway/templates/cm.yaml", "ConfigMap/obol/a-cfg", "", "rendered by HelmRelease HelmRelease/obol/a"},
				{SeverityError, "charts/obol-gateway/templates/cm.yaml", "ConfigMap/obol/b-cfg", "", "dataa"},
			},
		},
		{
			name: "chart renders a kind whose CRD comes from outside the repo",
			change: func(tr tree) {
				tr["charts/obol-gateway/templates/route.yaml"] = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: {{ .Release.Name }}\nspec: {}\n"
			},
			ok: true,
			want: []want{
				{SeverityWarning, "charts/obol-gateway/templates/route.yaml", "HTTPRoute/obol/a", "", "its CRD must be installed in the cluster"},
				{SeverityWarning, "charts/obol-gateway/templates/route.yaml", "HTTPRoute/obol/b", "", "no schema for gateway.networking.k8s.io/v1/HTTPRoute"},
			},
		},
		{
			name: "valuesFrom ConfigMap missing",
			change: func(tr tree) {
				tr[hrA] = strings.Replace(tr[hrA], "name: a-values", "name: a-vals", 1)
			},
			want: []want{{SeverityError, hrA, "HelmRelease/obol/a", "spec.valuesFrom[0]", "ConfigMap obol/a-vals is not built by applications"}},
		},
		{
			name: "valuesFrom key missing",
			change: func(tr tree) {
				tr[hrA] = strings.Replace(tr[hrA], "valuesKey: values.yaml", "valuesKey: value.yaml", 1)
			},
			want: []want{{SeverityError, hrA, "HelmRelease/obol/a", "spec.valuesFrom[0].valuesKey", `has no key "value.yaml"`}},
		},
		{
			name: "HelmRelease chart source not in the repo",
			change: func(tr tree) {
				tr[hrA] = strings.Replace(tr[hrA], "        name: flux-system\n", "        name: charts\n", 1)
			},
			want: []want{{SeverityError, hrA, "HelmRelease/obol/a", "spec.chart.spec.sourceRef", "GitRepository flux-system/charts is not defined in the repo"}},
		},
		{
			name: "HelmRelease chart missing is only a warning",
			change: func(tr tree) {
				delete(tr, "charts/obol-gateway/Chart.yaml")
			},
			ok: true,
			want: []want{
				{SeverityWarning, hrA, "HelmRelease/obol/a", "spec.chart.spec.chart", `chart "./charts/obol-gateway" has no Chart.yaml`},
				{SeverityWarning, "applications/sell-inference/b/helmrelease.yaml", "HelmRelease/obol/b", "spec.chart.spec.chart", "has no Chart.yaml"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := miniStack(t)
			tc.change(tr)
			rep := run(t, tr)
			expectExactly(t, rep, tc.want...)
			if rep.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v", rep.OK(), tc.ok)
			}
		})
	}
}
