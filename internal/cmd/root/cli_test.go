package root_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/obol/obol"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/root"
)

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

type result struct {
	out, err string
	code     int
}

// obolCLI runs the command tree in-process, exactly as main does, against repo.
func obolCLI(t *testing.T, repo string, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Secrets: root.Secrets,
		Assets:  obol.Assets(),
		Getenv: func(k string) string {
			if k == "OBOL_REPO" {
				return repo
			}
			return env[k]
		},
		Now: func() time.Time { return time.Unix(1_780_000_000, 0) },
	}
	code := root.Run(context.Background(), f, args)
	return result{out: out.String(), err: errOut.String(), code: code}
}

var author = map[string]string{"GIT_AUTHOR_NAME": "Test Seller", "GIT_AUTHOR_EMAIL": "seller@example.com"}

func mustRun(t *testing.T, repo string, args ...string) result {
	t.Helper()
	r := obolCLI(t, repo, author, args...)
	if r.code != 0 {
		t.Fatalf("obol %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r
}

func gitCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return string(b)
}

// checkRepo asserts what must hold after every command: git fsck --strict passes and the
// work tree matches HEAD.
func checkRepo(t *testing.T, repo string) {
	t.Helper()
	gitCLI(t, repo, "fsck", "--strict", "--no-progress")
	if st := gitCLI(t, repo, "status", "--porcelain"); st != "" {
		t.Fatalf("git status is not clean:\n%s", st)
	}
}

// treeHash hashes every file and directory under dir (names, modes, contents), .git included.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		info, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(p + "\x00" + info.Mode().String() + "\x00"))
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func newStack(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "stack")
	mustRun(t, repo, "stack", "init", "--stack", "dev")
	checkRepo(t, repo)
	return repo
}

func TestWalkthrough(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
	checkRepo(t, repo)
	mustRun(t, repo, "sell", "inference", "qwen", "--model", "qwen3:8b", "--upstream-url", "http://host.k3d.internal:11434",
		"--per-mtok", "0.5", "--pay-to", payTo)
	checkRepo(t, repo)

	for _, p := range []string{"applications/sell-http/weather/offer.yaml", "applications/sell-http/weather/helmrelease.yaml",
		"applications/sell-inference/qwen/offer.yaml", "clusters/dev/applications.yaml", "obol.yaml"} {
		if _, err := os.Stat(filepath.Join(repo, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}

	list := mustRun(t, repo, "sell", "list")
	for _, want := range []string{"NAME", "weather", "qwen", "0.001 USDC/request", "0.5 USDC/Mtok", "base-sepolia"} {
		if !strings.Contains(list.out, want) {
			t.Errorf("sell list lacks %q:\n%s", want, list.out)
		}
	}
	var asJSON struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct{ Type string }
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, repo, "sell", "list", "-o", "json").out), &asJSON); err != nil {
		t.Fatal(err)
	}
	if len(asJSON.Items) != 2 || asJSON.Items[0].Metadata.Name != "qwen" || asJSON.Items[1].Spec.Type != "http" {
		t.Errorf("sell list -o json: %+v", asJSON.Items)
	}
	if out := mustRun(t, repo, "sell", "list", "-o", "yaml").out; !strings.Contains(out, "name: weather") {
		t.Errorf("sell list -o yaml:\n%s", out)
	}

	// A dry run prints the diff, exits 1, and writes nothing.
	before := treeHash(t, repo)
	dry := obolCLI(t, repo, author, "sell", "update", "weather", "--per-request", "0.002", "--dry-run")
	if dry.code != 1 || !strings.Contains(dry.out, `-      perRequest: "0.001"`) || !strings.Contains(dry.out, `+      perRequest: "0.002"`) {
		t.Fatalf("dry run: exit %d\n%s%s", dry.code, dry.out, dry.err)
	}
	if treeHash(t, repo) != before {
		t.Fatal("a dry run changed the repo")
	}
	mustRun(t, repo, "sell", "update", "weather", "--per-request", "0.002")
	checkRepo(t, repo)
	show := mustRun(t, repo, "sell", "show", "weather")
	if !strings.Contains(show.out, `perRequest: "0.002"`) || !strings.Contains(show.out, "service: weather-api") {
		t.Errorf("sell show after update:\n%s", show.out)
	}
	// The same update again changes nothing: no commit, exit 0; its dry run exits 0.
	headBefore := gitCLI(t, repo, "rev-parse", "HEAD")
	if r := obolCLI(t, repo, author, "sell", "update", "weather", "--per-request", "0.002", "--dry-run"); r.code != 0 || r.out != "" {
		t.Fatalf("no-op dry run: exit %d, out %q", r.code, r.out)
	}
	mustRun(t, repo, "sell", "update", "weather", "--per-request", "0.002")
	if gitCLI(t, repo, "rev-parse", "HEAD") != headBefore {
		t.Fatal("an update that changes nothing made a commit")
	}

	mustRun(t, repo, "render", "--check")
	if r := mustRun(t, repo, "render"); !strings.Contains(r.out, "up to date") {
		t.Errorf("render on a fresh repo: %q", r.err)
	}
	mustRun(t, repo, "validate")

	mustRun(t, repo, "sell", "delete", "qwen")
	checkRepo(t, repo)
	if _, err := os.Stat(filepath.Join(repo, "applications/sell-inference/qwen")); !os.IsNotExist(err) {
		t.Fatalf("the deleted slice is still in the work tree: %v", err)
	}

	log := gitCLI(t, repo, "log", "--format=%an <%ae>|%s")
	want := []string{
		"Test Seller <seller@example.com>|sell inference qwen: delete",
		"Test Seller <seller@example.com>|sell http weather: update",
		"Test Seller <seller@example.com>|sell inference qwen: create",
		"Test Seller <seller@example.com>|sell http weather: create",
		"Test Seller <seller@example.com>|stack init: dev",
	}
	if got := strings.Split(strings.TrimSpace(log), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("git log:\n%s\nwant:\n%s", log, strings.Join(want, "\n"))
	}
}

func TestAuthorFlag(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "a", "--upstream", "svc", "--per-request", "1", "--pay-to", payTo, "--author", "Ada Lovelace <ada@example.com>")
	if got := gitCLI(t, repo, "log", "-1", "--format=%an <%ae>"); strings.TrimSpace(got) != "Ada Lovelace <ada@example.com>" {
		t.Fatalf("author: %q", got)
	}
}

func TestPayToFromEnvironment(t *testing.T) {
	repo := newStack(t)
	env := map[string]string{"X402_WALLET": payTo}
	if r := obolCLI(t, repo, env, "sell", "http", "a", "--upstream", "svc", "--per-request", "1"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	if out := mustRun(t, repo, "sell", "show", "a").out; !strings.Contains(out, payTo) {
		t.Fatalf("X402_WALLET was not used:\n%s", out)
	}
}

func TestInitRefusesExistingRepo(t *testing.T) {
	repo := newStack(t)
	before := treeHash(t, repo)
	r := obolCLI(t, repo, author, "stack", "init", "--stack", "dev")
	if r.code != 2 || !strings.Contains(r.err, "already exists") {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	if treeHash(t, repo) != before {
		t.Fatal("a refused init changed the repo")
	}
}

func TestNoRepo(t *testing.T) {
	r := obolCLI(t, filepath.Join(t.TempDir(), "none"), author, "sell", "list")
	if r.code != 2 || !strings.Contains(r.err, "obol stack init") {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
}

func TestInitDryRun(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "stack")
	r := obolCLI(t, repo, author, "stack", "init", "--stack", "dev", "--dry-run")
	if r.code != 1 || !strings.Contains(r.out, "+++ b/clusters/dev/flux-system/gotk-sync.yaml") || !strings.Contains(r.out, "+  name: dev") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Fatalf("a dry run created %s: %v", repo, err)
	}
}

// N concurrent `obol sell` give N commits: the lock and the ref compare-and-swap lose none.
func TestConcurrentSells(t *testing.T) {
	repo := newStack(t)
	const n = 12
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			r := obolCLI(t, repo, author, "sell", "http", fmt.Sprintf("c%02d", i), "--upstream", "svc", "--per-request", "0.001", "--pay-to", payTo)
			if r.code != 0 {
				errs <- r.err
				return
			}
			errs <- ""
		}(i)
	}
	for i := 0; i < n; i++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	checkRepo(t, repo)
	if got := strings.Count(gitCLI(t, repo, "log", "--format=%s"), ": create"); got != n {
		t.Fatalf("%d create commits, want %d", got, n)
	}
	list := mustRun(t, repo, "sell", "list", "-o", "json").out
	for i := 0; i < n; i++ {
		if !strings.Contains(list, fmt.Sprintf(`"c%02d"`, i)) {
			t.Errorf("offer c%02d lost", i)
		}
	}
}
