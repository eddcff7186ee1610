package writer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"

	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/repo"
)

// WorkTree is the stack repo's work tree as an fs.FS, as git sees what would be committed:
// without .git, and without untracked files that .gitignore or .git/info/exclude ignore (a
// local .env must not read as a secret in the repo).
type WorkTree struct {
	root    fs.FS
	ignored gitignore.Matcher
	head    *repo.Snapshot
}

// NewWorkTree is the work tree of the repo at dir, whose branch head is head.
func NewWorkTree(dir string, head *repo.Snapshot) WorkTree {
	ps, _ := gitignore.ReadPatterns(osfs.New(dir), nil)
	return WorkTree{root: os.DirFS(dir), ignored: gitignore.NewMatcher(ps), head: head}
}

func hidden(name string) bool { return name == ".git" || strings.HasPrefix(name, ".git/") }

// skip: .git, and what git ignores unless the head tracks it.
func (w WorkTree) skip(name string, isDir bool) bool {
	if hidden(name) {
		return true
	}
	if w.ignored == nil || !w.ignored.Match(strings.Split(name, "/"), isDir) {
		return false
	}
	if w.head != nil {
		if _, err := fs.Stat(w.head, name); err == nil {
			return false
		}
	}
	return true
}

// Open opens a file of the work tree.
func (w WorkTree) Open(name string) (fs.File, error) {
	if hidden(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return w.root.Open(name)
}

// ReadDir lists a directory of the work tree, .git left out.
func (w WorkTree) ReadDir(name string) ([]fs.DirEntry, error) {
	if hidden(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	ents, err := fs.ReadDir(w.root, name)
	out := ents[:0]
	for _, e := range ents {
		if !w.skip(path.Join(name, e.Name()), e.IsDir()) {
			out = append(out, e)
		}
	}
	return out, err
}

// ReadFile reads a file of the work tree.
func (w WorkTree) ReadFile(name string) ([]byte, error) {
	if hidden(name) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return fs.ReadFile(w.root, name)
}

// Dirty lists the paths where the work tree differs from the snapshot (changed, added or
// deleted regular files), sorted.
func Dirty(wt fs.FS, head *repo.Snapshot) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	err := fs.WalkDir(wt, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		seen[p] = true
		b, err := fs.ReadFile(wt, p)
		if err != nil {
			return err
		}
		h, err := head.BlobHash(p)
		if err != nil || h != plumbing.ComputeHash(plumbing.BlobObject, b) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(head, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !seen[p] {
			if _, err := fs.Stat(wt, p); errors.Is(err, fs.ErrNotExist) {
				out = append(out, p)
			}
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Uncommitted is a repo's work tree when it differs from the branch head.
type Uncommitted struct {
	Head     plumbing.Hash
	WorkTree WorkTree
	// Paths are the changed, added or deleted files, sorted.
	Paths []string
}

// UncommittedOf is r's uncommitted state, or nil when there is none (or no work tree, or no
// commit yet).
func UncommittedOf(r *repo.Repo) (*Uncommitted, error) {
	if r.Bare() {
		return nil, nil
	}
	h, err := r.Head()
	if err != nil || h.IsZero() {
		return nil, err
	}
	snap, err := r.Snapshot(h)
	if err != nil {
		return nil, err
	}
	wt := NewWorkTree(r.Dir(), snap)
	paths, err := Dirty(wt, snap)
	if err != nil || len(paths) == 0 {
		return nil, err
	}
	return &Uncommitted{Head: h, WorkTree: wt, Paths: paths}, nil
}

// String says what is checked, for the commands' summaries.
func (u *Uncommitted) String() string {
	return fmt.Sprintf("the work tree (%s on %s; --head checks the commit)", cmdutil.Plural(len(u.Paths), "uncommitted change"), cmdutil.Short(u.Head))
}
