package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func needGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
}

// commitFile writes name=content in the work tree dir, commits it and
// returns the new HEAD.
func commitFile(t *testing.T, dir, name, content, msg string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, dir, nil, "add", name)
	Git(t, dir, nil, "commit", "-q", "-m", msg)
	return Git(t, dir, nil, "rev-parse", "HEAD")
}

// exerciseRemote is the user journey both servers must support with the
// plain git CLI: clone empty, push, clone again, fetch, race two pushes.
// bare is the server-side path of the repository behind url.
func exerciseRemote(t *testing.T, bare, url string, env []string) {
	work := t.TempDir()
	a := filepath.Join(work, "a")
	b := filepath.Join(work, "b")

	// Clone of an empty repository.
	_, stderr, err := TryGit(t, work, env, "clone", url, a)
	if err != nil {
		t.Fatalf("clone empty: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "empty repository") {
		t.Errorf("clone empty: expected the empty-repository warning, got %q", stderr)
	}
	// protocol v2 ls-refs advertises the unborn HEAD, so the clone is on
	// the server's default branch rather than the client's.
	if got := Git(t, a, nil, "symbolic-ref", "--short", "HEAD"); got != "main" {
		t.Errorf("HEAD of empty clone = %q, want main", got)
	}

	c1 := commitFile(t, a, "README.md", "hello\n", "first")
	Git(t, a, env, "push", "-q", "origin", "main")
	if got := Git(t, bare, nil, "rev-parse", "refs/heads/main"); got != c1 {
		t.Fatalf("server main = %s, want %s", got, c1)
	}

	// A second clone sees the commit.
	Git(t, work, env, "clone", "-q", url, b)
	if got := Git(t, b, nil, "log", "-1", "--format=%H %s"); got != c1+" first" {
		t.Fatalf("second clone HEAD = %q, want %q", got, c1+" first")
	}
	if data, err := os.ReadFile(filepath.Join(b, "README.md")); err != nil || string(data) != "hello\n" {
		t.Fatalf("second clone README.md = %q, %v", data, err)
	}

	// Fetch picks up a new push.
	c2 := commitFile(t, a, "README.md", "hello again\n", "second")
	Git(t, a, env, "push", "-q", "origin", "main")
	Git(t, b, env, "fetch", "-q", "origin")
	if got := Git(t, b, nil, "rev-parse", "origin/main"); got != c2 {
		t.Fatalf("after fetch origin/main = %s, want %s", got, c2)
	}
	Git(t, b, env, "pull", "-q", "--ff-only", "origin", "main")

	// Two clones race a push from the same base: exactly one wins.
	ca := commitFile(t, a, "a.txt", "a\n", "from a")
	cb := commitFile(t, b, "b.txt", "b\n", "from b")
	type result struct {
		stderr string
		err    error
	}
	var res [2]result
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, dir := range []string{a, b} {
		wg.Go(func() {
			<-start
			_, res[i].stderr, res[i].err = TryGit(t, dir, env, "push", "origin", "main")
		})
	}
	close(start)
	wg.Wait()
	if (res[0].err == nil) == (res[1].err == nil) {
		t.Fatalf("racing pushes: want exactly one success, got a=%v b=%v\n%s\n%s", res[0].err, res[1].err, res[0].stderr, res[1].stderr)
	}
	winner, loser, winnerCommit := a, b, ca
	lost := res[1]
	if res[0].err != nil {
		winner, loser, winnerCommit, lost = b, a, cb, res[0]
	}
	t.Logf("losing racer's push:\n%s", lost.stderr)
	// Depending on timing the loser is turned away by its own client
	// ("[rejected] ... (fetch first)") or, if both read the old ref, by
	// receive-pack's compare-and-swap ("[remote rejected] ... cannot lock ref").
	if !strings.Contains(lost.stderr, "rejected") {
		t.Errorf("losing push stderr lacks \"rejected\":\n%s", lost.stderr)
	}
	if got := Git(t, bare, nil, "rev-parse", "refs/heads/main"); got != winnerCommit {
		t.Fatalf("server main after race = %s, want winner %s", got, winnerCommit)
	}

	// Once the loser has fetched, the refusal is a plain non-fast-forward.
	Git(t, loser, env, "fetch", "-q", "origin")
	_, stderr, err = TryGit(t, loser, env, "push", "origin", "main")
	if err == nil || !strings.Contains(stderr, "(non-fast-forward)") {
		t.Fatalf("stale push after fetch: err=%v, want non-fast-forward rejection:\n%s", err, stderr)
	}
	t.Logf("non-fast-forward push:\n%s", stderr)
	if got := Git(t, bare, nil, "rev-parse", "refs/heads/main"); got != winnerCommit {
		t.Fatalf("server main moved by a rejected push: %s", got)
	}
	// Rebasing resolves it.
	Git(t, loser, nil, "rebase", "-q", "origin/main")
	Git(t, loser, env, "push", "-q", "origin", "main")
	Git(t, winner, env, "pull", "-q", "--ff-only", "origin", "main")
	for _, f := range []string{"a.txt", "b.txt"} {
		if _, err := os.Stat(filepath.Join(winner, f)); err != nil {
			t.Errorf("final clone lacks %s: %v", f, err)
		}
	}

	Fsck(t, bare)
	Fsck(t, a)
	Fsck(t, b)
}

// protocolVersion reports the protocol version git ls-remote negotiated.
func protocolVersion(t *testing.T, url string, env []string) string {
	t.Helper()
	_, stderr, err := TryGit(t, t.TempDir(), append(env, "GIT_TRACE_PACKET=1"), "ls-remote", url)
	if err != nil {
		t.Fatalf("ls-remote %s: %v\n%s", url, err, stderr)
	}
	if strings.Contains(stderr, "< version 2") {
		return "2"
	}
	return "0"
}

func TestInitBareAndFsck(t *testing.T) {
	needGit(t)
	t.Parallel()
	root := t.TempDir()
	bare := InitBare(t, root, "team/stack.git", "trunk")
	if got := Git(t, bare, nil, "config", "http.receivepack"); got != "true" {
		t.Errorf("http.receivepack = %q", got)
	}
	if got := Git(t, bare, nil, "symbolic-ref", "HEAD"); got != "refs/heads/trunk" {
		t.Errorf("HEAD = %q", got)
	}
	if got := Git(t, bare, nil, "rev-parse", "--is-bare-repository"); got != "true" {
		t.Errorf("bare = %q", got)
	}
	Fsck(t, bare) // an empty repo only yields notices

	// The environment is clean: the fixed identity is used.
	wt := filepath.Join(root, "wt")
	Git(t, root, nil, "init", "-q", "-b", "main", wt)
	commitFile(t, wt, "f", "x", "msg")
	if got := Git(t, wt, nil, "log", "-1", "--format=%an <%ae>|%cn <%ce>"); got != AuthorName+" <"+AuthorEmail+">|"+AuthorName+" <"+AuthorEmail+">" {
		t.Errorf("identity = %q", got)
	}
	Fsck(t, wt)

	// A commit with a malformed author line fails fsck --strict.
	tree := Git(t, wt, nil, "rev-parse", "HEAD^{tree}")
	raw := "tree " + tree + "\nauthor Bad <bad> 1 +0000\ncommitter Obol <o@x> 1 +0000\n\nmsg\n"
	obj := filepath.Join(root, "obj")
	if err := os.WriteFile(obj, []byte(strings.Replace(raw, "<bad>", "<bad", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, wt, nil, "hash-object", "-t", "commit", "-w", "--literally", obj)
	_, _, err := TryGit(t, wt, nil, "fsck", "--strict", "--no-dangling")
	if err == nil {
		t.Errorf("fsck accepted a malformed commit")
	}

	if _, _, err := TryGit(t, root, nil, "rev-parse", "--verify", "nope"); err == nil {
		t.Errorf("TryGit: expected an error")
	}
}

func TestSplitShellWords(t *testing.T) {
	t.Parallel()
	ok := map[string][]string{
		`git-upload-pack '/stack.git'`:           {"git-upload-pack", "/stack.git"},
		`git-upload-pack 'stack.git'`:            {"git-upload-pack", "stack.git"},
		`git-receive-pack  stack.git`:            {"git-receive-pack", "stack.git"},
		`git-upload-pack "/my repo.git"`:         {"git-upload-pack", "/my repo.git"},
		`git-upload-pack '/a'\''b'\!'c.git'`:     {"git-upload-pack", "/a'b!c.git"},
		`git-upload-pack '~/stack.git'`:          {"git-upload-pack", "~/stack.git"},
		`git-upload-pack 'x'y\ z`:                {"git-upload-pack", "xy z"},
		`git-upload-pack "a\"b\\c"`:              {"git-upload-pack", `a"b\c`},
		`git-upload-pack '$HOME;rm -rf / ` + "'": {"git-upload-pack", "$HOME;rm -rf / "},
	}
	for in, want := range ok {
		got, err := splitShellWords(in)
		if err != nil || strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("splitShellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		`git-upload-pack 'x`, `git-upload-pack "x`, `git-upload-pack x\`,
		`git-upload-pack $HOME`, `git-upload-pack x; ls`, `git-upload-pack x | cat`,
		"git-upload-pack `id`", `git-upload-pack "$(id)"`, `git-upload-pack *`,
		`git-upload-pack ~/x`, `git-upload-pack x > y`, "git-upload-pack x\nls",
	} {
		if got, err := splitShellWords(in); err == nil {
			t.Errorf("splitShellWords(%q) = %q, want an error", in, got)
		}
	}
}
