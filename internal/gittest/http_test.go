package gittest

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHTTPGitCLI(t *testing.T) {
	needGit(t)
	t.Parallel()
	root := t.TempDir()
	bare := InitBare(t, root, "stack.git", "main")
	srv := StartHTTP(t, root, HTTPOptions{})
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want loopback", srv.URL)
	}
	exerciseRemote(t, bare, srv.RepoURL("stack.git"), nil)
	if srv.Pushes.Load() < 4 {
		t.Errorf("Pushes = %d, want >= 4", srv.Pushes.Load())
	}
	if srv.Unauthorized.Load() != 0 {
		t.Errorf("Unauthorized = %d on an open server", srv.Unauthorized.Load())
	}
	if v := protocolVersion(t, srv.RepoURL("stack.git"), nil); v != "2" {
		t.Errorf("git over HTTP negotiated protocol v%s, want v2", v)
	}
}

// TestHTTPLargePush pushes more than http.postBuffer (1 MiB), which the git
// CLI sends with chunked transfer encoding.
func TestHTTPLargePush(t *testing.T) {
	needGit(t)
	t.Parallel()
	root := t.TempDir()
	bare := InitBare(t, root, "stack.git", "main")
	srv := StartHTTP(t, root, HTTPOptions{Username: "obol", Token: "tok"})
	u := authURL(srv, "stack.git", "obol", "tok")
	work := t.TempDir()
	wt := filepath.Join(work, "wt")
	Git(t, work, nil, "clone", "-q", u, wt)
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(wt, "big.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, wt, nil, "add", "big.bin")
	Git(t, wt, nil, "commit", "-q", "-m", "big")
	Git(t, wt, nil, "push", "-q", "origin", "main")
	if got, want := Git(t, bare, nil, "rev-parse", "main"), Git(t, wt, nil, "rev-parse", "HEAD"); got != want {
		t.Fatalf("server main = %s, want %s", got, want)
	}
	Fsck(t, bare)
}

func authURL(s *HTTPServer, name, user, pass string) string {
	u, err := url.Parse(s.RepoURL(name))
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

func TestHTTPAuth(t *testing.T) {
	needGit(t)
	t.Parallel()
	root := t.TempDir()
	bare := InitBare(t, root, "stack.git", "main")
	srv := StartHTTP(t, root, HTTPOptions{Username: "obol", Token: "s3cret", ReadOnlyToken: "r3ad"})
	work := t.TempDir()

	// Token: full access.
	rw := filepath.Join(work, "rw")
	Git(t, work, nil, "clone", "-q", authURL(srv, "stack.git", "obol", "s3cret"), rw)
	c1 := commitFile(t, rw, "README.md", "hi\n", "first")
	Git(t, rw, nil, "push", "-q", "origin", "main")
	if got := Git(t, bare, nil, "rev-parse", "main"); got != c1 {
		t.Fatalf("server main = %s, want %s", got, c1)
	}
	pushes := srv.Pushes.Load()

	// No credentials: 401, and with prompts disabled git gives up.
	before := srv.Unauthorized.Load()
	_, stderr, err := TryGit(t, work, nil, "clone", srv.RepoURL("stack.git"), filepath.Join(work, "anon"))
	if err == nil {
		t.Fatalf("anonymous clone succeeded")
	}
	t.Logf("anonymous clone:\n%s", stderr)
	if !strings.Contains(stderr, "terminal prompts disabled") {
		t.Errorf("anonymous clone stderr: %s", stderr)
	}
	if srv.Unauthorized.Load() == before {
		t.Errorf("no 401 counted")
	}

	// Wrong password (or user): push refused with nothing pushed.
	c2 := commitFile(t, rw, "README.md", "hi again\n", "second")
	for _, u := range []string{
		authURL(srv, "stack.git", "obol", "wrong"),
		authURL(srv, "stack.git", "mallory", "s3cret"),
		srv.RepoURL("stack.git"),
	} {
		_, stderr, err = TryGit(t, rw, nil, "push", u, "main")
		if err == nil {
			t.Fatalf("push to %s succeeded", u)
		}
		t.Logf("push with bad credentials:\n%s", stderr)
		if !strings.Contains(stderr, "Authentication failed") && !strings.Contains(stderr, "terminal prompts disabled") {
			t.Errorf("push with bad credentials stderr: %s", stderr)
		}
	}

	// Read-only token: clone works, push is refused with 403.
	ro := filepath.Join(work, "ro")
	Git(t, work, nil, "clone", "-q", authURL(srv, "stack.git", "obol", "r3ad"), ro)
	if got := Git(t, ro, nil, "rev-parse", "HEAD"); got != c1 {
		t.Fatalf("read-only clone HEAD = %s, want %s", got, c1)
	}
	commitFile(t, ro, "x.txt", "x\n", "ro")
	_, stderr, err = TryGit(t, ro, nil, "push", "origin", "main")
	if err == nil {
		t.Fatalf("read-only push succeeded")
	}
	t.Logf("read-only push:\n%s", stderr)
	if !strings.Contains(stderr, "403") {
		t.Errorf("read-only push stderr: %s", stderr)
	}
	if srv.Forbidden.Load() == 0 {
		t.Errorf("no 403 counted")
	}
	if got := Git(t, bare, nil, "rev-parse", "main"); got != c1 {
		t.Fatalf("server main = %s after refused pushes, want %s", got, c1)
	}
	if got := srv.Pushes.Load(); got != pushes {
		t.Errorf("refused pushes reached git-receive-pack: Pushes %d -> %d", pushes, got)
	}

	// The real token still works.
	Git(t, rw, nil, "push", "-q", "origin", "main")
	if got := Git(t, bare, nil, "rev-parse", "main"); got != c2 {
		t.Fatalf("server main = %s, want %s", got, c2)
	}
	Fsck(t, bare)

	// Raw HTTP: status codes and headers a client author depends on.
	base := srv.RepoURL("stack.git")
	for _, tc := range []struct {
		method, path, user, pass string
		want                     int
	}{
		{"GET", "/info/refs?service=git-upload-pack", "", "", 401},
		{"GET", "/info/refs?service=git-upload-pack", "obol", "nope", 401},
		{"GET", "/info/refs?service=git-upload-pack", "obol", "r3ad", 200},
		{"GET", "/info/refs?service=git-receive-pack", "obol", "r3ad", 403},
		{"POST", "/git-receive-pack", "obol", "r3ad", 403},
		{"POST", "/git-receive-pack", "", "", 401},
		{"GET", "/info/refs?service=git-receive-pack", "obol", "s3cret", 200},
		{"GET", "/info/refs?service=git-upload-pack", "obol", "s3cret", 200},
	} {
		req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		if tc.method == "POST" {
			req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
		}
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s as %q: status %d, want %d", tc.method, tc.path, tc.user, resp.StatusCode, tc.want)
		}
		if tc.want == 401 {
			if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="obol-test"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		}
		if tc.want == 200 {
			svc := tc.path[strings.Index(tc.path, "=")+1:]
			if got := resp.Header.Get("Content-Type"); got != "application/x-"+svc+"-advertisement" {
				t.Errorf("%s: Content-Type = %q", tc.path, got)
			}
		}
	}
}

// A push whose body ends before Content-Length must not reach git
// http-backend, which would spin forever waiting for the rest.
func TestHTTPTruncatedBody(t *testing.T) {
	needGit(t)
	t.Parallel()
	root := t.TempDir()
	InitBare(t, root, "stack.git", "main")
	srv := StartHTTP(t, root, HTTPOptions{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /stack.git/git-receive-pack HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: application/x-git-receive-pack-request\r\nContent-Length: 1000\r\n\r\n0000")
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	if n := srv.Pushes.Load(); n != 0 {
		t.Errorf("truncated push reached git-receive-pack (%d)", n)
	}
}
