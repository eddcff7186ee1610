package team

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obol/obol/internal/gittest"
)

// A secret committed by hand in a clone is refused at the push, by `obol sync` and by the push
// of the next write, and the remote never receives it; once the commit is fixed, sync pushes.
func TestPushRefusesSecrets(t *testing.T) {
	bare, users := teamOf(t, 1)
	u := users[0]
	u.must(sellArgs("weather")...)
	before := gittest.Git(t, bare, nil, "rev-parse", "main")

	key := strings.Repeat("5b7e0c1d", 8)
	git := func(args ...string) string {
		return gittest.Git(t, u.repo, []string{"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}, args...)
	}
	if err := writeFile(u.repo+"/notes/ops.md", "hot wallet: 0x"+key+"\n"); err != nil {
		t.Fatal(err)
	}
	git("add", "notes/ops.md")
	git("-c", "user.name=Ops", "-c", "user.email=ops@team.test", "commit", "-q", "-m", "ops notes")
	for _, args := range [][]string{{"sync"}, sellArgs("news")} {
		out, errOut, code := u.run(args...)
		if code == 0 || !strings.Contains(errOut, "refusing to push 1 secret") || !strings.Contains(errOut, "notes/ops.md:1: evm-private-key") {
			t.Fatalf("obol %s with a key in an unpushed commit: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		if strings.Contains(out+errOut, key) {
			t.Fatalf("the refusal prints the key:\n%s", errOut)
		}
		if got := gittest.Git(t, bare, nil, "rev-parse", "main"); got != before {
			t.Fatalf("the remote moved to %s", got)
		}
	}
	// The fix: take the key out of the unpushed commits (here: squash them, the key replaced);
	// sync then pushes them, the news offer included.
	if err := writeFile(u.repo+"/notes/ops.md", "hot wallet: in the vault\n"); err != nil {
		t.Fatal(err)
	}
	git("add", "-A")
	git("reset", "-q", "--soft", before)
	git("-c", "user.name=Ops", "-c", "user.email=ops@team.test", "commit", "-q", "-m", "ops notes, news")
	u.must("sync")
	if got := gittest.Git(t, bare, nil, "ls-tree", "--name-only", "main", "applications/sell-http/"); !strings.Contains(got, "news") {
		t.Fatalf("remote lacks the news offer:\n%s", got)
	}
	if got := gittest.Git(t, bare, nil, "show", "main:notes/ops.md"); !strings.Contains(got, "vault") {
		t.Fatalf("remote notes/ops.md: %q", got)
	}
	gittest.Git(t, bare, nil, "fsck", "--strict", "--no-progress")
}

func writeFile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

// A token inside a remote URL is taken out before anything is written: init and join use it,
// and neither .git/config nor any other file of the clone holds it (git itself would store it
// in plain text); later commands need it given as the README says.
func TestRemoteURLTokenNeverStored(t *testing.T) {
	root := t.TempDir()
	gittest.InitBare(t, root, "stack.git", "main")
	const token = "tok-9f8e7d6c5b4a39281706"
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{Username: "git", Token: token})
	url := srv.RepoURL("stack.git")
	withToken := strings.Replace(url, "://", "://git:"+token+"@", 1)
	alice, bob := newUser(t, "Alice"), newUser(t, "Bob")
	out := alice.must("stack", "init", "--stack", "team", "--remote", withToken)
	if !strings.Contains(out, "not stored") || strings.Contains(out, token) {
		t.Errorf("init: the note is missing or prints the token:\n%s", out)
	}
	out = bob.must("stack", "join", withToken)
	if strings.Contains(out, token) {
		t.Errorf("join prints the token:\n%s", out)
	}
	for _, u := range []*user{alice, bob} {
		if hit := grepTree(t, u.repo, token); hit != "" {
			t.Errorf("%s's clone stores the token in %s", u.name, hit)
		}
		cfg, err := os.ReadFile(filepath.Join(u.repo, ".git", "config"))
		// The user name stays (it is no secret, and git sends it); the token is gone.
		if clean := strings.Replace(url, "://", "://git@", 1); err != nil || !strings.Contains(string(cfg), "url = "+clean+"\n") {
			t.Errorf("%s's .git/config lacks the clean remote %s: %v\n%s", u.name, clean, err, cfg)
		}
		// Without the token a write that pushes is refused, naming how to give it.
		if _, errOut, code := u.run(sellArgs("w-" + strings.ToLower(u.name))...); code == 0 || !strings.Contains(errOut, "--token-file") {
			t.Errorf("%s: a push without the token: exit %d\n%s", u.name, code, errOut)
		}
	}
}

// With no identity configured anywhere, obol refuses to commit as git does, naming the fix,
// and nothing is created; with --author it commits.
func TestNoIdentityRefused(t *testing.T) {
	u := newUser(t, "Nobody")
	var env []string
	for _, e := range u.env {
		if !strings.HasPrefix(e, "GIT_AUTHOR_") {
			env = append(env, e)
		}
	}
	u.env = env
	_, errOut, code := u.run("stack", "init", "--stack", "dev")
	if code == 0 || !strings.Contains(errOut, "author identity unknown") || !strings.Contains(errOut, "git config --global user.email") {
		t.Fatalf("init with no identity: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(u.repo); !os.IsNotExist(err) {
		t.Fatalf("a refused init left %s behind", u.repo)
	}
	u.must("stack", "init", "--stack", "dev", "--author", "Nobody <nobody@team.test>")
	if got := gittest.Git(t, u.repo, nil, "log", "-1", "--format=%an <%ae>"); got != "Nobody <nobody@team.test>" {
		t.Errorf("author %q", got)
	}
}

// A remote created with "Add a README" (a forge's default) holds a commit but no stack: join
// says to init, and init builds the stack on top of that commit, which the remote keeps.
func TestRemoteWithOnlyAReadme(t *testing.T) {
	root := t.TempDir()
	bare := gittest.InitBare(t, root, "stack.git", "main")
	seed := t.TempDir()
	env := []string{"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}
	gittest.Git(t, seed, env, "init", "-q", "-b", "main")
	if err := writeFile(seed+"/README.md", "# stack\nCreated by the forge.\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(seed+"/LICENSE", "MIT\n"); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, seed, env, "add", "-A")
	gittest.Git(t, seed, env, "-c", "user.name=Forge", "-c", "user.email=forge@example.com", "commit", "-q", "-m", "Initial commit")
	gittest.Git(t, seed, env, "push", "-q", bare, "main")
	first := gittest.Git(t, bare, nil, "rev-parse", "main")
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{})
	url := srv.RepoURL("stack.git")

	bob := newUser(t, "Bob")
	if _, errOut, code := bob.run("stack", "join", url); code == 0 || !strings.Contains(errOut, "obol stack init --stack NAME --remote") {
		t.Errorf("join of a README-only remote: exit %d\n%s", code, errOut)
	}
	alice := newUser(t, "Alice")
	alice.must("stack", "init", "--stack", "team", "--remote", url, "--public")
	if parent := gittest.Git(t, bare, nil, "rev-parse", "main^"); parent != first {
		t.Errorf("the stack commit's parent is %s, want the forge's %s", parent, first)
	}
	if got := gittest.Git(t, bare, nil, "show", "main:LICENSE"); got != "MIT" {
		t.Errorf("LICENSE: %q", got)
	}
	bob.must("stack", "join", url)
	bob.must(sellArgs("weather")...)
	// Now it holds a stack: init refuses and leaves nothing behind.
	again := filepath.Join(t.TempDir(), "again")
	if _, errOut, code := alice.run("stack", "init", "--stack", "team", "--remote", url, "--public", "--repo", again); code == 0 || !strings.Contains(errOut, "already holds a stack") {
		t.Errorf("init on a stack: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Errorf("a refused init left %s behind", again)
	}
}
