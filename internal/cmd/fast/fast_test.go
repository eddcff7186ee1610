package fast_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/obol/obol"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/fast"
	"github.com/obol/obol/internal/cmd/root"
	"github.com/obol/obol/internal/cmd/version"
)

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

type result struct {
	out, err string
	code     int
}

// factory is the environment both trees run in: the same repo, identity and clock.
func factory(repo string, out, errOut *bytes.Buffer) *cmdutil.Factory {
	env := map[string]string{"OBOL_REPO": repo, "GIT_AUTHOR_NAME": "Test Seller", "GIT_AUTHOR_EMAIL": "seller@example.com"}
	return &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Secrets: root.Secrets,
		Assets:  obol.Assets(),
		Getenv:  func(k string) string { return env[k] },
		Getwd:   func() (string, error) { return "/", nil },
		Now:     func() time.Time { return time.Unix(1_780_000_000, 0) },
	}
}

func full(repo string, args ...string) result {
	var out, errOut bytes.Buffer
	code := root.Run(context.Background(), factory(repo, &out, &errOut), args)
	return result{out.String(), errOut.String(), code}
}

func quick(repo string, args ...string) result {
	var out, errOut bytes.Buffer
	f := factory(repo, &out, &errOut)
	// What cmd/obol gives it: no assets, no secret scanner.
	f.Assets, f.Secrets = nil, nil
	code := fast.Run(context.Background(), f, args)
	return result{out.String(), errOut.String(), code}
}

// stack is a stack repo with an http and an inference offer, and one whose offer.yaml a hand
// edit broke (sell list lists the others and exits 1).
func stack(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "stack")
	for _, args := range [][]string{
		{"stack", "init", "--stack", "dev"},
		{"sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
			"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"},
		{"sell", "http", "wind", "--upstream", "wind-api", "--namespace", "apps", "--port", "8080",
			"--per-request", "0.002", "--pay-to", payTo, "--chain", "base-sepolia"},
		{"sell", "inference", "qwen", "--model", "qwen3:8b", "--upstream-url", "http://ollama.llm.svc:11434",
			"--per-mtok", "0.5", "--pay-to", payTo, "--chain", "base-sepolia"},
	} {
		if r := full(repo, args...); r.code != 0 {
			t.Fatalf("obol %v: exit %d\n%s%s", args, r.code, r.out, r.err)
		}
	}
	return repo
}

// TestSameAsFull: what obol answers itself, it answers exactly as the full CLI does (stdout,
// stderr and exit code), so which binary ran is invisible.
func TestSameAsFull(t *testing.T) {
	repo := stack(t)
	cases := [][]string{
		{"--version"},
		{"version"},
		{"version", "-o", "json"},
		{"version", "-o", "xml"},
		{"sell", "list"},
		{"sell", "ls", "-o", "json"},
		{"sell", "list", "-o", "yaml"},
		{"sell", "list", "--output=wide"},
		{"sell", "list", "extra"},
		{"--repo", repo, "sell", "list"},
		{"sell", "list", "--repo", filepath.Join(repo, "nope")},
		{"__complete", "sell", "update", ""},
		{"__complete", "sell", "delete", "w"},
		{"__completeNoDesc", "sell", "show", ""},
		{"__complete", "log", "q"},
		{"__complete", "rollback", ""},
		{"__complete", "gateway", "config", "wea"},
		{"__complete", "--repo", repo, "sell", "show", ""},
		{"__complete", "sell", "list", "-o", ""},
		{"__complete", "sell", "list", "--"},
		{"__complete", "version", "-o", "j"},
	}
	for _, args := range cases {
		if !fast.Handles(args) {
			t.Errorf("Handles(%q) = false: obol would start the full CLI for it", args)
			continue
		}
		want, got := full(repo, args...), quick(repo, args...)
		if got != want {
			t.Errorf("obol %q:\nfast: exit %d\n%s%s\nfull: exit %d\n%s%s", args, got.code, got.out, got.err, want.code, want.out, want.err)
		}
	}
	// The completions are the offers, not nothing: the comparison above compares something.
	if r := quick(repo, "__complete", "sell", "update", "w"); !strings.Contains(r.out, "weather\thttp") || !strings.Contains(r.out, "wind\thttp") || strings.Contains(r.out, "qwen") {
		t.Errorf("completion of w: %q", r.out)
	}
	// A broken offer.yaml: listed as not readable, exit 1, the same in both.
	brokenPath := filepath.Join(repo, "applications", "sell-http", "wind", "offer.yaml")
	if err := os.WriteFile(brokenPath, []byte("spec: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git := exec.Command("git", "-C", repo, "commit", "-qam", "break wind")
	git.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := git.CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v\n%s", err, out)
	}
	want, got := full(repo, "sell", "list"), quick(repo, "sell", "list")
	if got != want || got.code != cmdutil.ExitDiff || !strings.Contains(got.err, "wind") {
		t.Errorf("broken offer:\nfast: exit %d\n%s%s\nfull: exit %d\n%s%s", got.code, got.out, got.err, want.code, want.out, want.err)
	}
}

// TestHandles: obol answers only what it can answer exactly; everything else, help included,
// goes to the full CLI.
func TestHandles(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--version"}, true},
		{[]string{"version", "-o", "json"}, true},
		{[]string{"sell", "list"}, true},
		{[]string{"sell", "ls"}, true},
		{[]string{"--repo", "/x", "sell", "list", "-o", "json"}, true},
		{[]string{"__complete", "sell", "update", ""}, true},
		{[]string{"__complete", "--repo=/x", "sell", "update", "a"}, true},

		{nil, false},
		{[]string{"--version", "--repo", "/x"}, false},
		{[]string{"sell", "list", "--help"}, false},
		{[]string{"sell", "list", "-h"}, false},
		{[]string{"help", "sell", "list"}, false},
		{[]string{"sell"}, false},
		{[]string{"sell", "http", "x"}, false},
		{[]string{"sell", "show", "x"}, false},
		{[]string{"sell", "update", "x", "--port", "80"}, false},
		{[]string{"stack", "up"}, false},
		{[]string{"completion", "bash"}, false},
		{[]string{"nosuch"}, false},
		{[]string{"__complete"}, false},
		{[]string{"__complete", ""}, false},
		{[]string{"__complete", "sell", ""}, false},
		{[]string{"__complete", "sell", "update", "--"}, false},
		{[]string{"__complete", "sell", "update", "--chain", ""}, false},
		{[]string{"__complete", "sell", "update", "x", ""}, false},
		{[]string{"__complete", "sell", "http", ""}, false},
		{[]string{"__complete", "stack", "up", "--engine", ""}, false},
	} {
		if got := fast.Handles(c.args); got != c.want {
			t.Errorf("Handles(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

// TestOfferNameCommands: every command of the full tree that completes offer names is one obol
// completes itself, and no other.
func TestOfferNameCommands(t *testing.T) {
	f := factory(t.TempDir(), &bytes.Buffer{}, &bytes.Buffer{})
	completeOffers := reflect.ValueOf(f.CompleteOffers).Pointer()
	var found [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.ValidArgsFunction != nil && reflect.ValueOf(c.ValidArgsFunction).Pointer() == completeOffers {
			found = append(found, path)
		}
		for _, sub := range c.Commands() {
			walk(sub, append(slices.Clone(path), sub.Name()))
		}
	}
	walk(root.NewCmdRoot(f), nil)
	key := func(p []string) string { return strings.Join(p, " ") }
	var got, want []string
	for _, p := range found {
		got = append(got, key(p))
	}
	for _, p := range fast.OfferNameCommands {
		want = append(want, key(p))
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(got) == 0 || !slices.Equal(got, want) {
		t.Errorf("commands completing offer names: full tree %q, fast.OfferNameCommands %q", got, want)
	}
}

// TestLinksNoHeavyLibrary: the point of cmd/obol is what it does not link.
func TestLinksNoHeavyLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/obol/obol/cmd/obol").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	heavy := []string{
		"k8s.io/client-go/", "helm.sh/helm/", "sigs.k8s.io/kustomize/api/", "sigs.k8s.io/controller-runtime/",
		"k8s.io/kubectl/", "github.com/google/cel-go/", "github.com/santhosh-tekuri/jsonschema/",
		"github.com/zricethezav/gitleaks/", "github.com/go-git/go-git/v5/plumbing/transport/",
		"github.com/obol/obol/internal/cmd/root", "github.com/obol/obol/internal/cmd/writer",
		"github.com/obol/obol/internal/render", "github.com/obol/obol/internal/secretscan",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, h := range heavy {
			// "x/" is x and everything under it; "x" is x alone.
			if dep == strings.TrimSuffix(h, "/") || strings.HasSuffix(h, "/") && strings.HasPrefix(dep, h) {
				t.Errorf("cmd/obol links %s", dep)
			}
		}
	}
}

func TestFullPath(t *testing.T) {
	install := t.TempDir()
	obolPath := filepath.Join(install, "obol")
	fullPath := filepath.Join(install, fast.FullName)
	for _, p := range []string{obolPath, fullPath} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	noPath := func(string) (string, error) { return "", exec.ErrNotFound }
	if got, err := fast.FullPath(obolPath, noPath); err != nil || got != fullPath {
		t.Errorf("beside obol: %q, %v", got, err)
	}
	// obol linked from elsewhere (~/bin/obol -> /opt/obol/bin/obol) uses its own install's.
	link := filepath.Join(t.TempDir(), "obol")
	if err := os.Symlink(obolPath, link); err != nil {
		t.Fatal(err)
	}
	if got, err := fast.FullPath(link, noPath); err != nil || got != fullPath {
		t.Errorf("through a symlink: %q, %v", got, err)
	}
	// Not beside obol: PATH.
	alone := filepath.Join(t.TempDir(), "obol")
	onPath := func(name string) (string, error) { return "/usr/lib/obol/" + name, nil }
	if got, err := fast.FullPath(alone, onPath); err != nil || got != "/usr/lib/obol/obol-full" {
		t.Errorf("on PATH: %q, %v", got, err)
	}
	// Nowhere: the error says what is missing and how to install it.
	_, err := fast.FullPath(alone, noPath)
	if err == nil || !strings.Contains(err.Error(), "obol-full") || !strings.Contains(err.Error(), "make build") || !strings.Contains(err.Error(), alone) {
		t.Errorf("missing obol-full: %v", err)
	}
	// A file that is not executable is not it.
	if err := os.Chmod(fullPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fast.FullPath(obolPath, noPath); err == nil {
		t.Error("a non-executable obol-full was taken")
	}
}

func TestCheckFrontend(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == fast.VersionEnv {
				return v
			}
			return ""
		}
	}
	if err := fast.CheckFrontend(env("")); err != nil {
		t.Errorf("run directly: %v", err)
	}
	if err := fast.CheckFrontend(env(version.Version)); err != nil {
		t.Errorf("same version: %v", err)
	}
	err := fast.CheckFrontend(env("v9.9.9"))
	if err == nil || !strings.Contains(err.Error(), "v9.9.9") || !strings.Contains(err.Error(), version.Version) {
		t.Errorf("other version: %v", err)
	}
}

// TestNoScannerNoWrite: a Factory without a secret scanner (cmd/obol's) fails closed: a write
// is refused, not committed unscanned.
func TestNoScannerNoWrite(t *testing.T) {
	repo := stack(t)
	head := func() string {
		out, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	before := head()
	var out, errOut bytes.Buffer
	f := factory(repo, &out, &errOut)
	f.Secrets = nil
	code := root.Run(context.Background(), f, []string{"sell", "update", "weather", "--per-request", "0.5"})
	if code != cmdutil.ExitFailure || !strings.Contains(errOut.String(), "secret scanner") || head() != before {
		t.Errorf("write without a scanner: exit %d, head moved %v\n%s", code, head() != before, errOut.String())
	}
}
