package offer

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/api/v1alpha1"
)

const (
	payTo       = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	usdcBase    = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
	obolSepolia = "0x0a09371a8b011d5110656ceBCc70603e53FD2c78"
)

// goodHTTP is a minimal valid http offer, as `obol sell http` would write it before Default.
func goodHTTP() *v1alpha1.ServiceOffer {
	return &v1alpha1.ServiceOffer{
		ObjectMeta: metav1.ObjectMeta{Name: "weather", Namespace: "default"},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeHTTP,
			Upstream: &v1alpha1.UpstreamSpec{Service: "weather-api"},
			Payment: v1alpha1.PaymentSpec{
				Network: "base-sepolia",
				PayTo:   payTo,
				Price:   v1alpha1.PriceSpec{PerRequest: "0.001"},
			},
		},
	}
}

// goodInference is a minimal valid inference offer.
func goodInference() *v1alpha1.ServiceOffer {
	return &v1alpha1.ServiceOffer{
		ObjectMeta: metav1.ObjectMeta{Name: "qwen"},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeInference,
			Model:    &v1alpha1.ModelSpec{Name: "qwen3:8b"},
			Upstream: &v1alpha1.UpstreamSpec{URL: "http://host.k3d.internal:11434"},
			Payment: v1alpha1.PaymentSpec{
				Network: "base",
				PayTo:   payTo,
				Price:   v1alpha1.PriceSpec{PerMTok: "0.5"},
			},
		},
	}
}

func TestDefaultHTTP(t *testing.T) {
	o := goodHTTP()
	o.Spec.Type = ""
	o.Spec.Payment.Network = "eip155:84532"
	Default(o)
	want := v1alpha1.ServiceOffer{
		TypeMeta:   metav1.TypeMeta{APIVersion: "obol.org/v1alpha1", Kind: "ServiceOffer"},
		ObjectMeta: metav1.ObjectMeta{Name: "weather", Namespace: "default"},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeHTTP,
			Upstream: &v1alpha1.UpstreamSpec{Service: "weather-api", Namespace: "default", Port: 8080, HealthPath: "/health"},
			Payment: v1alpha1.PaymentSpec{
				Scheme:            "exact",
				Network:           "base-sepolia",
				PayTo:             payTo,
				MaxTimeoutSeconds: 300,
				Price:             v1alpha1.PriceSpec{PerRequest: "0.001"},
				Facilitator:       "https://x402.gcp.obol.tech",
			},
			Path: "/services/weather",
		},
	}
	if !reflect.DeepEqual(*o, want) {
		t.Fatalf("Default:\n got %+v\nwant %+v", *o, want)
	}
}

func TestDefaultInference(t *testing.T) {
	o := goodInference()
	o.Spec.Payment.Network = ""
	Default(o)
	if o.Namespace != "llm" || o.Spec.Model.Runtime != "ollama" || o.Spec.Path != "/services/qwen" || o.Spec.Payment.Network != DefaultChain {
		t.Fatalf("Default inference: %+v", o)
	}
	if o.Spec.Upstream.Port != 0 || o.Spec.Upstream.HealthPath != "" || o.Spec.Upstream.Namespace != "" {
		t.Errorf("Default gave an inference offer http upstream defaults: %+v", o.Spec.Upstream)
	}
	// Namespace is only defaulted when empty.
	o2 := goodInference()
	o2.Namespace = "models"
	Default(o2)
	if o2.Namespace != "models" {
		t.Errorf("Default overwrote metadata.namespace: %q", o2.Namespace)
	}
}

func TestDefaultKeepsValues(t *testing.T) {
	o := goodHTTP()
	o.Spec.Payment.Scheme = "upto"
	o.Spec.Payment.MaxTimeoutSeconds = 60
	o.Spec.Payment.Facilitator = "https://facilitator.x402.rs"
	o.Spec.Path = "/api/weather"
	o.Spec.Upstream = &v1alpha1.UpstreamSpec{Service: "w", Namespace: "apis", Port: 9000, HealthPath: "/ready"}
	o.Spec.Payment.Network = "no-such-chain"
	Default(o)
	p := o.Spec.Payment
	if p.Scheme != "upto" || p.MaxTimeoutSeconds != 60 || p.Facilitator != "https://facilitator.x402.rs" || o.Spec.Path != "/api/weather" || p.Network != "no-such-chain" {
		t.Errorf("Default overwrote payment values: %+v path %s", p, o.Spec.Path)
	}
	if u := o.Spec.Upstream; *u != (v1alpha1.UpstreamSpec{Service: "w", Namespace: "apis", Port: 9000, HealthPath: "/ready"}) {
		t.Errorf("Default overwrote upstream: %+v", u)
	}
	// Aliases and odd case become the canonical name.
	for in, want := range map[string]string{"BASE": "base", "mainnet": "ethereum", "eip155:42161": "arbitrum-one"} {
		o := goodHTTP()
		o.Spec.Payment.Network = in
		Default(o)
		if o.Spec.Payment.Network != want {
			t.Errorf("Default network %q = %q, want %q", in, o.Spec.Payment.Network, want)
		}
	}
	Default(nil) // no panic
}

func TestDefaultIdempotent(t *testing.T) {
	for _, mk := range []func() *v1alpha1.ServiceOffer{goodHTTP, goodInference, func() *v1alpha1.ServiceOffer { return &v1alpha1.ServiceOffer{} }, func() *v1alpha1.ServiceOffer {
		o := goodInference()
		o.Spec.Model = nil
		o.Spec.Type = "agent"
		return o
	}} {
		once := mk()
		Default(once)
		twice := mk()
		Default(twice)
		Default(twice)
		if !reflect.DeepEqual(once, twice) {
			t.Errorf("Default twice != once:\n once %+v\ntwice %+v", once, twice)
		}
	}
}
