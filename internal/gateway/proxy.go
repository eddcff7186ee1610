package gateway

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"github.com/obol/obol/internal/x402"
)

// exchange is one upstream exchange's state, shared by the proxy callbacks through the
// request context. All callbacks run on the handler's goroutine (or under the proxy's flush
// mutex), so it needs no lock.
type exchange struct {
	rt     route
	pay    *payment
	client context.Context // the client's request context (not the upstream timeout)
	start  time.Time

	stream       bool  // a < 400 streaming response (settled at its end, receipt in trailers)
	transportErr error // the upstream could not be reached or did not answer
	bodyErr      error // reading the upstream's body failed midway
	bodyEOF      bool  // the upstream's body was read to its end
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// streamTypes are the response types passed through unbuffered and settled at their end.
var streamTypes = map[string]bool{
	"text/event-stream":    true, // OpenAI-compatible streaming
	"application/x-ndjson": true, // Ollama-style streaming
}

func isStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && streamTypes[mt]
}

// rewrite turns the client's request into the upstream's: the offer's path mapped onto the
// upstream base URL, Host the upstream's, X-Forwarded-* set, payment headers removed and the
// verified payer passed on.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	x := exchangeFrom(pr.In.Context())
	pr.Out.URL.Path = x.rt.path
	pr.Out.URL.RawPath = x.rt.rawPath
	pr.SetURL(g.upstream) // joins the base path; Out.Host = "" sends the upstream's host
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	if g.trustFwd {
		pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
	}
	pr.SetXForwarded()
	if g.trustFwd {
		if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" {
			pr.Out.Header.Set("X-Forwarded-Host", v)
		}
		if v := pr.In.Header.Get("X-Forwarded-Proto"); v != "" {
			pr.Out.Header.Set("X-Forwarded-Proto", v)
		}
	}
	h := pr.Out.Header
	h.Del(x402.HeaderPaymentSignature)
	h.Del(x402.HeaderXPayment)
	// Never trust a client's claim, however spelled: many servers (CGI, nginx, WSGI) read
	// X_Payment_Payer as X-Payment-Payer.
	for k := range h {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), HeaderPayer) {
			delete(h, k)
		}
	}
	if x.pay.payer != "" {
		h.Set(HeaderPayer, x.pay.payer)
	}
	x.start = time.Now()
	// The authorization is spent for this process once the request has reached the upstream:
	// its headers were written to an upstream connection (a refused dial spends nothing).
	pr.Out = pr.Out.WithContext(httptrace.WithClientTrace(pr.Out.Context(), &httptrace.ClientTrace{
		WroteHeaders: func() { x.pay.upstreamCalled.Store(true) },
	}))
}

// modifyResponse classifies the upstream's answer and watches its body to the end.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	x := exchangeFrom(resp.Request.Context())
	g.m.upstream.Observe(time.Since(x.start).Seconds())
	x.stream = resp.StatusCode < 400 && isStream(resp.Header.Get("Content-Type"))
	resp.Body = &trackingBody{ReadCloser: resp.Body, x: x}
	return nil
}

// trackingBody records how reading the upstream's body ended.
type trackingBody struct {
	io.ReadCloser
	x *exchange
}

func (b *trackingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.x.bodyEOF = true
	case err != nil && b.x.bodyErr == nil:
		b.x.bodyErr = err
	}
	return n, err // io.EOF unwrapped: the proxy compares with ==
}

// proxyError answers a failed upstream exchange (no response at all); the payment is not
// settled.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	x.transportErr = err
	if !x.start.IsZero() {
		g.m.upstream.Observe(time.Since(x.start).Seconds())
	}
	gw, ok := w.(*gateWriter)
	if !ok || gw.state != stUndecided {
		return
	}
	gw.state = stFailed
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		gw.rec.reason = "body_too_large"
		writeJSON(gw.real, http.StatusRequestEntityTooLarge, errorBody{Error: "request body too large", Reason: "body_too_large", Hint: "at most " + strconv.FormatInt(mbe.Limit, 10) + " bytes; " + retryHint(x.pay)})
	case x.client.Err() != nil:
		gw.rec.reason = "client_cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		gw.rec.reason = "upstream_timeout"
		writeJSON(gw.real, http.StatusGatewayTimeout, errorBody{Error: "upstream timed out", Reason: "upstream_timeout", Hint: retryHint(x.pay)})
	default:
		gw.rec.reason = "upstream_unavailable"
		writeJSON(gw.real, http.StatusBadGateway, errorBody{Error: "upstream unavailable", Reason: "upstream_unavailable", Hint: retryHint(x.pay)})
	}
	gw.rec.err = err.Error()
}

// gateWriter is the ResponseWriter the proxy writes the upstream's answer to; it decides when
// the client sees it relative to the settlement.
type gateWriter struct {
	g    *Gateway
	real *statusWriter
	x    *exchange
	pay  *payment
	rec  *record

	h        http.Header // the upstream's headers until committed
	state    int
	code     int
	buf      []byte
	limit    int64
	writeErr error // writing to the client failed
}

const (
	stUndecided    = iota
	stFailed       // proxyError answered
	stPassthrough  // upstream >= 400: passed through, not settled
	stStream       // streaming < 400: passed through, settled at the end
	stBuffer       // other < 400: buffered until settled
	stDirect       // buffer overflowed: settled, receipt sent, rest passed through
	stSettleFailed // settlement failed, 503 written
	stAbort        // the client left before the buffer overflowed
)

var errWithheld = errors.New("gateway: response withheld")

func (gw *gateWriter) Header() http.Header {
	switch gw.state {
	case stPassthrough, stStream, stDirect:
		return gw.real.Header()
	}
	return gw.h
}

func (gw *gateWriter) WriteHeader(code int) {
	if gw.state != stUndecided {
		return
	}
	if code < 200 { // 1xx (Early Hints): not passed on
		clear(gw.h)
		return
	}
	gw.code = code
	// Receipts are the gateway's to give: an upstream's own are dropped.
	gw.h.Del(x402.HeaderPaymentResponse)
	gw.h.Del(x402.HeaderXPaymentResponse)
	switch {
	case code >= 400:
		gw.state = stPassthrough
		gw.commit(code)
	case gw.x.stream && gw.pay.upto != nil:
		// Per-token: delivered as it comes, metered, settled for what was used at the end
		// (the receipt in trailers).
		gw.state = stStream
		gw.pay.upto.meter = &sseMeter{dst: writerFunc(gw.passThrough), req: gw.pay.upto.req}
		gw.h.Del("Content-Length")
		gw.h.Add("Trailer", x402.HeaderPaymentResponse+", "+x402.HeaderXPaymentResponse)
		gw.h.Set("X-Accel-Buffering", "no")
		gw.commit(code)
	case gw.x.stream:
		// exact: settled before the first byte, so a buyer who hangs up early has paid.
		if gw.x.client.Err() != nil {
			gw.state = stAbort
			return
		}
		if !gw.g.settle(gw.x.client, gw.pay, gw.rec) {
			gw.state = stSettleFailed
			writeSettleFailure(gw.real, gw.pay)
			return
		}
		gw.state = stStream
		rc := receipt(gw.pay)
		gw.h.Set(x402.HeaderPaymentResponse, rc)
		gw.h.Set(x402.HeaderXPaymentResponse, rc)
		gw.h.Del("Content-Length")
		gw.h.Set("X-Accel-Buffering", "no")
		gw.commit(code)
	default:
		gw.state = stBuffer
		if cl, err := strconv.ParseInt(gw.h.Get("Content-Length"), 10, 64); err == nil && cl > gw.limit {
			_ = gw.overflow()
		}
	}
}

// commit sends the status and the headers gathered so far.
func (gw *gateWriter) commit(code int) {
	dst := gw.real.Header()
	for k, v := range gw.h {
		dst[k] = v
	}
	gw.real.WriteHeader(code)
}

func (gw *gateWriter) Write(p []byte) (int, error) {
	switch gw.state {
	case stUndecided:
		gw.WriteHeader(http.StatusOK)
		return gw.Write(p)
	case stBuffer:
		if int64(len(gw.buf)+len(p)) <= gw.limit {
			gw.buf = append(gw.buf, p...)
			return len(p), nil
		}
		if err := gw.overflow(); err != nil {
			return 0, err
		}
		return gw.Write(p)
	case stStream:
		if u := gw.pay.upto; u != nil && u.meter != nil {
			return u.meter.Write(p)
		}
		return gw.passThrough(p)
	case stPassthrough, stDirect:
		return gw.passThrough(p)
	}
	return 0, errWithheld
}

func (gw *gateWriter) passThrough(p []byte) (int, error) {
	n, err := gw.real.Write(p)
	if err != nil && gw.writeErr == nil {
		gw.writeErr = err
	}
	return n, err
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// overflow settles a response too large to buffer, then sends the receipt and what was
// buffered; the rest is passed through.
func (gw *gateWriter) overflow() error {
	if gw.x.client.Err() != nil {
		gw.state = stAbort
		return gw.x.client.Err()
	}
	if gw.pay.upto != nil {
		// Too large to read its usage: passed through and charged by its size at the end.
		gw.state = stStream
		gw.h.Del("Content-Length")
		gw.h.Add("Trailer", x402.HeaderPaymentResponse+", "+x402.HeaderXPaymentResponse)
		gw.commit(gw.code)
		if len(gw.buf) > 0 {
			if _, err := gw.passThrough(gw.buf); err != nil {
				return err
			}
			gw.buf = nil
		}
		return nil
	}
	if !gw.g.settle(gw.x.client, gw.pay, gw.rec) {
		gw.state = stSettleFailed
		writeSettleFailure(gw.real, gw.pay)
		_ = http.NewResponseController(gw.real).Flush()
		return errWithheld
	}
	rc := receipt(gw.pay)
	gw.h.Set(x402.HeaderPaymentResponse, rc)
	gw.h.Set(x402.HeaderXPaymentResponse, rc)
	gw.state = stDirect
	gw.commit(gw.code)
	if len(gw.buf) > 0 {
		if _, err := gw.real.Write(gw.buf); err != nil {
			gw.writeErr = err
			return err
		}
		gw.buf = nil
	}
	return nil
}

// FlushError flushes what is passed through; a buffered response is not flushed.
func (gw *gateWriter) FlushError() error {
	switch gw.state {
	case stPassthrough, stStream, stDirect:
		return http.NewResponseController(gw.real).Flush()
	}
	return nil
}

// forward sends a verified request upstream and settles as the package doc says. It reports
// whether the client's connection must be aborted (a stream that broke midway must not look
// complete to the client).
func (g *Gateway) forward(w *statusWriter, r *http.Request, rt route, rec *record, pay *payment) (abort bool) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(g.limits.UpstreamTimeoutSeconds)*time.Second)
	defer cancel()
	x := &exchange{rt: rt, pay: pay, client: r.Context()}
	ctx = context.WithValue(ctx, exchangeKey{}, x)
	gw := &gateWriter{g: g, real: w, x: x, pay: pay, rec: rec, h: make(http.Header), limit: g.limits.MaxBodyBytes}

	aborted := g.serveProxy(gw, r.WithContext(ctx))

	switch gw.state {
	case stUndecided:
		// The proxy gave up before any answer without calling proxyError.
		g.fail(rec, "upstream_error")
		writeJSON(w, http.StatusBadGateway, errorBody{Error: "upstream unavailable", Reason: "upstream_unavailable"})
		return false
	case stFailed:
		g.m.failed.WithLabelValues(unchargedReason(rec.reason)).Inc()
		return false
	case stPassthrough:
		rec.reason = "upstream_status_" + strconv.Itoa(gw.code)
		g.m.failed.WithLabelValues("upstream_error").Inc()
		return aborted
	case stStream:
		complete := !aborted && x.bodyEOF && x.bodyErr == nil && gw.writeErr == nil && x.client.Err() == nil
		if !complete {
			if x.client.Err() != nil || gw.writeErr != nil {
				rec.reason = "client_cancelled"
			} else {
				rec.reason = "upstream_error"
				if x.bodyErr != nil {
					rec.err = x.bodyErr.Error()
				}
			}
		}
		if u := pay.upto; u != nil {
			// Whatever ended the stream, the buyer pays for what reached it.
			if u.meter != nil {
				if complete {
					u.meter.flush()
				}
				u.used = u.meter.used(complete && u.meter.writeErr == nil)
			} else {
				u.used = usage{prompt: estimateTokens(u.req.promptBytes), completion: estimateTokens(w.bytes)}
			}
			g.settle(x.client, pay, rec)
			if rc := receipt(pay); rc != "" && complete {
				w.Header().Set(x402.HeaderPaymentResponse, rc)
				w.Header().Set(x402.HeaderXPaymentResponse, rc)
			}
		}
		return !complete
	case stBuffer:
		if x.client.Err() != nil {
			g.fail(rec, "client_cancelled")
			return false
		}
		if aborted || x.bodyErr != nil {
			g.fail(rec, "upstream_error")
			if x.bodyErr != nil {
				rec.err = x.bodyErr.Error()
			}
			writeJSON(w, http.StatusBadGateway, errorBody{Error: "upstream response broke off", Reason: "upstream_error", Hint: retryHint(pay)})
			return false
		}
		if u := pay.upto; u != nil {
			u.used = bufferedUsage(gw.buf, u.req)
		}
		if !g.settle(x.client, pay, rec) {
			writeSettleFailure(w, pay)
			return false
		}
		rc := receipt(pay)
		gw.h.Set(x402.HeaderPaymentResponse, rc)
		gw.h.Set(x402.HeaderXPaymentResponse, rc)
		gw.h.Del("Trailer")
		if r.Method != http.MethodHead && bodyAllowed(gw.code) {
			gw.h.Set("Content-Length", strconv.Itoa(len(gw.buf)))
		}
		gw.commit(gw.code)
		if len(gw.buf) > 0 {
			_, _ = w.Write(gw.buf)
		}
		return false
	case stDirect:
		if aborted || x.bodyErr != nil || gw.writeErr != nil {
			rec.reason = "incomplete_after_settlement"
			if x.bodyErr != nil {
				rec.err = x.bodyErr.Error()
			}
			return true
		}
		return false
	case stSettleFailed:
		return false
	case stAbort:
		g.fail(rec, "client_cancelled")
		return true
	}
	return aborted
}

// retryHint tells a buyer whose payment was not charged how to retry: with the same payment
// when the request never reached the upstream, else with a new one (gate never accepts an
// authorization twice once it bought upstream work).
func retryHint(pay *payment) string {
	if pay.upstreamCalled.Load() {
		return "the payment was not charged, but the upstream was reached: retry with a new payment"
	}
	return "the payment was not used; retry with the same payment"
}

// bodyAllowed reports whether a response with this status may have a body (RFC 9110).
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// unchargedReason maps why a verified exchange failed to the payments_failed_total reason.
func unchargedReason(reason string) string {
	switch reason {
	case "client_cancelled", "body_too_large":
		return reason
	}
	return "upstream_error"
}

// serveProxy runs the reverse proxy, turning its abort panic (a body copy that failed) into a
// result: the caller decides what the client sees.
func (g *Gateway) serveProxy(gw *gateWriter, r *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			aborted = true
		}
	}()
	g.proxy.ServeHTTP(gw, r)
	return false
}
