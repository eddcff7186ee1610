// Package cmdutil holds what every obol command shares: where the stack repo is, its head,
// the I/O streams, exit codes and output formats. It links no cluster, rendering or
// secret-scanning library: the fast commands (internal/cmd/fast) are built on it alone.
package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/secretscan/finding"
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
	// RepoFlag is --repo; empty means OBOL_REPO, then the stack the current directory is in,
	// then the default location.
	RepoFlag string
	// Assets is the embedded asset tree (templates/, charts/, clusters/).
	Assets fs.FS
	// Getenv reads the environment (os.Getenv outside tests).
	Getenv func(string) string
	// Now is the clock used for commit times.
	Now func() time.Time
	// Getwd is the current directory, where the stack repo is looked for (os.Getwd if nil).
	Getwd func() (string, error)
	// Secrets is the secret scanner every write and push goes through (secretscan.Default in
	// the binaries). It is a field, not an import, so that the fast read-only commands
	// (cmd/obol's own) do not link the detector; without one a Factory refuses to write.
	Secrets func() (SecretScanner, error)

	repoNoted bool
}

// SecretScanner finds secrets in a file to commit and in the commits to push.
type SecretScanner interface {
	// Warm gets the scanner ready ahead of its first scan.
	Warm()
	File(path string, content []byte) []finding.Finding
	// History scans the commits reachable from head and not from stop, skipping blobs in known.
	History(r *repo.Repo, head plumbing.Hash, known map[plumbing.Hash]bool, stop ...plumbing.Hash) ([]finding.Finding, error)
}

// SetupRoot makes cmd obol's root command: its version, streams and flags (--version, and
// --repo for every command). Errors are printed by Execute, once.
func SetupRoot(cmd *cobra.Command, f *Factory, version string) {
	cmd.Version = version
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)
	cmd.SetIn(f.IO.In)
	// --version as cobra has it, but without -v: kubectl and flux use -v for verbosity.
	cmd.Flags().Bool("version", false, "print obol's version (obol version -o json for scripts)")
	cmd.PersistentFlags().StringVar(&f.RepoFlag, "repo", "", "stack repo directory (default $OBOL_REPO, else the stack repo you are in, else $XDG_DATA_HOME/obol/stack)")
	_ = cmd.MarkPersistentFlagDirname("repo")
}

// Execute runs the command tree under root with args, as the obol binaries do: an error is
// printed to f.IO.ErrOut unless the command already reported it, and mapped to the exit code.
func Execute(ctx context.Context, f *Factory, root *cobra.Command, args []string) int {
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && !IsSilent(err) {
		fmt.Fprintln(f.IO.ErrOut, "Error:", err)
	}
	return ExitCode(err)
}

// RepoDir resolves the stack repo's directory as git and gh find theirs: --repo, then
// $OBOL_REPO, then the stack repo the current directory is in, then $XDG_DATA_HOME/obol/stack,
// then ~/.local/share/obol/stack. When the stack used is not the one the current directory is
// in, it says so once on ErrOut.
func (f *Factory) RepoDir() (string, error) {
	dir, from, err := f.findRepo(true)
	if err != nil {
		return "", err
	}
	f.noteRepo(dir, from)
	return dir, nil
}

// NewRepoDir is where `stack init` and `stack join` create a stack: as RepoDir, but never
// the stack the current directory is in (that one exists already).
func (f *Factory) NewRepoDir() (string, error) {
	dir, _, err := f.findRepo(false)
	return dir, err
}

func (f *Factory) findRepo(here bool) (dir, from string, err error) {
	if f.RepoFlag != "" {
		dir, err = filepath.Abs(f.RepoFlag)
		return dir, "--repo", err
	}
	if d := f.Getenv("OBOL_REPO"); d != "" {
		dir, err = filepath.Abs(d)
		return dir, "OBOL_REPO", err
	}
	if here {
		if d := f.enclosingStack(); d != "" {
			return d, "", nil
		}
	}
	if d := f.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "obol", "stack"), "the default location", nil
	}
	home := f.Getenv("HOME")
	if home == "" {
		return "", "", errors.New("cannot find the stack repo: run obol inside one, or set --repo, OBOL_REPO or HOME")
	}
	return filepath.Join(home, ".local", "share", "obol", "stack"), "the default location", nil
}

// enclosingStack is the stack repo (a directory holding obol.yaml and .git) the current
// directory is in, or "".
func (f *Factory) enclosingStack() string {
	getwd := f.Getwd
	if getwd == nil {
		getwd = os.Getwd
	}
	wd, err := getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isFile(filepath.Join(d, "obol.yaml")) && exists(filepath.Join(d, ".git")) {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// noteRepo tells, once, which stack a command uses when it is not the one the current
// directory is in: the default location, or $OBOL_REPO while you stand in another stack.
// (--repo is the user's explicit choice, as $OBOL_REPO is outside any stack, like GIT_DIR.)
func (f *Factory) noteRepo(dir, from string) {
	if from == "" || from == "--repo" || f.repoNoted {
		return
	}
	f.repoNoted = true
	here := f.enclosingStack()
	if here == dir || (from == "OBOL_REPO" && here == "") {
		return
	}
	fmt.Fprintf(f.IO.ErrOut, "using the stack repo %s (from %s)\n", dir, from)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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
