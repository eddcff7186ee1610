package gittest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer is a git-over-SSH server on 127.0.0.1 that behaves like sshd
// with a forced git shell: public-key auth, and "exec" of git-upload-pack or
// git-receive-pack only, run as real git processes. There is no sshd on the
// test machines, and a Go server lets each test own its keys and port.
type SSHServer struct {
	Addr           string     // "127.0.0.1:PORT"
	KnownHostsFile string     // an OpenSSH known_hosts file with the server's host key for [127.0.0.1]:PORT
	ClientKeyFile  string     // an unencrypted OpenSSH-format ed25519 private key (0600) the server accepts
	ClientSigner   ssh.Signer // the same key, for tests that load it into an ssh agent

	// Sessions counts exec requests that ran a git process.
	Sessions atomic.Int64
	// Pushes counts the git-receive-pack processes among them.
	Pushes atomic.Int64
	// Refused counts exec and shell requests refused without running git.
	Refused atomic.Int64

	root   string // absolute, symlinks resolved
	git    string
	log    *tlog
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	authorized map[string]bool
	conns      map[net.Conn]struct{}
	closed     bool
}

// StartSSH serves root over SSH on a loopback port: public-key auth only
// (ClientKeyFile's key, plus any added with Authorize; any user name),
// "exec" requests for git-upload-pack '<path>' and git-receive-pack
// '<path>' only (quoted the way git and go-git send them, with or without a
// leading slash, and the scp-like form; "~/" also maps to root), run as real
// git processes with stdin/stdout/stderr wired to the channel and the
// exit-status sent back. Paths are relative to root and must resolve inside
// it (no "..", no symlink escapes); anything else is refused with a message
// on stderr and exit status 1. An "env" request is accepted for
// GIT_PROTOCOL only (passed to git, which is how protocol v2 is negotiated
// over SSH) and refused otherwise, as sshd's AcceptEnv would. The server is
// stopped by t.Cleanup, which closes every connection, kills and waits for
// child processes.
func StartSSH(t testing.TB, root string) *SSHServer {
	t.Helper()
	return StartSSHOn(t, root, "127.0.0.1")
}

// StartSSHOn is StartSSH listening on the IPv4 address host (the end-to-end tests use their
// node's address, which the reconciler's pods can reach).
func StartSSHOn(t testing.TB, root, host string) *SSHServer {
	t.Helper()
	fatal := func(err error) { t.Helper(); t.Fatalf("gittest.StartSSH: %v", err) }
	abs, err := filepath.Abs(root)
	if err != nil {
		fatal(err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		fatal(err)
	}
	git, err := exec.LookPath("git")
	if err != nil {
		fatal(err)
	}

	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		fatal(err)
	}
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fatal(err)
	}
	clientSigner, err := ssh.NewSignerFromKey(clientPriv)
	if err != nil {
		fatal(err)
	}

	keyDir := t.TempDir()
	block, err := ssh.MarshalPrivateKey(clientPriv, "gittest-client")
	if err != nil {
		fatal(err)
	}
	keyFile := filepath.Join(keyDir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		fatal(err)
	}

	ln, err := net.Listen("tcp4", net.JoinHostPort(host, "0"))
	if err != nil {
		fatal(err)
	}
	addr := ln.Addr().String()
	knownHosts := filepath.Join(keyDir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostSigner.PublicKey()) + "\n"
	if err := os.WriteFile(knownHosts, []byte(line), 0o600); err != nil {
		ln.Close()
		fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &SSHServer{
		Addr:           addr,
		KnownHostsFile: knownHosts,
		ClientKeyFile:  keyFile,
		ClientSigner:   clientSigner,
		root:           abs,
		git:            git,
		log:            newTlog(t, "gittest ssh: "),
		ctx:            ctx,
		cancel:         cancel,
		authorized:     map[string]bool{},
		conns:          map[net.Conn]struct{}{},
	}
	s.Authorize(clientSigner.PublicKey())

	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			ok := s.authorized[string(key.Marshal())]
			s.mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("public key %s not authorized", ssh.FingerprintSHA256(key))
			}
			return &ssh.Permissions{}, nil
		},
		ServerVersion: "SSH-2.0-obol-gittest",
	}
	cfg.AddHostKey(hostSigner)

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.acceptLoop(ln, cfg)
	}()

	t.Cleanup(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]net.Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		ln.Close()
		s.cancel() // kills git processes still running
		for _, c := range conns {
			c.Close()
		}
		s.wg.Wait()
		s.log.stop()
	})
	return s
}

// Authorize makes the server accept pub as a client key as well, e.g. to
// model a second team member.
func (s *SSHServer) Authorize(pub ssh.PublicKey) {
	s.mu.Lock()
	s.authorized[string(pub.Marshal())] = true
	s.mu.Unlock()
}

// RepoURL is "ssh://git@127.0.0.1:PORT/<name>".
func (s *SSHServer) RepoURL(name string) string {
	return "ssh://git@" + s.Addr + "/" + strings.TrimLeft(name, "/")
}

// GitSSHCommand is a GIT_SSH_COMMAND value for the git CLI that uses
// ClientKeyFile and KnownHostsFile with strict host key checking and none
// of the user's ssh configuration (-F /dev/null, IdentitiesOnly=yes,
// BatchMode=yes, no global known_hosts), so the test fails rather than
// prompts. Use it as env entry "GIT_SSH_COMMAND=" + s.GitSSHCommand().
func (s *SSHServer) GitSSHCommand() string {
	return strings.Join([]string{
		"ssh", "-F", "/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", shellQuote("UserKnownHostsFile=" + sshConfigQuote(s.KnownHostsFile)),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
		"-i", shellQuote(s.ClientKeyFile),
	}, " ")
}

// shellQuote quotes s for /bin/sh (GIT_SSH_COMMAND is run by the shell).
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-=+:@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sshConfigQuote double-quotes a path containing blanks, because ssh splits
// UserKnownHostsFile on whitespace into several files.
func sshConfigQuote(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}

func (s *SSHServer) acceptLoop(ln net.Listener, cfg *ssh.ServerConfig) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handleConn(c, cfg)
		}()
	}
}

func (s *SSHServer) handleConn(c net.Conn, cfg *ssh.ServerConfig) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	sconn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		s.log.Logf("handshake from %s: %v", c.RemoteAddr(), err)
		return
	}
	defer sconn.Close()
	_ = c.SetDeadline(time.Time{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ssh.DiscardRequests(reqs) // keepalives, no-more-sessions, ...
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			s.log.Logf("accept channel: %v", err)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleSession(sconn.User(), ch, creqs)
		}()
	}
}

// gitProtocolRe bounds what a client may put into GIT_PROTOCOL
// ("version=2", "version=2:object-format=sha1", ...).
var gitProtocolRe = regexp.MustCompile(`^[A-Za-z0-9=:._-]{1,256}$`)

func (s *SSHServer) handleSession(user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	gitProtocol := ""
	for req := range reqs {
		switch req.Type {
		case "env":
			var p struct{ Name, Value string }
			ok := ssh.Unmarshal(req.Payload, &p) == nil &&
				p.Name == "GIT_PROTOCOL" && gitProtocolRe.MatchString(p.Value)
			if ok {
				gitProtocol = p.Value
			}
			_ = req.Reply(ok, nil)
		case "exec", "shell":
			var p struct{ Command string }
			if req.Type == "exec" && ssh.Unmarshal(req.Payload, &p) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			// Keep servicing (and refusing) requests while git runs, or
			// the connection stalls.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				for r := range reqs {
					_ = r.Reply(false, nil)
				}
			}()
			var status int
			if req.Type == "shell" {
				status = s.refuse(ch, "interactive shells are not provided; only git-upload-pack and git-receive-pack")
			} else {
				status = s.exec(user, ch, p.Command, gitProtocol)
			}
			_ = ch.CloseWrite()
			// sshd order: EOF, exit-status, close.
			// This fails harmlessly when the client already closed the
			// channel (go-git does so once it has what it needs).
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
			return
		default: // pty-req, subsystem, x11-req, ...
			_ = req.Reply(false, nil)
		}
	}
}

// refuse writes msg to the channel's stderr and returns exit status 1.
func (s *SSHServer) refuse(ch ssh.Channel, msg string) int {
	s.Refused.Add(1)
	s.log.Logf("refused: %s", msg)
	fmt.Fprintf(ch.Stderr(), "gittest: %s\n", msg)
	return 1
}

// exec runs one git service for command and returns its exit status.
func (s *SSHServer) exec(user string, ch ssh.Channel, command, gitProtocol string) int {
	words, err := splitShellWords(command)
	if err != nil {
		return s.refuse(ch, fmt.Sprintf("cannot parse command %q: %v", command, err))
	}
	if len(words) != 2 {
		return s.refuse(ch, fmt.Sprintf("unsupported command %q: only git-upload-pack '<repo>' and git-receive-pack '<repo>'", command))
	}
	var service string
	switch words[0] {
	case "git-upload-pack":
		service = "upload-pack"
	case "git-receive-pack":
		service = "receive-pack"
	default:
		return s.refuse(ch, fmt.Sprintf("unsupported command %q: only git-upload-pack '<repo>' and git-receive-pack '<repo>'", command))
	}
	dir, err := s.resolveRepo(words[1])
	if err != nil {
		return s.refuse(ch, err.Error())
	}

	cmd := exec.CommandContext(s.ctx, s.git, service, dir)
	cmd.Dir = s.root
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"USER=" + user,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"LC_ALL=C",
	}
	if gitProtocol != "" {
		env = append(env, "GIT_PROTOCOL="+gitProtocol)
	}
	cmd.Env = env
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return s.refuse(ch, "internal error: "+err.Error())
	}
	if err := cmd.Start(); err != nil {
		return s.refuse(ch, "internal error: "+err.Error())
	}
	s.Sessions.Add(1)
	if service == "receive-pack" {
		s.Pushes.Add(1)
	}
	// Not waited for by cmd.Wait: it ends when the client sends EOF or
	// the channel is closed after the exit-status.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_, _ = io.Copy(stdin, ch)
		stdin.Close()
	}()
	err = cmd.Wait()
	status := cmd.ProcessState.ExitCode()
	if status < 0 { // killed by a signal (e.g. shutdown)
		status = 255
	}
	if status == 255 && err != nil {
		s.log.Logf("%s %q: %v", words[0], words[1], err)
	}
	s.log.Logf("%s %q (GIT_PROTOCOL=%q): exit %d", words[0], words[1], gitProtocol, status)
	return status
}

// resolveRepo maps the path a client asked for to a repository directory
// inside s.root. Like a forge (and unlike plain sshd), paths are relative to
// the served root: "/x.git", "x.git" and "~/x.git" all mean root/x.git, and
// "x" also finds "x.git" as git's enter_repo would.
func (s *SSHServer) resolveRepo(p string) (string, error) {
	if p == "" || strings.ContainsRune(p, 0) {
		return "", errors.New("empty repository path")
	}
	rel := strings.TrimPrefix(p, "~/")
	rel = strings.TrimLeft(rel, "/")
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", fmt.Errorf("repository path %q escapes the served root", p)
		}
	}
	if rel == "" {
		return "", fmt.Errorf("repository path %q names no repository", p)
	}
	full := filepath.Join(s.root, filepath.FromSlash(rel))
	for _, cand := range []string{full, full + ".git"} {
		fi, err := os.Stat(cand)
		if err != nil || !fi.IsDir() {
			continue
		}
		resolved, err := filepath.EvalSymlinks(cand)
		if err != nil {
			continue
		}
		if !s.inside(resolved) {
			return "", fmt.Errorf("repository path %q resolves outside the served root", p)
		}
		// A work tree: git would enter its .git, which must not lead out
		// of root either (a gitfile can point anywhere).
		dotgit := filepath.Join(resolved, ".git")
		if fi, err := os.Lstat(dotgit); err == nil {
			if fi.Mode().IsRegular() {
				return "", fmt.Errorf("repository path %q uses a .git file, which is not served", p)
			}
			r, err := filepath.EvalSymlinks(dotgit)
			if err != nil || !s.inside(r) {
				return "", fmt.Errorf("repository path %q resolves outside the served root", p)
			}
		}
		return resolved, nil
	}
	return "", fmt.Errorf("repository %q not found", p)
}

// inside reports whether the resolved path is strictly below s.root.
func (s *SSHServer) inside(resolved string) bool {
	rel, err := filepath.Rel(s.root, resolved)
	return err == nil && rel != "." && filepath.IsLocal(rel)
}

// splitShellWords splits an exec command line the way /bin/sh would for the
// quoting git and go-git produce: single-quoted words in which a quote is
// written as quote-backslash-quote-quote and "!" as \!, plus "..." and
// backslashes. It refuses anything a shell would expand or
// interpret (variables, globs, redirections, command separators) since no
// shell is run.
func splitShellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch s[i] {
				case '$', '`':
					return nil, errors.New("shell expansion is not supported")
				case '\\':
					if i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
						i++
					}
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) || s[i+1] == '\n' {
				return nil, errors.New("dangling backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("$`;&|<>(){}*?[]#~\n\r", c) >= 0 && !(c == '~' && inWord):
			return nil, fmt.Errorf("unsupported shell syntax %q", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
