package root_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two offers may not take the same public path, or one inside the other's: the second write
// is refused before anything is written, by sell, update and rollback alike, and the error
// names both offers and the fix.
func TestPathConflictsRefusedAtWriteTime(t *testing.T) {
	repo := newStack(t)
	sellHTTP := func(name string, extra ...string) result {
		args := append([]string{"sell", "http", name, "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
			"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"}, extra...)
		return obolCLI(t, repo, author, args...)
	}
	if r := sellHTTP("weather"); r.code != 0 {
		t.Fatalf("first sell: %d %s", r.code, r.err)
	}
	before := treeHash(t, repo)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"same path", []string{"--path", "/services/weather"}, []string{"same path", "weather", "other", "--path"}},
		{"inside", []string{"--path", "/services/weather/sub"}, []string{"lies inside", "weather", "other"}},
		{"around", []string{"--path", "/services"}, []string{"lies inside", "weather", "other"}},
		{"reserved", []string{"--path", "/healthz"}, []string{"spec.path", "/healthz", "reserved"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sellHTTP("other", tc.args...)
			if r.code == 0 {
				t.Fatalf("sell other %v succeeded:\n%s", tc.args, r.out)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.err, w) {
					t.Errorf("error does not say %q:\n%s", w, r.err)
				}
			}
			if treeHash(t, repo) != before {
				t.Fatal("the refused sell changed the repo")
			}
		})
	}
	// A path of its own is fine; moving it onto weather's with update is refused.
	if r := sellHTTP("other", "--path", "/services/weather2"); r.code != 0 {
		t.Fatalf("sell other on its own path: %d %s", r.code, r.err)
	}
	before = treeHash(t, repo)
	r := obolCLI(t, repo, author, "sell", "update", "other", "--path", "/services/weather/x")
	if r.code == 0 || !strings.Contains(r.err, "lies inside") {
		t.Fatalf("update onto weather's path: %d\n%s", r.code, r.err)
	}
	if treeHash(t, repo) != before {
		t.Fatal("the refused update changed the repo")
	}
	// Rollback: delete weather, give other weather's old path, then undo the delete.
	mustRun(t, repo, "sell", "delete", "weather")
	mustRun(t, repo, "sell", "update", "other", "--path", "/services/weather")
	before = treeHash(t, repo)
	head := strings.TrimSpace(gitCLI(t, repo, "rev-parse", "HEAD~1"))
	r = obolCLI(t, repo, author, "rollback", head)
	if r.code == 0 || !strings.Contains(r.err, "same path") {
		t.Fatalf("rollback restoring a conflicting offer: %d\n%s%s", r.code, r.out, r.err)
	}
	if treeHash(t, repo) != before {
		t.Fatal("the refused rollback changed the repo")
	}
	checkRepo(t, repo)
}

// A conflict that reached the branch by hand (or by two writers' pushes) is a validate finding
// on the offer's file.
func TestValidateReportsPathConflicts(t *testing.T) {
	repo := newStack(t)
	for _, n := range []string{"a", "b"} {
		mustRun(t, repo, "sell", "http", n, "--upstream", "api", "--namespace", "apps", "--port", "8080",
			"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
	}
	if r := obolCLI(t, repo, author, "validate"); r.code != 0 {
		t.Fatalf("validate before the edit: %d\n%s%s", r.code, r.out, r.err)
	}
	p := filepath.Join(repo, "applications", "sell-http", "b", "offer.yaml")
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "path: /services/b", "path: /services/a/b", 1)
	if edited == string(src) {
		t.Fatalf("no path line in offer.yaml:\n%s", src)
	}
	if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCLI(t, repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "b under a, by hand")
	r := obolCLI(t, repo, author, "validate", "-o", "json")
	if r.code == 0 || !strings.Contains(r.out, "lies inside") || !strings.Contains(r.out, `"object": "ServiceOffer/b"`) || !strings.Contains(r.out, "give b a path outside a") {
		t.Fatalf("validate with b inside a: exit %d\n%s%s", r.code, r.out, r.err)
	}
}
