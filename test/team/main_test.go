// Package team tests team-shared stack repos the way a team meets them: the obol binary, run
// as separate processes from several clones, against real git servers on loopback (git
// http-backend, and git-upload-pack/git-receive-pack behind an SSH server), checked with the
// git CLI.
package team

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obol/obol/internal/chart/charttest"
)

// obolBin is the obol binary under test, built once by TestMain.
var obolBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "obol-team-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	obolBin = filepath.Join(dir, "obol")
	root, err := charttest.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// obol runs obol-full, installed beside it, for every write.
	for _, name := range []string{"obol", "obol-full"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, out)
			os.Exit(2)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// user is one person's environment: their identity, their clone and their credentials.
type user struct {
	t    testing.TB
	name string
	repo string
	env  []string
}

func newUser(t testing.TB, name string, env ...string) *user {
	home := t.TempDir()
	base := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=" + name,
		"GIT_AUTHOR_EMAIL=" + strings.ToLower(name) + "@team.test",
		"GIT_TERMINAL_PROMPT=0",
		"SSH_AUTH_SOCK=",
	}
	return &user{t: t, name: name, repo: filepath.Join(home, "stack"), env: append(base, env...)}
}

// run runs obol with the user's repo and environment and returns stdout, stderr and the exit code.
func (u *user) run(args ...string) (string, string, int) {
	u.t.Helper()
	cmd := u.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		u.t.Fatalf("run obol %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (u *user) command(args ...string) *exec.Cmd {
	cmd := exec.Command(obolBin, append([]string{"--repo", u.repo}, args...)...)
	cmd.Env = u.env
	return cmd
}

// must runs obol and fails the test unless it exits 0.
func (u *user) must(args ...string) string {
	u.t.Helper()
	out, errOut, code := u.run(args...)
	if code != 0 {
		u.t.Fatalf("%s: obol %s: exit %d\nstdout:\n%s\nstderr:\n%s", u.name, strings.Join(args, " "), code, out, errOut)
	}
	return out + errOut
}

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

func sellArgs(name string, extra ...string) []string {
	return append([]string{"sell", "http", name, "--upstream", name + "-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"}, extra...)
}
