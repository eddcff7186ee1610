package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestSnapshotFS(t *testing.T) {
	r := initRepo(t, true)
	files := map[string]string{
		"a.b":          "dot\n",
		"a-b":          "dash\n",
		"a/b.txt":      "nested\n",
		"a/c/d.yaml":   "deep: true\n",
		"z":            "",
		"dir/x/y/z/w":  "w\n",
		"dir/x/y/z/w2": "w2\n",
	}
	res := put(t, r, files)
	s, err := r.Snapshot(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if s.Commit() != res.Commit {
		t.Fatal("Commit()")
	}
	// The standard library's conformance test for fs.FS implementations.
	var names []string
	for p := range files {
		names = append(names, p)
	}
	if err := fstest.TestFS(s, names...); err != nil {
		t.Fatal(err)
	}

	var walked []string
	err = fs.WalkDir(s, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			data, err := fs.ReadFile(s, p)
			if err != nil {
				return err
			}
			if string(data) != files[p] {
				return fmt.Errorf("%s = %q, want %q", p, data, files[p])
			}
		}
		walked = append(walked, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ". a a/b.txt a/c a/c/d.yaml a-b a.b dir dir/x dir/x/y dir/x/y/z dir/x/y/z/w dir/x/y/z/w2 z"
	if got := strings.Join(walked, " "); got != want {
		t.Fatalf("WalkDir order:\n got %s\nwant %s", got, want)
	}

	// ReadDir is sorted by name (git's order would put "a" after "a.b").
	entries, err := s.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var top []string
	for _, e := range entries {
		top = append(top, fmt.Sprintf("%s:%v", e.Name(), e.IsDir()))
	}
	if got := strings.Join(top, " "); got != "a:true a-b:false a.b:false dir:true z:false" {
		t.Fatalf("ReadDir(.) = %s", got)
	}

	fi, err := s.Stat("a/c/d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Name() != "d.yaml" || fi.Size() != int64(len("deep: true\n")) || fi.IsDir() || fi.Mode() != 0o644 || fi.ModTime().IsZero() {
		t.Fatalf("Stat file: %s %d %v %v %v", fi.Name(), fi.Size(), fi.IsDir(), fi.Mode(), fi.ModTime())
	}
	if fi, err := s.Stat("a/c"); err != nil || !fi.IsDir() || fi.Mode()&fs.ModeDir == 0 {
		t.Fatalf("Stat dir: %v %v", fi, err)
	}
	if h, err := s.BlobHash("a/b.txt"); err != nil || h != blobHash([]byte("nested\n")) {
		t.Fatalf("BlobHash = %s, %v", h, err)
	}
	if matches, err := fs.Glob(s, "dir/x/y/z/*"); err != nil || strings.Join(matches, ",") != "dir/x/y/z/w,dir/x/y/z/w2" {
		t.Fatalf("Glob = %v, %v", matches, err)
	}

	for _, p := range []string{"missing", "a/missing", "a/b.txt/under-a-file", "a.b/x"} {
		if _, err := s.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want ErrNotExist", p, err)
		}
		if _, err := s.Open(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%q) = %v, want ErrNotExist", p, err)
		}
		if _, err := fs.ReadFile(s, p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%q) = %v, want ErrNotExist", p, err)
		}
		var pe *fs.PathError
		if _, err := s.ReadDir(p); !errors.As(err, &pe) || pe.Path != p {
			t.Errorf("ReadDir(%q) = %v, want a PathError naming it", p, err)
		}
	}
	for _, p := range []string{"/a", "a/", "./a", "a/../a", ""} {
		if _, err := s.Open(p); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", p, err)
		}
	}
	if _, err := s.ReadFile("a"); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}

	// The zero hash is an empty snapshot.
	empty, err := r.Snapshot(plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	if es, err := empty.ReadDir("."); err != nil || len(es) != 0 {
		t.Fatalf("empty snapshot ReadDir = %v, %v", es, err)
	}
	if _, err := empty.Stat("a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty snapshot Stat = %v", err)
	}
	if err := fstest.TestFS(empty); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Snapshot(plumbing.NewHash("1111111111111111111111111111111111111111")); err == nil {
		t.Fatal("Snapshot of a missing commit succeeded")
	}
}

// TestSnapshotIsLazy proves reading one file decodes only the trees on its
// path: with 200 sibling directories, reading one deep file decodes 4 trees.
func TestSnapshotIsLazy(t *testing.T) {
	r := initRepo(t, true)
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("apps/s%03d/offer.yaml", i)] = fmt.Sprintf("n: %d\n", i)
		files[fmt.Sprintf("apps/s%03d/sub/values.yaml", i)] = fmt.Sprintf("v: %d\n", i)
	}
	res := put(t, r, files)
	s, err := r.Snapshot(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	data, err := s.ReadFile("apps/s123/sub/values.yaml")
	if err != nil || string(data) != "v: 123\n" {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
	if n := len(s.trees); n != 4 { // root, apps, apps/s123, apps/s123/sub
		t.Fatalf("decoded %d trees to read one file, want 4", n)
	}
}

// TestTreeSortingMatchesGit writes names that sort differently as files and
// as directories and checks the tree is byte-identical to what the git CLI
// builds (git add + git write-tree) from the same files.
func TestTreeSortingMatchesGit(t *testing.T) {
	files := map[string]string{
		"a.b":        "a.b\n",
		"a-b":        "a-b\n",
		"a=b":        "a=b\n",
		"a0":         "a0\n",
		"a b":        "space\n",
		"A":          "upper\n",
		"ab/c":       "ab dir\n",
		"a/b.c/d":    "x\n",
		"a/b-c":      "y\n",
		"a/b/c":      "z\n",
		"x/y.txt":    "1\n",
		"x.y/z":      "2\n",
		"x-y":        "3\n",
		"x/y/zz.txt": "4\n",
		"é":          "unicode\n",
		"_":          "underscore\n",
		"~":          "tilde\n",
	}

	r := initRepo(t, true)
	res := put(t, r, files)
	s, _ := r.Snapshot(res.Commit)

	cli := t.TempDir()
	git(t, cli, "init", "-q")
	for p, c := range files {
		full := filepath.Join(cli, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, cli, "add", "-A")
	want := git(t, cli, "write-tree")
	if s.Tree().String() != want {
		t.Fatalf("tree %s, git write-tree %s\nours:\n%s\ngit:\n%s", s.Tree(), want,
			git(t, r.Dir(), "ls-tree", "-r", "-t", s.Tree().String()), git(t, cli, "ls-tree", "-r", "-t", want))
	}
	// Incremental edits keep matching: add and remove around the tricky names.
	res = put(t, r, map[string]string{"a.b/new": "n\n", "a/b/c.d": "m\n"}, "a-b", "x/y")
	os.Remove(filepath.Join(cli, "a-b"))
	os.RemoveAll(filepath.Join(cli, "x/y"))
	os.Remove(filepath.Join(cli, "a.b"))
	os.MkdirAll(filepath.Join(cli, "a.b"), 0o755)
	os.WriteFile(filepath.Join(cli, "a.b/new"), []byte("n\n"), 0o644)
	os.WriteFile(filepath.Join(cli, "a/b/c.d"), []byte("m\n"), 0o644)
	git(t, cli, "add", "-A")
	want = git(t, cli, "write-tree")
	if got := git(t, r.Dir(), "rev-parse", res.Commit.String()+"^{tree}"); got != want {
		t.Fatalf("after edits: tree %s, git write-tree %s", got, want)
	}
	if out, err := gitErr(r.Dir(), "fsck", "--strict"); err != nil {
		t.Fatalf("fsck: %v %s", err, out)
	}
}

func TestSnapshotOpenFile(t *testing.T) {
	r := initRepo(t, true)
	res := put(t, r, map[string]string{"d/f.txt": "0123456789"})
	s, _ := r.Snapshot(res.Commit)
	f, err := s.Open("d/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4)
	if n, err := io.ReadFull(f, buf); n != 4 || err != nil || string(buf) != "0123" {
		t.Fatalf("read %q %v", buf[:n], err)
	}
	rest, _ := io.ReadAll(f)
	if string(rest) != "456789" {
		t.Fatalf("rest %q", rest)
	}
	d, err := s.Open("d")
	if err != nil {
		t.Fatal(err)
	}
	rd := d.(fs.ReadDirFile)
	es, err := rd.ReadDir(1)
	if err != nil || len(es) != 1 || es[0].Name() != "f.txt" {
		t.Fatalf("ReadDir(1) = %v %v", es, err)
	}
	if _, err := rd.ReadDir(1); !errors.Is(err, io.EOF) {
		t.Fatalf("ReadDir past end = %v", err)
	}
	// A Build function sees the head through the same FS.
	var seen string
	_, err = r.Commit(context.Background(), CommitRequest{Message: "m", Author: testAuthor, Build: func(head *Snapshot) ([]Change, error) {
		data, err := fs.ReadFile(head, "d/f.txt")
		seen = string(data)
		return []Change{{Path: "d/g.txt", Content: data}}, err
	}})
	if err != nil || seen != "0123456789" {
		t.Fatalf("Build saw %q, %v", seen, err)
	}
}
