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

// fuzzMaxLen is the limit the fuzzers decode re-encoded headers with: re-encoding may be
// longer than the input (e.g. \u escapes expanded, base64 padding added), and the round trip
// is about the JSON, not the size limit.
const fuzzMaxLen = 1 << 20

// paymentSeeds are payment headers to start the fuzzers from: valid ones produced by the
// package's own encoder, the spec examples, and malformed variants.
func paymentSeeds(f *testing.F) []string {
	f.Helper()
	p, err := x402.DecodePaymentHeader(specV2Header, 0)
	if err != nil {
		f.Fatal(err)
	}
	v1 := &x402.PaymentPayload{X402Version: x402.Version1, Scheme: "exact", Network: "base-sepolia", Payload: p.Payload}
	v2min := *p
	v2min.Resource, v2min.Extensions, v2min.Raw = nil, nil, nil
	v2ext := *p
	v2ext.Extensions = map[string]any{"bazaar": map[string]any{"n": 1.5, "l": []any{"a", true, nil}}}
	var seeds []string
	for _, v := range []*x402.PaymentPayload{p, v1, &v2min, &v2ext} {
		h, err := x402.EncodeHeader(v)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, h)
	}
	raw, _ := base64.StdEncoding.DecodeString(specV2Header)
	low := strings.Replace(specV1JSON, specSig, specSig[:len(specSig)-2]+"00", 1) // v = 0
	seeds = append(seeds,
		specV2Header,
		b64(specV1JSON),
		b64(low),
		base64.RawURLEncoding.EncodeToString(raw),
		"  "+specV2Header+"  ",
		specV2Header[:100],
		specV2Header+"===",
		"", "=", "====", "%%%", "-_-_", "\x00",
		b64(""), b64("null"), b64("{}"), b64("[]"), b64(`"x"`), b64(`{"x402Version":2}`),
		b64(`{"x402Version":1} {}`),
		b64(`{"x402Version":2,"accepted":{},"payload":{}}`),
		b64(`{"x402Version":2,"accepted":null,"payload":null,"resource":{},"extensions":{}}`),
		b64(`{"x402Version":1e400}`), b64(`{"x402Version":-1}`), b64(`{"x402Version":2.0}`),
		b64(strings.Replace(specV1JSON, `"scheme": "exact",`, `"scheme": "exact", "scheme": "upto",`, 1)),
		b64(strings.Replace(specV1JSON, `"value": "10000"`, `"value": "0x`+strings.Repeat("f", 65)+`"`, 1)),
		b64(strings.Replace(specV1JSON, specSig, "0X"+strings.Repeat("AB", 200), 1)),
		b64(strings.Replace(specV1JSON, `"base-sepolia"`, `"\ud800\u0000"`, 1)),
	)
	return seeds
}

// normalise makes a decoded payment comparable across a round trip: Raw is the bytes that
// were sent (which differ), and an empty extra or extensions object is written as nothing
// (omitempty), so {} and absent are the same value.
func normalise(p *x402.PaymentPayload) {
	p.Raw = nil
	if len(p.Extensions) == 0 {
		p.Extensions = nil
	}
	if p.Accepted != nil && len(p.Accepted.Extra) == 0 {
		p.Accepted.Extra = nil
	}
}

// FuzzDecodePaymentHeader: DecodePaymentHeader (PAYMENT-SIGNATURE, X-PAYMENT) never panics,
// fails only with a 400 invalid_payment_header *x402.Error, and whatever it accepts
// re-encodes with EncodeHeader and decodes back to the same payment.
func FuzzDecodePaymentHeader(f *testing.F) {
	for _, s := range paymentSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		p, err := x402.DecodePaymentHeader(h, 0)
		if err != nil {
			var xe *x402.Error
			if !errors.As(err, &xe) || xe.Status != http.StatusBadRequest || xe.Reason != x402.ReasonInvalidPaymentHeader || xe.Message == "" {
				t.Fatalf("error is not a 400 invalid_payment_header *x402.Error: %#v", err)
			}
			return
		}
		if p.X402Version != x402.Version1 && p.X402Version != x402.Version2 {
			t.Fatalf("accepted x402Version %d", p.X402Version)
		}
		if p.X402Version == x402.Version2 && p.Accepted == nil {
			t.Fatal("accepted a v2 payment without accepted")
		}
		if len(p.Raw) == 0 || !json.Valid(p.Raw) {
			t.Fatalf("Raw is not valid JSON: %q", p.Raw)
		}
		// Raw is what the facilitator is given: it must parse to the same payment.
		fromRaw, err := x402.ParsePaymentPayload(p.Raw)
		if err != nil {
			t.Fatalf("ParsePaymentPayload(Raw) failed: %v\nRaw: %s", err, p.Raw)
		}
		enc, err := x402.EncodeHeader(p)
		if err != nil {
			t.Fatalf("EncodeHeader of a decoded payment failed: %v\ninput: %q", err, h)
		}
		back, err := x402.DecodePaymentHeader(enc, fuzzMaxLen)
		if err != nil {
			t.Fatalf("DecodePaymentHeader(EncodeHeader(p)) failed: %v\ninput: %q\nencoded: %q", err, h, enc)
		}
		normalise(p)
		normalise(back)
		normalise(fromRaw)
		if !reflect.DeepEqual(p, back) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v\ninput: %q", back, p, h)
		}
		if !reflect.DeepEqual(p, fromRaw) {
			t.Fatalf("Raw parses to another payment:\n got %+v\nwant %+v\ninput: %q", fromRaw, p, h)
		}
		enc2, err := x402.EncodeHeader(back)
		if err != nil || enc2 != enc {
			t.Fatalf("EncodeHeader not stable: %v\n%q\n%q", err, enc, enc2)
		}
	})
}

// normaliseRequired is normalise for a PaymentRequired.
func normaliseRequired(pr *x402.PaymentRequired) {
	if len(pr.Extensions) == 0 {
		pr.Extensions = nil
	}
	for i := range pr.Accepts {
		if len(pr.Accepts[i].Extra) == 0 {
			pr.Accepts[i].Extra = nil
		}
	}
}

// FuzzDecodePaymentRequired: DecodeHeader of a PAYMENT-REQUIRED challenge (what a client
// reads) never panics, fails only with a 400 *x402.Error, and whatever it accepts re-encodes
// and decodes back to the same challenge.
func FuzzDecodePaymentRequired(f *testing.F) {
	o := testOffer()
	for _, pr := range []x402.PaymentRequired{
		o.PaymentRequiredV2(resource, "payment required"),
		o.PaymentRequiredV2(x402.ResourceInfo{}, ""),
		{X402Version: 2, Accepts: []x402.Requirements{}, Extensions: map[string]any{"bazaar": map[string]any{"x": []any{1.0, "y"}}}},
	} {
		h, err := x402.EncodeHeader(pr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h)
	}
	for _, s := range []string{"", "=", "%%%", b64("null"), b64("{}"), b64("[]"), b64(`{"accepts":null}`),
		b64(`{"x402Version":2,"accepts":[{}],"extensions":{}}`), b64(`{"X402VERSION":2,"accepts":[{"extra":{}}]}`),
		b64(`{"x402Version":2,"accepts":[{"maxTimeoutSeconds":1e99}]}`), b64(`{"resource":{"url":"\ud800"}}`),
		b64(`{"x402Version":2} trailing`), b64(`{"x402Version":2,"x402Version":1}`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		var pr x402.PaymentRequired
		if err := x402.DecodeHeader(h, 0, &pr); err != nil {
			var xe *x402.Error
			if !errors.As(err, &xe) || xe.Status != http.StatusBadRequest || xe.Message == "" {
				t.Fatalf("error is not a 400 *x402.Error: %#v", err)
			}
			return
		}
		enc, err := x402.EncodeHeader(pr)
		if err != nil {
			t.Fatalf("EncodeHeader of a decoded challenge failed: %v\ninput: %q", err, h)
		}
		var back x402.PaymentRequired
		if err := x402.DecodeHeader(enc, fuzzMaxLen, &back); err != nil {
			t.Fatalf("DecodeHeader(EncodeHeader(pr)) failed: %v\ninput: %q\nencoded: %q", err, h, enc)
		}
		normaliseRequired(&pr)
		normaliseRequired(&back)
		if !reflect.DeepEqual(pr, back) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v\ninput: %q", back, pr, h)
		}
		enc2, err := x402.EncodeHeader(back)
		if err != nil || enc2 != enc {
			t.Fatalf("EncodeHeader not stable: %v\n%q\n%q", err, enc, enc2)
		}
	})
}
