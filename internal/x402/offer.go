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
	// TransferMethod is how the asset moves: TransferEIP3009 (the default for exact) or
	// TransferPermit2 (always for upto).
	TransferMethod string
	// FacilitatorAddress is the upto facilitator's settling address (extra.facilitatorAddress),
	// which the buyer binds into its signature.
	FacilitatorAddress string
}

// Method is the offer's effective transfer method.
func (o Offer) Method() string {
	if o.Scheme == SchemeUpto || o.TransferMethod == TransferPermit2 {
		return TransferPermit2
	}
	return TransferEIP3009
}

// Spender is the Permit2 spender a payment of this offer must name.
func (o Offer) Spender() string {
	if o.Scheme == SchemeUpto {
		return UptoPermit2Proxy
	}
	return ExactPermit2Proxy
}

func (o Offer) extra() map[string]any {
	var m map[string]any
	if o.EIP712Name != "" || o.EIP712Version != "" {
		m = map[string]any{"name": o.EIP712Name, "version": o.EIP712Version}
	}
	if o.Method() == TransferPermit2 {
		if m == nil {
			m = map[string]any{}
		}
		if o.Scheme == SchemeUpto {
			m["facilitatorAddress"] = o.FacilitatorAddress
		} else {
			m["assetTransferMethod"] = TransferPermit2
		}
	}
	return m
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
// or legacy name, either generation), transfer method, asset (v2 accepted.asset and Permit2's
// permitted.token), payTo (the authorization's recipient and v2 accepted.payTo), amount, the
// Permit2 spender and upto facilitator, and the validity window (validAfter <= now <
// validBefore, validBefore - now <= MaxTimeoutSeconds + MaxClockSkew). The amount is equal to
// the offer's for exact; for upto the authorized maximum (permitted.amount, equal to
// accepted.amount) must be at least the offer's, which is the most this request can cost. A
// mismatch is an *Error with status 402 whose message names the field, what was sent and what
// is required.
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
	t, err := p.Terms()
	if err != nil {
		return mismatch(ReasonNoMatchingRequirement, "%v", err)
	}
	if t.Method != o.Method() {
		field := map[string]string{TransferEIP3009: "payload.authorization", TransferPermit2: "payload.permit2Authorization"}[o.Method()]
		return mismatch(ReasonNoMatchingRequirement, "transfer method: sent %s, required %s (%s)", t.Method, o.Method(), field)
	}
	if acc := p.Accepted; acc != nil {
		if !strings.EqualFold(acc.Asset, o.Asset) {
			return mismatch(ReasonAssetMismatch, "accepted.asset: sent %s, required %s", acc.Asset, o.Asset)
		}
		if !strings.EqualFold(acc.PayTo, o.PayTo) {
			return mismatch(ReasonPayToMismatch, "accepted.payTo: sent %s, required %s", acc.PayTo, o.PayTo)
		}
	}
	to := "authorization.to"
	if t.Method == TransferPermit2 {
		to = "permit2Authorization.witness.to"
		if !strings.EqualFold(t.Token, o.Asset) {
			return mismatch(ReasonAssetMismatch, "permit2Authorization.permitted.token: sent %s, required %s", t.Token, o.Asset)
		}
		if !strings.EqualFold(t.Spender, o.Spender()) {
			return mismatch(ReasonNoMatchingRequirement, "permit2Authorization.spender: sent %s, required %s", t.Spender, o.Spender())
		}
		if o.Scheme == SchemeUpto && !strings.EqualFold(t.Facilitator, o.FacilitatorAddress) {
			return mismatch(ReasonNoMatchingRequirement, "permit2Authorization.witness.facilitator: sent %s, required %s", t.Facilitator, o.FacilitatorAddress)
		}
	}
	if !strings.EqualFold(t.To, o.PayTo) {
		return mismatch(ReasonPayToMismatch, "%s: sent %s, required %s", to, t.To, o.PayTo)
	}
	want, err := ParseUint256(o.Amount)
	if err != nil {
		return Errorf(http.StatusInternalServerError, ReasonNoMatchingRequirement, "the offer's amount %q is invalid: %v", o.Amount, err)
	}
	value := "authorization.value"
	if t.Method == TransferPermit2 {
		value = "permit2Authorization.permitted.amount"
	}
	if p.Accepted != nil {
		acc, err := ParseUint256(p.Accepted.Amount)
		if err != nil {
			return mismatch(ReasonAmountMismatch, "accepted.amount: sent %q, not an amount", p.Accepted.Amount)
		}
		if acc.Cmp(t.Value) != 0 {
			return mismatch(ReasonAmountMismatch, "%s: sent %s, accepted.amount says %s", value, t.Value, acc)
		}
	}
	switch c := t.Value.Cmp(want); {
	case o.Scheme == SchemeExact && c != 0:
		return mismatch(ReasonAmountMismatch, "%s: sent %s, required exactly %s", value, t.Value, want)
	case c < 0:
		return mismatch(ReasonAmountMismatch, "%s: sent %s, required at least %s (the most this request can cost)", value, t.Value, want)
	}
	return o.matchWindow(t, now)
}

func (o Offer) networkNames() string {
	if o.NetworkName != "" && !strings.EqualFold(o.NetworkName, o.Network) {
		return o.Network + " or " + o.NetworkName
	}
	return o.Network
}

func (o Offer) matchWindow(t Terms, now time.Time) *Error {
	after, before := t.ValidAfter, t.ValidBefore
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
