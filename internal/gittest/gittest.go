// Package gittest runs real git servers on loopback for tests.
//
// obol's team-shared stack repositories are fetched and pushed by many
// clones over smart HTTP and SSH. A fake in-process server would only prove
// that obol agrees with the fake, so the helpers here put the real git
// programs behind the wire instead: StartHTTP serves repositories with
// `git http-backend` (through net/http/cgi) and StartSSH runs
// `git-upload-pack` / `git-receive-pack` for "exec" requests arriving at an
// SSH server built on golang.org/x/crypto/ssh, the way sshd would. Every
// listener is bound to 127.0.0.1 and is shut down by t.Cleanup.
//
// Git, TryGit, InitBare and Fsck drive the git CLI with a clean, fixed
// environment so results do not depend on the developer's ~/.gitconfig.
package gittest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Identity used for every commit made through Git and TryGit, so that test
// output does not depend on who runs the tests.
const (
	AuthorName  = "Obol Test"
	AuthorEmail = "test@obol.invalid"
)

// gitTimeout bounds a single git invocation so a wedged server fails the test
// instead of hanging the whole package until go test's global timeout.
const gitTimeout = 2 * time.Minute

// gitEnv returns the process environment with every GIT_* variable and
// anything else that could inject user configuration, prompts or a
// translated message catalogue removed, followed by the fixed settings and
// then extra (later entries win in os/exec).
func gitEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "GIT_"),
			strings.HasPrefix(k, "LC_"),
			k == "LANG", k == "LANGUAGE",
			k == "SSH_ASKPASS", k == "SSH_ASKPASS_REQUIRE",
			k == "EMAIL", k == "XDG_CONFIG_HOME":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME="+AuthorName,
		"GIT_AUTHOR_EMAIL="+AuthorEmail,
		"GIT_COMMITTER_NAME="+AuthorName,
		"GIT_COMMITTER_EMAIL="+AuthorEmail,
		"GIT_TERMINAL_PROMPT=0",
		// English messages, so tests may match "non-fast-forward" etc.
		"LC_ALL=C",
	)
	return append(env, extra...)
}

// TryGit is Git for commands that are expected to fail, or that run on a
// goroutine other than the test's (where t.Fatal must not be called): it
// returns trimmed stdout, the full stderr and the exit error instead of
// failing the test.
func TryGit(t testing.TB, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(env)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, gitTimeout)
	}
	return strings.TrimSpace(out.String()), errb.String(), err
}

// Git runs the git CLI in dir with a clean, deterministic environment (no
// user or system config: GIT_CONFIG_GLOBAL=/dev/null, GIT_CONFIG_NOSYSTEM=1;
// fixed author/committer name and email; GIT_TERMINAL_PROMPT=0; LC_ALL=C)
// plus the extra env entries ("KEY=value", overriding the defaults), so a
// test sees what a fresh user sees. It fails the test with git's stderr on
// error and returns trimmed stdout. An empty dir means the test's working
// directory; pass an explicit one. Call it only from the test goroutine; use
// TryGit elsewhere.
func Git(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	out, stderr, err := TryGit(t, dir, env, args...)
	if err != nil {
		t.Fatalf("git %s (in %s): %v\nstderr:\n%s", strings.Join(args, " "), dir, err, stderr)
	}
	return out
}

// InitBare creates a bare repository named name (e.g. "stack.git"; it may
// contain slashes) under root with `git init --bare -b <branch>` and
// http.receivepack=true so smart-HTTP pushes are allowed even for requests
// without REMOTE_USER, and returns its path. root is typically t.TempDir().
func InitBare(t testing.TB, root, name, branch string) string {
	t.Helper()
	if !filepath.IsLocal(name) {
		t.Fatalf("gittest.InitBare: name %q must be a relative path inside root", name)
	}
	path := filepath.Join(root, name)
	Git(t, root, nil, "init", "--quiet", "--bare", "-b", branch, path)
	Git(t, path, nil, "config", "http.receivepack", "true")
	return path
}

// Fsck runs `git fsck --strict --no-dangling` on the repository at dir (work
// tree or bare) and fails the test on a non-zero exit or any output other
// than git's "notice:" lines (an empty repository reports "notice: HEAD
// points to an unborn branch"), so corrupt or non-canonical objects written
// by a client under test are caught.
func Fsck(t testing.TB, dir string) {
	t.Helper()
	out, stderr, err := TryGit(t, dir, nil, "fsck", "--strict", "--no-dangling", "--no-progress")
	var bad []string
	for _, line := range strings.Split(out+"\n"+stderr, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "notice:") {
			bad = append(bad, line)
		}
	}
	if err != nil || len(bad) > 0 {
		t.Fatalf("git fsck --strict in %s: err=%v\n%s", dir, err, strings.Join(bad, "\n"))
	}
}

// tlog forwards server-side diagnostics to t.Logf until the server's
// cleanup has finished; logging after the test completes would panic.
type tlog struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	done   bool
}

func newTlog(t testing.TB, prefix string) *tlog {
	return &tlog{t: t, prefix: prefix}
}

func (l *tlog) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf(l.prefix+format, args...)
	}
}

// Write makes tlog usable as an io.Writer (CGI stderr, log.Logger).
func (l *tlog) Write(p []byte) (int, error) {
	l.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *tlog) stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}
