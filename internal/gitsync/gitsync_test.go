package gitsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/obol/obol/internal/gitremote"
	"github.com/obol/obol/internal/gittest"
	"github.com/obol/obol/internal/repo"
)

var (
	alice = repo.Signature{Name: "Alice", Email: "alice@team.test"}
	bob   = repo.Signature{Name: "Bob", Email: "bob@team.test"}
)

// firstDir is the unit of these tests: the top-level directory.
func firstDir(p string) string { d, _, _ := strings.Cut(p, "/"); return d }

type clone struct {
	t   *testing.T
	r   *repo.Repo
	who repo.Signature
	url string
}

func newClone(t *testing.T, url string, who repo.Signature) *clone {
	t.Helper()
	r, err := repo.Init(t.TempDir(), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetUpstream(repo.Upstream{Remote: "origin", URL: url, Branch: "main"}); err != nil {
		t.Fatal(err)
	}
	return &clone{t: t, r: r, who: who, url: url}
}

func (c *clone) commit(msg string, files map[string]string) plumbing.Hash {
	c.t.Helper()
	res, err := c.r.Commit(context.Background(), repo.CommitRequest{Message: msg, Author: c.who, Build: func(*repo.Snapshot) ([]repo.Change, error) {
		var cs []repo.Change
		for p, v := range files {
			cs = append(cs, repo.Change{Path: p, Content: []byte(v)})
		}
		return cs, nil
	}})
	if err != nil {
		c.t.Fatal(err)
	}
	return res.Commit
}

func (c *clone) sync(resolve Resolve) (Report, error) {
	u, _, err := c.r.Upstream()
	if err != nil {
		c.t.Fatal(err)
	}
	return Sync(context.Background(), c.r, Options{
		Remote: gitremote.Remote{URL: c.url}, Upstream: u, Who: c.who, Unit: firstDir,
		Push: true, Resolve: resolve, Backoff: time.Millisecond,
	})
}

func (c *clone) mustSync() Report {
	c.t.Helper()
	rep, err := c.sync(Refuse)
	if err != nil {
		c.t.Fatal(err)
	}
	return rep
}

func setup(t *testing.T) (bare string, a, b *clone) {
	root := t.TempDir()
	bare = gittest.InitBare(t, root, "stack.git", "main")
	a = newClone(t, bare, alice)
	a.commit("init", map[string]string{"base/file": "0\n"})
	if rep := a.mustSync(); len(rep.Pushed) != 1 {
		t.Fatalf("first push: %+v", rep)
	}
	b = newClone(t, bare, bob)
	if rep := b.mustSync(); rep.Head.IsZero() || len(rep.Incoming) != 1 {
		t.Fatalf("clone: %+v", rep)
	}
	return bare, a, b
}

func TestDisjointWritesAreRebuilt(t *testing.T) {
	bare, a, b := setup(t)
	a.commit("alice: weather", map[string]string{"weather/offer.yaml": "w\n"})
	a.mustSync()
	local := b.commit("bob: news", map[string]string{"news/offer.yaml": "n\n"})
	rep := b.mustSync()
	if len(rep.Rebuilt) != 1 || rep.Rebuilt[0].Old != local || rep.Rebuilt[0].New.IsZero() || len(rep.Pushed) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	if log := gittest.Git(t, bare, nil, "log", "--format=%an %s", "main"); log != "Bob bob: news\nAlice alice: weather\nAlice init" {
		t.Fatalf("remote history:\n%s", log)
	}
	if got := gittest.Git(t, b.r.Dir(), nil, "status", "--porcelain"); got != "" {
		t.Fatalf("work tree after rebuild:\n%s", got)
	}
	if got := gittest.Git(t, b.r.Dir(), nil, "rev-parse", "origin/main"); got != rep.Head.String() {
		t.Fatalf("origin/main = %s, want %s", got, rep.Head)
	}
	gittest.Fsck(t, b.r.Dir())
	gittest.Fsck(t, bare)
	// Alice fast-forwards.
	if rep := a.mustSync(); len(rep.Incoming) != 1 || len(rep.Pushed) != 0 {
		t.Fatalf("alice's sync: %+v", rep)
	}
}

func TestSameUnitConflicts(t *testing.T) {
	bare, a, b := setup(t)
	a.commit("alice: weather 2", map[string]string{"base/file": "alice\n"})
	a.mustSync()
	remote := gittest.Git(t, bare, nil, "rev-parse", "main")
	local := b.commit("bob: weather 3", map[string]string{"base/file": "bob\n"})
	_, err := b.sync(Refuse)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Unit != "base" || ce.Remote.Author.Name != "Alice" || ce.Local.Hash != local {
		t.Fatalf("err = %v, want a conflict over base with Alice's commit", err)
	}
	if !strings.Contains(err.Error(), remote[:12]) || !strings.Contains(err.Error(), "Alice <alice@team.test>") {
		t.Fatalf("the error does not name the other commit and author: %v", err)
	}
	if h, _ := b.r.Head(); h != local {
		t.Fatal("the local commit was dropped")
	}
	if got := gittest.Git(t, bare, nil, "rev-parse", "main"); got != remote {
		t.Fatal("the remote moved")
	}
	// ours: Bob's version on top.
	rep, err := b.sync(Ours)
	if err != nil || len(rep.Pushed) != 1 {
		t.Fatalf("--resolve ours: %+v %v", rep, err)
	}
	if got := gittest.Git(t, bare, nil, "show", "main:base/file"); got != "bob" {
		t.Fatalf("after ours the remote holds %q", got)
	}
	// theirs: Alice's next change wins over Bob's local one, which is dropped.
	a.mustSync()
	a.commit("alice again", map[string]string{"base/file": "alice2\n"})
	a.mustSync()
	b.commit("bob again", map[string]string{"base/file": "bob2\n"})
	rep, err = b.sync(Theirs)
	if err != nil || len(rep.Pushed) != 0 || len(rep.Rebuilt) != 1 || !rep.Rebuilt[0].New.IsZero() {
		t.Fatalf("--resolve theirs: %+v %v", rep, err)
	}
	if h, _ := b.r.Head(); h.String() != gittest.Git(t, bare, nil, "rev-parse", "main") {
		t.Fatal("after theirs Bob is not at the remote head")
	}
}

// The same change made on both sides is no conflict: the local copy is dropped.
func TestIdenticalChangeIsDropped(t *testing.T) {
	_, a, b := setup(t)
	a.commit("alice", map[string]string{"x/f": "same\n"})
	a.mustSync()
	b.commit("bob", map[string]string{"x/f": "same\n"})
	rep := b.mustSync()
	if len(rep.Rebuilt) != 1 || !rep.Rebuilt[0].New.IsZero() || len(rep.Pushed) != 0 {
		t.Fatalf("report: %+v", rep)
	}
}

// A push that loses a race is rebuilt again on the next remote head; the report still maps
// the commit the user made to the one the remote holds.
func TestRebuiltTwiceReportsTheOriginal(t *testing.T) {
	bare, a, b := setup(t)
	a.commit("alice 1", map[string]string{"one/f": "1\n"})
	a.mustSync()
	local := b.commit("bob", map[string]string{"bob/f": "b\n"})
	// Another writer pushes right after each of Bob's fetches, twice: his first two pushes lose.
	lost := 0
	u, _, _ := b.r.Upstream()
	rep, err := Sync(context.Background(), b.r, Options{
		Remote: gitremote.Remote{URL: b.url}, Upstream: u, Who: bob, Unit: firstDir, Push: true, Backoff: time.Millisecond,
		Progress: func(string, ...any) { lost++ },
		beforePush: func() {
			if lost < 2 {
				a.mustSync()
				a.commit(fmt.Sprintf("alice race %d", lost), map[string]string{fmt.Sprintf("race%d/f", lost): "r\n"})
				a.mustSync()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Attempts != 3 || len(rep.Rebuilt) != 1 || rep.Rebuilt[0].Old != local || rep.Rebuilt[0].New != rep.Head {
		t.Fatalf("report after two lost races: attempts %d, rebuilt %+v, head %s (local commit %s)", rep.Attempts, rep.Rebuilt, rep.Head, local)
	}
	if got := gittest.Git(t, bare, nil, "rev-parse", "main"); got != rep.Head.String() {
		t.Fatalf("remote at %s, report says %s", got, rep.Head)
	}
}

func TestDivergence(t *testing.T) {
	bare, a, b := setup(t)
	u, _, _ := b.r.Upstream()
	check := func(wantAhead, wantBehind int) {
		t.Helper()
		ahead, behind, err := Divergence(b.r, u)
		if err != nil || ahead != wantAhead || behind != wantBehind {
			t.Fatalf("Divergence = %d ahead, %d behind, %v; want %d, %d", ahead, behind, err, wantAhead, wantBehind)
		}
	}
	check(0, 0)
	b.commit("bob 1", map[string]string{"b1/f": "1\n"})
	b.commit("bob 2", map[string]string{"b2/f": "2\n"})
	check(2, 0)
	a.commit("alice", map[string]string{"a/f": "a\n"})
	a.mustSync()
	// As of the last fetch: nothing known yet. Fetch Alice's head without rebuilding on it.
	check(2, 0)
	head, err := gitremote.Fetch(context.Background(), b.r.GitDir(), gitremote.Remote{URL: b.url}, "main", nil)
	if err != nil || head.String() != gittest.Git(t, bare, nil, "rev-parse", "main") {
		t.Fatalf("fetch: %s %v", head, err)
	}
	b.r.Reindex()
	lk, err := b.r.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	known, _ := b.r.ReadRef(u.TrackingRef())
	if err := lk.SetRef(u.TrackingRef(), known, head, bob, "fetch"); err != nil {
		t.Fatal(err)
	}
	lk.Unlock()
	check(2, 1)
	b.mustSync()
	check(0, 0)
}

// What the lock cleaned up on the way (here: the index.lock a killed obol left) is reported.
func TestSyncReportsRecoveryNotes(t *testing.T) {
	_, a, _ := setup(t)
	git := a.r.GitDir()
	lock := filepath.Join(git, "index.lock")
	if err := os.WriteFile(lock, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(lock, &st); err != nil {
		t.Fatal(err)
	}
	rec := fmt.Sprintf("%d %d index.lock index.obol-1-1.lock\n", st.Dev, st.Ino)
	if err := os.WriteFile(filepath.Join(git, "obol-locks"), []byte(rec), 0o666); err != nil {
		t.Fatal(err)
	}
	rep := a.mustSync()
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "index.lock, left by a killed obol") {
		t.Fatalf("notes: %q", rep.Notes)
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Fatal("the dead lock is still there")
	}
}

// Fresh: the first round trusts the remote-tracking ref instead of fetching. When that is
// stale the push is refused and the next round fetches and rebuilds; when it is current one
// round does it.
func TestFreshPushesWithoutFetching(t *testing.T) {
	bare, a, b := setup(t)
	u, _, _ := b.r.Upstream()
	sync := func() Report {
		t.Helper()
		rep, err := Sync(context.Background(), b.r, Options{Remote: gitremote.Remote{URL: b.url}, Upstream: u, Who: bob, Unit: firstDir, Push: true, Fresh: true, Backoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	b.commit("bob 1", map[string]string{"b1/f": "1\n"})
	if rep := sync(); rep.Attempts != 1 || len(rep.Pushed) != 1 {
		t.Fatalf("with a current tracking ref: %d attempts, pushed %v", rep.Attempts, rep.Pushed)
	}
	a.mustSync()
	a.commit("alice", map[string]string{"a/f": "a\n"})
	a.mustSync()
	b.commit("bob 2", map[string]string{"b2/f": "2\n"})
	rep := sync()
	if rep.Attempts != 2 || len(rep.Rebuilt) != 1 || len(rep.Pushed) != 1 {
		t.Fatalf("with a stale tracking ref: %d attempts, rebuilt %v, pushed %v", rep.Attempts, rep.Rebuilt, rep.Pushed)
	}
	if log := gittest.Git(t, bare, nil, "log", "--format=%s", "main"); log != "bob 2\nalice\nbob 1\ninit" {
		t.Fatalf("remote history:\n%s", log)
	}
}
