package gitremote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// The two git services.
const (
	uploadPack  = "git-upload-pack"
	receivePack = "git-receive-pack"
)

// session is one use of a git service on the remote in protocol v0: the
// server's reference advertisement, then at most one request and its
// response. For smart HTTP the two halves are separate requests
// (stateless RPC); for SSH and local paths they are one process's stdin
// and stdout. Either way the bytes of the request and the response are the
// same, so Fetch and Push build and parse them once, with go-git's packp.
type session interface {
	// adv is the reference advertisement, read when the session opened.
	// For git-upload-pack on an empty repository it has no references.
	adv() *packp.AdvRefs
	// rpc sends the request and returns the response stream. Close it.
	rpc(ctx context.Context, req []byte) (io.ReadCloser, error)
	// close ends the session (telling the server we are done if rpc was
	// never called) and releases everything.
	close() error
}

// endpoint is a parsed remote URL.
type endpoint struct {
	kind string // "http", "ssh" or "file"
	http *url.URL
	ep   *transport.Endpoint
}

func parseEndpoint(raw string) (*endpoint, error) {
	if raw == "" {
		return nil, errors.New("no remote URL")
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("remote URL %s: %w", Redact(raw), err)
	}
	switch strings.ToLower(ep.Protocol) {
	case "http", "https":
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("remote URL %s: %w", Redact(raw), err)
		}
		u.Scheme = strings.ToLower(u.Scheme)
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		u.Fragment, u.RawFragment = "", ""
		return &endpoint{kind: "http", http: u, ep: ep}, nil
	case "ssh":
		if ep.Host == "" || ep.Path == "" {
			return nil, fmt.Errorf("remote URL %s: no host or path", Redact(raw))
		}
		return &endpoint{kind: "ssh", ep: ep}, nil
	case "file":
		if ep.Path == "" {
			return nil, fmt.Errorf("remote URL %s: no path", Redact(raw))
		}
		return &endpoint{kind: "file", ep: ep}, nil
	default:
		return nil, fmt.Errorf("remote URL %s: unsupported protocol %q (use https://, ssh://, user@host:path, file:// or a path)", Redact(raw), ep.Protocol)
	}
}

// conn opens sessions to one remote for one operation, keeping what an
// operation learns (the HTTP credentials that worked) across sessions.
type conn struct {
	rm   Remote
	ep   *endpoint
	sec  *secrets
	dir  string // working directory for git children (credential helper)
	http *httpAuth
}

func newConn(rm Remote, dir string) (*conn, error) {
	c := &conn{rm: rm, sec: &secrets{}, dir: dir}
	// Record the URL's password before anything can fail and print it.
	if u, err := url.Parse(rm.URL); err == nil && u.User != nil {
		p, _ := u.User.Password()
		c.sec.addBasic(u.User.Username(), p)
		if looksLikeToken(u.User.Username()) {
			c.sec.add(u.User.Username())
		}
	}
	ep, err := parseEndpoint(rm.URL)
	if err != nil {
		return nil, err
	}
	c.ep = ep
	if ep.kind == "http" {
		c.http, err = newHTTPAuth(&c.rm.Auth, c.sec, ep.http, dir)
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// redactedURL is the remote URL for messages.
func (c *conn) redactedURL() string { return Redact(c.rm.URL) }

// open starts a session with service and reads its advertisement. An empty
// repository is no error: the advertisement then has no references.
func (c *conn) open(ctx context.Context, service string) (session, error) {
	switch c.ep.kind {
	case "http":
		return openHTTP(ctx, c, service)
	case "ssh":
		if cmd, shell := c.rm.Auth.sshCommand(); cmd != "" {
			return openSSHCommand(ctx, c, service, cmd, shell)
		}
		return openSSH(ctx, c, service)
	default:
		return openLocal(ctx, c, service)
	}
}

// finish ends the operation: credentials that worked are approved.
func (c *conn) finish(ctx context.Context) {
	if c.http != nil {
		c.http.finish(ctx)
	}
}

// decodeAdv reads a reference advertisement. A repository without refs is
// returned as an empty AdvRefs.
func decodeAdv(r io.Reader) (*packp.AdvRefs, error) {
	ar := packp.NewAdvRefs()
	if err := ar.Decode(r); err != nil {
		if errors.Is(err, packp.ErrEmptyAdvRefs) {
			// Keeps the smart-HTTP prefix read so far.
			return ar, nil
		}
		return nil, err
	}
	return ar, nil
}

// isRepoNotFound recognises the messages servers give for a missing
// repository.
func isRepoNotFound(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{
		"does not appear to be a git repository",
		"repository not found",
		"not found",
		"does not exist",
		"no such repository",
		"could not be found",
	} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// isAccessDenied recognises the messages SSH forges print when the key is
// known but may not do this.
func isAccessDenied(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"permission denied", "access denied", "not allowed", "read only", "read-only", "unauthorized", "forbidden"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// pktErr turns an "ERR" pkt-line from the server into an error.
func pktErr(err error, where string) error {
	var el *pktline.ErrorLine
	if errors.As(err, &el) {
		if isRepoNotFound(el.Text) {
			return fmt.Errorf("%w: %s: server said %q", ErrNotFound, where, el.Text)
		}
		if isAccessDenied(el.Text) {
			return fmt.Errorf("%w: %s: server said %q", ErrAuth, where, el.Text)
		}
		return fmt.Errorf("%s: server said %q", where, el.Text)
	}
	return err
}

// tailBuffer keeps the last max bytes written to it (a child's stderr,
// the server's side-band messages) for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func newTail(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// String is the text with progress lines dropped and lines joined by "; ".
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for _, l := range strings.FieldsFunc(string(t.b), func(r rune) bool { return r == '\n' || r == '\r' }) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "remote: ") && strings.TrimSpace(strings.TrimPrefix(l, "remote: ")) == "" {
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "; ")
}

// flushPkt is "0000": the client has nothing (more) to say.
var flushPkt = []byte("0000")

// readAllLimited drains r into a string of at most n bytes, for error
// bodies.
func readAllLimited(r io.Reader, n int64) string {
	var b bytes.Buffer
	_, _ = io.Copy(&b, io.LimitReader(r, n))
	return strings.TrimSpace(b.String())
}
