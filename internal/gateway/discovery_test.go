package gateway

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402"
)

// The 402's resource.url is the URL the buyer asked for, byte for byte: x402scan refuses a
// resource whose challenge names another URL. The request is written raw, so nothing on the
// client side normalises it first.
func TestResourceURLIsTheRequestedURL(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeHTTP, echoHandler)
	for _, target := range []string{
		testPrefix + "/data",
		testPrefix + "/data?city=Z%C3%BCrich&units=metric",
		testPrefix + "/a%2Fb?x=1&x=2",
		testPrefix + "/data?",
	} {
		t.Run(target, func(t *testing.T) {
			conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte("GET " + target + " HTTP/1.1\r\nHost: buyer.example:8080\r\nConnection: close\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusPaymentRequired {
				t.Fatalf("status %d, want 402", resp.StatusCode)
			}
			var pr x402.PaymentRequired
			if err := x402.DecodeHeader(resp.Header.Get(x402.HeaderPaymentRequired), 1<<20, &pr); err != nil {
				t.Fatal(err)
			}
			if want := "http://buyer.example:8080" + target; pr.Resource == nil || pr.Resource.URL != want {
				t.Fatalf("resource.url = %+v, want %q", pr.Resource, want)
			}
			var v1 x402.PaymentRequiredV1
			if err := json.NewDecoder(resp.Body).Decode(&v1); err != nil {
				t.Fatal(err)
			}
			if v1.Accepts[0].Resource != pr.Resource.URL {
				t.Fatalf("v1 resource %q differs from v2 %q", v1.Accepts[0].Resource, pr.Resource.URL)
			}
		})
	}
}

// The 402 carries the bazaar extension, and its info validates against its own schema, as a
// facilitator must check before cataloguing (specs/extensions/bazaar.md).
func TestChallengeCarriesBazaarExtension(t *testing.T) {
	for _, tc := range []struct {
		mode, method, path string
		wantBody           bool
	}{
		{gatewayconfig.ModeHTTP, http.MethodGet, testPrefix + "/data?city=Paris", false},
		{gatewayconfig.ModeHTTP, http.MethodPost, testPrefix + "/data", true},
		{gatewayconfig.ModeInference, http.MethodPost, testPrefix + "/v1/chat/completions", true},
	} {
		t.Run(tc.mode+" "+tc.method, func(t *testing.T) {
			e := newEnv(t, tc.mode, echoHandler)
			resp := e.challenge(tc.method, tc.path)
			resp.Body.Close()
			var pr x402.PaymentRequired
			if err := x402.DecodeHeader(resp.Header.Get(x402.HeaderPaymentRequired), 1<<20, &pr); err != nil {
				t.Fatal(err)
			}
			ext, ok := pr.Extensions["bazaar"].(map[string]any)
			if !ok {
				t.Fatalf("no bazaar extension: %v", pr.Extensions)
			}
			info := ext["info"].(map[string]any)
			input := info["input"].(map[string]any)
			if input["type"] != "http" || input["method"] != tc.method {
				t.Fatalf("input = %v", input)
			}
			if _, has := input["body"]; has != tc.wantBody {
				t.Fatalf("input.body present=%v, want %v: %v", has, tc.wantBody, input)
			}
			if tc.method == http.MethodGet && input["queryParams"].(map[string]any)["city"] != "Paris" {
				t.Fatalf("queryParams = %v", input["queryParams"])
			}
			validateAgainst(t, ext["schema"], info)
		})
	}
}

func validateAgainst(t *testing.T, schema, doc any) {
	t.Helper()
	c := jsonschema.NewCompiler()
	if err := c.AddResource("bazaar.json", roundTrip(t, schema)); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("bazaar.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(roundTrip(t, doc)); err != nil {
		t.Fatalf("info does not validate against its schema: %v", err)
	}
	// The schema is not vacuous: an input of another type fails it.
	bad := roundTrip(t, doc).(map[string]any)
	bad["input"].(map[string]any)["type"] = "mcp"
	if sch.Validate(bad) == nil {
		t.Fatal("the schema accepts input.type mcp")
	}
}

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Discovery is free, at the root and under the offer's path, and lists what the 402 asks for.
func TestDiscoveryDocuments(t *testing.T) {
	for _, mode := range []string{gatewayconfig.ModeHTTP, gatewayconfig.ModeInference} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode, echoHandler)
			want, _ := e.requirements()
			for _, p := range []string{PathDiscovery, testPrefix + PathDiscovery} {
				resp, err := http.Get(e.srv.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				var doc struct {
					X402Version int `json:"x402Version"`
					Items       []struct {
						Resource string              `json:"resource"`
						Type     string              `json:"type"`
						Accepts  []x402.Requirements `json:"accepts"`
						Metadata map[string]any      `json:"metadata"`
					} `json:"items"`
					OpenAPI string `json:"openapi"`
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d", p, resp.StatusCode)
				}
				if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if doc.X402Version != 2 || len(doc.Items) == 0 {
					t.Fatalf("GET %s: %+v", p, doc)
				}
				for _, it := range doc.Items {
					if !strings.HasPrefix(it.Resource, e.srv.URL+testPrefix) || it.Type != "http" || len(it.Accepts) != 1 {
						t.Fatalf("item %+v", it)
					}
					if a := it.Accepts[0]; a.Amount != want.Amount || a.PayTo != want.PayTo || a.Asset != want.Asset || a.Network != want.Network {
						t.Fatalf("item accepts %+v, the 402 asks %+v", a, want)
					}
				}
				if doc.OpenAPI != e.srv.URL+testPrefix+"/.well-known/openapi.json" {
					t.Fatalf("openapi link %q", doc.OpenAPI)
				}
			}
			resp, err := http.Get(e.srv.URL + testPrefix + "/.well-known/openapi.json")
			if err != nil {
				t.Fatal(err)
			}
			var api struct {
				OpenAPI string                               `json:"openapi"`
				Paths   map[string]map[string]map[string]any `json:"paths"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&api); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if api.OpenAPI != "3.1.0" || len(api.Paths) == 0 {
				t.Fatalf("openapi: %+v", api)
			}
			for p, item := range api.Paths {
				for m, op := range item {
					pay, ok := op["x-payment-info"].(map[string]any)
					if !ok {
						t.Fatalf("%s %s: no x-payment-info", m, p)
					}
					price := pay["price"].(map[string]any)
					if price["currency"] != "USD" || price["amount"] != "0.001" {
						t.Fatalf("%s %s: price %v", m, p, price)
					}
					if _, ok := op["responses"].(map[string]any)["402"]; !ok {
						t.Fatalf("%s %s: no 402 response", m, p)
					}
				}
			}
			if n := len(e.fac.Requests()); n != 0 {
				t.Fatalf("discovery called the facilitator %d times", n)
			}
		})
	}
}
