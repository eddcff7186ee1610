package offer

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/obol/obol/api/v1alpha1"
)

func TestValidateGood(t *testing.T) {
	cases := map[string]func() *v1alpha1.ServiceOffer{
		"http minimal":      goodHTTP,
		"inference minimal": goodInference,
		"http defaulted": func() *v1alpha1.ServiceOffer {
			o := goodHTTP()
			Default(o)
			return o
		},
		"inference defaulted": func() *v1alpha1.ServiceOffer {
			o := goodInference()
			Default(o)
			return o
		},
		"http full, OBOL per hour": func() *v1alpha1.ServiceOffer {
			o := goodHTTP()
			o.Labels = map[string]string{"app.kubernetes.io/name": "weather"}
			o.Annotations = map[string]string{"example.com/note": "anything goes here"}
			o.Spec.Path = "/api/v1/weather_now.json"
			o.Spec.Upstream = &v1alpha1.UpstreamSpec{Service: "weather-api", Namespace: "apis", Port: 80, HealthPath: "/healthz"}
			o.Spec.Payment.Network = "eip155:84532"
			o.Spec.Payment.Scheme = "exact"
			o.Spec.Payment.MaxTimeoutSeconds = 86400
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: obolSepolia, Symbol: "OBOL", Decimals: 18, TransferMethod: "permit2", EIP712Name: "Obol Network", EIP712Version: "1"}
			o.Spec.Payment.Price = v1alpha1.PriceSpec{PerHour: "0.000000000000000012"}
			o.Spec.Payment.Facilitator = "https://x402.org/facilitator"
			o.Spec.Registration = &v1alpha1.RegistrationSpec{Enabled: true, Name: "Weather", Description: "Forecasts", Skills: []string{"weather"}, Domains: []string{"climate"}, Metadata: map[string]string{"k": "v"}}
			o.Spec.Provenance = map[string]string{"framework": "none"}
			return o
		},
		"inference full": func() *v1alpha1.ServiceOffer {
			o := goodInference()
			o.Namespace = "models"
			o.Spec.Model = &v1alpha1.ModelSpec{Name: "AEON-7--Qwen3.6_q4.gguf", Runtime: "vllm"}
			o.Spec.Upstream = &v1alpha1.UpstreamSpec{URL: "https://models.example.com/v1", HealthPath: "/health"}
			o.Spec.Payment.Network = "ETHEREUM"
			o.Spec.Payment.PayTo = strings.ToLower(payTo)
			o.Spec.Payment.Price = v1alpha1.PriceSpec{PerRequest: "123456789012345678901234567890.000001"}
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: strings.ToLower(usdcEthereum), Decimals: 6, EIP712Name: "USD Coin", EIP712Version: "2"}
			o.Spec.Provenance = map[string]string{"framework": "autoresearch", "metricValue": "0.93", "trainHash": strings.Repeat("a", 64)}
			return o
		},
		"unknown eip3009 token with its domain": func() *v1alpha1.ServiceOffer {
			o := goodHTTP()
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: "0x1111111111111111111111111111111111111111", Decimals: 2, EIP712Name: "Token", EIP712Version: "1"}
			o.Spec.Payment.Price = v1alpha1.PriceSpec{PerRequest: "0.01"}
			return o
		},
		"upper-case payTo": func() *v1alpha1.ServiceOffer {
			o := goodHTTP()
			o.Spec.Payment.PayTo = "0x" + strings.ToUpper(payTo[2:])
			return o
		},
		"per-MTok price of exactly one unit per request": func() *v1alpha1.ServiceOffer {
			o := goodInference()
			o.Spec.Payment.Price = v1alpha1.PriceSpec{PerMTok: "0.001"}
			return o
		},
	}
	for _, fac := range []string{"http://facilitator.x402.svc", "http://facilitator.x402.svc.cluster.local:8080", "http://x402.cluster.local", "http://host.k3d.internal:4021", "http://host.docker.internal", "https://facilitator.example.com:8443/base/path"} {
		cases["facilitator "+fac] = func() *v1alpha1.ServiceOffer {
			o := goodHTTP()
			o.Spec.Payment.Facilitator = fac
			return o
		}
	}
	for name, mk := range cases {
		o := mk()
		before := fmt.Sprintf("%#v", o)
		if err := Validate(o); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if after := fmt.Sprintf("%#v", o); after != before {
			t.Errorf("%s: Validate modified the offer", name)
		}
	}
}

const usdcEthereum = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"

func TestValidateBad(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	type tc struct {
		name   string
		base   func() *v1alpha1.ServiceOffer
		mutate func(o *v1alpha1.ServiceOffer)
		field  string
		value  string
		fixHas string // optional: a part of the fix
	}
	http, inf := goodHTTP, goodInference
	cases := []tc{
		{"missing name", http, func(o *v1alpha1.ServiceOffer) { o.Name = "" }, "metadata.name", "", ""},
		{"name not a label", http, func(o *v1alpha1.ServiceOffer) { o.Name = "My_Offer" }, "metadata.name", "My_Offer", `"my-offer"`},
		{"name too long", http, func(o *v1alpha1.ServiceOffer) { o.Name = long(54) }, "metadata.name", long(54), "53"},
		{"namespace not a label", http, func(o *v1alpha1.ServiceOffer) { o.Namespace = "Default" }, "metadata.namespace", "Default", `"default"`},
		{"missing namespace", http, func(o *v1alpha1.ServiceOffer) { o.Namespace = "" }, "metadata.namespace", "", ""},
		{"bad label key", http, func(o *v1alpha1.ServiceOffer) { o.Labels = map[string]string{"bad key": "v"} }, `metadata.labels["bad key"]`, "bad key", ""},
		{"bad label value", http, func(o *v1alpha1.ServiceOffer) { o.Labels = map[string]string{"k": "a b"} }, `metadata.labels["k"]`, "a b", ""},
		{"wrong apiVersion", http, func(o *v1alpha1.ServiceOffer) { o.APIVersion = "obol.org/v1" }, "apiVersion", "obol.org/v1", "obol.org/v1alpha1"},
		{"wrong kind", http, func(o *v1alpha1.ServiceOffer) { o.Kind = "Service" }, "kind", "Service", "ServiceOffer"},
		{"unsupported type", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Type = "agent" }, "spec.type", "agent", "http or inference"},
		{"unknown type", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Type = "banana" }, "spec.type", "banana", "http or inference"},
		{"missing payTo", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.PayTo = "" }, "spec.payment.payTo", "", "0x"},
		{"short payTo", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.PayTo = "0x12" }, "spec.payment.payTo", "0x12", "40 hex digits"},
		{"payTo not hex", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.PayTo = "0xZZZeb6053F3E94C9b9A09f33669435E7Ef1BeAed" }, "spec.payment.payTo", "0xZZZeb6053F3E94C9b9A09f33669435E7Ef1BeAed", ""},
		{"payTo bad checksum", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.PayTo = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD" }, "spec.payment.payTo", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", payTo},
		{"payTo zero address", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.PayTo = "0x0000000000000000000000000000000000000000" }, "spec.payment.payTo", "0x0000000000000000000000000000000000000000", ""},
		{"unknown network", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Network = "solana" }, "spec.payment.network", "solana", "base-sepolia"},
		{"unknown CAIP-2", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Network = "eip155:10" }, "spec.payment.network", "eip155:10", "eip155:8453"},
		{"scheme", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Scheme = "upto" }, "spec.payment.scheme", "upto", "exact"},
		{"timeout too long", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.MaxTimeoutSeconds = 86401 }, "spec.payment.maxTimeoutSeconds", "86401", ""},
		{"timeout negative", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.MaxTimeoutSeconds = -1 }, "spec.payment.maxTimeoutSeconds", "-1", ""},
		{"no price", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price = v1alpha1.PriceSpec{} }, "spec.payment.price", "", "set one price model"},
		{"two prices", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price.PerMTok = "1" }, "spec.payment.price", "perRequest, perMTok", "set one price model"},
		{"output price alone", inf, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Price = v1alpha1.PriceSpec{OutputPerMTok: "2"}
		}, "spec.payment.price", "", "inputPerMTok"},
		{"input price on http", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Price = v1alpha1.PriceSpec{InputPerMTok: "1", PerMTok: "2"}
		}, "spec.payment.price.inputPerMTok", "1", "perRequest or perHour"},
		{"token cap without token prices", inf, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Price = v1alpha1.PriceSpec{PerRequest: "0.001", MaxOutputTokens: 10}
		}, "spec.payment.price.maxOutputTokens", "10", "perMTok"},
		{"negative token cap", inf, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Price = v1alpha1.PriceSpec{PerMTok: "1", MaxInputTokens: -1}
		}, "spec.payment.price.maxInputTokens", "-1", "positive"},
		{"price not decimal", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price.PerRequest = "1e3" }, "spec.payment.price.perRequest", "1e3", ""},
		{"price with comma", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price.PerRequest = "0,5" }, "spec.payment.price.perRequest", "0,5", ""},
		{"negative price", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price.PerMTok = "-1" }, "spec.payment.price.perMTok", "-1", ""},
		{"zero price", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price.PerRequest = "0.000" }, "spec.payment.price.perRequest", "0.000", "greater than zero"},
		{"too many digits", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price.PerRequest = "0.0000015" }, "spec.payment.price.perRequest", "0.0000015", `"0.000002"`},
		{"per-MTok below one unit a request", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price = v1alpha1.PriceSpec{PerMTok: "0.000001"} }, "spec.payment.price.perMTok", "0.000001", "at least one atomic unit"},
		{"too many digits per MTok", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price.PerMTok = "0.1234567" }, "spec.payment.price.perMTok", "0.1234567", "6 fraction digits"},
		{"too many digits for OBOL", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: obolSepolia, Symbol: "OBOL", Decimals: 18, TransferMethod: "permit2"}
			o.Spec.Payment.Price.PerRequest = "0." + strings.Repeat("0", 18) + "1"
		}, "spec.payment.price.perRequest", "0." + strings.Repeat("0", 18) + "1", "18 fraction digits"},
		{"per hour for inference", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price = v1alpha1.PriceSpec{PerHour: "1"} }, "spec.payment.price.perHour", "1", "perRequest or perMTok"},
		{"price overflows uint256", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Price.PerRequest = strings.Repeat("9", 78) }, "spec.payment.price.perRequest", strings.Repeat("9", 78), ""},
		{"asset address", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: "0xnothex", Decimals: 6, TransferMethod: "permit2"}
		}, "spec.payment.asset.address", "0xnothex", ""},
		{"asset address checksum", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: "0x0A09371a8b011d5110656ceBCc70603e53FD2c78", Decimals: 18, TransferMethod: "permit2"}
		}, "spec.payment.asset.address", "0x0A09371a8b011d5110656ceBCc70603e53FD2c78", obolSepolia},
		{"asset decimals", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: "0x1111111111111111111111111111111111111111", Decimals: 37, TransferMethod: "permit2"}
		}, "spec.payment.asset.decimals", "37", ""},
		{"known asset wrong decimals", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Network = "base"
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: usdcBase, Decimals: 18, EIP712Name: "USD Coin", EIP712Version: "2"}
		}, "spec.payment.asset.decimals", "18", "decimals: 6"},
		{"known asset wrong EIP-712 name", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Network = "base"
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: usdcBase, Decimals: 6, EIP712Name: "USDC", EIP712Version: "2"}
		}, "spec.payment.asset.eip712Name", "USDC", `"USD Coin"`},
		{"known asset wrong transfer method", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: obolSepolia, Decimals: 18, TransferMethod: "eip3009", EIP712Name: "Obol Network", EIP712Version: "1"}
		}, "spec.payment.asset.transferMethod", "eip3009", "permit2"},
		{"asset transfer method", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: "0x1111111111111111111111111111111111111111", Decimals: 6, TransferMethod: "magic"}
		}, "spec.payment.asset.transferMethod", "magic", "permit2"},
		{"eip3009 asset without domain version", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Payment.Asset = &v1alpha1.AssetSpec{Address: "0x1111111111111111111111111111111111111111", Decimals: 6, EIP712Name: "Token"}
		}, "spec.payment.asset.eip712Version", "", "version"},
		{"facilitator plain http", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "http://facilitator.example.com" }, "spec.payment.facilitator", "http://facilitator.example.com", "https"},
		{"facilitator http to a look-alike host", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "http://localhost.example.com" }, "spec.payment.facilitator", "http://localhost.example.com", "https"},
		{"facilitator credentials", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "https://user:pw@x402.example.com" }, "spec.payment.facilitator", "https://user:xxxxx@x402.example.com", "user:password@"},
		{"facilitator query", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "https://x402.example.com/?key=1" }, "spec.payment.facilitator", "https://x402.example.com/?key=xxxxx", ""},
		{"facilitator fragment", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "https://x402.example.com/#x" }, "spec.payment.facilitator", "https://x402.example.com/#x", ""},
		{"facilitator scheme", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "ftp://x402.example.com" }, "spec.payment.facilitator", "ftp://x402.example.com", ""},
		{"facilitator no host", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "https:///path" }, "spec.payment.facilitator", "https:///path", ""},
		{"facilitator port", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "https://x402.example.com:99999" }, "spec.payment.facilitator", "https://x402.example.com:99999", ""},
		{"path dot-dot", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "/services/../admin" }, "spec.path", "/services/../admin", ""},
		{"path dot", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "/services/./x" }, "spec.path", "/services/./x", ""},
		{"path relative", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "services/x" }, "spec.path", "services/x", ""},
		{"path characters", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "/services/x?y" }, "spec.path", "/services/x?y", ""},
		{"path double slash", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "/services//x" }, "spec.path", "/services//x", "/services/x"},
		{"path root", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "/" }, "spec.path", "/", ""},
		{"path healthz", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "/healthz" }, "spec.path", "/healthz", "/services/"},
		{"path under well-known", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "/.well-known/x402" }, "spec.path", "/.well-known/x402", "/services/"},
		{"path metrics", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "/metrics" }, "spec.path", "/metrics", ""},
		{"path too long", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Path = "/" + long(256) }, "spec.path", "/" + long(256), ""},
		{"http without service", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.Service = "" }, "spec.upstream.service", "", ""},
		{"http without upstream", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream = nil }, "spec.upstream.service", "", ""},
		{"http service name", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.Service = "1api" }, "spec.upstream.service", "1api", `"svc-1api"`},
		{"http upstream namespace", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.Namespace = "Bad_NS" }, "spec.upstream.namespace", "Bad_NS", `"bad-ns"`},
		{"http port", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.Port = 70000 }, "spec.upstream.port", "70000", ""},
		{"http health path", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.HealthPath = "health" }, "spec.upstream.healthPath", "health", "/health"},
		{"http with url and service", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.URL = "https://x:1" }, "spec.upstream.url", "https://x:1", "forward to one"},
		{"http with a plain-http public url", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Upstream = &v1alpha1.UpstreamSpec{URL: "http://api.example.com"}
		}, "spec.upstream.url", "http://api.example.com", "use https"},
		{"http with a loopback url", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Upstream = &v1alpha1.UpstreamSpec{URL: "http://127.0.0.1:8080"}
		}, "spec.upstream.url", "http://127.0.0.1:8080", "host.k3d.internal:8080"},
		{"http with a URL as service", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.Service = "https://api.example.com" }, "spec.upstream.service", "https://api.example.com", "--upstream-url https://api.example.com"},
		{"http with model", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Model = &v1alpha1.ModelSpec{Name: "qwen3:8b"} }, "spec.model", "qwen3:8b", "inference"},
		{"inference without model", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Model = nil }, "spec.model.name", "", "qwen3:8b"},
		{"model with slash", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Model.Name = "AEON-7/Qwen3.6" }, "spec.model.name", "AEON-7/Qwen3.6", "AEON-7--Qwen3.6"},
		{"model too long", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Model.Name = long(129) }, "spec.model.name", long(129), ""},
		{"model bad start", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Model.Name = "-qwen" }, "spec.model.name", "-qwen", ""},
		{"model bad character", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Model.Name = "qwen 3" }, "spec.model.name", "qwen 3", ""},
		{"runtime", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Model.Runtime = "llamacpp" }, "spec.model.runtime", "llamacpp", "ollama, vllm, tgi"},
		{"inference without url", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.URL = "" }, "spec.upstream.url", "", "http://"},
		{"inference without upstream", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream = nil }, "spec.upstream.url", "", "http://"},
		{"inference url scheme", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.URL = "ftp://models:21" }, "spec.upstream.url", "ftp://models:21", "host.k3d.internal"},
		{"facilitator on localhost", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "http://localhost:4021" }, "spec.payment.facilitator", "http://localhost:4021", "host.k3d.internal:4021"},
		{"facilitator on 127.0.0.5", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Payment.Facilitator = "http://127.0.0.5:8080/x402" }, "spec.payment.facilitator", "http://127.0.0.5:8080/x402", "host.k3d.internal:8080"},
		{"inference url on localhost", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.URL = "http://localhost:11434" }, "spec.upstream.url", "http://localhost:11434", "http://host.k3d.internal:11434"},
		{"inference url on 127.0.0.1", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.URL = "http://127.0.0.1:11434" }, "spec.upstream.url", "http://127.0.0.1:11434", "host.k3d.internal:11434"},
		{"inference url on [::1]", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.URL = "http://[::1]:8000" }, "spec.upstream.url", "http://[::1]:8000", "host.k3d.internal:8000"},
		{"inference url on 0.0.0.0", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.URL = "http://0.0.0.0:8000" }, "spec.upstream.url", "http://0.0.0.0:8000", "host.k3d.internal:8000"},
		{"inference url query", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.URL = "http://models:11434/?x=1" }, "spec.upstream.url", "http://models:11434/?x=xxxxx", ""},
		{"inference url credentials", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.URL = "http://a:b@models:11434" }, "spec.upstream.url", "http://a:xxxxx@models:11434", ""},
		{"inference with service", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.Service = "ollama" }, "spec.upstream.service", "ollama", "spec.upstream.url"},
		{"inference with port", inf, func(o *v1alpha1.ServiceOffer) { o.Spec.Upstream.Port = 11434 }, "spec.upstream.port", "11434", "url"},
		{"registration name", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Registration = &v1alpha1.RegistrationSpec{Name: long(257)} }, "spec.registration.name", long(257), ""},
		{"registration description", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Registration = &v1alpha1.RegistrationSpec{Description: long(4097)}
		}, "spec.registration.description", long(4097), ""},
		{"registration empty skill", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Registration = &v1alpha1.RegistrationSpec{Skills: []string{"ok", " "}}
		}, "spec.registration.skills[1]", " ", ""},
		{"registration empty domain", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Registration = &v1alpha1.RegistrationSpec{Domains: []string{""}}
		}, "spec.registration.domains[0]", "", ""},
		{"registration too many skills", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Registration = &v1alpha1.RegistrationSpec{Skills: strings.Split(strings.Repeat("s,", 65)[:129], ",")}
		}, "spec.registration.skills", "65 entries", ""},
		{"provenance empty key", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Provenance = map[string]string{"": "x"} }, `spec.provenance[""]`, "", ""},
		{"provenance long value", http, func(o *v1alpha1.ServiceOffer) { o.Spec.Provenance = map[string]string{"hash": long(1025)} }, `spec.provenance["hash"]`, long(1025), ""},
		{"provenance too many keys", http, func(o *v1alpha1.ServiceOffer) {
			o.Spec.Provenance = map[string]string{}
			for i := range 65 {
				o.Spec.Provenance[fmt.Sprintf("k%d", i)] = "v"
			}
		}, "spec.provenance", "65 entries", ""},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case %q", c.name)
		}
		seen[c.name] = true
		o := c.base()
		c.mutate(o)
		err := Validate(o)
		var errs Errors
		if !errors.As(err, &errs) {
			t.Errorf("%s: Validate = %v, want Errors", c.name, err)
			continue
		}
		if len(errs) != 1 {
			t.Errorf("%s: want one error at %s, got %d:\n%v", c.name, c.field, len(errs), err)
			continue
		}
		e := errs[0]
		if e.Field != c.field || e.Value != c.value || e.Fix == "" || e.Problem == "" {
			t.Errorf("%s: got field %q value %q problem %q fix %q; want field %q value %q", c.name, e.Field, e.Value, e.Problem, e.Fix, c.field, c.value)
		}
		if c.fixHas != "" && !strings.Contains(e.Fix, c.fixHas) {
			t.Errorf("%s: fix %q does not contain %q", c.name, e.Fix, c.fixHas)
		}
	}
	if len(cases) < 30 {
		t.Fatalf("only %d bad offers", len(cases))
	}
}

func TestValidateReportsAllSorted(t *testing.T) {
	o := goodHTTP()
	o.Name = "Bad Name"
	o.Spec.Payment.PayTo = "0x12"
	o.Spec.Payment.Network = "nowhere"
	o.Spec.Payment.Price = v1alpha1.PriceSpec{}
	o.Spec.Upstream.Port = -1
	err := Validate(o)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Validate = %v", err)
	}
	want := []string{"metadata.name", "spec.payment.network", "spec.payment.payTo", "spec.payment.price", "spec.upstream.port"}
	if got := errs.Fields(); !reflect.DeepEqual(got, want) {
		t.Fatalf("fields = %v, want %v", got, want)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Errorf("Error() has %d lines: %q", len(lines), err.Error())
	}
	if got, want := errs[2].Error(), `spec.payment.payTo: "0x12" is not a 20-byte hex address: give 0x followed by 40 hex digits`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if Validate(goodHTTP()) != nil {
		t.Errorf("a valid offer returned a non-nil error")
	}
	var fe *FieldError
	if !errors.As(err, &errs) || !errors.As(errs[0], &fe) || fe.Field != "metadata.name" {
		t.Errorf("errors.As FieldError failed")
	}
	if err := Validate(nil); err == nil {
		t.Errorf("Validate(nil) = nil")
	}
}

func TestFieldErrorFormat(t *testing.T) {
	cases := []struct {
		e    FieldError
		want string
	}{
		{FieldError{"spec.payment.payTo", "", "is required", "give an address"}, "spec.payment.payTo: is required: give an address"},
		{FieldError{"spec.path", "/a", "is bad", ""}, `spec.path: "/a" is bad`},
		{FieldError{"x", strings.Repeat("v", 200), "is long", "shorten"}, `x: "` + strings.Repeat("v", 120) + `..." is long: shorten`},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}
