// Package x402 is obol's implementation of the x402 HTTP payment protocol's wire format, in both
// generations, and a client for an x402 facilitator.
//
// Sources (github.com/x402-foundation/x402, formerly coinbase/x402):
//
//	specs/x402-specification-v1.md, specs/transports-v1/http.md   v1: X-PAYMENT, legacy network names
//	specs/x402-specification-v2.md, specs/transports-v2/http.md   v2: PAYMENT-* headers, CAIP-2
//	specs/schemes/exact/scheme_exact_evm.md                       the EIP-3009 "exact" payload
//
// Generation 1 puts the chosen scheme and network at the top of the payment payload and the
// requirements in the 402 response body; generation 2 echoes the whole chosen requirement as
// "accepted" and moves the challenge into the PAYMENT-REQUIRED header. PaymentPayload
// normalises both so the gateway can treat them alike; Raw keeps the bytes the client sent,
// which is what the facilitator is given.
package x402

import (
	"encoding/json"
)

// HTTP headers of both generations. Every value is base64 of a JSON document.
const (
	// HeaderPaymentRequired (v2, server to client) carries a PaymentRequired.
	HeaderPaymentRequired = "PAYMENT-REQUIRED"
	// HeaderPaymentSignature (v2, client to server) carries a PaymentPayload.
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"
	// HeaderPaymentResponse (v2, server to client) carries a SettleResponse.
	HeaderPaymentResponse = "PAYMENT-RESPONSE"
	// HeaderXPayment (v1, client to server) carries a PaymentPayload.
	HeaderXPayment = "X-PAYMENT"
	// HeaderXPaymentResponse (v1, server to client) carries a SettleResponse.
	HeaderXPaymentResponse = "X-PAYMENT-RESPONSE"
)

// Payment schemes.
const (
	// SchemeExact is the "exact" payment scheme: on EVM chains an EIP-3009
	// transferWithAuthorization, or a Permit2 witness transfer through the x402 exact proxy, of a
	// fixed amount.
	SchemeExact = "exact"
	// SchemeUpto is the "upto" scheme (specs/schemes/upto): the buyer signs a Permit2 witness
	// transfer of at most an amount; the server settles what was used, which may be zero.
	SchemeUpto = "upto"
)

// Asset transfer methods of EVM payments (extra.assetTransferMethod).
const (
	TransferEIP3009 = "eip3009"
	TransferPermit2 = "permit2"
)

// Canonical EVM contracts, at the same address on every chain (CREATE2).
const (
	// Permit2Address is Uniswap's Permit2, the EIP-712 verifying contract of Permit2 payments.
	Permit2Address = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
	// ExactPermit2Proxy is the spender of an exact Permit2 payment (x402ExactPermit2Proxy).
	ExactPermit2Proxy = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"
	// UptoPermit2Proxy is the spender of an upto payment (x402UptoPermit2Proxy).
	UptoPermit2Proxy = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"
)

// Protocol generations.
const (
	Version1 = 1
	Version2 = 2
)

// ResourceInfo describes the resource a payment is for (v2).
type ResourceInfo struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// Requirements is one v2 PaymentRequirements entry: what the server accepts.
type Requirements struct {
	Scheme string `json:"scheme"`
	// Network is the CAIP-2 id, e.g. eip155:84532.
	Network string `json:"network"`
	// Amount is the price in the asset's atomic units, as a decimal string.
	Amount string `json:"amount"`
	// Asset is the token contract address.
	Asset string `json:"asset"`
	PayTo string `json:"payTo"`
	// MaxTimeoutSeconds bounds the lifetime of a payment authorization.
	MaxTimeoutSeconds int `json:"maxTimeoutSeconds"`
	// Extra is scheme specific; for EVM exact {"name": eip712Name, "version": eip712Version}.
	Extra map[string]any `json:"extra,omitempty"`
}

// RequirementsV1 is one v1 PaymentRequirements entry.
type RequirementsV1 struct {
	Scheme string `json:"scheme"`
	// Network is the legacy network name, e.g. base-sepolia.
	Network string `json:"network"`
	// MaxAmountRequired is the price in atomic units, as a decimal string.
	MaxAmountRequired string `json:"maxAmountRequired"`
	Resource          string `json:"resource"`
	// Description and MimeType are always written: v1 clients validate them as strings.
	Description       string         `json:"description"`
	MimeType          string         `json:"mimeType"`
	PayTo             string         `json:"payTo"`
	MaxTimeoutSeconds int            `json:"maxTimeoutSeconds"`
	Asset             string         `json:"asset"`
	OutputSchema      any            `json:"outputSchema,omitempty"`
	Extra             map[string]any `json:"extra,omitempty"`
}

// PaymentRequired is the v2 challenge, sent base64-encoded in the PAYMENT-REQUIRED header.
type PaymentRequired struct {
	X402Version int            `json:"x402Version"`
	Error       string         `json:"error,omitempty"`
	Resource    *ResourceInfo  `json:"resource,omitempty"`
	Accepts     []Requirements `json:"accepts"`
	Extensions  map[string]any `json:"extensions,omitempty"`
}

// PaymentRequiredV1 is the v1 challenge, sent as the JSON body of the 402 response.
type PaymentRequiredV1 struct {
	X402Version int              `json:"x402Version"`
	Error       string           `json:"error"`
	Accepts     []RequirementsV1 `json:"accepts"`
}

// ExactEVMPayload is the "payload" of an EVM payment and the payer's EIP-712 signature over
// it: an EIP-3009 authorization, or a Permit2 authorization (exact through the exact proxy, and
// every upto payment). Exactly one of the two is set.
type ExactEVMPayload struct {
	// Signature is 0x-prefixed hex, 65 bytes r||s||v for an EOA.
	Signature            string                `json:"signature"`
	Authorization        Authorization         `json:"authorization,omitzero"`
	Permit2Authorization *Permit2Authorization `json:"permit2Authorization,omitempty"`
}

// Permit2Authorization is a Permit2 PermitWitnessTransferFrom message as sent on the wire.
// Amounts, nonce, deadline and validAfter are decimal strings (ParseUint256 also accepts hex).
type Permit2Authorization struct {
	From      string           `json:"from"`
	Permitted TokenPermissions `json:"permitted"`
	// Spender is the x402 proxy that may call Permit2 (ExactPermit2Proxy or UptoPermit2Proxy).
	Spender  string         `json:"spender"`
	Nonce    string         `json:"nonce"`
	Deadline string         `json:"deadline"`
	Witness  Permit2Witness `json:"witness"`
}

// TokenPermissions is Permit2's (token, amount): for upto the maximum that may be settled.
type TokenPermissions struct {
	Token  string `json:"token"`
	Amount string `json:"amount"`
}

// Permit2Witness is what the x402 proxies bind into the signature: the recipient, the start of
// validity and, for upto, the one facilitator that may settle.
type Permit2Witness struct {
	To          string `json:"to"`
	Facilitator string `json:"facilitator,omitempty"`
	ValidAfter  string `json:"validAfter"`
}

// Authorization is the EIP-3009 TransferWithAuthorization message as sent on the wire. Value,
// ValidAfter and ValidBefore are decimal strings (ParseUint256 also accepts 0x hex); Nonce is
// 0x followed by 64 hex digits.
type Authorization struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Value       string `json:"value"`
	ValidAfter  string `json:"validAfter"`
	ValidBefore string `json:"validBefore"`
	Nonce       string `json:"nonce"`
}

// PaymentPayload is what a client sends, of either generation, normalised.
type PaymentPayload struct {
	X402Version int
	// Scheme and Network are top-level fields in v1 and copied from Accepted in v2.
	Scheme, Network string
	// Accepted is the requirement the client chose (v2 only).
	Accepted *Requirements
	// Resource is the resource the client paid for (v2, optional).
	Resource *ResourceInfo
	// Extensions are the client's extension data (v2, optional).
	Extensions map[string]any
	Payload    ExactEVMPayload
	// Raw is the decoded JSON object as the client sent it (with only a v=0/1 signature
	// recovery id rewritten to 27/28). The facilitator client forwards Raw; MarshalJSON
	// instead writes the payload from the fields above.
	Raw json.RawMessage
}

// VerifyResponse is a facilitator's answer to POST /verify.
type VerifyResponse struct {
	IsValid        bool   `json:"isValid"`
	InvalidReason  string `json:"invalidReason,omitempty"`
	InvalidMessage string `json:"invalidMessage,omitempty"`
	Payer          string `json:"payer,omitempty"`
}

// SettleResponse is a facilitator's answer to POST /settle, and the receipt a server returns in
// PAYMENT-RESPONSE / X-PAYMENT-RESPONSE.
type SettleResponse struct {
	Success      bool   `json:"success"`
	ErrorReason  string `json:"errorReason,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	Payer        string `json:"payer,omitempty"`
	// Transaction is the transaction hash; the spec requires the field, empty on failure.
	Transaction string `json:"transaction"`
	Network     string `json:"network"`
	Amount      string `json:"amount,omitempty"`
}

// SupportedResponse is a facilitator's answer to GET /supported.
type SupportedResponse struct {
	Kinds      []SupportedKind     `json:"kinds"`
	Extensions []string            `json:"extensions,omitempty"`
	Signers    map[string][]string `json:"signers,omitempty"`
}

// SupportedKind is one (version, scheme, network) a facilitator handles.
type SupportedKind struct {
	X402Version int            `json:"x402Version"`
	Scheme      string         `json:"scheme"`
	Network     string         `json:"network"`
	Extra       map[string]any `json:"extra,omitempty"`
}

// Supports reports whether the facilitator lists the given version, scheme and network.
func (s *SupportedResponse) Supports(version int, scheme, network string) bool {
	for _, k := range s.Kinds {
		if k.X402Version == version && k.Scheme == scheme && k.Network == network {
			return true
		}
	}
	return false
}
