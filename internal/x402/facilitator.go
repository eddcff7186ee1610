package x402

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"time"
)

// ErrFacilitatorUnavailable is wrapped by every facilitator-client error that means the
// facilitator could not give an answer: transport errors, timeouts, 5xx, and responses that
// are not a verify/settle result. The gateway answers 503.
var ErrFacilitatorUnavailable = errors.New("x402: facilitator unavailable")

// Default facilitator timeouts (the predecessor's verify 5 s, settle 60 s).
const (
	DefaultVerifyTimeout    = 5 * time.Second
	DefaultSettleTimeout    = 60 * time.Second
	DefaultSupportedTimeout = 10 * time.Second
	// maxFacilitatorResponse bounds a facilitator response body.
	maxFacilitatorResponse = 1 << 20
)

// Facilitator is a client of an x402 facilitator: POST /verify, POST /settle, GET /supported.
type Facilitator struct {
	// URL is the facilitator's base URL; the endpoints are appended to it.
	URL string
	// HTTP is the client used; nil means a client with no timeout of its own (the timeouts
	// below bound each call).
	HTTP *http.Client
	// VerifyTimeout and SettleTimeout bound one call each; zero means the defaults.
	VerifyTimeout, SettleTimeout time.Duration
}

var defaultFacilitatorHTTP = &http.Client{}

func (f *Facilitator) client() *http.Client {
	if f.HTTP != nil {
		return f.HTTP
	}
	return defaultFacilitatorHTTP
}

// facilitatorRequest is the body of /verify and /settle.
type facilitatorRequest struct {
	X402Version         int             `json:"x402Version"`
	PaymentPayload      json.RawMessage `json:"paymentPayload"`
	PaymentRequirements any             `json:"paymentRequirements"`
}

func requestBody(p *PaymentPayload, req any) ([]byte, error) {
	if p == nil {
		return nil, errors.New("x402: no payment payload")
	}
	switch req.(type) {
	case Requirements, *Requirements:
		if p.X402Version != Version2 {
			return nil, fmt.Errorf("x402: v2 requirements for a v%d payment", p.X402Version)
		}
	case RequirementsV1, *RequirementsV1:
		if p.X402Version != Version1 {
			return nil, fmt.Errorf("x402: v1 requirements for a v%d payment", p.X402Version)
		}
	case nil:
		return nil, errors.New("x402: no payment requirements")
	}
	raw := p.Raw
	if len(raw) == 0 {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		raw = b
	}
	return json.Marshal(facilitatorRequest{X402Version: p.X402Version, PaymentPayload: raw, PaymentRequirements: req})
}

// Verify asks the facilitator whether p satisfies req (Requirements for a v2 payment,
// RequirementsV1 for v1; Offer.RequirementsFor picks the right one). An invalid payment is a
// response with IsValid false, not an error; errors wrap ErrFacilitatorUnavailable unless the
// arguments are wrong.
func (f *Facilitator) Verify(ctx context.Context, p *PaymentPayload, req any) (*VerifyResponse, error) {
	body, err := requestBody(p, req)
	if err != nil {
		return nil, err
	}
	var out VerifyResponse
	if err := f.do(ctx, http.MethodPost, "/verify", body, orDefault(f.VerifyTimeout, DefaultVerifyTimeout), "isValid", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Settle asks the facilitator to execute p. A failed settlement is a response with Success
// false; errors wrap ErrFacilitatorUnavailable unless the arguments are wrong.
func (f *Facilitator) Settle(ctx context.Context, p *PaymentPayload, req any) (*SettleResponse, error) {
	body, err := requestBody(p, req)
	if err != nil {
		return nil, err
	}
	var out SettleResponse
	if err := f.do(ctx, http.MethodPost, "/settle", body, orDefault(f.SettleTimeout, DefaultSettleTimeout), "success", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Supported lists what the facilitator handles.
func (f *Facilitator) Supported(ctx context.Context) (*SupportedResponse, error) {
	var out SupportedResponse
	if err := f.do(ctx, http.MethodGet, "/supported", nil, orDefault(f.VerifyTimeout, DefaultSupportedTimeout), "kinds", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// do performs one call. A 2xx answer must decode as the result; a 4xx answer is a result only
// when it is a JSON object carrying the result's key field (isValid / success / kinds).
func (f *Facilitator) do(ctx context.Context, method, path string, body []byte, timeout time.Duration, key string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := strings.TrimRight(f.URL, "/") + path
	// Errors name the URL without its credentials.
	url := Redact(target)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrFacilitatorUnavailable, path, err)
	}
	hreq.Header.Set("Accept", "application/json")
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.client().Do(hreq)
	if err != nil {
		// net/http's *url.Error repeats the URL, credentials and all: keep only its cause.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w: %s %s: %w", ErrFacilitatorUnavailable, method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFacilitatorResponse+1))
	if err != nil {
		return fmt.Errorf("%w: %s %s: reading the response: %w", ErrFacilitatorUnavailable, method, url, err)
	}
	if len(data) > maxFacilitatorResponse {
		return fmt.Errorf("%w: %s %s: response larger than %d bytes", ErrFacilitatorUnavailable, method, url, maxFacilitatorResponse)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if err := decodeResult(data, key, out); err != nil {
			return fmt.Errorf("%w: %s %s: status %d: %w", ErrFacilitatorUnavailable, method, url, resp.StatusCode, err)
		}
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		if err := decodeResult(data, key, out); err == nil {
			return nil
		}
	}
	// The body is not quoted: a facilitator that echoes its request would put the payment's
	// signature into the gateway's logs.
	return fmt.Errorf("%w: %s %s: status %d (%d bytes)", ErrFacilitatorUnavailable, method, url, resp.StatusCode, len(data))
}

// Redact returns raw with any user:password removed, for logs and errors.
func Redact(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	return u.String()
}

func decodeResult(data []byte, key string, out any) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if _, ok := probe[key]; !ok {
		return fmt.Errorf("no %q in the response", key)
	}
	return json.Unmarshal(data, out)
}
