package main_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

// build builds cmd/name into dir with ldflags.
func build(t *testing.T, dir, name, ldflags string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", out, "github.com/obol/obol/cmd/"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

type result struct {
	out, err string
	code     int
}

func run(t *testing.T, bin, repo string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// PATH without any other obol-full: only the one beside bin may be found.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "OBOL_REPO=" + repo,
		"GIT_AUTHOR_NAME=Test Seller", "GIT_AUTHOR_EMAIL=seller@example.com", "GIT_CONFIG_NOSYSTEM=1"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return result{out.String(), errOut.String(), code}
}

const setVersion = "-X github.com/obol/obol/internal/cmd/version.Version="

// TestBinaries runs obol as a user installs it: beside obol-full, without it, and beside an
// obol-full of another version.
func TestBinaries(t *testing.T) {
	install := t.TempDir()
	obol := build(t, install, "obol", setVersion+"v1.2.3")
	repo := filepath.Join(t.TempDir(), "stack")
	sell := []string{"sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"}

	// Without obol-full: obol's own commands work; the others say what is missing and write nothing.
	if r := run(t, obol, repo, "--version"); r.code != 0 || r.out != "obol version v1.2.3\n" {
		t.Errorf("--version alone: exit %d %q %q", r.code, r.out, r.err)
	}
	r := run(t, obol, repo, "stack", "init", "--stack", "dev")
	if r.code != 2 || !strings.Contains(r.err, "obol-full") || !strings.Contains(r.err, "make build") {
		t.Errorf("stack init without obol-full: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Errorf("stack init without obol-full wrote %s (%v)", repo, err)
	}

	// Beside an obol-full of another version: refused, nothing written.
	build(t, install, "obol-full", setVersion+"v1.2.2")
	r = run(t, obol, repo, "stack", "init", "--stack", "dev")
	if r.code != 2 || !strings.Contains(r.err, "v1.2.3") || !strings.Contains(r.err, "v1.2.2") {
		t.Errorf("stack init with a stale obol-full: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Errorf("stack init with a stale obol-full wrote %s (%v)", repo, err)
	}

	// Installed together: every command, exit codes and streams as obol-full gives them.
	full := build(t, install, "obol-full", setVersion+"v1.2.3")
	for _, args := range [][]string{{"stack", "init", "--stack", "dev"}, sell} {
		if r := run(t, obol, repo, args...); r.code != 0 {
			t.Fatalf("obol %v: exit %d\n%s%s", args, r.code, r.out, r.err)
		}
	}
	if r := run(t, obol, repo, "sell", "list"); r.code != 0 || !strings.Contains(r.out, "weather") {
		t.Errorf("sell list: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := run(t, obol, repo, sell...); r.code != 0 || !strings.Contains(r.err+r.out, "no change") {
		t.Errorf("sell again: exit %d\n%s%s", r.code, r.out, r.err)
	}
	dry := append(append([]string{}, sell...), "--dry-run")
	dry[2] = "wind"
	if r := run(t, obol, repo, dry...); r.code != 1 || !strings.Contains(r.out, "applications/sell-http/wind/") {
		t.Errorf("dry run of a new offer (exit 1: a diff): exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := run(t, obol, repo, "sell", "show", "nosuch"); r.code != 2 || !strings.Contains(r.err, "nosuch") {
		t.Errorf("sell show nosuch: exit %d\n%s%s", r.code, r.out, r.err)
	}
	// Help is the full CLI's, so it lists every command.
	if r := run(t, obol, repo, "--help"); r.code != 0 || !strings.Contains(r.out, "stack") || !strings.Contains(r.out, "validate") {
		t.Errorf("--help: exit %d\n%s%s", r.code, r.out, r.err)
	}
	// obol-full alone is the whole CLI.
	if r := run(t, full, repo, "sell", "list", "-o", "json"); r.code != 0 || !strings.Contains(r.out, `"weather"`) {
		t.Errorf("obol-full sell list: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := run(t, obol, repo, "__complete", "sell", "delete", "we"); r.code != 0 || !strings.HasPrefix(r.out, "weather\thttp\n") {
		t.Errorf("completion: exit %d\n%s%s", r.code, r.out, r.err)
	}
}
