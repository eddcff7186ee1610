// Package gatewayconfig is the x402 gateway's configuration file. The renderer derives it from
// an offer and writes it into the gateway chart's values; the gateway reads it. It imports
// nothing of obol's offers or Kubernetes, so the gateway binary stays small.
package gatewayconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Modes of the gateway.
const (
	ModeHTTP      = "http"
	ModeInference = "inference"
)

// Config is the gateway's whole configuration for one offer.
type Config struct {
	// Offer is the offer's name, for logs and metrics.
	Offer string `json:"offer"`
	// Mode is http (gate every path under PathPrefix) or inference (OpenAI-compatible paths).
	Mode string `json:"mode"`
	// Upstream is the base URL paid requests are forwarded to.
	Upstream string `json:"upstream"`
	// HealthPath is the upstream's health path, probed by readiness checks.
	HealthPath string `json:"healthPath,omitempty"`
	// PathPrefix is the offer's public path; http mode strips it before forwarding.
	PathPrefix string `json:"pathPrefix"`
	// Facilitator is the x402 facilitator's base URL.
	Facilitator string `json:"facilitator"`
	// Payment is what one request costs and who is paid.
	Payment Payment `json:"payment"`
	// Limits bound what a client can make the gateway hold or wait for.
	Limits Limits `json:"limits"`
}

// Limits are the gateway's request-size and time limits.
type Limits struct {
	// MaxHeaderBytes bounds the request line and headers (payment headers included).
	MaxHeaderBytes int `json:"maxHeaderBytes"`
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `json:"maxBodyBytes"`
	// UpstreamTimeoutSeconds bounds a whole upstream exchange (long for inference streams).
	UpstreamTimeoutSeconds int `json:"upstreamTimeoutSeconds"`
	// VerifyTimeoutSeconds and SettleTimeoutSeconds bound the facilitator calls.
	VerifyTimeoutSeconds int `json:"verifyTimeoutSeconds"`
	SettleTimeoutSeconds int `json:"settleTimeoutSeconds"`
}

// DefaultLimits are the limits every offer gets: the predecessor's facilitator timeouts
// (verify 5 s, settle 60 s), 64 KiB of headers and 10 MiB bodies.
func DefaultLimits(mode string) Limits {
	l := Limits{MaxHeaderBytes: 64 << 10, MaxBodyBytes: 10 << 20, UpstreamTimeoutSeconds: 60, VerifyTimeoutSeconds: 5, SettleTimeoutSeconds: 60}
	if mode == ModeInference {
		l.UpstreamTimeoutSeconds = 600 // generation can take minutes
	}
	return l
}

// Marshal writes the config file the chart mounts: compact JSON with sorted keys, exactly as
// Helm's toJson writes the same values, so `obol gateway config` prints the mounted bytes.
func Marshal(c *Config) ([]byte, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, err
	}
	return json.Marshal(generic)
}

// Load reads a config file; unknown fields are errors, so a typo never silently drops a limit.
func Load(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	return &c, nil
}

// Payment is one x402 payment requirement, already resolved to the chain and token.
type Payment struct {
	Scheme string `json:"scheme"`
	// Network is the CAIP-2 id; NetworkName the legacy (x402 v1) name.
	Network     string `json:"network"`
	NetworkName string `json:"networkName"`
	PayTo       string `json:"payTo"`
	// Amount is the price of one request in the asset's atomic units, as a decimal string.
	Amount            string `json:"amount"`
	MaxTimeoutSeconds int32  `json:"maxTimeoutSeconds"`
	Asset             Asset  `json:"asset"`
	Price             Price  `json:"price"`
	// ApproxTokensPerRequest is the token count per-MTok prices are charged for by the exact
	// scheme (Amount), for buyers without upto.
	ApproxTokensPerRequest int64 `json:"approxTokensPerRequest,omitempty"`
	// Metering, when set, also offers the x402 upto scheme: the buyer authorizes at most what
	// the request can cost, the gateway settles what the answer used (inference offers priced
	// per token).
	Metering *Metering `json:"metering,omitempty"`
}

// Metering is per-token pricing, resolved to the asset's atomic units.
type Metering struct {
	// InputPerMTok and OutputPerMTok are atomic units per million prompt and completion
	// tokens, decimal integers.
	InputPerMTok  string `json:"inputPerMTok"`
	OutputPerMTok string `json:"outputPerMTok"`
	// MaxInputTokens and MaxOutputTokens bound what one request may be charged for: the upto
	// maximum is the price of both, and the forwarded max_tokens is at most MaxOutputTokens.
	MaxInputTokens  int64 `json:"maxInputTokens"`
	MaxOutputTokens int64 `json:"maxOutputTokens"`
	// FacilitatorAddress is the facilitator's settling address buyers bind into an upto
	// signature; empty means the one the facilitator lists in GET /supported.
	FacilitatorAddress string `json:"facilitatorAddress,omitempty"`
}

// Price is the offer's price model as the seller wrote it (token units), for display; the
// gateway charges Amount.
type Price struct {
	PerRequest string `json:"perRequest,omitempty"`
	PerMTok    string `json:"perMTok,omitempty"`
	PerHour    string `json:"perHour,omitempty"`
	// InputPerMTok and OutputPerMTok are per-token prices by side.
	InputPerMTok  string `json:"inputPerMTok,omitempty"`
	OutputPerMTok string `json:"outputPerMTok,omitempty"`
}

// Asset is the token a payment is made in.
type Asset struct {
	Address        string `json:"address"`
	Symbol         string `json:"symbol,omitempty"`
	Decimals       int    `json:"decimals"`
	TransferMethod string `json:"transferMethod"`
	EIP712Name     string `json:"eip712Name"`
	EIP712Version  string `json:"eip712Version"`
}
