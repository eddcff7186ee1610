package gateway

// The money rules, one test (or table) each, over real HTTP on loopback: real upstreams, the
// x402test facilitator (real EIP-712 / EIP-3009 signature checks) and x402test buyers.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/x402test"
)

// Rule 1: the upstream is never called without a verified payment.
func TestMoneyRule1_UpstreamNeverCalledWithoutVerifiedPayment(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeInference, nil)
	b := x402test.NewBuyer(t, 2)
	v2, _ := e.requirements()
	sign := func(req x402.Requirements, mutate func(*x402.Authorization)) string {
		h, err := b.SignV2(req, mutate)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// Signed correctly, then changed: the signature no longer matches.
	tampered := func() string {
		p, err := b.PayloadV2(v2, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Payload.Authorization.From = "0x2222222222222222222222222222222222222222"
		h, _ := x402.EncodeHeader(p)
		return h
	}()
	badSig := func() string {
		p, err := b.PayloadV2(v2, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Payload.Signature = "0x" + strings.Repeat("ab", 65)
		h, _ := x402.EncodeHeader(p)
		return h
	}()
	wrongPayTo := v2
	wrongPayTo.PayTo = otherPayTo
	cases := []struct {
		name, header, value string
		want                int
	}{
		{"no payment", "", "", 402},
		{"malformed", x402.HeaderPaymentSignature, "not-base64!", 400},
		{"wrong payTo", x402.HeaderPaymentSignature, sign(wrongPayTo, nil), 402},
		{"expired", x402.HeaderPaymentSignature, sign(v2, func(a *x402.Authorization) { a.ValidBefore = strconv.FormatInt(time.Now().Unix()-1, 10) }), 402},
		{"signer is not from", x402.HeaderPaymentSignature, tampered, 402},
		{"garbage signature", x402.HeaderPaymentSignature, badSig, 402},
		{"v1 header, garbage signature", x402.HeaderXPayment, badSig, 402},
	}
	for _, tc := range cases {
		resp := e.do(http.MethodPost, "/v1/chat/completions", e.body(http.MethodPost), tc.header, tc.value)
		readAll(t, resp)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	e.fac.SetDown(true)
	resp := e.do(http.MethodPost, "/v1/chat/completions", e.body(http.MethodPost), x402.HeaderPaymentSignature, sign(v2, nil))
	readAll(t, resp)
	if resp.StatusCode != 503 {
		t.Errorf("facilitator down: %d, want 503", resp.StatusCode)
	}
	e.fac.SetDown(false)
	if n := e.up.hits.Load(); n != 0 {
		t.Fatalf("the upstream was called %d times without a verified payment", n)
	}
	if n := e.fac.SettleCalls(); n != 0 {
		t.Fatalf("%d settlements without a verified payment", n)
	}
	resp = e.do(http.MethodPost, "/v1/chat/completions", e.body(http.MethodPost), x402.HeaderPaymentSignature, sign(v2, nil))
	readAll(t, resp)
	if resp.StatusCode != 200 || e.up.hits.Load() != 1 {
		t.Fatalf("a valid payment: %d, upstream hits %d", resp.StatusCode, e.up.hits.Load())
	}
}

// Rule 2 (non-streamed): the upstream answers first, then the payment is settled, then the
// client gets the body with the receipt in its headers.
func TestMoneyRule2_SettleAfterUpstreamAnsweredThenDeliver(t *testing.T) {
	var e *env
	settledBeforeUpstream := -1
	e = newEnv(t, gatewayconfig.ModeHTTP, func(w http.ResponseWriter, r *http.Request) {
		settledBeforeUpstream = e.fac.SettleCalls()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Upstream", "1")
		_, _ = io.WriteString(w, "the paid content")
	})
	for _, version := range []int{1, 2} {
		b := x402test.NewBuyer(t, version)
		name, value := e.pay(b, nil)
		resp := e.do(http.MethodGet, testPrefix+"/doc", nil, name, value)
		body := readAll(t, resp)
		if resp.StatusCode != 200 || string(body) != "the paid content" || resp.Header.Get("X-Upstream") != "1" {
			t.Fatalf("v%d: %d %q %v", version, resp.StatusCode, body, resp.Header)
		}
		if settledBeforeUpstream != version-1 {
			t.Errorf("v%d: %d settlements before the upstream answered, want %d", version, settledBeforeUpstream, version-1)
		}
		st := e.fac.Settlements()
		if len(st) != version {
			t.Fatalf("v%d: settlements %d", version, len(st))
		}
		for _, h := range []string{x402.HeaderPaymentResponse, x402.HeaderXPaymentResponse} {
			r := decodeReceipt(t, resp.Header.Get(h))
			if !r.Success || r.Transaction != st[version-1].Transaction {
				t.Errorf("v%d: %s %+v", version, h, r)
			}
		}
		if resp.ContentLength != int64(len("the paid content")) {
			t.Errorf("Content-Length %d", resp.ContentLength)
		}
	}
}

// Rule 2 (streamed, exact): the stream is settled once the upstream answered < 400 and before
// its first byte reaches the buyer; the receipt comes with the headers.
func TestMoneyRule2_StreamSettledBeforeFirstByte(t *testing.T) {
	sse := newSSEUpstream()
	e := newEnv(t, gatewayconfig.ModeInference, sse.handler)
	b := x402test.NewBuyer(t, 1)
	name, value := e.pay(b, nil)
	resp := e.do(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"stream":true}`), name, value)
	defer resp.Body.Close()
	if e.fac.SettleCalls() != 1 || len(e.fac.Settlements()) != 1 {
		t.Fatalf("headers arrived with %d settle calls, want the settlement first", e.fac.SettleCalls())
	}
	r := decodeReceipt(t, resp.Header.Get(x402.HeaderXPaymentResponse))
	if !r.Success || r.Transaction != e.fac.Settlements()[0].Transaction {
		t.Fatalf("receipt %+v", r)
	}
	br := bufio.NewReader(resp.Body)
	sse.events <- "one"
	readEvent(t, br)
	close(sse.events)
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatal(err)
	}
	if e.fac.SettleCalls() != 1 {
		t.Fatalf("%d settle calls for one stream", e.fac.SettleCalls())
	}
}

// Rule 2: a failed settlement is a 503 JSON settlement_failed, and the body is withheld.
func TestMoneyRule2_SettleFailureWithholdsBody(t *testing.T) {
	const secret = "content-that-was-not-paid-for"
	for _, how := range []string{"settle refused", "facilitator down at settle"} {
		t.Run(how, func(t *testing.T) {
			var e *env
			e = newEnv(t, gatewayconfig.ModeHTTP, func(w http.ResponseWriter, r *http.Request) {
				if how == "facilitator down at settle" {
					e.fac.SetDown(true)
				}
				_, _ = io.WriteString(w, secret)
			})
			if how == "settle refused" {
				e.fac.FailNextSettle("insufficient_funds")
			}
			name, value := e.pay(x402test.NewBuyer(t, 2), nil)
			resp := e.do(http.MethodGet, testPrefix+"/doc", nil, name, value)
			defer resp.Body.Close()
			if resp.StatusCode != 503 {
				t.Fatalf("status %d, want 503", resp.StatusCode)
			}
			m := errorJSON(t, resp)
			if m["reason"] != "settlement_failed" || m["error"] == nil {
				t.Errorf("body %v", m)
			}
			if strings.Contains(fmt.Sprint(m), secret) {
				t.Error("the upstream's body was delivered")
			}
			if e.up.hits.Load() != 1 || len(e.fac.Settlements()) != 0 {
				t.Errorf("hits %d settlements %d", e.up.hits.Load(), len(e.fac.Settlements()))
			}
		})
	}
}

// Rule 2, documented choice: a response larger than the buffer (MaxBodyBytes) is settled when
// the buffer overflows (the upstream has answered < 400) and then streamed with the receipt in
// the headers.
func TestMoneyRule2_LargeResponseSettledWhenBufferOverflows(t *testing.T) {
	big := strings.Repeat("x", 5000)
	e := newEnv(t, gatewayconfig.ModeHTTP, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.WriteString(w, big) // chunked: no Content-Length up front
	}, withConfig(func(c *gatewayconfig.Config) { c.Limits.MaxBodyBytes = 1024 }))
	name, value := e.pay(x402test.NewBuyer(t, 2), nil)
	resp := e.do(http.MethodGet, testPrefix+"/big", nil, name, value)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || string(body) != big {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	r := decodeReceipt(t, resp.Header.Get(x402.HeaderPaymentResponse))
	if !r.Success || len(e.fac.Settlements()) != 1 {
		t.Fatalf("receipt %+v", r)
	}
}

// Rule 3: no settlement when the client goes away mid-stream.
func TestMoneyRule3_NoSettlementWhenClientGoesAwayMidStream(t *testing.T) {
	sse := newSSEUpstream()
	e := newEnv(t, gatewayconfig.ModeInference, sse.handler)
	name, value := e.pay(x402test.NewBuyer(t, 2), nil)
	ctx, cancel := context.WithCancel(context.Background())
	req := e.request(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"stream":true}`)).WithContext(ctx)
	req.Header.Set(name, value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	sse.events <- "first"
	readEvent(t, br)
	cancel()
	resp.Body.Close()
	select {
	case <-sse.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream exchange was not cancelled")
	}
	waitFor(t, "the request to finish", func() bool { return strings.Contains(e.logs.String(), `"reason":"client_cancelled"`) })
	// Hanging up after the first chunk does not make it free: it was paid before it started.
	if n := len(e.fac.Settlements()); n != 1 {
		t.Fatalf("%d settlements for a stream abandoned after its first chunk, want 1", n)
	}
}

// Rule 3: no settlement when the client goes away before a non-streamed answer.
func TestMoneyRule3_NoSettlementWhenClientGoesAwayBeforeTheAnswer(t *testing.T) {
	entered := make(chan struct{})
	e := newEnv(t, gatewayconfig.ModeHTTP, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	name, value := e.pay(x402test.NewBuyer(t, 2), nil)
	ctx, cancel := context.WithCancel(context.Background())
	req := e.request(http.MethodGet, testPrefix+"/slow", nil).WithContext(ctx)
	req.Header.Set(name, value)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	cancel()
	<-done
	waitFor(t, "the request to finish", func() bool { return strings.Contains(e.logs.String(), `"reason":"client_cancelled"`) })
	if n := e.fac.SettleCalls(); n != 0 {
		t.Fatalf("%d settle calls", n)
	}
}

// Rule 3: no settlement when the upstream fails: >= 400, unreachable, broken off, too slow.
// The payment is not spent, so the buyer may retry it.
func TestMoneyRule3_NoSettlementWhenUpstreamFails(t *testing.T) {
	breakAfter := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"partial`)
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
	cases := []struct {
		name    string
		handler http.HandlerFunc
		cfg     func(*gatewayconfig.Config)
		want    int
		reason  string
	}{
		{"500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "model crashed", 500) }, nil, 500, ""},
		{"404", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, nil, 404, ""},
		{"429", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) }, nil, 429, ""},
		{"unreachable", nil, func(c *gatewayconfig.Config) {
			dead := httptest.NewServer(http.NotFoundHandler())
			dead.Close()
			c.Upstream = dead.URL
		}, 502, "upstream_unavailable"},
		{"broken body", breakAfter, nil, 502, "upstream_error"},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, func(c *gatewayconfig.Config) { c.Limits.UpstreamTimeoutSeconds = 1 }, 504, "upstream_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []envOption
			if tc.cfg != nil {
				opts = append(opts, withConfig(tc.cfg))
			}
			e := newEnv(t, gatewayconfig.ModeHTTP, tc.handler, opts...)
			name, value := e.pay(x402test.NewBuyer(t, 2), nil)
			resp := e.do(http.MethodGet, testPrefix+"/x", nil, name, value)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.reason != "" {
				m := errorJSON(t, resp)
				if m["reason"] != tc.reason {
					t.Errorf("body %v, want reason %s", m, tc.reason)
				}
				// The hint tells the truth about retrying: the same payment only if unspent.
				if same := strings.Contains(fmt.Sprint(m["hint"]), "same payment"); same != (tc.name == "unreachable") {
					t.Errorf("hint %q", m["hint"])
				}
			} else {
				readAll(t, resp)
				if resp.Header.Get(x402.HeaderPaymentResponse) != "" {
					t.Error("a receipt for an upstream error")
				}
			}
			if n := e.fac.SettleCalls(); n != 0 {
				t.Fatalf("%d settle calls", n)
			}
			// The upstream was reached for this authorization: it is never accepted again,
			// though it was not charged (a buyer pays a new authorization to retry). One that
			// never reached it (the connection refused) is still the buyer's to use.
			e.up.set(echoHandler)
			resp = e.do(http.MethodGet, testPrefix+"/x", nil, name, value)
			defer resp.Body.Close()
			m := errorJSON(t, resp)
			wantReason := "replayed_payment"
			if tc.name == "unreachable" {
				wantReason = "upstream_unavailable"
			}
			if m["reason"] != wantReason || len(e.fac.Settlements()) != 0 {
				t.Fatalf("retrying the authorization: %d %v, settlements %d; want reason %s", resp.StatusCode, m, len(e.fac.Settlements()), wantReason)
			}
		})
	}
	t.Run("stream broken off", func(t *testing.T) {
		e := newEnv(t, gatewayconfig.ModeInference, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: one\n\n")
			_ = http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		})
		name, value := e.pay(x402test.NewBuyer(t, 2), nil)
		resp := e.do(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"stream":true}`), name, value)
		_, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Error("a broken stream looked complete to the client")
		}
		// exact settles before the first byte: the chunk that reached the buyer was paid for.
		waitFor(t, "the request to finish", func() bool { return strings.Contains(e.logs.String(), `"reason":"upstream_error"`) })
		if n := len(e.fac.Settlements()); n != 1 {
			t.Fatalf("%d settlements, want the one made before the first byte", n)
		}
	})
}

// Rule 4: one payment buys one response; a replay is a 402 replayed_payment.
func TestMoneyRule4_ReplayRefused(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			e := newEnv(t, gatewayconfig.ModeHTTP, nil)
			name, value := e.pay(x402test.NewBuyer(t, version), nil)
			resp := e.do(http.MethodGet, testPrefix+"/x", nil, name, value)
			readAll(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("first use: %d", resp.StatusCode)
			}
			resp = e.do(http.MethodGet, testPrefix+"/x", nil, name, value)
			defer resp.Body.Close()
			if resp.StatusCode != 402 || resp.Header.Get(x402.HeaderPaymentRequired) == "" {
				t.Fatalf("replay: %d", resp.StatusCode)
			}
			if m := errorJSON(t, resp); m["reason"] != "replayed_payment" || !strings.HasPrefix(fmt.Sprint(m["error"]), "replayed_payment") {
				t.Errorf("replay body %v", m)
			}
			if e.up.hits.Load() != 1 || len(e.fac.Settlements()) != 1 {
				t.Errorf("hits %d settlements %d", e.up.hits.Load(), len(e.fac.Settlements()))
			}
		})
	}
}

// Rule 4: concurrent requests carrying one payment: exactly one passes, because the nonce is
// recorded before the facilitator verifies it.
func TestMoneyRule4_ConcurrentReplay(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, gatewayconfig.ModeHTTP, func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "ok")
	})
	name, value := e.pay(x402test.NewBuyer(t, 2), nil)
	const n = 8
	results := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp := e.do(http.MethodGet, testPrefix+"/x", nil, name, value)
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if resp.StatusCode == 402 && m["reason"] != "replayed_payment" {
				t.Errorf("402 with reason %v", m["reason"])
			}
			results <- resp.StatusCode
		})
	}
	// The n-1 replays are refused while the one payment is still at the upstream.
	for i := range n - 1 {
		select {
		case s := <-results:
			if s != 402 {
				t.Errorf("a concurrent use of one payment got %d", s)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d concurrent replays were refused", i, n-1)
		}
	}
	close(release)
	wg.Wait()
	if s := <-results; s != 200 {
		t.Errorf("the one payment got %d", s)
	}
	if e.up.hits.Load() != 1 || len(e.fac.Settlements()) != 1 {
		t.Errorf("hits %d settlements %d", e.up.hits.Load(), len(e.fac.Settlements()))
	}
}

// Rule 4: the nonce set expires entries at validBefore and is bounded.
func TestNonceSet(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newNonceSet(2)
	if s.add("a", now.Add(10*time.Second), now) != nonceAdded {
		t.Fatal("a not added")
	}
	if s.add("a", now.Add(10*time.Second), now) != nonceReplayed {
		t.Fatal("a replay not seen")
	}
	if s.add("b", now.Add(20*time.Second), now) != nonceAdded {
		t.Fatal("b not added")
	}
	if s.add("c", now.Add(20*time.Second), now) != nonceFull {
		t.Fatal("a full set accepted c")
	}
	later := now.Add(11 * time.Second) // a expired
	if s.add("c", later.Add(time.Minute), later) != nonceAdded {
		t.Fatal("c not added after a expired")
	}
	if s.add("a", later.Add(time.Minute), later) != nonceFull || s.len() != 2 {
		t.Fatalf("len %d", s.len())
	}
	s.remove("b")
	if s.add("b", later.Add(time.Minute), later) != nonceAdded {
		t.Fatal("a removed nonce cannot be used again")
	}
	// Released entries do not pile up in the expiry heap.
	big := newNonceSet(4)
	for i := range 1000 {
		k := strconv.Itoa(i)
		big.add(k, now.Add(time.Hour), now)
		big.remove(k)
	}
	if len(big.byExp) > 2*4+1 {
		t.Fatalf("heap holds %d entries for %d nonces", len(big.byExp), big.len())
	}
}

// Rule 5: a malformed payment header is a 400 with a JSON {error, reason, hint}.
func TestMoneyRule5_MalformedPaymentHeader(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeHTTP, nil)
	for _, h := range []string{x402.HeaderPaymentSignature, x402.HeaderXPayment} {
		for name, v := range map[string]string{
			"not base64":       "***not base64***",
			"not JSON":         rawHeader("hello"),
			"JSON array":       rawHeader("[1,2]"),
			"missing fields":   rawHeader(`{"x402Version":2}`),
			"unknown version":  rawHeader(`{"x402Version":9,"scheme":"exact","network":"base-sepolia","payload":{}}`),
			"truncated JSON":   rawHeader(`{"x402Version":1,"scheme":"exact"`),
			"bad signature":    rawHeader(`{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":{"signature":"0x12","authorization":{}}}`),
			"non-hex address":  rawHeader(`{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":{"signature":"0x` + strings.Repeat("11", 65) + `","authorization":{"from":"me","to":"you","value":"1","validAfter":"0","validBefore":"1","nonce":"0x01"}}}`),
			"whitespace value": "   ",
		} {
			resp := e.do(http.MethodGet, testPrefix+"/x", nil, h, v)
			if name == "whitespace value" && resp.StatusCode == 402 {
				readAll(t, resp) // net/http trims it to an empty header: no payment
				continue
			}
			if resp.StatusCode != 400 {
				t.Errorf("%s %s: %d, want 400", h, name, resp.StatusCode)
				readAll(t, resp)
				continue
			}
			m := errorJSON(t, resp)
			if m["reason"] != "invalid_payment_header" || m["error"] == nil || m["hint"] == nil || m["hint"] == "" {
				t.Errorf("%s %s: body %v", h, name, m)
			}
		}
	}
	if e.up.hits.Load() != 0 || e.fac.Verifies() != 0 {
		t.Errorf("hits %d verifies %d", e.up.hits.Load(), e.fac.Verifies())
	}
}

// Rule 6: a payment for another payTo, asset, network or a smaller amount is a 402 with a
// fresh challenge whose body names the mismatch.
func TestMoneyRule6_MismatchedPayment(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeHTTP, nil)
	b2, b1 := x402test.NewBuyer(t, 2), x402test.NewBuyer(t, 1)
	v2, v1 := e.requirements()
	type tc struct {
		name   string
		v2     func(*x402.Requirements)
		v1     func(*x402.RequirementsV1)
		auth   func(*x402.Authorization)
		reason string
	}
	cases := []tc{
		{name: "v2 payTo", v2: func(r *x402.Requirements) { r.PayTo = otherPayTo }, reason: "payto_mismatch"},
		{name: "v2 authorization.to only", auth: func(a *x402.Authorization) { a.To = otherPayTo }, reason: "payto_mismatch"},
		{name: "v2 asset", v2: func(r *x402.Requirements) { r.Asset = obolBaseSp }, reason: "asset_mismatch"},
		{name: "v2 network", v2: func(r *x402.Requirements) { r.Network, r.Asset = "eip155:8453", usdcBase }, reason: "network_mismatch"},
		{name: "v2 smaller amount", v2: func(r *x402.Requirements) { r.Amount = "999" }, reason: "payment_amount_mismatch"},
		{name: "v2 smaller value", auth: func(a *x402.Authorization) { a.Value = "1" }, reason: "payment_amount_mismatch"},
		{name: "v2 expired", auth: func(a *x402.Authorization) { a.ValidBefore = strconv.FormatInt(time.Now().Unix()-5, 10) }, reason: "expired_authorization"},
		{name: "v1 payTo", v1: func(r *x402.RequirementsV1) { r.PayTo = otherPayTo }, reason: "payto_mismatch"},
		{name: "v1 network", v1: func(r *x402.RequirementsV1) { r.Network, r.Asset = "base", usdcBase }, reason: "network_mismatch"},
		{name: "v1 smaller amount", v1: func(r *x402.RequirementsV1) { r.MaxAmountRequired = "10" }, reason: "payment_amount_mismatch"},
		// A v1 payment does not name its asset: the facilitator checks the signature against
		// the offer's token and refuses it.
		{name: "v1 asset", v1: func(r *x402.RequirementsV1) {
			r.Asset = obolBaseSp
			r.Extra = map[string]any{"name": "Obol Network", "version": "1"}
		}, reason: "invalid_signature"},
	}
	for _, c := range cases {
		var header, value string
		var err error
		if c.v1 != nil {
			r := v1
			c.v1(&r)
			header = x402.HeaderXPayment
			value, err = b1.SignV1(r, c.auth)
		} else {
			r := v2
			if c.v2 != nil {
				c.v2(&r)
			}
			header = x402.HeaderPaymentSignature
			value, err = b2.SignV2(r, c.auth)
		}
		if err != nil {
			t.Fatal(err)
		}
		verifiesBefore := e.fac.Verifies()
		resp := e.do(http.MethodGet, testPrefix+"/x", nil, header, value)
		if resp.StatusCode != 402 {
			t.Errorf("%s: %d, want 402", c.name, resp.StatusCode)
			readAll(t, resp)
			continue
		}
		var pr x402.PaymentRequired
		if err := x402.DecodeHeader(resp.Header.Get(x402.HeaderPaymentRequired), 0, &pr); err != nil || len(pr.Accepts) != 1 {
			t.Errorf("%s: no fresh challenge: %v", c.name, err)
		}
		m := errorJSON(t, resp)
		if m["reason"] != c.reason || !strings.HasPrefix(fmt.Sprint(m["error"]), c.reason) || m["accepts"] == nil {
			t.Errorf("%s: body %v, want reason %s", c.name, m, c.reason)
		}
		if e.fac.Verifies() != verifiesBefore {
			t.Errorf("%s: the facilitator was asked about a payment that does not match", c.name)
		}
	}
	if e.up.hits.Load() != 0 || e.fac.SettleCalls() != 0 {
		t.Errorf("hits %d settle calls %d", e.up.hits.Load(), e.fac.SettleCalls())
	}
}

// Rule 7: facilitator down, dropping connections or too slow: 503 JSON, upstream not called,
// and the payment stays usable.
func TestMoneyRule7_FacilitatorDownOrSlow(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeInference, nil)
	b := x402test.NewBuyer(t, 2)
	name, value := e.pay(b, nil)
	for _, how := range []string{"down", "drops connections"} {
		if how == "down" {
			e.fac.SetDown(true)
		} else {
			e.fac.SetDropConnections(true)
		}
		resp := e.do(http.MethodPost, "/v1/chat/completions", e.body("POST"), name, value)
		defer resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("%s: %d, want 503", how, resp.StatusCode)
		}
		if m := errorJSON(t, resp); m["reason"] != "facilitator_unavailable" {
			t.Errorf("%s: body %v", how, m)
		}
		e.fac.SetDown(false)
		e.fac.SetDropConnections(false)
	}
	if e.up.hits.Load() != 0 {
		t.Fatalf("upstream called %d times", e.up.hits.Load())
	}
	resp := e.do(http.MethodPost, "/v1/chat/completions", e.body("POST"), name, value)
	readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("the payment after the facilitator recovered: %d", resp.StatusCode)
	}

	t.Run("timeout", func(t *testing.T) {
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body) // net/http notices a client leaving only once the body is read
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}))
		defer slow.Close()
		e := newEnv(t, gatewayconfig.ModeInference, nil, withConfig(func(c *gatewayconfig.Config) {
			c.Facilitator = slow.URL
			c.Limits.VerifyTimeoutSeconds = 1
		}))
		name, value := e.pay(b, nil)
		start := time.Now()
		resp := e.do(http.MethodPost, "/v1/chat/completions", e.body("POST"), name, value)
		defer resp.Body.Close()
		if resp.StatusCode != 503 || time.Since(start) > 5*time.Second {
			t.Fatalf("%d after %s", resp.StatusCode, time.Since(start))
		}
		if m := errorJSON(t, resp); m["reason"] != "facilitator_unavailable" {
			t.Errorf("body %v", m)
		}
		if e.up.hits.Load() != 0 {
			t.Fatal("upstream called")
		}
	})
}

// Rule 8: oversized headers and bodies are refused before the upstream (and, when the size is
// known up front, before the facilitator).
func TestMoneyRule8_OversizedHeadersAndBodies(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeHTTP, nil, withConfig(func(c *gatewayconfig.Config) {
		c.Limits.MaxHeaderBytes = 8 << 10
		c.Limits.MaxBodyBytes = 1 << 10
	}))
	b := x402test.NewBuyer(t, 2)

	// Headers beyond what net/http reads at all: 431 from the server.
	req := e.request(http.MethodGet, testPrefix+"/x", nil)
	req.Header.Set("X-Junk", strings.Repeat("j", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", resp.StatusCode)
	}

	// A payment header over the limit that net/http's slack lets through: the gateway's check.
	resp = e.do(http.MethodGet, testPrefix+"/x", nil, x402.HeaderPaymentSignature, strings.Repeat("A", 9<<10))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("9 KiB payment header: %d, want 431", resp.StatusCode)
	}
	if m := errorJSON(t, resp); m["reason"] != "header_too_large" {
		t.Errorf("body %v", m)
	}

	// A body declared too large: 413 before any payment check.
	name, value := e.pay(b, nil)
	resp = e.do(http.MethodPost, testPrefix+"/x", strings.NewReader(strings.Repeat("b", 2<<10)), name, value)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 KiB body: %d, want 413", resp.StatusCode)
	}
	if m := errorJSON(t, resp); m["reason"] != "body_too_large" {
		t.Errorf("body %v", m)
	}
	if e.fac.Verifies() != 0 || e.up.hits.Load() != 0 {
		t.Fatalf("verifies %d hits %d", e.fac.Verifies(), e.up.hits.Load())
	}

	// A chunked body that turns out too large: 413, not settled. http mode streams the body to
	// the upstream, which has started on it, so the authorization is spent: a new one is used.
	req = e.request(http.MethodPost, testPrefix+"/x", io.MultiReader(strings.NewReader(strings.Repeat("c", 4<<10))))
	req.ContentLength = -1
	req.Header.Set(name, value)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("4 KiB chunked body: %d, want 413", resp.StatusCode)
	}
	if m := errorJSON(t, resp); m["reason"] != "body_too_large" {
		t.Errorf("body %v", m)
	}
	if e.fac.SettleCalls() != 0 {
		t.Fatal("settled an oversized request")
	}
	resp = e.do(http.MethodPost, testPrefix+"/x", strings.NewReader("small"), name, value)
	readAll(t, resp)
	if resp.StatusCode != 402 {
		t.Fatalf("the spent authorization again: %d, want 402", resp.StatusCode)
	}
	name, value = e.pay(x402test.NewBuyer(t, 2), nil)
	resp = e.do(http.MethodPost, testPrefix+"/x", strings.NewReader("small"), name, value)
	readAll(t, resp)
	if resp.StatusCode != 200 || len(e.fac.Settlements()) != 1 {
		t.Fatalf("a new payment with a small body: %d", resp.StatusCode)
	}
}

// Per-MTok offers charge the config's atomic amount per request: verified and settled as is.
func TestMoneyPerMTokChargesConfiguredAmount(t *testing.T) {
	e := newEnv(t, gatewayconfig.ModeInference, nil, withConfig(func(c *gatewayconfig.Config) {
		c.Payment.Price = gatewayconfig.Price{PerMTok: "2"}
		c.Payment.ApproxTokensPerRequest = 1000
		c.Payment.Amount = "2000" // 2 USDC per million tokens, 1000 tokens a request
	}))
	v2, v1 := e.requirements()
	if v2.Amount != "2000" || v1.MaxAmountRequired != "2000" {
		t.Fatalf("challenge amounts %s / %s", v2.Amount, v1.MaxAmountRequired)
	}
	for _, version := range []int{1, 2} {
		resp, receipt, err := x402test.NewBuyer(t, version).Do(e.request(http.MethodPost, "/v1/chat/completions", e.body("POST")))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 200 || receipt == nil || !receipt.Success {
			t.Fatalf("v%d: %d %+v", version, resp.StatusCode, receipt)
		}
	}
	for _, s := range e.fac.Settlements() {
		if s.Value != "2000" {
			t.Errorf("settled %s, want 2000", s.Value)
		}
	}
	// Verified with that amount too.
	for _, r := range e.fac.Requests() {
		var body struct {
			PaymentRequirements map[string]any `json:"paymentRequirements"`
		}
		_ = json.Unmarshal(r.Body, &body)
		amt := body.PaymentRequirements["amount"]
		if amt == nil {
			amt = body.PaymentRequirements["maxAmountRequired"]
		}
		if amt != "2000" {
			t.Errorf("%s with amount %v", r.Path, amt)
		}
	}
}
