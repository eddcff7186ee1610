package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Locked is the repository lock held across a sequence of steps that must not
// interleave with another obol process on this repository: a sync fetches,
// rebuilds the branch on the remote head and pushes, all under one lock. Commit
// takes the same lock itself, so it must not be called while a Locked is held.
type Locked struct {
	r     *Repo
	lk    *repoLock
	notes []string
}

// Lock takes the repository lock (waiting until ctx ends) and finishes any
// commit a killed process left half done, as Commit does.
func (r *Repo) Lock(ctx context.Context) (*Locked, error) {
	lk, err := acquireLock(ctx, r.gitDir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", r.dir, err)
	}
	l := &Locked{r: r, lk: lk}
	if err := r.recoverLocked(&l.notes); err != nil {
		lk.release()
		return nil, fmt.Errorf("lock %s: %w", r.dir, err)
	}
	return l, nil
}

// Unlock releases the lock. Safe to call twice.
func (l *Locked) Unlock() { l.lk.release() }

// Notes are what the locked steps cleaned up on the way (stale locks, an
// interrupted commit finished).
func (l *Locked) Notes() []string { return l.notes }

// SetRef moves ref name (e.g. refs/remotes/origin/main) from old to new with
// git's lockfile protocol; old zero means the ref must not exist. It returns
// ErrRefMoved when the ref does not hold old. It never touches the work tree:
// use MoveBranch for the branch HEAD follows.
func (l *Locked) SetRef(name string, old, new plumbing.Hash, who Signature, message string) error {
	if err := plumbing.ReferenceName(name).Validate(); err != nil {
		return fmt.Errorf("update %s: %w", name, err)
	}
	lk, err := l.r.lockRef(name, &l.notes)
	if err != nil {
		return err
	}
	return l.r.commitRef(lk, refUpdate{
		name: name, old: old, new: new,
		ident:   formatIdent(who, whenOrNow(who.When)),
		message: message,
		logHEAD: l.r.headIs(name),
		logAll:  l.r.logAllRefUpdates(),
	})
}

// MoveBranch moves the branch obol writes from old to new, commits that are
// already in the object database (a fast-forward, or the branch rebuilt on a
// remote head), and brings the work tree and index in step at the paths that
// differ, exactly as Commit does: a user's uncommitted change at one of them
// stops it before anything moves, and a crash after the ref moved is finished
// by the next command (journal).
func (l *Locked) MoveBranch(old, new plumbing.Hash, who Signature, message string) error {
	r := l.r
	if r.branch == "" {
		return errors.New("HEAD is detached; check out the branch obol should write")
	}
	if old == new {
		return nil
	}
	ref := branchRef(r.branch)
	// The work tree follows the branch: check the branch is at old before comparing them.
	if cur, err := r.readRef(ref); err != nil {
		return err
	} else if cur != old {
		return fmt.Errorf("update %s: expected %s, found %s: %w", ref, old, cur, ErrRefMoved)
	}
	oldRoot, err := r.commitTree(old)
	if err != nil {
		return err
	}
	newRoot, err := r.commitTree(new)
	if err != nil {
		return err
	}
	files, err := diffTrees(r.objs, oldRoot, newRoot)
	if err != nil {
		return err
	}
	var idx *indexFile
	if r.syncsWorktree(r.branch) && len(files) > 0 {
		if idx, err = lockIndex(r.gitDir, &l.notes); err != nil {
			return err
		}
		defer idx.unlock()
		if err := r.checkWorktree(files, idx); err != nil {
			return err
		}
		idx.prepare(indexChanges(files))
		j := &journal{Branch: r.branch, Old: old.String(), New: new.String(), IndexLock: idx.lockID}
		for _, f := range files {
			j.Paths = append(j.Paths, f.path)
		}
		if err := r.writeJournal(j); err != nil {
			return err
		}
	}
	lk, err := r.lockRef(ref, &l.notes)
	if err == nil {
		err = r.commitRef(lk, refUpdate{
			name: ref, old: old, new: new,
			ident:   formatIdent(who, whenOrNow(who.When)),
			message: message,
			logHEAD: r.headIs(ref),
			logAll:  r.logAllRefUpdates(),
		})
	}
	if err != nil {
		if idx != nil {
			_ = r.removeJournal()
		}
		return err
	}
	if idx == nil {
		return nil
	}
	updates, err := r.syncWorktree(r.objs, files, false, &l.notes)
	if err == nil {
		err = idx.commit(updates)
	}
	if err == nil {
		err = r.removeJournal()
	}
	if err != nil {
		return fmt.Errorf("%w: %s is at %s; %w", ErrSyncIncomplete, r.branch, short(new), err)
	}
	return nil
}

// WriteCommit writes a commit on parent that applies changes to parent's tree,
// and returns it without moving any ref. It returns the zero hash when the
// changes leave the tree as it is. The objects are plain loose objects: if no
// ref ever points at them, git gc drops them.
func (r *Repo) WriteCommit(parent plumbing.Hash, changes []Change, author Signature, message string) (plumbing.Hash, error) {
	if err := validateSignature(author); err != nil {
		return plumbing.ZeroHash, err
	}
	snap, err := r.Snapshot(parent)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	root := &changeNode{}
	for _, c := range changes {
		if err := validPath(c.Path); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("change %q: %w", c.Path, err)
		}
		if err := root.add(c); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	p := newPending(r.objs, snap)
	newRoot, err := applyTree(p, snap.tree, root)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if newRoot.IsZero() {
		newRoot = p.add(plumbing.TreeObject, nil)
	}
	if newRoot == snap.tree || parent.IsZero() && newRoot == emptyTreeHash {
		return plumbing.ZeroHash, nil
	}
	commit := p.add(plumbing.CommitObject, encodeCommit(newRoot, parent, author, whenOrNow(author.When), message))
	if err := parallel(len(p.order), p.write); err != nil {
		return plumbing.ZeroHash, err
	}
	return commit, nil
}

func whenOrNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
