package x402_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/x402test"
)

const (
	usdcBaseSepolia = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
	seller          = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
	otherAddr       = "0x857b06519E91e3A54538791bDbb0E22373e36b66"
)

func testOffer() x402.Offer {
	return x402.Offer{Scheme: "exact", Network: "eip155:84532", NetworkName: "base-sepolia", Asset: usdcBaseSepolia,
		Amount: "1000", PayTo: seller, MaxTimeoutSeconds: 300, EIP712Name: "USDC", EIP712Version: "2"}
}

var resource = x402.ResourceInfo{URL: "https://seller.example/api/x", Description: "x", MimeType: "application/json"}

func TestOfferRequirements(t *testing.T) {
	o := testOffer()
	v2 := o.V2(resource)
	if v2.Network != "eip155:84532" || v2.Amount != "1000" || v2.Asset != usdcBaseSepolia || v2.PayTo != seller ||
		v2.MaxTimeoutSeconds != 300 || v2.Extra["name"] != "USDC" || v2.Extra["version"] != "2" {
		t.Fatalf("V2 = %+v", v2)
	}
	v1 := o.V1(resource)
	if v1.Network != "base-sepolia" || v1.MaxAmountRequired != "1000" || v1.Resource != resource.URL || v1.MimeType != "application/json" ||
		v1.Asset != usdcBaseSepolia || v1.Extra["name"] != "USDC" {
		t.Fatalf("V1 = %+v", v1)
	}
	pr := o.PaymentRequiredV2(resource, "payment required")
	if pr.X402Version != 2 || len(pr.Accepts) != 2 || pr.Accepts[0].Network != "eip155:84532" || pr.Accepts[1].Network != "base-sepolia" || pr.Resource.URL != resource.URL {
		t.Fatalf("PaymentRequiredV2 = %+v", pr)
	}
	if pr1 := o.PaymentRequiredV1(resource, "pay"); pr1.X402Version != 1 || len(pr1.Accepts) != 1 || pr1.Accepts[0].Network != "base-sepolia" {
		t.Fatalf("PaymentRequiredV1 = %+v", pr1)
	}
}

func payV2(t *testing.T, b *x402test.Buyer, req x402.Requirements, mutate func(*x402.Authorization)) *x402.PaymentPayload {
	t.Helper()
	p, err := b.PayloadV2(req, &resource, mutate)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func payV1(t *testing.T, b *x402test.Buyer, req x402.RequirementsV1, mutate func(*x402.Authorization)) *x402.PaymentPayload {
	t.Helper()
	p, err := b.PayloadV1(req, mutate)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMatch(t *testing.T) {
	o := testOffer()
	now := time.Now()
	b2 := x402test.NewBuyer(t, 2)
	b2.Now = func() time.Time { return now }
	b1 := x402test.NewBuyer(t, 1)
	b1.Now = b2.Now
	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }

	// Good payments, both generations, either network spelling, any address case.
	good := map[string]*x402.PaymentPayload{
		"v2": payV2(t, b2, o.V2(resource), nil),
		"v2 legacy alias": func() *x402.PaymentPayload {
			r := o.V2(resource)
			r.Network = "base-sepolia"
			return payV2(t, b2, r, nil)
		}(),
		"v2 lower-case": func() *x402.PaymentPayload {
			r := o.V2(resource)
			r.Asset, r.PayTo = strings.ToLower(r.Asset), strings.ToLower(r.PayTo)
			return payV2(t, b2, r, nil)
		}(),
		"v1": payV1(t, b1, o.V1(resource), nil),
		"v1 CAIP-2": func() *x402.PaymentPayload {
			r := o.V1(resource)
			r.Network = "eip155:84532"
			return payV1(t, b1, r, nil)
		}(),
	}
	for name, p := range good {
		if e := o.Match(p, now); e != nil {
			t.Errorf("%s: %v", name, e)
		}
	}

	type tc struct {
		p      *x402.PaymentPayload
		reason string
		field  string
	}
	v2 := func(f func(*x402.Requirements), m func(*x402.Authorization)) *x402.PaymentPayload {
		r := o.V2(resource)
		if f != nil {
			f(&r)
		}
		return payV2(t, b2, r, m)
	}
	v1 := func(f func(*x402.RequirementsV1), m func(*x402.Authorization)) *x402.PaymentPayload {
		r := o.V1(resource)
		if f != nil {
			f(&r)
		}
		return payV1(t, b1, r, m)
	}
	cases := map[string]tc{
		"v2 scheme":            {v2(func(r *x402.Requirements) { r.Scheme = "subscription" }, nil), x402.ReasonSchemeMismatch, "scheme"},
		"v1 scheme":            {v1(func(r *x402.RequirementsV1) { r.Scheme = "subscription" }, nil), x402.ReasonSchemeMismatch, "scheme"},
		"v2 network":           {v2(func(r *x402.Requirements) { r.Network = "eip155:8453" }, nil), x402.ReasonNetworkMismatch, "network"},
		"v2 network legacy":    {v2(func(r *x402.Requirements) { r.Network = "base" }, nil), x402.ReasonNetworkMismatch, "network"},
		"v1 network":           {v1(func(r *x402.RequirementsV1) { r.Network = "base" }, nil), x402.ReasonNetworkMismatch, "network"},
		"v2 asset":             {v2(func(r *x402.Requirements) { r.Asset = otherAddr }, nil), x402.ReasonAssetMismatch, "accepted.asset"},
		"v2 accepted payTo":    {v2(func(r *x402.Requirements) { r.PayTo = otherAddr }, func(a *x402.Authorization) { a.To = seller }), x402.ReasonPayToMismatch, "accepted.payTo"},
		"v2 authorization.to":  {v2(nil, func(a *x402.Authorization) { a.To = otherAddr }), x402.ReasonPayToMismatch, "authorization.to"},
		"v1 authorization.to":  {v1(nil, func(a *x402.Authorization) { a.To = otherAddr }), x402.ReasonPayToMismatch, "authorization.to"},
		"v2 value low":         {v2(nil, func(a *x402.Authorization) { a.Value = "999" }), x402.ReasonAmountMismatch, "authorization.value"},
		"v2 value high, exact": {v2(nil, func(a *x402.Authorization) { a.Value = "1001" }), x402.ReasonAmountMismatch, "authorization.value"},
		"v2 accepted.amount":   {v2(func(r *x402.Requirements) { r.Amount = "1" }, func(a *x402.Authorization) { a.Value = "1000" }), x402.ReasonAmountMismatch, "accepted.amount"},
		"v1 value low":         {v1(nil, func(a *x402.Authorization) { a.Value = "999" }), x402.ReasonAmountMismatch, "authorization.value"},
		"expired":              {v2(nil, func(a *x402.Authorization) { a.ValidBefore = ts(0) }), x402.ReasonExpiredAuthorization, "validBefore"},
		"expired v1":           {v1(nil, func(a *x402.Authorization) { a.ValidAfter, a.ValidBefore = ts(-time.Hour), ts(-time.Minute) }), x402.ReasonExpiredAuthorization, "validBefore"},
		"not yet valid":        {v2(nil, func(a *x402.Authorization) { a.ValidAfter = ts(2 * time.Second) }), x402.ReasonAuthorizationNotYetValid, "validAfter"},
		"window too long":      {v2(nil, func(a *x402.Authorization) { a.ValidBefore = ts(300*time.Second + x402.MaxClockSkew + time.Second) }), x402.ReasonAuthorizationWindowTooLong, "validBefore"},
		"window at the limit":  {v2(nil, func(a *x402.Authorization) { a.ValidBefore = ts(300*time.Second + x402.MaxClockSkew) }), "", ""},
		"validAfter now":       {v2(nil, func(a *x402.Authorization) { a.ValidAfter = ts(0) }), "", ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := o.Match(c.p, now)
			if c.reason == "" {
				if e != nil {
					t.Fatalf("Match = %v, want a match", e)
				}
				return
			}
			if e == nil {
				t.Fatalf("Match = nil, want %s", c.reason)
			}
			if e.Status != 402 || e.Reason != c.reason || !strings.Contains(e.Message, c.field) {
				t.Fatalf("Match = %+v, want 402 %s naming %s", e, c.reason, c.field)
			}
		})
	}

	// upto: a Permit2 authorization of at least the most the request can cost, through the upto
	// proxy, bound to the offer's facilitator.
	up := o
	up.Scheme, up.FacilitatorAddress = x402.SchemeUpto, "0x1111111111111111111111111111111111111111"
	uptoPay := func(amount string, m func(*x402.Permit2Authorization)) *x402.PaymentPayload {
		r := up.V2(resource)
		r.Amount = amount
		bu := x402test.NewBuyer(t, 2)
		bu.Permit2 = m
		p, err := bu.PayloadV2(r, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if e := up.Match(uptoPay("5000", nil), now); e != nil {
		t.Fatalf("upto, a maximum above the request's cost: %v", e)
	}
	uptoCases := map[string]struct {
		p             *x402.PaymentPayload
		reason, field string
	}{
		"upto below the cost":        {uptoPay("999", nil), x402.ReasonAmountMismatch, "at least"},
		"upto other facilitator":     {uptoPay("1000", func(a *x402.Permit2Authorization) { a.Witness.Facilitator = otherAddr }), x402.ReasonNoMatchingRequirement, "witness.facilitator"},
		"upto exact proxy":           {uptoPay("1000", func(a *x402.Permit2Authorization) { a.Spender = x402.ExactPermit2Proxy }), x402.ReasonNoMatchingRequirement, "spender"},
		"upto other token":           {uptoPay("1000", func(a *x402.Permit2Authorization) { a.Permitted.Token = otherAddr }), x402.ReasonAssetMismatch, "permitted.token"},
		"upto other recipient":       {uptoPay("1000", func(a *x402.Permit2Authorization) { a.Witness.To = otherAddr }), x402.ReasonPayToMismatch, "witness.to"},
		"upto permitted != accepted": {uptoPay("1000", func(a *x402.Permit2Authorization) { a.Permitted.Amount = "900000" }), x402.ReasonAmountMismatch, "accepted.amount"},
		"upto with EIP-3009": {func() *x402.PaymentPayload {
			p := v2(nil, nil)
			p.Scheme, p.Accepted.Scheme = x402.SchemeUpto, x402.SchemeUpto
			return p
		}(), x402.ReasonNoMatchingRequirement, "permit2Authorization"},
	}
	for name, c := range uptoCases {
		e := up.Match(c.p, now)
		if e == nil || e.Reason != c.reason || !strings.Contains(e.Message, c.field) {
			t.Errorf("%s: Match = %v, want %s naming %s", name, e, c.reason, c.field)
		}
	}
	// An exact offer of a Permit2 token takes a Permit2 payment through the exact proxy only.
	p2 := o
	p2.TransferMethod = x402.TransferPermit2
	r := p2.V2(resource)
	if r.Extra["assetTransferMethod"] != x402.TransferPermit2 {
		t.Fatalf("permit2 extra = %v", r.Extra)
	}
	pp := payV2(t, b2, r, nil)
	if e := p2.Match(pp, now); e != nil {
		t.Fatalf("permit2 exact: %v", e)
	}
	if e := o.Match(pp, now); e == nil || !strings.Contains(e.Message, "transfer method") {
		t.Fatalf("a Permit2 payment to an EIP-3009 offer: %v", e)
	}
	if e := o.Match(nil, now); e == nil || e.Status != 402 {
		t.Fatalf("nil payment: %v", e)
	}
}

func TestRequirementsFor(t *testing.T) {
	o := testOffer()
	b := x402test.NewBuyer(t, 2)
	r := o.V2(resource)
	r.Network = "base-sepolia"
	p := payV2(t, b, r, nil)
	got, ok := o.RequirementsFor(p, resource).(x402.Requirements)
	if !ok || got.Network != "base-sepolia" || got.Amount != "1000" {
		t.Fatalf("RequirementsFor(v2 alias) = %#v", o.RequirementsFor(p, resource))
	}
	p1 := payV1(t, x402test.NewBuyer(t, 1), o.V1(resource), nil)
	if got, ok := o.RequirementsFor(p1, resource).(x402.RequirementsV1); !ok || got.Network != "base-sepolia" || got.MaxAmountRequired != "1000" {
		t.Fatalf("RequirementsFor(v1) = %#v", o.RequirementsFor(p1, resource))
	}
}
