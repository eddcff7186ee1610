package gitremote

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obol/obol/internal/gittest"
)

// packOf runs `git pack-objects --stdout` in dir over the given object
// list (or, with revs, over `--revs` input).
func packOf(t *testing.T, dir string, input string, revs bool) []byte {
	t.Helper()
	args := []string{"pack-objects", "--stdout", "-q"}
	if revs {
		args = append(args, "--revs")
	}
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(input)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git pack-objects: %v\n%s", err, stderr.String())
	}
	return out.Bytes()
}

func packDirEntries(t *testing.T, gd string) []string {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(gd, "objects", "pack"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestStorePack(t *testing.T) {
	src := initWork(t)
	commit(t, src, map[string]string{"a": "a\n", "d/b": "b\n"}, "one")
	tip := commit(t, src, map[string]string{"a": "a2\n"}, "two")
	full := packOf(t, src, tip.String()+"\n", true)

	store := func(t *testing.T, data []byte) (string, error) {
		t.Helper()
		dst := initWork(t)
		st, err := openStorage(gitDir(dst))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		_, err = storePack(gitDir(dst), bytes.NewReader(data), st)
		return dst, err
	}

	t.Run("Complete", func(t *testing.T) {
		dst, err := store(t, full)
		if err != nil {
			t.Fatal(err)
		}
		gittest.Fsck(t, dst)
		gittest.Git(t, dst, nil, "rev-list", "--objects", tip.String())
		names := packDirEntries(t, gitDir(dst))
		if len(names) != 2 {
			t.Fatalf("objects/pack: %v", names)
		}
		for _, n := range names {
			fi, _ := os.Stat(filepath.Join(gitDir(dst), "objects", "pack", n))
			if fi.Mode().Perm() != 0o444 {
				t.Errorf("%s has mode %v", n, fi.Mode())
			}
		}
		gittest.Git(t, gitDir(dst), nil, "verify-pack", filepath.Join("objects", "pack", strings.TrimSuffix(names[0], filepath.Ext(names[0]))+".idx"))
		// The same pack again: nothing changes.
		st, _ := openStorage(gitDir(dst))
		defer st.Close()
		if _, err := storePack(gitDir(dst), bytes.NewReader(full), st); err != nil {
			t.Fatal(err)
		}
		if again := packDirEntries(t, gitDir(dst)); strings.Join(again, ",") != strings.Join(names, ",") {
			t.Fatalf("objects/pack after storing the same pack twice: %v", again)
		}
	})

	bad := map[string][]byte{
		"Truncated":       full[:len(full)-30],
		"TrailingGarbage": append(append([]byte(nil), full...), "garbage"...),
		"CorruptByte": func() []byte {
			b := append([]byte(nil), full...)
			b[len(b)/2] ^= 0xff
			return b
		}(),
		// A pack with the commit but not its tree: not connected.
		"Incomplete": packOf(t, src, tip.String()+"\n", false),
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			dst, err := store(t, data)
			if err == nil {
				t.Fatal("storePack accepted it")
			}
			t.Logf("%s: %v", name, err)
			if names := packDirEntries(t, gitDir(dst)); len(names) != 0 {
				t.Fatalf("objects/pack after a refused pack: %v", names)
			}
			gittest.Fsck(t, dst)
		})
	}

	t.Run("Empty", func(t *testing.T) {
		dst, err := store(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		if names := packDirEntries(t, gitDir(dst)); len(names) != 0 {
			t.Fatalf("objects/pack after an empty response: %v", names)
		}
	})
}
