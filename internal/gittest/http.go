package gittest

import (
	"cmp"
	"crypto/subtle"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// HTTPOptions configures the authentication StartHTTP enforces in front of
// git http-backend, mirroring a hosted forge's token auth.
type HTTPOptions struct {
	// Username and Token, when Token is set, require HTTP basic auth with
	// exactly this username/password on every request (401 with
	// WWW-Authenticate: Basic realm="obol-test" otherwise).
	Username, Token string
	// ReadOnlyToken, when set, is a second password (for Username) that may
	// fetch but not push: 403 on git-receive-pack requests, both
	// info/refs?service=git-receive-pack and POST /git-receive-pack. Setting
	// only ReadOnlyToken makes the server read-only for authenticated users
	// and closed to anonymous ones.
	ReadOnlyToken string
	// Host is the IPv4 address it listens on; empty means 127.0.0.1. The end-to-end tests use
	// their node's address, which the reconciler's pods can reach.
	Host string
	// TLS serves HTTPS with a certificate of a test CA, written to HTTPServer.CAFile.
	TLS bool
}

// HTTPServer is a smart-HTTP git server on 127.0.0.1 backed by the real
// git http-backend. Its counters let tests assert what went over the wire
// (e.g. that a refused push never reached git-receive-pack).
type HTTPServer struct {
	URL string // "http://127.0.0.1:PORT" (https with HTTPOptions.TLS)
	// CAFile is the PEM of the CA that signed the server's certificate (HTTPOptions.TLS).
	CAFile string

	// Requests counts every HTTP request received, including refused ones.
	Requests atomic.Int64
	// Unauthorized counts 401 responses. Note that the git CLI first sends
	// each request without credentials even when the URL carries them, so
	// a successful authenticated clone also produces 401s.
	Unauthorized atomic.Int64
	// Forbidden counts 403 responses to ReadOnlyToken push attempts.
	Forbidden atomic.Int64
	// Pushes counts POST .../git-receive-pack requests handed to
	// git http-backend (accepted or rejected by git itself).
	Pushes atomic.Int64

	opts  HTTPOptions
	cgi   cgi.Handler
	spool string
	log   *tlog
}

// StartHTTP serves every repository under root with git http-backend
// (GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL=1) on a loopback port, so
// clients speak smart HTTP (protocol v0/v1 and v2, selected by the
// Git-Protocol header) to real git. It is stopped by t.Cleanup, which
// closes client connections and waits for running handlers.
func StartHTTP(t testing.TB, root string, opts HTTPOptions) *HTTPServer {
	t.Helper()
	root, err := filepath.Abs(root)
	if err != nil {
		t.Fatalf("gittest.StartHTTP: %v", err)
	}
	execPath, _, err := TryGit(t, root, nil, "--exec-path")
	if err != nil {
		t.Fatalf("gittest.StartHTTP: git --exec-path: %v", err)
	}
	backend := filepath.Join(execPath, "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("gittest.StartHTTP: %v", err)
	}

	s := &HTTPServer{
		opts:  opts,
		spool: t.TempDir(),
		log:   newTlog(t, "gittest http: "),
	}
	s.cgi = cgi.Handler{
		Path: backend,
		Root: "/",
		Dir:  root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			// The server must not read the developer's config either.
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
			"LC_ALL=C",
		},
		Logger: log.New(s.log, "cgi: ", 0),
		Stderr: s.log,
	}

	ln, err := net.Listen("tcp4", net.JoinHostPort(cmp.Or(opts.Host, "127.0.0.1"), "0"))
	if err != nil {
		t.Fatalf("gittest.StartHTTP: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ErrorLog = log.New(s.log, "server: ", 0)
	if opts.TLS {
		srv.StartTLS()
		s.CAFile = filepath.Join(t.TempDir(), "ca.pem")
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(s.CAFile, ca, 0o644); err != nil {
			t.Fatalf("gittest.StartHTTP: %v", err)
		}
	} else {
		srv.Start()
	}
	s.URL = srv.URL
	t.Cleanup(func() {
		// Drop connections first: Close alone would wait forever for a
		// request whose client stalled mid-body.
		srv.CloseClientConnections()
		srv.Close()
		s.log.stop()
	})
	return s
}

// RepoURL is the clone URL of the repository root/name, without
// credentials.
func (s *HTTPServer) RepoURL(name string) string {
	return s.URL + "/" + strings.TrimLeft(name, "/")
}

// isReceivePack reports whether r is part of a push: the ref advertisement
// for git-receive-pack or the POST carrying the pack.
func isReceivePack(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, "/git-receive-pack") ||
		r.URL.Query().Get("service") == "git-receive-pack"
}

func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// serve authenticates the request per HTTPOptions and hands it to git
// http-backend.
func (s *HTTPServer) serve(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	user := ""
	if s.opts.Token != "" || s.opts.ReadOnlyToken != "" {
		u, p, ok := r.BasicAuth()
		readOnly := false
		switch {
		case ok && equalSecret(u, s.opts.Username) && s.opts.Token != "" && equalSecret(p, s.opts.Token):
		case ok && equalSecret(u, s.opts.Username) && s.opts.ReadOnlyToken != "" && equalSecret(p, s.opts.ReadOnlyToken):
			readOnly = true
		default:
			s.Unauthorized.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="obol-test"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		if readOnly && isReceivePack(r) {
			s.Forbidden.Add(1)
			http.Error(w, "read-only token: push not allowed", http.StatusForbidden)
			return
		}
		user = u
		if user == "" {
			user = "token"
		}
	}

	// Spool the whole request body before starting the CGI. Two reasons:
	// net/http/cgi refuses chunked bodies with 400, but the git CLI sends
	// every POST larger than http.postBuffer (1 MiB) chunked; and git
	// http-backend (2.39) spins at 100% CPU forever if stdin ends before
	// CONTENT_LENGTH bytes (pipe_fixed_length loops on a 0-byte read), so
	// a client that dies mid-push must never reach it. Smart HTTP is
	// request-then-response, so buffering changes nothing a client sees.
	if r.ContentLength != 0 {
		f, err := os.CreateTemp(s.spool, "body-")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		n, err := io.Copy(f, r.Body)
		if err == nil && r.ContentLength > 0 && n != r.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			s.log.Logf("%s %s: reading request body: %v", r.Method, r.URL.Path, err)
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = f
		r.ContentLength = n
		r.TransferEncoding = nil
		r.Header.Del("Transfer-Encoding")
	}

	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
		s.Pushes.Add(1)
	}
	h := s.cgi
	if user != "" {
		// http-backend uses REMOTE_USER to allow receive-pack and to name
		// the committer of reflog entries.
		h.Env = append(slices.Clone(h.Env), "REMOTE_USER="+user)
	}
	h.ServeHTTP(w, r)
}
