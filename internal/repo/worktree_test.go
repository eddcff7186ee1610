package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// TestDirtyWorktreeRefused: a commit that would overwrite or delete a user's
// uncommitted change fails naming the path, and writes nothing at all.
func TestDirtyWorktreeRefused(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, r *Repo)
		changes []Change
		path    string
	}{
		{"modified file", func(t *testing.T, r *Repo) { writeWT(t, r, "app/a.yaml", "user edit\n") },
			[]Change{{Path: "app/a.yaml", Content: []byte("obol\n")}}, "app/a.yaml"},
		{"modified file we delete", func(t *testing.T, r *Repo) { writeWT(t, r, "app/a.yaml", "user edit\n") },
			[]Change{{Path: "app", Delete: true}}, "app/a.yaml"},
		{"removed file", func(t *testing.T, r *Repo) { os.Remove(filepath.Join(r.Dir(), "app/b.yaml")) },
			[]Change{{Path: "app/b.yaml", Content: []byte("obol\n")}}, "app/b.yaml"},
		{"staged change", func(t *testing.T, r *Repo) {
			writeWT(t, r, "app/a.yaml", "staged\n")
			git(t, r.Dir(), "add", "app/a.yaml")
			writeWT(t, r, "app/a.yaml", "a\n") // work tree back to HEAD, index not
		}, []Change{{Path: "app/a.yaml", Content: []byte("obol\n")}}, "app/a.yaml"},
		{"untracked file in the way", func(t *testing.T, r *Repo) { writeWT(t, r, "app/new.yaml", "mine\n") },
			[]Change{{Path: "app/new.yaml", Content: []byte("obol\n")}}, "app/new.yaml"},
		{"untracked file where a directory goes", func(t *testing.T, r *Repo) { writeWT(t, r, "slice", "mine\n") },
			[]Change{{Path: "slice/offer.yaml", Content: []byte("obol\n")}}, "slice"},
		{"untracked file inside a directory that becomes a file", func(t *testing.T, r *Repo) { writeWT(t, r, "app/untracked.txt", "mine\n") },
			[]Change{{Path: "app", Delete: true}, {Path: "app", Content: []byte("now a file\n")}}, "app/untracked.txt"},
		{"executable bit changed", func(t *testing.T, r *Repo) { os.Chmod(filepath.Join(r.Dir(), "app/a.yaml"), 0o755) },
			[]Change{{Path: "app/a.yaml", Content: []byte("obol\n")}}, "app/a.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := initRepo(t, false)
			base := put(t, r, map[string]string{"app/a.yaml": "a\n", "app/b.yaml": "b\n", "other.txt": "o\n"})
			tc.prepare(t, r)
			before := hashDir(t, r.Dir(), false)
			res, err := r.Commit(context.Background(), CommitRequest{Message: "m", Author: testAuthor,
				Build: func(*Snapshot) ([]Change, error) { return tc.changes, nil }})
			if !errors.Is(err, ErrDirtyWorktree) {
				t.Fatalf("err = %v, want ErrDirtyWorktree", err)
			}
			want := fmt.Sprintf("commit or discard your change to %s first", tc.path)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want it to say %q", err, want)
			}
			if !res.Commit.IsZero() || headOf(t, r) != base.Commit {
				t.Fatal("the branch moved")
			}
			after := hashDir(t, r.Dir(), false)
			delete(after, ".git/obol.lock") // created empty by the lock, like git's own lock files it is expected
			delete(before, ".git/obol.lock")
			if !mapsEqual(before, after) {
				t.Fatalf("a refused commit changed files:\n%s", diffMaps(before, after))
			}
		})
	}
}

// TestUnrelatedLocalChangesSurvive: changes elsewhere in the work tree do not
// block a commit, and are left exactly as they were.
func TestUnrelatedLocalChangesSurvive(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"mine.txt": "committed\n", "app/a.yaml": "a\n"})
	writeWT(t, r, "mine.txt", "user edit\n")
	writeWT(t, r, "notes/todo.txt", "untracked\n")
	writeWT(t, r, "staged.txt", "staged\n")
	git(t, r.Dir(), "add", "staged.txt")
	put(t, r, map[string]string{"app/a.yaml": "a2\n", "app/b.yaml": "b\n"})
	status := git(t, r.Dir(), "status", "--porcelain", "--untracked-files=all")
	want := " M mine.txt\nA  staged.txt\n?? notes/todo.txt"
	if status != want {
		t.Fatalf("git status:\n%s\nwant\n%s", status, want)
	}
	if readWT(t, r, "mine.txt") != "user edit\n" || readWT(t, r, "app/a.yaml") != "a2\n" {
		t.Fatal("work tree content wrong")
	}
}

// TestWorktreeAndIndexStayConsistent runs a sequence of commits through both
// index code paths (raw patching of v2/v3 and go-git's codec for v4) and
// checks git status, the index and the files after each.
func TestWorktreeAndIndexStayConsistent(t *testing.T) {
	for _, variant := range []string{"v2", "v3", "v4", "gogit-codec"} {
		t.Run(variant, func(t *testing.T) {
			r := initRepo(t, false)
			put(t, r, map[string]string{"seed.txt": "seed\n"})
			switch variant {
			case "v3":
				// skip-worktree on an unrelated file forces extended flags (v3)
				put(t, r, map[string]string{"sparse/x.txt": "x\n"})
				git(t, r.Dir(), "update-index", "--skip-worktree", "sparse/x.txt")
				if v := indexVersion(t, r); v != 3 {
					t.Fatalf("index version %d, want 3", v)
				}
			case "v4":
				git(t, r.Dir(), "update-index", "--index-version", "4")
			case "gogit-codec":
				forceGoGitIndex = true
				t.Cleanup(func() { forceGoGitIndex = false })
			}
			git(t, r.Dir(), "status") // let git write its extensions (TREE, UNTR...)
			steps := []struct {
				files   map[string]string
				deletes []string
			}{
				{map[string]string{"applications/sell-http/s1/offer.yaml": "1\n", "applications/sell-http/s1/svc.yaml": "s\n"}, nil},
				{map[string]string{"applications/sell-http/s2/offer.yaml": "2\n", "applications/sell-http/s1/offer.yaml": "1b\n"}, nil},
				{map[string]string{"z-last.txt": "z\n", "0-first.txt": "0\n"}, []string{"applications/sell-http/s1"}},
				{map[string]string{"applications/sell-http/s2": "file now\n"}, []string{"applications/sell-http/s2"}},
				{nil, []string{"seed.txt", "applications"}},
			}
			for i, st := range steps {
				put(t, r, st.files, st.deletes...)
				assertConsistent(t, r)
				if variant == "v3" {
					git(t, r.Dir(), "update-index", "--no-skip-worktree", "sparse/x.txt")
					assertConsistent(t, r)
					git(t, r.Dir(), "update-index", "--skip-worktree", "sparse/x.txt")
				}
				for p, c := range st.files {
					if got := readWT(t, r, p); got != c {
						t.Fatalf("step %d: %s = %q", i, p, got)
					}
				}
				// A user edit right after a commit (same second) is still seen by git.
				if st.files != nil {
					for p := range st.files {
						writeWT(t, r, p, strings.Repeat("X", len(st.files[p])))
						if out := git(t, r.Dir(), "status", "--porcelain"); !strings.Contains(out, " M "+p) {
							t.Fatalf("step %d: same-size edit of %s not seen by git status: %q", i, p, out)
						}
						git(t, r.Dir(), "checkout", "--", p)
						break
					}
				}
			}
			if variant == "v4" && indexVersion(t, r) != 4 {
				t.Fatal("index version changed")
			}
		})
	}
}

func indexVersion(t *testing.T, r *Repo) int {
	data, err := os.ReadFile(filepath.Join(r.GitDir(), "index"))
	if err != nil {
		t.Fatal(err)
	}
	return int(data[7])
}

// TestIndexRawPatchMatchesGoGit: the raw patch of a v2 index is byte for byte
// what go-git's decoder+encoder produce for the same update.
func TestIndexRawPatchMatchesGoGit(t *testing.T) {
	r := initRepo(t, false)
	files := map[string]string{}
	for i := range 50 {
		files[fmt.Sprintf("d%02d/f.txt", i)] = fmt.Sprint(i)
	}
	put(t, r, files)
	git(t, r.Dir(), "update-index", "--refresh")
	writeWT(t, r, "d10/new.txt", "new\n")
	writeWT(t, r, "d20/f.txt", "changed\n")
	os.Remove(filepath.Join(r.Dir(), "d30/f.txt"))
	var updates []indexUpdate
	pend := newPending(r.objs, nil)
	for _, p := range []string{"d10/new.txt", "d20/f.txt"} {
		content := []byte(readWT(t, r, p))
		e := &treeEntry{mode: filemode.Regular, hash: pend.add(plumbing.BlobObject, content)}
		st, err := r.writeFile(pend, p, e)
		if err != nil {
			t.Fatal(err)
		}
		updates = append(updates, indexUpdate{path: p, hash: e.hash, mode: e.mode, st: st})
	}
	updates = append(updates, indexUpdate{path: "d30/f.txt", remove: true})
	raw, err := readIndex(r.GitDir())
	if err != nil || raw.gg != nil {
		t.Fatalf("raw path not taken: %v", err)
	}
	forceGoGitIndex = true
	gg, err := readIndex(r.GitDir())
	forceGoGitIndex = false
	if err != nil || gg.gg == nil {
		t.Fatalf("go-git path not taken: %v", err)
	}
	sort.Slice(updates, func(i, j int) bool { return updates[i].path < updates[j].path })
	a := bytes.Join(raw.patchRaw(append([]indexUpdate(nil), updates...)), nil)
	// With the prefix hashed ahead of time, the result is the same.
	pre, _ := readIndex(r.GitDir())
	var changes []indexChange
	for _, u := range updates {
		changes = append(changes, indexChange{u.path, u.remove})
	}
	pre.prepare(changes)
	if c := bytes.Join(pre.patchRaw(append([]indexUpdate(nil), updates...)), nil); !bytes.Equal(a, c) {
		t.Fatal("prehashed patch differs")
	}
	b, err := gg.encodeGoGit(append([]indexUpdate(nil), updates...))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("raw patch (%d bytes) differs from go-git encoding (%d bytes)", len(a), len(b))
	}
}

// TestUnsupportedIndexRefusedBeforeRefMove: a split index (a mandatory
// extension neither code path understands) fails the commit before anything
// is written.
func TestUnsupportedIndexRefusedBeforeRefMove(t *testing.T) {
	r := initRepo(t, false)
	base := put(t, r, map[string]string{"a.txt": "a\n"})
	git(t, r.Dir(), "update-index", "--split-index")
	objects := countObjects(t, r)
	_, err := r.Commit(context.Background(), CommitRequest{Message: "m", Author: testAuthor,
		Build: func(*Snapshot) ([]Change, error) { return []Change{{Path: "b.txt", Content: []byte("b\n")}}, nil }})
	if err == nil || !strings.Contains(err.Error(), "cannot update") || !strings.Contains(err.Error(), "index") {
		t.Fatalf("err = %v", err)
	}
	if headOf(t, r) != base.Commit || countObjects(t, r) != objects {
		t.Fatal("something was written")
	}
	if _, err := os.Stat(filepath.Join(r.GitDir(), "index.lock")); !os.IsNotExist(err) {
		t.Fatal("index.lock left behind")
	}
	if _, err := os.Stat(filepath.Join(r.Dir(), "b.txt")); !os.IsNotExist(err) {
		t.Fatal("work tree written")
	}
}

func diffMaps(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "- "+k)
		} else if v != w {
			out = append(out, "~ "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "+ "+k)
		}
	}
	return strings.Join(out, "\n")
}

// TestRacyEntriesAreSmudged: git cannot tell a same-second, same-size edit
// from stat data. When obol rewrites the index a second later, such an entry
// must be smudged so git still looks at the file's content.
func TestRacyEntriesAreSmudged(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"seed.txt": "seed\n"})
	for time.Now().Nanosecond() > 200_000_000 { // start early in a second
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now().Unix()
	put(t, r, map[string]string{"f.txt": "aaaa\n"})
	writeWT(t, r, "f.txt", "bbbb\n") // same size, same second
	if time.Now().Unix() != start {
		t.Skip("machine too slow to stay within one second")
	}
	time.Sleep(time.Until(time.Unix(start+1, 100_000_000)))
	put(t, r, map[string]string{"other.txt": "o\n"})
	if out := git(t, r.Dir(), "status", "--porcelain"); out != " M f.txt" {
		t.Fatalf("git status = %q, want the racy edit of f.txt reported", out)
	}
}

// TestSymlinkedDirectoryRefused: obol does not write through a symbolic link
// in the work tree.
func TestSymlinkedDirectoryRefused(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"a.txt": "a\n"})
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(r.Dir(), "apps")); err != nil {
		t.Fatal(err)
	}
	_, err := r.Commit(context.Background(), CommitRequest{Message: "m", Author: testAuthor,
		Build: func(*Snapshot) ([]Change, error) {
			return []Change{{Path: "apps/x/offer.yaml", Content: []byte("x\n")}}, nil
		}})
	if !errors.Is(err, ErrDirtyWorktree) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatal("wrote through the symlink")
	}
}
