package root_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obol/obol"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/root"
)

// obolIn runs obol as a user would in directory wd, with only env set (no OBOL_REPO unless
// given).
func obolIn(wd string, env map[string]string, args ...string) result {
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Secrets: root.Secrets,
		Assets:  obol.Assets(),
		Getenv:  func(k string) string { return env[k] },
		Now:     func() time.Time { return time.Unix(1_780_000_000, 0) },
		Getwd:   func() (string, error) { return wd, nil },
	}
	code := root.Run(context.Background(), f, args)
	return result{out: out.String(), err: errOut.String(), code: code}
}

// The stack repo is found as git finds its repo: --repo, then OBOL_REPO, then the stack the
// current directory is in (from any subdirectory), then the default location; a stack other
// than the one you stand in is named.
func TestRepoDiscovery(t *testing.T) {
	home := t.TempDir()
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "b")
	env := map[string]string{"HOME": home, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com"}
	for _, dir := range []string{a, b} {
		if r := obolIn(home, env, "stack", "init", "--stack", "dev", "--repo", dir); r.code != 0 {
			t.Fatalf("init %s: %s", dir, r.err)
		}
	}
	if r := obolIn(a, env, "sell", "http", "weather", "--upstream", "api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo); r.code != 0 {
		t.Fatalf("sell in a: %s", r.err)
	}
	sub := filepath.Join(a, "applications", "sell-http", "weather")
	for _, tc := range []struct {
		wd         string
		env        map[string]string
		args       []string
		wantOffer  bool
		wantNote   string
		wantErrSub string
	}{
		{wd: a, args: []string{"sell", "list"}, wantOffer: true},
		{wd: sub, args: []string{"sell", "list"}, wantOffer: true},
		{wd: b, args: []string{"sell", "list"}},
		{wd: b, args: []string{"sell", "list", "--repo", a}, wantOffer: true},
		{wd: b, env: map[string]string{"OBOL_REPO": a}, args: []string{"sell", "list"}, wantOffer: true, wantNote: "using the stack repo " + a + " (from OBOL_REPO)"},
		{wd: home, env: map[string]string{"OBOL_REPO": a}, args: []string{"sell", "list"}, wantOffer: true},
		{wd: home, args: []string{"sell", "list"}, wantErrSub: "no stack repo at " + filepath.Join(home, ".local", "share", "obol", "stack"), wantNote: "using the stack repo " + filepath.Join(home, ".local", "share", "obol", "stack") + " (from the default location)"},
	} {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		for k, v := range tc.env {
			e[k] = v
		}
		r := obolIn(tc.wd, e, tc.args...)
		name := tc.wd + " " + strings.Join(tc.args, " ")
		if tc.wantErrSub != "" {
			if r.code == 0 || !strings.Contains(r.err, tc.wantErrSub) {
				t.Errorf("%s: exit %d, want %q\n%s", name, r.code, tc.wantErrSub, r.err)
			}
		} else if r.code != 0 {
			t.Errorf("%s: exit %d\n%s", name, r.code, r.err)
		}
		if got := strings.Contains(r.out, "weather"); got != tc.wantOffer {
			t.Errorf("%s: lists weather %v, want %v\n%s", name, got, tc.wantOffer, r.out)
		}
		if tc.wantNote != "" && !strings.Contains(r.err, tc.wantNote) || tc.wantNote == "" && strings.Contains(r.err, "using the stack repo") {
			t.Errorf("%s: stderr %q, want note %q", name, r.err, tc.wantNote)
		}
	}
	// stack init never takes the stack you stand in for the one to create.
	if r := obolIn(a, env, "stack", "init", "--stack", "dev"); r.code != 0 {
		t.Errorf("init inside a stack (creates the default one): exit %d\n%s", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(home, ".local", "share", "obol", "stack", "obol.yaml")); err != nil {
		t.Errorf("init inside a stack did not create the default stack: %v", err)
	}
}
