package x402test_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obol/obol/internal/chains"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/eip3009"
	"github.com/obol/obol/internal/x402/x402test"
)

const (
	usdcBaseSepolia = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
	obolBaseSepolia = "0x0a09371a8b011d5110656ceBCc70603e53FD2c78"
	seller          = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
	stranger        = "0x857b06519E91e3A54538791bDbb0E22373e36b66"
)

var resource = x402.ResourceInfo{URL: "http://seller.test/api", Description: "api", MimeType: "application/json"}

func offer() x402.Offer {
	return x402.Offer{Scheme: "exact", Network: "eip155:84532", NetworkName: "base-sepolia", Asset: usdcBaseSepolia,
		Amount: "1000", PayTo: seller, MaxTimeoutSeconds: 120, EIP712Name: "USDC", EIP712Version: "2"}
}

// payment signs a payment of the buyer's generation; reqMut changes the requirement the buyer
// pays (before signing), authMut the authorization (before signing).
func payment(t *testing.T, b *x402test.Buyer, reqMut func(r *x402.Requirements), authMut func(*x402.Authorization)) *x402.PaymentPayload {
	t.Helper()
	o := offer()
	r2 := o.V2(resource)
	if reqMut != nil {
		reqMut(&r2)
	}
	var h string
	var err error
	if b.Version == 2 {
		h, err = b.SignV2(r2, authMut)
	} else {
		r1 := o.V1(resource)
		r1.Scheme, r1.Network, r1.MaxAmountRequired, r1.Asset, r1.PayTo, r1.Extra = r2.Scheme, r2.Network, r2.Amount, r2.Asset, r2.PayTo, r2.Extra
		if r1.Network == "eip155:84532" {
			r1.Network = "base-sepolia"
		}
		h, err = b.SignV1(r1, authMut)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := x402.DecodePaymentHeader(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// requirements are the seller's requirements for p's generation, optionally changed.
func requirements(p *x402.PaymentPayload, mut func(r *x402.Requirements)) any {
	r2 := offer().V2(resource)
	if mut != nil {
		mut(&r2)
	}
	if p.X402Version == 2 {
		return r2
	}
	r1 := offer().V1(resource)
	r1.Scheme, r1.MaxAmountRequired, r1.Asset, r1.PayTo = r2.Scheme, r2.Amount, r2.Asset, r2.PayTo
	if r2.Network != "eip155:84532" {
		r1.Network = r2.Network
	}
	return r1
}

func TestFacilitatorVerifies(t *testing.T) {
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	client := &x402.Facilitator{URL: fac.URL()}
	ctx := context.Background()
	past := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(-d).Unix(), 10) }
	future := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).Unix(), 10) }

	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			b := x402test.NewBuyer(t, version)
			other := x402test.NewBuyer(t, version)

			good := payment(t, b, nil, nil)
			vr, err := client.Verify(ctx, good, requirements(good, nil))
			if err != nil || !vr.IsValid || vr.Payer != b.Address() {
				t.Fatalf("good payment: %+v, %v", vr, err)
			}

			type tc struct {
				p      *x402.PaymentPayload
				req    func(*x402.Requirements)
				reason string
			}
			cases := map[string]tc{
				// Key A signs an authorization whose from is B: the signature check is real.
				"signed by A, from B": {payment(t, b, nil, func(a *x402.Authorization) { a.From = other.Address() }), nil, x402test.ReasonInvalidSignature},
				// A valid signature of other fields: value raised after signing.
				"tampered after signing": func() tc {
					p := payment(t, b, nil, nil)
					p.Payload.Authorization.Value = "1000000"
					p.Raw = nil
					return tc{p, nil, x402test.ReasonInvalidSignature}
				}(),
				// Another buyer's signature over the same authorization.
				"someone else's signature": func() tc {
					p := payment(t, b, nil, nil)
					q := payment(t, other, nil, nil)
					p.Payload.Signature, p.Raw = q.Payload.Signature, nil
					return tc{p, nil, x402test.ReasonInvalidSignature}
				}(),
				// The wrong EIP-712 domain name (Base Sepolia USDC is "USDC", not "USD Coin").
				"wrong domain name": {payment(t, b, func(r *x402.Requirements) { r.Extra = map[string]any{"name": "USD Coin", "version": "2"} }, nil), nil, x402test.ReasonInvalidSignature},
				"wrong payTo":       {payment(t, b, nil, func(a *x402.Authorization) { a.To = stranger }), nil, x402test.ReasonRecipientMismatch},
				"smaller value":     {payment(t, b, nil, func(a *x402.Authorization) { a.Value = "999" }), nil, x402test.ReasonInsufficientValue},
				"expired":           {payment(t, b, nil, func(a *x402.Authorization) { a.ValidAfter, a.ValidBefore = past(time.Hour), past(time.Second) }), nil, x402test.ReasonExpired},
				"not yet valid":     {payment(t, b, nil, func(a *x402.Authorization) { a.ValidAfter = future(time.Minute) }), nil, x402test.ReasonNotYetValid},
				"asset not a token": {payment(t, b, nil, nil), func(r *x402.Requirements) { r.Asset = stranger }, x402test.ReasonUnsupportedAsset},
				"asset not EIP-3009": {payment(t, b, func(r *x402.Requirements) { r.Asset = obolBaseSepolia }, nil),
					func(r *x402.Requirements) { r.Asset = obolBaseSepolia }, x402test.ReasonUnsupportedAsset},
				"wrong network":   {payment(t, b, nil, nil), func(r *x402.Requirements) { r.Network = "eip155:8453" }, x402test.ReasonInvalidNetwork},
				"unknown network": {payment(t, b, func(r *x402.Requirements) { r.Network = "eip155:999999" }, nil), func(r *x402.Requirements) { r.Network = "eip155:999999" }, x402test.ReasonInvalidNetwork},
				"wrong scheme":    {payment(t, b, func(r *x402.Requirements) { r.Scheme = "subscription" }, nil), func(r *x402.Requirements) { r.Scheme = "subscription" }, x402test.ReasonUnsupportedScheme},
			}
			if version == 2 {
				cases["accepted asset differs"] = tc{payment(t, b, func(r *x402.Requirements) { r.Asset = obolBaseSepolia }, nil), nil, x402test.ReasonAssetMismatch}
			} else {
				// v1 carries no asset: a payment signed for another token fails the signature.
				cases["signed for another asset"] = tc{payment(t, b, func(r *x402.Requirements) { r.Asset = "0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d" }, nil), nil, x402test.ReasonInvalidSignature}
			}
			for name, c := range cases {
				t.Run(name, func(t *testing.T) {
					before := fac.Verifies()
					vr, err := client.Verify(ctx, c.p, requirements(c.p, c.req))
					if err != nil {
						t.Fatal(err)
					}
					if vr.IsValid || vr.InvalidReason != c.reason || vr.InvalidMessage == "" {
						t.Fatalf("verify = %+v, want invalid %s", vr, c.reason)
					}
					if fac.Verifies() != before+1 {
						t.Fatal("Verifies did not count")
					}
					sr, err := client.Settle(ctx, c.p, requirements(c.p, c.req))
					if err != nil || sr.Success || sr.ErrorReason != c.reason || sr.Transaction != "" {
						t.Fatalf("settle = %+v, %v; want failure %s", sr, err, c.reason)
					}
				})
			}

			// Settle, then the nonce is used.
			sr, err := client.Settle(ctx, good, requirements(good, nil))
			if err != nil || !sr.Success {
				t.Fatalf("settle: %+v, %v", sr, err)
			}
			a, _ := eip3009.FromPayload(good.Payload.Authorization)
			if sr.Transaction != x402test.TxHash(a.Nonce) || sr.Amount != "1000" || sr.Payer != b.Address() {
				t.Fatalf("settle = %+v", sr)
			}
			vr, err = client.Verify(ctx, good, requirements(good, nil))
			if err != nil || vr.IsValid || vr.InvalidReason != x402test.ReasonNonceAlreadyUsed {
				t.Fatalf("verify of a used nonce: %+v, %v", vr, err)
			}
			// The same nonce from a different payer is a different authorization.
			reuse := payment(t, other, nil, func(x *x402.Authorization) { x.Nonce = good.Payload.Authorization.Nonce })
			if vr, err := client.Verify(ctx, reuse, requirements(reuse, nil)); err != nil || !vr.IsValid {
				t.Fatalf("another payer's same nonce: %+v, %v", vr, err)
			}
		})
	}

	got := fac.Settlements()
	if len(got) != 2 || got[0].X402Version != 1 || got[1].X402Version != 2 {
		t.Fatalf("settlements = %+v", got)
	}
	for _, s := range got {
		if s.To != seller || s.Value != "1000" || s.Asset != usdcBaseSepolia || !strings.HasPrefix(s.Nonce, "0x") || len(s.Nonce) != 66 {
			t.Fatalf("settlement = %+v", s)
		}
	}
	if got[0].Network != "base-sepolia" || got[1].Network != "eip155:84532" {
		t.Fatalf("settlement networks = %s, %s", got[0].Network, got[1].Network)
	}
}

func TestFacilitatorOptions(t *testing.T) {
	// Only Base: a Base Sepolia payment is refused, and /supported lists only Base.
	base, _ := chains.Lookup("base")
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{Chains: []chains.Chain{base}})
	client := &x402.Facilitator{URL: fac.URL()}
	p := payment(t, x402test.NewBuyer(t, 2), nil, nil)
	vr, err := client.Verify(context.Background(), p, requirements(p, nil))
	if err != nil || vr.InvalidReason != x402test.ReasonInvalidNetwork {
		t.Fatalf("verify = %+v, %v", vr, err)
	}
	sup, err := client.Supported(context.Background())
	if err != nil || len(sup.Kinds) != 3 || !sup.Supports(2, "exact", "eip155:8453") || !sup.Supports(1, "exact", "base") || !sup.Supports(2, "upto", "eip155:8453") {
		t.Fatalf("supported = %+v, %v", sup, err)
	}

	// A clock in the future makes a fresh payment expired.
	later := x402test.NewFacilitator(t, x402test.FacilitatorOptions{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	vr, err = (&x402.Facilitator{URL: later.URL()}).Verify(context.Background(), p, requirements(p, nil))
	if err != nil || vr.InvalidReason != x402test.ReasonExpired {
		t.Fatalf("verify with a later clock = %+v, %v", vr, err)
	}
}

func TestFacilitatorFailuresAndDown(t *testing.T) {
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	client := &x402.Facilitator{URL: fac.URL()}
	ctx := context.Background()
	p := payment(t, x402test.NewBuyer(t, 2), nil, nil)
	req := requirements(p, nil)

	fac.FailNextSettle("insufficient_funds")
	sr, err := client.Settle(ctx, p, req)
	if err != nil || sr.Success || sr.ErrorReason != "insufficient_funds" {
		t.Fatalf("failed settle = %+v, %v", sr, err)
	}
	if len(fac.Settlements()) != 0 || fac.SettleCalls() != 1 {
		t.Fatal("a failed settlement was recorded")
	}

	fac.SetDown(true)
	if _, err := client.Verify(ctx, p, req); !errors.Is(err, x402.ErrFacilitatorUnavailable) {
		t.Fatalf("down: %v", err)
	}
	fac.SetDown(false)
	fac.SetDropConnections(true)
	if _, err := client.Settle(ctx, p, req); !errors.Is(err, x402.ErrFacilitatorUnavailable) {
		t.Fatalf("dropping: %v", err)
	}
	fac.SetDropConnections(false)

	// The nonce is still unused after the failures; two concurrent settles, one wins.
	var wg sync.WaitGroup
	results := make([]*x402.SettleResponse, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = client.Settle(ctx, p, req)
		}()
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		if r != nil && r.Success {
			wins++
		} else if r == nil || r.ErrorReason != x402test.ReasonNonceAlreadyUsed {
			t.Fatalf("concurrent settle = %+v", r)
		}
	}
	if wins != 1 || len(fac.Settlements()) != 1 {
		t.Fatalf("%d concurrent settles succeeded", wins)
	}

	// Malformed requests are 400 with a decoded result.
	resp, err := http.Post(fac.URL()+"/verify", "application/json", strings.NewReader(`{"x402Version":2}`))
	if err != nil {
		t.Fatal(err)
	}
	var vr x402.VerifyResponse
	_ = json.NewDecoder(resp.Body).Decode(&vr)
	resp.Body.Close()
	if resp.StatusCode != 400 || vr.IsValid || vr.InvalidReason != x402test.ReasonInvalidPayload {
		t.Fatalf("malformed: %d %+v", resp.StatusCode, vr)
	}
}

// newSeller is a minimal x402 server built from the package's pieces: challenge in both
// generations, Match, verify, upstream, settle, receipt (in a trailer on /stream).
func newSeller(t *testing.T, fac *x402test.Facilitator) *httptest.Server {
	client := &x402.Facilitator{URL: fac.URL()}
	o := offer()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := x402.ResourceInfo{URL: "http://" + r.Host + r.URL.Path, Description: "api", MimeType: "application/json"}
		header, receiptName := r.Header.Get(x402.HeaderPaymentSignature), x402.HeaderPaymentResponse
		if header == "" {
			header, receiptName = r.Header.Get(x402.HeaderXPayment), x402.HeaderXPaymentResponse
		}
		if header == "" {
			h, _ := x402.EncodeHeader(o.PaymentRequiredV2(res, "payment required"))
			w.Header().Set(x402.HeaderPaymentRequired, h)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusPaymentRequired)
			_ = json.NewEncoder(w).Encode(o.PaymentRequiredV1(res, "X-PAYMENT header is required"))
			return
		}
		p, err := x402.DecodePaymentHeader(header, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if e := o.Match(p, time.Now()); e != nil {
			http.Error(w, e.Error(), e.Status)
			return
		}
		req := o.RequirementsFor(p, res)
		if vr, err := client.Verify(r.Context(), p, req); err != nil || !vr.IsValid {
			http.Error(w, fmt.Sprintf("verify: %+v %v", vr, err), http.StatusPaymentRequired)
			return
		}
		body, _ := io.ReadAll(r.Body)
		stream := r.URL.Path == "/stream"
		if stream {
			w.Header().Set("Trailer", receiptName)
			w.WriteHeader(200)
			_, _ = fmt.Fprintf(w, "data: %s\n\n", body)
			w.(http.Flusher).Flush()
		}
		sr, err := client.Settle(r.Context(), p, req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		h, _ := x402.EncodeHeader(sr)
		w.Header().Set(receiptName, h)
		if !stream {
			w.WriteHeader(200)
			_, _ = fmt.Fprintf(w, "paid: %s", body)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestBuyerDo(t *testing.T) {
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	srv := newSeller(t, fac)
	for _, version := range []int{1, 2} {
		for _, path := range []string{"/api", "/stream"} {
			t.Run(fmt.Sprintf("v%d%s", version, path), func(t *testing.T) {
				b := x402test.NewBuyer(t, version)
				req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader("hello"))
				resp, receipt, err := b.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "hello") {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				if receipt == nil || !receipt.Success || receipt.Payer != b.Address() || len(receipt.Transaction) != 66 {
					t.Fatalf("receipt = %+v", receipt)
				}
				s := fac.Settlements()
				if last := s[len(s)-1]; last.Payer != b.Address() || last.X402Version != version || last.Transaction != receipt.Transaction {
					t.Fatalf("settlement = %+v", last)
				}
			})
		}
	}
	if n := len(fac.Settlements()); n != 4 {
		t.Fatalf("%d settlements", n)
	}

	// Without a 402 the request goes through once, no receipt.
	free := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("free")) }))
	defer free.Close()
	req, _ := http.NewRequest(http.MethodGet, free.URL, nil)
	resp, receipt, err := x402test.NewBuyer(t, 2).Do(req)
	if err != nil || resp.StatusCode != 200 || receipt != nil {
		t.Fatalf("free: %v %+v %v", resp, receipt, err)
	}
	resp.Body.Close()
}

func TestBuyerRefusesForeignChallenges(t *testing.T) {
	// A v1 client cannot pay a 402 whose body is v2-shaped; a v2 client needs the header.
	o := offer()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusPaymentRequired)
		_ = json.NewEncoder(w).Encode(o.PaymentRequiredV2(resource, "pay"))
	}))
	defer srv.Close()
	for _, v := range []int{1, 2} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		resp, _, err := x402test.NewBuyer(t, v).Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		if err == nil {
			t.Errorf("v%d buyer paid a challenge it should not understand", v)
		}
	}
	// A v1 body listing a CAIP-2 network is refused as v1 clients' schemas refuse it.
	body := o.PaymentRequiredV1(resource, "pay")
	body.Accepts = append(body.Accepts, body.Accepts[0])
	body.Accepts[1].Network = "eip155:84532"
	raw, _ := json.Marshal(body)
	if _, err := x402test.ChooseV1(raw); err == nil || !strings.Contains(err.Error(), "v1 network") {
		t.Fatalf("ChooseV1 = %v", err)
	}
}

// upto at the facilitator: verify takes the authorized maximum; settle takes any amount up to
// it (the transfer is that amount), refuses more, and settles zero without a transaction or
// spending the nonce.
func TestFacilitatorUpto(t *testing.T) {
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	client := &x402.Facilitator{URL: fac.URL()}
	ctx := context.Background()
	b := x402test.NewBuyer(t, 2)
	req := x402.Requirements{Scheme: x402.SchemeUpto, Network: "eip155:84532", Amount: "5000", Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
		PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", MaxTimeoutSeconds: 60, Extra: map[string]any{"facilitatorAddress": x402test.Signer}}
	p, err := b.PayloadV2(req, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if vr, err := client.Verify(ctx, p, req); err != nil || !vr.IsValid {
		t.Fatalf("verify = %+v, %v", vr, err)
	}
	at := func(amount string) x402.Requirements { r := req; r.Amount = amount; return r }
	if vr, _ := client.Verify(ctx, p, at("4999")); vr.IsValid {
		t.Fatal("verify accepted requirements below the signed maximum")
	}
	if sr, _ := client.Settle(ctx, p, at("5001")); sr.Success || sr.ErrorReason != x402test.ReasonSettlementExceedsAmount {
		t.Fatalf("settling above the maximum: %+v", sr)
	}
	if sr, _ := client.Settle(ctx, p, at("0")); !sr.Success || sr.Transaction != "" || sr.Amount != "0" || fac.ZeroSettlements() != 1 {
		t.Fatalf("zero settlement: %+v", sr)
	}
	sr, err := client.Settle(ctx, p, at("1234"))
	if err != nil || !sr.Success || sr.Amount != "1234" {
		t.Fatalf("settle 1234 = %+v, %v", sr, err)
	}
	st := fac.Settlements()
	if len(st) != 1 || st[0].Value != "1234" || st[0].Authorized != "5000" || st[0].Scheme != x402.SchemeUpto || st[0].Method != x402.TransferPermit2 {
		t.Fatalf("settlements %+v", st)
	}
	if sr, _ := client.Settle(ctx, p, at("1")); sr.Success {
		t.Fatal("one authorization settled twice")
	}
	other := x402test.NewBuyer(t, 2)
	other.Permit2 = func(a *x402.Permit2Authorization) {
		a.Witness.Facilitator = "0x1111111111111111111111111111111111111111"
	}
	q, _ := other.PayloadV2(req, nil, nil)
	if vr, _ := client.Verify(ctx, q, req); vr.IsValid {
		t.Fatal("an authorization bound to another facilitator verified")
	}
}
