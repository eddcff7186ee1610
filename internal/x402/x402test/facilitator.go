// Package x402test provides real x402 peers for tests, on loopback only: a facilitator that
// really verifies EIP-3009 signatures and tracks nonces, and a buyer that answers 402
// challenges the way an unmodified client of either generation would.
package x402test

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obol/obol/internal/chains"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/eip3009"
	"github.com/obol/obol/internal/x402/evmsig"
)

// Invalid reasons the facilitator answers with (the x402 v2 specification's error codes where
// one exists).
const (
	ReasonInvalidPayload      = "invalid_payload"
	ReasonInvalidVersion      = "invalid_x402_version"
	ReasonUnsupportedScheme   = "unsupported_scheme"
	ReasonInvalidNetwork      = "invalid_network"
	ReasonUnsupportedAsset    = "unsupported_asset"
	ReasonAssetMismatch       = "asset_mismatch"
	ReasonInvalidSignature    = "invalid_exact_evm_payload_signature"
	ReasonRecipientMismatch   = "invalid_exact_evm_payload_recipient_mismatch"
	ReasonInsufficientValue   = "invalid_exact_evm_payload_authorization_value"
	ReasonNotYetValid         = "invalid_exact_evm_payload_authorization_valid_after"
	ReasonExpired             = "invalid_exact_evm_payload_authorization_valid_before"
	ReasonNonceAlreadyUsed    = "nonce_already_used"
	ReasonRequirementMismatch = "invalid_payment_requirements"
	// ReasonSettlementExceedsAmount: an upto settlement above the authorized maximum.
	ReasonSettlementExceedsAmount = "invalid_upto_evm_payload_settlement_exceeds_amount"
)

// FacilitatorOptions configure NewFacilitator.
type FacilitatorOptions struct {
	// Chains are the networks it supports; nil means every chain in the registry.
	Chains []chains.Chain
	// Now is its clock; nil means time.Now.
	Now func() time.Time
	// SettleDelay is how long /settle takes (cut short if the caller goes away).
	SettleDelay time.Duration
	// Host is the address it listens on; empty means 127.0.0.1 (the end-to-end tests use their
	// node's address, which gateway pods reach).
	Host string
}

// Settlement is one successful /settle.
type Settlement struct {
	X402Version int
	// Scheme is exact or upto; Method eip3009 or permit2.
	Scheme, Method string
	Payer, To      string
	// Value is what was transferred, decimal; Authorized the signed amount (upto: the
	// maximum); Nonce 0x + 64 hex digits.
	Value, Authorized, Nonce string
	// Network is the requirements' network as sent; Asset the token.
	Network, Asset string
	Transaction    string
}

// Request is one request the facilitator received.
type Request struct {
	Method, Path string
	Body         []byte
}

// Facilitator is an x402 facilitator on an httptest.Server (127.0.0.1), speaking POST /verify,
// POST /settle and GET /supported for v1 and v2 payments. It checks everything a real EVM
// exact facilitator checks except balances and the chain itself: scheme, network, asset and
// its EIP-712 domain, the signature, recipient, value, validity window and nonce reuse.
type Facilitator struct {
	srv    *httptest.Server
	chains []chains.Chain
	now    func() time.Time
	delay  time.Duration

	mu          sync.Mutex
	verifies    int
	settleCalls int
	settlements []Settlement
	zeroSettles int
	requests    []Request
	used        map[string]bool // lower(payer) + "/" + nonce hex
	down, drop  bool
	failNext    string
}

// NewFacilitator starts a facilitator; it is closed when the test ends.
func NewFacilitator(t testing.TB, opts FacilitatorOptions) *Facilitator {
	t.Helper()
	f := &Facilitator{chains: opts.Chains, now: opts.Now, delay: opts.SettleDelay, used: map[string]bool{}}
	if f.chains == nil {
		f.chains = chains.All()
	}
	if f.now == nil {
		f.now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /verify", f.handleVerify)
	mux.HandleFunc("POST /settle", f.handleSettle)
	mux.HandleFunc("GET /supported", f.handleSupported)
	f.srv = httptest.NewUnstartedServer(f.gate(mux))
	l, err := net.Listen("tcp", net.JoinHostPort(cmp.Or(opts.Host, "127.0.0.1"), "0"))
	if err != nil {
		t.Fatalf("x402test: listen: %v", err)
	}
	f.srv.Listener.Close()
	f.srv.Listener = l
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the facilitator's base URL.
func (f *Facilitator) URL() string { return f.srv.URL }

// Verifies is the number of /verify requests handled.
func (f *Facilitator) Verifies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.verifies
}

// SettleCalls is the number of /settle requests handled, successful or not.
func (f *Facilitator) SettleCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.settleCalls
}

// Settlements are the successful settlements, in order.
func (f *Facilitator) Settlements() []Settlement {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.settlements)
}

// Requests are the requests received (while up), in order.
func (f *Facilitator) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// SetDown makes every endpoint answer 503 (true) or work again (false).
func (f *Facilitator) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// SetDropConnections makes every request's connection close without an answer.
func (f *Facilitator) SetDropConnections(drop bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop = drop
}

// FailNextSettle makes the next /settle answer success false with the given reason (the
// nonce stays unused).
func (f *Facilitator) FailNextSettle(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = reason
}

// Signer is the address /supported lists as the facilitator's signer and upto
// facilitatorAddress (it never signs).
var Signer = func() string {
	h := eip3009.Keccak256([]byte("x402test facilitator"))
	return chains.ChecksumAddress(hex.EncodeToString(h[12:]))
}()

func (f *Facilitator) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		down, drop := f.down, f.drop
		f.mu.Unlock()
		if drop {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if down {
			http.Error(w, "facilitator down", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path, Body: body})
		f.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// checked is a payment that passed (or failed) verification.
type checked struct {
	version int
	// payer, to, value, nonce and asset as recorded in a Settlement.
	payer, to, value, nonce, asset string
	// network is the requirements' network as sent.
	network         string
	reason, message string
	// badRequest means a malformed request (answered 400).
	badRequest bool
	nonceKey   string
	scheme     string
	terms      x402.Terms
}

func (c *checked) fail(reason, format string, args ...any) *checked {
	c.reason, c.message = reason, fmt.Sprintf(format, args...)
	return c
}

type facilitatorRequest struct {
	X402Version         int             `json:"x402Version"`
	PaymentPayload      json.RawMessage `json:"paymentPayload"`
	PaymentRequirements json.RawMessage `json:"paymentRequirements"`
}

// reqFields are the requirement fields the checks need, from either generation.
type reqFields struct {
	scheme, network, amount, asset, payTo string
}

func (f *Facilitator) chain(network string) (chains.Chain, bool) {
	for _, c := range f.chains {
		if strings.EqualFold(c.CAIP2, network) || strings.EqualFold(c.Name, network) {
			return c, true
		}
		for _, a := range c.Aliases {
			if strings.EqualFold(a, network) {
				return c, true
			}
		}
	}
	return chains.Chain{}, false
}

// check verifies a /verify or /settle body against everything but nonce reuse.
func (f *Facilitator) check(body []byte, settle bool) *checked {
	c := &checked{}
	var fr facilitatorRequest
	if err := json.Unmarshal(body, &fr); err != nil {
		c.badRequest = true
		return c.fail(ReasonInvalidPayload, "request body: %v", err)
	}
	if len(fr.PaymentPayload) == 0 || len(fr.PaymentRequirements) == 0 {
		c.badRequest = true
		return c.fail(ReasonInvalidPayload, "paymentPayload and paymentRequirements are required")
	}
	p, err := x402.ParsePaymentPayload(fr.PaymentPayload)
	if err != nil {
		c.badRequest = true
		return c.fail(ReasonInvalidPayload, "paymentPayload: %v", err)
	}
	c.version = p.X402Version
	if t, err := p.Terms(); err == nil {
		c.payer = chains.ChecksumAddress(t.From)
	}
	if fr.X402Version != p.X402Version {
		return c.fail(ReasonInvalidVersion, "request x402Version %d, payment x402Version %d", fr.X402Version, p.X402Version)
	}
	var req reqFields
	switch p.X402Version {
	case x402.Version1:
		var r x402.RequirementsV1
		if err := json.Unmarshal(fr.PaymentRequirements, &r); err != nil {
			c.badRequest = true
			return c.fail(ReasonRequirementMismatch, "paymentRequirements: %v", err)
		}
		req = reqFields{r.Scheme, r.Network, r.MaxAmountRequired, r.Asset, r.PayTo}
	default:
		var r x402.Requirements
		if err := json.Unmarshal(fr.PaymentRequirements, &r); err != nil {
			c.badRequest = true
			return c.fail(ReasonRequirementMismatch, "paymentRequirements: %v", err)
		}
		req = reqFields{r.Scheme, r.Network, r.Amount, r.Asset, r.PayTo}
	}
	c.network = req.network

	if p.Scheme != req.scheme || (p.Scheme != x402.SchemeExact && p.Scheme != x402.SchemeUpto) {
		return c.fail(ReasonUnsupportedScheme, "scheme: payment %q, requirements %q; exact and upto are supported", p.Scheme, req.scheme)
	}
	c.scheme = p.Scheme
	chain, ok := f.chain(p.Network)
	if !ok {
		return c.fail(ReasonInvalidNetwork, "network %q is not supported", p.Network)
	}
	if rc, ok := f.chain(req.network); !ok || rc.CAIP2 != chain.CAIP2 {
		return c.fail(ReasonInvalidNetwork, "network: payment %q, requirements %q", p.Network, req.network)
	}
	token, ok := chain.TokenByAddress(req.asset)
	if !ok {
		return c.fail(ReasonUnsupportedAsset, "asset %s is not a token of %s", req.asset, chain.Name)
	}
	c.asset = token.Address
	if acc := p.Accepted; acc != nil {
		if !strings.EqualFold(acc.Asset, req.asset) {
			return c.fail(ReasonAssetMismatch, "accepted.asset %s, requirements asset %s", acc.Asset, req.asset)
		}
		// For upto the settle-time amount is the amount to charge, not the accepted maximum.
		if !strings.EqualFold(acc.PayTo, req.payTo) || acc.Scheme != req.scheme || (acc.Amount != req.amount && !(settle && c.scheme == x402.SchemeUpto)) {
			return c.fail(ReasonRequirementMismatch, "accepted differs from paymentRequirements")
		}
	}
	t, err := p.Terms()
	if err != nil {
		return c.fail(ReasonInvalidPayload, "authorization: %v", err)
	}
	c.terms = t
	c.to, c.nonce = chains.ChecksumAddress(t.To), "0x"+hex.EncodeToString(t.Nonce[:])
	c.nonceKey = t.ReplayKey(token.Address)
	switch {
	case c.scheme == x402.SchemeUpto && t.Method != x402.TransferPermit2:
		return c.fail(ReasonInvalidPayload, "upto is paid with a permit2Authorization")
	case t.Method == x402.TransferEIP3009 && token.TransferMethod != chains.TransferEIP3009:
		return c.fail(ReasonUnsupportedAsset, "asset %s is not an EIP-3009 token on %s: pay it with Permit2", req.asset, chain.Name)
	case t.Method == x402.TransferPermit2:
		spender := x402.ExactPermit2Proxy
		if c.scheme == x402.SchemeUpto {
			spender = x402.UptoPermit2Proxy
			if !strings.EqualFold(t.Facilitator, Signer) {
				return c.fail(ReasonInvalidPayload, "witness.facilitator %s is not this facilitator (%s)", t.Facilitator, Signer)
			}
		}
		if !strings.EqualFold(t.Spender, spender) {
			return c.fail(ReasonInvalidPayload, "spender %s, required %s", t.Spender, spender)
		}
		if !strings.EqualFold(t.Token, token.Address) {
			return c.fail(ReasonAssetMismatch, "permitted.token %s, requirements asset %s", t.Token, token.Address)
		}
	}
	err = evmsig.Check(p, big.NewInt(chain.ChainID), evmsig.Token{Address: token.Address, EIP712Name: token.EIP712Name, EIP712Version: token.EIP712Version})
	if err != nil {
		return c.fail(ReasonInvalidSignature, "%v", err)
	}
	if !strings.EqualFold(t.To, req.payTo) {
		return c.fail(ReasonRecipientMismatch, "recipient %s, payTo %s", t.To, req.payTo)
	}
	want, err := x402.ParseUint256(req.amount)
	if err != nil {
		return c.fail(ReasonRequirementMismatch, "amount %q: %v", req.amount, err)
	}
	switch {
	case c.scheme == x402.SchemeUpto && settle && want.Cmp(t.Value) > 0:
		return c.fail(ReasonSettlementExceedsAmount, "settling %s, authorized at most %s", want, t.Value)
	case c.scheme == x402.SchemeUpto && !settle && want.Cmp(t.Value) != 0:
		return c.fail(ReasonInsufficientValue, "permitted.amount %s, requirements amount %s", t.Value, want)
	case c.scheme == x402.SchemeExact && t.Value.Cmp(want) < 0:
		return c.fail(ReasonInsufficientValue, "authorized %s, less than %s", t.Value, want)
	}
	c.value = t.Value.String()
	if c.scheme == x402.SchemeUpto {
		c.value = want.String()
	}
	now := big.NewInt(f.now().Unix())
	if t.ValidAfter.Cmp(now) > 0 {
		return c.fail(ReasonNotYetValid, "validAfter %s is after now (%s)", t.ValidAfter, now)
	}
	if t.ValidBefore.Cmp(now) <= 0 {
		return c.fail(ReasonExpired, "the authorization expired (valid before %s, now %s)", t.ValidBefore, now)
	}
	return c
}

func (f *Facilitator) handleVerify(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := f.check(body, false)
	f.mu.Lock()
	f.verifies++
	if c.reason == "" && f.used[c.nonceKey] {
		c.fail(ReasonNonceAlreadyUsed, "nonce %s of %s was already used", c.nonce, c.payer)
	}
	f.mu.Unlock()
	resp := x402.VerifyResponse{IsValid: c.reason == "", InvalidReason: c.reason, InvalidMessage: c.message, Payer: c.payer}
	status := http.StatusOK
	if c.badRequest {
		status = http.StatusBadRequest
	}
	writeJSON(w, status, resp)
}

func (f *Facilitator) handleSettle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	c := f.check(body, true)
	f.mu.Lock()
	f.settleCalls++
	if c.reason == "" && f.used[c.nonceKey] {
		c.fail(ReasonNonceAlreadyUsed, "nonce %s of %s was already used", c.nonce, c.payer)
	}
	if c.reason == "" && f.failNext != "" {
		c.fail(f.failNext, "settlement failed (FailNextSettle)")
		f.failNext = ""
	}
	resp := x402.SettleResponse{Success: c.reason == "", ErrorReason: c.reason, ErrorMessage: c.message, Payer: c.payer, Network: c.network}
	resp.Amount = c.value
	switch {
	case resp.Success && c.value == "0":
		// An upto settlement of nothing: no transaction, and the authorization simply expires.
		f.zeroSettles++
	case resp.Success:
		f.used[c.nonceKey] = true
		resp.Transaction = TxHash(c.terms.Nonce)
		f.settlements = append(f.settlements, Settlement{
			X402Version: c.version, Scheme: c.scheme, Method: c.terms.Method, Payer: c.payer, To: c.to, Value: c.value,
			Authorized: c.terms.Value.String(), Nonce: c.nonce, Network: c.network, Asset: c.asset, Transaction: resp.Transaction,
		})
	}
	f.mu.Unlock()
	status := http.StatusOK
	if c.badRequest {
		status = http.StatusBadRequest
	}
	writeJSON(w, status, resp)
}

// TxHash is the fake transaction hash of a settlement: keccak256 of the nonce.
func TxHash(nonce [32]byte) string {
	h := eip3009.Keccak256(nonce[:])
	return "0x" + hex.EncodeToString(h[:])
}

func (f *Facilitator) handleSupported(w http.ResponseWriter, _ *http.Request) {
	resp := x402.SupportedResponse{Extensions: []string{}, Signers: map[string][]string{"eip155:*": {Signer}}}
	for _, c := range f.chains {
		if len(c.Tokens) == 0 {
			continue
		}
		resp.Kinds = append(resp.Kinds,
			x402.SupportedKind{X402Version: x402.Version2, Scheme: x402.SchemeExact, Network: c.CAIP2},
			x402.SupportedKind{X402Version: x402.Version1, Scheme: x402.SchemeExact, Network: c.Name},
			x402.SupportedKind{X402Version: x402.Version2, Scheme: x402.SchemeUpto, Network: c.CAIP2, Extra: map[string]any{"facilitatorAddress": Signer}})
	}
	writeJSON(w, http.StatusOK, resp)
}

// ZeroSettlements counts the upto settlements of nothing (answered success, no transaction).
func (f *Facilitator) ZeroSettlements() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.zeroSettles
}
