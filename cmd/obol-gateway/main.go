// Command obol-gateway is the in-cluster x402 gateway of one obol offer: a payment gate in
// front of a reverse proxy (see internal/gateway).
//
//	obol-gateway --config FILE [--listen ADDR]
//	obol-gateway --version
//
// It logs JSON to stdout, serves /healthz, /readyz and /metrics, and on SIGTERM or SIGINT
// stops accepting connections and drains the requests in flight for up to --drain-timeout
// (25 s, inside the chart's 30 s terminationGracePeriodSeconds). Requests still running then
// are cut off (a stream cut off is not settled), but settlements already started are waited
// for (each bounded by the config's settle timeout).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/obol/obol/internal/gateway"
	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("obol-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "the gateway config `file` (JSON, as obol gateway config prints it)")
	listen := fs.String("listen", ":8402", "the address to listen on")
	showVersion := fs.Bool("version", false, "print the version and exit")
	trustForwarded := fs.Bool("trust-forwarded", true, "keep the client's X-Forwarded-Host/-Proto/-For (the gateway is reached through an ingress)")
	drainTimeout := fs.Duration("drain-timeout", 25*time.Second, "how long to drain in-flight requests on SIGTERM before cutting them off (started settlements are still finished)")
	shutdownDelay := fs.Duration("shutdown-delay", 0, "on SIGTERM, keep accepting requests this long with /readyz failing, so endpoints are updated first")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	maxNonces := fs.Int("max-nonces", gateway.DefaultMaxNonces, "payments remembered against replay until their validBefore (about 200 bytes each); when full, new payments get 503")
	maxConns := fs.Int("max-connections", 2048, "client connections served at once; more wait in the listen queue")
	maxInFlight := fs.Int("max-in-flight", gateway.DefaultMaxInFlight, "paid requests served and settled at once; more get 503 busy before the facilitator is asked")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: obol-gateway --config FILE [--listen ADDR]\n       obol-gateway --version\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "obol-gateway %s\n", version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "obol-gateway: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "obol-gateway: --config is required")
		fs.Usage()
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "obol-gateway: --log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}))
	if err := serve(ctx, logger, *configPath, *listen, gateway.Options{Logger: logger, TrustForwarded: *trustForwarded, MaxNonces: *maxNonces, MaxInFlight: *maxInFlight}, *maxConns, *drainTimeout, *shutdownDelay); err != nil {
		logger.Error("gateway stopped", "error", err.Error())
		return 1
	}
	return 0
}

func serve(ctx context.Context, logger *slog.Logger, configPath, listen string, opts gateway.Options, maxConns int, drain, delay time.Duration) error {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	cfg, err := gatewayconfig.Load(data)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts.Registry = reg
	gw, err := gateway.NewGateway(cfg, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	if maxConns > 0 {
		// Each connection costs a goroutine and buffers: a flood of them waits in the kernel's
		// queue instead of in the heap.
		ln = netutil.LimitListener(ln, maxConns)
	}
	srv := gw.Server(listen)
	logger.Info("listening", "addr", ln.Addr().String(), "version", version, "offer", cfg.Offer, "mode", cfg.Mode,
		"upstream", x402.Redact(cfg.Upstream), "facilitator", x402.Redact(cfg.Facilitator), "network", cfg.Payment.Network, "amount", cfg.Payment.Amount)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	gw.Drain()
	logger.Info("draining", "delay", delay.String(), "timeout", drain.String())
	if delay > 0 {
		time.Sleep(delay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running after the drain timeout are cut off (a stream cut off is not
		// settled); settlements already started are finished first.
		logger.Warn("drain timeout: closing the remaining connections", "error", err.Error())
		_ = srv.Close()
		wctx, wcancel := context.WithTimeout(context.Background(), time.Duration(gw.Limits().SettleTimeoutSeconds)*time.Second)
		defer wcancel()
		if err := gw.WaitSettlements(wctx); err != nil {
			return fmt.Errorf("settlements still running after the drain: %w", err)
		}
		logger.Info("stopped")
		return nil
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}
