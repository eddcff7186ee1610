// Command obol is the obol CLI. It answers the commands a shell and scripts run most (the
// version, sell list, completion of offer names) itself and runs obol-full, the rest of the
// CLI, for everything else: see internal/cmd/fast for why.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/fast"
	"github.com/obol/obol/internal/cmd/version"
)

func main() {
	args := os.Args[1:]
	if !fast.Handles(args) {
		os.Exit(execFull(args))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := &cmdutil.Factory{IO: cmdutil.System(), Getenv: os.Getenv, Now: time.Now}
	os.Exit(fast.Run(ctx, f, args))
}

// execFull replaces this process with obol-full: same arguments, streams, signals and exit code.
func execFull(args []string) int {
	exe, err := os.Executable()
	if err == nil {
		exe, err = fast.FullPath(exe, exec.LookPath)
	}
	if err == nil {
		env := append(os.Environ(), fast.VersionEnv+"="+version.Version)
		err = syscall.Exec(exe, append([]string{"obol"}, args...), env)
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	return cmdutil.ExitFailure
}
