package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestInitAndOpen(t *testing.T) {
	for _, bare := range []bool{false, true} {
		t.Run(map[bool]string{false: "worktree", true: "bare"}[bare], func(t *testing.T) {
			dir := t.TempDir()
			r, err := Init(dir, InitOptions{Bare: bare, Branch: "trunk"})
			if err != nil {
				t.Fatal(err)
			}
			if r.Bare() != bare || r.Branch() != "trunk" || r.Dir() != dir {
				t.Fatalf("Bare=%v Branch=%q Dir=%q", r.Bare(), r.Branch(), r.Dir())
			}
			wantGitDir := dir
			if !bare {
				wantGitDir = filepath.Join(dir, ".git")
			}
			if r.GitDir() != wantGitDir {
				t.Fatalf("GitDir = %s, want %s", r.GitDir(), wantGitDir)
			}
			if h := headOf(t, r); !h.IsZero() {
				t.Fatalf("unborn head = %s", h)
			}
			// The git CLI sees the same repository: HEAD on the unborn branch.
			if got := git(t, dir, "symbolic-ref", "HEAD"); got != "refs/heads/trunk" {
				t.Fatalf("git symbolic-ref HEAD = %q", got)
			}
			if got := git(t, dir, "rev-parse", "--is-bare-repository"); got != map[bool]string{false: "false", true: "true"}[bare] {
				t.Fatalf("git rev-parse --is-bare-repository = %s", got)
			}
			if _, err := Init(dir, InitOptions{Bare: bare}); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("second Init: %v", err)
			}

			put(t, r, map[string]string{"README.md": "hello\n"})
			res, err := r.Commit(context.Background(), CommitRequest{
				Message: "second commit\n\nwith a body",
				Author:  Signature{Name: "Ada Lovelace", Email: "ada@example.com", When: time.Unix(1700000000, 0).In(time.FixedZone("", 3600))},
				Build: func(*Snapshot) ([]Change, error) {
					return []Change{{Path: "docs/guide.md", Content: []byte("guide\n")}}, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			assertConsistent(t, r)
			log := git(t, dir, "log", "--format=%H|%an|%ae|%cn|%ce|%at|%ai|%s|%b", "trunk")
			lines := strings.Split(log, "\n")
			if len(lines) != 3 && len(lines) != 2 { // body may add a line
				t.Fatalf("git log:\n%s", log)
			}
			want := res.Commit.String() + "|Ada Lovelace|ada@example.com|Ada Lovelace|ada@example.com|1700000000|2023-11-14 23:13:20 +0100|second commit|with a body"
			if lines[0] != want {
				t.Fatalf("git log first line:\n got %s\nwant %s", lines[0], want)
			}
			if n := git(t, dir, "rev-list", "--count", "trunk"); n != "2" {
				t.Fatalf("rev-list --count = %s", n)
			}

			// Open finds the same repository, from the work tree or bare dir.
			r2, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if r2.GitDir() != r.GitDir() || r2.Bare() != bare || headOf(t, r2) != res.Commit {
				t.Fatalf("reopened: gitdir %s bare %v head %s", r2.GitDir(), r2.Bare(), headOf(t, r2))
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not a git repository") {
		t.Fatalf("Open(non-repo) = %v", err)
	}
	if _, err := Init(dir, InitOptions{Branch: "bad..name"}); err == nil {
		t.Fatal("Init accepted an invalid branch name")
	}
	// A repository made by the git CLI opens, with HEAD's branch.
	git(t, dir, "init", "-q", "-b", "develop")
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Branch() != "develop" || r.Bare() {
		t.Fatalf("branch %q bare %v", r.Branch(), r.Bare())
	}
}

func TestDetachedHeadRefusesCommit(t *testing.T) {
	r := initRepo(t, false)
	res := put(t, r, map[string]string{"a": "1\n"})
	git(t, r.Dir(), "checkout", "-q", "--detach")
	r2, err := Open(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if r2.Branch() != "" {
		t.Fatalf("Branch() = %q on detached HEAD", r2.Branch())
	}
	_, err = r2.Commit(context.Background(), CommitRequest{Message: "x", Author: testAuthor, Build: func(*Snapshot) ([]Change, error) { return nil, nil }})
	if err == nil || !strings.Contains(err.Error(), "detached") {
		t.Fatalf("commit on detached HEAD: %v", err)
	}
	if h := git(t, r.Dir(), "rev-parse", "main"); h != res.Commit.String() {
		t.Fatal("branch moved")
	}
}

func TestCommitAddModifyDeleteDeep(t *testing.T) {
	for _, bare := range []bool{false, true} {
		t.Run(map[bool]string{false: "worktree", true: "bare"}[bare], func(t *testing.T) {
			r := initRepo(t, bare)
			res1 := put(t, r, map[string]string{
				"top.txt":                                 "top\n",
				"applications/sell-http/a/offer.yaml":     "a: 1\n",
				"applications/sell-http/a/svc.yaml":       "svc a\n",
				"applications/sell-http/b/offer.yaml":     "b: 1\n",
				"applications/sell-http/b/deep/x/y/z.txt": "z\n",
				"infrastructure/crd.yaml":                 "crd\n",
			})
			if res1.Parent != (plumbing.Hash{}) || res1.Commit.IsZero() || len(res1.Changed) != 6 {
				t.Fatalf("first commit: %+v", res1)
			}
			assertConsistent(t, r)

			res2 := put(t, r, map[string]string{
				"applications/sell-http/a/offer.yaml":     "a: 2\n", // modify
				"applications/sell-http/c/offer.yaml":     "c: 1\n", // add
				"applications/sell-http/b/deep/x/y/w.txt": "w\n",    // add deep
				"top.txt": "top\n", // unchanged
			}, "applications/sell-http/b/deep/x/y/z.txt", "infrastructure/crd.yaml", "does/not/exist")
			if res2.Parent != res1.Commit {
				t.Fatalf("parent %s, want %s", res2.Parent, res1.Commit)
			}
			wantChanged := []string{
				"applications/sell-http/a/offer.yaml",
				"applications/sell-http/b/deep/x/y/w.txt",
				"applications/sell-http/b/deep/x/y/z.txt",
				"applications/sell-http/c/offer.yaml",
				"infrastructure/crd.yaml",
			}
			if strings.Join(res2.Changed, ",") != strings.Join(wantChanged, ",") {
				t.Fatalf("Changed = %v\nwant %v", res2.Changed, wantChanged)
			}
			assertConsistent(t, r)
			got := treeFiles(t, r.Dir(), "HEAD")
			want := map[string]string{
				"top.txt":                                 "top",
				"applications/sell-http/a/offer.yaml":     "a: 2",
				"applications/sell-http/a/svc.yaml":       "svc a",
				"applications/sell-http/b/offer.yaml":     "b: 1",
				"applications/sell-http/b/deep/x/y/w.txt": "w",
				"applications/sell-http/c/offer.yaml":     "c: 1",
			}
			if !mapsEqual(got, want) {
				t.Fatalf("tree:\n%v\nwant\n%v", got, want)
			}
			// The emptied directory infrastructure/ vanished from the tree.
			if out := git(t, r.Dir(), "ls-tree", "HEAD", "infrastructure"); out != "" {
				t.Fatalf("empty directory kept: %s", out)
			}
			if !bare {
				if readWT(t, r, "applications/sell-http/a/offer.yaml") != "a: 2\n" {
					t.Fatal("work tree not updated")
				}
				if _, err := os.Stat(filepath.Join(r.Dir(), "infrastructure")); !os.IsNotExist(err) {
					t.Fatalf("emptied work-tree directory kept: %v", err)
				}
			}

			// Delete a whole directory subtree.
			res3 := put(t, r, nil, "applications/sell-http/b")
			if strings.Join(res3.Changed, ",") != "applications/sell-http/b/deep/x/y/w.txt,applications/sell-http/b/offer.yaml" {
				t.Fatalf("subtree delete Changed = %v", res3.Changed)
			}
			assertConsistent(t, r)
			if out := git(t, r.Dir(), "ls-tree", "-r", "--name-only", "HEAD", "applications/sell-http/b"); out != "" {
				t.Fatalf("subtree still there: %s", out)
			}
			if !bare {
				if _, err := os.Stat(filepath.Join(r.Dir(), "applications/sell-http/b")); !os.IsNotExist(err) {
					t.Fatalf("work-tree subtree kept: %v", err)
				}
			}
			if n := git(t, r.Dir(), "rev-list", "--count", "HEAD"); n != "3" {
				t.Fatalf("commits = %s", n)
			}
		})
	}
}

func TestNoopCommit(t *testing.T) {
	r := initRepo(t, false)
	first := put(t, r, map[string]string{"a/b.txt": "same\n", "c.txt": "c\n"})
	objects := countObjects(t, r)
	calls := 0
	res, err := r.Commit(context.Background(), CommitRequest{
		Message: "re-render",
		Author:  testAuthor,
		Build: func(*Snapshot) ([]Change, error) {
			calls++
			// Same content, a delete of something absent, and a
			// delete-then-rewrite of a directory with the same files.
			return []Change{
				{Path: "c.txt", Content: []byte("c\n")},
				{Path: "gone", Delete: true},
				{Path: "a", Delete: true},
				{Path: "a/b.txt", Content: []byte("same\n")},
			}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Commit.IsZero() || res.Parent != first.Commit || len(res.Changed) != 0 || res.Diff != "" || calls != 1 {
		t.Fatalf("no-op commit: %+v (calls %d)", res, calls)
	}
	if headOf(t, r) != first.Commit {
		t.Fatal("ref moved on a no-op commit")
	}
	if n := countObjects(t, r); n != objects {
		t.Fatalf("no-op commit wrote %d objects", n-objects)
	}
	// An empty change set on an unborn branch commits nothing either.
	r2 := initRepo(t, true)
	res, err = r2.Commit(context.Background(), CommitRequest{Message: "nothing", Author: testAuthor, Build: func(*Snapshot) ([]Change, error) { return nil, nil }})
	if err != nil || !res.Commit.IsZero() || !headOf(t, r2).IsZero() {
		t.Fatalf("empty commit on unborn branch: %+v %v", res, err)
	}
}

func TestDeleteEverythingCommitsEmptyTree(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"a/b": "1\n"})
	res := put(t, r, nil, "a")
	if res.Commit.IsZero() || strings.Join(res.Changed, ",") != "a/b" {
		t.Fatalf("%+v", res)
	}
	if tree := git(t, r.Dir(), "rev-parse", "HEAD^{tree}"); tree != emptyTreeHash.String() {
		t.Fatalf("tree %s, want the empty tree", tree)
	}
	assertConsistent(t, r)
}

func TestTypeChanges(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"x": "file x\n", "d/inner.txt": "inner\n"})
	// file -> directory and directory -> file in one commit
	res := put(t, r, map[string]string{"x/y.txt": "now a dir\n", "d": "now a file\n"}, "x", "d")
	want := "d,d/inner.txt,x,x/y.txt"
	if strings.Join(res.Changed, ",") != want {
		t.Fatalf("Changed = %v, want %s", res.Changed, want)
	}
	assertConsistent(t, r)
	if readWT(t, r, "d") != "now a file\n" || readWT(t, r, "x/y.txt") != "now a dir\n" {
		t.Fatal("work tree not switched")
	}
	// Writing below a path that is a file replaces the file, without an explicit delete.
	put(t, r, map[string]string{"d/again.txt": "dir again\n"})
	assertConsistent(t, r)
}

func TestInvalidChanges(t *testing.T) {
	r := initRepo(t, true)
	for _, c := range [][]Change{
		{{Path: "/abs"}},
		{{Path: "a//b"}},
		{{Path: "a/"}},
		{{Path: "../up"}},
		{{Path: "a/./b"}},
		{{Path: ".git/config"}},
		{{Path: "x/.GIT/hooks"}},
		{{Path: ""}},
		{{Path: "a", Content: []byte("f")}, {Path: "a/b", Content: []byte("g")}},
		{{Path: "a/b", Content: []byte("g")}, {Path: "a", Content: []byte("f")}},
	} {
		_, err := r.Commit(context.Background(), CommitRequest{Message: "bad", Author: testAuthor, Build: func(*Snapshot) ([]Change, error) { return c, nil }})
		if err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
	if !headOf(t, r).IsZero() {
		t.Fatal("an invalid change was committed")
	}
	buildErr := errors.New("render failed")
	_, err := r.Commit(context.Background(), CommitRequest{Message: "x", Author: testAuthor, Build: func(*Snapshot) ([]Change, error) { return nil, buildErr }})
	if !errors.Is(err, buildErr) {
		t.Fatalf("Build error not wrapped: %v", err)
	}
	for _, req := range []CommitRequest{
		{Message: "", Author: testAuthor, Build: func(*Snapshot) ([]Change, error) { return nil, nil }},
		{Message: "x", Author: Signature{Name: "Evil <x>", Email: "e@x"}, Build: func(*Snapshot) ([]Change, error) { return nil, nil }},
		{Message: "x", Author: testAuthor},
	} {
		if _, err := r.Commit(context.Background(), req); err == nil {
			t.Errorf("accepted request %+v", req)
		}
	}
}

func TestPackedRefsAndPackedObjects(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"a/one.txt": "1\n", "b/two.txt": "2\n"})
	put(t, r, map[string]string{"a/three.txt": "3\n"})
	// Pack everything: refs into packed-refs, objects into a pack.
	git(t, r.Dir(), "gc", "-q", "--prune=now")
	if _, err := os.Stat(filepath.Join(r.GitDir(), "refs/heads/main")); !os.IsNotExist(err) {
		t.Fatalf("loose ref still there after gc: %v", err)
	}
	r2, err := Open(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	before := headOf(t, r2)
	res := put(t, r2, map[string]string{"a/one.txt": "1 changed\n"})
	if res.Parent != before {
		t.Fatalf("parent %s, want packed head %s", res.Parent, before)
	}
	if !strings.Contains(res.Diff, "-1\n+1 changed\n") {
		t.Fatalf("diff against packed blob:\n%s", res.Diff)
	}
	assertConsistent(t, r2)
	if got := treeFiles(t, r.Dir(), "HEAD"); got["a/three.txt"] != "3" || got["b/two.txt"] != "2" {
		t.Fatalf("packed content lost: %v", got)
	}
}

func TestReflog(t *testing.T) {
	r := initRepo(t, false)
	c1 := put(t, r, map[string]string{"a": "1\n"})
	c2 := put(t, r, map[string]string{"a": "2\n"})
	out := git(t, r.Dir(), "reflog", "--format=%H %gs")
	want := c2.Commit.String() + " commit: test commit\n" + c1.Commit.String() + " commit (initial): test commit"
	if out != want {
		t.Fatalf("git reflog:\n%s\nwant\n%s", out, want)
	}
	if out := git(t, r.Dir(), "reflog", "show", "--format=%H", "main"); out != c2.Commit.String()+"\n"+c1.Commit.String() {
		t.Fatalf("branch reflog:\n%s", out)
	}
	line := git(t, r.Dir(), "reflog", "-1", "--format=%gn <%ge>")
	if line != "Obol Tester <tester@example.com>" {
		t.Fatalf("reflog identity %q", line)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
