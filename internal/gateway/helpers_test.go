package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/x402test"
)

const (
	testPayTo  = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
	otherPayTo = "0x1111111111111111111111111111111111111111"
	usdcBaseSp = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
	obolBaseSp = "0x0a09371a8b011d5110656ceBCc70603e53FD2c78"
	usdcBase   = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
	testPrefix = "/services/test"
	testAmount = "1000"
)

func testConfig(mode, upstream, facilitator string) *gatewayconfig.Config {
	return &gatewayconfig.Config{
		Offer:       "test",
		Mode:        mode,
		Upstream:    upstream,
		PathPrefix:  testPrefix,
		Facilitator: facilitator,
		Payment: gatewayconfig.Payment{
			Scheme: "exact", Network: "eip155:84532", NetworkName: "base-sepolia",
			PayTo: testPayTo, Amount: testAmount, MaxTimeoutSeconds: 300,
			Asset: gatewayconfig.Asset{Address: usdcBaseSp, Symbol: "USDC", Decimals: 6, TransferMethod: "eip3009", EIP712Name: "USDC", EIP712Version: "2"},
			Price: gatewayconfig.Price{PerRequest: "0.001"},
		},
		Limits: gatewayconfig.DefaultLimits(mode),
	}
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// upstream is a real HTTP upstream on loopback that counts its hits and remembers the last
// request.
type upstream struct {
	srv     *httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	last    *http.Request
	body    []byte
	handler atomic.Pointer[http.HandlerFunc]
}

func newUpstream(t testing.TB, h http.HandlerFunc) *upstream {
	u := &upstream{}
	if h == nil {
		h = echoHandler
	}
	u.set(h)
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.last, u.body = r.Clone(context.Background()), body
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		(*u.handler.Load())(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) set(h http.HandlerFunc) { u.handler.Store(&h) }

func (u *upstream) lastRequest() (*http.Request, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.body
}

// echoHandler answers 200 JSON describing the request it got.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"upstream": "yes", "method": r.Method, "path": r.URL.Path, "rawPath": r.URL.RawPath, "query": r.URL.RawQuery,
	})
}

// env is one gateway between a real upstream and a real (signature-checking) facilitator.
type env struct {
	t    testing.TB
	cfg  *gatewayconfig.Config
	gw   *Gateway
	srv  *httptest.Server
	fac  *x402test.Facilitator
	up   *upstream
	logs *syncBuffer
	reg  *prometheus.Registry
}

type envOption func(*env)

func withConfig(f func(*gatewayconfig.Config)) envOption {
	return func(e *env) { f(e.cfg) }
}

func newEnv(t testing.TB, mode string, up http.HandlerFunc, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	e.up = newUpstream(t, up)
	e.fac = x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	e.cfg = testConfig(mode, e.up.srv.URL, e.fac.URL())
	for _, o := range opts {
		o(e)
	}
	gw, err := NewGateway(e.cfg, Options{
		Logger:   slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: e.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gw
	e.srv = httptest.NewUnstartedServer(gw)
	e.srv.Config = gw.Server("")
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// paidPath is a gated path of the env's mode, and the method to use.
func (e *env) paidPath() (method, path string) {
	if e.cfg.Mode == gatewayconfig.ModeInference {
		return http.MethodPost, testPrefix + "/v1/chat/completions"
	}
	return http.MethodGet, testPrefix + "/data"
}

func (e *env) request(method, path string, body io.Reader) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// challenge fetches the 402 of a gated path.
func (e *env) challenge(method, path string) *http.Response {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(e.request(method, path, nil))
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusPaymentRequired {
		e.t.Fatalf("%s %s without payment: %d, want 402", method, path, resp.StatusCode)
	}
	return resp
}

// requirements returns the offer as both generations' challenges state it.
func (e *env) requirements() (x402.Requirements, x402.RequirementsV1) {
	e.t.Helper()
	method, path := e.paidPath()
	resp := e.challenge(method, path)
	defer resp.Body.Close()
	_, v2, err := x402test.ChooseV2(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	v1, err := x402test.ChooseV1(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return v2, v1
}

// pay returns a fresh, valid payment header (name, value) for the buyer's generation.
func (e *env) pay(b *x402test.Buyer, mutate func(*x402.Authorization)) (string, string) {
	e.t.Helper()
	v2, v1 := e.requirements()
	if b.Version == x402.Version1 {
		h, err := b.SignV1(v1, mutate)
		if err != nil {
			e.t.Fatal(err)
		}
		return x402.HeaderXPayment, h
	}
	h, err := b.SignV2(v2, mutate)
	if err != nil {
		e.t.Fatal(err)
	}
	return x402.HeaderPaymentSignature, h
}

// do sends a request carrying a payment header.
func (e *env) do(method, path string, body io.Reader, header, value string) *http.Response {
	e.t.Helper()
	req := e.request(method, path, body)
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func (e *env) body(method string) io.Reader {
	if method == http.MethodPost {
		return strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	}
	return nil
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return b
}

// errorJSON decodes a gateway error body.
func errorJSON(t testing.TB, resp *http.Response) map[string]any {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var m map[string]any
	b := readAll(t, resp)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", b, err)
	}
	return m
}

// decodeReceipt decodes a PAYMENT-RESPONSE / X-PAYMENT-RESPONSE value.
func decodeReceipt(t testing.TB, v string) x402.SettleResponse {
	t.Helper()
	var r x402.SettleResponse
	if err := x402.DecodeHeader(v, 0, &r); err != nil {
		t.Fatalf("receipt %q: %v", v, err)
	}
	return r
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sseUpstream streams one event per value sent on its channel and ends when it is closed.
type sseUpstream struct {
	events chan string
	done   chan struct{} // closed when the handler returned
	ctxErr atomic.Value  // the upstream request's context error when it returned
}

func newSSEUpstream() *sseUpstream {
	return &sseUpstream{events: make(chan string), done: make(chan struct{}, 16)}
}

func (s *sseUpstream) handler(w http.ResponseWriter, r *http.Request) {
	defer func() { s.done <- struct{}{} }()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				_, _ = io.WriteString(w, "data: [DONE]\n\n")
				return
			}
			_, _ = fmt.Fprintf(w, "data: %s\n\n", ev)
			_ = rc.Flush()
		case <-r.Context().Done():
			s.ctxErr.Store(r.Context().Err())
			return
		}
	}
}

// readEvent reads one SSE event's data line.
func readEvent(t testing.TB, br *bufio.Reader) string {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "data: "); ok {
			return d
		}
	}
}

// rawHeader builds a payment header value from arbitrary JSON.
func rawHeader(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }
