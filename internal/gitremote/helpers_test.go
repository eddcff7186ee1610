package gitremote

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/obol/obol/internal/gittest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// envMap is a Getenv over a fixed map (no process environment at all).
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// noEnv is AuthOptions with an empty environment and no credential helper,
// so tests never see the developer's tokens, keys or agent.
func noEnv() AuthOptions {
	return AuthOptions{Getenv: envMap(nil), NoCredentialHelper: true}
}

// initWork makes a work tree with `git init -b main` and returns it; its
// git directory is dir/.git.
func initWork(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, t.TempDir(), nil, "init", "--quiet", "-b", "main", dir)
	return dir
}

func gitDir(work string) string { return filepath.Join(work, ".git") }

// commit writes files into the work tree and commits them with the git CLI.
func commit(t *testing.T, work string, files map[string]string, msg string) plumbing.Hash {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	gittest.Git(t, work, nil, "add", "-A")
	gittest.Git(t, work, nil, "commit", "--quiet", "--allow-empty", "-m", msg)
	return plumbing.NewHash(gittest.Git(t, work, nil, "rev-parse", "HEAD"))
}

// remoteHead is the bare repository's refs/heads/<branch> (zero if absent).
func remoteHead(t *testing.T, bare, branch string) plumbing.Hash {
	t.Helper()
	out, _, err := gittest.TryGit(t, bare, nil, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch)
	if err != nil {
		return plumbing.ZeroHash
	}
	return plumbing.NewHash(out)
}

// seed makes a bare repository under root with a few commits on main and
// returns its path and the commits, oldest first.
func seed(t *testing.T, root, name string, n int) (string, []plumbing.Hash) {
	t.Helper()
	bare := gittest.InitBare(t, root, name, "main")
	work := initWork(t)
	var hs []plumbing.Hash
	for i := 0; i < n; i++ {
		hs = append(hs, commit(t, work, map[string]string{
			"README.md":                   strings.Repeat("line\n", i+1),
			filepath.Join("dir", "f.txt"): "commit " + string(rune('a'+i%26)) + "\n",
		}, "seed"))
	}
	gittest.Git(t, work, nil, "push", "--quiet", bare, "main")
	return bare, hs
}

// hasObject reports whether `git cat-file -e` finds h in the repository.
func hasObject(t *testing.T, dir string, h plumbing.Hash) bool {
	t.Helper()
	_, _, err := gittest.TryGit(t, dir, nil, "cat-file", "-e", h.String())
	return err == nil
}

// packs lists the pack files in a git directory.
func packs(t *testing.T, gd string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(gd, "objects", "pack", "pack-*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// packCount is the number of objects in a pack (from git verify-pack).
func packCount(t *testing.T, pack string) int {
	t.Helper()
	out := gittest.Git(t, filepath.Dir(pack), nil, "verify-pack", "-v", strings.TrimSuffix(pack, ".pack")+".idx")
	n := 0
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && len(f[0]) == 40 {
			n++
		}
	}
	return n
}
