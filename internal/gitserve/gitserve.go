// Package gitserve is a read-only smart-HTTP git endpoint (upload-pack only,
// protocol v0/v1, stateless RPC) built on go-git's plumbing. It needs no git
// binary, so it runs in a FROM-scratch image, and it is what Flux's
// source-controller fetches the stack repo from.
//
// # URL to repository mapping
//
// The handler serves the repositories under Options.Root:
//
//   - If Root itself is a git repository (a bare repo, or a work tree whose
//     .git is a directory), then every URL name maps to it: /stack.git,
//     /anything.git and /anything all serve Root.
//   - Otherwise /<name>.git (or /<name>) maps to Root/<name> or, failing that,
//     Root/<name>.git. The directory may be a bare repo or a work tree; for a
//     work tree its .git directory is served.
//
// A name must match [A-Za-z0-9][A-Za-z0-9._-]* and contain no "..". A name
// that does not resolve to a repository, or resolves (through symlinks) to a
// path outside Root, gets 404. Nothing is ever served except through
// upload-pack: there is no dumb-HTTP file serving. git-receive-pack (push) is
// refused with 403.
//
// Routes:
//
//	GET  /healthz                                   200 "ok"
//	GET  /<name>.git/info/refs?service=git-upload-pack  ref advertisement
//	POST /<name>.git/git-upload-pack                 negotiation + packfile
//	*    /<name>.git/info/refs?service=git-receive-pack  403
//	*    /<name>.git/git-receive-pack                403
package gitserve

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/obol/obol/internal/repo"
)

// Version is reported in the agent capability (agent=obol-git/<Version>).
// cmd/obol-git overrides it through Options.Version.
const Version = "dev"

// Defaults for Options fields left zero.
const (
	DefaultMaxRequestBytes = 10 << 20 // after gunzip
	DefaultRequestTimeout  = 5 * time.Minute
)

// Options configures the handler.
type Options struct {
	// Root is a directory holding one or more repositories, or a single
	// repository (see the package documentation for the mapping rule).
	Root string
	// Logger receives one record per request and errors. Nil discards.
	Logger *slog.Logger
	// Version is advertised as agent=obol-git/<Version>; empty means "dev".
	Version string
	// MaxRequestBytes bounds an upload-pack request body (after gunzip).
	MaxRequestBytes int64
	// RequestTimeout bounds the time spent serving one request.
	RequestTimeout time.Duration
}

type server struct {
	root       string // absolute, symlinks resolved
	rootIsRepo string // git dir when Root itself is a repo, else ""
	log        *slog.Logger
	agent      string
	maxBody    int64
	timeout    time.Duration
}

// New returns the read-only smart-HTTP handler for opts.Root.
func New(opts Options) (http.Handler, error) {
	if opts.Root == "" {
		return nil, errors.New("gitserve: Root is required")
	}
	abs, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("gitserve: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("gitserve: root: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("gitserve: root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("gitserve: root %s is not a directory", opts.Root)
	}
	s := &server{
		root:    real,
		log:     opts.Logger,
		maxBody: opts.MaxRequestBytes,
		timeout: opts.RequestTimeout,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	v := opts.Version
	if v == "" {
		v = Version
	}
	s.agent = "obol-git/" + v
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxRequestBytes
	}
	if s.timeout <= 0 {
		s.timeout = DefaultRequestTimeout
	}
	if gd, ok := s.gitDirOf(real); ok {
		s.rootIsRepo = gd
	}
	return s, nil
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`) })

type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(p))
			if w.status == 0 {
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", w.status, "bytes", w.n, "duration_ms", time.Since(start).Milliseconds(),
			"remote", r.RemoteAddr, "user_agent", r.UserAgent())
	}()
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	r = r.WithContext(ctx)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.timeout))
	_ = rc.SetReadDeadline(time.Now().Add(s.timeout))
	s.route(w, r)
}

func (s *server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/healthz" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.Contains(p, "\\") {
		http.NotFound(w, r)
		return
	}
	name, rest, ok := strings.Cut(p[1:], "/")
	if !ok || !nameRE().MatchString(name) {
		http.NotFound(w, r)
		return
	}
	switch rest {
	case "info/refs":
		svc := r.URL.Query().Get("service")
		switch svc {
		case "git-upload-pack":
		case "git-receive-pack":
			forbidden(w, "this git endpoint is read-only: push (git-receive-pack) is not allowed")
			return
		case "":
			forbidden(w, "only the smart HTTP protocol is served (dumb HTTP is not supported)")
			return
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		gitDir, ok := s.resolve(name)
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.serveInfoRefs(w, r, gitDir)
	case "git-upload-pack":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		gitDir, ok := s.resolve(name)
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.serveUploadPack(w, r, gitDir)
	case "git-receive-pack":
		forbidden(w, "this git endpoint is read-only: push (git-receive-pack) is not allowed")
	default:
		http.NotFound(w, r)
	}
}

func forbidden(w http.ResponseWriter, msg string) {
	http.Error(w, msg, http.StatusForbidden)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// resolve maps a URL name to a git directory inside Root.
func (s *server) resolve(name string) (string, bool) {
	if s.rootIsRepo != "" {
		return s.rootIsRepo, true
	}
	base := strings.TrimSuffix(name, ".git")
	if base == "" || strings.Contains(name, "..") {
		return "", false
	}
	for _, cand := range []string{name, base, base + ".git"} {
		if gd, ok := s.gitDirOf(filepath.Join(s.root, cand)); ok {
			return gd, true
		}
	}
	return "", false
}

// within reports whether p (symlinks resolved) is Root or below it.
func (s *server) within(p string) bool {
	rel, err := filepath.Rel(s.root, p)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel))
}

// gitDirOf returns the git directory of dir (dir itself when bare, dir/.git
// for a work tree), with symlinks resolved and confined to Root.
func (s *server) gitDirOf(dir string) (string, bool) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil || !s.within(real) {
		return "", false
	}
	if repo.IsGitDir(real) {
		return real, true
	}
	dot, err := filepath.EvalSymlinks(filepath.Join(real, ".git"))
	if err != nil || !s.within(dot) {
		return "", false
	}
	if repo.IsGitDir(dot) {
		return dot, true
	}
	return "", false
}

// openStorage opens gitDir with go-git's filesystem storage over a
// read-only, bound (no symlink escape) filesystem.
func openStorage(gitDir string) *filesystem.Storage {
	fs := readOnlyFS{osfs.New(gitDir, osfs.WithBoundOS())}
	return filesystem.NewStorageWithOptions(fs, cache.NewObjectLRUDefault(), filesystem.Options{})
}

var errReadOnly = errors.New("gitserve: repository is opened read-only")

// readOnlyFS refuses every write operation of the wrapped filesystem.
type readOnlyFS struct{ billy.Filesystem }

func (readOnlyFS) Create(string) (billy.File, error) { return nil, errReadOnly }
func (f readOnlyFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		return nil, errReadOnly
	}
	return f.Filesystem.OpenFile(name, flag, perm)
}
func (readOnlyFS) Rename(string, string) error                 { return errReadOnly }
func (readOnlyFS) Remove(string) error                         { return errReadOnly }
func (readOnlyFS) TempFile(string, string) (billy.File, error) { return nil, errReadOnly }
func (readOnlyFS) MkdirAll(string, os.FileMode) error          { return errReadOnly }
func (readOnlyFS) Symlink(string, string) error                { return errReadOnly }
func (f readOnlyFS) Chroot(p string) (billy.Filesystem, error) {
	c, err := f.Filesystem.Chroot(p)
	if err != nil {
		return nil, err
	}
	return readOnlyFS{c}, nil
}

// requestBody returns the (gunzipped) request body, bounded by maxBody.
// The error is an *httpError carrying 400 or 413.
func (s *server) requestBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, s.maxBody)
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, &httpError{http.StatusRequestEntityTooLarge, "request body too large"}
			}
			return nil, &httpError{http.StatusBadRequest, "bad gzip request body: " + err.Error()}
		}
		defer zr.Close()
		body = zr
	default:
		return nil, &httpError{http.StatusUnsupportedMediaType, "unsupported Content-Encoding"}
	}
	b, err := io.ReadAll(io.LimitReader(body, s.maxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpError{http.StatusRequestEntityTooLarge, "request body too large"}
		}
		return nil, &httpError{http.StatusBadRequest, "reading request body: " + err.Error()}
	}
	if int64(len(b)) > s.maxBody {
		return nil, &httpError{http.StatusRequestEntityTooLarge, "request body too large"}
	}
	return b, nil
}

type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }
