// Package gateway is obol's in-cluster x402 gateway: a payment gate in front of a reverse
// proxy, configured by one gatewayconfig.Config.
//
// A gated request is served in this order, and the order is the point of the package:
//
//  1. route: /healthz, /readyz, /metrics and the discovery documents (/.well-known/x402 and an
//     OpenAPI document, at the root and under the offer's path) are open; a path the offer
//     does not serve is 404
//     (no payment is asked for what cannot be delivered);
//  2. limits: headers (http.Server.MaxHeaderBytes plus an explicit check of the payment header)
//     and the body (Content-Length up front, http.MaxBytesReader while forwarding) -> 431/413;
//  3. payment: none -> 402 challenge (a per-token offer lists upto, at the most the request
//     can cost, beside exact); malformed -> 400; not matching the offer (scheme, network,
//     transfer method, asset, payTo, amount, expiry) -> 402 naming the mismatch; its nonce
//     already held -> 402 replayed_payment (recorded by its 32-byte value before anything
//     else is asked, so two concurrent requests carrying one payment cannot both pass); a
//     signature that does not recover to the payer -> 402 without asking the facilitator;
//     too many paid requests in flight -> 503 busy; facilitator /verify says no -> 402;
//     facilitator unreachable -> 503. The upstream is not called in any of these cases;
//  4. upstream: forwarded with the payment headers stripped and X-Payment-Payer set (an upto
//     request's max_tokens bounded to what was authorized, a stream asked for its usage);
//  5. settlement, only when the upstream answered < 400, and always before the answer's
//     first byte for exact:
//     - an exact Server-Sent Events stream is settled as its headers arrive, then passed
//     through unbuffered (flushed per write) with the receipt in the headers;
//     - an upto stream is passed through event by event and metered, and settled at its end
//     for what reached the client, however it ended; the receipt is sent as HTTP trailers;
//     - any other response is buffered (up to Limits.MaxBodyBytes) and settled (upto: for
//     its usage) before a byte of it is written: the receipt goes in the response headers,
//     and a failed settlement is a 503 that does not deliver the body. An exact response
//     larger than the buffer is settled when the buffer overflows and streamed after the
//     receipt; an upto one is passed through and charged by its size.
//
// A payment is delivered at most once, by any number of replicas: settlement comes first, and
// the facilitator refuses a used nonce. Within a process, an authorization whose request
// reached the upstream is never accepted again, charged or not; one refused before that
// (verification, limits, the facilitator down, the upstream refusing the connection) is
// released so the buyer may retry it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/evmsig"
)

// Options are the gateway's process-level dependencies; the zero value is usable.
type Options struct {
	// Logger receives one JSON-friendly record per request; nil discards.
	Logger *slog.Logger
	// Registry registers the gateway's metrics; nil uses a private registry.
	Registry prometheus.Registerer
	// Gatherer is what /metrics serves; nil serves Registry when it is a Gatherer (the private
	// registry when Registry is nil), else prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Now is the clock for authorization expiry and the replay set; nil is time.Now.
	Now func() time.Time
	// HTTPClient talks to the facilitator, and its Transport to the upstream; nil uses a
	// transport tuned for many concurrent requests to one host.
	HTTPClient *http.Client
	// TrustForwarded keeps X-Forwarded-Host/-Proto from the client and appends to its
	// X-Forwarded-For (set it when an ingress is the only way in); otherwise they are rebuilt
	// from the connection.
	TrustForwarded bool
	// MaxNonces bounds the replay set (0: DefaultMaxNonces).
	MaxNonces int
	// MaxInFlight bounds the verified payments being served and settled at once (0:
	// DefaultMaxInFlight); past it a paid request gets 503 busy before any facilitator call.
	MaxInFlight int
}

// DefaultMaxInFlight bounds the paid requests in flight: each may hold a buffered answer of up
// to Limits.MaxBodyBytes until it is settled.
const DefaultMaxInFlight = 64

// DefaultMaxNonces bounds the replay set: about 10 MB of nonces still within their validity.
const DefaultMaxNonces = 100_000

// Paths the gateway answers itself, open whatever the offer.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
)

// HeaderPayer is set on upstream requests to the payer's address, as the facilitator reported it.
const HeaderPayer = "X-Payment-Payer"

// inferencePaths are the OpenAI-compatible endpoints inference mode gates, with their method.
var inferencePaths = map[string]string{
	"/v1/chat/completions": http.MethodPost,
	"/v1/completions":      http.MethodPost,
	"/v1/embeddings":       http.MethodPost,
	"/v1/models":           http.MethodGet,
}

// Gateway is the gate and proxy of one offer. It is an http.Handler.
type Gateway struct {
	cfg      *gatewayconfig.Config
	limits   gatewayconfig.Limits
	prefix   string // normalised: "" (none) or "/a/b"; "/" gates everything in http mode
	upstream *url.URL
	offer    x402.Offer  // exact
	upto     *x402.Offer // upto template (Amount set per request); nil without metering
	prices   *gatewayconfig.Prices
	chainID  *big.Int
	token    evmsig.Token
	inflight chan struct{}
	facAddr  facilitatorAddress
	fac      *x402.Facilitator
	proxy    *httputil.ReverseProxy
	client   *http.Client
	nonces   *nonceSet
	m        *metrics
	metricsH http.Handler
	log      *slog.Logger
	now      func() time.Time
	trustFwd bool
	draining atomic.Bool
	settling sync.WaitGroup // settlements in flight

	readyMu    sync.Mutex
	readyAt    time.Time
	readyOK    bool
	readyCause string
}

// New returns the gateway for cfg, or an error naming what in cfg is unusable.
func New(cfg *gatewayconfig.Config, opts Options) (http.Handler, error) {
	return NewGateway(cfg, opts)
}

// NewGateway is New with the concrete type, for callers that want Server or Limits.
func NewGateway(cfg *gatewayconfig.Config, opts Options) (*Gateway, error) {
	if cfg == nil {
		return nil, errors.New("gateway: no config")
	}
	if cfg.Mode != gatewayconfig.ModeHTTP && cfg.Mode != gatewayconfig.ModeInference {
		return nil, fmt.Errorf("gateway: mode %q: want %q or %q", cfg.Mode, gatewayconfig.ModeHTTP, gatewayconfig.ModeInference)
	}
	up, err := parseBaseURL("upstream", cfg.Upstream)
	if err != nil {
		return nil, err
	}
	if _, err := parseBaseURL("facilitator", cfg.Facilitator); err != nil {
		return nil, err
	}
	p := cfg.Payment
	for _, f := range []struct{ name, v string }{
		{"payment.network", p.Network}, {"payment.networkName", p.NetworkName}, {"payment.payTo", p.PayTo},
		{"payment.asset.address", p.Asset.Address}, {"payment.amount", p.Amount},
	} {
		if strings.TrimSpace(f.v) == "" {
			return nil, fmt.Errorf("gateway: %s is empty", f.name)
		}
	}
	if n, ok := new(big.Int).SetString(p.Amount, 10); !ok || n.Sign() <= 0 || strings.TrimLeft(p.Amount, "0123456789") != "" {
		return nil, fmt.Errorf("gateway: payment.amount %q is not a positive integer of atomic units", p.Amount)
	}
	if cfg.HealthPath != "" && !strings.HasPrefix(cfg.HealthPath, "/") {
		return nil, fmt.Errorf("gateway: healthPath %q must start with /", cfg.HealthPath)
	}
	prefix, err := normalisePrefix(cfg.PathPrefix)
	if err != nil {
		return nil, err
	}
	if cfg.Mode == gatewayconfig.ModeHTTP && prefix == "" {
		return nil, errors.New("gateway: http mode needs a pathPrefix (\"/\" gates every path)")
	}

	g := &Gateway{
		cfg:      cfg,
		limits:   withDefaults(cfg.Limits, cfg.Mode),
		prefix:   prefix,
		upstream: up,
		log:      opts.Logger,
		now:      opts.Now,
		client:   opts.HTTPClient,
		trustFwd: opts.TrustForwarded,
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.client == nil {
		g.client = &http.Client{Transport: defaultTransport()}
	}
	scheme := p.Scheme
	if scheme == "" {
		scheme = x402.SchemeExact
	}
	maxTimeout := int(p.MaxTimeoutSeconds)
	if maxTimeout <= 0 {
		maxTimeout = 300
	}
	if scheme != x402.SchemeExact {
		return nil, fmt.Errorf("gateway: payment.scheme %q: want %q (per-token pricing adds upto through payment.metering)", scheme, x402.SchemeExact)
	}
	if g.chainID, err = evmsig.ChainID(p.Network); err != nil {
		return nil, fmt.Errorf("gateway: payment.network: %w", err)
	}
	g.token = evmsig.Token{Address: p.Asset.Address, EIP712Name: p.Asset.EIP712Name, EIP712Version: p.Asset.EIP712Version}
	g.offer = x402.Offer{
		Scheme: scheme, Network: p.Network, NetworkName: p.NetworkName, Asset: p.Asset.Address,
		Amount: p.Amount, PayTo: p.PayTo, MaxTimeoutSeconds: maxTimeout,
		EIP712Name: p.Asset.EIP712Name, EIP712Version: p.Asset.EIP712Version,
		TransferMethod: p.Asset.TransferMethod,
	}
	if p.Metering != nil {
		if cfg.Mode != gatewayconfig.ModeInference {
			return nil, errors.New("gateway: payment.metering is for inference offers")
		}
		if g.prices, err = p.Metering.Prices(); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		up := g.offer
		up.Scheme, up.TransferMethod = x402.SchemeUpto, x402.TransferPermit2
		g.upto = &up
		g.facAddr.fixed = p.Metering.FacilitatorAddress
	}
	maxInFlight := opts.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	g.inflight = make(chan struct{}, maxInFlight)
	g.fac = &x402.Facilitator{
		URL:           strings.TrimRight(cfg.Facilitator, "/"),
		HTTP:          g.client,
		VerifyTimeout: time.Duration(g.limits.VerifyTimeoutSeconds) * time.Second,
		SettleTimeout: time.Duration(g.limits.SettleTimeoutSeconds) * time.Second,
	}
	maxNonces := opts.MaxNonces
	if maxNonces <= 0 {
		maxNonces = DefaultMaxNonces
	}
	g.nonces = newNonceSet(maxNonces)

	reg := opts.Registry
	gath := opts.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
		if gath == nil {
			gath = r
		}
	}
	if gath == nil {
		if rg, ok := reg.(prometheus.Gatherer); ok {
			gath = rg
		} else {
			gath = prometheus.DefaultGatherer
		}
	}
	if g.m, err = newMetrics(reg, cfg.Offer); err != nil {
		return nil, err
	}
	g.metricsH = promhttp.HandlerFor(gath, promhttp.HandlerOpts{})

	transport := g.client.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      transport,
		FlushInterval:  -1, // flush after every write; non-streams are buffered by the gate anyway
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.proxyError,
		ErrorLog:       log.New(io.Discard, "", 0), // outcomes are logged per request instead
	}
	return g, nil
}

// Drain makes /readyz fail from now on, so load balancers stop sending new requests while
// the server finishes the ones in flight.
func (g *Gateway) Drain() { g.draining.Store(true) }

// WaitSettlements waits until no settlement is in flight, or ctx is done. A server cut off
// after its drain timeout still lets started settlements finish (each is bounded by
// Limits.SettleTimeoutSeconds) before the process exits.
func (g *Gateway) WaitSettlements(ctx context.Context) error {
	done := make(chan struct{})
	go func() { g.settling.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Limits are the effective limits (the config's, with defaults for zero fields).
func (g *Gateway) Limits() gatewayconfig.Limits { return g.limits }

func withDefaults(l gatewayconfig.Limits, mode string) gatewayconfig.Limits {
	d := gatewayconfig.DefaultLimits(mode)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.UpstreamTimeoutSeconds <= 0 {
		l.UpstreamTimeoutSeconds = d.UpstreamTimeoutSeconds
	}
	if l.VerifyTimeoutSeconds <= 0 {
		l.VerifyTimeoutSeconds = d.VerifyTimeoutSeconds
	}
	if l.SettleTimeoutSeconds <= 0 {
		l.SettleTimeoutSeconds = d.SettleTimeoutSeconds
	}
	return l
}

func parseBaseURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("gateway: %s %q: want an http(s) base URL without query", what, raw)
	}
	return u, nil
}

func normalisePrefix(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#") || hasDotSegment(p) {
		return "", fmt.Errorf("gateway: pathPrefix %q: want an absolute path", p)
	}
	if p == "/" {
		return "/", nil
	}
	return strings.TrimRight(p, "/"), nil
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// One upstream and one facilitator: keep enough idle connections for the concurrency a
	// gateway sees, instead of net/http's 2 per host.
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// route is what a request path maps to.
type route struct {
	label   string // metrics label
	method  string // required method ("" any)
	path    string // upstream path (decoded)
	rawPath string // upstream path (escaped), "" when Path is enough
}

// match maps a request to a gated route; ok is false for paths the offer does not serve.
func (g *Gateway) match(r *http.Request) (route, bool) {
	p := r.URL.Path
	if hasDotSegment(p) {
		return route{}, false
	}
	if g.cfg.Mode == gatewayconfig.ModeInference {
		rest := p
		if g.prefix != "" && g.prefix != "/" && strings.HasPrefix(p, g.prefix+"/") {
			rest = p[len(g.prefix):]
		}
		m, ok := inferencePaths[rest]
		if !ok {
			return route{}, false
		}
		return route{label: rest, method: m, path: rest}, true
	}
	var rest string
	switch {
	case g.prefix == "/":
		rest = p
	case p == g.prefix:
		rest = "/"
	case strings.HasPrefix(p, g.prefix+"/"):
		rest = p[len(g.prefix):]
	default:
		return route{}, false
	}
	rt := route{label: "gated", path: rest}
	if r.URL.RawPath != "" && g.prefix != "/" {
		esc := r.URL.EscapedPath()
		escPrefix := (&url.URL{Path: g.prefix}).EscapedPath()
		if strings.HasPrefix(esc, escPrefix) {
			rt.rawPath = esc[len(escPrefix):]
			if rt.rawPath == "" {
				rt.rawPath = "/"
			}
		}
	} else if g.prefix == "/" {
		rt.rawPath = r.URL.RawPath
	}
	return rt, true
}

// hasDotSegment reports a "." or ".." path segment, which the gate refuses rather than guess
// how the upstream resolves it.
func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." || seg == "." {
			return true
		}
	}
	return false
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &record{start: time.Now(), route: "other"}
	sw := &statusWriter{ResponseWriter: w}
	defer g.finish(sw, r, rec)

	switch r.URL.Path {
	case PathHealthz:
		rec.route = "healthz"
		writeJSON(sw, http.StatusOK, map[string]string{"status": "ok"})
		return
	case PathReadyz:
		rec.route = "readyz"
		g.serveReady(sw, r)
		return
	case PathMetrics:
		rec.route = "metrics"
		g.metricsH.ServeHTTP(sw, r)
		return
	}
	if which := g.discoveryPath(r.URL.Path); which != "" {
		rec.route = "discovery"
		g.serveDiscovery(sw, r, which)
		return
	}
	rt, ok := g.match(r)
	if !ok {
		writeJSON(sw, http.StatusNotFound, errorBody{Error: "not found", Reason: "not_found", Hint: g.notFoundHint()})
		return
	}
	rec.route = rt.label
	if rt.method != "" && r.Method != rt.method {
		sw.Header().Set("Allow", rt.method)
		writeJSON(sw, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed", Reason: "method_not_allowed", Hint: "use " + rt.method})
		return
	}
	if r.Header.Get("Upgrade") != "" {
		rec.reason = "upgrade_not_supported"
		writeJSON(sw, http.StatusNotImplemented, errorBody{Error: "protocol upgrades are not supported", Reason: rec.reason})
		return
	}
	if r.ContentLength > g.limits.MaxBodyBytes {
		rec.reason = "body_too_large"
		writeJSON(sw, http.StatusRequestEntityTooLarge, errorBody{Error: "request body too large", Reason: rec.reason, Hint: fmt.Sprintf("at most %d bytes", g.limits.MaxBodyBytes)})
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, g.limits.MaxBodyBytes)
	}
	if g.gate(sw, r, rt, rec) {
		// A stream that broke off must not look complete to the client: abort the connection
		// (the deferred log line is written first).
		panic(http.ErrAbortHandler)
	}
}

func (g *Gateway) notFoundHint() string {
	if g.cfg.Mode == gatewayconfig.ModeInference {
		return "paid paths: POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, GET /v1/models"
	}
	return "paid paths are under " + g.prefix
}

// serveReady is 200 once the config is loaded (it is, or New failed) and, when the config names
// an upstream health path, the upstream answered it < 400 within the last probe (cached 2 s,
// so /readyz cannot be used to flood the upstream).
func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	if g.cfg.HealthPath == "" {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	g.readyMu.Lock()
	defer g.readyMu.Unlock()
	if now := time.Now(); now.Sub(g.readyAt) > 2*time.Second {
		g.readyOK, g.readyCause = g.probeUpstream(r.Context())
		g.readyAt = now
	}
	if !g.readyOK {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "upstream not ready", "reason": g.readyCause})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (g *Gateway) probeUpstream(ctx context.Context) (bool, string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	u := *g.upstream
	u.Path = strings.TrimRight(u.Path, "/") + g.cfg.HealthPath
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return false, "upstream unreachable"
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 400 {
		return false, fmt.Sprintf("upstream health %d", resp.StatusCode)
	}
	return true, ""
}
