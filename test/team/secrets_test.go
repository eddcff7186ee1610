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
