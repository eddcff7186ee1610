package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/evmsig"
)

// errorBody is every JSON error the gateway writes itself.
type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
	Hint   string `json:"hint,omitempty"`
}

const defaultChallengeError = "payment required"

// resource describes the requested resource for a challenge and for the facilitator. Its URL is
// the one the buyer requested, byte for byte (path and query as sent, behind the ingress's
// forwarded scheme and host): indexes such as x402scan compare the two.
func (g *Gateway) resource(r *http.Request) x402.ResourceInfo {
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI() // absolute-form or a request built in-process
	}
	mime := ""
	if g.cfg.Mode == "inference" {
		mime = "application/json"
	}
	return x402.ResourceInfo{
		URL:         g.origin(r) + target,
		Description: fmt.Sprintf("%s: %s", g.cfg.Offer, r.URL.Path),
		MimeType:    mime,
	}
}

func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// challenge writes the 402 both x402 generations understand: the v2 PaymentRequired in the
// PAYMENT-REQUIRED header, the v1 PaymentRequired as the JSON body.
//
// Each generation lists the offer once, in its own vocabulary: the CAIP-2 network in v2, the
// legacy name in v1. The predecessor listed every requirement twice (CAIP-2 and alias) because
// its header and body were the same v2 document, which v1 clients also had to read; here the
// v1 client reads a v1 body, so the alias would only be a second, redundant option to a v2
// client. Payments naming either form are still accepted (Offer.Match).
//
// A rejected payment's challenge also carries the reason: "reason" in the body, and the x402
// v2 paymentFailure extension in the header.
func (g *Gateway) challenge(w http.ResponseWriter, r *http.Request, reason, msg string) {
	g.challengeFor(w, r, reason, msg, 0)
}

// challengeFor is challenge for a request asking for maxTokens completion tokens (0: unsaid):
// per-token offers list upto first, at the most that request can cost, then exact.
func (g *Gateway) challengeFor(w http.ResponseWriter, r *http.Request, reason, msg string, maxTokens int64) {
	res := g.resource(r)
	if msg == "" {
		msg = defaultChallengeError
	}
	// Not Offer.PaymentRequiredV2, which appends the legacy-alias duplicate.
	v2 := x402.PaymentRequired{
		X402Version: x402.Version2,
		Error:       msg,
		Resource:    &res,
		Accepts:     []x402.Requirements{g.offer.V2(res)},
	}
	if up, ok := g.uptoOffer(r.Context(), maxTokens); ok {
		v2.Accepts = append([]x402.Requirements{up.V2(res)}, v2.Accepts...)
	}
	v2.Extensions = map[string]any{"bazaar": bazaar(g.requestOperation(r), queryExample(r))}
	if reason != "" {
		v2.Extensions["paymentFailure"] = map[string]string{"reason": reason, "detail": msg}
	}
	hdr, err := x402.EncodeHeader(v2)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "cannot encode payment requirements", Reason: "internal_error"})
		return
	}
	v1, err := json.Marshal(g.offer.PaymentRequiredV1(res, msg))
	var body map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(v1, &body)
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "cannot encode payment requirements", Reason: "internal_error"})
		return
	}
	if reason != "" {
		body["reason"], _ = json.Marshal(reason)
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		// The body was not read and will not be: close rather than drain it, so a slow sender
		// holds nothing once answered.
		w.Header().Set("Connection", "close")
	}
	w.Header().Set(x402.HeaderPaymentRequired, hdr)
	writeJSON(w, http.StatusPaymentRequired, body)
}

// rejectMessage is the challenge's error for a rejected payment: it starts with the reason, so
// a client that only shows `error` still names the mismatch.
func rejectMessage(e *x402.Error) string {
	if e.Message == "" || e.Message == e.Reason {
		return e.Reason
	}
	return e.Reason + ": " + e.Message
}

// paymentHeader returns the request's payment header: PAYMENT-SIGNATURE (v2) wins over
// X-PAYMENT (v1) when a client sends both.
func paymentHeader(r *http.Request) (name, value string) {
	if v := r.Header.Get(x402.HeaderPaymentSignature); v != "" {
		return x402.HeaderPaymentSignature, v
	}
	if v := r.Header.Get(x402.HeaderXPayment); v != "" {
		return x402.HeaderXPayment, v
	}
	return "", ""
}

// uptoOffer is the upto requirement for a request asking for maxTokens completion tokens, when
// the offer is priced per token and the facilitator's settling address is known.
func (g *Gateway) uptoOffer(ctx context.Context, maxTokens int64) (x402.Offer, bool) {
	if g.upto == nil {
		return x402.Offer{}, false
	}
	addr, ok := g.uptoFacilitator(ctx)
	if !ok {
		return x402.Offer{}, false
	}
	o := *g.upto
	o.Amount = g.prices.MaxCost(maxTokens).String()
	o.FacilitatorAddress = addr
	return o, true
}

// gate runs the payment checks and, once a payment is verified, the upstream exchange and the
// settlement. It reports whether the client's connection must be aborted.
func (g *Gateway) gate(w *statusWriter, r *http.Request, rt route, rec *record) (abort bool) {
	name, hv := paymentHeader(r)
	if name == "" {
		g.challengeFor(w, r, "", "", g.peekMaxTokens(w, r))
		return false
	}
	if len(hv) > g.limits.MaxHeaderBytes {
		g.fail(rec, "header_too_large")
		writeJSON(w, http.StatusRequestHeaderFieldsTooLarge, errorBody{Error: name + " header too large", Reason: "header_too_large", Hint: fmt.Sprintf("at most %d bytes", g.limits.MaxHeaderBytes)})
		return false
	}
	p, err := x402.DecodePaymentHeader(hv, g.limits.MaxHeaderBytes)
	if err != nil {
		reason := "invalid_payment_header"
		var xe *x402.Error
		if errors.As(err, &xe) && xe.Reason != "" {
			reason = xe.Reason
		}
		g.fail(rec, reason)
		writeJSON(w, http.StatusBadRequest, errorBody{
			Error:  "invalid " + name + " header",
			Reason: reason,
			Hint:   name + " must be the base64 encoding of an x402 PaymentPayload JSON object; pay the 402 challenge this path returns without it",
		})
		return false
	}
	terms, err := p.Terms()
	if err != nil {
		g.fail(rec, "invalid_payment_header")
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid " + name + " header", Reason: "invalid_payment_header"})
		return false
	}
	rec.from = terms.From

	pay := &payment{p: p, terms: terms}
	offer := g.offer
	if p.Scheme == x402.SchemeUpto && g.upto != nil {
		// The maximum this request can cost depends on its body, read now (bounded in size and
		// time) so the payment is checked against it before anything else.
		body, ok := g.readPaidBody(w, r, rec)
		if !ok {
			return false
		}
		req, obj := readInferenceRequest(body)
		up, ok := g.uptoOffer(r.Context(), req.maxTokens)
		if !ok {
			g.fail(rec, "facilitator_unavailable")
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "per-token payments are unavailable: the facilitator did not say where it settles", Reason: "facilitator_unavailable", Hint: "retry later, or pay with the exact scheme"})
			return false
		}
		offer = up
		pay.upto = &uptoState{req: req, obj: obj, body: body}
	}
	now := g.now()
	if e := offer.Match(p, now); e != nil {
		g.fail(rec, e.Reason)
		g.challengeFor(w, r, e.Reason, rejectMessage(e), 0)
		return false
	}

	key := terms.ReplayKey(g.offer.Asset)
	switch g.nonces.add(key, nonceExpiry(terms, now, g.offer.MaxTimeoutSeconds), now) {
	case nonceReplayed:
		g.fail(rec, "replayed_payment")
		g.challenge(w, r, "replayed_payment", "replayed_payment: this payment's authorization was already used")
		return false
	case nonceFull:
		g.fail(rec, "busy")
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "too many payments in flight", Reason: "busy", Hint: "retry with a new payment"})
		return false
	}
	// From here the nonce is held. It is released only if the request never reached the
	// upstream: an authorization that bought any upstream work is never accepted again.
	defer func() {
		if !pay.upstreamCalled.Load() {
			g.nonces.remove(key)
		}
	}()

	// The signature is checked here before any facilitator is asked: a forged payment costs
	// the facilitator nothing.
	if err := evmsig.Check(p, g.chainID, g.token); err != nil {
		g.fail(rec, "invalid_signature")
		g.challenge(w, r, "invalid_signature", "invalid_signature: the payment's signature does not recover to its payer")
		return false
	}
	select {
	case g.inflight <- struct{}{}:
		defer func() { <-g.inflight }()
	default:
		g.fail(rec, "busy")
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "too many paid requests in flight", Reason: "busy", Hint: "retry with the same payment"})
		return false
	}

	res := g.resource(r)
	pay.offer = offer
	if pay.upto != nil {
		// Verified as signed: the maximum the buyer authorized.
		pay.offer.Amount = terms.Value.String()
	}
	pay.res = res
	pay.req = pay.offer.RequirementsFor(p, res)
	t0 := time.Now()
	vr, err := g.fac.Verify(r.Context(), p, pay.req)
	g.m.facilitator.WithLabelValues("verify").Observe(time.Since(t0).Seconds())
	if err != nil {
		if r.Context().Err() != nil {
			g.fail(rec, "client_cancelled")
			w.status = statusClientClosed
			return false
		}
		reason, status := "facilitator_unavailable", http.StatusServiceUnavailable
		var xe *x402.Error
		if errors.As(err, &xe) && !errors.Is(err, x402.ErrFacilitatorUnavailable) && xe.Reason != "" {
			reason = xe.Reason
			if xe.Status >= 400 {
				status = xe.Status
			}
		}
		g.fail(rec, reason)
		rec.err = err.Error()
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		writeJSON(w, status, errorBody{Error: "payment could not be verified", Reason: reason, Hint: "the payment was not used; retry later with the same payment"})
		return false
	}
	if !vr.IsValid {
		msg := "verification_failed"
		if vr.InvalidReason != "" {
			msg += ": " + vr.InvalidReason
		}
		if vr.InvalidMessage != "" {
			msg += ": " + vr.InvalidMessage
		}
		g.fail(rec, "verification_failed")
		rec.err = vr.InvalidReason
		g.challenge(w, r, "verification_failed", msg)
		return false
	}
	g.m.verified.Inc()
	rec.payer = vr.Payer
	if rec.payer == "" {
		rec.payer = rec.from
	}
	pay.payer = rec.payer
	if u := pay.upto; u != nil {
		body := u.body
		if u.obj != nil {
			shaped, err := shapeInferenceRequest(u.obj, &u.req, g.prices.OutputBound(u.req.maxTokens), rt.path == "/v1/embeddings")
			if err == nil {
				body = shaped
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	return g.forward(w, r, rt, rec, pay)
}

// peekMaxTokens reads a small unpaid inference body to price upto for its max_tokens: at most
// 64 KiB, declared up front and arriving within a second. Anything else is priced at the
// offer's caps without reading a byte.
func (g *Gateway) peekMaxTokens(w http.ResponseWriter, r *http.Request) int64 {
	if g.upto == nil || r.ContentLength <= 0 || r.ContentLength > 64<<10 {
		return 0
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(time.Second))
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	body, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
	if err != nil {
		return 0
	}
	req, _ := readInferenceRequest(body)
	return req.maxTokens
}

// readPaidBody reads a paid request's body whole, within Limits.MaxBodyBytes and the body
// deadline; on failure it has answered.
func (g *Gateway) readPaidBody(w *statusWriter, r *http.Request, rec *record) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	body, err := io.ReadAll(r.Body)
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.fail(rec, "body_too_large")
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "request body too large", Reason: "body_too_large", Hint: fmt.Sprintf("at most %d bytes; the payment was not used", mbe.Limit)})
			return nil, false
		}
		g.fail(rec, "body_incomplete")
		w.Header().Set("Connection", "close")
		writeJSON(w, http.StatusRequestTimeout, errorBody{Error: "the request body did not arrive", Reason: "body_incomplete", Hint: "send the body at once; the payment was not used"})
		return nil, false
	}
	return body, true
}

// bodyTimeout bounds how long a paid request's body may take to arrive.
const bodyTimeout = 30 * time.Second

// fail counts a payment that did not go through, and records why for the request log.
func (g *Gateway) fail(rec *record, reason string) {
	rec.reason = reason
	g.m.failed.WithLabelValues(reason).Inc()
}

// payment is a verified payment on its way to settlement.
type payment struct {
	p     *x402.PaymentPayload
	terms x402.Terms
	offer x402.Offer // what was verified (upto: at the authorized maximum)
	req   any
	res   x402.ResourceInfo
	payer string
	upto  *uptoState // per-token payments
	// upstreamCalled is set once the request reached the upstream (set by the transport's
	// goroutine): the authorization is spent for this process from then on, whatever happens
	// next.
	upstreamCalled atomic.Bool
	resp           *x402.SettleResponse
	err            error
}

// uptoState is a per-token payment's request, and what its answer used.
type uptoState struct {
	req   inferenceRequest
	obj   map[string]json.RawMessage
	body  []byte
	meter *sseMeter
	used  usage
}

// settle asks the facilitator to settle once. It does not use the request's context: a
// settlement that was started is finished even if the client leaves meanwhile or the server
// is shutting down (the caller checks the client is there before starting).
func (g *Gateway) settle(ctx context.Context, pay *payment, rec *record) bool {
	req := pay.req
	if u := pay.upto; u != nil {
		// upto settles what was used: the settle-time requirement's amount (specs/schemes/upto
		// §5), never above the authorized maximum; nothing used settles nothing.
		amount := g.prices.Cost(u.used.prompt, u.used.completion)
		if amount.Cmp(pay.terms.Value) > 0 {
			amount.Set(pay.terms.Value)
		}
		rec.charged = amount.String()
		if amount.Sign() == 0 {
			pay.resp = &x402.SettleResponse{Success: true, Payer: pay.payer, Network: pay.offer.Network, Amount: "0"}
			return true
		}
		o := pay.offer
		o.Amount = amount.String()
		req = o.RequirementsFor(pay.p, pay.res)
	}
	g.settling.Add(1)
	defer g.settling.Done()
	t0 := time.Now()
	pay.resp, pay.err = g.fac.Settle(context.WithoutCancel(ctx), pay.p, req)
	g.m.facilitator.WithLabelValues("settle").Observe(time.Since(t0).Seconds())
	if pay.err == nil && pay.resp != nil && pay.resp.Success {
		if pay.resp.Amount == "" {
			pay.resp.Amount = rec.charged
		}
		g.m.settled.Inc()
		rec.tx = pay.resp.Transaction
		if pay.resp.Payer != "" {
			rec.payer = pay.resp.Payer
		}
		return true
	}
	g.fail(rec, "settlement_failed")
	switch {
	case pay.err != nil:
		rec.err = pay.err.Error()
	case pay.resp != nil:
		rec.err = strings.TrimSpace(pay.resp.ErrorReason + " " + pay.resp.ErrorMessage)
		rec.tx = pay.resp.Transaction
	}
	return false
}

// receipt is the settle response encoded for the PAYMENT-RESPONSE / X-PAYMENT-RESPONSE headers.
func receipt(pay *payment) string {
	if pay.resp == nil {
		return ""
	}
	s, err := x402.EncodeHeader(pay.resp)
	if err != nil {
		return ""
	}
	return s
}

// writeSettleFailure is the 503 a failed settlement answers instead of the upstream's body.
func writeSettleFailure(w http.ResponseWriter, pay *payment) {
	h := w.Header()
	if pay.resp != nil && pay.resp.Transaction != "" {
		if rc := receipt(pay); rc != "" {
			h.Set(x402.HeaderPaymentResponse, rc)
			h.Set(x402.HeaderXPaymentResponse, rc)
		}
	}
	h.Set("Retry-After", "5")
	msg := "payment could not be settled"
	if pay.resp != nil && pay.resp.ErrorReason != "" {
		msg += ": " + pay.resp.ErrorReason
	}
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg, Reason: "settlement_failed", Hint: "the response was withheld; retry with a new payment"})
}

// nonceExpiry is when a nonce may be forgotten: the end of the authorization's validity, after
// which it cannot be settled anyway (Match bounds it by maxTimeoutSeconds).
func nonceExpiry(t x402.Terms, now time.Time, maxTimeout int) time.Time {
	if t.ValidBefore != nil && t.ValidBefore.IsInt64() && t.ValidBefore.Int64() > 0 {
		return time.Unix(t.ValidBefore.Int64(), 0)
	}
	return now.Add(time.Duration(maxTimeout) * time.Second)
}

// writeJSON writes v as the JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
