package x402test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/obol/obol/internal/chains"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/eip3009"
	"github.com/obol/obol/internal/x402/permit2"
)

// Buyer is an x402 client with its own key, behaving like an unmodified client of one
// generation.
type Buyer struct {
	Key  *secp256k1.PrivateKey
	HTTP *http.Client
	// Version is 1 (X-PAYMENT, challenge in the JSON body) or 2 (PAYMENT-SIGNATURE, challenge
	// in the PAYMENT-REQUIRED header).
	Version int
	// Now is the buyer's clock.
	Now func() time.Time
	// Scheme is the scheme a v2 buyer pays when the challenge offers it ("" or exact: exact;
	// upto: upto, as a client with the upto scheme registered prefers it).
	Scheme string
	// Permit2 changes a Permit2 authorization before it is signed (nil: none).
	Permit2 func(*x402.Permit2Authorization)
}

// NewBuyer returns a buyer of the given generation with a random key.
func NewBuyer(t testing.TB, version int) *Buyer {
	t.Helper()
	if version != x402.Version1 && version != x402.Version2 {
		t.Fatalf("x402test: buyer version %d, want 1 or 2", version)
	}
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &Buyer{Key: key, HTTP: &http.Client{Timeout: 2 * time.Minute}, Version: version, Now: time.Now}
}

// Address is the buyer's EIP-55 address (authorization.from).
func (b *Buyer) Address() string { return eip3009.Address(b.Key.PubKey()) }

func (b *Buyer) client() *http.Client {
	if b.HTTP != nil {
		return b.HTTP
	}
	return http.DefaultClient
}

func (b *Buyer) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Do sends req. On a 402 it reads the challenge as a client of its generation would (v2: the
// PAYMENT-REQUIRED header; v1: the JSON body), picks the first exact-scheme requirement it
// can pay, signs a fresh authorization (random nonce, validAfter now-5s, validBefore
// now+maxTimeoutSeconds) and retries once with PAYMENT-SIGNATURE (v2, echoing accepted) or
// X-PAYMENT (v1). It returns the final response and the receipt from PAYMENT-RESPONSE /
// X-PAYMENT-RESPONSE, or from the trailers of a streamed response (the body is then read
// into memory first). The receipt is nil when there is none.
func (b *Buyer) Do(req *http.Request) (*http.Response, *x402.SettleResponse, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	resp, err := b.client().Do(withBody(req, body))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusPaymentRequired {
		receipt, err := b.Receipt(resp)
		return resp, receipt, err
	}
	header, name, err := b.answer(resp)
	if err != nil {
		return nil, nil, err
	}
	retry := withBody(req, body)
	retry.Header.Set(name, header)
	resp, err = b.client().Do(retry)
	if err != nil {
		return nil, nil, err
	}
	receipt, err := b.Receipt(resp)
	return resp, receipt, err
}

func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	if body == nil {
		r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
		return r
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return r
}

// Receipt decodes the settlement receipt of a response in the buyer's generation's header,
// falling back to the trailers (reading the body into memory to get them).
func (b *Buyer) Receipt(resp *http.Response) (*x402.SettleResponse, error) {
	name := x402.HeaderPaymentResponse
	if b.Version == x402.Version1 {
		name = x402.HeaderXPaymentResponse
	}
	v := resp.Header.Get(name)
	if v == "" {
		if _, declared := resp.Trailer[http.CanonicalHeaderKey(name)]; declared {
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(data))
			if err != nil {
				return nil, err
			}
			v = resp.Trailer.Get(name)
		}
	}
	if v == "" {
		return nil, nil
	}
	var r x402.SettleResponse
	if err := x402.DecodeHeader(v, 0, &r); err != nil {
		return nil, fmt.Errorf("x402test: %s: %w", name, err)
	}
	return &r, nil
}

// answer turns a 402 into a payment header value and its header name.
func (b *Buyer) answer(resp *http.Response) (string, string, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return "", "", err
	}
	if b.Version == x402.Version1 {
		req, err := ChooseV1(data)
		if err != nil {
			return "", "", err
		}
		h, err := b.SignV1(req, nil)
		return h, x402.HeaderXPayment, err
	}
	pr, req, err := ChooseScheme(resp.Header.Get(x402.HeaderPaymentRequired), b.Scheme)
	if err != nil {
		return "", "", err
	}
	p, err := b.PayloadV2(req, pr.Resource, nil)
	if err != nil {
		return "", "", err
	}
	p.Extensions = pr.Extensions
	h, err := x402.EncodeHeader(p)
	return h, x402.HeaderPaymentSignature, err
}

// ChooseV2 decodes a PAYMENT-REQUIRED header and picks what a v2 EVM client pays: the first
// exact requirement on an eip155 (CAIP-2) network.
func ChooseV2(header string) (*x402.PaymentRequired, x402.Requirements, error) {
	return ChooseScheme(header, x402.SchemeExact)
}

// ChooseScheme is ChooseV2 for the given scheme ("" is exact).
func ChooseScheme(header, scheme string) (*x402.PaymentRequired, x402.Requirements, error) {
	if scheme == "" {
		scheme = x402.SchemeExact
	}
	if header == "" {
		return nil, x402.Requirements{}, errors.New("x402test: 402 without a " + x402.HeaderPaymentRequired + " header")
	}
	var pr x402.PaymentRequired
	if err := x402.DecodeHeader(header, 0, &pr); err != nil {
		return nil, x402.Requirements{}, err
	}
	if pr.X402Version != x402.Version2 {
		return nil, x402.Requirements{}, fmt.Errorf("x402test: %s has x402Version %d, want 2", x402.HeaderPaymentRequired, pr.X402Version)
	}
	for _, r := range pr.Accepts {
		if r.Scheme == scheme && strings.HasPrefix(r.Network, "eip155:") {
			return &pr, r, nil
		}
	}
	return nil, x402.Requirements{}, fmt.Errorf("x402test: no %s eip155 requirement in %+v", scheme, pr.Accepts)
}

// v1Required are the fields a v1 client's schema requires of every requirement.
var v1Required = []string{"scheme", "network", "maxAmountRequired", "resource", "description", "mimeType", "payTo", "maxTimeoutSeconds", "asset"}

// ChooseV1 parses a v1 402 body and picks the first exact requirement. Like the v1 reference
// clients (which validate every entry against their schema and network enum), it refuses the
// whole challenge when x402Version is not 1, an entry lacks a v1 field, or an entry's network
// is not a legacy network name.
func ChooseV1(body []byte) (x402.RequirementsV1, error) {
	var raw struct {
		X402Version int               `json:"x402Version"`
		Accepts     []json.RawMessage `json:"accepts"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return x402.RequirementsV1{}, fmt.Errorf("x402test: v1 402 body is not JSON: %w", err)
	}
	if raw.X402Version != x402.Version1 {
		return x402.RequirementsV1{}, fmt.Errorf("x402test: v1 402 body has x402Version %d, want 1", raw.X402Version)
	}
	var chosen *x402.RequirementsV1
	for i, a := range raw.Accepts {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(a, &fields); err != nil {
			return x402.RequirementsV1{}, fmt.Errorf("x402test: accepts[%d]: %w", i, err)
		}
		for _, k := range v1Required {
			if _, ok := fields[k]; !ok {
				return x402.RequirementsV1{}, fmt.Errorf("x402test: accepts[%d] lacks v1 field %q", i, k)
			}
		}
		var r x402.RequirementsV1
		if err := json.Unmarshal(a, &r); err != nil {
			return x402.RequirementsV1{}, fmt.Errorf("x402test: accepts[%d]: %w", i, err)
		}
		if c, ok := chains.Lookup(r.Network); !ok || strings.Contains(r.Network, ":") || c.CAIP2 == "" {
			return x402.RequirementsV1{}, fmt.Errorf("x402test: accepts[%d] network %q is not a v1 network name", i, r.Network)
		}
		if chosen == nil && r.Scheme == x402.SchemeExact {
			chosen = &r
		}
	}
	if chosen == nil {
		return x402.RequirementsV1{}, errors.New("x402test: no exact requirement in the v1 402 body")
	}
	return *chosen, nil
}

// SignV2 returns a PAYMENT-SIGNATURE header value paying req (see PayloadV2).
func (b *Buyer) SignV2(req x402.Requirements, mutate func(*x402.Authorization)) (string, error) {
	p, err := b.PayloadV2(req, nil, mutate)
	if err != nil {
		return "", err
	}
	return x402.EncodeHeader(p)
}

// SignV1 returns an X-PAYMENT header value paying req (see PayloadV1).
func (b *Buyer) SignV1(req x402.RequirementsV1, mutate func(*x402.Authorization)) (string, error) {
	p, err := b.PayloadV1(req, mutate)
	if err != nil {
		return "", err
	}
	return x402.EncodeHeader(p)
}

// PayloadV2 builds and signs a v2 payment of req, echoing it as accepted. mutate, if not nil,
// changes the authorization before it is signed (so the signature stays valid for what is
// sent); to tamper after signing, change the returned payload's fields and EncodeHeader it.
func (b *Buyer) PayloadV2(req x402.Requirements, resource *x402.ResourceInfo, mutate func(*x402.Authorization)) (*x402.PaymentPayload, error) {
	chainID, err := chainIDOf(req.Network)
	if err != nil {
		return nil, err
	}
	var pl x402.ExactEVMPayload
	if method, _ := req.Extra["assetTransferMethod"].(string); req.Scheme == x402.SchemeUpto || method == x402.TransferPermit2 {
		pl, err = b.signPermit2(chainID, req)
	} else {
		pl, err = b.sign(chainID, req.Asset, req.Extra, req.PayTo, req.Amount, req.MaxTimeoutSeconds, mutate)
	}
	if err != nil {
		return nil, err
	}
	acc := req
	return &x402.PaymentPayload{X402Version: x402.Version2, Scheme: req.Scheme, Network: req.Network, Accepted: &acc, Resource: resource, Payload: pl}, nil
}

// PayloadV1 builds and signs a v1 payment of req (mutate as in PayloadV2).
func (b *Buyer) PayloadV1(req x402.RequirementsV1, mutate func(*x402.Authorization)) (*x402.PaymentPayload, error) {
	chainID, err := chainIDOf(req.Network)
	if err != nil {
		return nil, err
	}
	pl, err := b.sign(chainID, req.Asset, req.Extra, req.PayTo, req.MaxAmountRequired, req.MaxTimeoutSeconds, mutate)
	if err != nil {
		return nil, err
	}
	return &x402.PaymentPayload{X402Version: x402.Version1, Scheme: req.Scheme, Network: req.Network, Payload: pl}, nil
}

// chainIDOf resolves eip155:<id> directly and legacy names through the registry.
func chainIDOf(network string) (int64, error) {
	if rest, ok := strings.CutPrefix(network, "eip155:"); ok {
		id, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || id <= 0 {
			return 0, fmt.Errorf("x402test: bad CAIP-2 network %q", network)
		}
		return id, nil
	}
	c, ok := chains.Lookup(network)
	if !ok {
		return 0, fmt.Errorf("x402test: unknown network %q", network)
	}
	return c.ChainID, nil
}

func (b *Buyer) sign(chainID int64, asset string, extra map[string]any, payTo, amount string, maxTimeout int, mutate func(*x402.Authorization)) (x402.ExactEVMPayload, error) {
	name, _ := extra["name"].(string)
	version, _ := extra["version"].(string)
	if name == "" || version == "" {
		return x402.ExactEVMPayload{}, fmt.Errorf("x402test: requirement extra %v lacks the EIP-712 name and version", extra)
	}
	nonce, now, maxTimeout := b.fresh(maxTimeout)
	wire := eip3009.ToPayload(eip3009.Authorization{
		From: b.Address(), To: payTo,
		ValidAfter: big.NewInt(now - 5), ValidBefore: big.NewInt(now + int64(maxTimeout)),
		Nonce: nonce,
	})
	wire.To = payTo
	wire.Value = amount
	if mutate != nil {
		mutate(&wire)
	}
	a, err := eip3009.FromPayload(wire)
	if err != nil {
		return x402.ExactEVMPayload{}, err
	}
	sig, err := eip3009.Sign(b.Key, eip3009.Domain{Name: name, Version: version, ChainID: big.NewInt(chainID), VerifyingContract: asset}, a)
	if err != nil {
		return x402.ExactEVMPayload{}, err
	}
	return x402.ExactEVMPayload{Signature: fmt.Sprintf("0x%x", sig), Authorization: wire}, nil
}

// signPermit2 signs a Permit2 witness transfer of req, as @x402/evm's exact (permit2) and upto
// clients build it: spender the x402 proxy, witness.to payTo, the upto facilitator from
// extra.facilitatorAddress, permitted.amount the requirement's amount (upto: the maximum).
func (b *Buyer) signPermit2(chainID int64, req x402.Requirements) (x402.ExactEVMPayload, error) {
	nonce, now, maxTimeout := b.fresh(req.MaxTimeoutSeconds)
	a := &x402.Permit2Authorization{
		From:      b.Address(),
		Permitted: x402.TokenPermissions{Token: req.Asset, Amount: req.Amount},
		Spender:   x402.ExactPermit2Proxy,
		Nonce:     new(big.Int).SetBytes(nonce[:]).String(),
		Deadline:  strconv.FormatInt(now+int64(maxTimeout), 10),
		Witness:   x402.Permit2Witness{To: req.PayTo, ValidAfter: strconv.FormatInt(now-5, 10)},
	}
	if req.Scheme == x402.SchemeUpto {
		a.Spender = x402.UptoPermit2Proxy
		fac, _ := req.Extra["facilitatorAddress"].(string)
		if fac == "" {
			return x402.ExactEVMPayload{}, fmt.Errorf("x402test: upto requirement extra %v lacks facilitatorAddress", req.Extra)
		}
		a.Witness.Facilitator = fac
	}
	if b.Permit2 != nil {
		b.Permit2(a)
	}
	sig, err := permit2.Sign(b.Key, big.NewInt(chainID), a)
	if err != nil {
		return x402.ExactEVMPayload{}, err
	}
	return x402.ExactEVMPayload{Signature: fmt.Sprintf("0x%x", sig), Permit2Authorization: a}, nil
}

// fresh is a new authorization's random nonce, the buyer's time and its validity in seconds
// (the requirement's maxTimeoutSeconds, or 60).
func (b *Buyer) fresh(maxTimeout int) ([32]byte, int64, int) {
	var nonce [32]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails (Go 1.24+)
	if maxTimeout <= 0 {
		maxTimeout = 60
	}
	return nonce, b.now().Unix(), maxTimeout
}
