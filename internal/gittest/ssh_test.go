package gittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func needSSH(t *testing.T) {
	t.Helper()
	needGit(t)
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("ssh client not installed")
	}
}

func sshEnv(s *SSHServer) []string {
	return []string{"GIT_SSH_COMMAND=" + s.GitSSHCommand()}
}

func TestSSHGitCLI(t *testing.T) {
	needSSH(t)
	t.Parallel()
	root := t.TempDir()
	bare := InitBare(t, root, "stack.git", "main")
	srv := StartSSH(t, root)
	if !strings.HasPrefix(srv.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want loopback", srv.Addr)
	}
	if got, want := srv.RepoURL("stack.git"), "ssh://git@"+srv.Addr+"/stack.git"; got != want {
		t.Fatalf("RepoURL = %q, want %q", got, want)
	}
	if fi, err := os.Stat(srv.ClientKeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ClientKeyFile: %v %v", fi.Mode(), err)
	}
	exerciseRemote(t, bare, srv.RepoURL("stack.git"), sshEnv(srv))
	if srv.Pushes.Load() < 4 {
		t.Errorf("Pushes = %d, want >= 4", srv.Pushes.Load())
	}
	if v := protocolVersion(t, srv.RepoURL("stack.git"), sshEnv(srv)); v != "2" {
		t.Errorf("git over SSH negotiated protocol v%s, want v2", v)
	}

	// The scp-like form (no leading slash on the wire), with the port
	// given to ssh since scp-like URLs cannot carry one.
	_, port, _ := strings.Cut(srv.Addr, ":")
	scpEnv := []string{"GIT_SSH_COMMAND=" + srv.GitSSHCommand() + " -p " + port}
	head := Git(t, bare, nil, "rev-parse", "main")
	for _, u := range []string{"git@127.0.0.1:stack.git", "git@127.0.0.1:/stack.git", "git@127.0.0.1:stack", "ssh://git@" + srv.Addr + "/~/stack.git"} {
		env := scpEnv
		if strings.HasPrefix(u, "ssh://") {
			env = sshEnv(srv)
		}
		if got := Git(t, t.TempDir(), env, "ls-remote", u, "refs/heads/main"); !strings.HasPrefix(got, head) {
			t.Errorf("ls-remote %s = %q, want %s", u, got, head)
		}
	}
	dst := filepath.Join(t.TempDir(), "scp")
	Git(t, t.TempDir(), scpEnv, "clone", "-q", "git@127.0.0.1:stack.git", dst)
	commitFile(t, dst, "scp.txt", "scp\n", "via scp-like url")
	Git(t, dst, scpEnv, "push", "-q", "origin", "main")
	if got, want := Git(t, bare, nil, "rev-parse", "main"), Git(t, dst, nil, "rev-parse", "HEAD"); got != want {
		t.Errorf("server main = %s, want %s", got, want)
	}
	Fsck(t, bare)
}

func TestSSHWrongKey(t *testing.T) {
	needSSH(t)
	t.Parallel()
	root := t.TempDir()
	InitBare(t, root, "stack.git", "main")
	srv := StartSSH(t, root)

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "other")
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(t.TempDir(), "other_ed25519")
	if err := os.WriteFile(otherKey, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := strings.Replace(srv.GitSSHCommand(), "-i "+shellQuote(srv.ClientKeyFile), "-i "+shellQuote(otherKey), 1)
	if cmd == srv.GitSSHCommand() {
		t.Fatalf("could not swap the key in %q", cmd)
	}
	env := []string{"GIT_SSH_COMMAND=" + cmd}
	_, stderr, err := TryGit(t, t.TempDir(), env, "ls-remote", srv.RepoURL("stack.git"))
	if err == nil {
		t.Fatalf("unknown key accepted")
	}
	t.Logf("wrong key:\n%s", stderr)
	if !strings.Contains(stderr, "Permission denied (publickey)") {
		t.Errorf("wrong key stderr: %s", stderr)
	}
	if srv.Sessions.Load() != 0 {
		t.Errorf("a git process ran for an unauthenticated client")
	}

	// A host key other than the one in known_hosts is refused by the
	// client (strict checking).
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, err := ssh.NewPublicKey(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	badKH := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(badKH, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, sshPub)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongHost := strings.Replace(srv.GitSSHCommand(), shellQuote("UserKnownHostsFile="+srv.KnownHostsFile), shellQuote("UserKnownHostsFile="+badKH), 1)
	_, stderr, err = TryGit(t, t.TempDir(), []string{"GIT_SSH_COMMAND=" + wrongHost}, "ls-remote", srv.RepoURL("stack.git"))
	if err == nil || !strings.Contains(stderr, "HOST IDENTIFICATION HAS CHANGED") {
		t.Errorf("wrong host key: err=%v\n%s", err, stderr)
	}
	t.Logf("wrong host key:\n%s", stderr)

	// Authorize lets the second key in.
	signer, _ := ssh.NewSignerFromKey(priv)
	srv.Authorize(signer.PublicKey())
	Git(t, t.TempDir(), env, "ls-remote", srv.RepoURL("stack.git"))
}

func TestSSHRefusesEscapes(t *testing.T) {
	needSSH(t)
	t.Parallel()
	root := t.TempDir()
	InitBare(t, root, "stack.git", "main")
	outside := InitBare(t, t.TempDir(), "outside.git", "main")
	if err := os.Symlink(outside, filepath.Join(root, "link.git")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "stack.git"), filepath.Join(root, "alias.git")); err != nil {
		t.Fatal(err)
	}
	srv := StartSSH(t, root)
	env := sshEnv(srv)

	for _, tc := range []struct{ url, want string }{
		{"ssh://git@" + srv.Addr + "/../x.git", "escapes the served root"},
		{"ssh://git@" + srv.Addr + "/stack.git/../../x.git", "escapes the served root"},
		{srv.RepoURL(outside), "not found"},
		{srv.RepoURL("link.git"), "resolves outside the served root"},
		{srv.RepoURL("nope.git"), "not found"},
	} {
		_, stderr, err := TryGit(t, t.TempDir(), env, "ls-remote", tc.url)
		if err == nil {
			t.Errorf("ls-remote %s succeeded", tc.url)
			continue
		}
		t.Logf("ls-remote %s:\n%s", tc.url, stderr)
		if !strings.Contains(stderr, "gittest: ") || !strings.Contains(stderr, tc.want) {
			t.Errorf("ls-remote %s stderr lacks %q:\n%s", tc.url, tc.want, stderr)
		}
	}
	// Pushing out of root is refused the same way.
	wt := filepath.Join(t.TempDir(), "wt")
	Git(t, "", nil, "init", "-q", "-b", "main", wt)
	commitFile(t, wt, "f", "f\n", "f")
	if _, stderr, err := TryGit(t, wt, env, "push", srv.RepoURL("link.git"), "main"); err == nil || !strings.Contains(stderr, "outside the served root") {
		t.Errorf("push through symlink: err=%v\n%s", err, stderr)
	}
	if n := Git(t, outside, nil, "for-each-ref"); n != "" {
		t.Errorf("outside repository was written: %s", n)
	}
	if srv.Sessions.Load() != 0 {
		t.Errorf("Sessions = %d, want 0", srv.Sessions.Load())
	}
	// A symlink that stays inside root is fine.
	Git(t, t.TempDir(), env, "ls-remote", srv.RepoURL("alias.git"))
}

func dialSSH(t *testing.T, s *SSHServer) *ssh.Client {
	t.Helper()
	c, err := dial(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dial connects as the server's client key, verifying the host key through
// KnownHostsFile.
func dial(s *SSHServer) (*ssh.Client, error) {
	hk, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User:            "git",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientSigner)},
		HostKeyCallback: hk,
	})
}

// runSSH execs command over a fresh session with stdin and returns stdout,
// stderr and the exit status.
func runSSH(t *testing.T, c *ssh.Client, command, stdin string, env map[string]string) (string, string, int) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for k, v := range env {
		if err := sess.Setenv(k, v); err != nil {
			t.Fatalf("setenv %s: %v", k, err)
		}
	}
	var out, errb bytes.Buffer
	sess.Stdout, sess.Stderr, sess.Stdin = &out, &errb, strings.NewReader(stdin)
	err = sess.Run(command)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitStatus()
	default:
		t.Fatalf("run %q: %v", command, err)
		return "", "", -1
	}
}

func TestSSHExecProtocol(t *testing.T) {
	needGit(t)
	t.Parallel()
	root := t.TempDir()
	bare := InitBare(t, root, "stack.git", "main")
	wt := filepath.Join(t.TempDir(), "wt")
	Git(t, "", nil, "init", "-q", "-b", "main", wt)
	head := commitFile(t, wt, "f", "f\n", "f")
	Git(t, wt, nil, "push", "-q", bare, "main")
	srv := StartSSH(t, root)
	c := dialSSH(t, srv)

	// Protocol v0: the ref advertisement, then the client's flush ends it.
	for _, cmd := range []string{
		`git-upload-pack '/stack.git'`, `git-upload-pack 'stack.git'`,
		`git-upload-pack stack.git`, `git-upload-pack "/stack.git"`,
		`git-upload-pack '~/stack.git'`, `git-upload-pack '/stack'`,
	} {
		out, stderr, status := runSSH(t, c, cmd, "0000", nil)
		if status != 0 || !strings.Contains(out, head+" HEAD\x00") {
			t.Errorf("%s: status %d, stdout %q, stderr %q", cmd, status, out, stderr)
		}
	}
	// GIT_PROTOCOL is passed through: protocol v2 capability advertisement.
	out, stderr, status := runSSH(t, c, `git-upload-pack '/stack.git'`, "0000", map[string]string{"GIT_PROTOCOL": "version=2"})
	if status != 0 || !strings.HasPrefix(out, "000eversion 2\n") {
		t.Errorf("v2: status %d, stdout %q, stderr %q", status, out, stderr)
	}
	// receive-pack advertises and exits on a flush.
	out, _, status = runSSH(t, c, `git-receive-pack '/stack.git'`, "0000", nil)
	if status != 0 || !strings.Contains(out, head+" refs/heads/main\x00") || !strings.Contains(out, "report-status") {
		t.Errorf("receive-pack: status %d, stdout %q", status, out)
	}
	// Other environment variables are refused, like sshd without AcceptEnv.
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Setenv("LD_PRELOAD", "/tmp/x.so"); err == nil {
		t.Errorf("setenv LD_PRELOAD accepted")
	}
	sess.Close()

	// Everything else: exit status 1 and a message on stderr, no process.
	before := srv.Sessions.Load()
	for _, cmd := range []string{
		"ls /",
		"sh -c 'id'",
		"git upload-pack 'stack.git'",
		"git-upload-pack",
		"git-upload-pack 'stack.git' extra",
		"git-upload-pack 'stack.git'; touch /tmp/gittest-pwned",
		"git-upload-pack $HOME",
		"git-upload-pack '../stack.git'",
		"git-upload-pack '/'",
		"git-upload-pack '" + bare + "'",
		"git-upload-pack '/etc'",
		"git-receive-pack 'nope.git'",
		"git-upload-pack 'unterminated",
	} {
		out, stderr, status := runSSH(t, c, cmd, "", nil)
		if status != 1 || out != "" || !strings.HasPrefix(stderr, "gittest: ") {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want refusal", cmd, status, out, stderr)
		}
	}
	if srv.Sessions.Load() != before {
		t.Errorf("refused commands ran git")
	}
	if srv.Refused.Load() < 13 {
		t.Errorf("Refused = %d", srv.Refused.Load())
	}
	// An interactive shell is refused the same way.
	sess, err = c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	sess.Stderr = &errb
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	var ee *ssh.ExitError
	if err := sess.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 1 || !strings.Contains(errb.String(), "gittest: ") {
		t.Errorf("shell: %v, stderr %q", err, errb.String())
	}
	// A git error from a real repository keeps git's own exit status.
	_, stderr, status = runSSH(t, c, `git-upload-pack '/stack.git'`, "garbage", nil)
	if status == 0 || status == 1 {
		t.Errorf("upload-pack on garbage input: status %d, stderr %q", status, stderr)
	}
}
