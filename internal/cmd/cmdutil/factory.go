// Package cmdutil holds what every obol command shares: where the stack repo is, the I/O
// streams, exit codes, output formats and the one write path (lock, build, commit).
package cmdutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/obol/obol/internal/repo"
)

// IOStreams are a command's standard streams; tests give buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// System returns the process's own streams.
func System() *IOStreams { return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }

// Factory carries what commands need from their environment, so each command is an options
// struct plus a run function that tests call without a terminal.
type Factory struct {
	IO *IOStreams
	// RepoFlag is --repo; empty means OBOL_REPO, then the default location.
	RepoFlag string
	// Assets is the embedded asset tree (templates/, charts/, clusters/).
	Assets fs.FS
	// Getenv reads the environment (os.Getenv outside tests).
	Getenv func(string) string
	// Now is the clock used for commit times.
	Now func() time.Time
}

// RepoDir resolves the stack repo's directory: --repo, then $OBOL_REPO, then
// $XDG_DATA_HOME/obol/stack, then ~/.local/share/obol/stack.
func (f *Factory) RepoDir() (string, error) {
	if f.RepoFlag != "" {
		return filepath.Abs(f.RepoFlag)
	}
	if d := f.Getenv("OBOL_REPO"); d != "" {
		return filepath.Abs(d)
	}
	if d := f.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "obol", "stack"), nil
	}
	home := f.Getenv("HOME")
	if home == "" {
		return "", errors.New("cannot find the stack repo: set --repo, OBOL_REPO or HOME")
	}
	return filepath.Join(home, ".local", "share", "obol", "stack"), nil
}

// OpenRepo opens the stack repo, with an error that says how to get one.
func (f *Factory) OpenRepo() (*repo.Repo, error) {
	dir, err := f.RepoDir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no stack repo at %s: run `obol stack init` (or pass --repo DIR)", dir)
	}
	r, err := repo.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("%w (is --repo right? `obol stack init` creates one)", err)
	}
	return r, nil
}
