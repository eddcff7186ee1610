// Package writer is obol's one write path: build a change on the branch head, refuse secrets
// and path conflicts, commit under the repo lock, and keep a shared remote in step (pull
// before, push after). It also reads the work tree's uncommitted state.
package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/secretscan/finding"
	"github.com/obol/obol/internal/settings"
)

// WriteFlags are the flags every writing command takes.
type WriteFlags struct {
	DryRun bool
	Author string
	// NoPush keeps the commit local on a stack with a shared remote (`obol sync` pushes it later).
	NoPush bool
	Remote RemoteFlags
	// pulled: Pull already brought the repo up to date for this write.
	pulled, shared bool
}

// AddWriteFlags adds --dry-run, --author, --no-push and the remote's authentication flags.
func AddWriteFlags(cmd *cobra.Command, w *WriteFlags) {
	cmd.Flags().BoolVar(&w.DryRun, "dry-run", false, "print the diff this would commit and write nothing (exit 0: no change, 1: change, 2: error)")
	cmd.Flags().StringVar(&w.Author, "author", "", `commit author as "Name <email>" (default: from git config)`)
	cmd.Flags().BoolVar(&w.NoPush, "no-push", false, "on a stack with a shared remote, commit locally only (obol sync pushes later)")
	AddRemoteFlags(cmd, &w.Remote)
}

// BuildFunc computes a change from the branch head. It runs under the repo lock and again if
// another writer moved the branch meanwhile, so it must derive everything from head.
type BuildFunc func(head fs.FS) ([]repo.Change, error)

// Commit runs the one write path of obol: build the change on the current head, commit it
// (or, on a dry run, print its diff), and report. On a stack with a shared remote it then
// pushes (unless --no-push): fetch, rebuild on the remote head, push, retry on a lost race;
// Result.Commit is then the commit the remote holds. If the push fails the commit stays
// local and the error says so. It returns cmdutil.ErrDiff on a dry run that would change something.
func Commit(ctx context.Context, f *cmdutil.Factory, r *repo.Repo, w WriteFlags, message string, build BuildFunc) (repo.Result, error) {
	// Compiling the secret rules takes tens of milliseconds: do it while the write gets ready.
	go func() {
		if s, err := secrets(f); err == nil {
			s.Warm()
		}
	}()
	author := repo.ConfiguredAuthor(r)
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
	if author.Name == "" || author.Email == "" {
		// As git: a commit is never authored by a made-up identity.
		return repo.Result{}, repo.ErrNoIdentity
	}
	author.When = f.Now()
	if err := Pull(ctx, f, r, &w); err != nil {
		return repo.Result{}, err
	}
	shared := w.shared
	var claims []offer.Claim
	res, err := r.Commit(ctx, repo.CommitRequest{
		Message: message,
		Author:  author,
		Build: func(head *repo.Snapshot) ([]repo.Change, error) {
			changes, err := build(head)
			if err != nil {
				return nil, err
			}
			if claims, err = checkPaths(r.GitDir(), head, changes); err != nil {
				return nil, err
			}
			if err := refuseSecrets(f, head, changes); err != nil {
				return nil, err
			}
			return changes, nil
		},
		DryRun: w.DryRun,
	})
	if err != nil {
		return res, err
	}
	if claims != nil && !res.Commit.IsZero() {
		// The next write starts from this commit: leave it the claims this one computed.
		if snap, err := r.Snapshot(res.Commit); err == nil {
			if key, ok := claimsKey(snap); ok {
				saveClaims(r.GitDir(), key, claims)
			}
		}
	}
	if w.DryRun {
		fmt.Fprint(f.IO.Out, res.Diff)
		if len(res.Changed) > 0 {
			return res, cmdutil.ErrDiff
		}
		return res, nil
	}
	if !shared {
		return res, nil
	}
	// Pull fetched just now: push without fetching again unless the push is refused.
	rep, _, err := Sync(ctx, f, r, SyncOptions{Remote: w.Remote, Push: true, Fresh: true, Who: author})
	if err != nil {
		if res.Commit.IsZero() {
			return res, fmt.Errorf("push: %w", err)
		}
		return res, fmt.Errorf("committed %s locally, but %w", cmdutil.Short(res.Commit), err)
	}
	for _, rb := range rep.Rebuilt {
		if rb.Old == res.Commit {
			res.Commit = rb.New // zero: the remote already had this change
		}
	}
	ReportSync(f.IO.ErrOut, rep, false)
	return res, nil
}

// Pull brings a stack with a shared remote up to date before a write (fetch, and rebuild any
// unpushed commits on the remote head), so the change is built on what the team has pushed and
// only writes that really race can conflict. Offline it fails and nothing is written
// (--no-push commits anyway). Commit pulls itself; a command that must read the head before
// it can even name its commit calls Pull first.
func Pull(ctx context.Context, f *cmdutil.Factory, r *repo.Repo, w *WriteFlags) error {
	if w.pulled || w.DryRun || w.NoPush {
		return nil
	}
	_, shared, err := Sync(ctx, f, r, SyncOptions{Remote: w.Remote})
	if err != nil {
		return fmt.Errorf("bring the stack up to date with its remote first (or commit locally with --no-push): %w", err)
	}
	w.pulled, w.shared = true, shared
	return nil
}

// refuseSecrets refuses a change that would commit a secret. Files that are obol's own
// rendering of the stack (CRDs, charts, the Flux components: megabytes that come from the
// binary and obol.yaml) are not scanned: obol.yaml, their only input, is. Only a change of
// many files (stack init, render, import) is worth rendering the stack for.
func refuseSecrets(f *cmdutil.Factory, head *repo.Snapshot, changes []repo.Change) error {
	s, err := secrets(f)
	if err != nil {
		return err
	}
	var known render.Files
	if len(changes) >= 16 {
		var raw []byte
		for _, c := range changes {
			if c.Path == settings.File && !c.Delete {
				raw = c.Content
			}
		}
		if raw == nil && head != nil {
			raw, _ = fs.ReadFile(head, settings.File)
		}
		known = stackRendering(f, raw)
	}
	var found []finding.Finding
	for _, c := range changes {
		if r, ok := known[c.Path]; c.Delete || ok && bytes.Equal(r, c.Content) {
			continue
		}
		found = append(found, s.File(c.Path, c.Content)...)
	}
	return secretsError("commit", found)
}

// stackRendering is what obol renders for the stack described by obol.yaml's content, offers
// aside; nil when it cannot tell (then everything is scanned).
func stackRendering(f *cmdutil.Factory, settingsFile []byte) render.Files {
	st, err := settings.Decode(settingsFile)
	if err != nil || f.Assets == nil {
		return nil
	}
	files, err := render.Stack(f.Assets, st)
	if err != nil {
		return nil
	}
	return files
}

// refuseSecretsInHistory refuses to push commits (head's, not remote's) that hold a secret in
// a file or a message: once pushed, a team's clones and the reconciler have it.
func refuseSecretsInHistory(f *cmdutil.Factory, r *repo.Repo, head, remote plumbing.Hash) error {
	s, err := secrets(f)
	if err != nil {
		return err
	}
	var stop []plumbing.Hash
	if !remote.IsZero() {
		stop = append(stop, remote)
	}
	found, err := s.History(r, head, renderedBlobs(f, r, head), stop...)
	if err != nil {
		return fmt.Errorf("scan the commits to push for secrets: %w", err)
	}
	if err := secretsError("push", found); err != nil {
		return fmt.Errorf("%w\nthe commits stay local: remove the secret from them (git rebase -i, git commit --amend), then obol sync", err)
	}
	return nil
}

// renderedBlobs are the blob ids of obol's rendering of the stack at head (offers aside).
func renderedBlobs(f *cmdutil.Factory, r *repo.Repo, head plumbing.Hash) map[plumbing.Hash]bool {
	snap, err := r.Snapshot(head)
	if err != nil {
		return nil
	}
	raw, err := fs.ReadFile(snap, settings.File)
	if err != nil {
		return nil
	}
	return BlobIDs(stackRendering(f, raw))
}

// BlobIDs are the git blob ids of files' contents.
func BlobIDs(files render.Files) map[plumbing.Hash]bool {
	out := make(map[plumbing.Hash]bool, len(files))
	for _, b := range files {
		out[plumbing.ComputeHash(plumbing.BlobObject, b)] = true
	}
	return out
}

// SecretAdvice is the fix for a secret found in the stack repo.
const SecretAdvice = "secrets do not belong in the stack repo (the cluster, the reconciler and every clone read it): " +
	"keep it in a Secret created out of band (obol stack up --git-token-file, kubectl create secret), or encrypt it with SOPS"

func secretsError(what string, found []finding.Finding) error {
	if len(found) == 0 {
		return nil
	}
	lines := make([]string, len(found))
	for i, f := range found {
		lines[i] = "  " + f.String()
	}
	return fmt.Errorf("refusing to %s %s, nothing written:\n%s\n%s", what, cmdutil.Plural(len(found), "secret"), strings.Join(lines, "\n"), SecretAdvice)
}

// errNoScanner fails a write closed when the binary wired no secret scanner.
var errNoScanner = errors.New("this obol binary has no secret scanner, so it cannot write: use the obol CLI built by make build")

func secrets(f *cmdutil.Factory) (cmdutil.SecretScanner, error) {
	if f.Secrets == nil {
		return nil, errNoScanner
	}
	return f.Secrets()
}
