package gitserve

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
)

func needGit(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
}

var gitHome struct {
	once sync.Once
	dir  string
}

func gitEnv() []string {
	gitHome.once.Do(func() {
		d, err := os.MkdirTemp("", "gitserve-home")
		if err != nil {
			panic(err)
		}
		gitHome.dir = d
	})
	return append(os.Environ(),
		"HOME="+gitHome.dir,
		"XDG_CONFIG_HOME="+gitHome.dir,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"http_proxy=", "https_proxy=", "HTTP_PROXY=", "HTTPS_PROXY=", "no_proxy=*",
	)
}

// gitOut runs git in dir and returns trimmed stdout; fails the test on error.
func gitOut(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := gitTry(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func gitTry(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeRepo creates a non-bare repo with several commits, a few dirs, an
// annotated and a lightweight tag, and a second branch.
func makeRepo(t testing.TB, dir string) {
	t.Helper()
	gitOut(t, "", "init", "-q", "-b", "main", dir)
	for i := 1; i <= 5; i++ {
		writeFile(t, filepath.Join(dir, "README.md"), fmt.Sprintf("# stack\nrev %d\n", i))
		writeFile(t, filepath.Join(dir, "apps", fmt.Sprintf("app%d", i), "kustomization.yaml"),
			fmt.Sprintf("resources:\n- deploy.yaml\n# %d\n", i))
		writeFile(t, filepath.Join(dir, "infra", "base", "ns.yaml"), strings.Repeat(fmt.Sprintf("line %d\n", i), 50))
		writeFile(t, filepath.Join(dir, "clusters", "local", "flux.yaml"), fmt.Sprintf("v: %d\n", i))
		gitOut(t, dir, "add", "-A")
		gitOut(t, dir, "commit", "-q", "-m", fmt.Sprintf("commit %d", i))
		if i == 3 {
			gitOut(t, dir, "tag", "-a", "v0.3.0", "-m", "release 0.3.0")
			gitOut(t, dir, "tag", "light")
			gitOut(t, dir, "branch", "old")
		}
	}
}

func commitMore(t testing.TB, dir, msg string) string {
	t.Helper()
	writeFile(t, filepath.Join(dir, "apps", "new", msg+".yaml"), "msg: "+msg+"\n")
	writeFile(t, filepath.Join(dir, "README.md"), "# stack\n"+msg+"\n")
	gitOut(t, dir, "add", "-A")
	gitOut(t, dir, "commit", "-q", "-m", msg)
	return gitOut(t, dir, "rev-parse", "HEAD")
}

func startServer(t testing.TB, root string) *httptest.Server {
	t.Helper()
	h, err := New(Options{Root: root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestCloneFullAndFetch(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	srv := startServer(t, src) // Root is itself a (non-bare) repo
	dst := filepath.Join(t.TempDir(), "dst")
	gitOut(t, "", "clone", "-q", srv.URL+"/stack.git", dst)
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")
	for _, rev := range []string{"HEAD", "HEAD^{tree}", "v0.3.0", "v0.3.0^{commit}", "light", "origin/old"} {
		if a, b := gitOut(t, src, "rev-parse", strings.TrimPrefix(rev, "origin/")), gitOut(t, dst, "rev-parse", rev); a != b {
			t.Errorf("%s: source %s, clone %s", rev, a, b)
		}
	}
	if n := gitOut(t, dst, "rev-list", "--count", "HEAD"); n != "5" {
		t.Errorf("clone has %s commits, want 5", n)
	}
	if st := gitOut(t, dst, "status", "--porcelain"); st != "" {
		t.Errorf("clone work tree not clean: %s", st)
	}
	// Incremental fetch: negotiation with haves.
	head := commitMore(t, src, "six")
	gitOut(t, dst, "fetch", "-q", "origin")
	if got := gitOut(t, dst, "rev-parse", "origin/main"); got != head {
		t.Fatalf("after fetch origin/main = %s, want %s", got, head)
	}
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")
}

func TestMultiRepoRoot(t *testing.T) {
	needGit(t)
	root := t.TempDir()
	makeRepo(t, filepath.Join(root, "work"))
	gitOut(t, root, "clone", "-q", "--bare", filepath.Join(root, "work"), filepath.Join(root, "bare.git"))
	if err := os.Mkdir(filepath.Join(root, "plain"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, root)
	want := gitOut(t, filepath.Join(root, "work"), "rev-parse", "HEAD")
	for _, name := range []string{"work.git", "work", "bare.git", "bare"} {
		dst := filepath.Join(t.TempDir(), "c")
		gitOut(t, "", "clone", "-q", srv.URL+"/"+name, dst)
		if got := gitOut(t, dst, "rev-parse", "HEAD"); got != want {
			t.Errorf("%s: HEAD %s want %s", name, got, want)
		}
	}
	for _, name := range []string{"plain.git", "missing.git"} {
		if code := get(t, srv.URL+"/"+name+"/info/refs?service=git-upload-pack"); code != 404 {
			t.Errorf("%s: status %d, want 404", name, code)
		}
	}
}

func get(t testing.TB, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestShallowCloneFetchUnshallow(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	srv := startServer(t, src)
	dst := filepath.Join(t.TempDir(), "dst")
	gitOut(t, "", "clone", "-q", "--depth", "1", srv.URL+"/stack.git", dst)
	head := gitOut(t, src, "rev-parse", "HEAD")
	shallow, err := os.ReadFile(filepath.Join(dst, ".git", "shallow"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(shallow)) != head {
		t.Fatalf(".git/shallow = %q, want %s", shallow, head)
	}
	if a, b := gitOut(t, src, "rev-parse", "HEAD^{tree}"), gitOut(t, dst, "rev-parse", "HEAD^{tree}"); a != b {
		t.Fatalf("tree %s != %s", b, a)
	}
	if n := gitOut(t, dst, "rev-list", "--count", "HEAD"); n != "1" {
		t.Fatalf("shallow clone has %s commits", n)
	}
	b1, _ := os.ReadFile(filepath.Join(src, "infra", "base", "ns.yaml"))
	b2, _ := os.ReadFile(filepath.Join(dst, "infra", "base", "ns.yaml"))
	if !bytes.Equal(b1, b2) {
		t.Fatal("file content differs")
	}
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")

	// New commit, shallow fetch.
	head2 := commitMore(t, src, "six")
	gitOut(t, dst, "fetch", "-q", "--depth", "1", "origin")
	if got := gitOut(t, dst, "rev-parse", "origin/main"); got != head2 {
		t.Fatalf("origin/main = %s, want %s", got, head2)
	}
	if a, b := gitOut(t, src, "rev-parse", "HEAD^{tree}"), gitOut(t, dst, "rev-parse", "origin/main^{tree}"); a != b {
		t.Fatalf("tree %s != %s", b, a)
	}
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")

	// Unshallow: full history.
	gitOut(t, dst, "fetch", "-q", "--unshallow", "origin")
	if _, err := os.Stat(filepath.Join(dst, ".git", "shallow")); !os.IsNotExist(err) {
		t.Fatalf(".git/shallow still present (err=%v)", err)
	}
	if a, b := gitOut(t, src, "rev-list", "--count", "HEAD"), gitOut(t, dst, "rev-list", "--count", "origin/main"); a != b {
		t.Fatalf("unshallowed history has %s commits, source %s", b, a)
	}
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")
}

func TestDeepenTwo(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	srv := startServer(t, src)
	dst := filepath.Join(t.TempDir(), "dst")
	gitOut(t, "", "clone", "-q", "--depth", "2", "--no-single-branch", srv.URL+"/stack.git", dst)
	if n := gitOut(t, dst, "rev-list", "--count", "origin/main"); n != "2" {
		t.Fatalf("depth 2 clone has %s commits on main", n)
	}
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")
	gitOut(t, dst, "fetch", "-q", "--depth", "3", "origin")
	// Wants main (C5) and old (C3): depth 3 reaches the root C1 through old,
	// so every shallow line is lifted.
	if n := gitOut(t, dst, "rev-list", "--count", "origin/main"); n != "5" {
		t.Fatalf("after --depth 3: %s commits on main", n)
	}
	if _, err := os.Stat(filepath.Join(dst, ".git", "shallow")); !os.IsNotExist(err) {
		sh, _ := os.ReadFile(filepath.Join(dst, ".git", "shallow"))
		t.Fatalf(".git/shallow still present: %q", sh)
	}
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")
	// --deepen needs deepen-relative, which is not advertised.
	if out, err := gitTry(dst, "fetch", "-q", "--deepen", "1", "origin"); err == nil {
		t.Fatalf("--deepen unexpectedly worked: %s", out)
	}
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")
}

// buildGoGitClient builds testdata/gogitclient, a separate module driving
// go-git's client (git.PlainClone/Fetch) as Flux source-controller does.
func buildGoGitClient(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	bin := filepath.Join(t.TempDir(), "gogitclient")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("testdata", "gogitclient")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build the go-git client helper (module cache/proxy unavailable?): %v\n%s", err, out)
	}
	return bin
}

func runClient(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gogitclient %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestGoGitShallowCloneAndFetch(t *testing.T) {
	needGit(t)
	if testing.Short() {
		t.Skip("builds a helper binary")
	}
	bin := buildGoGitClient(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	srv := startServer(t, src)
	dst := filepath.Join(t.TempDir(), "dst")
	head := runClient(t, bin, "clone", srv.URL+"/stack.git", dst)
	if want := gitOut(t, src, "rev-parse", "HEAD"); head != want {
		t.Fatalf("HEAD %s want %s", head, want)
	}
	for _, f := range []string{"README.md", "infra/base/ns.yaml", "apps/app5/kustomization.yaml"} {
		a, _ := os.ReadFile(filepath.Join(src, f))
		b, err := os.ReadFile(filepath.Join(dst, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s differs (err=%v)", f, err)
		}
	}
	if sh, _ := os.ReadFile(filepath.Join(dst, ".git", "shallow")); strings.TrimSpace(string(sh)) != head {
		t.Fatalf(".git/shallow = %q", sh)
	}
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")

	head2 := commitMore(t, src, "six")
	if got := runClient(t, bin, "fetch", dst); got != head2 {
		t.Fatalf("after fetch origin/main %s want %s", got, head2)
	}
	if got := gitOut(t, dst, "show", "--format=", "--name-only", head2); !strings.Contains(got, "apps/new/six.yaml") {
		t.Fatalf("fetched commit lacks the new file: %s", got)
	}
	gitOut(t, dst, "fsck", "--strict", "--no-dangling")
	if got := runClient(t, bin, "fetch", dst); got != "up-to-date" {
		t.Fatalf("second fetch: %s", got)
	}
	// A full (non-shallow) go-git clone, with tags.
	got := runClient(t, bin, "fullclone", srv.URL+"/stack.git", filepath.Join(t.TempDir(), "full"))
	if want := head2 + " " + gitOut(t, src, "rev-parse", "v0.3.0"); got != want {
		t.Fatalf("fullclone: %s want %s", got, want)
	}
}

func TestPushRefused(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	srv := startServer(t, src)
	before := gitOut(t, src, "show-ref")
	dst := filepath.Join(t.TempDir(), "dst")
	gitOut(t, "", "clone", "-q", srv.URL+"/stack.git", dst)
	commitMore(t, dst, "pushed")
	out, err := gitTry(dst, "push", "origin", "main")
	if err == nil {
		t.Fatalf("push succeeded: %s", out)
	}
	if !strings.Contains(out, "403") && !strings.Contains(out, "read-only") {
		t.Logf("push output: %s", out)
	}
	if after := gitOut(t, src, "show-ref"); after != before {
		t.Fatalf("server refs changed:\n%s\n%s", before, after)
	}
	if code := get(t, srv.URL+"/stack.git/info/refs?service=git-receive-pack"); code != 403 {
		t.Fatalf("receive-pack info/refs: %d", code)
	}
	resp, err := http.Post(srv.URL+"/stack.git/git-receive-pack", "application/x-git-receive-pack-request", strings.NewReader("0000"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "read-only") {
		t.Fatalf("receive-pack POST: %d %s", resp.StatusCode, body)
	}
}

func TestConfinementAndRoutes(t *testing.T) {
	needGit(t)
	outside := t.TempDir()
	makeRepo(t, filepath.Join(outside, "secret"))
	root := t.TempDir()
	makeRepo(t, filepath.Join(root, "a"))
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "evil2.git")); err != nil {
		t.Fatal(err)
	}
	// A repo whose .git is a symlink to outside.
	if err := os.MkdirAll(filepath.Join(root, "dotlink"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret", ".git"), filepath.Join(root, "dotlink", ".git")); err != nil {
		t.Fatal(err)
	}
	// An in-root symlink is fine.
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "alias")); err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, target string
		code           int
	}{
		{"GET", "/a.git/info/refs?service=git-upload-pack", 200},
		{"GET", "/alias.git/info/refs?service=git-upload-pack", 200},
		{"GET", "/healthz", 200},
		{"GET", "/../x.git/info/refs?service=git-upload-pack", 404},
		{"GET", "/%2e%2e/x.git/info/refs?service=git-upload-pack", 404},
		{"GET", "/..%2fa/info/refs?service=git-upload-pack", 404},
		{"GET", "/a%2f..%2fa.git/info/refs?service=git-upload-pack", 404},
		{"GET", "/evil.git/info/refs?service=git-upload-pack", 404},
		{"GET", "/evil/info/refs?service=git-upload-pack", 404},
		{"GET", "/evil2.git/info/refs?service=git-upload-pack", 404},
		{"GET", "/dotlink.git/info/refs?service=git-upload-pack", 404},
		{"POST", "/evil.git/git-upload-pack", 404},
		{"GET", "/.git/info/refs?service=git-upload-pack", 404},
		{"GET", "/a.git/HEAD", 404},
		{"GET", "/a.git/objects/info/packs", 404},
		{"GET", "/a.git/config", 404},
		{"GET", "/a/.git/config", 404},
		{"GET", "/a.git/info/refs", 403}, // dumb HTTP refused
		{"GET", "/a.git/info/refs?service=git-receive-pack", 403},
		{"POST", "/a.git/git-receive-pack", 403},
		{"POST", "/a.git/info/refs?service=git-upload-pack", 405},
		{"GET", "/a.git/git-upload-pack", 405},
		{"DELETE", "/a.git/git-upload-pack", 405},
		{"GET", "/", 404},
		{"GET", "/a.git/info/refs?service=bogus", 404},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, "http://x"+c.target, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.code {
			t.Errorf("%s %s: %d, want %d (%s)", c.method, c.target, rec.Code, c.code, strings.TrimSpace(rec.Body.String()))
		}
	}
	// Over the wire too (the raw path reaches the server unnormalised).
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, p := range []string{"/../x.git/info/refs?service=git-upload-pack", "/%2e%2e/x.git/info/refs?service=git-upload-pack", "/evil.git/info/refs?service=git-upload-pack"} {
		if code := rawGet(t, srv.Listener.Addr().String(), p); code != 404 {
			t.Errorf("wire %s: %d", p, code)
		}
	}
	// Cloning through the symlink must fail.
	if out, err := gitTry("", "clone", "-q", srv.URL+"/evil.git", filepath.Join(t.TempDir(), "x")); err == nil {
		t.Fatalf("clone of escaping symlink worked: %s", out)
	}
}

// rawGet sends a request line verbatim, without client-side path cleaning.
func rawGet(t *testing.T, addr, target string) int {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = target[:strings.IndexByte(target+"?", '?')]
	if i := strings.IndexByte(target, '?'); i >= 0 {
		req.URL.RawQuery = target[i+1:]
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func pkt(lines ...string) []byte {
	var b bytes.Buffer
	e := pktline.NewEncoder(&b)
	for _, l := range lines {
		if l == "" {
			_ = e.Flush()
		} else {
			_ = e.EncodeString(l)
		}
	}
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

func TestBadBodies(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	head := gitOut(t, src, "rev-parse", "HEAD")
	h, err := New(Options{Root: src, MaxRequestBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	post := func(body []byte, enc string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/stack.git/git-upload-pack", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	big := bytes.Repeat([]byte("0009have\n"), 1000)
	cases := []struct {
		name string
		body []byte
		enc  string
		code int
	}{
		{"garbage", []byte("hello world"), "", 400},
		{"empty", nil, "", 400},
		{"flush only", []byte("0000"), "", 400},
		{"no flush", pkt("want " + head + "\n"), "", 400},
		{"have without flush", pkt("want "+head+"\n", "", "have "+head+"\n"), "", 400},
		{"wants only (shallow probe)", pkt("want "+head+"\n", "deepen 1\n", ""), "", 200},
		{"bad hash", pkt("want xyz\n", "", "done\n"), "", 400},
		{"unknown want", pkt("want "+strings.Repeat("ab", 20)+"\n", "", "done\n"), "", 400},
		{"deepen-since", pkt("want "+head+"\n", "deepen-since 1700000000\n", "", "done\n"), "", 400},
		{"deepen-not", pkt("want "+head+"\n", "deepen-not refs/heads/x\n", "", "done\n"), "", 400},
		{"filter", pkt("want "+head+" filter\n", "filter blob:none\n", "", "done\n"), "", 400},
		{"bad gzip", []byte("not gzip"), "gzip", 400},
		{"oversized", big, "", 413},
		{"oversized after gunzip", gz(big), "gzip", 413},
		{"bad encoding", pkt("want "+head+"\n", "", "done\n"), "br", 415},
		{"ok", pkt("want "+head+" side-band-64k ofs-delta\n", "", "done\n"), "", 200},
		{"ok gzip", gz(pkt("want "+head+" side-band-64k ofs-delta\n", "", "done\n")), "gzip", 200},
	}
	for _, c := range cases {
		rec := post(c.body, c.enc)
		if rec.Code != c.code {
			t.Errorf("%s: %d, want %d: %s", c.name, rec.Code, c.code, rec.Body.String())
		}
	}
}

// TestNegotiationMultiAckDetailed checks the stateless-rpc answers directly.
func TestNegotiationMultiAckDetailed(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	head := gitOut(t, src, "rev-parse", "HEAD")
	old := gitOut(t, src, "rev-parse", "HEAD~2")
	unknown := strings.Repeat("cd", 20)
	h, err := New(Options{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	do := func(body []byte) string {
		req := httptest.NewRequest("POST", "/stack.git/git-upload-pack", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
		return rec.Body.String()
	}
	// Round without done: ACK common for known haves, NAK, no pack.
	got := do(pkt("want "+head+" multi_ack_detailed side-band-64k ofs-delta\n", "", "have "+unknown+"\n", "have "+old+"\n", ""))
	want := string(pkt("ACK "+old+" common\n", "NAK\n"))
	if got != want {
		t.Fatalf("round 1:\n got %q\nwant %q", got, want)
	}
	// Final round: done -> ACK last, then the pack on band 1.
	got = do(pkt("want "+head+" multi_ack_detailed side-band-64k ofs-delta no-progress\n", "", "have "+old+"\n", "done\n"))
	prefix := string(pkt("ACK "+old+" common\n", "ACK "+old+"\n"))
	if !strings.HasPrefix(got, prefix) || !strings.Contains(got[len(prefix):len(prefix)+9], "\x01PACK") {
		t.Fatalf("final round: %q", got[:min(len(got), 200)])
	}
	// Shallow: deepen 1 sends the shallow-update section first.
	got = do(pkt("want "+head+" side-band-64k\n", "deepen 1\n", "", "done\n"))
	prefix = string(pkt("shallow "+head+"\n", "", "NAK\n"))
	if !strings.HasPrefix(got, prefix) {
		t.Fatalf("deepen: %q", got[:min(len(got), 200)])
	}
	// Advertisement.
	req := httptest.NewRequest("GET", "/stack.git/info/refs?service=git-upload-pack", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	adv := rec.Body.String()
	for _, s := range []string{"001e# service=git-upload-pack\n0000", head + " HEAD\x00", "multi_ack_detailed", "side-band-64k",
		"shallow", "no-progress", "include-tag", "symref=HEAD:refs/heads/main", "agent=obol-git/", "refs/tags/v0.3.0^{}"} {
		if !strings.Contains(adv, s) {
			t.Errorf("advertisement lacks %q:\n%s", s, adv)
		}
	}
}

func TestConcurrentClones(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	srv := startServer(t, src)
	want := gitOut(t, src, "rev-parse", "HEAD")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dst := filepath.Join(t.TempDir(), strconv.Itoa(i))
			args := []string{"clone", "-q", srv.URL + "/stack.git", dst}
			if i%2 == 0 {
				args = []string{"clone", "-q", "--depth", "1", srv.URL + "/stack.git", dst}
			}
			if out, err := gitTry("", args...); err != nil {
				errs <- fmt.Errorf("%w: %s", err, out)
				return
			}
			if got, _ := gitTry(dst, "rev-parse", "HEAD"); strings.TrimSpace(got) != want {
				errs <- fmt.Errorf("clone %d HEAD %s", i, got)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEmptyRepo(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	gitOut(t, "", "init", "-q", "-b", "main", src)
	srv := startServer(t, src)
	out, err := gitTry("", "clone", srv.URL+"/stack.git", filepath.Join(t.TempDir(), "d"))
	if err != nil {
		t.Fatalf("clone of empty repo: %v %s", err, out)
	}
}

func FuzzUploadPackRequest(f *testing.F) {
	h := strings.Repeat("ab", 20)
	f.Add(pkt("want "+h+" multi_ack_detailed side-band-64k ofs-delta agent=git/2\n", "", "done\n"))
	f.Add(pkt("want "+h+"\n", "shallow "+h+"\n", "deepen 1\n", "", "have "+h+"\n", "", "have "+h+"\n", "done\n"))
	f.Add(pkt("want "+h+"\n", "deepen 2147483647\n", "", "have "+h+"\n", ""))
	f.Add(pkt("want "+h+"\n", "deepen-since 5\n", ""))
	f.Add([]byte("0000"))
	f.Add([]byte("ffff"))
	f.Add([]byte("0004"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := parseUploadPackRequest(b)
		if err != nil {
			return
		}
		if len(q.Wants) == 0 {
			t.Fatalf("accepted request without wants: %+v", q)
		}
		if n := len(q.Events); n > 0 && q.Events[n-1].kind != evDone && q.Events[n-1].kind != evFlush {
			t.Fatalf("accepted request not ending in flush/done")
		}
		if q.Depth < 0 || q.Depth > infiniteDepth {
			t.Fatalf("depth %d", q.Depth)
		}
	})
}

// BenchmarkShallowClone compares `git clone --depth 1` of a 2,000-file repo
// through this endpoint with `git clone --depth 1 file://` (which runs the
// real git upload-pack locally) in the same run.
func BenchmarkShallowClone(b *testing.B) {
	needGit(b)
	src := filepath.Join(b.TempDir(), "src")
	gitOut(b, "", "init", "-q", "-b", "main", src)
	for i := 0; i < 2000; i++ {
		writeFile(b, filepath.Join(src, fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d.yaml", i)),
			fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\ndata:\n  k: %q\n", i, strings.Repeat("x", i%200)))
	}
	gitOut(b, src, "add", "-A")
	gitOut(b, src, "commit", "-q", "-m", "one")
	writeFile(b, filepath.Join(src, "d00", "f0000.yaml"), "changed\n")
	gitOut(b, src, "commit", "-q", "-am", "two")
	srv := startServer(b, src)
	for _, mode := range []struct{ name, flag string }{{"checkout", "--checkout"}, {"no-checkout", "--no-checkout"}} {
		b.Run(mode.name, func(b *testing.B) {
			tmp := b.TempDir()
			var httpDur, fileDur time.Duration
			for i := 0; i < b.N; i++ {
				d1 := filepath.Join(tmp, fmt.Sprintf("h%d", i))
				t0 := time.Now()
				gitOut(b, "", "clone", "-q", mode.flag, "--depth", "1", srv.URL+"/stack.git", d1)
				httpDur += time.Since(t0)
				d2 := filepath.Join(tmp, fmt.Sprintf("f%d", i))
				t0 = time.Now()
				gitOut(b, "", "clone", "-q", mode.flag, "--depth", "1", "file://"+src, d2)
				fileDur += time.Since(t0)
				b.StopTimer()
				_ = os.RemoveAll(d1)
				_ = os.RemoveAll(d2)
				b.StartTimer()
			}
			b.ReportMetric(float64(httpDur.Milliseconds())/float64(b.N), "obolgit-ms/clone")
			b.ReportMetric(float64(fileDur.Milliseconds())/float64(b.N), "gitfile-ms/clone")
			b.ReportMetric(float64(httpDur)/float64(fileDur), "ratio")
		})
	}
}

// TestShallowFetchSendsOnlyNewObjects: a depth-1 fetch by a shallow client
// must not resend the trees and blobs of the commit it has.
func TestShallowFetchSendsOnlyNewObjects(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	old := gitOut(t, src, "rev-parse", "HEAD")
	head := commitMore(t, src, "six")
	h, err := New(Options{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	body := pkt("want "+head+" ofs-delta\n", "shallow "+old+"\n", "deepen 1\n", "", "have "+old+"\n", "done\n")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/stack.git/git-upload-pack", bytes.NewReader(body)))
	got := rec.Body.Bytes()
	prefix := pkt("shallow "+head+"\n", "", "ACK "+old+"\n")
	if !bytes.HasPrefix(got, prefix) || !bytes.HasPrefix(got[len(prefix):], []byte("PACK")) {
		t.Fatalf("response: %q", got[:min(len(got), 200)])
	}
	p := got[len(prefix):]
	n := int(p[8])<<24 | int(p[9])<<16 | int(p[10])<<8 | int(p[11])
	// commit, root tree, apps/, apps/new/, apps/new/six.yaml, README.md
	if n != 6 {
		t.Fatalf("pack has %d objects, want 6", n)
	}
}

// A commit reset away (a secret committed once, say) is still in the object database until
// git gc, but no ref reaches it: obol-git refuses to serve it by its hash, as git's own
// upload-pack does, while a commit in a branch's history is served. The requests are made by
// hand: git's client will not even ask for an object the server did not advertise.
func TestServesOnlyReachableObjects(t *testing.T) {
	needGit(t)
	src := filepath.Join(t.TempDir(), "src")
	makeRepo(t, src)
	old := gitOut(t, src, "rev-parse", "HEAD~2")
	gone := commitMore(t, src, "a secret")
	blob := gitOut(t, src, "rev-parse", "HEAD:apps/new/a secret.yaml")
	gitOut(t, src, "reset", "-q", "--hard", "HEAD~1")
	gitOut(t, src, "reflog", "expire", "--expire=now", "--all")
	if gitOut(t, src, "cat-file", "-t", gone) != "commit" {
		t.Fatal("the reset commit should still be in the object database")
	}
	srv := startServer(t, src)
	want := func(h string) (int, string) {
		line := "want " + h + "\n"
		body := fmt.Sprintf("%04x%s0000%04xdone\n", len(line)+4, line, len("done\n")+4)
		resp, err := http.Post(srv.URL+"/stack.git/git-upload-pack", "application/x-git-upload-pack-request", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, h := range []string{gone, blob} {
		if code, body := want(h); code != http.StatusBadRequest || !strings.Contains(body, "not our ref "+h) {
			t.Errorf("want of unreachable %s: %d %q", h, code, body)
		}
	}
	for _, h := range []string{old, gitOut(t, src, "rev-parse", "HEAD")} {
		if code, body := want(h); code != http.StatusOK || !strings.Contains(body, "PACK") {
			t.Errorf("want of reachable %s: %d %.80q", h, code, body)
		}
	}
}
