package gateway

// The money rules under attack (issue: pay for what is used, never serve for free). Each test
// is a buyer trying to get content without a settlement, over real HTTP on loopback against
// the x402test facilitator, which really verifies signatures and refuses used nonces.

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/x402test"
)

// One authorization, its nonce spelled six ways (the same 32-byte value, so the signature
// stays valid): one delivery, one settlement.
func TestAttackNonceSpellings(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeInference, nil)
	b := x402test.NewBuyer(t, 2)
	v2, _ := e.requirements()
	p, err := b.PayloadV2(v2, nil, func(a *x402.Authorization) {
		a.Nonce = "0x00000000000000000000000000000000000000000000000000000000000000ff"
	})
	if err != nil {
		t.Fatal(err)
	}
	spellings := []string{
		"0x00000000000000000000000000000000000000000000000000000000000000ff",
		"0xff", "0xFF", "255", "0255", "0X00FF",
	}
	delivered := 0
	for _, n := range spellings {
		q := *p
		q.Raw = nil
		q.Payload.Authorization.Nonce = n
		h, err := x402.EncodeHeader(&q)
		if err != nil {
			t.Fatal(err)
		}
		resp := e.do(http.MethodPost, "/v1/chat/completions", e.body(http.MethodPost), x402.HeaderPaymentSignature, h)
		readAll(t, resp)
		if resp.StatusCode == 200 {
			delivered++
		}
	}
	if delivered != 1 || e.up.hits.Load() != 1 || len(e.fac.Settlements()) != 1 {
		t.Fatalf("6 spellings of one nonce: %d deliveries, %d upstream calls, %d settlements; want 1 each", delivered, e.up.hits.Load(), len(e.fac.Settlements()))
	}
}

// secondGateway runs another gateway process's worth of state (its own replay set) on e's
// config and facilitator: a replica, or the same offer after a restart.
func secondGateway(t *testing.T, e *env) *httptest.Server {
	gw, err := NewGateway(e.cfg, Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv
}

// One payment sent to two replicas at once, and again after a restart: delivered once.
func TestAttackReplicasAndRestart(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			var up http.HandlerFunc
			body := `{"model":"m","messages":[]}`
			if stream {
				up = func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "text/event-stream")
					_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"paid\"}}]}\n\ndata: [DONE]\n\n")
				}
				body = `{"model":"m","stream":true,"messages":[]}`
			}
			e := newEnv(t, gatewayconfig.ModeInference, up)
			replica, restarted := secondGateway(t, e), secondGateway(t, e)
			name, value := e.pay(x402test.NewBuyer(t, 2), nil)
			var mu sync.Mutex
			delivered := 0
			var wg sync.WaitGroup
			for _, base := range []string{e.srv.URL, replica.URL} {
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
					req.Header.Set(name, value)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						return
					}
					data, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 && len(data) > 0 {
						mu.Lock()
						delivered++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			req, _ := http.NewRequest(http.MethodPost, restarted.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set(name, value)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 || strings.Contains(string(data), "paid") {
				t.Errorf("after a restart: %d %s", resp.StatusCode, data)
			}
			if delivered != 1 || len(e.fac.Settlements()) != 1 {
				t.Fatalf("%d deliveries, %d settlements; want 1 and 1", delivered, len(e.fac.Settlements()))
			}
		})
	}
}

// An authorization that reached the upstream is never accepted again, whatever the upstream
// answered: one unspent authorization buys at most one upstream execution.
func TestAttackReleasedPaymentReuse(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeHTTP, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such thing", http.StatusNotFound)
	})
	name, value := e.pay(x402test.NewBuyer(t, 2), nil)
	for range 26 {
		resp := e.do(http.MethodGet, testPrefix+"/x", nil, name, value)
		readAll(t, resp)
		resp.Body.Close()
	}
	if n := e.up.hits.Load(); n != 1 {
		t.Fatalf("one authorization drove %d upstream executions, want 1", n)
	}
	if n := e.fac.SettleCalls(); n != 0 {
		t.Fatalf("%d settle calls for a 404", n)
	}
}

// Forged payments (valid shape, wrong signer) never reach the facilitator.
func TestAttackForgedSignaturesCostTheFacilitatorNothing(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeInference, nil)
	v2, _ := e.requirements()
	mallory, victim := x402test.NewBuyer(t, 2), x402test.NewBuyer(t, 2)
	for i := range 200 {
		p, err := mallory.PayloadV2(v2, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0: // signed by mallory, claiming to be the victim
			p.Payload.Authorization.From = victim.Address()
		case 1: // garbage of the right length
			p.Payload.Signature = "0x" + strings.Repeat("ab", 65)
		case 2: // signed, then the amount raised
			p.Payload.Authorization.Value, p.Accepted.Amount = "1000", "1000"
			p.Payload.Authorization.To = testPayTo
			p.Payload.Signature = "0x" + hex.EncodeToString(make([]byte, 65))
		}
		p.Raw = nil
		h, _ := x402.EncodeHeader(p)
		resp := e.do(http.MethodPost, "/v1/chat/completions", e.body(http.MethodPost), x402.HeaderPaymentSignature, h)
		readAll(t, resp)
		if resp.StatusCode == 200 {
			t.Fatalf("forged payment %d was served", i)
		}
	}
	if n := e.fac.Verifies() + e.fac.SettleCalls(); n != 0 {
		t.Fatalf("200 forged payments made %d facilitator calls, want 0", n)
	}
	if e.up.hits.Load() != 0 {
		t.Fatal("a forged payment reached the upstream")
	}
}

// A client's X_Payment_Payer (and other spellings a CGI or nginx upstream reads as
// X-Payment-Payer) never reaches the upstream; only the gateway's verified payer does.
func TestAttackPayerHeaderSpellings(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeHTTP, nil)
	b := x402test.NewBuyer(t, 2)
	name, value := e.pay(b, nil)
	req := e.request(http.MethodGet, testPrefix+"/x", nil)
	req.Header.Set(name, value)
	for _, k := range []string{"X_Payment_Payer", "x_payment_payer", "X-PAYMENT_PAYER", "x-payment-payer"} {
		req.Header[k] = []string{"0x000000000000000000000000000000000000dEaD"}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	got, _ := e.up.lastRequest()
	for k, v := range got.Header {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), HeaderPayer) && (len(v) != 1 || !strings.EqualFold(v[0], b.Address())) {
			t.Errorf("upstream got %s: %v", k, v)
		}
	}
	if !strings.EqualFold(got.Header.Get(HeaderPayer), b.Address()) {
		t.Errorf("upstream payer %q, want %s", got.Header.Get(HeaderPayer), b.Address())
	}
}

// uptoEnv is an inference offer priced per token: 0.5 USDC per million prompt tokens and 2
// USDC per million completion tokens, at most 1000 prompt and 100 completion tokens a request.
func uptoEnv(t *testing.T, up http.HandlerFunc) *env {
	return newEnv(t, gatewayconfig.ModeInference, up, withConfig(func(c *gatewayconfig.Config) {
		c.Payment.Metering = &gatewayconfig.Metering{InputPerMTok: "500000", OutputPerMTok: "2000000", MaxInputTokens: 1000, MaxOutputTokens: 100}
	}))
}

func uptoBuyer(t *testing.T) *x402test.Buyer {
	b := x402test.NewBuyer(t, 2)
	b.Scheme = x402.SchemeUpto
	return b
}

// The 402 of a per-token offer lists upto first, bounded by the request's max_tokens and the
// offer's caps, beside exact.
func TestUptoChallenge(t *testing.T) {
	e := uptoEnv(t, nil)
	for _, tc := range []struct {
		body string
		want string // ceil((1000×0.5 + n×2) USDC/1e6) in atomic units
	}{
		{`{"messages":[],"max_tokens":10}`, "520"},
		{`{"messages":[],"max_completion_tokens":50}`, "600"},
		{`{"messages":[],"max_tokens":100000}`, "700"}, // above the cap: the cap
		{`{"messages":[]}`, "700"},
		{`not json`, "700"},
	} {
		resp := e.do(http.MethodPost, "/v1/chat/completions", strings.NewReader(tc.body), "", "")
		readAll(t, resp)
		_, up, err := x402test.ChooseScheme(resp.Header.Get(x402.HeaderPaymentRequired), x402.SchemeUpto)
		if err != nil {
			t.Fatal(err)
		}
		if up.Amount != tc.want || up.Extra["facilitatorAddress"] != x402test.Signer {
			t.Errorf("%s: upto %+v, want amount %s", tc.body, up, tc.want)
		}
		var pr x402.PaymentRequired
		_ = x402.DecodeHeader(resp.Header.Get(x402.HeaderPaymentRequired), 0, &pr)
		if len(pr.Accepts) != 2 || pr.Accepts[0].Scheme != x402.SchemeUpto || pr.Accepts[1].Scheme != x402.SchemeExact {
			t.Errorf("accepts %+v", pr.Accepts)
		}
	}
}

// upto, buffered: settled exactly prompt × in + completion × out, rounded up, before the answer
// is delivered; the forwarded request is bounded to what was authorized.
func TestUptoBufferedChargesUsage(t *testing.T) {
	var seen map[string]any
	e := uptoEnv(t, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&seen)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"hello"}}],"usage":{"prompt_tokens":333,"completion_tokens":7}}`)
	})
	b := uptoBuyer(t)
	resp, receipt, err := b.Do(e.request(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// 333 × 500000 + 7 × 2000000 = 180,500,000 / 1e6 = 180.5 -> 181
	st := e.fac.Settlements()
	if resp.StatusCode != 200 || !strings.Contains(string(data), "hello") || len(st) != 1 || st[0].Value != "181" || st[0].Authorized != "700" || st[0].Scheme != "upto" {
		t.Fatalf("%d %s, settlements %+v", resp.StatusCode, data, st)
	}
	if receipt == nil || receipt.Amount != "181" || !receipt.Success {
		t.Fatalf("receipt %+v", receipt)
	}
	if seen["max_tokens"] != float64(100) {
		t.Errorf("forwarded max_tokens %v, want the cap 100", seen["max_tokens"])
	}
}

// upto over a stream: the usage chunk the gateway asked for is metered and not forwarded;
// the whole stream is settled at its usage; a buyer who hangs up mid-stream still pays for
// what it received; zero usage settles nothing.
func TestUptoStream(t *testing.T) {
	chunks := func(n int, usage bool) string {
		var s strings.Builder
		for i := range n {
			fmt.Fprintf(&s, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
		}
		if usage {
			fmt.Fprintf(&s, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":%d}}\n\n", n)
		}
		s.WriteString("data: [DONE]\n\n")
		return s.String()
	}
	t.Run("whole", func(t *testing.T) {
		var asked map[string]any
		e := uptoEnv(t, func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewDecoder(r.Body).Decode(&asked)
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, chunks(12, true))
		})
		resp, receipt, err := uptoBuyer(t).Do(e.request(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"stream":true,"max_tokens":20,"messages":[]}`)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// 40 × 0.5 + 12 × 2 = 44 atomic units (exact); the maximum was 1000×0.5 + 20×2 = 540.
		st := e.fac.Settlements()
		if len(st) != 1 || st[0].Value != "44" || st[0].Authorized != "540" || receipt == nil || receipt.Amount != "44" {
			t.Fatalf("settlements %+v receipt %+v", st, receipt)
		}
		if so, _ := asked["stream_options"].(map[string]any); so["include_usage"] != true {
			t.Errorf("upstream not asked for usage: %v", asked)
		}
	})
	t.Run("usage chunk not forwarded", func(t *testing.T) {
		e := uptoEnv(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, chunks(3, true))
		})
		b := uptoBuyer(t)
		resp, _, err := b.Do(e.request(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"stream":true,"messages":[]}`)))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(data), "usage") || !strings.Contains(string(data), "t2") || !strings.Contains(string(data), "[DONE]") {
			t.Fatalf("client got %q", data)
		}
	})
	t.Run("hang up mid-stream", func(t *testing.T) {
		release := make(chan struct{})
		e := uptoEnv(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			rc := http.NewResponseController(w)
			for i := range 5 {
				fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
				_ = rc.Flush()
			}
			<-release
			<-r.Context().Done()
		})
		b := uptoBuyer(t)
		// Pay by hand, so the stream can be read and dropped.
		resp := e.do(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"stream":true,"messages":[{"role":"user","content":"0123456789abcdef"}]}`), "", "")
		readAll(t, resp)
		_, req, err := x402test.ChooseScheme(resp.Header.Get(x402.HeaderPaymentRequired), x402.SchemeUpto)
		if err != nil {
			t.Fatal(err)
		}
		h, err := b.SignV2(req, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		hr := e.request(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"stream":true,"messages":[{"role":"user","content":"0123456789abcdef"}]}`)).WithContext(ctx)
		hr.Header.Set(x402.HeaderPaymentSignature, h)
		sresp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(sresp.Body)
		for range 5 {
			readEvent(t, br)
		}
		cancel()
		sresp.Body.Close()
		close(release)
		waitFor(t, "the settlement", func() bool { return len(e.fac.Settlements()) == 1 })
		// 5 chunks delivered; no usage came, so the prompt is estimated from its 20 bytes of
		// text ("user" and the content) at 4 bytes a token: 5 × 0.5 + 5 × 2 = 12.5 -> 13.
		if st := e.fac.Settlements(); st[0].Value != "13" {
			t.Fatalf("settled %s for 5 delivered chunks, want 13", st[0].Value)
		}
	})
	t.Run("zero usage settles nothing", func(t *testing.T) {
		e := uptoEnv(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0}}`)
		})
		resp, receipt, err := uptoBuyer(t).Do(e.request(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"messages":[]}`)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || e.fac.SettleCalls() != 0 || receipt == nil || receipt.Amount != "0" || receipt.Transaction != "" {
			t.Fatalf("%d, %d settle calls, receipt %+v", resp.StatusCode, e.fac.SettleCalls(), receipt)
		}
	})
}

// upto never settles above the authorization, however much the upstream claims it used.
func TestUptoNeverAboveAuthorized(t *testing.T) {
	e := uptoEnv(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[],"usage":{"prompt_tokens":999999,"completion_tokens":999999}}`)
	})
	resp, _, err := uptoBuyer(t).Do(e.request(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"messages":[],"max_tokens":10}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := e.fac.Settlements(); len(st) != 1 || st[0].Value != "520" || st[0].Authorized != "520" {
		t.Fatalf("settlements %+v, want the authorized 520", st)
	}
}

// A buyer who authorizes less than the request can cost is refused before the upstream.
func TestUptoAuthorizationBelowTheRequestsCost(t *testing.T) {
	e := uptoEnv(t, nil)
	resp := e.do(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"messages":[],"max_tokens":10}`), "", "")
	readAll(t, resp)
	_, req, _ := x402test.ChooseScheme(resp.Header.Get(x402.HeaderPaymentRequired), x402.SchemeUpto)
	h, err := uptoBuyer(t).SignV2(req, nil) // authorizes 520, for max_tokens 10
	if err != nil {
		t.Fatal(err)
	}
	resp = e.do(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"messages":[],"max_tokens":100}`), x402.HeaderPaymentSignature, h)
	defer resp.Body.Close()
	if m := errorJSON(t, resp); resp.StatusCode != 402 || m["reason"] != x402.ReasonAmountMismatch {
		t.Fatalf("%d %v", resp.StatusCode, m)
	}
	if e.up.hits.Load() != 0 || e.fac.Verifies() != 0 {
		t.Fatal("an under-authorized request went further than the gate")
	}
}

// An OBOL offer (a Permit2 token) is challenged with Permit2 and paid end to end through the
// exact proxy; an EIP-3009 authorization for it is refused before the facilitator.
func TestPermit2TokenPaidEndToEnd(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeHTTP, nil, withConfig(func(c *gatewayconfig.Config) {
		c.Payment.Asset = gatewayconfig.Asset{Address: obolBaseSp, Symbol: "OBOL", Decimals: 18, TransferMethod: "permit2", EIP712Name: "Obol Network", EIP712Version: "1"}
		c.Payment.Amount = "1000000000000000"
	}))
	v2, _ := e.requirements()
	if v2.Extra["assetTransferMethod"] != "permit2" {
		t.Fatalf("challenge extra %v", v2.Extra)
	}
	b := x402test.NewBuyer(t, 2)
	resp, receipt, err := b.Do(e.request(http.MethodGet, testPrefix+"/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	st := e.fac.Settlements()
	if resp.StatusCode != 200 || receipt == nil || len(st) != 1 || st[0].Method != "permit2" || st[0].Value != "1000000000000000" {
		t.Fatalf("%d receipt %+v settlements %+v", resp.StatusCode, receipt, st)
	}
	h, err := b.SignV2(x402.Requirements{Scheme: "exact", Network: v2.Network, Amount: v2.Amount, Asset: v2.Asset, PayTo: v2.PayTo, MaxTimeoutSeconds: 60, Extra: map[string]any{"name": "Obol Network", "version": "1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := len(e.fac.Requests())
	resp = e.do(http.MethodGet, testPrefix+"/x", nil, x402.HeaderPaymentSignature, h)
	if resp.StatusCode != 402 || len(e.fac.Requests()) != before {
		t.Fatalf("an EIP-3009 payment of a Permit2 token: %d", resp.StatusCode)
	}
	readAll(t, resp)
}
