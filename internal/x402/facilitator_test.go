package x402_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/x402test"
)

func TestFacilitatorClientAgainstX402test(t *testing.T) {
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	client := &x402.Facilitator{URL: fac.URL() + "/"}
	ctx := context.Background()
	o := testOffer()

	for _, version := range []int{1, 2} {
		b := x402test.NewBuyer(t, version)
		var h string
		var err error
		if version == 2 {
			h, err = b.SignV2(o.V2(resource), nil)
		} else {
			h, err = b.SignV1(o.V1(resource), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := x402.DecodePaymentHeader(h, 0)
		if err != nil {
			t.Fatal(err)
		}
		req := o.RequirementsFor(p, resource)
		vr, err := client.Verify(ctx, p, req)
		if err != nil || !vr.IsValid || vr.Payer != b.Address() {
			t.Fatalf("v%d verify = %+v, %v", version, vr, err)
		}
		// The facilitator got {x402Version, paymentPayload: the bytes sent, paymentRequirements}.
		reqs := fac.Requests()
		var body struct {
			X402Version         int             `json:"x402Version"`
			PaymentPayload      json.RawMessage `json:"paymentPayload"`
			PaymentRequirements map[string]any  `json:"paymentRequirements"`
		}
		if err := json.Unmarshal(reqs[len(reqs)-1].Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.X402Version != version || string(body.PaymentPayload) != string(p.Raw) {
			t.Fatalf("v%d body: version %d payload %s", version, body.X402Version, body.PaymentPayload)
		}
		amountKey := map[int]string{1: "maxAmountRequired", 2: "amount"}[version]
		if body.PaymentRequirements[amountKey] != "1000" {
			t.Fatalf("v%d requirements = %v", version, body.PaymentRequirements)
		}

		sr, err := client.Settle(ctx, p, req)
		if err != nil || !sr.Success || sr.Payer != b.Address() || len(sr.Transaction) != 66 || sr.Network == "" {
			t.Fatalf("v%d settle = %+v, %v", version, sr, err)
		}
		vr, err = client.Verify(ctx, p, req)
		if err != nil || vr.IsValid || vr.InvalidReason != x402test.ReasonNonceAlreadyUsed {
			t.Fatalf("v%d verify after settle = %+v, %v", version, vr, err)
		}
		sr, err = client.Settle(ctx, p, req)
		if err != nil || sr.Success || sr.ErrorReason != x402test.ReasonNonceAlreadyUsed {
			t.Fatalf("v%d settle twice = %+v, %v", version, sr, err)
		}
	}
	if n := len(fac.Settlements()); n != 2 {
		t.Fatalf("%d settlements, want 2", n)
	}

	sup, err := client.Supported(ctx)
	if err != nil || !sup.Supports(2, "exact", "eip155:84532") || !sup.Supports(1, "exact", "base-sepolia") {
		t.Fatalf("supported = %+v, %v", sup, err)
	}
}

func TestFacilitatorClientArgumentErrors(t *testing.T) {
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	client := &x402.Facilitator{URL: fac.URL()}
	b := x402test.NewBuyer(t, 2)
	p := payV2(t, b, testOffer().V2(resource), nil)
	for _, req := range []any{testOffer().V1(resource), nil} {
		_, err := client.Verify(context.Background(), p, req)
		if err == nil || errors.Is(err, x402.ErrFacilitatorUnavailable) {
			t.Fatalf("Verify(v2 payment, %T) = %v, want an argument error", req, err)
		}
	}
	if fac.Verifies() != 0 {
		t.Fatal("the facilitator was called")
	}
	// A payload built in memory (no Raw) is marshalled from its fields.
	vr, err := client.Verify(context.Background(), p, testOffer().V2(resource))
	if err != nil || !vr.IsValid {
		t.Fatalf("Verify(in-memory payload) = %+v, %v", vr, err)
	}
}

func TestFacilitatorClientUnavailable(t *testing.T) {
	b := x402test.NewBuyer(t, 2)
	p := payV2(t, b, testOffer().V2(resource), nil)
	req := testOffer().V2(resource)

	serve := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	slow := serve(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client going away only once the body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	status := func(code int, body string) string {
		return serve(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		})
	}
	hangup := serve(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()

	down := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	down.SetDown(true)
	dropped := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	dropped.SetDropConnections(true)

	cases := map[string]string{
		"timeout":              slow,
		"500":                  status(500, `{"isValid":false}`),
		"502 html":             status(502, "<html>bad gateway</html>"),
		"429":                  status(429, `{"isValid":false,"invalidReason":"rate"}`),
		"404 not JSON":         status(404, "not found"),
		"400 JSON, not result": status(400, `{"error":"bad"}`),
		"200 not JSON":         status(200, "ok"),
		"200 no result":        status(200, `{}`),
		"connection closed":    hangup,
		"connection refused":   refused,
		"x402test down":        down.URL(),
		"x402test dropping":    dropped.URL(),
	}
	for name, url := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			client := &x402.Facilitator{URL: url, VerifyTimeout: 200 * time.Millisecond, SettleTimeout: 200 * time.Millisecond}
			start := time.Now()
			_, err := client.Verify(context.Background(), p, req)
			if !errors.Is(err, x402.ErrFacilitatorUnavailable) {
				t.Fatalf("Verify err = %v, want ErrFacilitatorUnavailable", err)
			}
			_, err = client.Settle(context.Background(), p, req)
			if !errors.Is(err, x402.ErrFacilitatorUnavailable) {
				t.Fatalf("Settle err = %v, want ErrFacilitatorUnavailable", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
	if down.Verifies() != 0 {
		t.Fatal("a down facilitator counted a verify")
	}
}

func TestFacilitatorClient4xxResult(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		if strings.HasSuffix(r.URL.Path, "/verify") {
			_, _ = w.Write([]byte(`{"isValid":false,"invalidReason":"invalid_payload","payer":"0xabc"}`))
		} else {
			_, _ = w.Write([]byte(`{"success":false,"errorReason":"invalid_payload","transaction":"","network":"eip155:84532"}`))
		}
	}))
	defer srv.Close()
	client := &x402.Facilitator{URL: srv.URL}
	p := payV2(t, x402test.NewBuyer(t, 2), testOffer().V2(resource), nil)
	vr, err := client.Verify(context.Background(), p, testOffer().V2(resource))
	if err != nil || vr.IsValid || vr.InvalidReason != "invalid_payload" || vr.Payer != "0xabc" {
		t.Fatalf("Verify = %+v, %v", vr, err)
	}
	sr, err := client.Settle(context.Background(), p, testOffer().V2(resource))
	if err != nil || sr.Success || sr.ErrorReason != "invalid_payload" {
		t.Fatalf("Settle = %+v, %v", sr, err)
	}
}

func TestFacilitatorClientSettleTimeoutIndependent(t *testing.T) {
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{SettleDelay: 300 * time.Millisecond})
	p := payV2(t, x402test.NewBuyer(t, 2), testOffer().V2(resource), nil)
	req := testOffer().V2(resource)
	short := &x402.Facilitator{URL: fac.URL(), SettleTimeout: 50 * time.Millisecond}
	if _, err := short.Settle(context.Background(), p, req); !errors.Is(err, x402.ErrFacilitatorUnavailable) {
		t.Fatalf("settle past its timeout: %v", err)
	}
	long := &x402.Facilitator{URL: fac.URL(), VerifyTimeout: 50 * time.Millisecond}
	sr, err := long.Settle(context.Background(), p, req)
	if err != nil || !sr.Success {
		t.Fatalf("settle within the default timeout: %+v, %v", sr, err)
	}
}

// No credential of the facilitator URL and nothing a facilitator answers reaches an error (and
// so a log line): an echoing facilitator would otherwise log the payment's signature.
func TestFacilitatorErrorsCarryNoSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(body) // echoes the request, signature included
	}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://obol:hunter2@", 1)
	p := &x402.PaymentPayload{X402Version: x402.Version2, Scheme: "exact", Network: "eip155:84532",
		Accepted: &x402.Requirements{Scheme: "exact", Network: "eip155:84532", Amount: "1", Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"},
		Payload:  x402.ExactEVMPayload{Signature: "0xdeadbeefsecretsignature"}}
	for _, f := range []*x402.Facilitator{{URL: u}, {URL: strings.Replace(u, srv.Listener.Addr().String(), "127.0.0.1:1", 1)}} {
		_, err := f.Verify(context.Background(), p, *p.Accepted)
		if err == nil {
			t.Fatal("no error")
		}
		for _, secret := range []string{"hunter2", "deadbeefsecretsignature"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains %q", err, secret)
			}
		}
	}
}
