// Command obol is the obol CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/obol/obol"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/root"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := &cmdutil.Factory{
		IO:     cmdutil.System(),
		Assets: obol.Assets(),
		Getenv: os.Getenv,
		Now:    time.Now,
	}
	return root.Run(ctx, f, args)
}
