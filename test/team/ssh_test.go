package team

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
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
