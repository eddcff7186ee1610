// Command obol-git serves the git repositories under --root read-only over
// smart HTTP (git-upload-pack only), for Flux's source-controller. It needs
// no git binary and is built static (CGO_ENABLED=0).
//
//	obol-git --root DIR [--listen :8080]
//	obol-git --version
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

	"github.com/obol/obol/internal/gitserve"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, nil))
}

// run starts the server and blocks until ctx is done or SIGTERM/SIGINT.
// When ready is non-nil, the bound address is sent on it once listening.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) int {
	fs := flag.NewFlagSet("obol-git", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "", "directory holding the git repositories, or a single repository (required)")
	listen := fs.String("listen", ":8080", "address to listen on")
	showVersion := fs.Bool("version", false, "print the version and exit")
	timeout := fs.Duration("request-timeout", gitserve.DefaultRequestTimeout, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "obol-git %s\n", version)
		return 0
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if *root == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: obol-git --root DIR [--listen :8080]")
		return 2
	}
	h, err := gitserve.New(gitserve.Options{Root: *root, Logger: log, Version: version, RequestTimeout: *timeout})
	if err != nil {
		log.Error("starting", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listening", "err", err)
		return 1
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "root", *root, "version", version)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		log.Error("serving", "err", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serving", "err", err)
		return 1
	}
	return 0
}
