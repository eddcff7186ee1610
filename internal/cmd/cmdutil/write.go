package cmdutil

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/repo"
)

// WriteFlags are the flags every writing command takes.
type WriteFlags struct {
	DryRun bool
	Author string
}

// AddWriteFlags adds --dry-run and --author.
func AddWriteFlags(cmd *cobra.Command, w *WriteFlags) {
	cmd.Flags().BoolVar(&w.DryRun, "dry-run", false, "print the diff this would commit and write nothing (exit 0: no change, 1: change, 2: error)")
	cmd.Flags().StringVar(&w.Author, "author", "", `commit author as "Name <email>" (default: from git config)`)
}

// BuildFunc computes a change from the branch head. It runs under the repo lock and again if
// another writer moved the branch meanwhile, so it must derive everything from head.
type BuildFunc func(head fs.FS) ([]repo.Change, error)

// Commit runs the one write path of obol: build the change on the current head, commit it
// (or, on a dry run, print its diff), and report. It returns ErrDiff on a dry run that would
// change something.
func (f *Factory) Commit(ctx context.Context, r *repo.Repo, w WriteFlags, message string, build BuildFunc) (repo.Result, error) {
	author := repo.DefaultAuthor(r)
	// The Factory's environment wins, so tests and embedders control identity without
	// touching the process environment.
	if n := f.Getenv("GIT_AUTHOR_NAME"); n != "" {
		author.Name = n
	}
	if e := f.Getenv("GIT_AUTHOR_EMAIL"); e != "" {
		author.Email = e
	}
	if w.Author != "" {
		a, err := repo.ParseAuthor(w.Author)
		if err != nil {
			return repo.Result{}, fmt.Errorf("--author: %w", err)
		}
		author = a
	}
	author.When = f.Now()
	res, err := r.Commit(ctx, repo.CommitRequest{
		Message: message,
		Author:  author,
		Build:   func(head *repo.Snapshot) ([]repo.Change, error) { return build(head) },
		DryRun:  w.DryRun,
	})
	if err != nil {
		return res, err
	}
	if w.DryRun {
		fmt.Fprint(f.IO.Out, res.Diff)
		if len(res.Changed) > 0 {
			return res, ErrDiff
		}
	}
	return res, nil
}

// Short abbreviates a commit hash for humans.
func Short(h fmt.Stringer) string {
	s := h.String()
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
