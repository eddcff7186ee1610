package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
)

const journalName = "obol-journal"

// journal records a commit between its ref move and the end of its work tree
// and index sync. If the process dies in that window, the next commit (or
// Recover) finds it and finishes the sync.
type journal struct {
	Branch string   `json:"branch"`
	Old    string   `json:"old"`
	New    string   `json:"new"`
	Paths  []string `json:"paths"`
	// IndexLock identifies the index.lock the committer held, so recovery
	// can tell it from one a running git command holds.
	IndexLock fileID `json:"index_lock"`
}

func (r *Repo) journalPath() string { return filepath.Join(r.gitDir, journalName) }

// writeJournal writes the journal durably (temporary file, fsync, rename).
func (r *Repo) writeJournal(j *journal) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	tmp := r.journalPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, r.journalPath())
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write journal: %w", err)
	}
	return nil
}

func (r *Repo) removeJournal() error {
	if err := os.Remove(r.journalPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove journal: %w", err)
	}
	return nil
}

// Recover finishes a commit that was interrupted after it moved the branch
// but before its work tree and index were synced (Commit does this itself
// before committing). It returns notes on what it did; none when there was
// nothing to do.
func (r *Repo) Recover(ctx context.Context) ([]string, error) {
	lk, err := acquireLock(ctx, r.gitDir)
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", r.dir, err)
	}
	defer lk.release()
	var notes []string
	err = r.recoverLocked(&notes)
	return notes, err
}

// recoverLocked runs under the repository lock.
func (r *Repo) recoverLocked(notes *[]string) error {
	removeOwnLocks(r.gitDir, notes)
	data, err := os.ReadFile(r.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover: read journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		*notes = append(*notes, fmt.Sprintf("dropped an unreadable journal (%v)", err))
		return r.removeJournal()
	}
	oldH, err1 := parseHex(j.Old)
	newH, err2 := parseHex(j.New)
	if err := errors.Join(err1, err2, validateBranch(j.Branch)); err != nil {
		*notes = append(*notes, fmt.Sprintf("dropped an unreadable journal (%v)", err))
		return r.removeJournal()
	}
	if removeOwnIndexLock(r.gitDir, j.IndexLock) {
		*notes = append(*notes, "removed the index.lock left by the interrupted commit")
	}
	os.Remove(r.journalPath() + ".tmp")
	cur, err := r.readRef(branchRef(j.Branch))
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	switch {
	case cur == oldH:
		*notes = append(*notes, fmt.Sprintf("an interrupted commit on %s never moved the branch; nothing to finish", j.Branch))
	case cur != newH:
		*notes = append(*notes, fmt.Sprintf("an interrupted commit %s on %s was followed by %s; its work tree sync was not finished, check `git status`", short(newH), j.Branch, short(cur)))
	case !r.syncsWorktree(j.Branch):
		// Bare, or HEAD is elsewhere now: no work tree to finish.
	default:
		if err := r.finishSync(oldH, newH, j.Paths, notes); err != nil {
			return fmt.Errorf("recover: %w", err)
		}
		*notes = append(*notes, fmt.Sprintf("finished the work tree sync of interrupted commit %s (%d paths)", short(newH), len(j.Paths)))
	}
	return r.removeJournal()
}

func (r *Repo) finishSync(oldH, newH plumbing.Hash, paths []string, notes *[]string) error {
	oldRoot, err := r.commitTree(oldH)
	if err != nil {
		return err
	}
	newRoot, err := r.commitTree(newH)
	if err != nil {
		return err
	}
	var changes []fileChange
	for _, p := range paths {
		if validPath(p) != nil {
			continue
		}
		c := fileChange{path: p}
		for _, side := range []struct {
			root plumbing.Hash
			dst  **treeEntry
		}{{oldRoot, &c.from}, {newRoot, &c.to}} {
			e, ok, err := lookupPath(r.objs, side.root, p)
			if err != nil {
				return err
			}
			if ok && !e.isDir() {
				*side.dst = &e
			}
		}
		if c.from != nil || c.to != nil {
			changes = append(changes, c)
		}
		os.Remove(tmpName(r.wtPath(p)))
	}
	idx, err := lockIndex(r.gitDir, notes)
	if err != nil {
		return err
	}
	updates, err := r.syncWorktree(r.objs, changes, true, notes)
	if err != nil {
		idx.unlock()
		return err
	}
	return idx.commit(updates)
}

func short(h plumbing.Hash) string { return h.String()[:12] }
