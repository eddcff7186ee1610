package repo

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// A branch rebuilt elsewhere (WriteCommit on another parent) is moved to with MoveBranch: the
// work tree and index follow, and git sees a clean, consistent repository.
func TestWriteCommitAndMoveBranch(t *testing.T) {
	r := initRepo(t, false)
	base := put(t, r, map[string]string{"a/x.yaml": "x1\n", "b/y.yaml": "y1\n"}).Commit
	local := put(t, r, map[string]string{"a/x.yaml": "x2\n"}).Commit
	// A "remote" commit on base that changes b, and a rebuild of local's change on it.
	remote, err := r.WriteCommit(base, []Change{{Path: "b/y.yaml", Content: []byte("y2\n")}, {Path: "c/z.yaml", Content: []byte("z\n")}}, testAuthor, "remote change")
	if err != nil || remote.IsZero() {
		t.Fatalf("WriteCommit: %v %v", remote, err)
	}
	rebuilt, err := r.WriteCommit(remote, []Change{{Path: "a", Delete: true}, {Path: "a/x.yaml", Content: []byte("x2\n")}}, testAuthor, "local change")
	if err != nil {
		t.Fatal(err)
	}
	if same, err := r.WriteCommit(rebuilt, []Change{{Path: "a/x.yaml", Content: []byte("x2\n")}}, testAuthor, "no-op"); err != nil || !same.IsZero() {
		t.Fatalf("a commit that changes nothing: %v %v, want zero", same, err)
	}
	lk, err := r.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	if err := lk.MoveBranch(base, rebuilt, testAuthor, "test: wrong old"); !errors.Is(err, ErrRefMoved) {
		t.Fatalf("MoveBranch from a stale old: %v, want ErrRefMoved", err)
	}
	assertConsistent(t, r)
	if err := lk.MoveBranch(local, rebuilt, testAuthor, "obol sync: rebuilt"); err != nil {
		t.Fatal(err)
	}
	assertConsistent(t, r)
	if got := readWT(t, r, "b/y.yaml"); got != "y2\n" {
		t.Fatalf("b/y.yaml = %q after the move", got)
	}
	if got := readWT(t, r, "c/z.yaml"); got != "z\n" {
		t.Fatalf("c/z.yaml = %q after the move", got)
	}
	if log := git(t, r.Dir(), "log", "--format=%s"); log != "local change\nremote change\ntest commit" {
		t.Fatalf("history:\n%s", log)
	}
	if rl := git(t, r.Dir(), "reflog", "-1", "--format=%gs"); rl != "obol sync: rebuilt" {
		t.Fatalf("reflog: %q", rl)
	}

	// A user's uncommitted change at a path the move would touch stops it before anything moves.
	writeWT(t, r, "b/y.yaml", "mine\n")
	back, err := r.WriteCommit(rebuilt, []Change{{Path: "b/y.yaml", Content: []byte("y3\n")}}, testAuthor, "more")
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.MoveBranch(rebuilt, back, testAuthor, "x"); !errors.Is(err, ErrDirtyWorktree) {
		t.Fatalf("MoveBranch over a local change: %v, want ErrDirtyWorktree", err)
	}
	if h := headOf(t, r); h != rebuilt {
		t.Fatalf("the branch moved to %s despite the refusal", h)
	}

	// Remote-tracking refs move with SetRef, compare-and-swap.
	if err := lk.SetRef("refs/remotes/origin/main", plumbing.ZeroHash, remote, testAuthor, "fetch"); err != nil {
		t.Fatal(err)
	}
	if err := lk.SetRef("refs/remotes/origin/main", plumbing.ZeroHash, rebuilt, testAuthor, "fetch"); !errors.Is(err, ErrRefMoved) {
		t.Fatalf("SetRef with a stale old: %v", err)
	}
	if got := git(t, r.Dir(), "rev-parse", "origin/main"); got != remote.String() {
		t.Fatalf("origin/main = %s", got)
	}
}

func TestUpstreamAndHistory(t *testing.T) {
	r := initRepo(t, false)
	if _, ok, err := r.Upstream(); ok || err != nil {
		t.Fatalf("a new repo has an upstream: %v %v", ok, err)
	}
	u := Upstream{Remote: "origin", URL: "https://git.example.com/team/stack.git", Branch: "main"}
	if err := r.SetUpstream(u); err != nil {
		t.Fatal(err)
	}
	got, ok, err := r.Upstream()
	if err != nil || !ok || got != u {
		t.Fatalf("Upstream() = %+v %v %v, want %+v", got, ok, err, u)
	}
	// The git CLI reads the same configuration.
	if url := git(t, r.Dir(), "config", "remote.origin.url"); url != u.URL {
		t.Fatalf("git sees remote.origin.url %q", url)
	}
	if m := git(t, r.Dir(), "config", "branch.main.merge"); m != "refs/heads/main" {
		t.Fatalf("git sees branch.main.merge %q", m)
	}
	c1 := put(t, r, map[string]string{"a": "1\n"}).Commit
	c2 := put(t, r, map[string]string{"a": "2\n", "b": "b\n"}).Commit
	info, err := r.ReadCommit(c2)
	if err != nil {
		t.Fatal(err)
	}
	if info.Author.Name != testAuthor.Name || info.Author.Email != testAuthor.Email || info.Subject() != "test commit" || len(info.Parents) != 1 || info.Parents[0] != c1 {
		t.Fatalf("ReadCommit: %+v", info)
	}
	diff, err := r.DiffCommits(c1, c2)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, d := range diff {
		paths = append(paths, d.Path)
	}
	if strings.Join(paths, ",") != "a,b" || !diff[1].From.IsZero() || diff[1].To.IsZero() {
		t.Fatalf("DiffCommits: %+v", diff)
	}
}

// A lock file a killed obol left behind is removed by the next writer at once; a lock file
// obol did not create (a running git command's) is waited for, not removed.
func TestOwnLockLeftByKilledObol(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"a": "1\n"})
	var notes []string
	f, err := createGitLock(r.GitDir(), r.GitDir()+"/index.lock", &notes)
	if err != nil {
		t.Fatal(err)
	}
	f.Close() // the process dies here: the lock stays
	start := time.Now()
	res := put(t, r, map[string]string{"a": "2\n"})
	if time.Since(start) > gitLockWait/2 {
		t.Fatalf("the commit waited %v for obol's own dead lock", time.Since(start))
	}
	if len(res.Notes) == 0 || !strings.Contains(strings.Join(res.Notes, "\n"), "index.lock, left by a killed obol") {
		t.Fatalf("notes: %q", res.Notes)
	}
	assertConsistent(t, r)

	// A git command's lock: not listed, so it is respected.
	if err := os.WriteFile(r.GitDir()+"/index.lock", nil, 0o666); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(r.GitDir() + "/index.lock")
	old := gitLockWait
	gitLockWait = 50 * time.Millisecond
	defer func() { gitLockWait = old }()
	_, err = r.Commit(context.Background(), CommitRequest{Message: "m", Author: testAuthor, Build: func(*Snapshot) ([]Change, error) {
		return []Change{{Path: "a", Content: []byte("3\n")}}, nil
	}})
	if !errors.Is(err, ErrRefLocked) {
		t.Fatalf("commit over a git command's index.lock: %v, want ErrRefLocked", err)
	}
}
