package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// ErrDirtyWorktree is returned (wrapped, naming the path) when a commit would
// overwrite or delete a change in the work tree or the index that is not
// committed.
var ErrDirtyWorktree = errors.New("uncommitted change in the work tree")

// The work tree is only ever touched at the paths a commit changes: those are
// checked before anything is written, and written after the ref moved.

func (r *Repo) wtPath(p string) string { return filepath.Join(r.dir, filepath.FromSlash(p)) }

func dirty(p, what string) error {
	return fmt.Errorf("%w: %s %s; commit or discard your change to %s first", ErrDirtyWorktree, p, what, p)
}

// checkWorktree verifies that every changed path holds, in the work tree and
// in the index, exactly what the base commit holds there (or nothing, for
// paths the commit creates), so syncing can never destroy a user's change.
// It hashes only the changed files.
func (r *Repo) checkWorktree(changes []fileChange, idx *indexFile) error {
	deleting := map[string]bool{}
	for _, c := range changes {
		if c.from != nil {
			deleting[c.path] = true
		}
	}
	safeDirs := map[string]bool{}
	for _, c := range changes {
		p := c.path
		if err := r.checkNoSymlinkParents(p, safeDirs); err != nil {
			return err
		}
		info := idx.lookup(p)
		if info.conflict {
			return fmt.Errorf("%w: %s has unresolved merge conflicts; resolve them first", ErrDirtyWorktree, p)
		}
		if c.from != nil {
			if !info.found {
				return dirty(p, "is deleted in the index")
			}
			if info.hash != c.from.hash {
				return dirty(p, "has a staged change")
			}
			ok, err := r.fileMatches(p, c.from)
			if err != nil {
				return err
			}
			if !ok {
				// The work tree already holds what the commit records (obol render committing
				// a hand edit): nothing of the user's is lost.
				if same, err := r.holdsTarget(p, c.to); err != nil || !same {
					if err != nil {
						return err
					}
					return dirty(p, "is modified or deleted in the work tree")
				}
			}
			continue
		}
		if info.found {
			return dirty(p, "is staged in the index but not committed")
		}
		fi, err := os.Lstat(r.wtPath(p))
		switch {
		case err == nil && fi.IsDir():
			if blocker, err := r.untrackedUnder(p, deleting); err != nil {
				return err
			} else if blocker != "" {
				return dirty(blocker, "is not tracked and is in the way")
			}
		case err == nil:
			return dirty(p, "exists in the work tree but is not tracked")
		case errors.Is(err, syscall.ENOTDIR):
			// A file sits where a parent directory must go.
			for q := path.Dir(p); q != "."; q = path.Dir(q) {
				if fi, err := os.Lstat(r.wtPath(q)); err == nil && !fi.IsDir() {
					if !deleting[q] {
						return dirty(q, "is not tracked and is in the way")
					}
					break
				}
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			return fmt.Errorf("work tree %s: %w", p, err)
		}
	}
	return nil
}

// holdsTarget reports whether the work tree holds at p exactly what the commit will: the
// content of to, or no file when to is nil.
func (r *Repo) holdsTarget(p string, to *treeEntry) (bool, error) {
	if to == nil {
		_, err := os.Lstat(r.wtPath(p))
		return errors.Is(err, fs.ErrNotExist), nil
	}
	return r.fileMatches(p, to)
}

// checkNoSymlinkParents refuses to write through a symbolic link in the work
// tree (git refuses too: the link could point anywhere). safe remembers the
// directories already checked.
func (r *Repo) checkNoSymlinkParents(p string, safe map[string]bool) error {
	for q := path.Dir(p); q != "." && !safe[q]; q = path.Dir(q) {
		fi, err := os.Lstat(r.wtPath(q))
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s is beyond a symbolic link (%s)", ErrDirtyWorktree, p, q)
		}
		safe[q] = true
	}
	return nil
}

// untrackedUnder returns a file under work-tree directory p that the commit
// does not delete (it would block writing a file at p), or "".
func (r *Repo) untrackedUnder(p string, deleting map[string]bool) (string, error) {
	var found string
	err := filepath.WalkDir(r.wtPath(p), func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(r.dir, full)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !deleting[rel] {
			found = rel
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("work tree %s: %w", p, err)
	}
	return found, nil
}

// fileMatches reports whether the work-tree file at p has the content and
// kind of tree entry e (a missing file does not match).
func (r *Repo) fileMatches(p string, e *treeEntry) (bool, error) {
	full := r.wtPath(p)
	fi, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("work tree %s: %w", p, err)
	}
	var content []byte
	switch {
	case e.mode == filemode.Symlink:
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false, nil
		}
		target, err := os.Readlink(full)
		if err != nil {
			return false, fmt.Errorf("work tree %s: %w", p, err)
		}
		content = []byte(target)
	case fi.Mode().IsRegular():
		if (e.mode == filemode.Executable) != (fi.Mode()&0o100 != 0) {
			return false, nil // the executable bit changed: git reports that as a change too
		}
		if content, err = os.ReadFile(full); err != nil {
			return false, fmt.Errorf("work tree %s: %w", p, err)
		}
	default:
		return false, nil
	}
	return blobHash(content) == e.hash, nil
}

// syncWorktree makes the work tree hold the new content of every changed
// path: deletions first (pruning directories that became empty), then writes
// (temporary file + rename). It returns the index updates with stat data of
// the written files. With careful set (recovering an interrupted commit), a
// path whose file matches neither side was changed by the user and is left
// alone, with a note.
func (r *Repo) syncWorktree(rd objectReader, changes []fileChange, careful bool, notes *[]string) ([]indexUpdate, error) {
	updates := make([]indexUpdate, 0, len(changes))
	skip := map[string]bool{}
	if careful {
		for _, c := range changes {
			if c.to != nil && !c.to.isFile() || c.from != nil && !c.from.isFile() {
				continue
			}
			newOK, err := r.matchesSide(c.path, c.to)
			if err != nil {
				return nil, err
			}
			oldOK, err := r.matchesSide(c.path, c.from)
			if err != nil {
				return nil, err
			}
			if !newOK && !oldOK {
				skip[c.path] = true
				*notes = append(*notes, fmt.Sprintf("left your change to %s in the work tree", c.path))
			}
		}
	}
	for _, c := range changes {
		if c.from == nil || skip[c.path] || !c.from.isFile() {
			continue
		}
		if c.to != nil && c.to.isFile() && c.from.mode == c.to.mode {
			continue // overwritten in place below
		}
		if err := r.removeFile(c.path); err != nil {
			return nil, err
		}
	}
	var writes []int // indexes into updates of files to write
	for _, c := range changes {
		switch {
		case skip[c.path] && c.to != nil:
			// The index follows the commit; zero stat data makes git look at
			// the file and show the user's change as unstaged.
			updates = append(updates, indexUpdate{path: c.path, hash: c.to.hash, mode: indexMode(c.to.mode), st: &statData{}})
		case c.to == nil || !c.to.isFile():
			if c.from != nil && c.from.isFile() {
				updates = append(updates, indexUpdate{path: c.path, remove: true})
			}
		default:
			writes = append(writes, len(updates))
			updates = append(updates, indexUpdate{path: c.path, hash: c.to.hash, mode: indexMode(c.to.mode)})
		}
	}
	// Creating a file costs far more than writing a few hundred bytes on
	// some file systems; write them in parallel.
	err := parallel(len(writes), func(k int) error {
		u := &updates[writes[k]]
		st, err := r.writeFile(rd, u.path, &treeEntry{mode: u.mode, hash: u.hash})
		u.st = st
		return err
	})
	if err != nil {
		return nil, err
	}
	return updates, nil
}

// indexChanges lists the index entries syncWorktree will set or remove for
// these changes (without careful mode).
func indexChanges(changes []fileChange) []indexChange {
	var out []indexChange
	for _, c := range changes {
		switch {
		case c.to != nil && c.to.isFile():
			out = append(out, indexChange{path: c.path})
		case c.from != nil && c.from.isFile():
			out = append(out, indexChange{path: c.path, remove: true})
		}
	}
	return out
}

// matchesSide reports whether the work tree holds e at p (nil e: nothing).
func (r *Repo) matchesSide(p string, e *treeEntry) (bool, error) {
	if e == nil {
		_, err := os.Lstat(r.wtPath(p))
		return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR), nil
	}
	return r.fileMatches(p, e)
}

func indexMode(m filemode.FileMode) filemode.FileMode {
	if m == filemode.Deprecated {
		return filemode.Regular
	}
	return m
}

// removeFile deletes a work-tree file and the directories it leaves empty.
func (r *Repo) removeFile(p string) error {
	if err := os.Remove(r.wtPath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("work tree: remove %s: %w", p, err)
	}
	for q := path.Dir(p); q != "."; q = path.Dir(q) {
		if os.Remove(r.wtPath(q)) != nil {
			break // not empty (or already gone)
		}
	}
	return nil
}

func tmpName(full string) string {
	return filepath.Join(filepath.Dir(full), "."+filepath.Base(full)+".obol-tmp")
}

// writeFile writes entry e at p through a temporary file renamed into place
// and returns the stat data of the result for the index.
func (r *Repo) writeFile(rd objectReader, p string, e *treeEntry) (*statData, error) {
	content, err := rd.read(plumbing.BlobObject, e.hash)
	if err != nil {
		return nil, fmt.Errorf("work tree: write %s: %w", p, err)
	}
	full := r.wtPath(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o777); err != nil {
		return nil, fmt.Errorf("work tree: write %s: %w", p, err)
	}
	if fi, err := os.Lstat(full); err == nil && fi.IsDir() {
		os.Remove(full) // an emptied directory where the file goes
	}
	tmp := tmpName(full)
	if e.mode == filemode.Symlink {
		os.Remove(tmp)
		if err := os.Symlink(string(content), tmp); err != nil {
			return nil, fmt.Errorf("work tree: write %s: %w", p, err)
		}
	} else {
		perm := os.FileMode(0o666)
		if e.mode == filemode.Executable {
			perm = 0o777
		}
		// Under the repository lock no other obol writes tmp; a leftover
		// from a killed process is truncated.
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
		if err != nil {
			return nil, fmt.Errorf("work tree: write %s: %w", p, err)
		}
		_, err = f.Write(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
			return nil, fmt.Errorf("work tree: write %s: %w", p, err)
		}
	}
	if err := os.Rename(tmp, full); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("work tree: write %s: %w", p, err)
	}
	st, err := lstatData(full)
	if err != nil {
		return nil, fmt.Errorf("work tree: stat %s: %w", p, err)
	}
	return st, nil
}
