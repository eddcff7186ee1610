package importcmd_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/obol/obol"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/importcmd"
	"github.com/obol/obol/internal/cmd/root"
	"github.com/obol/obol/internal/cmd/stack"
	"github.com/obol/obol/internal/offer"
)

// fixture is the legacy package's predecessor config directory: every store shape, good and bad.
const fixture = "../../legacy/testdata/config"

type result struct {
	out, err string
	code     int
}

// run executes cmd with args as main would, against the stack repo at repo.
func run(t *testing.T, repo string, newCmd func(*cmdutil.Factory) *cobra.Command, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Secrets: root.Secrets,
		Assets:  obol.Assets(),
		Getenv: func(k string) string {
			return map[string]string{
				"OBOL_REPO": repo, "GIT_AUTHOR_NAME": "Test Seller", "GIT_AUTHOR_EMAIL": "seller@example.com",
				"HOME": "/nonexistent",
			}[k]
		},
		Now: func() time.Time { return time.Unix(1_780_000_000, 0) },
	}
	cmd := newCmd(f)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil && !cmdutil.IsSilent(err) {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return result{out: out.String(), err: errOut.String(), code: cmdutil.ExitCode(err)}
}

func importCmd(f *cmdutil.Factory) *cobra.Command { return importcmd.NewCmdImport(f, nil) }

func obolImport(t *testing.T, repo string, args ...string) result {
	t.Helper()
	return run(t, repo, importCmd, args...)
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return string(b)
}

func newStack(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "stack")
	r := run(t, repo, stack.NewCmdStack, "init", "--stack", "dev")
	if r.code != 0 {
		t.Fatalf("stack init: exit %d\n%s%s", r.code, r.out, r.err)
	}
	checkRepo(t, repo)
	return repo
}

func checkRepo(t *testing.T, repo string) {
	t.Helper()
	git(t, repo, "fsck", "--strict", "--no-progress")
	if st := git(t, repo, "status", "--porcelain"); st != "" {
		t.Fatalf("git status is not clean:\n%s", st)
	}
}

func commits(t *testing.T, repo string) []string {
	t.Helper()
	return strings.Split(strings.TrimSpace(git(t, repo, "log", "--format=%s")), "\n")
}

// offers decodes and validates every offer.yaml in the work tree, by name.
func offers(t *testing.T, repo string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(filepath.Join(repo, "applications"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "offer.yaml" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		o, err := offer.Decode(p, b)
		if err != nil {
			t.Errorf("%v", err)
			return nil
		}
		offer.Default(o)
		if err := offer.Validate(o); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		rel, _ := filepath.Rel(repo, filepath.Dir(p))
		out[o.Name] = filepath.ToSlash(rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyFixture copies the named fixture files (relative to the config dir) to a new dir.
func copyFixture(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImportFixture(t *testing.T) {
	repo := newStack(t)
	before := commits(t, repo)

	// A dry run shows the diff on stdout and the report on stderr, and writes nothing.
	dry := obolImport(t, repo, "--from", fixture, "--dry-run")
	if dry.code != cmdutil.ExitDiff {
		t.Fatalf("dry run: exit %d, want 1\n%s%s", dry.code, dry.out, dry.err)
	}
	if !strings.Contains(dry.out, "+++ b/applications/sell-inference/qwen/offer.yaml") {
		t.Errorf("dry run: no diff on stdout:\n%s", dry.out)
	}
	if !strings.Contains(dry.err, "would import 6 offers") || !strings.Contains(dry.err, "6 would be imported") || strings.Contains(dry.err, "imported  ") {
		t.Errorf("dry run report:\n%s", dry.err)
	}
	if got := commits(t, repo); len(got) != len(before) {
		t.Fatalf("dry run committed: %v", got)
	}
	checkRepo(t, repo)

	// Some files are rejected or malformed: the rest is imported, and exit 1 says so.
	r := obolImport(t, repo, "--from", fixture)
	if r.code != cmdutil.ExitDiff {
		t.Fatalf("import: exit %d, want 1\n%s%s", r.code, r.out, r.err)
	}
	got := commits(t, repo)
	if len(got) != len(before)+1 || !strings.HasPrefix(got[0], "import: 6 offers from ") {
		t.Fatalf("commits = %v", got)
	}
	checkRepo(t, repo)
	want := map[string]string{
		"qwen": "applications/sell-inference/qwen", "perreq": "applications/sell-inference/perreq",
		"oldvm": "applications/sell-inference/oldvm", "weather": "applications/sell-http/weather",
		"demo": "applications/sell-http/demo", "drain": "applications/sell-http/drain",
	}
	have := offers(t, repo)
	if len(have) != len(want) {
		t.Errorf("offers = %v, want %v", have, want)
	}
	for n, d := range want {
		if have[n] != d {
			t.Errorf("offer %s at %q, want %q", n, have[n], d)
		}
	}
	for _, s := range []string{
		"6 imported, 0 unchanged, 5 skipped, 4 rejected, 2 malformed, 0 conflicts",
		`metadata.name: "My_API" is not a DNS-1123 label`,
		"deleted_at",
		"agent offer",
		"dropped: no_payment_gate",
		"changed: upstream_url http://localhost:11434",
	} {
		if !strings.Contains(r.out, s) {
			t.Errorf("report lacks %q:\n%s", s, r.out)
		}
	}

	// Twice is once: nothing to commit.
	again := obolImport(t, repo, "--from", fixture)
	if again.code != cmdutil.ExitDiff || !strings.Contains(again.err, "nothing to change") ||
		!strings.Contains(again.out, "0 imported, 6 unchanged") {
		t.Errorf("second import: exit %d\n%s%s", again.code, again.out, again.err)
	}
	if got := commits(t, repo); len(got) != len(before)+1 {
		t.Errorf("second import committed: %v", got)
	}
	// A dry run now: nothing would change, so exit 0 with an empty diff, however many files are
	// rejected; and its report says what would be imported, never "imported".
	dry = obolImport(t, repo, "--from", fixture, "--dry-run")
	if dry.code != 0 || dry.out != "" || !strings.Contains(dry.err, "would not be imported") {
		t.Errorf("dry run with nothing to change: exit %d\n%s%s", dry.code, dry.out, dry.err)
	}
	checkRepo(t, repo)
}

func TestImportCleanIsIdempotent(t *testing.T) {
	repo := newStack(t)
	from := copyFixture(t, "inference/qwen/config.json", "inference/gone/config.json",
		"sell-http/default__weather.yaml", "sell-http/agents__helper.yaml")

	dry := obolImport(t, repo, "--from", from, "--dry-run")
	if dry.code != cmdutil.ExitDiff {
		t.Fatalf("dry run: exit %d\n%s%s", dry.code, dry.out, dry.err)
	}
	n := len(commits(t, repo))
	r := obolImport(t, repo, "--from", from, "--author", "Migrator <m@example.com>")
	if r.code != 0 {
		t.Fatalf("import: exit %d, want 0 (skips do not count)\n%s%s", r.code, r.out, r.err)
	}
	if got := commits(t, repo); len(got) != n+1 || got[0] != "import: 2 offers from "+from {
		t.Fatalf("commits = %v", got)
	}
	if a := git(t, repo, "log", "-1", "--format=%an <%ae>"); strings.TrimSpace(a) != "Migrator <m@example.com>" {
		t.Errorf("author = %q", a)
	}
	checkRepo(t, repo)
	if have := offers(t, repo); len(have) != 2 {
		t.Errorf("offers = %v", have)
	}

	for _, args := range [][]string{{"--from", from}, {"--from", from, "--dry-run"}} {
		again := obolImport(t, repo, args...)
		if again.code != 0 {
			t.Errorf("import %v again: exit %d, want 0\n%s%s", args, again.code, again.out, again.err)
		}
	}
	if !strings.Contains(obolImport(t, repo, "--from", from).err, "nothing to change") {
		t.Error("second import does not say there is nothing to change")
	}
	if got := commits(t, repo); len(got) != n+1 {
		t.Errorf("re-import committed: %v", got)
	}
	checkRepo(t, repo)
}

func TestImportConflict(t *testing.T) {
	repo := newStack(t)
	from := copyFixture(t, "sell-http/default__weather.yaml")
	if r := obolImport(t, repo, "--from", from); r.code != 0 {
		t.Fatalf("import: exit %d\n%s%s", r.code, r.out, r.err)
	}
	n := len(commits(t, repo))
	p := filepath.Join(from, "sell-http/default__weather.yaml")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(b, []byte(`perRequest: "0.001"`), []byte(`perRequest: "0.002"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	r := obolImport(t, repo, "--from", from)
	if r.code != cmdutil.ExitDiff || !strings.Contains(r.out, "conflict") || !strings.Contains(r.out, "with different content") {
		t.Errorf("conflicting import: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if got := commits(t, repo); len(got) != n {
		t.Errorf("conflict committed: %v", got)
	}
	b, _ = os.ReadFile(filepath.Join(repo, "applications/sell-http/weather/offer.yaml"))
	if !bytes.Contains(b, []byte("0.001")) {
		t.Errorf("existing offer changed:\n%s", b)
	}
	checkRepo(t, repo)
}

func TestImportBadFrom(t *testing.T) {
	repo := newStack(t)
	for _, from := range []string{filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		r := obolImport(t, repo, "--from", from)
		if r.code != cmdutil.ExitFailure || !strings.Contains(r.err, from) {
			t.Errorf("--from %s: exit %d\n%s", from, r.code, r.err)
		}
	}
}

func TestImportNoRepo(t *testing.T) {
	r := obolImport(t, filepath.Join(t.TempDir(), "nostack"), "--from", fixture)
	if r.code != cmdutil.ExitFailure || !strings.Contains(r.err, "obol stack init") {
		t.Errorf("no repo: exit %d\n%s", r.code, r.err)
	}
}

func TestDefaultFrom(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OBOL_CONFIG_DIR": "/c", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/c"},
		{map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/obol"},
		{map[string]string{"HOME": "/h"}, "/h/.config/obol"},
		{nil, ""},
	} {
		if got := importcmd.DefaultFrom(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("DefaultFrom(%v) = %q, want %q", c.env, got, c.want)
		}
	}
}
