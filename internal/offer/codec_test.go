package offer

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/obol/obol/api/v1alpha1"
)

const httpFile = "applications/sell-http/weather/offer.yaml"

const goodHTTPYAML = `apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata:
  name: weather
  namespace: default
spec:
  type: http
  upstream:
    service: weather-api
  payment:
    network: base-sepolia
    payTo: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    price:
      perRequest: "0.001"
`

const goodInferenceYAML = `# An inference offer, with comments and flow style.
---
apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata: {name: aeon, namespace: llm, labels: {team: models}}
spec:
  type: inference
  model: {name: aeon-ultimate, runtime: ollama}
  upstream: {url: "http://host.k3d.internal:11434"}
  payment:
    scheme: exact
    network: eip155:84532
    payTo: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    maxTimeoutSeconds: 300
    price: {perMTok: "23"}
    asset: {address: "0x0a09371a8b011d5110656ceBCc70603e53FD2c78", symbol: OBOL, decimals: 18,
            transferMethod: permit2, eip712Name: Obol Network, eip712Version: "1"}
  path: /services/aeon
  registration:
    enabled: true
    name: Aeon
    skills: [chat, "yes"]
  provenance: {framework: autoresearch, metricValue: "0.93"}
`

func TestDecodeGood(t *testing.T) {
	o, err := Decode(httpFile, []byte(goodHTTPYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := goodHTTP()
	want.TypeMeta = metav1.TypeMeta{APIVersion: "obol.org/v1alpha1", Kind: "ServiceOffer"}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("Decode:\n got %#v\nwant %#v", o, want)
	}

	o, err = Decode("applications/sell-inference/aeon/offer.yaml", []byte(goodInferenceYAML))
	if err != nil {
		t.Fatal(err)
	}
	if o.Spec.Payment.Asset.Decimals != 18 || o.Spec.Payment.Asset.EIP712Name != "Obol Network" || o.Spec.Registration.Skills[1] != "yes" || o.Labels["team"] != "models" || o.Spec.Provenance["metricValue"] != "0.93" {
		t.Fatalf("Decode inference: %+v", o)
	}
	Default(o)
	if err := Validate(o); err != nil {
		t.Fatalf("decoded inference offer is invalid: %v", err)
	}

	// JSON is YAML.
	j := `{"apiVersion":"obol.org/v1alpha1","kind":"ServiceOffer","metadata":{"name":"weather","namespace":"default"},` +
		`"spec":{"type":"http","upstream":{"service":"weather-api"},"payment":{"network":"base-sepolia","payTo":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","price":{"perRequest":"0.001"}}}}`
	oj, err := Decode("offer.json", []byte(j))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(oj, want) {
		t.Fatalf("Decode JSON differs from YAML")
	}
}

func TestDecodeErrors(t *testing.T) {
	withLine := func(line int, s string) string {
		lines := strings.Split(goodHTTPYAML, "\n")
		lines = append(lines[:line-1], append([]string{s}, lines[line-1:]...)...)
		return strings.Join(lines, "\n")
	}
	replace := func(old, new string) string {
		if !strings.Contains(goodHTTPYAML, old) {
			panic("no " + old)
		}
		return strings.Replace(goodHTTPYAML, old, new, 1)
	}
	cases := []struct {
		name  string
		in    string
		want  string // the exact error, or a part of it when partial
		part  bool
		line  int
		field string
	}{
		{
			name:  "unknown field with suggestion",
			in:    replace("    price:\n", "    prise:\n"),
			want:  httpFile + `:13: spec.payment.prise: unknown field; did you mean "price"?`,
			line:  13,
			field: "spec.payment.prise",
		},
		{
			name:  "unknown field, case",
			in:    replace("payTo:", "PayTo:"),
			want:  httpFile + `:12: spec.payment.PayTo: unknown field; did you mean "payTo"?`,
			line:  12,
			field: "spec.payment.PayTo",
		},
		{
			name: "unknown field, no close match",
			in:   withLine(7, "  colour: blue"),
			want: httpFile + `:7: spec.colour: unknown field; known fields: model, path, payment, provenance, registration, type, upstream`,
			line: 7, field: "spec.colour",
		},
		{
			name: "unquoted price",
			in:   replace(`perRequest: "0.001"`, `perRequest: 0.001`),
			want: httpFile + `:14: spec.payment.price.perRequest: expected a string, got the number 0.001; quote it: "0.001"`,
			line: 14, field: "spec.payment.price.perRequest",
		},
		{
			name: "quoted integer",
			in:   withLine(13, `    maxTimeoutSeconds: "300"`),
			want: httpFile + `:13: spec.payment.maxTimeoutSeconds: expected an integer, got the string "300"; write it without quotes`,
			line: 13, field: "spec.payment.maxTimeoutSeconds",
		},
		{
			name: "integer too large for int32",
			in:   replace("    service: weather-api\n", "    service: weather-api\n    port: 99999999999\n"),
			want: "spec.upstream.port: 99999999999 does not fit a 32-bit integer", part: true,
			line: 10, field: "spec.upstream.port",
		},
		{
			name: "mapping instead of string",
			in:   replace("network: base-sepolia", "network: {name: base}"),
			want: "spec.payment.network: expected a string, got a mapping", part: true,
			line: 11, field: "spec.payment.network",
		},
		{
			name: "string instead of mapping",
			in:   replace("  upstream:\n    service: weather-api\n", "  upstream: weather-api\n"),
			want: `spec.upstream: expected a mapping, got the string "weather-api"`, part: true,
			line: 8, field: "spec.upstream",
		},
		{
			name: "string instead of list",
			in:   withLine(15, "  registration: {skills: chat}"),
			want: `spec.registration.skills: expected a list, got the string "chat"`, part: true,
			line: 15, field: "spec.registration.skills",
		},
		{
			name: "bool expected",
			in:   withLine(15, "  registration: {enabled: yes}"),
			want: `spec.registration.enabled: expected true or false, got the string "yes"`, part: true,
			line: 15, field: "spec.registration.enabled",
		},
		{
			name: "wrong kind",
			in:   replace("kind: ServiceOffer", "kind: Deployment"),
			want: httpFile + `:2: kind: is the string "Deployment", not ServiceOffer: offer.yaml holds a ServiceOffer`,
			line: 2, field: "kind",
		},
		{
			name: "wrong apiVersion",
			in:   replace("apiVersion: obol.org/v1alpha1", "apiVersion: monetize.obol.org/v1alpha1"),
			want: httpFile + `:1: apiVersion: is the string "monetize.obol.org/v1alpha1", not obol.org/v1alpha1: offer.yaml holds a ServiceOffer`,
			line: 1, field: "apiVersion",
		},
		{
			name: "missing kind",
			in:   replace("kind: ServiceOffer\n", ""),
			want: httpFile + `:1: kind: is missing: add kind: ServiceOffer`,
			line: 1, field: "kind",
		},
		{
			name: "two documents",
			in:   goodHTTPYAML + "---\n" + goodHTTPYAML,
			want: httpFile + `:15: a second YAML document starts here`, part: true,
			line: 15,
		},
		{
			name: "trailing empty document",
			in:   goodHTTPYAML + "---\n",
			want: "a second YAML document", part: true,
			line: 15,
		},
		{name: "empty file", in: "", want: httpFile + ": is empty: it should hold one ServiceOffer"},
		{name: "only comments", in: "# nothing\n\n", want: httpFile + ": is empty: it should hold one ServiceOffer"},
		{name: "null document", in: "~\n", want: httpFile + ":1: is null, not a ServiceOffer", part: true, line: 1},
		{name: "list document", in: "- a\n- b\n", want: httpFile + ":1: is a list, not a ServiceOffer", part: true, line: 1},
		{name: "scalar document", in: "hello\n", want: httpFile + ":1: is a string, not a ServiceOffer", part: true, line: 1},
		{
			name: "not YAML",
			in:   "apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nspec: [\n",
			want: httpFile + ":3: not valid YAML: ", part: true, line: 3,
		},
		{name: "tabs", in: "apiVersion: obol.org/v1alpha1\n\tkind: x\n", want: "not valid YAML", part: true},
		{
			name: "duplicate key",
			in:   withLine(13, "    network: base"),
			want: httpFile + ":13: spec.payment.network: duplicate key (first on line 11): remove one",
			line: 13, field: "spec.payment.network",
		},
		{
			name: "status",
			in:   goodHTTPYAML + "status:\n  endpoint: /services/weather\n",
			want: httpFile + ":15: status: is written by the cluster, not offer.yaml: remove it",
			line: 15, field: "status",
		},
		{
			name: "server metadata",
			in:   replace("  namespace: default\n", "  namespace: default\n  uid: 1234\n"),
			want: httpFile + ":6: metadata.uid: is not kept in offer.yaml (it holds only metadata.name, metadata.namespace, metadata.labels, metadata.annotations): remove it",
			line: 6, field: "metadata.uid",
		},
		{
			name: "creationTimestamp",
			in:   replace("  namespace: default\n", "  namespace: default\n  creationTimestamp: null\n"),
			want: "metadata.creationTimestamp: is not kept in offer.yaml", part: true,
			line: 6, field: "metadata.creationTimestamp",
		},
		{
			name: "alias",
			in:   replace("  upstream:\n    service: weather-api\n", "  upstream:\n    service: &svc weather-api\n    namespace: *svc\n"),
			want: "spec.upstream.namespace: YAML aliases (*svc) are not supported", part: true,
			line: 10, field: "spec.upstream.namespace",
		},
		{
			name: "merge key",
			in:   replace("  upstream:\n    service: weather-api\n", "  upstream:\n    <<: {service: weather-api}\n"),
			want: "spec.upstream: YAML merge keys (<<) are not supported", part: true,
			line: 9, field: "spec.upstream",
		},
		{
			name: "custom tag",
			in:   replace("network: base-sepolia", "network: !chain base-sepolia"),
			want: "spec.payment.network: has the custom YAML tag !chain", part: true,
			line: 11, field: "spec.payment.network",
		},
		{
			name: "non-string map key",
			in:   withLine(15, "  provenance: {1: x}"),
			want: "spec.provenance: has the key 1, which is a number: quote it", part: true,
			line: 15, field: "spec.provenance",
		},
		{
			name: "unquoted date in a map",
			in:   withLine(15, "  provenance: {trained: 2026-01-02}"),
			want: `spec.provenance["trained"]: expected a string, got the date 2026-01-02; quote it: "2026-01-02"`, part: true,
			line: 15, field: `spec.provenance["trained"]`,
		},
		{
			name: "too large",
			in:   goodHTTPYAML + "# " + strings.Repeat("x", MaxFileSize) + "\n",
			want: "more than 1048576", part: true,
		},
	}
	for _, c := range cases {
		_, err := Decode(httpFile, []byte(c.in))
		if err == nil {
			t.Errorf("%s: Decode succeeded", c.name)
			continue
		}
		got := err.Error()
		if c.part && !strings.Contains(got, c.want) || !c.part && got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: not a *DecodeError: %T", c.name, err)
			continue
		}
		if de.File != httpFile || (c.line != 0 && de.Line != c.line) || (c.field != "" && de.Field != c.field) {
			t.Errorf("%s: DecodeError file %q line %d field %q; want line %d field %q", c.name, de.File, de.Line, de.Field, c.line, c.field)
		}
	}
}

func TestDecodeReportsSeveral(t *testing.T) {
	in := strings.Replace(strings.Replace(goodHTTPYAML, "    price:\n", "    prise:\n", 1), "  type: http\n", "  typ: http\n", 1)
	_, err := Decode(httpFile, []byte(in))
	if err == nil {
		t.Fatal("Decode succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], ":7: spec.typ:") || !strings.Contains(lines[1], ":13: spec.payment.prise:") {
		t.Fatalf("errors:\n%s", err)
	}
}

const goldenHTTP = `apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata:
  labels:
    app: weather
  name: weather
  namespace: default
spec:
  path: /services/weather
  payment:
    facilitator: https://x402.gcp.obol.tech
    maxTimeoutSeconds: 300
    network: base-sepolia
    payTo: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    price:
      perRequest: "0.001"
    scheme: exact
  type: http
  upstream:
    healthPath: /health
    namespace: default
    port: 8080
    service: weather-api
`

func TestEncode(t *testing.T) {
	o := goodHTTP()
	o.Labels = map[string]string{"app": "weather"}
	Default(o)
	// What the cluster writes never reaches the file.
	o.UID = "1234"
	o.ResourceVersion = "42"
	o.Generation = 3
	o.CreationTimestamp = metav1.Now()
	o.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	o.Status = v1alpha1.ServiceOfferStatus{Endpoint: "/services/weather", ObservedGeneration: 3}

	b1, err := Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	if string(b1) != goldenHTTP {
		t.Fatalf("Encode:\n%s\nwant:\n%s", b1, goldenHTTP)
	}
	b2, err := Encode(o)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("Encode is not stable: %v\n%s\n%s", err, b1, b2)
	}

	// Round trip, for both kinds of offer, defaulted or not.
	for _, o := range []*v1alpha1.ServiceOffer{goodHTTP(), goodInference(), func() *v1alpha1.ServiceOffer {
		o := goodInference()
		Default(o)
		o.Annotations = map[string]string{"note": "yes", "n": "0x0000000000000000000000000000000000000001"}
		o.Spec.Registration = &v1alpha1.RegistrationSpec{Enabled: true, Skills: []string{"on", "no", "~", "null", "0o17", "1e3", ""}, Description: strings.Repeat("long words ", 40)}
		o.Spec.Provenance = map[string]string{"multi": "line one\nline two\n", "quote": `"'`, "colon": "a: b"}
		return o
	}()} {
		b, err := Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode("offer.yaml", b)
		if err != nil {
			t.Fatalf("Decode(Encode(o)): %v\n%s", err, b)
		}
		want := *o
		want.APIVersion, want.Kind = v1alpha1.APIVersion, v1alpha1.ServiceOfferKind
		if !reflect.DeepEqual(back, &want) {
			t.Fatalf("round trip:\n got %#v\nwant %#v\n%s", back, &want, b)
		}
	}

	// An offer of another kind is refused.
	bad := goodHTTP()
	bad.Kind = "Deployment"
	if _, err := Encode(bad); err == nil {
		t.Errorf("Encode of a Deployment succeeded")
	}
	if _, err := Encode(nil); err == nil {
		t.Errorf("Encode(nil) succeeded")
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts encodes, decodes back to the same
// offer, and encodes to the same bytes again.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		goodHTTPYAML, goodInferenceYAML, goldenHTTP, "", "~", "- a", "a: [", "apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\n",
		goodHTTPYAML + "---\n" + goodHTTPYAML,
		strings.Replace(goodHTTPYAML, `"0.001"`, "0.001", 1),
		strings.Replace(goodHTTPYAML, "  type: http\n", "  type: http\n  provenance: {a: \"1\", b: \"yes\", c: \"\"}\n  registration: {skills: [x, \"on\"], enabled: true}\n", 1),
		strings.Replace(goodHTTPYAML, "  namespace: default\n", "  namespace: default\n  labels: {}\n  annotations: {a: \"0x10\"}\n", 1),
		strings.Replace(goodHTTPYAML, "    service: weather-api\n", "    service: weather-api\n    port: 0x1F90\n", 1),
		`{"apiVersion":"obol.org/v1alpha1","kind":"ServiceOffer","spec":{"payment":{"network":"","payTo":"","price":{}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Decode("offer.yaml", data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error is not a *DecodeError: %v", err)
			}
			return
		}
		b, err := Encode(o)
		if err != nil {
			t.Fatalf("Encode of a decoded offer failed: %v\ninput: %q", err, data)
		}
		back, err := Decode("offer.yaml", b)
		if err != nil {
			t.Fatalf("Decode(Encode(o)) failed: %v\ninput: %q\nencoded: %q", err, data, b)
		}
		if !reflect.DeepEqual(o, back) {
			t.Fatalf("round trip differs:\n got %#v\nwant %#v\ninput: %q\nencoded: %q", back, o, data, b)
		}
		b2, err := Encode(back)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("Encode not stable: %v\n%q\n%q", err, b, b2)
		}
		// Default and Validate must not panic on anything Decode accepts.
		Default(o)
		_ = Validate(o)
	})
}

// FuzzEncodeStrings: any (valid UTF-8) string in any string field, map key or list survives
// Encode and Decode unchanged. This guards against YAML scalars the encoder writes plain but
// the decoder reads as another type (yes, 0o17, 1e3, ~, dates, ...).
func FuzzEncodeStrings(f *testing.F) {
	for _, s := range []string{"", "yes", "on", "~", "null", "0o17", "0x1F", "1e3", ".5", "2026-01-02", "- a", "a: b", "#x", "'", "\"", "\n", " x ", "\t", "\t\n", "a\n\tb", "\u2028", "<<", "=", "!x", "&a", "*a", "%x", "@x", "`x", "0b101", "1_000", "+12", ".inf", "-.NaN", strings.Repeat("word ", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // encoding/json replaces invalid UTF-8; offer.yaml is UTF-8
		}
		o := goodInference()
		Default(o)
		o.Labels = map[string]string{s: s}
		o.Spec.Model.Name = s
		o.Spec.Payment.PayTo = s
		o.Spec.Registration = &v1alpha1.RegistrationSpec{Name: s, Skills: []string{s, "x"}, Metadata: map[string]string{s: s, "k": s}}
		o.Spec.Provenance = map[string]string{"k": s}
		b, err := Encode(o)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		back, err := Decode("offer.yaml", b)
		if err != nil {
			t.Fatalf("Decode(Encode(o)): %v\nstring %q\nencoded:\n%s", err, s, b)
		}
		if !reflect.DeepEqual(o, back) {
			t.Fatalf("round trip of %q differs\nencoded:\n%s", s, b)
		}
		// kubectl reads YAML with sigs.k8s.io/yaml (YAML 1.1): it must read the same offer.
		var viaSigs v1alpha1.ServiceOffer
		if err := sigsyaml.UnmarshalStrict(b, &viaSigs); err != nil {
			t.Fatalf("sigs.k8s.io/yaml cannot read the encoded offer: %v\nencoded:\n%s", err, b)
		}
		if !reflect.DeepEqual(&viaSigs, o) {
			t.Fatalf("sigs.k8s.io/yaml reads %q differently\nencoded:\n%s", s, b)
		}
	})
}
