package x402_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/obol/obol/internal/x402"
)

// The v2 PAYMENT-SIGNATURE example of specs/transports-v2/http.md, verbatim.
const specV2Header = "eyJ4NDAyVmVyc2lvbiI6MiwicmVzb3VyY2UiOnsidXJsIjoiaHR0cHM6Ly9hcGkuZXhhbXBsZS5jb20vcHJlbWl1bS1kYXRhIiwiZGVzY3JpcHRpb24iOiJBY2Nlc3MgdG8gcHJlbWl1bSBtYXJrZXQgZGF0YSIsIm1pbWVUeXBlIjoiYXBwbGljYXRpb24vanNvbiJ9LCJhY2NlcHRlZCI6eyJzY2hlbWUiOiJleGFjdCIsIm5ldHdvcmsiOiJlaXAxNTU6ODQ1MzIiLCJhbW91bnQiOiIxMDAwMCIsImFzc2V0IjoiMHgwMzZDYkQ1Mzg0MmM1NDI2NjM0ZTc5Mjk1NDFlQzIzMThmM2RDRjdlIiwicGF5VG8iOiIweDIwOTY5M0JjNmFmYzBDNTMyOGJBMzZGYUYwM0M1MTRFRjMxMjI4N0MiLCJtYXhUaW1lb3V0U2Vjb25kcyI6NjAsImV4dHJhIjp7Im5hbWUiOiJVU0RDIiwidmVyc2lvbiI6IjIifX0sInBheWxvYWQiOnsic2lnbmF0dXJlIjoiMHgyZDZhNzU4OGQ2YWNjYTUwNWNiZjBkOWE0YTIyN2UwYzUyYzZjMzQwMDhjOGU4OTg2YTEyODMyNTk3NjQxNzM2MDhhMmNlNjQ5NjY0MmUzNzdkNmRhOGRiYmY1ODM2ZTliZDE1MDkyZjllY2FiMDVkZWQzZDYyOTNhZjE0OGI1NzFjIiwiYXV0aG9yaXphdGlvbiI6eyJmcm9tIjoiMHg4NTdiMDY1MTlFOTFlM0E1NDUzODc5MWJEYmIwRTIyMzczZTM2YjY2IiwidG8iOiIweDIwOTY5M0JjNmFmYzBDNTMyOGJBMzZGYUYwM0M1MTRFRjMxMjI4N0MiLCJ2YWx1ZSI6IjEwMDAwIiwidmFsaWRBZnRlciI6IjE3NDA2NzIwODkiLCJ2YWxpZEJlZm9yZSI6IjE3NDA2NzIxNTQiLCJub25jZSI6IjB4ZjM3NDY2MTNjMmQ5MjBiNWZkYWJjMDg1NmYyYWViMmQ0Zjg4ZWU2MDM3YjhjYzVkMDRhNzFhNDQ2MmYxMzQ4MCJ9fX0="

const specSig = "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c"

var specAuth = x402.Authorization{
	From:        "0x857b06519E91e3A54538791bDbb0E22373e36b66",
	To:          "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
	Value:       "10000",
	ValidAfter:  "1740672089",
	ValidBefore: "1740672154",
	Nonce:       "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480",
}

// The v1 X-PAYMENT example of specs/schemes/exact/scheme_exact_evm.md.
const specV1JSON = `{
  "x402Version": 1,
  "scheme": "exact",
  "network": "base-sepolia",
  "payload": {
    "signature": "` + specSig + `",
    "authorization": {
      "from": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
      "to": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
      "value": "10000",
      "validAfter": "1740672089",
      "validBefore": "1740672154",
      "nonce": "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"
    }
  }
}`

func TestDecodeSpecV2Example(t *testing.T) {
	p, err := x402.DecodePaymentHeader(specV2Header, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.X402Version != 2 || p.Scheme != "exact" || p.Network != "eip155:84532" {
		t.Fatalf("got version %d scheme %q network %q", p.X402Version, p.Scheme, p.Network)
	}
	want := &x402.Requirements{Scheme: "exact", Network: "eip155:84532", Amount: "10000", Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
		PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", MaxTimeoutSeconds: 60, Extra: map[string]any{"name": "USDC", "version": "2"}}
	if !reflect.DeepEqual(p.Accepted, want) {
		t.Fatalf("accepted = %+v", p.Accepted)
	}
	if p.Resource == nil || p.Resource.URL != "https://api.example.com/premium-data" || p.Resource.MimeType != "application/json" {
		t.Fatalf("resource = %+v", p.Resource)
	}
	if p.Payload.Signature != specSig || p.Payload.Authorization != specAuth {
		t.Fatalf("payload = %+v", p.Payload)
	}
	raw, _ := base64.StdEncoding.DecodeString(specV2Header)
	if string(p.Raw) != string(raw) {
		t.Fatalf("Raw is not the bytes sent:\n%s", p.Raw)
	}
}

func TestDecodeSpecV1Example(t *testing.T) {
	h := base64.StdEncoding.EncodeToString([]byte(specV1JSON))
	p, err := x402.DecodePaymentHeader(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.X402Version != 1 || p.Scheme != "exact" || p.Network != "base-sepolia" || p.Accepted != nil || p.Resource != nil {
		t.Fatalf("got %+v", p)
	}
	if p.Payload.Signature != specSig || p.Payload.Authorization != specAuth {
		t.Fatalf("payload = %+v", p.Payload)
	}
	if string(p.Raw) != specV1JSON {
		t.Fatal("Raw is not the bytes sent")
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	p, err := x402.DecodePaymentHeader(specV2Header, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []*x402.PaymentPayload{p, {X402Version: 1, Scheme: "exact", Network: "base", Payload: p.Payload}} {
		h, err := x402.EncodeHeader(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := x402.DecodePaymentHeader(h, 0)
		if err != nil {
			t.Fatal(err)
		}
		out.Raw, in.Raw = nil, nil
		if !reflect.DeepEqual(out, in) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
		}
	}

	// The other header documents round-trip through EncodeHeader/DecodeHeader.
	pr := x402.PaymentRequired{X402Version: 2, Error: "pay", Resource: &x402.ResourceInfo{URL: "https://x/y"},
		Accepts: []x402.Requirements{*p.Accepted}, Extensions: map[string]any{"bazaar": map[string]any{"info": "i"}}}
	sr := x402.SettleResponse{Success: true, Transaction: "0x" + strings.Repeat("ab", 32), Network: "eip155:84532", Payer: specAuth.From, Amount: "10000"}
	for _, v := range []any{&pr, &sr} {
		h, err := x402.EncodeHeader(v)
		if err != nil {
			t.Fatal(err)
		}
		out := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := x402.DecodeHeader(h, 0, out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out, v) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, v)
		}
	}
	// A failed settlement still carries transaction and network (required by the spec).
	b, _ := json.Marshal(x402.SettleResponse{ErrorReason: "insufficient_funds", Network: "eip155:84532"})
	if string(b) != `{"success":false,"errorReason":"insufficient_funds","transaction":"","network":"eip155:84532"}` {
		t.Fatalf("failed settle JSON = %s", b)
	}
}

func TestDecodeBase64Variants(t *testing.T) {
	raw, _ := base64.StdEncoding.DecodeString(specV2Header)
	for name, h := range map[string]string{
		"std":        base64.StdEncoding.EncodeToString(raw),
		"raw std":    base64.RawStdEncoding.EncodeToString(raw),
		"url":        base64.URLEncoding.EncodeToString(raw),
		"raw url":    base64.RawURLEncoding.EncodeToString(raw),
		"whitespace": "  " + base64.StdEncoding.EncodeToString(raw) + " ",
	} {
		if _, err := x402.DecodePaymentHeader(h, 0); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSignatureRecoveryIDNormalised(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal([]byte(specV1JSON), &m); err != nil {
		t.Fatal(err)
	}
	low := specSig[:len(specSig)-2] + "01" // v = 28 written as 1
	m["payload"].(map[string]any)["signature"] = low
	m["extensions"] = map[string]any{"keep": "me"}
	b, _ := json.Marshal(m)
	p, err := x402.DecodePaymentHeader(base64.StdEncoding.EncodeToString(b), 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Payload.Signature != specSig {
		t.Fatalf("signature = %s, want v rewritten to 0x1c", p.Payload.Signature)
	}
	var fwd map[string]any
	if err := json.Unmarshal(p.Raw, &fwd); err != nil {
		t.Fatal(err)
	}
	if got := fwd["payload"].(map[string]any)["signature"]; got != specSig {
		t.Fatalf("Raw signature = %v", got)
	}
	if fwd["extensions"].(map[string]any)["keep"] != "me" {
		t.Fatal("Raw lost an unknown member")
	}
}

func mutateJSON(t *testing.T, f func(m map[string]any)) string {
	t.Helper()
	raw, _ := base64.StdEncoding.DecodeString(specV2Header)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, _ := json.Marshal(m)
	return base64.StdEncoding.EncodeToString(b)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestDecodeRejects(t *testing.T) {
	auth := func(m map[string]any) map[string]any {
		return m["payload"].(map[string]any)["authorization"].(map[string]any)
	}
	cases := map[string]string{
		"empty":                 "",
		"not base64":            "%%%not-base64%%%",
		"not JSON":              b64("hello"),
		"JSON array":            b64(`[1,2]`),
		"trailing data":         b64(`{"x402Version":2} {}`),
		"truncated":             specV2Header[:100],
		"no version":            mutateJSON(t, func(m map[string]any) { delete(m, "x402Version") }),
		"version 3":             mutateJSON(t, func(m map[string]any) { m["x402Version"] = 3 }),
		"version string":        mutateJSON(t, func(m map[string]any) { m["x402Version"] = "2" }),
		"no accepted":           mutateJSON(t, func(m map[string]any) { delete(m, "accepted") }),
		"accepted no payTo":     mutateJSON(t, func(m map[string]any) { delete(m["accepted"].(map[string]any), "payTo") }),
		"accepted bad amount":   mutateJSON(t, func(m map[string]any) { m["accepted"].(map[string]any)["amount"] = "1.5" }),
		"no payload":            mutateJSON(t, func(m map[string]any) { delete(m, "payload") }),
		"no signature":          mutateJSON(t, func(m map[string]any) { delete(m["payload"].(map[string]any), "signature") }),
		"short signature":       mutateJSON(t, func(m map[string]any) { m["payload"].(map[string]any)["signature"] = "0x1234" }),
		"signature not hex":     mutateJSON(t, func(m map[string]any) { m["payload"].(map[string]any)["signature"] = "0x" + strings.Repeat("zz", 65) }),
		"no authorization":      mutateJSON(t, func(m map[string]any) { delete(m["payload"].(map[string]any), "authorization") }),
		"no nonce":              mutateJSON(t, func(m map[string]any) { delete(auth(m), "nonce") }),
		"bad from":              mutateJSON(t, func(m map[string]any) { auth(m)["from"] = "0x1234" }),
		"value negative":        mutateJSON(t, func(m map[string]any) { auth(m)["value"] = "-1" }),
		"value number":          mutateJSON(t, func(m map[string]any) { auth(m)["value"] = 10000 }),
		"value too big":         mutateJSON(t, func(m map[string]any) { auth(m)["value"] = "0x1" + strings.Repeat("0", 64) }),
		"validBefore empty":     mutateJSON(t, func(m map[string]any) { auth(m)["validBefore"] = "" }),
		"v1 without network":    b64(strings.Replace(specV1JSON, `"network": "base-sepolia",`, "", 1)),
		"duplicate key":         b64(strings.Replace(specV1JSON, `"scheme": "exact",`, `"scheme": "exact", "scheme": "upto",`, 1)),
		"key in the wrong case": b64(strings.Replace(specV1JSON, `"network"`, `"NETWORK"`, 1)),
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := x402.DecodePaymentHeader(h, 0)
			var xe *x402.Error
			if !errors.As(err, &xe) {
				t.Fatalf("err = %v, want *x402.Error", err)
			}
			if xe.Status != http.StatusBadRequest || xe.Reason != x402.ReasonInvalidPaymentHeader || xe.Message == "" {
				t.Fatalf("err = %+v", xe)
			}
		})
	}
}

func TestDecodeOversize(t *testing.T) {
	if _, err := x402.DecodePaymentHeader(specV2Header, len(specV2Header)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := x402.DecodePaymentHeader(specV2Header, len(specV2Header)-1)
	var xe *x402.Error
	if !errors.As(err, &xe) || xe.Status != 400 || !strings.Contains(xe.Message, "limit") {
		t.Fatalf("over the limit: %v", err)
	}
	huge := strings.Repeat("A", x402.DefaultMaxHeaderLen+1)
	if _, err := x402.DecodePaymentHeader(huge, 0); !errors.As(err, &xe) || xe.Status != 400 {
		t.Fatalf("over the default limit: %v", err)
	}
}

func TestParseUint256(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "007": "7", "0x10": "16", "0XfF": "255",
		"115792089237316195423570985008687907853269984665640564039457584007913129639935": "115792089237316195423570985008687907853269984665640564039457584007913129639935"} {
		n, err := x402.ParseUint256(in)
		if err != nil || n.String() != want {
			t.Errorf("ParseUint256(%q) = %v, %v", in, n, err)
		}
	}
	for _, in := range []string{"", "-1", "+1", "1e3", "1.0", "0x", "0xg", " 1", "115792089237316195423570985008687907853269984665640564039457584007913129639936"} {
		if _, err := x402.ParseUint256(in); err == nil {
			t.Errorf("ParseUint256(%q) accepted", in)
		}
	}
}
