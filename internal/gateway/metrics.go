package gateway

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests    *prometheus.CounterVec   // route, code
	verified    prometheus.Counter       //
	settled     prometheus.Counter       //
	failed      *prometheus.CounterVec   // reason
	upstream    prometheus.Histogram     // time to the upstream's response headers
	facilitator *prometheus.HistogramVec // op: verify|settle
}

func newMetrics(reg prometheus.Registerer, offer string) (*metrics, error) {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"offer": offer}, reg)
	const ns = "obol_gateway"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "requests_total",
			Help: "Requests served, by route (the gated path, healthz, readyz, metrics or other) and status code (499: the client left first).",
		}, []string{"route", "code"}),
		verified: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "payments_verified_total",
			Help: "Payments the facilitator verified.",
		}),
		settled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "payments_settled_total",
			Help: "Payments the facilitator settled.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "payments_failed_total",
			Help: "Payments refused or left unsettled, by reason (the x402 reason, or upstream_error / client_cancelled for verified payments not charged).",
		}, []string{"reason"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "upstream_duration_seconds",
			Help:    "Time from forwarding a paid request to the upstream's response headers (or its failure).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14), // 1 ms .. ~150 s
		}),
		facilitator: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "facilitator_duration_seconds",
			Help:    "Facilitator call durations, by operation (verify, settle).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1 ms .. ~60 s
		}, []string{"op"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.verified, m.settled, m.failed, m.upstream, m.facilitator} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// statusClientClosed is the status recorded for a request whose client left before an answer
// (nginx's convention); it is never sent.
const statusClientClosed = 499

// record is what one request's log line and metrics say.
type record struct {
	start  time.Time
	route  string
	from   string // authorization.from of a payment not (yet) verified
	payer  string // the verified payer
	reason string // why a payment was refused or not charged
	tx     string // settlement transaction
	// charged is what an upto payment was settled for, in atomic units.
	charged string
	err     string // facilitator or upstream detail (never a payment header)
}

// statusWriter records the status and size of what is written to the client.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// FlushError lets http.ResponseController flush through the recorder.
func (s *statusWriter) FlushError() error {
	return http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the server's writer (deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// finish counts and logs one request. The log line carries no header values: no payment
// header or signature, and the path without its query.
func (g *Gateway) finish(sw *statusWriter, r *http.Request, rec *record) {
	status := sw.status
	if status == 0 {
		status = statusClientClosed
	}
	g.m.requests.WithLabelValues(rec.route, strconv.Itoa(status)).Inc()
	level := slog.LevelInfo
	switch rec.route {
	case "healthz", "readyz", "metrics":
		level = slog.LevelDebug
	}
	ctx := r.Context()
	if !g.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", rec.route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(time.Since(rec.start).Microseconds())/1000),
		slog.Int64("bytes", sw.bytes),
	}
	if rec.payer != "" {
		attrs = append(attrs, slog.String("payer", rec.payer))
	} else if rec.from != "" {
		attrs = append(attrs, slog.String("from", rec.from))
	}
	if rec.reason != "" {
		attrs = append(attrs, slog.String("reason", rec.reason))
	}
	if rec.charged != "" {
		attrs = append(attrs, slog.String("charged", rec.charged))
	}
	if rec.tx != "" {
		attrs = append(attrs, slog.String("tx", rec.tx))
	}
	if rec.err != "" {
		attrs = append(attrs, slog.String("error", rec.err))
	}
	g.log.LogAttrs(ctx, level, "request", attrs...)
}
