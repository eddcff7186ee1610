package root_test

import (
	"strings"
	"testing"
)

func sellWeather(t *testing.T, repo string, extra ...string) {
	t.Helper()
	mustRun(t, repo, append([]string{"sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"}, extra...)...)
}

// On a local stack (no remote) rollback, log and their errors work the same; sync says how to
// get a remote.
func TestRollbackAndLogLocal(t *testing.T) {
	repo := newStack(t)
	sellWeather(t, repo)
	before := gitCLI(t, repo, "ls-tree", "-r", "HEAD", "applications/sell-http/weather")
	mustRun(t, repo, "sell", "update", "weather", "--per-request", "0.002")
	updated := strings.TrimSpace(gitCLI(t, repo, "rev-parse", "--short=12", "HEAD"))
	r := mustRun(t, repo, "rollback", "weather")
	if !strings.Contains(r.out, "rollback weather: undo "+updated) {
		t.Fatalf("rollback output: %s", r.out)
	}
	if after := gitCLI(t, repo, "ls-tree", "-r", "HEAD", "applications/sell-http/weather"); after != before {
		t.Fatalf("rollback did not restore the slice byte for byte:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	checkRepo(t, repo)

	// A dry run prints the diff, exits 1 and writes nothing.
	head := gitCLI(t, repo, "rev-parse", "HEAD")
	if r := obolCLI(t, repo, author, "rollback", "weather", "--dry-run"); r.code != 1 || !strings.Contains(r.out, "0.002") {
		t.Fatalf("rollback --dry-run: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if gitCLI(t, repo, "rev-parse", "HEAD") != head {
		t.Fatal("a dry run committed")
	}

	// Rolling back a commit whose offer changed again since names the later commit.
	r = obolCLI(t, repo, author, "rollback", updated[:8])
	if r.code != 2 || !strings.Contains(r.err, "changed again after "+updated) || !strings.Contains(r.err, head[:12]) {
		t.Fatalf("rollback of a commit changed since: exit %d\n%s", r.code, r.err)
	}
	for _, bad := range []string{"nosuchoffer", "deadbeef"} {
		if r := obolCLI(t, repo, author, "rollback", bad); r.code != 2 || !strings.Contains(r.err, bad) {
			t.Fatalf("rollback %s: exit %d\n%s", bad, r.code, r.err)
		}
	}
	if gitCLI(t, repo, "rev-parse", "HEAD") != head {
		t.Fatal("a refused rollback committed")
	}

	// log: newest first, the offers each commit changed, and a filter by offer.
	r = mustRun(t, repo, "log")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "COMMIT") || !strings.Contains(lines[1], "rollback weather") || !strings.Contains(lines[4], "stack init: dev") {
		t.Fatalf("obol log:\n%s", r.out)
	}
	if r := mustRun(t, repo, "log", "weather", "-n", "1", "-o", "json"); strings.Count(r.out, `"commit"`) != 1 || !strings.Contains(r.out, `"offers": [`) {
		t.Fatalf("obol log weather -n 1 -o json:\n%s", r.out)
	}
	if r := obolCLI(t, repo, author, "log", "nosuch"); r.code != 2 || !strings.Contains(r.err, "nosuch") {
		t.Fatalf("log of an unknown offer: exit %d\n%s", r.code, r.err)
	}
	if r := obolCLI(t, repo, author, "sync"); r.code != 2 || !strings.Contains(r.err, "stack join") {
		t.Fatalf("sync without a remote: exit %d\n%s", r.code, r.err)
	}
}
