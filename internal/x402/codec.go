package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strings"

	"github.com/obol/obol/internal/chains"
)

// DefaultMaxHeaderLen bounds a payment header when DecodePaymentHeader is given maxLen <= 0.
// A v2 payload with an EOA signature is about 1.3 KB of base64.
const DefaultMaxHeaderLen = 16 << 10

// EncodeHeader returns base64 (standard alphabet, padded) of v's JSON encoding: the value of a
// PAYMENT-REQUIRED, PAYMENT-SIGNATURE, PAYMENT-RESPONSE, X-PAYMENT or X-PAYMENT-RESPONSE
// header.
func EncodeHeader(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("x402: encode header: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeHeader decodes a base64(JSON) header value into out (e.g. a *PaymentRequired or a
// *SettleResponse, on the client side). maxLen <= 0 means DefaultMaxHeaderLen. Failures are
// *Error with status 400 and reason invalid_payment_header.
func DecodeHeader(v string, maxLen int, out any) error {
	raw, e := decodeBase64Header(v, maxLen)
	if e != nil {
		return e
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return invalidHeader("the header is not valid JSON: %v", err)
	}
	return nil
}

// DecodePaymentHeader decodes the value of a PAYMENT-SIGNATURE or X-PAYMENT header: base64
// (standard or URL alphabet, padded or not) of a JSON PaymentPayload of either generation,
// told apart by x402Version. maxLen bounds the encoded header (<= 0 means
// DefaultMaxHeaderLen). Every failure is an *Error{Status: 400, Reason:
// "invalid_payment_header"} whose message says what is wrong.
//
// A 65-byte signature whose recovery id is 0 or 1 is rewritten to 27 or 28, in Payload and in
// Raw, as the predecessor did before forwarding to the facilitator.
func DecodePaymentHeader(v string, maxLen int) (*PaymentPayload, error) {
	raw, e := decodeBase64Header(v, maxLen)
	if e != nil {
		return nil, e
	}
	p, e := parsePaymentPayload(raw)
	if e != nil {
		return nil, e
	}
	return p, nil
}

// ParsePaymentPayload parses a JSON PaymentPayload of either generation (the decoded payment
// header, or the paymentPayload of a facilitator request). Failures are *Error as in
// DecodePaymentHeader.
func ParsePaymentPayload(raw []byte) (*PaymentPayload, error) {
	p, e := parsePaymentPayload(raw)
	if e != nil {
		return nil, e
	}
	return p, nil
}

func decodeBase64Header(v string, maxLen int) ([]byte, *Error) {
	if maxLen <= 0 {
		maxLen = DefaultMaxHeaderLen
	}
	if len(v) > maxLen {
		return nil, invalidHeader("the header is %d bytes, more than the limit of %d", len(v), maxLen)
	}
	s := strings.TrimRight(strings.TrimSpace(v), "=")
	if s == "" {
		return nil, invalidHeader("the header is empty")
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	raw, err := enc.DecodeString(s)
	if err != nil {
		return nil, invalidHeader("the header is not base64: %v", err)
	}
	return raw, nil
}

// object is a JSON object with its keys in the order they were sent and its values verbatim.
type object struct {
	keys []string
	vals map[string]json.RawMessage
}

// decodeObject parses a JSON object. Keys are matched exactly (encoding/json would match them
// case-insensitively), and duplicate keys and trailing data are errors, so the gateway and the
// facilitator cannot read different payments out of the same bytes.
func decodeObject(raw []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	o := &object{vals: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("malformed object key")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := o.vals[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		o.keys = append(o.keys, key)
		o.vals[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return o, nil
}

// marshal writes the object back, keys in their original order, values verbatim.
func (o *object) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

func (o *object) has(key string) bool {
	v, ok := o.vals[key]
	return ok && string(v) != "null"
}

// str returns a required string member.
func (o *object) str(path, key string) (string, *Error) {
	v, ok := o.vals[key]
	if !ok || string(v) == "null" {
		return "", invalidHeader("%s%s is missing", path, key)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", invalidHeader("%s%s is not a string", path, key)
	}
	if s == "" {
		return "", invalidHeader("%s%s is empty", path, key)
	}
	return s, nil
}

// sub returns a required object member.
func (o *object) sub(path, key string) (*object, *Error) {
	v, ok := o.vals[key]
	if !ok || string(v) == "null" {
		return nil, invalidHeader("%s%s is missing", path, key)
	}
	so, err := decodeObject(v)
	if err != nil {
		return nil, invalidHeader("%s%s: %v", path, key, err)
	}
	return so, nil
}

func parsePaymentPayload(raw []byte) (*PaymentPayload, *Error) {
	top, err := decodeObject(raw)
	if err != nil {
		return nil, invalidHeader("the payment is not a JSON object: %v", err)
	}
	v, ok := top.vals["x402Version"]
	if !ok {
		return nil, invalidHeader("x402Version is missing")
	}
	p := &PaymentPayload{}
	if err := json.Unmarshal(v, &p.X402Version); err != nil {
		return nil, invalidHeader("x402Version is not an integer")
	}
	switch p.X402Version {
	case Version1:
		var e *Error
		if p.Scheme, e = top.str("", "scheme"); e != nil {
			return nil, e
		}
		if p.Network, e = top.str("", "network"); e != nil {
			return nil, e
		}
	case Version2:
		acc, e := top.sub("", "accepted")
		if e != nil {
			return nil, e
		}
		req, e := parseRequirements(acc)
		if e != nil {
			return nil, e
		}
		p.Accepted = req
		p.Scheme, p.Network = req.Scheme, req.Network
		if top.has("resource") {
			var r ResourceInfo
			if err := json.Unmarshal(top.vals["resource"], &r); err != nil {
				return nil, invalidHeader("resource is not a ResourceInfo object: %v", err)
			}
			p.Resource = &r
		}
		if top.has("extensions") {
			if err := json.Unmarshal(top.vals["extensions"], &p.Extensions); err != nil {
				return nil, invalidHeader("extensions is not an object: %v", err)
			}
		}
	default:
		return nil, invalidHeader("x402Version %d is not supported (1 or 2)", p.X402Version)
	}

	pl, e := top.sub("", "payload")
	if e != nil {
		return nil, e
	}
	sig, e := pl.str("payload.", "signature")
	if e != nil {
		return nil, e
	}
	sigBytes, ok := decodeHex(sig)
	if !ok || len(sigBytes) < 65 {
		return nil, invalidHeader("payload.signature is not 0x-prefixed hex of at least 65 bytes")
	}
	switch {
	case pl.has("authorization") && pl.has("permit2Authorization"):
		return nil, invalidHeader("payload has both authorization and permit2Authorization; send one")
	case pl.has("permit2Authorization"):
		pa, e := parsePermit2Authorization(pl)
		if e != nil {
			return nil, e
		}
		p.Payload.Permit2Authorization = pa
	default:
		if e := parseAuthorization(pl, &p.Payload.Authorization); e != nil {
			return nil, e
		}
	}

	// Normalise the recovery id of a plain 65-byte signature: v 0/1 -> 27/28.
	p.Raw = append(json.RawMessage(nil), raw...)
	if len(sigBytes) == 65 && sigBytes[64] < 2 {
		sigBytes[64] += 27
		p.Payload.Signature = "0x" + hex.EncodeToString(sigBytes)
		sb, _ := json.Marshal(p.Payload.Signature)
		pl.vals["signature"] = sb
		top.vals["payload"] = pl.marshal()
		p.Raw = top.marshal()
	} else {
		p.Payload.Signature = sig
	}
	return p, nil
}

func parseAuthorization(pl *object, a *Authorization) *Error {
	au, e := pl.sub("payload.", "authorization")
	if e != nil {
		return e
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"from", &a.From}, {"to", &a.To}, {"value", &a.Value}, {"validAfter", &a.ValidAfter}, {"validBefore", &a.ValidBefore}, {"nonce", &a.Nonce}} {
		if *f.dst, e = au.str("payload.authorization.", f.key); e != nil {
			return e
		}
	}
	if e := checkAddresses("payload.authorization.", map[string]string{"from": a.From, "to": a.To}); e != nil {
		return e
	}
	return checkUints("payload.authorization.", map[string]string{"value": a.Value, "validAfter": a.ValidAfter, "validBefore": a.ValidBefore, "nonce": a.Nonce})
}

func parsePermit2Authorization(pl *object) (*Permit2Authorization, *Error) {
	const path = "payload.permit2Authorization."
	au, e := pl.sub("payload.", "permit2Authorization")
	if e != nil {
		return nil, e
	}
	a := &Permit2Authorization{}
	for _, f := range []struct {
		key string
		dst *string
	}{{"from", &a.From}, {"spender", &a.Spender}, {"nonce", &a.Nonce}, {"deadline", &a.Deadline}} {
		if *f.dst, e = au.str(path, f.key); e != nil {
			return nil, e
		}
	}
	perm, e := au.sub(path, "permitted")
	if e != nil {
		return nil, e
	}
	if a.Permitted.Token, e = perm.str(path+"permitted.", "token"); e != nil {
		return nil, e
	}
	if a.Permitted.Amount, e = perm.str(path+"permitted.", "amount"); e != nil {
		return nil, e
	}
	wit, e := au.sub(path, "witness")
	if e != nil {
		return nil, e
	}
	if a.Witness.To, e = wit.str(path+"witness.", "to"); e != nil {
		return nil, e
	}
	if a.Witness.ValidAfter, e = wit.str(path+"witness.", "validAfter"); e != nil {
		return nil, e
	}
	addrs := map[string]string{"from": a.From, "spender": a.Spender, "permitted.token": a.Permitted.Token, "witness.to": a.Witness.To}
	if wit.has("facilitator") {
		if a.Witness.Facilitator, e = wit.str(path+"witness.", "facilitator"); e != nil {
			return nil, e
		}
		addrs["witness.facilitator"] = a.Witness.Facilitator
	}
	if e := checkAddresses(path, addrs); e != nil {
		return nil, e
	}
	if e := checkUints(path, map[string]string{"permitted.amount": a.Permitted.Amount, "nonce": a.Nonce, "deadline": a.Deadline, "witness.validAfter": a.Witness.ValidAfter}); e != nil {
		return nil, e
	}
	return a, nil
}

func checkAddresses(path string, fields map[string]string) *Error {
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !chains.IsHexAddress(fields[k]) {
			return invalidHeader("%s%s %q is not a 20-byte hex address", path, k, fields[k])
		}
	}
	return nil
}

func checkUints(path string, fields map[string]string) *Error {
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if _, err := ParseUint256(fields[k]); err != nil {
			return invalidHeader("%s%s: %v", path, k, err)
		}
	}
	return nil
}

func parseRequirements(o *object) (*Requirements, *Error) {
	r := &Requirements{}
	var e *Error
	for _, f := range []struct {
		key string
		dst *string
	}{{"scheme", &r.Scheme}, {"network", &r.Network}, {"amount", &r.Amount}, {"asset", &r.Asset}, {"payTo", &r.PayTo}} {
		if *f.dst, e = o.str("accepted.", f.key); e != nil {
			return nil, e
		}
	}
	if _, err := ParseUint256(r.Amount); err != nil {
		return nil, invalidHeader("accepted.amount: %v", err)
	}
	if o.has("maxTimeoutSeconds") {
		if err := json.Unmarshal(o.vals["maxTimeoutSeconds"], &r.MaxTimeoutSeconds); err != nil {
			return nil, invalidHeader("accepted.maxTimeoutSeconds is not an integer")
		}
	}
	if o.has("extra") {
		if err := json.Unmarshal(o.vals["extra"], &r.Extra); err != nil {
			return nil, invalidHeader("accepted.extra is not an object")
		}
	}
	return r, nil
}

// MarshalJSON writes the payload in its generation's wire shape, from the fields (not Raw).
func (p PaymentPayload) MarshalJSON() ([]byte, error) {
	switch p.X402Version {
	case Version1:
		return json.Marshal(struct {
			X402Version int             `json:"x402Version"`
			Scheme      string          `json:"scheme"`
			Network     string          `json:"network"`
			Payload     ExactEVMPayload `json:"payload"`
		}{p.X402Version, p.Scheme, p.Network, p.Payload})
	case Version2:
		if p.Accepted == nil {
			return nil, errors.New("x402: a v2 payment payload needs Accepted")
		}
		return json.Marshal(struct {
			X402Version int             `json:"x402Version"`
			Resource    *ResourceInfo   `json:"resource,omitempty"`
			Accepted    *Requirements   `json:"accepted"`
			Payload     ExactEVMPayload `json:"payload"`
			Extensions  map[string]any  `json:"extensions,omitempty"`
		}{p.X402Version, p.Resource, p.Accepted, p.Payload, p.Extensions})
	default:
		return nil, fmt.Errorf("x402: unsupported x402Version %d", p.X402Version)
	}
}

// UnmarshalJSON parses a payload of either generation, as ParsePaymentPayload.
func (p *PaymentPayload) UnmarshalJSON(b []byte) error {
	q, e := parsePaymentPayload(b)
	if e != nil {
		return e
	}
	*p = *q
	return nil
}

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// ParseUint256 parses an EIP-3009 integer field as the exact EVM scheme encodes it: decimal
// digits, or 0x/0X followed by hex digits; the value must fit in 256 bits.
func ParseUint256(s string) (*big.Int, error) {
	if s == "" {
		return nil, errors.New("empty integer")
	}
	digits, base := s, 10
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		digits, base = s[2:], 16
	}
	if digits == "" || len(digits) > 80 {
		return nil, fmt.Errorf("%q is not an unsigned 256-bit integer", s)
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		ok := '0' <= c && c <= '9'
		if base == 16 {
			ok = ok || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
		}
		if !ok {
			return nil, fmt.Errorf("%q is not an unsigned 256-bit integer", s)
		}
	}
	n, ok := new(big.Int).SetString(digits, base)
	if !ok || n.Cmp(maxUint256) > 0 {
		return nil, fmt.Errorf("%q is not an unsigned 256-bit integer", s)
	}
	return n, nil
}

// decodeHex decodes 0x-prefixed hex with an even number of digits.
func decodeHex(s string) ([]byte, bool) {
	if len(s) < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return nil, false
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return nil, false
	}
	return b, true
}
