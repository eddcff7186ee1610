package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/x402test"
)

// instantFacilitator answers every /verify and /settle at once, and accounts the time its
// handler spent, so the benchmark can subtract the facilitator's own time from the gateway's.
type instantFacilitator struct {
	srv     *httptest.Server
	handler atomic.Int64 // nanoseconds spent in the handler
}

func newInstantFacilitator(tb testing.TB) *instantFacilitator {
	f := &instantFacilitator{}
	verify := []byte(`{"isValid":true,"payer":"0x2222222222222222222222222222222222222222"}`)
	settle := []byte(`{"success":true,"transaction":"0x` + strings.Repeat("ab", 32) + `","network":"eip155:84532","payer":"0x2222222222222222222222222222222222222222"}`)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/settle" {
			_, _ = w.Write(settle)
		} else {
			_, _ = w.Write(verify)
		}
		f.handler.Add(int64(time.Since(t0)))
	}))
	tb.Cleanup(f.srv.Close)
	return f
}

// benchEnv is one upstream reached directly and through a gateway, in the same process.
type benchEnv struct {
	up     *httptest.Server
	gw     *httptest.Server
	fac    *instantFacilitator
	client *http.Client
	req    x402.Requirements
	buyer  *x402test.Buyer
}

const benchBody = `{"id":"cmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}`

func newBenchEnv(tb testing.TB) *benchEnv { return newBenchEnvWith(tb, 0, false) }

// newBenchEnvWithLatency's upstream takes latency to answer each request, as a real API or
// model server does; 0 is an upstream that does no work at all.
func newBenchEnvWithLatency(tb testing.TB, latency time.Duration) *benchEnv {
	return newBenchEnvWith(tb, latency, false)
}

// newBenchEnvWith prices the offer per token and pays it with upto when upto is set: the
// request body is read and reshaped, the answer's usage read, and the amount computed.
func newBenchEnvWith(tb testing.TB, latency time.Duration, upto bool) *benchEnv {
	e := &benchEnv{fac: newInstantFacilitator(tb)}
	e.up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if latency > 0 {
			time.Sleep(latency)
		}
		if strings.HasSuffix(r.URL.Path, "/completions") && r.URL.Query().Get("stream") == "1" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n")
			_ = http.NewResponseController(w).Flush()
			time.Sleep(time.Millisecond)
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchBody)
	}))
	tb.Cleanup(e.up.Close)
	cfg := testConfig(gatewayconfig.ModeInference, e.up.URL, e.fac.srv.URL)
	if upto {
		cfg.Payment.Metering = &gatewayconfig.Metering{InputPerMTok: "500000", OutputPerMTok: "2000000", MaxInputTokens: 8192, MaxOutputTokens: 1024,
			FacilitatorAddress: x402test.Signer}
	}
	gw, err := NewGateway(cfg, Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxNonces: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	e.gw = httptest.NewUnstartedServer(gw)
	e.gw.Config = gw.Server("")
	e.gw.Start()
	tb.Cleanup(e.gw.Close)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	e.client = &http.Client{Transport: t}
	tb.Cleanup(t.CloseIdleConnections)
	e.req = gw.offer.V2(x402.ResourceInfo{})
	e.buyer = x402test.NewBuyer(tb, 2)
	if upto {
		o, _ := gw.uptoOffer(tb.Context(), 0)
		e.req = o.V2(x402.ResourceInfo{})
		e.buyer.Scheme = x402.SchemeUpto
	}
	return e
}

// sign returns n fresh payment headers (signing is the buyer's cost, done before timing).
func (e *benchEnv) sign(tb testing.TB, n int) []string {
	out := make([]string, n)
	for i := range out {
		h, err := e.buyer.SignV2(e.req, nil)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = h
	}
	return out
}

func (e *benchEnv) do(tb testing.TB, base, path, payment string) {
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	if strings.HasSuffix(path, "/models") || path == PathHealthz {
		req, _ = http.NewRequest(http.MethodGet, base+path, nil)
	}
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: status %d", path, resp.StatusCode)
	}
}

// ttfb is the time from sending a streamed request to its first body byte.
func (e *benchEnv) ttfb(tb testing.TB, base, payment string) time.Duration {
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions?stream=1", strings.NewReader(`{"stream":true}`))
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	t0 := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		tb.Fatal(err)
	}
	d := time.Since(t0)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return d
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// throughput runs total requests over workers goroutines and returns requests per second.
func (e *benchEnv) throughput(tb testing.TB, base string, payments []string, workers, total int) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				p := ""
				if payments != nil {
					p = payments[i]
				}
				e.do(tb, base, "/v1/chat/completions", p)
			}
		})
	}
	wg.Wait()
	return float64(total) / time.Since(t0).Seconds()
}

// benchFigures are the comparisons BenchmarkGateway reports, measured once per process.
type benchFigures struct {
	directP50, gatedP50, healthzP50, facP50 time.Duration
	directRPS, gatewayRPS                   float64
	directRPS10, gatewayRPS10               float64 // upstream answering in 10 ms
	ttfbDirect, ttfbGateway                 time.Duration
}

var (
	figuresOnce sync.Once
	figures     benchFigures
)

func measure(tb testing.TB) benchFigures {
	const (
		samples = 400 // sequential latency samples per path
		streams = 100 // time-to-first-byte samples per path
		workers = 16
		total   = 2000 // requests per throughput run
	)
	e := newBenchEnv(tb)
	pay := e.sign(tb, samples+streams+total+50)
	take := func() string { p := pay[0]; pay = pay[1:]; return p }
	// Warm up connections and code paths.
	for range 20 {
		e.do(tb, e.up.URL, "/v1/chat/completions", "")
		e.do(tb, e.gw.URL, "/v1/chat/completions", take())
		e.do(tb, e.gw.URL, PathHealthz, "")
	}
	var direct, gated, healthz, fac []time.Duration
	for range samples { // interleaved, so drift affects every path alike
		t0 := time.Now()
		e.do(tb, e.up.URL, "/v1/chat/completions", "")
		direct = append(direct, time.Since(t0))

		f0 := e.fac.handler.Load()
		t0 = time.Now()
		e.do(tb, e.gw.URL, "/v1/chat/completions", take())
		d := time.Since(t0)
		fd := time.Duration(e.fac.handler.Load() - f0)
		gated = append(gated, d-fd)
		fac = append(fac, fd)

		t0 = time.Now()
		e.do(tb, e.gw.URL, PathHealthz, "")
		healthz = append(healthz, time.Since(t0))
	}
	var tDirect, tGateway []time.Duration
	for range streams {
		tDirect = append(tDirect, e.ttfb(tb, e.up.URL, ""))
		f0 := e.fac.handler.Load()
		d := e.ttfb(tb, e.gw.URL, take())
		tGateway = append(tGateway, d-time.Duration(e.fac.handler.Load()-f0))
	}
	f := benchFigures{
		directP50: median(direct), gatedP50: median(gated), healthzP50: median(healthz), facP50: median(fac),
		ttfbDirect: median(tDirect), ttfbGateway: median(tGateway),
	}
	f.directRPS = e.throughput(tb, e.up.URL, nil, workers, total)
	f.gatewayRPS = e.throughput(tb, e.gw.URL, pay[:total], workers, total)
	// The same comparison against an upstream that takes 10 ms per request, like a fast real
	// API: what a seller sees. The zero-work upstream above is the gateway's worst case.
	slow := newBenchEnvWithLatency(tb, 10*time.Millisecond)
	f.directRPS10 = slow.throughput(tb, slow.up.URL, nil, workers, total/4)
	f.gatewayRPS10 = slow.throughput(tb, slow.gw.URL, slow.sign(tb, total/4), workers, total/4)
	return f
}

// BenchmarkGateway measures the gateway against the same upstream reached directly, in the
// same run, with a facilitator that answers instantly (its handler time is subtracted):
//
//	ns/op              one paid request through the gateway (402-free: the payment is pre-signed)
//	added-ms-p50       median paid latency through the gateway minus the direct median
//	direct-ms-p50      median direct request
//	healthz-ms-p50     median of the gateway's free /healthz (one loopback round trip, no upstream)
//	fac-ms-p50         median facilitator handler time per paid request (subtracted above)
//	throughput-ratio   paid requests/s through the gateway / direct requests/s (16 workers),
//	                   against an upstream that does no work: the gateway's worst case
//	throughput-ratio-10ms  the same against an upstream answering in 10 ms
//	ttfb-delta-ms      median time to the first SSE byte, gateway minus direct
func BenchmarkGateway(b *testing.B) {
	figuresOnce.Do(func() { figures = measure(b) })
	f := figures

	e := newBenchEnv(b)
	var pay []string
	b.ResetTimer()
	for range b.N {
		if len(pay) == 0 {
			b.StopTimer()
			pay = e.sign(b, 256)
			b.StartTimer()
		}
		e.do(b, e.gw.URL, "/v1/chat/completions", pay[0])
		pay = pay[1:]
	}
	b.StopTimer()

	b.ReportMetric(ms(f.gatedP50-f.directP50), "added-ms-p50")
	b.ReportMetric(ms(f.directP50), "direct-ms-p50")
	b.ReportMetric(ms(f.healthzP50), "healthz-ms-p50")
	b.ReportMetric(ms(f.facP50), "fac-ms-p50")
	b.ReportMetric(f.gatewayRPS/f.directRPS, "throughput-ratio")
	b.ReportMetric(f.directRPS, "direct-req/s")
	b.ReportMetric(f.gatewayRPS, "gateway-req/s")
	b.ReportMetric(f.gatewayRPS10/f.directRPS10, "throughput-ratio-10ms")
	b.ReportMetric(ms(f.ttfbGateway-f.ttfbDirect), "ttfb-delta-ms")
	b.ReportMetric(ms(f.ttfbDirect), "ttfb-direct-ms")
}

// BenchmarkGatewayUpto is BenchmarkGateway's paid path for a per-token offer paid with x402
// upto (Permit2 signature checked, body read and bounded, usage read, amount computed and
// settled), against the same upstream reached directly in the same run:
//
//	added-ms-p50       median upto-paid latency through the gateway minus the direct median
//	throughput-ratio   upto-paid requests/s through the gateway / direct requests/s (16 workers)
func BenchmarkGatewayUpto(b *testing.B) {
	const samples, workers, total = 400, 16, 2000
	e := newBenchEnvWith(b, 0, true)
	pay := e.sign(b, samples+total+20+b.N)
	take := func() string { p := pay[0]; pay = pay[1:]; return p }
	for range 20 {
		e.do(b, e.up.URL, "/v1/chat/completions", "")
		e.do(b, e.gw.URL, "/v1/chat/completions", take())
	}
	var direct, gated []time.Duration
	for range samples {
		t0 := time.Now()
		e.do(b, e.up.URL, "/v1/chat/completions", "")
		direct = append(direct, time.Since(t0))
		f0 := e.fac.handler.Load()
		t0 = time.Now()
		e.do(b, e.gw.URL, "/v1/chat/completions", take())
		gated = append(gated, time.Since(t0)-time.Duration(e.fac.handler.Load()-f0))
	}
	directRPS := e.throughput(b, e.up.URL, nil, workers, total)
	gatewayRPS := e.throughput(b, e.gw.URL, pay[:total], workers, total)
	pay = pay[total:]
	b.ResetTimer()
	for range b.N {
		e.do(b, e.gw.URL, "/v1/chat/completions", take())
	}
	b.StopTimer()
	b.ReportMetric(ms(median(gated)-median(direct)), "added-ms-p50")
	b.ReportMetric(ms(median(direct)), "direct-ms-p50")
	b.ReportMetric(gatewayRPS/directRPS, "throughput-ratio")
	b.ReportMetric(gatewayRPS, "gateway-req/s")
}

// TestBenchmarkHarness runs the measurement once at a small scale so the benchmark's code is
// exercised by `go test`.
func TestBenchmarkHarness(t *testing.T) {
	e := newBenchEnv(t)
	pay := e.sign(t, 3)
	e.do(t, e.gw.URL, "/v1/chat/completions", pay[0])
	if d := e.ttfb(t, e.gw.URL, pay[1]); d <= 0 {
		t.Fatal("no ttfb")
	}
	if rps := e.throughput(t, e.gw.URL, pay[2:], 1, 1); rps <= 0 {
		t.Fatal("no throughput")
	}
	if e.fac.handler.Load() == 0 {
		t.Fatal("facilitator time not accounted")
	}
	u := newBenchEnvWith(t, 0, true)
	if u.req.Scheme != x402.SchemeUpto {
		t.Fatalf("upto bench requirement %+v", u.req)
	}
	u.do(t, u.gw.URL, "/v1/chat/completions", u.sign(t, 1)[0])
}
