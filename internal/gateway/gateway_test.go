package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/x402test"
)

// TestEndToEnd pays through the gateway with unmodified buyers of both generations, in both
// modes: 402, pay, the upstream's answer and a receipt naming the settlement's transaction.
func TestEndToEnd(t *testing.T) {
	for _, mode := range []string{gatewayconfig.ModeHTTP, gatewayconfig.ModeInference} {
		for _, version := range []int{x402.Version1, x402.Version2} {
			t.Run(fmt.Sprintf("%s/v%d", mode, version), func(t *testing.T) {
				e := newEnv(t, mode, nil)
				b := x402test.NewBuyer(t, version)
				method, path, wantPath := http.MethodGet, testPrefix+"/weather/today?city=Lisbon", "/weather/today"
				if mode == gatewayconfig.ModeInference {
					method, path, wantPath = http.MethodPost, testPrefix+"/v1/chat/completions", "/v1/chat/completions"
				}
				resp, receipt, err := b.Do(e.request(method, path, e.body(method)))
				if err != nil {
					t.Fatal(err)
				}
				body := readAll(t, resp)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				var got map[string]string
				if err := json.Unmarshal(body, &got); err != nil || got["upstream"] != "yes" || got["path"] != wantPath {
					t.Fatalf("body %s: want the upstream's answer for %s", body, wantPath)
				}
				if e.up.hits.Load() != 1 {
					t.Errorf("upstream hits %d, want 1", e.up.hits.Load())
				}
				st := e.fac.Settlements()
				if len(st) != 1 {
					t.Fatalf("settlements %d, want 1", len(st))
				}
				if receipt == nil || !receipt.Success || receipt.Transaction == "" || receipt.Transaction != st[0].Transaction {
					t.Fatalf("receipt %+v, want success with tx %s", receipt, st[0].Transaction)
				}
				if !strings.EqualFold(receipt.Payer, b.Address()) || !strings.EqualFold(st[0].Payer, b.Address()) {
					t.Errorf("payer %s / %s, want %s", receipt.Payer, st[0].Payer, b.Address())
				}
				if st[0].Value != testAmount || !strings.EqualFold(st[0].To, testPayTo) || st[0].X402Version != version {
					t.Errorf("settlement %+v", st[0])
				}
				wantNet := "eip155:84532"
				if version == 1 {
					wantNet = "base-sepolia"
				}
				if st[0].Network != wantNet {
					t.Errorf("settled network %s, want %s", st[0].Network, wantNet)
				}
				// Both receipt headers are sent.
				if resp.Header.Get(x402.HeaderPaymentResponse) == "" || resp.Header.Get(x402.HeaderXPaymentResponse) == "" {
					t.Errorf("receipt headers: %v", resp.Header)
				}
				up, _ := e.up.lastRequest()
				if !strings.EqualFold(up.Header.Get(HeaderPayer), b.Address()) {
					t.Errorf("upstream %s %q, want the payer %s", HeaderPayer, up.Header.Get(HeaderPayer), b.Address())
				}
				for _, h := range []string{x402.HeaderPaymentSignature, x402.HeaderXPayment} {
					if up.Header.Get(h) != "" {
						t.Errorf("upstream received the %s header", h)
					}
				}
			})
		}
	}
}

// TestChallengeServesBothGenerations checks one 402 carries a v2 challenge in the header and a
// v1 challenge in the body, each listing the offer once in its own vocabulary.
func TestChallengeServesBothGenerations(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeInference, nil)
	resp := e.challenge(http.MethodPost, testPrefix+"/v1/chat/completions")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var v2 x402.PaymentRequired
	if err := x402.DecodeHeader(resp.Header.Get(x402.HeaderPaymentRequired), 0, &v2); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(e.srv.URL, "http://")
	wantURL := "http://" + host + testPrefix + "/v1/chat/completions"
	if v2.X402Version != 2 || v2.Resource == nil || v2.Resource.URL != wantURL || v2.Resource.MimeType != "application/json" || v2.Resource.Description == "" {
		t.Errorf("v2 challenge %+v resource %+v, want resource url %s", v2, v2.Resource, wantURL)
	}
	if len(v2.Accepts) != 1 {
		t.Fatalf("v2 accepts %+v, want one CAIP-2 entry", v2.Accepts)
	}
	a := v2.Accepts[0]
	if a.Scheme != "exact" || a.Network != "eip155:84532" || a.Amount != testAmount || a.Asset != usdcBaseSp || a.PayTo != testPayTo ||
		a.MaxTimeoutSeconds != 300 || a.Extra["name"] != "USDC" || a.Extra["version"] != "2" {
		t.Errorf("v2 requirement %+v", a)
	}
	var raw map[string]json.RawMessage
	body := readAll(t, resp)
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	var v1 x402.PaymentRequiredV1
	if err := json.Unmarshal(body, &v1); err != nil {
		t.Fatal(err)
	}
	if v1.X402Version != 1 || len(v1.Accepts) != 1 || v1.Error == "" {
		t.Fatalf("v1 body %s", body)
	}
	r := v1.Accepts[0]
	if r.Network != "base-sepolia" || r.MaxAmountRequired != testAmount || r.Resource != wantURL || r.PayTo != testPayTo || r.Asset != usdcBaseSp {
		t.Errorf("v1 requirement %+v", r)
	}
	if _, ok := raw["reason"]; ok {
		t.Errorf("a first challenge has no reason: %s", body)
	}
	// What the reference clients of each generation would accept.
	if _, err := x402test.ChooseV1(body); err != nil {
		t.Error(err)
	}
	if _, _, err := x402test.ChooseV2(resp.Header.Get(x402.HeaderPaymentRequired)); err != nil {
		t.Error(err)
	}
}

// TestV2PaymentWithLegacyNetworkName accepts a v2 payment naming the network by its legacy
// name (as predecessor challenges offered it), and settles it with the same spelling.
func TestV2PaymentWithLegacyNetworkName(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeHTTP, nil)
	b := x402test.NewBuyer(t, 2)
	v2, _ := e.requirements()
	v2.Network = "base-sepolia"
	h, err := b.SignV2(v2, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := e.do(http.MethodGet, testPrefix+"/x", nil, x402.HeaderPaymentSignature, h)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if st := e.fac.Settlements(); len(st) != 1 || st[0].Network != "base-sepolia" {
		t.Fatalf("settlements %+v", st)
	}
}

// TestRouting checks which paths are gated, open, or absent in both modes.
func TestRouting(t *testing.T) {
	type c struct {
		method, path string
		want         int
	}
	cases := map[string][]c{
		gatewayconfig.ModeInference: {
			{"POST", "/v1/chat/completions", 402},
			{"POST", testPrefix + "/v1/chat/completions", 402},
			{"POST", "/v1/completions", 402},
			{"POST", testPrefix + "/v1/embeddings", 402},
			{"GET", "/v1/models", 402},
			{"GET", testPrefix + "/v1/models", 402},
			{"GET", "/v1/chat/completions", 405},
			{"POST", "/v1/models", 405},
			{"POST", "/v1/other", 404},
			{"POST", testPrefix + "/v2/chat/completions", 404},
			{"POST", "/elsewhere" + testPrefix + "/v1/chat/completions", 404},
			{"GET", "/", 404},
			{"GET", "/healthz", 200},
			{"GET", "/readyz", 200},
			{"GET", "/metrics", 200},
		},
		gatewayconfig.ModeHTTP: {
			{"GET", testPrefix, 402},
			{"GET", testPrefix + "/", 402},
			{"POST", testPrefix + "/a/b", 402},
			{"DELETE", testPrefix + "/a", 402},
			{"GET", testPrefix + "x", 404},
			{"GET", testPrefix + "/../x", 404},
			{"GET", "/", 404},
			{"GET", "/other", 404},
			{"GET", "/healthz", 200},
			{"GET", "/readyz", 200},
		},
	}
	for mode, cs := range cases {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode, nil)
			for _, tc := range cs {
				req := e.request(tc.method, "/", nil)
				req.URL.Opaque = tc.path // send the path as is (no client-side cleaning)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				if resp.StatusCode != tc.want {
					t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
				}
			}
			if n := e.up.hits.Load(); n != 0 {
				t.Errorf("upstream hits %d, want 0", n)
			}
		})
	}
}

// TestForwarding checks what the upstream receives in http mode: the prefix stripped (escapes
// kept), the upstream's base path joined, the query kept, the upstream's Host, X-Forwarded-*,
// the verified payer (a client's own X-Payment-Payer dropped) and no payment headers.
func TestForwarding(t *testing.T) {
	var base string
	e := newEnv(t, gatewayconfig.ModeHTTP, nil, withConfig(func(c *gatewayconfig.Config) {
		base = c.Upstream
		c.Upstream += "/api/"
	}))
	b := x402test.NewBuyer(t, 2)
	name, value := e.pay(b, nil)
	req := e.request(http.MethodPost, testPrefix+"/a%2Fb/c?q=1&r=two", strings.NewReader("payload"))
	req.Header.Set(name, value)
	req.Header.Set(HeaderPayer, "0xspoofed")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("Authorization", "Bearer upstream-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	up, upBody := e.up.lastRequest()
	if up.URL.EscapedPath() != "/api/a%2Fb/c" || up.URL.RawQuery != "q=1&r=two" {
		t.Errorf("upstream got %s?%s, want /api/a%%2Fb/c?q=1&r=two", up.URL.EscapedPath(), up.URL.RawQuery)
	}
	if string(upBody) != "payload" || up.Method != http.MethodPost {
		t.Errorf("upstream got %s %q", up.Method, upBody)
	}
	if want := strings.TrimPrefix(base, "http://"); up.Host != want {
		t.Errorf("upstream Host %q, want %q", up.Host, want)
	}
	if got, want := up.Header.Get("X-Forwarded-Host"), strings.TrimPrefix(e.srv.URL, "http://"); got != want {
		t.Errorf("X-Forwarded-Host %q, want %q (the client's claim is not trusted by default)", got, want)
	}
	if up.Header.Get("X-Forwarded-For") != "127.0.0.1" || up.Header.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-For %q, -Proto %q", up.Header.Get("X-Forwarded-For"), up.Header.Get("X-Forwarded-Proto"))
	}
	if !strings.EqualFold(up.Header.Get(HeaderPayer), b.Address()) {
		t.Errorf("%s %q, want %s", HeaderPayer, up.Header.Get(HeaderPayer), b.Address())
	}
	if up.Header.Get("Authorization") != "Bearer upstream-key" {
		t.Errorf("Authorization not passed on")
	}
	if up.Header.Get(x402.HeaderPaymentSignature) != "" || up.Header.Get(x402.HeaderXPayment) != "" {
		t.Errorf("payment header forwarded")
	}
}

// TestTrustForwarded keeps an ingress's X-Forwarded-* and builds the challenge's resource URL
// from them.
func TestTrustForwarded(t *testing.T) {
	up := newUpstream(t, nil)
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	gw, err := New(testConfig(gatewayconfig.ModeHTTP, up.srv.URL, fac.URL()), Options{TrustForwarded: true})
	if err != nil {
		t.Fatal(err)
	}
	req := httptestRequest(http.MethodGet, "http://gw.internal"+testPrefix+"/x")
	req.Header.Set("X-Forwarded-Host", "seller.example.com")
	req.Header.Set("X-Forwarded-Proto", "https")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	var pr x402.PaymentRequired
	if err := x402.DecodeHeader(rec.Header().Get(x402.HeaderPaymentRequired), 0, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Resource.URL != "https://seller.example.com"+testPrefix+"/x" {
		t.Errorf("resource URL %s", pr.Resource.URL)
	}
}

// TestSSEStreamsChunkByChunk checks an event reaches the client before the upstream sends the
// next one, with the stream headers set and the receipt (exact: settled before the first byte)
// in the headers.
func TestSSEStreamsChunkByChunk(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			sse := newSSEUpstream()
			e := newEnv(t, gatewayconfig.ModeInference, sse.handler)
			b := x402test.NewBuyer(t, version)
			name, value := e.pay(b, nil)
			resp := e.do(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"stream":true}`), name, value)
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
			}
			if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
				t.Errorf("headers %v", resp.Header)
			}
			v := resp.Header.Get(x402.HeaderPaymentResponse)
			if v == "" || resp.Header.Get(x402.HeaderXPaymentResponse) != v || len(resp.Trailer) != 0 {
				t.Errorf("receipt headers %v, trailers %v", resp.Header, resp.Trailer)
			}
			br := bufio.NewReader(resp.Body)
			for i := range 3 {
				want := fmt.Sprintf("chunk-%d", i)
				select {
				case sse.events <- want:
				case <-time.After(5 * time.Second):
					t.Fatal("the upstream was not asked for the next event")
				}
				// The upstream now blocks until the next send: this event must arrive alone.
				if got := readEvent(t, br); got != want {
					t.Fatalf("event %q, want %q", got, want)
				}
				if n := e.fac.SettleCalls(); n != 1 {
					t.Fatalf("%d settle calls mid-stream, want the one before the first byte", n)
				}
			}
			close(sse.events)
			if got := readEvent(t, br); got != "[DONE]" {
				t.Fatalf("last event %q", got)
			}
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Fatalf("stream ended badly: %v", err)
			}
			r := decodeReceipt(t, v)
			st := e.fac.Settlements()
			if len(st) != 1 || !r.Success || r.Transaction != st[0].Transaction {
				t.Fatalf("receipt %+v, settlements %+v", r, st)
			}
		})
	}
}

// TestSSEWithBuyer runs a stream through the unmodified buyer, which reads the trailers.
func TestSSEWithBuyer(t *testing.T) {
	sse := newSSEUpstream()
	e := newEnv(t, gatewayconfig.ModeInference, sse.handler)
	go func() {
		for i := range 5 {
			sse.events <- fmt.Sprint(i)
		}
		close(sse.events)
	}()
	b := x402test.NewBuyer(t, 2)
	resp, receipt, err := b.Do(e.request(http.MethodPost, "/v1/completions", strings.NewReader(`{"stream":true}`)))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if !strings.Contains(string(body), "data: 4\n\n") || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Errorf("body %q", body)
	}
	if receipt == nil || !receipt.Success || len(e.fac.Settlements()) != 1 {
		t.Fatalf("receipt %+v", receipt)
	}
}

// TestMetrics checks /metrics shows the counters moving.
func TestMetrics(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeInference, nil)
	b := x402test.NewBuyer(t, 2)
	resp, _, err := b.Do(e.request(http.MethodPost, "/v1/embeddings", strings.NewReader(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	resp = e.do(http.MethodPost, "/v1/embeddings", nil, x402.HeaderPaymentSignature, "%%%")
	readAll(t, resp)
	resp.Body.Close()
	e.fac.SetDown(true)
	name, value := e.pay(b, nil)
	resp = e.do(http.MethodPost, "/v1/embeddings", nil, name, value)
	readAll(t, resp)
	resp.Body.Close()

	resp, err = http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := string(readAll(t, resp))
	for _, want := range []string{
		`obol_gateway_payments_verified_total{offer="test"} 1`,
		`obol_gateway_payments_settled_total{offer="test"} 1`,
		`obol_gateway_payments_failed_total{offer="test",reason="invalid_payment_header"} 1`,
		`obol_gateway_payments_failed_total{offer="test",reason="facilitator_unavailable"} 1`,
		`obol_gateway_requests_total{code="200",offer="test",route="/v1/embeddings"} 1`,
		`obol_gateway_requests_total{code="402",offer="test",route="/v1/embeddings"} 1`,
		`obol_gateway_requests_total{code="402",offer="test",route="/v1/chat/completions"} 1`,
		`obol_gateway_requests_total{code="400",offer="test",route="/v1/embeddings"} 1`,
		`obol_gateway_requests_total{code="503",offer="test",route="/v1/embeddings"} 1`,
		`obol_gateway_upstream_duration_seconds_count{offer="test"} 1`,
		`obol_gateway_facilitator_duration_seconds_count{offer="test",op="verify"} 2`,
		`obol_gateway_facilitator_duration_seconds_count{offer="test",op="settle"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(m)
	}
}

// TestLogsHaveNoSecrets checks the request log names method, path, status, duration and payer,
// and never a payment header or signature.
func TestLogsHaveNoSecrets(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeHTTP, nil)
	b := x402test.NewBuyer(t, 2)
	name, value := e.pay(b, nil)
	p, err := x402.DecodePaymentHeader(value, 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := value[:len(value)/2] + "!!"
	for _, v := range []string{value, value, bad} { // paid, replayed, malformed
		resp := e.do(http.MethodGet, testPrefix+"/x?apikey=secret-query", nil, name, v)
		readAll(t, resp)
		resp.Body.Close()
	}

	logs := e.logs.String()
	sig := strings.TrimPrefix(p.Payload.Signature, "0x")
	for _, secret := range []string{sig, sig[:32], value, value[:40], bad[:40], "secret-query", p.Payload.Authorization.Nonce} {
		if strings.Contains(strings.ToLower(logs), strings.ToLower(secret)) {
			t.Errorf("logs contain %q", secret)
		}
	}
	var lines []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON", l)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	var paid map[string]any
	for _, m := range lines {
		if m["status"] == float64(200) {
			paid = m
		}
		for _, k := range []string{"method", "path", "status", "duration_ms"} {
			if _, ok := m[k]; !ok {
				t.Errorf("log line %v lacks %s", m, k)
			}
		}
	}
	if paid == nil || !strings.EqualFold(fmt.Sprint(paid["payer"]), b.Address()) || paid["tx"] == nil || paid["path"] != testPrefix+"/x" {
		t.Errorf("paid request's log line %v", paid)
	}
	if !strings.Contains(logs, `"reason":"replayed_payment"`) || !strings.Contains(logs, `"reason":"invalid_payment_header"`) {
		t.Errorf("logs lack the refusal reasons:\n%s", logs)
	}
}

// TestReadyz checks /readyz follows the upstream's health path when the config names one, and
// fails while draining.
func TestReadyz(t *testing.T) {
	healthy := true
	e := newEnv(t, gatewayconfig.ModeHTTP, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && !healthy {
			http.Error(w, "down", 500)
			return
		}
		w.WriteHeader(200)
	}, withConfig(func(c *gatewayconfig.Config) { c.HealthPath = "/health" }))
	get := func() int {
		resp, err := http.Get(e.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		return resp.StatusCode
	}
	if s := get(); s != 200 {
		t.Fatalf("readyz %d with a healthy upstream", s)
	}
	if e.up.hits.Load() != 1 {
		t.Errorf("upstream probed %d times", e.up.hits.Load())
	}
	get() // cached
	if e.up.hits.Load() != 1 {
		t.Errorf("readyz probes are not cached: %d", e.up.hits.Load())
	}
	e.gw.Drain()
	if s := get(); s != 503 {
		t.Fatalf("readyz %d while draining", s)
	}
	resp, err := http.Get(e.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d while draining", resp.StatusCode)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, mutate := range map[string]func(*gatewayconfig.Config){
		"mode":        func(c *gatewayconfig.Config) { c.Mode = "grpc" },
		"upstream":    func(c *gatewayconfig.Config) { c.Upstream = "ftp://x" },
		"facilitator": func(c *gatewayconfig.Config) { c.Facilitator = "" },
		"payTo":       func(c *gatewayconfig.Config) { c.Payment.PayTo = "" },
		"amount":      func(c *gatewayconfig.Config) { c.Payment.Amount = "0.001" },
		"zero amount": func(c *gatewayconfig.Config) { c.Payment.Amount = "0" },
		"prefix":      func(c *gatewayconfig.Config) { c.PathPrefix = "" },
		"dot prefix":  func(c *gatewayconfig.Config) { c.PathPrefix = "/a/../b" },
	} {
		c := testConfig(gatewayconfig.ModeHTTP, "http://127.0.0.1:1", "http://127.0.0.1:2")
		mutate(c)
		if _, err := New(c, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c := testConfig(gatewayconfig.ModeInference, "http://127.0.0.1:1", "http://127.0.0.1:2")
	c.PathPrefix = ""
	c.Limits = gatewayconfig.Limits{}
	gw, err := NewGateway(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if gw.Limits() != gatewayconfig.DefaultLimits(gatewayconfig.ModeInference) {
		t.Errorf("zero limits not defaulted: %+v", gw.Limits())
	}
}

func httptestRequest(method, target string) *http.Request {
	u, _ := url.Parse(target)
	r := (&http.Request{Method: method, URL: u, Host: u.Host, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "192.0.2.1:1234"}).WithContext(context.Background())
	return r
}
