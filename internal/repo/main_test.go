package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// TestMain isolates the git CLI from the user's configuration and doubles as
// a helper process: tests re-execute the test binary with OBOL_REPO_HELPER
// set to run a committer, a lock holder or a crashing commit in a separate
// OS process.
func TestMain(m *testing.M) {
	if mode := os.Getenv("OBOL_REPO_HELPER"); mode != "" {
		os.Exit(helperMain(mode))
	}
	home, err := os.MkdirTemp("", "obol-repo-home-")
	if err != nil {
		panic(err)
	}
	os.Setenv("HOME", home)
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	for _, k := range []string{"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"} {
		os.Unsetenv(k)
	}
	os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[user]\n\tname = CLI User\n\temail = cli@example.com\n[init]\n\tdefaultBranch = main\n"), 0o644)
	code := m.Run()
	cleanupBenchFixtures()
	os.RemoveAll(home)
	os.Exit(code)
}

// helperMain runs in a child process. Its arguments come from the
// environment: OBOL_REPO_DIR and mode-specific variables.
func helperMain(mode string) int {
	dir := os.Getenv("OBOL_REPO_DIR")
	r, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch mode {
	case "hold-lock":
		lk, err := acquireLock(ctx, r.GitDir())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		_ = lk
		fmt.Println("locked")
		time.Sleep(time.Hour)
		return 0
	case "commit":
		n, _ := strconv.Atoi(os.Getenv("OBOL_N"))
		prefix := os.Getenv("OBOL_PREFIX")
		for i := range n {
			p := fmt.Sprintf("%s/f%d.txt", prefix, i)
			_, err := r.Commit(ctx, CommitRequest{
				Message: "add " + p,
				Author:  Signature{Name: "Helper", Email: "helper@example.com"},
				Build: func(*Snapshot) ([]Change, error) {
					return []Change{{Path: p, Content: []byte(p + "\n")}}, nil
				},
			})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return 0
	case "crash-after-ref-move":
		testHookAfterRefMove = func() error {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
			return nil
		}
		_, err := r.Commit(ctx, CommitRequest{
			Message: "crashing commit",
			Author:  Signature{Name: "Helper", Email: "helper@example.com"},
			Build: func(*Snapshot) ([]Change, error) {
				return []Change{
					{Path: "app/a.txt", Content: []byte("new a\n")},
					{Path: "app/b.txt", Delete: true},
					{Path: "app/c/d.txt", Content: []byte("new d\n")},
				}, nil
			},
		})
		fmt.Fprintln(os.Stderr, "unexpected return:", err)
		return 3
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// helperCmd prepares a child process of this test binary in the given mode.
func helperCmd(t testing.TB, mode, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OBOL_REPO_HELPER="+mode, "OBOL_REPO_DIR="+dir)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// git runs the git CLI in dir and returns its trimmed stdout.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := gitErr(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func gitErr(dir string, args ...string) (string, error) {
	return gitRun(dir, nil, "", args...)
}

// gitEnv runs git with extra environment variables.
func gitEnv(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := gitRun(dir, env, "", args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// gitStdin runs git with stdin.
func gitStdin(t testing.TB, dir, stdin string, args ...string) string {
	t.Helper()
	out, err := gitRun(dir, nil, stdin, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func gitRun(dir string, env []string, stdin string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s%s", err, stderr.String(), stdout.String())
	}
	return strings.TrimRight(stdout.String(), "\n"), nil
}

var testAuthor = Signature{Name: "Obol Tester", Email: "tester@example.com"}

func initRepo(t testing.TB, bare bool) *Repo {
	t.Helper()
	r, err := Init(t.TempDir(), InitOptions{Bare: bare})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// put commits writes (path -> content) and deletes in one commit.
func put(t testing.TB, r *Repo, files map[string]string, deletes ...string) Result {
	t.Helper()
	res, err := r.Commit(context.Background(), CommitRequest{
		Message: "test commit",
		Author:  testAuthor,
		Build: func(*Snapshot) ([]Change, error) {
			return changesOf(files, deletes...), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func changesOf(files map[string]string, deletes ...string) []Change {
	var cs []Change
	for _, d := range deletes {
		cs = append(cs, Change{Path: d, Delete: true})
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		cs = append(cs, Change{Path: p, Content: []byte(files[p])})
	}
	return cs
}

// assertConsistent checks what every commit must leave behind: a repository
// `git fsck --strict` accepts and, with a work tree, a clean `git status` and
// an index equal to HEAD.
func assertConsistent(t testing.TB, r *Repo) {
	t.Helper()
	if out, err := gitErr(r.Dir(), "fsck", "--strict", "--no-dangling"); err != nil || out != "" {
		t.Fatalf("git fsck --strict: %v\n%s", err, out)
	}
	if r.Bare() {
		return
	}
	if out := git(t, r.Dir(), "status", "--porcelain", "--untracked-files=all"); out != "" {
		t.Fatalf("git status --porcelain not empty:\n%s", out)
	}
	if out := git(t, r.Dir(), "diff", "--cached", "--stat"); out != "" {
		t.Fatalf("git diff --cached not empty:\n%s", out)
	}
	// The index must match HEAD exactly, not only look clean to status.
	idx := git(t, r.Dir(), "ls-files", "-s")
	head := git(t, r.Dir(), "ls-tree", "-r", "--format=%(objectmode) %(objectname) 0\t%(path)", "HEAD")
	if idx != head {
		t.Fatalf("index differs from HEAD:\nindex:\n%s\nHEAD:\n%s", idx, head)
	}
}

// treeFiles lists path -> content of a commit with the git CLI.
func treeFiles(t testing.TB, dir, rev string) map[string]string {
	t.Helper()
	out := map[string]string{}
	list := git(t, dir, "ls-tree", "-r", "--name-only", "-z", rev)
	for _, p := range strings.Split(strings.TrimRight(list, "\x00"), "\x00") {
		if p == "" {
			continue
		}
		out[p] = git(t, dir, "cat-file", "blob", rev+":"+p)
	}
	return out
}

// hashDir fingerprints every file, directory and symlink under dir (content,
// mode, mtime) so a test can prove nothing was written. Directory mtimes
// (which change when a lock file comes and goes) count only when strict.
func hashDir(t testing.TB, dir string, strict bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := fmt.Sprintf("%v %d", fi.Mode(), fi.ModTime().UnixNano())
		if d.IsDir() && !strict {
			sum = "dir"
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(data)
			sum += " " + hex.EncodeToString(h[:])
		}
		out[rel] = sum
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func countObjects(t testing.TB, r *Repo) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(r.GitDir(), "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func headOf(t testing.TB, r *Repo) plumbing.Hash {
	t.Helper()
	h, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func readWT(t testing.TB, r *Repo, p string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.Dir(), filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeWT(t testing.TB, r *Repo, p, content string) {
	t.Helper()
	full := filepath.Join(r.Dir(), filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
