package team

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/obol/obol/internal/gittest"
)

// TestTeamWorkflowHTTP is two people sharing one stack over smart HTTP with token auth: init,
// join, writes that race, a real conflict, its resolution, log and rollback.
func TestTeamWorkflowHTTP(t *testing.T) {
	root := t.TempDir()
	bare := gittest.InitBare(t, root, "stack.git", "main")
	const token = "s3cret-token-0123456789"
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{Username: "git", Token: token})
	url := srv.RepoURL("stack.git")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := newUser(t, "Alice", "OBOL_GIT_USERNAME=git", "OBOL_GIT_TOKEN_FILE="+tokenFile)
	bob := newUser(t, "Bob", "OBOL_GIT_TOKEN="+token, "OBOL_GIT_USERNAME=git")
	var transcript strings.Builder
	say := func(s string) { transcript.WriteString(s) }

	// Alice gives the token with --token-file and OBOL_GIT_TOKEN_FILE, Bob with OBOL_GIT_TOKEN.
	// Without credentials the remote refuses, and nothing is created.
	carol := newUser(t, "Carol", "OBOL_GIT_USERNAME=git")
	_, errOut, code := carol.run("stack", "init", "--stack", "team", "--remote", url)
	if code == 0 || !strings.Contains(errOut, "--token-file") {
		t.Fatalf("init without a token: exit %d, want an auth error naming --token-file:\n%s", code, errOut)
	}
	if _, err := os.Stat(carol.repo); !os.IsNotExist(err) {
		t.Fatalf("a failed init left %s behind", carol.repo)
	}

	say(alice.must("stack", "init", "--stack", "team", "--remote", url, "--token-file", tokenFile))
	if got := gittest.Git(t, bare, nil, "rev-list", "--count", "main"); got != "1" {
		t.Fatalf("remote has %s commits after init, want 1", got)
	}
	// The reconciler watches the remote, with a credentials Secret named in obol.yaml.
	settings := gittest.Git(t, bare, nil, "show", "main:obol.yaml")
	if !strings.Contains(settings, "gitURL: "+url) || !strings.Contains(settings, "gitSecret: obol-git-credentials") {
		t.Fatalf("obol.yaml does not point the reconciler at the remote:\n%s", settings)
	}
	if out, errOut, code := alice.run("stack", "init", "--stack", "team", "--remote", url, "--token-file", tokenFile, "--repo", filepath.Join(t.TempDir(), "x")); code == 0 || !strings.Contains(errOut, "stack join") {
		t.Fatalf("init on a remote that has the branch: exit %d, want a refusal naming stack join:\n%s%s", code, out, errOut)
	}

	say(bob.must("stack", "join", url))
	say(alice.must(sellArgs("weather", "--token-file", tokenFile)...))
	// Bob is one commit behind: his sell is rebuilt on Alice's commit, not merged.
	say(bob.must(sellArgs("news")...))
	log := gittest.Git(t, bare, nil, "log", "--format=%an %s", "main")
	wantLog := "Bob sell http news: create\nAlice sell http weather: create\nAlice stack init: team"
	if log != wantLog {
		t.Fatalf("remote history:\n%s\nwant:\n%s", log, wantLog)
	}
	if merges := gittest.Git(t, bare, nil, "rev-list", "--merges", "--count", "main"); merges != "0" {
		t.Fatalf("%s merge commits on the remote, want none", merges)
	}
	say(alice.must("sync"))
	for _, u := range []*user{alice, bob} {
		if got := gittest.Git(t, u.repo, nil, "rev-parse", "HEAD"); got != gittest.Git(t, bare, nil, "rev-parse", "main") {
			t.Fatalf("%s's HEAD %s is not the remote head", u.name, got)
		}
		if st := gittest.Git(t, u.repo, nil, "status", "--porcelain"); st != "" {
			t.Fatalf("%s's work tree is not clean:\n%s", u.name, st)
		}
		gittest.Fsck(t, u.repo)
	}

	// A real conflict: both change weather at the same time (Bob commits before Alice's push
	// reaches him). Bob's change stays local, and the error names Alice's commit.
	say(bob.must("sell", "update", "weather", "--per-request", "0.003", "--no-push"))
	bobCommit := gittest.Git(t, bob.repo, nil, "rev-parse", "HEAD")
	say(alice.must("sell", "update", "weather", "--per-request", "0.002", "--token-file", tokenFile))
	aliceCommit := gittest.Git(t, bare, nil, "rev-parse", "--short=12", "main")
	remoteBefore := gittest.Git(t, bare, nil, "rev-parse", "main")
	_, errOut, code = bob.run("sync")
	if code != 2 || !strings.Contains(errOut, aliceCommit) || !strings.Contains(errOut, "Alice") || !strings.Contains(errOut, "applications/sell-http/weather") {
		t.Fatalf("conflicting sync: exit %d, want 2 and an error naming %s by Alice:\n%s", code, aliceCommit, errOut)
	}
	say(errOut)
	if got := gittest.Git(t, bare, nil, "rev-parse", "main"); got != remoteBefore {
		t.Fatal("a conflicting push moved the remote")
	}
	if got := gittest.Git(t, bob.repo, nil, "rev-parse", "HEAD"); got != bobCommit {
		t.Fatalf("Bob's change was not kept locally: HEAD is %s, want %s", got, bobCommit)
	}
	// Until it is resolved, further writes stop before writing anything.
	if _, errOut, code := bob.run("sell", "update", "news", "--per-request", "0.005"); code != 2 || !strings.Contains(errOut, aliceCommit) {
		t.Fatalf("a write over an unresolved conflict: exit %d:\n%s", code, errOut)
	}
	if got := gittest.Git(t, bob.repo, nil, "rev-parse", "HEAD"); got != bobCommit {
		t.Fatal("a refused write committed something")
	}
	kept := gittest.Git(t, bob.repo, nil, "show", "HEAD:applications/sell-http/weather/offer.yaml")
	if !strings.Contains(kept, "0.003") {
		t.Fatalf("Bob's local commit does not hold his change:\n%s", kept)
	}
	out := bob.must("log", "weather")
	if !strings.Contains(out, "(local)") {
		t.Fatalf("obol log does not mark the unpushed commit:\n%s", out)
	}
	say(bob.must("sync", "--resolve", "theirs"))
	if got, want := gittest.Git(t, bob.repo, nil, "rev-parse", "HEAD"), gittest.Git(t, bare, nil, "rev-parse", "main"); got != want {
		t.Fatalf("after --resolve theirs Bob is at %s, want the remote head %s", got, want)
	}

	// obol log: who changed which offer.
	out = bob.must("log", "weather", "-o", "json")
	if strings.Count(out, `"commit"`) != 2 || !strings.Contains(out, `"name": "Alice"`) || !strings.Contains(out, `"kind": "List"`) {
		t.Fatalf("obol log weather -o json:\n%s", out)
	}

	// Rollback restores the slice before its last change, byte for byte, in a pushed commit.
	lastChange := gittest.Git(t, bare, nil, "log", "-1", "--format=%H", "main", "--", "applications/sell-http/weather")
	before := slice(t, bare, lastChange+"^", "applications/sell-http/weather")
	say(alice.must("rollback", "weather", "--token-file", tokenFile))
	after := slice(t, bare, "main", "applications/sell-http/weather")
	if !equalSlices(before, after) {
		t.Fatalf("rollback did not restore the slice byte for byte:\nbefore: %v\nafter:  %v", keys(before), keys(after))
	}
	if subj := gittest.Git(t, bare, nil, "log", "-1", "--format=%an: %s", "main"); !strings.HasPrefix(subj, "Alice: rollback weather: undo "+lastChange[:12]) {
		t.Fatalf("rollback commit: %q", subj)
	}
	// Rolling back a whole commit (Bob's create of news) deletes the offer.
	newsCommit := gittest.Git(t, bare, nil, "log", "-1", "--format=%h", "--diff-filter=A", "main", "--", "applications/sell-http/news/offer.yaml")
	say(bob.must("rollback", newsCommit))
	if out := gittest.Git(t, bare, nil, "ls-tree", "--name-only", "main", "applications/sell-http/"); strings.Contains(out, "news") {
		t.Fatalf("rollback of the create left news on the remote:\n%s", out)
	}

	gittest.Fsck(t, bare)
	for _, u := range []*user{alice, bob} {
		gittest.Fsck(t, u.repo)
	}
	// The token is never printed and never written to the repos.
	if strings.Contains(transcript.String(), token) {
		t.Fatalf("the token was printed:\n%s", transcript.String())
	}
	for _, dir := range []string{alice.repo, bob.repo, bare} {
		if grep := grepTree(t, dir, token); grep != "" {
			t.Fatalf("the token is stored in %s", grep)
		}
	}
}

// slice lists every file of dir at rev with its mode and blob id, read with the git CLI: two
// equal listings are byte-for-byte equal slices.
func slice(t *testing.T, repoDir, rev, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	list := gittest.Git(t, repoDir, nil, "ls-tree", "-r", rev, "--", dir)
	for _, line := range strings.Split(list, "\n") {
		if meta, p, ok := strings.Cut(line, "\t"); ok {
			files[p] = meta
		}
	}
	if len(files) == 0 {
		t.Fatalf("no files under %s at %s", dir, rev)
	}
	return files
}

func equalSlices(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// grepTree returns the first file under dir whose content contains s.
func grepTree(t *testing.T, dir, s string) string {
	var found string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || found != "" {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && strings.Contains(string(data), s) {
			found = p
		}
		return nil
	})
	return found
}
