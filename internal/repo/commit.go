package repo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Change is one edit a commit makes. Path is slash-separated and relative to
// the repository root. Delete removes the file, or the whole subtree when Path
// is a directory. Changes apply in order: deleting a directory and then
// writing files into it replaces its content.
type Change struct {
	Path    string
	Content []byte
	Delete  bool
}

// Signature is who made a commit. Committer = Author.
type Signature struct {
	Name, Email string
	When        time.Time // zero: now
}

// CommitRequest describes a commit in terms of a build function rather than
// fixed content, so it can be rebuilt if the branch moves underneath it.
type CommitRequest struct {
	Message string
	Author  Signature
	// Build is called under the repository lock with the current branch
	// head and returns the changes to make. When the branch moves before
	// the commit lands (a compare-and-swap is lost), Build is called again
	// on the new head: commits are rebuilt, never merged.
	Build func(head *Snapshot) ([]Change, error)
	// DryRun computes everything (Changed, Diff, the work tree checks) and
	// writes nothing: no objects, no refs, no files, no lock file.
	DryRun bool
}

// Result describes what a Commit did (or, for a dry run, would do).
type Result struct {
	// Commit is the new commit; zero when nothing changed or on a dry run.
	Commit plumbing.Hash
	// Parent is the head the commit was built on (zero: unborn branch).
	Parent plumbing.Hash
	// Changed lists the paths whose content really changed (added,
	// modified or deleted), sorted.
	Changed []string
	// Diff is the change from Parent to the new tree as `git diff` prints
	// it; "" when nothing changed.
	Diff string
	// Attempts is how many times Build ran (more than 1 when the branch
	// moved underneath the commit).
	Attempts int
	// Notes are things worth telling the user: a stale lock removed, an
	// interrupted commit finished.
	Notes []string
}

// maxAttempts bounds how often Commit rebuilds after losing the ref
// compare-and-swap to another writer.
const maxAttempts = 10

// testHookAfterRefMove, when set, runs after the branch ref moved and before
// the work tree sync; an error aborts the commit there, as a crash would.
var testHookAfterRefMove func() error

// buildError is the error of a CommitRequest's Build: the caller's own, which Commit returns as
// it is (it already says what went wrong; a "commit DIR: build:" prefix would only repeat).
type buildError struct{ err error }

func (e *buildError) Error() string { return e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

// Commit builds a change set on the branch head, writes the objects for it
// and moves the branch with a compare-and-swap, under the repository lock.
// For a repository with a work tree whose HEAD is on the branch, the changed
// paths are checked first (a user's uncommitted change there is never
// overwritten) and synced afterwards, index included, so `git status` stays
// clean. If nothing changes, nothing is committed (Result.Commit is zero).
func (r *Repo) Commit(ctx context.Context, req CommitRequest) (Result, error) {
	if err := r.validateRequest(&req); err != nil {
		return Result{}, fmt.Errorf("commit %s: %w", r.dir, err)
	}
	if req.DryRun {
		res, err := r.attempt(ctx, req, nil)
		res.Attempts = 1
		if be := (*buildError)(nil); errors.As(err, &be) {
			return res, be.err
		}
		if err != nil {
			return res, fmt.Errorf("commit %s (dry run): %w", r.dir, err)
		}
		return res, nil
	}
	lk, err := acquireLock(ctx, r.gitDir)
	if err != nil {
		return Result{}, fmt.Errorf("commit %s: %w", r.dir, err)
	}
	defer lk.release()
	var notes []string
	if err := r.recoverLocked(&notes); err != nil {
		return Result{Notes: notes}, fmt.Errorf("commit %s: %w", r.dir, err)
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return Result{Notes: notes}, fmt.Errorf("commit %s: %w", r.dir, err)
		}
		res, err := r.attempt(ctx, req, &notes)
		res.Attempts = attempt
		res.Notes = notes
		if errors.Is(err, ErrRefMoved) && attempt < maxAttempts {
			continue
		}
		if be := (*buildError)(nil); errors.As(err, &be) {
			return res, be.err
		}
		if err != nil {
			return res, fmt.Errorf("commit %s: %w", r.dir, err)
		}
		return res, nil
	}
}

func (r *Repo) validateRequest(req *CommitRequest) error {
	if r.branch == "" {
		return errors.New("HEAD is detached; check out the branch obol should write")
	}
	if req.Build == nil {
		return errors.New("no Build function")
	}
	if strings.TrimSpace(req.Message) == "" {
		return errors.New("empty commit message")
	}
	if strings.ContainsRune(req.Message, 0) {
		return errors.New("commit message contains a NUL byte")
	}
	return validateSignature(req.Author)
}

// plan is one build of a commit: the new tree (objects still in memory) and
// the files it changes relative to head.
type plan struct {
	head    plumbing.Hash
	p       *pending
	newRoot plumbing.Hash
	files   []fileChange
}

// attempt runs one build-and-commit on the current head. A dry run (notes is
// nil) stops before the first write.
func (r *Repo) attempt(ctx context.Context, req CommitRequest, notes *[]string) (Result, error) {
	dry := notes == nil
	pl, err := r.build(req)
	if pl == nil || err != nil {
		return Result{Parent: r.headOrZero(pl)}, err
	}
	res := Result{Parent: pl.head}
	if pl.files == nil {
		return res, nil // nothing changed
	}
	for _, f := range pl.files {
		res.Changed = append(res.Changed, f.path)
	}
	if res.Diff, err = renderDiff(pl.p, pl.files); err != nil {
		return res, err
	}

	// The work tree: lock and read the index, check the changed paths.
	var idx *indexFile
	if r.syncsWorktree(r.branch) {
		if dry {
			idx, err = readIndex(r.gitDir) // no index.lock: a dry run writes nothing
		} else {
			idx, err = lockIndex(r.gitDir, notes)
		}
		if err != nil {
			return res, err
		}
		defer idx.unlock() // no-op once committed or when not locked
		if err := r.checkWorktree(pl.files, idx); err != nil {
			return res, err
		}
	}
	if dry {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if idx != nil {
		idx.prepare(indexChanges(pl.files))
	}
	res.Commit, err = r.land(req, pl, idx, notes)
	return res, err
}

func (r *Repo) headOrZero(pl *plan) plumbing.Hash {
	if pl == nil {
		return plumbing.ZeroHash
	}
	return pl.head
}

// build reads the head, runs req.Build on it and computes the new tree in
// memory. pl.files is nil when the tree does not change.
func (r *Repo) build(req CommitRequest) (*plan, error) {
	head, err := r.readRef(branchRef(r.branch))
	if err != nil {
		return nil, err
	}
	pl := &plan{head: head}
	snap, err := r.Snapshot(head)
	if err != nil {
		return pl, err
	}
	changes, err := req.Build(snap)
	if err != nil {
		return pl, &buildError{err}
	}
	root := &changeNode{}
	for _, c := range changes {
		if err := validPath(c.Path); err != nil {
			return pl, fmt.Errorf("change %q: %w", c.Path, err)
		}
		if err := root.add(c); err != nil {
			return pl, err
		}
	}
	pl.p = newPending(r.objs, snap)
	if pl.newRoot, err = applyTree(pl.p, snap.tree, root); err != nil {
		return pl, err
	}
	if pl.newRoot.IsZero() {
		pl.newRoot = pl.p.add(plumbing.TreeObject, nil) // the empty tree
	}
	if pl.newRoot == snap.tree || head.IsZero() && pl.newRoot == emptyTreeHash {
		return pl, nil
	}
	pl.files, err = diffTrees(pl.p, snap.tree, pl.newRoot)
	return pl, err
}

// land writes the objects, journals the commit when a work tree follows,
// moves the ref (compare-and-swap) and syncs the work tree and index.
func (r *Repo) land(req CommitRequest, pl *plan, idx *indexFile, notes *[]string) (plumbing.Hash, error) {
	when := req.Author.When
	if when.IsZero() {
		when = time.Now()
	}
	commit := pl.p.add(plumbing.CommitObject, encodeCommit(pl.newRoot, pl.head, req.Author, when, req.Message))
	ref := branchRef(r.branch)
	var j *journal
	if idx != nil {
		j = &journal{Branch: r.branch, Old: pl.head.String(), New: commit.String(), IndexLock: idx.lockID}
		for _, f := range pl.files {
			j.Paths = append(j.Paths, f.path)
		}
	}
	// Objects, the journal and the ref lock are independent until the ref
	// moves: create them side by side (file creation dominates small commits).
	n := len(pl.p.order)
	var lk *refLock
	err := parallel(n+2, func(i int) error {
		switch {
		case i < n:
			return pl.p.write(i)
		case i == n && j != nil:
			return r.writeJournal(j)
		case i == n+1:
			var err error
			lk, err = r.lockRef(ref, notes)
			return err
		}
		return nil
	})
	if err == nil {
		subject := "commit: " + oneLine(req.Message)
		if pl.head.IsZero() {
			subject = "commit (initial): " + oneLine(req.Message)
		}
		err = r.commitRef(lk, refUpdate{
			name: ref, old: pl.head, new: commit,
			ident:   formatIdent(req.Author, when),
			message: subject,
			logHEAD: r.headIs(ref),
			logAll:  r.logAllRefUpdates(),
		})
	}
	if err != nil {
		lk.abort()
		if j != nil {
			// The ref did not move; a journal left behind is dropped by the next commit.
			_ = r.removeJournal()
		}
		return plumbing.ZeroHash, err
	}
	if testHookAfterRefMove != nil {
		if err := testHookAfterRefMove(); err != nil {
			return commit, err
		}
	}
	if idx == nil {
		return commit, nil
	}
	updates, err := r.syncWorktree(pl.p, pl.files, false, notes)
	if err == nil {
		err = idx.commit(updates)
	}
	if err == nil {
		err = r.removeJournal()
	}
	if err != nil {
		return commit, fmt.Errorf("%w: commit %s is on %s; %w", ErrSyncIncomplete, short(commit), r.branch, err)
	}
	return commit, nil
}

// ErrSyncIncomplete is returned (with Result.Commit set) when the commit
// landed but the work tree or index could not be brought in step; a journal
// remembers it and the next Commit (or Recover) finishes the job.
var ErrSyncIncomplete = errors.New("committed, but the work tree sync did not finish")

var emptyTreeHash = plumbing.ComputeHash(plumbing.TreeObject, nil)

// syncsWorktree reports whether commits to branch must keep a work tree in
// step: the repository has one and its HEAD points at the branch.
func (r *Repo) syncsWorktree(branch string) bool {
	return !r.bare && r.headIs(branchRef(branch))
}

func (r *Repo) headIs(ref string) bool {
	h, err := r.readHEAD()
	return err == nil && h == ref
}

// commitTree returns the root tree of commit h (zero for the zero hash).
func (r *Repo) commitTree(h plumbing.Hash) (plumbing.Hash, error) {
	if h.IsZero() {
		return plumbing.ZeroHash, nil
	}
	c, err := r.readCommit(h)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return c.tree, nil
}

func encodeCommit(tree, parent plumbing.Hash, author Signature, when time.Time, message string) []byte {
	ident := formatIdent(author, when)
	var b strings.Builder
	b.WriteString("tree " + tree.String() + "\n")
	if !parent.IsZero() {
		b.WriteString("parent " + parent.String() + "\n")
	}
	b.WriteString("author " + ident + "\n")
	b.WriteString("committer " + ident + "\n\n")
	b.WriteString(strings.TrimRight(message, "\n") + "\n")
	return []byte(b.String())
}

// formatIdent is git's "Name <email> unixtime +zzzz".
func formatIdent(s Signature, when time.Time) string {
	return s.Name + " <" + s.Email + "> " + strconv.FormatInt(when.Unix(), 10) + " " + when.Format("-0700")
}

// validPath accepts what git accepts in a tree: slash-separated, relative,
// no empty, "." or ".." components, and no ".git" (in any case).
func validPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.ContainsRune(p, 0) {
		return errors.New("path contains a NUL byte")
	}
	for _, part := range strings.Split(p, "/") {
		switch {
		case part == "":
			return errors.New("path has an empty component (leading, trailing or double slash)")
		case part == "." || part == "..":
			return errors.New("path has a . or .. component")
		case strings.EqualFold(part, ".git"):
			return errors.New("path has a .git component")
		}
	}
	return nil
}
