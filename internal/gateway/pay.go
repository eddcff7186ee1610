package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/obol/obol/internal/x402"
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

// gate runs the payment checks and, once a payment is verified, the upstream exchange and the
// settlement. It reports whether the client's connection must be aborted.
func (g *Gateway) gate(w *statusWriter, r *http.Request, rt route, rec *record) (abort bool) {
	name, hv := paymentHeader(r)
	if name == "" {
		g.challenge(w, r, "", "")
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
	rec.from = p.Payload.Authorization.From
	now := g.now()
	if e := g.offer.Match(p, now); e != nil {
		g.fail(rec, e.Reason)
		g.challenge(w, r, e.Reason, rejectMessage(e))
		return false
	}

	key := nonceKey(p)
	switch g.nonces.add(key, nonceExpiry(p, now, g.offer.MaxTimeoutSeconds), now) {
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
	// From here the nonce is held; it is released when the payment was neither settled nor
	// paid for with content, so the buyer can retry the same authorization.
	release := true
	defer func() {
		if release {
			g.nonces.remove(key)
		}
	}()

	res := g.resource(r)
	req := g.offer.RequirementsFor(p, res)
	t0 := time.Now()
	vr, err := g.fac.Verify(r.Context(), p, req)
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

	pay := &payment{p: p, req: req, payer: rec.payer}
	delivered, abort := g.forward(w, r, rt, rec, pay)
	// Keep the nonce when a settlement was attempted or content went out for it.
	release = !pay.attempted && !delivered
	return abort
}

// fail counts a payment that did not go through, and records why for the request log.
func (g *Gateway) fail(rec *record, reason string) {
	rec.reason = reason
	g.m.failed.WithLabelValues(reason).Inc()
}

// payment is a verified payment on its way to settlement.
type payment struct {
	p         *x402.PaymentPayload
	req       any
	payer     string
	attempted bool
	resp      *x402.SettleResponse
	err       error
}

// settle asks the facilitator to settle once. It does not use the request's context: a
// settlement that was started is finished even if the client leaves meanwhile or the server
// is shutting down (the caller checks the client is there before starting).
func (g *Gateway) settle(ctx context.Context, pay *payment, rec *record) bool {
	pay.attempted = true
	g.settling.Add(1)
	defer g.settling.Done()
	t0 := time.Now()
	pay.resp, pay.err = g.fac.Settle(context.WithoutCancel(ctx), pay.p, pay.req)
	g.m.facilitator.WithLabelValues("settle").Observe(time.Since(t0).Seconds())
	if pay.err == nil && pay.resp != nil && pay.resp.Success {
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

// nonceKey identifies an EIP-3009 authorization: its authorizer and nonce (what the token
// contract itself makes single-use).
func nonceKey(p *x402.PaymentPayload) string {
	a := p.Payload.Authorization
	return strings.ToLower(a.From) + "/" + strings.ToLower(a.Nonce)
}

// nonceExpiry is when a nonce may be forgotten: the authorization's validBefore, after which it
// cannot be settled anyway. An unreadable validBefore (Match should have refused it) is held
// for the offer's maxTimeoutSeconds.
func nonceExpiry(p *x402.PaymentPayload, now time.Time, maxTimeout int) time.Time {
	if vb, err := strconv.ParseInt(p.Payload.Authorization.ValidBefore, 10, 64); err == nil && vb > 0 {
		return time.Unix(vb, 0)
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
