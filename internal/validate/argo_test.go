package validate

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	obol "github.com/obol/obol"
	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
)

const testPayTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

func testOffers(t *testing.T) []*v1alpha1.ServiceOffer {
	t.Helper()
	var out []*v1alpha1.ServiceOffer
	for _, y := range []string{
		"apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nmetadata:\n  name: weather\n  namespace: apps\nspec:\n  type: http\n  upstream:\n    service: weather-api\n    port: 8080\n  payment:\n    payTo: \"" + testPayTo + "\"\n    network: base-sepolia\n    price:\n      perRequest: \"0.001\"\n",
		"apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nmetadata:\n  name: qwen\nspec:\n  type: inference\n  model:\n    name: qwen3:8b\n  upstream:\n    url: http://ollama.llm.svc:11434\n  payment:\n    payTo: \"" + testPayTo + "\"\n    price:\n      perMTok: \"0.5\"\n",
	} {
		o, err := offer.Decode("offer.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		offer.Default(o)
		if err := offer.Validate(o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// writeStack renders a whole stack repo for engine into a temp dir, offers included.
func writeStack(t *testing.T, engine settings.Engine, offers []*v1alpha1.ServiceOffer) string {
	t.Helper()
	st := settings.New("dev")
	st.Spec.Engine = engine
	st.Default()
	files, err := render.All(obol.Assets(), st, offers)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	files[settings.File] = enc
	for _, o := range offers {
		b, err := offer.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.ToSlash(filepath.Join("applications", "sell-"+string(o.Spec.Type), o.Name, "offer.yaml"))] = b
	}
	dir := t.TempDir()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func argoSchemas(t *testing.T) *Schemas {
	t.Helper()
	s := NewSchemas()
	if err := ArgoSchemas(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// An Argo CD stack validates: every Argo CD object against Argo CD's own schemas, the
// ApplicationSet generates one Application per slice, each renders the chart with its values.
func TestArgoStack(t *testing.T) {
	dir := writeStack(t, settings.EngineArgoCD, testOffers(t))
	rep, apps, err := ArgoRepo(context.Background(), Options{Root: dir, Entry: "clusters/dev", Schemas: argoSchemas(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("finding: %s", f)
	}
	got := map[string]int{}
	for _, a := range apps {
		got[a.App.Name] = len(a.Objects)
	}
	// Infrastructure: 7 CRDs (ServiceOffer, 6 of the Gateway API) and the edge's 8 objects.
	want := map[string]int{"obol-dev": 0, "obol-dev-infrastructure": 15, "weather": 5, "qwen": 5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("applications and their object counts: %v, want %v", got, want)
	}
	for _, a := range apps {
		if a.App.Name != "weather" {
			continue
		}
		sp := a.App.Spec
		if sp.Destination.Namespace != "apps" || sp.SyncPolicy == nil || sp.SyncPolicy.Automated == nil ||
			!sp.SyncPolicy.Automated.Prune || !sp.SyncPolicy.Automated.SelfHeal || sp.SyncPolicy.Automated.AllowEmpty ||
			len(sp.Sources) != 2 || sp.Sources[0].Helm.ValueFiles[0] != "$values/applications/sell-http/weather/values.yaml" {
			t.Errorf("generated Application weather: %+v", sp)
		}
	}
	// The rendered wiring says allowEmpty: false out loud.
	b, err := os.ReadFile(filepath.Join(dir, "clusters/dev/argocd/offers.yaml"))
	if err != nil || !strings.Contains(string(b), "allowEmpty: false") {
		t.Errorf("offers.yaml lacks allowEmpty: false (%v)", err)
	}
}

// The schema checks are Argo CD's own: a wrong type or an unknown field in an Argo CD object,
// and a template that names a field the offers lack, are findings.
func TestArgoStackDefects(t *testing.T) {
	for _, tc := range []struct {
		name, file, from, to, want string
	}{
		{"wrong type", "clusters/dev/argocd/offers.yaml", "allowEmpty: false", `allowEmpty: "no"`, "allowEmpty"},
		{"unknown field", "clusters/dev/argocd/infrastructure.yaml", "  project: obol-dev", "  project: obol-dev\n  projekt: x", `unknown field "spec.projekt"`},
		{"missing template key", "clusters/dev/argocd/offers.yaml", "{{ .metadata.namespace }}", "{{ .metadata.team }}", "team"},
		{"values rejected by the chart", "applications/sell-http/weather/values.yaml", "      port: 8080", "      port: 99999", "spec.upstream.port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeStack(t, settings.EngineArgoCD, testOffers(t))
			p := filepath.Join(dir, filepath.FromSlash(tc.file))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.from) {
				t.Fatalf("%s lacks %q", tc.file, tc.from)
			}
			if err := os.WriteFile(p, []byte(strings.Replace(string(b), tc.from, tc.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			rep, _, err := ArgoRepo(context.Background(), Options{Root: dir, Entry: "clusters/dev", Schemas: argoSchemas(t)})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range rep.Errors() {
				found = found || strings.Contains(f.String(), tc.want)
			}
			if !found {
				t.Errorf("no error mentioning %q among %v", tc.want, rep.Findings)
			}
		})
	}
}

// Flux and Argo CD deploy the same gateway objects for the same offers: the Flux slices'
// HelmReleases (with the values their ConfigMaps carry) and the Argo CD Applications (with
// their value files) render the chart to identical Deployments, Services, ConfigMaps,
// HTTPRoutes and ServiceOffers.
func TestFluxAndArgoCDRenderTheSameGatewayObjects(t *testing.T) {
	offers := testOffers(t)
	schemas := argoSchemas(t)

	fluxDir := writeStack(t, settings.EngineFlux, offers)
	built, err := Objects(fluxDir, "applications")
	if err != nil {
		t.Fatal(err)
	}
	cms := map[string]*unstructured.Unstructured{}
	for _, o := range built {
		if o.GetKind() == "ConfigMap" {
			cms[o.GetName()] = o
		}
	}
	flux := map[string]map[string]string{}
	for _, o := range built {
		if o.GetKind() != "HelmRelease" {
			continue
		}
		release, _, _ := unstructured.NestedString(o.Object, "spec", "releaseName")
		ns, _, _ := unstructured.NestedString(o.Object, "spec", "targetNamespace")
		refs, _, _ := unstructured.NestedSlice(o.Object, "spec", "valuesFrom")
		values := map[string]any{}
		for _, r := range refs {
			m := r.(map[string]any)
			data, _, _ := unstructured.NestedString(cms[m["name"].(string)].Object, "data", m["valuesKey"].(string))
			var v map[string]any
			if err := yaml.Unmarshal([]byte(data), &v); err != nil {
				t.Fatal(err)
			}
			values = mergeValues(values, v)
		}
		objs, err := RenderChart(fluxDir, "charts/obol-gateway", release, ns, values, schemas)
		if err != nil {
			t.Fatal(err)
		}
		flux[o.GetName()] = byID(t, objs)
	}

	_, apps, err := ArgoRepo(context.Background(), Options{Root: writeStack(t, settings.EngineArgoCD, offers), Entry: "clusters/dev", Schemas: schemas})
	if err != nil {
		t.Fatal(err)
	}
	argo := map[string]map[string]string{}
	for _, a := range apps {
		if a.App.Labels["obol.org/offer"] != "" {
			argo[a.App.Name] = byID(t, a.Objects)
		}
	}
	if len(flux) != 2 || len(argo) != 2 {
		t.Fatalf("offers rendered: flux %d, argo %d; want 2 each", len(flux), len(argo))
	}
	for name, f := range flux {
		a := argo[name]
		var ids []string
		for id := range f {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		if len(ids) != 5 {
			t.Errorf("%s: flux rendered %v, want Deployment, Service, ConfigMap, HTTPRoute, ServiceOffer", name, ids)
		}
		for _, id := range ids {
			if a[id] != f[id] {
				t.Errorf("%s: %s differs between the engines:\nflux:\n%s\nargo:\n%s", name, id, f[id], a[id])
			}
		}
		if len(a) != len(f) {
			t.Errorf("%s: argo rendered %d objects, flux %d", name, len(a), len(f))
		}
	}
}

func byID(t *testing.T, objs []Rendered) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range objs {
		b, err := yaml.Marshal(r.Object.Object)
		if err != nil {
			t.Fatal(err)
		}
		out[r.Object.GetKind()+"/"+r.Object.GetNamespace()+"/"+r.Object.GetName()] = string(b)
	}
	return out
}
