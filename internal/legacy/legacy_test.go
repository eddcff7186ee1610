package legacy

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/offer"
)

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

func readFixture(t *testing.T) (map[string]*v1alpha1.ServiceOffer, map[string][]Problem) {
	t.Helper()
	res := Read(os.DirFS("testdata/config"))
	items := map[string]*v1alpha1.ServiceOffer{}
	for _, it := range res.Items {
		if _, dup := items[it.Path]; dup {
			t.Fatalf("two items from %s", it.Path)
		}
		if err := offer.Validate(it.Offer); err != nil {
			t.Errorf("%s: returned offer does not validate: %v", it.Path, err)
		}
		items[it.Path] = it.Offer
	}
	probs := map[string][]Problem{}
	for _, p := range res.Problems {
		probs[p.Path] = append(probs[p.Path], p)
	}
	return items, probs
}

// kinds returns the problem kinds of a path, sorted.
func kinds(ps []Problem) []Kind {
	var out []Kind
	for _, p := range ps {
		out = append(out, p.Kind)
	}
	slices.Sort(out)
	return out
}

func hasReason(ps []Problem, k Kind, sub string) bool {
	for _, p := range ps {
		if p.Kind == k && strings.Contains(p.Reason, sub) {
			return true
		}
	}
	return false
}

func TestReadOutcomes(t *testing.T) {
	items, probs := readFixture(t)
	wantItems := []string{
		"inference/oldvm/config.json", "inference/perreq/config.json", "inference/qwen/config.json",
		"sell-http/apps__demo.yaml", "sell-http/default__drain.yaml", "sell-http/default__weather.yaml",
	}
	var got []string
	for p := range items {
		got = append(got, p)
	}
	slices.Sort(got)
	if !slices.Equal(got, wantItems) {
		t.Errorf("items = %v, want %v", got, wantItems)
	}
	// The files that are not imported, and why.
	for path, want := range map[string]struct {
		kind Kind
		sub  string
	}{
		"inference/gone/config.json":     {Skipped, "deleted_at"},
		"inference/broken/config.json":   {Malformed, "not a descriptor"},
		"inference/Bad_Name/config.json": {Rejected, `metadata.name: "Bad_Name" is not a DNS-1123 label`},
		"inference/tee/config.json":      {Rejected, "vm_mode=true, tee_type=\"tdx\""},
		"inference/obolbase/config.json": {Rejected, `asset_symbol "OBOL" is not a token obol knows on base`},
		"inference/README":               {Skipped, "not a descriptor directory"},
		"sell-http/agents__helper.yaml":  {Skipped, "agent offer"},
		"sell-http/default__broken.yaml": {Malformed, "not valid YAML"},
		"sell-http/default__My_API.yaml": {Rejected, `"my-api"`},
		"sell-http/notes.txt":            {Skipped, "not a .yaml file"},
		"sell-http/archive":              {Skipped, "is a directory"},
	} {
		ps := probs[path]
		if len(ps) != 1 || !hasReason(ps, want.kind, want.sub) {
			t.Errorf("%s: problems %v, want one %s containing %q", path, ps, want.kind, want.sub)
		}
		if _, ok := items[path]; ok {
			t.Errorf("%s: imported, want not", path)
		}
	}
	// A rejected offer's notes would be noise: only the rejection is reported.
	if k := kinds(probs["inference/Bad_Name/config.json"]); !slices.Equal(k, []Kind{Rejected}) {
		t.Errorf("Bad_Name kinds = %v", k)
	}
}

func TestReadInferenceFields(t *testing.T) {
	items, probs := readFixture(t)
	o := items["inference/qwen/config.json"]
	if o == nil {
		t.Fatal("qwen not imported")
	}
	want := &v1alpha1.ServiceOffer{}
	want.APIVersion, want.Kind = v1alpha1.APIVersion, v1alpha1.ServiceOfferKind
	want.Name, want.Namespace = "qwen", "llm" // name (dir), service_namespace
	want.Spec = v1alpha1.ServiceOfferSpec{
		Type:     v1alpha1.OfferTypeInference,
		Model:    &v1alpha1.ModelSpec{Name: "qwen3:8b", Runtime: "ollama"},      // model_name
		Upstream: &v1alpha1.UpstreamSpec{URL: "http://host.k3d.internal:11434"}, // upstream_url
		Path:     "/services/qwen",
		Payment: v1alpha1.PaymentSpec{
			Scheme: "exact", MaxTimeoutSeconds: 300,
			Network:     "base-sepolia",                    // chain
			PayTo:       payTo,                             // wallet_address
			Facilitator: "https://facilitator.example.com", // facilitator_url
			Price:       v1alpha1.PriceSpec{PerMTok: "23"}, // price_per_mtok wins over the derived price_per_request
			Asset: &v1alpha1.AssetSpec{ // asset_symbol OBOL on base-sepolia
				Address: "0x0a09371a8b011d5110656ceBCc70603e53FD2c78", Symbol: "OBOL", Decimals: 18,
				TransferMethod: "permit2", EIP712Name: "Obol Network", EIP712Version: "1",
			},
		},
		Registration: &v1alpha1.RegistrationSpec{ // registration
			Enabled: true, Name: "Qwen on Obol", Description: "Obol Stack service qwen",
			Image: "https://example.com/q.png", Skills: []string{"natural_language_processing/text_generation"},
			Domains: []string{"technology"}, Metadata: map[string]string{"gpu": "rtx4090"},
		},
		Provenance: map[string]string{ // provenance; numbers become strings
			"framework": "autoresearch", "metricName": "val_bpb", "metricValue": "0.9731",
			"experimentId": "exp-7", "trainHash": "abc123", "paramCount": "8000000000",
		},
	}
	if !reflect.DeepEqual(o, want) {
		a, _ := offer.Encode(o)
		b, _ := offer.Encode(want)
		t.Errorf("qwen:\n%s\nwant:\n%s", a, b)
	}
	ps := probs["inference/qwen/config.json"]
	for _, want := range []struct {
		k   Kind
		sub string
	}{
		{Changed, "http://host.k3d.internal:11434"},
		{Dropped, "no_payment_gate"},
		{Dropped, "registration.services"},
	} {
		if !hasReason(ps, want.k, want.sub) {
			t.Errorf("qwen: no %s note about %q in %v", want.k, want.sub, ps)
		}
	}
	if len(ps) != 3 {
		t.Errorf("qwen: %d notes, want 3 (listen_addr, timestamps and unknown keys are not worth one): %v", len(ps), ps)
	}

	pr := items["inference/perreq/config.json"]
	if pr.Spec.Payment.Price != (v1alpha1.PriceSpec{PerRequest: "0.001"}) || pr.Spec.Payment.Asset != nil ||
		pr.Spec.Upstream.URL != "http://vllm.models.svc.cluster.local:8000" || pr.Spec.Payment.Network != "base" {
		t.Errorf("perreq: %+v", pr.Spec)
	}
	if ps := probs["inference/perreq/config.json"]; len(ps) != 0 {
		t.Errorf("perreq: unexpected notes %v", ps)
	}

	old := probs["inference/oldvm/config.json"]
	for _, k := range append([]string{"approx_tokens_per_request"}, vmKeys...) {
		if !hasReason(old, Dropped, k) {
			t.Errorf("oldvm: no dropped note for %s", k)
		}
	}
	if items["inference/oldvm/config.json"].Spec.Upstream.URL != "http://host.k3d.internal:11435" {
		t.Errorf("oldvm upstream = %s", items["inference/oldvm/config.json"].Spec.Upstream.URL)
	}
}

func TestReadLedgerShapes(t *testing.T) {
	items, probs := readFixture(t)
	w := items["sell-http/default__weather.yaml"]
	if w.Name != "weather" || w.Namespace != "default" || w.Spec.Type != v1alpha1.OfferTypeHTTP {
		t.Errorf("weather meta: %s/%s %s", w.Namespace, w.Name, w.Spec.Type)
	}
	if _, ok := w.Annotations[lastApplied]; ok || w.Annotations["example.com/note"] != "weather api" {
		t.Errorf("weather annotations = %v", w.Annotations)
	}
	if w.Labels["app.kubernetes.io/managed-by"] != "obol" || w.UID != "" || w.ResourceVersion != "" {
		t.Errorf("weather metadata not trimmed to name, namespace, labels, annotations: %+v", w.ObjectMeta)
	}
	if u := w.Spec.Upstream; u.Service != "weather-api" || u.Port != 8080 || u.HealthPath != "/health" {
		t.Errorf("weather upstream = %+v", u)
	}
	if w.Spec.Registration == nil || !w.Spec.Registration.Enabled || w.Spec.Provenance["source"] != "manual" {
		t.Errorf("weather registration/provenance = %+v %v", w.Spec.Registration, w.Spec.Provenance)
	}
	if !hasReason(probs["sell-http/default__weather.yaml"], Dropped, "supportedTrust") {
		t.Errorf("weather: supportedTrust not reported")
	}

	d := items["sell-http/apps__demo.yaml"]
	if d.Namespace != "apps" || d.Spec.Payment.Price.PerHour != "0.5" || d.Spec.Upstream.Service != "demo-backend" {
		t.Errorf("demo = %+v", d)
	}
	dp := probs["sell-http/apps__demo.yaml"]
	if !hasReason(dp, Dropped, `Deployment "demo-backend"`) || !hasReason(dp, Dropped, `Namespace "apps"`) {
		t.Errorf("demo: backend and namespace not reported: %v", dp)
	}

	dr := probs["sell-http/default__drain.yaml"]
	if !hasReason(dr, Dropped, "spec.drainAt") || !hasReason(dr, Dropped, "spec.drainGracePeriod") {
		t.Errorf("drain: %v", dr)
	}
	if items["sell-http/default__drain.yaml"].Spec.Upstream.Namespace != "default" {
		t.Errorf("drain: upstream namespace not defaulted from the offer's")
	}
}

func TestReadMissingStores(t *testing.T) {
	res := Read(os.DirFS(t.TempDir()))
	if len(res.Items) != 0 || len(res.Problems) != 0 {
		t.Errorf("empty dir: %+v", res)
	}
}

func TestReadDuplicateName(t *testing.T) {
	fsys := fstestFS(map[string]string{
		"inference/dup/config.json": `{"wallet_address":"` + payTo + `","price_per_request":"0.001","model_name":"m:1b"}`,
		"sell-http/default__dup.yaml": `apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata: {name: dup, namespace: default}
spec: {upstream: {service: dup}, payment: {network: base, payTo: "` + payTo + `", price: {perRequest: "0.001"}}}
`,
	})
	res := Read(fsys)
	if len(res.Items) != 1 || res.Items[0].Path != "inference/dup/config.json" {
		t.Fatalf("items = %+v", res.Items)
	}
	if !hasReason(res.Problems, Rejected, "also used by inference/dup/config.json") {
		t.Errorf("duplicate not reported: %v", res.Problems)
	}
}

func TestReadLedgerUnknownField(t *testing.T) {
	fsys := fstestFS(map[string]string{
		"sell-http/default__x.yaml": `apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata: {name: x, namespace: default}
spec: {upstream: {service: x}, frobnicate: 1, payment: {network: base, payTo: "` + payTo + `", price: {perRequest: 0.001}}}
`,
		"sell-http/default__cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
		"sell-http/default__s.yaml":  "just a string\n",
	})
	_, probs := ReadSellLedger(fsys)
	by := map[string][]Problem{}
	for _, p := range probs {
		by[p.Path] = append(by[p.Path], p)
	}
	if !hasReason(by["sell-http/default__x.yaml"], Rejected, "does not fit") {
		t.Errorf("x: %v", by["sell-http/default__x.yaml"])
	}
	if !hasReason(by["sell-http/default__cm.yaml"], Malformed, "not a ServiceOffer") {
		t.Errorf("cm: %v", by["sell-http/default__cm.yaml"])
	}
	if !hasReason(by["sell-http/default__s.yaml"], Malformed, "not a manifest") {
		t.Errorf("s: %v", by["sell-http/default__s.yaml"])
	}
}
