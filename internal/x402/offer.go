package x402

import (
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/obol/obol/internal/chains"
)

// MaxClockSkew is how much longer than the offer's maxTimeoutSeconds an authorization's
// validity may reach into the future, to absorb clock differences between client and server.
const MaxClockSkew = 30 * time.Second

// Offer is what one gated resource asks for, built by the gateway from its configuration.
type Offer struct {
	Scheme string
	// Network is the CAIP-2 id (eip155:84532); NetworkName the legacy v1 name (base-sepolia).
	Network, NetworkName string
	// Asset is the token contract address.
	Asset string
	// Amount is the price in atomic units, a decimal string.
	Amount string
	PayTo  string
	// MaxTimeoutSeconds bounds an authorization's lifetime; 0 means no bound is checked.
	MaxTimeoutSeconds int
	// EIP712Name and EIP712Version are the token's EIP-712 domain, sent as extra.
	EIP712Name, EIP712Version string
}

func (o Offer) extra() map[string]any {
	if o.EIP712Name == "" && o.EIP712Version == "" {
		return nil
	}
	return map[string]any{"name": o.EIP712Name, "version": o.EIP712Version}
}

// V2 returns the offer as a v2 requirement (the resource goes into PaymentRequired, not the
// requirement; the parameter mirrors V1).
func (o Offer) V2(resource ResourceInfo) Requirements {
	_ = resource
	return Requirements{
		Scheme:            o.Scheme,
		Network:           o.Network,
		Amount:            o.Amount,
		Asset:             o.Asset,
		PayTo:             o.PayTo,
		MaxTimeoutSeconds: o.MaxTimeoutSeconds,
		Extra:             o.extra(),
	}
}

// V1 returns the offer as a v1 requirement, with the legacy network name.
func (o Offer) V1(resource ResourceInfo) RequirementsV1 {
	network := o.NetworkName
	if network == "" {
		network = o.Network
	}
	mime := resource.MimeType
	if mime == "" {
		mime = "application/json"
	}
	return RequirementsV1{
		Scheme:            o.Scheme,
		Network:           network,
		MaxAmountRequired: o.Amount,
		Resource:          resource.URL,
		Description:       resource.Description,
		MimeType:          mime,
		PayTo:             o.PayTo,
		MaxTimeoutSeconds: o.MaxTimeoutSeconds,
		Asset:             o.Asset,
		Extra:             o.extra(),
	}
}

// PaymentRequiredV2 is the v2 challenge for the offer: the CAIP-2 requirement, followed by the
// same requirement under the legacy network name when the offer has one (as the predecessor
// listed it, for clients that only know legacy names).
func (o Offer) PaymentRequiredV2(resource ResourceInfo, errMsg string) PaymentRequired {
	req := o.V2(resource)
	accepts := []Requirements{req}
	if o.NetworkName != "" && !strings.EqualFold(o.NetworkName, o.Network) {
		alias := req
		alias.Network = o.NetworkName
		alias.Extra = o.extra()
		accepts = append(accepts, alias)
	}
	r := resource
	return PaymentRequired{X402Version: Version2, Error: errMsg, Resource: &r, Accepts: accepts}
}

// PaymentRequiredV1 is the v1 challenge (the 402 body) for the offer.
func (o Offer) PaymentRequiredV1(resource ResourceInfo, errMsg string) PaymentRequiredV1 {
	return PaymentRequiredV1{X402Version: Version1, Error: errMsg, Accepts: []RequirementsV1{o.V1(resource)}}
}

// RequirementsFor returns the requirements to send the facilitator with p: RequirementsV1 for
// a v1 payment, Requirements for v2. The network is spelled as the payment spelled it when it
// names the offer's chain (a client may choose the legacy-alias entry of a v2 challenge), so
// the facilitator sees the payment's accepted requirement and ours agree.
func (o Offer) RequirementsFor(p *PaymentPayload, resource ResourceInfo) any {
	network := ""
	if p != nil && o.sameNetwork(p.Network) {
		network = p.Network
	}
	if p != nil && p.X402Version == Version1 {
		r := o.V1(resource)
		if network != "" {
			r.Network = network
		}
		return r
	}
	r := o.V2(resource)
	if network != "" {
		r.Network = network
	}
	return r
}

// sameNetwork reports whether n names the offer's network: its CAIP-2 id, its legacy name, or
// any alias the chain registry resolves to the same chain.
func (o Offer) sameNetwork(n string) bool {
	if n == "" {
		return false
	}
	if strings.EqualFold(n, o.Network) || (o.NetworkName != "" && strings.EqualFold(n, o.NetworkName)) {
		return true
	}
	c, ok := chains.Lookup(n)
	if !ok {
		return false
	}
	return strings.EqualFold(c.CAIP2, o.Network) || (o.NetworkName != "" && strings.EqualFold(c.Name, o.NetworkName))
}

// Match checks a payment against the offer before any facilitator call: scheme, network (CAIP-2
// or legacy name, either generation), asset (v2 accepted.asset), payTo (authorization.to and v2
// accepted.payTo), amount (authorization.value and v2 accepted.amount; equal to the offer's
// amount for the exact scheme, at least it otherwise) and the validity window (validAfter <=
// now < validBefore, validBefore - now <= MaxTimeoutSeconds + MaxClockSkew). A mismatch is an
// *Error with status 402 whose message names the field, what was sent and what is required.
func (o Offer) Match(p *PaymentPayload, now time.Time) *Error {
	if p == nil {
		return mismatch(ReasonNoMatchingRequirement, "no payment")
	}
	if p.Scheme != o.Scheme {
		return mismatch(ReasonSchemeMismatch, "scheme: sent %q, required %q", p.Scheme, o.Scheme)
	}
	if !o.sameNetwork(p.Network) {
		return mismatch(ReasonNetworkMismatch, "network: sent %q, required %q", p.Network, o.networkNames())
	}
	a := p.Payload.Authorization
	if acc := p.Accepted; acc != nil {
		if !strings.EqualFold(acc.Asset, o.Asset) {
			return mismatch(ReasonAssetMismatch, "accepted.asset: sent %s, required %s", acc.Asset, o.Asset)
		}
		if !strings.EqualFold(acc.PayTo, o.PayTo) {
			return mismatch(ReasonPayToMismatch, "accepted.payTo: sent %s, required %s", acc.PayTo, o.PayTo)
		}
	}
	if !strings.EqualFold(a.To, o.PayTo) {
		return mismatch(ReasonPayToMismatch, "authorization.to: sent %s, required %s", a.To, o.PayTo)
	}
	want, err := ParseUint256(o.Amount)
	if err != nil {
		return Errorf(http.StatusInternalServerError, ReasonNoMatchingRequirement, "the offer's amount %q is invalid: %v", o.Amount, err)
	}
	exact := o.Scheme == SchemeExact
	checkAmount := func(field, sent string) *Error {
		got, err := ParseUint256(sent)
		if err != nil {
			return mismatch(ReasonAmountMismatch, "%s: sent %q, not an amount", field, sent)
		}
		switch c := got.Cmp(want); {
		case exact && c != 0:
			return mismatch(ReasonAmountMismatch, "%s: sent %s, required exactly %s", field, got, want)
		case c < 0:
			return mismatch(ReasonAmountMismatch, "%s: sent %s, required at least %s", field, got, want)
		}
		return nil
	}
	if p.Accepted != nil {
		if e := checkAmount("accepted.amount", p.Accepted.Amount); e != nil {
			return e
		}
	}
	if e := checkAmount("authorization.value", a.Value); e != nil {
		return e
	}
	return o.matchWindow(a, now)
}

func (o Offer) networkNames() string {
	if o.NetworkName != "" && !strings.EqualFold(o.NetworkName, o.Network) {
		return o.Network + " or " + o.NetworkName
	}
	return o.Network
}

func (o Offer) matchWindow(a Authorization, now time.Time) *Error {
	after, err1 := ParseUint256(a.ValidAfter)
	before, err2 := ParseUint256(a.ValidBefore)
	if err1 != nil || err2 != nil {
		return mismatch(ReasonExpiredAuthorization, "authorization validity window is not a pair of timestamps")
	}
	ts := big.NewInt(now.Unix())
	if after.Cmp(ts) > 0 {
		return mismatch(ReasonAuthorizationNotYetValid, "authorization.validAfter: sent %s, required at most now (%d)", after, now.Unix())
	}
	if before.Cmp(ts) <= 0 {
		return mismatch(ReasonExpiredAuthorization, "authorization.validBefore: sent %s, required later than now (%d)", before, now.Unix())
	}
	if o.MaxTimeoutSeconds > 0 {
		limit := new(big.Int).Add(ts, big.NewInt(int64(o.MaxTimeoutSeconds)+int64(MaxClockSkew/time.Second)))
		if before.Cmp(limit) > 0 {
			return mismatch(ReasonAuthorizationWindowTooLong, "authorization.validBefore: sent %s, required at most now + maxTimeoutSeconds %d (%s, with %s clock skew)", before, o.MaxTimeoutSeconds, limit, MaxClockSkew)
		}
	}
	return nil
}
