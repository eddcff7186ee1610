package chart_test

import (
	"path"
	"strings"
	"testing"

	helmchart "helm.sh/helm/v4/pkg/chart/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/chart/charttest"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
)

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

// fixture is one real offer per gateway mode, as `obol sell` would write it.
type fixture struct {
	mode  string
	offer *v1alpha1.ServiceOffer
}

func (f fixture) release() charttest.Release {
	return charttest.Release{Name: f.offer.Name, Namespace: f.offer.Namespace}
}

func fixtures(t testing.TB) []fixture {
	t.Helper()
	weather := &v1alpha1.ServiceOffer{
		ObjectMeta: metav1.ObjectMeta{Name: "weather", Namespace: "apps"},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeHTTP,
			Upstream: &v1alpha1.UpstreamSpec{Service: "weather-api", Port: 8080},
			Payment: v1alpha1.PaymentSpec{
				Network: "base-sepolia",
				PayTo:   payTo,
				Price:   v1alpha1.PriceSpec{PerRequest: "0.001"},
			},
		},
	}
	qwen := &v1alpha1.ServiceOffer{
		ObjectMeta: metav1.ObjectMeta{Name: "qwen"},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeInference,
			Model:    &v1alpha1.ModelSpec{Name: "qwen3:8b"},
			Upstream: &v1alpha1.UpstreamSpec{URL: "http://host.k3d.internal:11434"},
			Payment: v1alpha1.PaymentSpec{
				PayTo: strings.ToLower(payTo),
				Price: v1alpha1.PriceSpec{PerMTok: "0.5"},
			},
			Registration: &v1alpha1.RegistrationSpec{Enabled: true, Name: "Qwen 3 8B", Skills: []string{"text-generation"}},
		},
	}
	out := []fixture{{"http", weather}, {"inference", qwen}}
	for _, f := range out {
		offer.Default(f.offer)
		if err := offer.Validate(f.offer); err != nil {
			t.Fatalf("fixture %s is invalid: %v", f.offer.Name, err)
		}
	}
	return out
}

// sliceValues renders the offer's slice with obol's renderer and returns its values.yaml, the
// exact file helm-controller feeds the chart, and the Values it was written from.
func sliceValues(t testing.TB, o *v1alpha1.ServiceOffer) ([]byte, *render.Values) {
	t.Helper()
	files, err := render.Slice(settings.New("dev"), o)
	if err != nil {
		t.Fatal(err)
	}
	valuesYAML, ok := files[path.Join(layout.SliceDir(o.Spec.Type, o.Name), render.ValuesFile)]
	if !ok {
		t.Fatalf("render.Slice wrote no %s for %s", render.ValuesFile, o.Name)
	}
	v, err := render.ValuesFor(o)
	if err != nil {
		t.Fatal(err)
	}
	return valuesYAML, v
}

// helmValues is the slice's values.yaml as Helm reads it.
func helmValues(t testing.TB, o *v1alpha1.ServiceOffer) map[string]any {
	t.Helper()
	valuesYAML, _ := sliceValues(t, o)
	vals, err := charttest.ReadValues(valuesYAML)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

func loadChart(t testing.TB) *helmchart.Chart {
	t.Helper()
	ch, err := charttest.Load()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func mustRender(t testing.TB, ch *helmchart.Chart, vals map[string]any, rel charttest.Release) map[string]string {
	t.Helper()
	files, err := charttest.Render(ch, vals, rel)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return files
}
