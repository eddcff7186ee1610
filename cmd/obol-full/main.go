// Command obol-full is the whole obol CLI. obol runs it for every command it does not answer
// itself (internal/cmd/fast); run directly, it is obol with every command, only slower to start.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/obol/obol"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/fast"
	"github.com/obol/obol/internal/cmd/root"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if err := fast.CheckFrontend(os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return cmdutil.ExitFailure
	}
	// Not passed on to what obol starts (git hooks, ssh).
	_ = os.Unsetenv(fast.VersionEnv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := &cmdutil.Factory{
		IO:      cmdutil.System(),
		Secrets: root.Secrets,
		Assets:  obol.Assets(),
		Getenv:  os.Getenv,
		Now:     time.Now,
	}
	return root.Run(ctx, f, args)
}
