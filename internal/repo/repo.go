// Package repo is obol's git layer. It commits by writing git objects (blobs
// and trees along the changed paths, then a commit) and moving the branch ref
// with a compare-and-swap, so the cost of a commit depends on the depth of the
// changed paths and never on the number of files in the repository. It never
// scans the work tree; it touches only the paths a commit changes.
//
// Everything it writes is plain git: the git CLI can read, fsck and keep
// working in a repository obol writes to, at the same time.
package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// Repo is one git repository, bare or with a work tree. A Repo value is safe
// for concurrent use; concurrent commits (from any number of Repo values or
// processes on one machine) are serialised by a file lock in the git dir.
type Repo struct {
	dir    string // work tree root, or the git dir itself when bare
	gitDir string
	bare   bool
	branch string // the branch HEAD pointed to at Open; "" when HEAD is detached
	objs   *objectStore
}

// InitOptions configures Init.
type InitOptions struct {
	// Branch is the branch HEAD points to; default "main".
	Branch string
	// Bare creates a repository without a work tree.
	Bare bool
}

// DefaultBranch is the branch Init uses when InitOptions.Branch is empty.
const DefaultBranch = "main"

// Init creates a new repository in dir (created if missing). It fails if a
// repository already exists there. HEAD points to refs/heads/<branch>, which
// stays unborn until the first Commit.
func Init(dir string, opts InitOptions) (*Repo, error) {
	branch := opts.Branch
	if branch == "" {
		branch = DefaultBranch
	}
	if err := validateBranch(branch); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	gitDir := abs
	if !opts.Bare {
		gitDir = filepath.Join(abs, ".git")
	}
	if IsGitDir(gitDir) || exists(filepath.Join(abs, ".git")) {
		return nil, fmt.Errorf("init %s: a git repository already exists there", dir)
	}
	for _, d := range []string{"objects/info", "objects/pack", "refs/heads", "refs/tags", "info"} {
		if err := os.MkdirAll(filepath.Join(gitDir, filepath.FromSlash(d)), 0o777); err != nil {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	config := "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n"
	if opts.Bare {
		config += "\tbare = true\n"
	} else {
		config += "\tbare = false\n\tlogallrefupdates = true\n"
	}
	files := []struct{ name, content string }{
		{"config", config},
		{"description", "Unnamed repository; edit this file 'description' to name the repository.\n"},
		{"HEAD", "ref: refs/heads/" + branch + "\n"}, // last: its presence marks a repository
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(gitDir, f.name), []byte(f.content), 0o666); err != nil {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	return Open(abs)
}

// Open opens the repository at dir: a work tree with a .git directory, or a
// bare repository. It does not search parent directories, and it writes
// nothing: a commit interrupted after its ref moved is finished by the next
// Commit, or by Recover, under the repository lock.
func Open(dir string) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	r := &Repo{dir: abs}
	dotGit := filepath.Join(abs, ".git")
	switch fi, err := os.Stat(dotGit); {
	case err == nil && fi.IsDir() && IsGitDir(dotGit):
		r.gitDir = dotGit
	case err == nil && !fi.IsDir():
		// A .git file: a linked worktree or a submodule. Their HEAD and
		// index live elsewhere; obol does not write through them.
		return nil, fmt.Errorf("open %s: .git is a file (linked worktree or submodule); open the main repository instead", dir)
	case IsGitDir(abs):
		r.gitDir = abs
		r.bare = true
	default:
		return nil, fmt.Errorf("open %s: not a git repository (no .git directory, and not a bare repository)", dir)
	}
	r.objs = newObjectStore(r.gitDir)
	if err := r.checkFormat(); err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	head, err := r.readHEAD()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if b, ok := strings.CutPrefix(head, "refs/heads/"); ok {
		r.branch = b
	}
	return r, nil
}

// checkFormat refuses repositories whose object format this layer cannot write.
func (r *Repo) checkFormat() error {
	cfg, err := r.objs.config()
	if err != nil {
		return err
	}
	if f := cfg.Extensions.ObjectFormat; f != "" && !strings.EqualFold(string(f), "sha1") {
		return fmt.Errorf("object format %q is not supported (sha1 only)", f)
	}
	return nil
}

// Dir is the work tree root, or the repository directory when bare.
func (r *Repo) Dir() string { return r.dir }

// GitDir is the directory holding objects, refs and HEAD.
func (r *Repo) GitDir() string { return r.gitDir }

// Bare reports whether the repository has no work tree.
func (r *Repo) Bare() bool { return r.bare }

// Branch is the branch obol writes: the one HEAD pointed to when the
// repository was opened. It is "" when HEAD is detached (Commit then fails).
func (r *Repo) Branch() string { return r.branch }

// Head is the commit the branch points to, or the zero hash while the branch
// is unborn.
func (r *Repo) Head() (plumbing.Hash, error) {
	if r.branch == "" {
		return plumbing.ZeroHash, fmt.Errorf("head of %s: HEAD is detached", r.dir)
	}
	h, err := r.readRef(branchRef(r.branch))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("head of %s: %w", r.dir, err)
	}
	return h, nil
}

func branchRef(branch string) string { return "refs/heads/" + branch }

func validateBranch(branch string) error {
	if err := plumbing.ReferenceName(branchRef(branch)).Validate(); err != nil || !plumbing.ReferenceName(branchRef(branch)).IsSafe() {
		return fmt.Errorf("invalid branch name %q", branch)
	}
	return nil
}

// IsGitDir reports whether dir looks like a git directory (what git itself
// checks: a HEAD file, objects/ and refs/).
func IsGitDir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "HEAD"))
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	for _, d := range []string{"objects", "refs"} {
		fi, err := os.Stat(filepath.Join(dir, d))
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
