package gitremote

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/obol/obol/internal/gittest"
)

// server is one way of reaching the bare repositories under root.
type server struct {
	root string
	url  func(name string) string
	auth AuthOptions
}

func (s server) remote(name string) Remote {
	return Remote{URL: s.url(name), Auth: s.auth}
}

// runScenarios runs the same Head/Fetch/Push checks over any transport.
func runScenarios(t *testing.T, srv server) {
	t.Run("HeadFetch", func(t *testing.T) {
		ctx := testCtx(t)
		bare, hs := seed(t, srv.root, "fetch.git", 3)
		rm := srv.remote("fetch.git")

		h, err := Head(ctx, rm, "main")
		if err != nil || h != hs[2] {
			t.Fatalf("Head = %s, %v; want %s", h, err, hs[2])
		}
		if h, err := Head(ctx, rm, "nope"); err != nil || !h.IsZero() {
			t.Fatalf("Head(nope) = %s, %v; want zero", h, err)
		}

		work := initWork(t)
		gd := gitDir(work)
		h, err = Fetch(ctx, gd, rm, "main", nil)
		if err != nil || h != hs[2] {
			t.Fatalf("Fetch = %s, %v; want %s", h, err, hs[2])
		}
		gittest.Fsck(t, work)
		for _, c := range hs {
			if !hasObject(t, work, c) {
				t.Fatalf("commit %s missing after fetch", c)
			}
		}
		// The whole history must be there: rev-list --objects walks it all.
		gittest.Git(t, work, nil, "rev-list", "--objects", hs[2].String())
		if p := packs(t, gd); len(p) != 1 {
			t.Fatalf("packs after fetch: %v", p)
		}
		// No refs were written.
		if out := gittest.Git(t, work, nil, "for-each-ref"); out != "" {
			t.Fatalf("Fetch wrote refs: %q", out)
		}

		// Again: the head is here, nothing is downloaded.
		if h, err := Fetch(ctx, gd, rm, "main", nil); err != nil || h != hs[2] {
			t.Fatalf("second Fetch = %s, %v", h, err)
		}
		if p := packs(t, gd); len(p) != 1 {
			t.Fatalf("second Fetch added a pack: %v", p)
		}

		// Incremental: one new commit on the remote, haves = what we have.
		other := filepath.Join(t.TempDir(), "other")
		gittest.Git(t, t.TempDir(), nil, "clone", "--quiet", bare, other)
		next := commit(t, other, map[string]string{"new.txt": "new\n"}, "next")
		gittest.Git(t, other, nil, "push", "--quiet", "origin", "main")
		h, err = Fetch(ctx, gd, rm, "main", []plumbing.Hash{hs[2], plumbing.NewHash("1234567890123456789012345678901234567890")})
		if err != nil || h != next {
			t.Fatalf("incremental Fetch = %s, %v; want %s", h, err, next)
		}
		gittest.Fsck(t, work)
		var newest string
		for _, p := range packs(t, gd) {
			if n := packCount(t, p); n <= 4 {
				newest = p
			}
		}
		if newest == "" {
			t.Fatalf("incremental fetch did not produce a small pack: %v", packs(t, gd))
		}
		gittest.Git(t, work, nil, "rev-list", "--objects", next.String())
	})

	t.Run("EmptyAndMissing", func(t *testing.T) {
		ctx := testCtx(t)
		gittest.InitBare(t, srv.root, "empty.git", "main")
		rm := srv.remote("empty.git")
		if h, err := Head(ctx, rm, "main"); err != nil || !h.IsZero() {
			t.Fatalf("Head(empty) = %s, %v", h, err)
		}
		work := initWork(t)
		if h, err := Fetch(ctx, gitDir(work), rm, "main", nil); err != nil || !h.IsZero() {
			t.Fatalf("Fetch(empty) = %s, %v", h, err)
		}
		_, err := Head(ctx, srv.remote("missing.git"), "main")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Head(missing) = %v; want ErrNotFound", err)
		}
	})

	t.Run("Push", func(t *testing.T) {
		ctx := testCtx(t)
		bare := gittest.InitBare(t, srv.root, "push.git", "main")
		rm := srv.remote("push.git")
		work := initWork(t)
		gd := gitDir(work)
		c1 := commit(t, work, map[string]string{"a.txt": "a\n", "d/b.txt": "b\n"}, "one")

		// Create the branch on an empty remote.
		if err := Push(ctx, gd, rm, "main", plumbing.ZeroHash, c1); err != nil {
			t.Fatalf("Push create: %v", err)
		}
		if got := remoteHead(t, bare, "main"); got != c1 {
			t.Fatalf("remote main = %s; want %s", got, c1)
		}
		if out := gittest.Git(t, bare, nil, "log", "--format=%H %s", "main"); out != c1.String()+" one" {
			t.Fatalf("git log on the remote: %q", out)
		}
		gittest.Fsck(t, bare)

		// Creating it again (old=zero) is stale now.
		c2 := commit(t, work, map[string]string{"a.txt": "a2\n", "c.txt": "c\n"}, "two")
		err := Push(ctx, gd, rm, "main", plumbing.ZeroHash, c2)
		if !errors.Is(err, ErrStale) {
			t.Fatalf("Push create over existing = %v; want ErrStale", err)
		}

		// Fast-forward.
		if err := Push(ctx, gd, rm, "main", c1, c2); err != nil {
			t.Fatalf("Push ff: %v", err)
		}
		if got := remoteHead(t, bare, "main"); got != c2 {
			t.Fatalf("remote main = %s; want %s", got, c2)
		}
		gittest.Fsck(t, bare)
		gittest.Git(t, bare, nil, "rev-list", "--objects", c2.String())

		// No-ops: old == new, and the remote already at new.
		if err := Push(ctx, gd, rm, "main", c2, c2); err != nil {
			t.Fatalf("Push old==new: %v", err)
		}
		if err := Push(ctx, gd, rm, "main", c1, c2); err != nil {
			t.Fatalf("Push when remote is already at new: %v", err)
		}

		// Stale: another clone pushes first.
		other := filepath.Join(t.TempDir(), "other")
		gittest.Git(t, t.TempDir(), nil, "clone", "--quiet", bare, other)
		theirs := commit(t, other, map[string]string{"theirs.txt": "x\n"}, "theirs")
		gittest.Git(t, other, nil, "push", "--quiet", "origin", "main")
		c3 := commit(t, work, map[string]string{"mine.txt": "y\n"}, "mine")
		err = Push(ctx, gd, rm, "main", c2, c3)
		if !errors.Is(err, ErrStale) || errors.Is(err, ErrRejected) {
			t.Fatalf("stale Push = %v; want ErrStale", err)
		}
		if got := remoteHead(t, bare, "main"); got != theirs {
			t.Fatalf("stale push changed the remote: %s, want %s", got, theirs)
		}
		t.Logf("stale push: %v", err)

		// A new branch next to main: only the new objects travel.
		feat := commit(t, work, map[string]string{"feat.txt": "f\n"}, "feat")
		if err := Push(ctx, gd, rm, "team/feature", plumbing.ZeroHash, feat); err != nil {
			t.Fatalf("Push new branch: %v", err)
		}
		if got := remoteHead(t, bare, "team/feature"); got != feat {
			t.Fatalf("remote team/feature = %s; want %s", got, feat)
		}
		gittest.Fsck(t, bare)
	})

	t.Run("ServerSideCAS", func(t *testing.T) {
		// Skip the advertisement check so the server itself has to refuse
		// the compare-and-swap: this is what a lost race looks like.
		ctx := testCtx(t)
		bare, hs := seed(t, srv.root, "cas.git", 2)
		work := initWork(t)
		gd := gitDir(work)
		if _, err := Fetch(ctx, gd, srv.remote("cas.git"), "main", nil); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, work, nil, "reset", "--quiet", "--hard", hs[0].String())
		mine := commit(t, work, map[string]string{"mine.txt": "m\n"}, "mine")
		testSkipPrecheck = true
		defer func() { testSkipPrecheck = false }()
		err := Push(ctx, gd, srv.remote("cas.git"), "main", hs[0], mine)
		if !errors.Is(err, ErrStale) {
			t.Fatalf("server-side stale Push = %v; want ErrStale", err)
		}
		if got := remoteHead(t, bare, "main"); got != hs[1] {
			t.Fatalf("remote changed: %s", got)
		}
		t.Logf("server-side CAS refusal: %v", err)
		err = Push(ctx, gd, srv.remote("cas.git"), "main", plumbing.ZeroHash, mine)
		if !errors.Is(err, ErrStale) {
			t.Fatalf("server-side create-over-existing Push = %v; want ErrStale", err)
		}
		t.Logf("server-side create refusal: %v", err)
	})

	t.Run("HookRejects", func(t *testing.T) {
		ctx := testCtx(t)
		bare, hs := seed(t, srv.root, "hook.git", 1)
		hook := filepath.Join(bare, "hooks", "pre-receive")
		if err := os.WriteFile(hook, []byte("#!/bin/sh\necho 'branch main is protected' >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		work := initWork(t)
		gd := gitDir(work)
		if _, err := Fetch(ctx, gd, srv.remote("hook.git"), "main", nil); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, work, nil, "reset", "--quiet", "--hard", hs[0].String())
		c := commit(t, work, map[string]string{"x": "x\n"}, "x")
		err := Push(ctx, gd, srv.remote("hook.git"), "main", hs[0], c)
		if !errors.Is(err, ErrRejected) || errors.Is(err, ErrStale) {
			t.Fatalf("Push = %v; want ErrRejected", err)
		}
		if !strings.Contains(err.Error(), "branch main is protected") || !strings.Contains(err.Error(), "pre-receive hook declined") {
			t.Fatalf("rejection does not carry the server's reason: %v", err)
		}
		if got := remoteHead(t, bare, "main"); got != hs[0] {
			t.Fatalf("remote changed: %s", got)
		}
		t.Logf("hook rejection: %v", err)
	})
}

func TestLocal(t *testing.T) {
	root := t.TempDir()
	runScenarios(t, server{
		root: root,
		url:  func(name string) string { return "file://" + filepath.Join(root, name) },
		auth: noEnv(),
	})
}

func TestLocalPlainPath(t *testing.T) {
	ctx := testCtx(t)
	root := t.TempDir()
	_, hs := seed(t, root, "p.git", 2)
	rm := Remote{URL: filepath.Join(root, "p.git"), Auth: noEnv()}
	work := initWork(t)
	if h, err := Fetch(ctx, gitDir(work), rm, "main", nil); err != nil || h != hs[1] {
		t.Fatalf("Fetch = %s, %v", h, err)
	}
	gittest.Fsck(t, work)
}

func TestBranchNames(t *testing.T) {
	for _, b := range []string{"main", "team/x", "refs/heads/main", "v1.2"} {
		if _, err := branchRef(b); err != nil {
			t.Errorf("branchRef(%q): %v", b, err)
		}
	}
	for _, b := range []string{"", "a..b", "a b", "a:b", "-x", "x/", "x.lock", ".x", "a//b", "x@{1}", "a~1", "a^"} {
		if _, err := branchRef(b); err == nil {
			t.Errorf("branchRef(%q) accepted", b)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:s3cret@example.com/org/repo.git": "https://user:***@example.com/org/repo.git",
		"https://example.com/org/repo.git":             "https://example.com/org/repo.git",
		"https://alice@example.com/r":                  "https://alice@example.com/r",
		"http://x-access-token:ghp_abc%2Fdef@h:8080/r": "http://x-access-token:***@h:8080/r",
		"ssh://git:pw@host:2222/r.git":                 "ssh://git:***@host:2222/r.git",
		"git@github.com:org/repo.git":                  "git@github.com:org/repo.git",
		"tok:en@host:path":                             "tok:***@host:path",
		"/srv/git/r.git":                               "/srv/git/r.git",
		"https://u:p%zz@h/r":                           "https://u:***@h/r",
		"https://ghp_abcdef123@github.com/o/r.git":     "https://***@github.com/o/r.git",
		"https://Zx9kQ2mN7pR4sT6vW8yA1bC3dE5fG7hJ@h/r": "https://***@h/r",
		"https://u:p@ss@h/r":                           "https://u:***@h/r",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q; want %q", in, got, want)
		}
	}
}
