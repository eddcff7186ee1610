package gitremote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/obol/obol/internal/gittest"
)

func sshAuthOpts(s *gittest.SSHServer) AuthOptions {
	return AuthOptions{SSHKeyFile: s.ClientKeyFile, KnownHostsFile: s.KnownHostsFile, Getenv: envMap(nil)}
}

func TestSSH(t *testing.T) {
	root := t.TempDir()
	srv := gittest.StartSSH(t, root)
	runScenarios(t, server{root: root, url: srv.RepoURL, auth: sshAuthOpts(srv)})
}

// TestSSHScpLike uses the user@host:path form (port from known defaults is
// not possible there, so the ssh:// URL's port is put in via scp syntax
// host:port:path that go-git's endpoint parser understands).
func TestSSHForms(t *testing.T) {
	root := t.TempDir()
	srv := gittest.StartSSH(t, root)
	_, hs := seed(t, root, "forms.git", 1)
	host, port, _ := net.SplitHostPort(srv.Addr)
	for _, u := range []string{
		"ssh://git@" + srv.Addr + "/forms.git",
		"ssh://git@" + srv.Addr + "/~/forms.git",
		"git@" + host + ":" + port + ":forms.git",
	} {
		h, err := Head(testCtx(t), Remote{URL: u, Auth: sshAuthOpts(srv)}, "main")
		if err != nil || h != hs[0] {
			t.Errorf("Head(%s) = %s, %v", u, h, err)
		}
	}
}

// writeKey writes a new ed25519 private key in OpenSSH format.
func writeKey(t *testing.T, path string) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startAgent serves an in-process ssh agent holding the key in keyFile on a
// unix socket and returns the socket path.
func startAgent(t *testing.T, keyFile string) string {
	t.Helper()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = agent.ServeAgent(kr, c)
			}()
		}
	}()
	return sock
}

func TestSSHAuth(t *testing.T) {
	root := t.TempDir()
	srv := gittest.StartSSH(t, root)
	_, hs := seed(t, root, "r.git", 2)
	url := srv.RepoURL("r.git")

	fetchOK := func(t *testing.T, rm Remote) {
		t.Helper()
		ctx := testCtx(t)
		work := initWork(t)
		if h, err := Fetch(ctx, gitDir(work), rm, "main", nil); err != nil || h != hs[1] {
			t.Fatalf("Fetch = %s, %v", h, err)
		}
		gittest.Fsck(t, work)
	}

	t.Run("KeyFileViaEnv", func(t *testing.T) {
		fetchOK(t, Remote{URL: url, Auth: AuthOptions{KnownHostsFile: srv.KnownHostsFile, Getenv: envMap(map[string]string{EnvSSHKey: srv.ClientKeyFile})}})
	})

	t.Run("Agent", func(t *testing.T) {
		sock := startAgent(t, srv.ClientKeyFile)
		env := envMap(map[string]string{"SSH_AUTH_SOCK": sock, "SSH_KNOWN_HOSTS": srv.KnownHostsFile, "HOME": t.TempDir()})
		rm := Remote{URL: url, Auth: AuthOptions{Getenv: env}}
		fetchOK(t, rm)
		// And a push through the agent.
		ctx := testCtx(t)
		work := initWork(t)
		if _, err := Fetch(ctx, gitDir(work), rm, "main", nil); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, work, nil, "reset", "--quiet", "--hard", hs[1].String())
		c := commit(t, work, map[string]string{"agent.txt": "a"}, "via agent")
		if err := Push(ctx, gitDir(work), rm, "agent-branch", [20]byte{}, c); err != nil {
			t.Fatalf("Push via agent: %v", err)
		}
	})

	t.Run("DefaultKeyFiles", func(t *testing.T) {
		home := t.TempDir()
		b, err := os.ReadFile(srv.ClientKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		kh, err := os.ReadFile(srv.KnownHostsFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), kh, 0o600); err != nil {
			t.Fatal(err)
		}
		fetchOK(t, Remote{URL: url, Auth: AuthOptions{Getenv: envMap(map[string]string{"HOME": home})}})
	})

	t.Run("WrongKey", func(t *testing.T) {
		key := filepath.Join(t.TempDir(), "id_other")
		writeKey(t, key)
		_, err := Head(testCtx(t), Remote{URL: url, Auth: AuthOptions{SSHKeyFile: key, KnownHostsFile: srv.KnownHostsFile, Getenv: envMap(nil)}}, "main")
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), EnvSSHKey) {
			t.Fatalf("Head = %v; want ErrAuth naming the key and %s", err, EnvSSHKey)
		}
		t.Logf("wrong key: %v", err)
	})

	t.Run("NoKey", func(t *testing.T) {
		_, err := Head(testCtx(t), Remote{URL: url, Auth: AuthOptions{KnownHostsFile: srv.KnownHostsFile, Getenv: envMap(map[string]string{"HOME": t.TempDir()})}}, "main")
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("Head = %v; want ErrAuth", err)
		}
		t.Logf("no key: %v", err)
	})

	t.Run("UnknownHost", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Head(testCtx(t), Remote{URL: url, Auth: AuthOptions{SSHKeyFile: srv.ClientKeyFile, KnownHostsFile: empty, Getenv: envMap(nil)}}, "main")
		_, port, _ := net.SplitHostPort(srv.Addr)
		want := "ssh-keyscan -p " + port + " 127.0.0.1 >> " + empty
		if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Head = %v; want ErrHostKey with %q", err, want)
		}
		t.Logf("unknown host: %v", err)

		// Same with the default files: the fix names ~/.ssh/known_hosts.
		_, err = Head(testCtx(t), Remote{URL: url, Auth: AuthOptions{SSHKeyFile: srv.ClientKeyFile, Getenv: envMap(map[string]string{"HOME": t.TempDir()})}}, "main")
		if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "ssh-keyscan -p "+port+" 127.0.0.1 >> ~/.ssh/known_hosts") {
			t.Fatalf("Head = %v; want ErrHostKey with the default file", err)
		}
	})

	t.Run("ChangedHostKey", func(t *testing.T) {
		other := writeKey(t, filepath.Join(t.TempDir(), "k"))
		_, port, _ := net.SplitHostPort(srv.Addr)
		p, _ := strconv.Atoi(port)
		line := "[127.0.0.1]:" + strconv.Itoa(p) + " " + string(ssh.MarshalAuthorizedKey(other.PublicKey()))
		kh := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Head(testCtx(t), Remote{URL: url, Auth: AuthOptions{SSHKeyFile: srv.ClientKeyFile, KnownHostsFile: kh, Getenv: envMap(nil)}}, "main")
		if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "changed") {
			t.Fatalf("Head = %v; want ErrHostKey (changed)", err)
		}
		t.Logf("changed host key: %v", err)
	})

	t.Run("MissingRepo", func(t *testing.T) {
		_, err := Head(testCtx(t), Remote{URL: srv.RepoURL("nope.git"), Auth: sshAuthOpts(srv)}, "main")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Head = %v; want ErrNotFound", err)
		}
		t.Logf("missing repo over ssh: %v", err)
	})
}

func TestCancelled(t *testing.T) {
	root := t.TempDir()
	seed(t, root, "c.git", 1)
	hs := gittest.StartHTTP(t, root, gittest.HTTPOptions{})
	ss := gittest.StartSSH(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, rm := range []Remote{
		{URL: "file://" + filepath.Join(root, "c.git"), Auth: noEnv()},
		{URL: hs.RepoURL("c.git"), Auth: noEnv()},
		{URL: ss.RepoURL("c.git"), Auth: sshAuthOpts(ss)},
	} {
		if _, err := Head(ctx, rm, "main"); !errors.Is(err, context.Canceled) {
			t.Errorf("Head(%s) with a cancelled context = %v; want context.Canceled", rm.URL, err)
		}
	}
}
