package team

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/obol/obol/internal/gittest"
)

// TestTeamOverSSH shares a stack over SSH: one member with a key file and known_hosts given
// by flags, one through an ssh agent, both writing at once.
func TestTeamOverSSH(t *testing.T) {
	root := t.TempDir()
	bare := gittest.InitBare(t, root, "stack.git", "main")
	srv := gittest.StartSSH(t, root)
	url := srv.RepoURL("stack.git")

	// An ssh agent holding the same key, on a unix socket, as ssh-agent serves it.
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	keyring := agent.NewKeyring()
	pem, err := os.ReadFile(srv.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParseRawPrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(keyring, c) }()
		}
	}()

	alice := newUser(t, "Alice")
	bob := newUser(t, "Bob", "SSH_KNOWN_HOSTS="+srv.KnownHostsFile)
	bob.env = append(bob.env, "SSH_AUTH_SOCK="+sock) // after newUser's empty SSH_AUTH_SOCK: the last one wins

	// An unknown host key is refused with the fix.
	_, errOut, code := alice.run("stack", "init", "--stack", "team", "--remote", url, "--ssh-key", srv.ClientKeyFile)
	if code != 2 || !strings.Contains(errOut, "ssh-keyscan") {
		t.Fatalf("init against an unknown host: exit %d, want the known_hosts fix:\n%s", code, errOut)
	}
	alice.must("stack", "init", "--stack", "team", "--remote", url, "--ssh-key", srv.ClientKeyFile, "--known-hosts", srv.KnownHostsFile)
	if s := gittest.Git(t, bare, nil, "show", "main:obol.yaml"); !strings.Contains(s, "gitURL: "+url) {
		t.Fatalf("the reconciler does not watch %s:\n%s", url, s)
	}
	bob.must("stack", "join", url)
	alice.env = append(alice.env, "OBOL_SSH_KEY="+srv.ClientKeyFile, "SSH_KNOWN_HOSTS="+srv.KnownHostsFile)
	done := make(chan string, 2)
	for _, u := range []*user{alice, bob} {
		go func() {
			out, errOut, code := u.run(sellArgs(strings.ToLower(u.name))...)
			if code != 0 {
				done <- fmt.Sprintf("%s: exit %d\n%s%s", u.name, code, out, errOut)
				return
			}
			done <- ""
		}()
	}
	for range 2 {
		if msg := <-done; msg != "" {
			t.Fatal(msg)
		}
	}
	if n := gittest.Git(t, bare, nil, "rev-list", "--count", "main"); n != "3" {
		t.Fatalf("remote has %s commits, want 3", n)
	}
	for _, u := range []*user{alice, bob} {
		u.must("sync")
		gittest.Fsck(t, u.repo)
		if got := gittest.Git(t, u.repo, nil, "ls-tree", "--name-only", "HEAD", "applications/sell-http/"); got != "applications/sell-http/alice\napplications/sell-http/bob" {
			t.Fatalf("%s sees offers:\n%s", u.name, got)
		}
	}
	gittest.Fsck(t, bare)
}

// ~/.ssh/config is honoured as ssh honours it: a host alias with its HostName, Port, User and
// IdentityFile reaches the server with no obol flag; GIT_SSH_COMMAND runs the user's ssh
// instead, as git does.
func TestSSHConfigAndGitSSHCommand(t *testing.T) {
	root := t.TempDir()
	bare := gittest.InitBare(t, root, "stack.git", "main")
	srv := gittest.StartSSH(t, root)
	host, port, _ := strings.Cut(srv.Addr, ":")

	alice := newUser(t, "Alice", "SSH_KNOWN_HOSTS="+srv.KnownHostsFile)
	home := filepath.Dir(alice.repo)
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := "Host teamgit\n  HostName " + host + "\n  Port " + port + "\n  User git\n  IdentityFile " + srv.ClientKeyFile + "\n"
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.must("stack", "init", "--stack", "team", "--remote", "ssh://teamgit/stack.git")
	alice.must(sellArgs("weather")...)
	if got := gittest.Git(t, bare, nil, "ls-tree", "--name-only", "main", "applications/sell-http/"); !strings.Contains(got, "weather") {
		t.Fatalf("the remote lacks the offer pushed through the alias:\n%s", got)
	}

	// GIT_SSH_COMMAND: a stand-in ssh that runs the remote command here, on the bare repo's
	// absolute path (what `ssh host git-upload-pack '/path'` would run there).
	script := filepath.Join(t.TempDir(), "fake-ssh")
	log := filepath.Join(t.TempDir(), "fake-ssh.log")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+log+"\nfor last; do :; done\nexec sh -c \"$last\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bob := newUser(t, "Bob", "GIT_SSH_COMMAND="+script+" -o SomeOption=yes")
	bob.must("stack", "join", "ssh://elsewhere"+bare)
	bob.must(sellArgs("news")...)
	ran, err := os.ReadFile(log)
	if err != nil || !strings.Contains(string(ran), "-o SomeOption=yes elsewhere git-upload-pack '"+bare+"'") || !strings.Contains(string(ran), "git-receive-pack") {
		t.Errorf("GIT_SSH_COMMAND ran as %q (%v)", ran, err)
	}
	if got := gittest.Git(t, bare, nil, "ls-tree", "--name-only", "main", "applications/sell-http/"); !strings.Contains(got, "news") {
		t.Fatalf("the remote lacks the offer pushed through GIT_SSH_COMMAND:\n%s", got)
	}
	gittest.Fsck(t, bare)
}

// git's HTTPS settings apply: a remote whose certificate a private CA signed is refused until
// the CA is given as git takes it (GIT_SSL_CAINFO, or http.sslCAInfo in git config); and
// git's http.proxy carries the requests.
func TestHTTPSWithGitsCAAndProxy(t *testing.T) {
	root := t.TempDir()
	bare := gittest.InitBare(t, root, "stack.git", "main")
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{TLS: true})
	url := srv.RepoURL("stack.git")

	alice := newUser(t, "Alice")
	if _, errOut, code := alice.run("stack", "init", "--stack", "team", "--remote", url, "--public"); code == 0 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("an HTTPS remote of an unknown CA: exit %d\n%s", code, errOut)
	}
	alice.env = append(alice.env, "GIT_SSL_CAINFO="+srv.CAFile)
	alice.must("stack", "init", "--stack", "team", "--remote", url, "--public")

	// Bob has it in his git config instead, and a proxy there too.
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		proxied.Add(1)
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		hj, _ := w.(http.Hijacker)
		w.WriteHeader(http.StatusOK)
		c, brw, err := hj.Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { _, _ = io.Copy(up, brw); up.Close() }()
		_, _ = io.Copy(c, up)
		c.Close()
	}))
	t.Cleanup(proxy.Close)
	bob := newUser(t, "Bob")
	gitconfig := filepath.Join(filepath.Dir(bob.repo), ".gitconfig")
	cfg := "[http]\n\tsslCAInfo = " + srv.CAFile + "\n\tproxy = " + proxy.URL + "\n"
	if err := os.WriteFile(gitconfig, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	bob.env = append(bob.env, "GIT_CONFIG_GLOBAL="+gitconfig) // after newUser's /dev/null: the last one wins
	bob.must("stack", "join", url)
	bob.must(sellArgs("weather")...)
	if proxied.Load() == 0 {
		t.Error("http.proxy was not used")
	}
	if got := gittest.Git(t, bare, nil, "ls-tree", "--name-only", "main", "applications/sell-http/"); !strings.Contains(got, "weather") {
		t.Fatalf("the remote lacks the offer:\n%s", got)
	}
}
