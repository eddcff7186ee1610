package gitremote

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"golang.org/x/crypto/ssh"
)

// proc is a running git service we talk to over its stdin and stdout: an
// SSH exec channel or a local git process.
type proc interface {
	stdin() io.WriteCloser
	stdout() io.Reader
	// wait waits for the service to exit.
	wait() error
	// kill stops it at once (context cancelled, or it does not exit).
	kill()
}

// streamSession is protocol v0 over a bidirectional stream.
type streamSession struct {
	c       *conn
	p       proc
	stderr  *tailBuffer
	out     *bufio.Reader
	ar      *packp.AdvRefs
	stop    func() bool // unregisters the context watcher
	rpcDone bool
	inErr   chan error // result of writing the request
	closed  bool
	mu      sync.Mutex
	cleanup []func()
}

// startStream reads the advertisement of a started proc, turning the ways
// a server says "no" into errors.
func startStream(ctx context.Context, c *conn, p proc, stderr *tailBuffer, cleanup ...func()) (session, error) {
	s := &streamSession{c: c, p: p, stderr: stderr, out: bufio.NewReaderSize(p.stdout(), 64<<10), cleanup: cleanup}
	s.stop = context.AfterFunc(ctx, p.kill)
	ar, err := decodeAdv(s.out)
	if err != nil {
		s.abort()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", c.redactedURL(), ctx.Err())
		}
		if msg := stderr.String(); msg != "" {
			switch {
			case isRepoNotFound(msg):
				return nil, fmt.Errorf("%w: %s: %s", ErrNotFound, c.redactedURL(), msg)
			case isAccessDenied(msg):
				return nil, fmt.Errorf("%w: %s: %s", ErrAuth, c.redactedURL(), msg)
			}
			return nil, fmt.Errorf("%s: %s", c.redactedURL(), msg)
		}
		return nil, pktErr(fmt.Errorf("%s: reading the reference advertisement: %w", c.redactedURL(), err), c.redactedURL())
	}
	s.ar = ar
	return s, nil
}

func (s *streamSession) adv() *packp.AdvRefs { return s.ar }

func (s *streamSession) rpc(ctx context.Context, req []byte) (io.ReadCloser, error) {
	s.rpcDone = true
	s.inErr = make(chan error, 1)
	in := s.p.stdin()
	// Write in the background: the server may talk while it reads.
	go func() {
		_, err := in.Write(req)
		if cerr := in.Close(); err == nil {
			err = cerr
		}
		s.inErr <- err
	}()
	return &streamBody{s: s}, nil
}

// streamBody is the response: stdout until the service ends.
type streamBody struct{ s *streamSession }

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.s.out.Read(p)
	if err == io.EOF {
		// A server that ended early usually said why on stderr.
		if msg := b.s.stderr.String(); msg != "" {
			return n, &serverEOF{msg: msg}
		}
	}
	return n, err
}

func (b *streamBody) Close() error { return nil }

// serverEOF is an unexpected end of the response, with the server's stderr.
type serverEOF struct{ msg string }

func (e *serverEOF) Error() string { return "the server ended the connection: " + e.msg }
func (e *serverEOF) Unwrap() error { return io.ErrUnexpectedEOF }

func (s *streamSession) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	defer s.stop()
	defer s.runCleanup()
	done := make(chan error, 1)
	go func() {
		if !s.rpcDone {
			// Nothing to ask: a flush-pkt ends the conversation cleanly.
			in := s.p.stdin()
			_, _ = in.Write(flushPkt)
			_ = in.Close()
		} else {
			<-s.inErr //nolint:errcheck // a failed write shows as the service's exit status
		}
		_, _ = io.Copy(io.Discard, s.out)
		done <- s.p.wait()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		s.p.kill()
		return <-done
	}
}

// abort kills the service and releases everything.
func (s *streamSession) abort() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.p.kill()
	_ = s.p.wait()
	s.stop()
	s.runCleanup()
}

func (s *streamSession) runCleanup() {
	for _, f := range s.cleanup {
		f()
	}
	s.cleanup = nil
}

// --- local paths (file:// and plain paths): the git CLI's own services.

type localProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  io.Reader
	once sync.Once
	werr error
}

func (p *localProc) stdin() io.WriteCloser { return p.in }
func (p *localProc) stdout() io.Reader     { return p.out }
func (p *localProc) wait() error {
	p.once.Do(func() { p.werr = p.cmd.Wait() })
	return p.werr
}
func (p *localProc) kill() { _ = p.cmd.Process.Kill() }

// openLocal runs `git upload-pack PATH` or `git receive-pack PATH`, as git
// itself does for a local remote.
func openLocal(ctx context.Context, c *conn, service string) (session, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("%s: a local remote needs the git CLI on PATH: %w", c.redactedURL(), err)
	}
	path := c.ep.ep.Path
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s: no such directory", ErrNotFound, c.redactedURL())
	}
	return startProc(ctx, c, exec.Command(git, strings.TrimPrefix(service, "git-"), path), "")
}

// startProc runs cmd (a git service, or an ssh that runs one) and speaks the protocol over its
// stdin and stdout; what names it in a start error.
func startProc(ctx context.Context, c *conn, cmd *exec.Cmd, what string) (session, error) {
	cmd.Env = c.rm.Auth.childEnv()
	stderr := newTail(4 << 10)
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %s%w", c.redactedURL(), what, err)
	}
	return startStream(ctx, c, &localProc{cmd: cmd, in: in, out: out}, stderr)
}

// --- SSH: exec "git-upload-pack '<path>'" on the server, as git does.

type sshProc struct {
	client *ssh.Client
	sess   *ssh.Session
	in     io.WriteCloser
	out    io.Reader
	once   sync.Once
	werr   error
}

func (p *sshProc) stdin() io.WriteCloser { return p.in }
func (p *sshProc) stdout() io.Reader     { return p.out }
func (p *sshProc) wait() error {
	p.once.Do(func() {
		p.werr = p.sess.Wait()
		_ = p.client.Close()
	})
	return p.werr
}
func (p *sshProc) kill() { _ = p.client.Close() }

func openSSH(ctx context.Context, c *conn, service string) (session, error) {
	ep := c.ep.ep
	a, err := newSSHAuth(&c.rm.Auth, ep.Host, ep.Port, ep.User)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	addr := a.hostPort()
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	// The handshake has no context: bound it, and cut it short on cancel.
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	stopHS := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, a.clientConfig(addr, nc.RemoteAddr()))
	stopHS()
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s: %w", addr, ctx.Err())
		}
		return nil, a.handshakeError(err)
	}
	_ = nc.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	sess, err := client.NewSession()
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	stderr := newTail(4 << 10)
	sess.Stderr = stderr
	in, err := sess.StdinPipe()
	if err != nil {
		client.Close()
		return nil, err
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		client.Close()
		return nil, err
	}
	path := ep.Path
	if strings.HasPrefix(path, "/~") {
		// ssh://host/~user/repo means ~user/repo, as in git.
		path = path[1:]
	}
	if err := sess.Start(service + " " + shellQuote(path)); err != nil {
		client.Close()
		return nil, fmt.Errorf("ssh %s: %s: %w", addr, service, err)
	}
	ok = true
	return startStream(ctx, c, &sshProc{client: client, sess: sess, in: in, out: out}, stderr, a.close)
}

// shellQuote quotes s the way git's sq_quote_buf does for the remote shell
// (git-shell and forges parse exactly this).
func shellQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\'' || c == '!' {
			b.WriteString(`'\` + string(c) + `'`)
			continue
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}
