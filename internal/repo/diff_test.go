package repo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func longFile(n int, edit map[int]string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if s, ok := edit[i]; ok {
			b.WriteString(s)
			continue
		}
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// TestDiffAppliesWithGitApply checks Result.Diff is a patch git accepts: on a
// checkout of the base commit, `git apply --check` passes and `git apply`
// produces exactly the new commit's tree.
func TestDiffAppliesWithGitApply(t *testing.T) {
	r := initRepo(t, true)
	base := put(t, r, map[string]string{
		"long.txt":          longFile(60, nil),
		"two-hunks.txt":     longFile(40, nil),
		"gone/old.yaml":     "a: 1\nb: 2\n",
		"noeol.txt":         "no newline at end",
		"becomes-noeol.txt": "x\ny\n",
		"empty-later.txt":   "content\n",
		"keep.txt":          "unchanged\n",
	})
	res := put(t, r, map[string]string{
		"long.txt":          longFile(60, map[int]string{30: "line thirty\n"}),
		"two-hunks.txt":     longFile(40, map[int]string{2: "", 35: "line 35\nextra\n"}),
		"new/dir/file.yaml": "kind: New\nspec: {}\n",
		"noeol.txt":         "no newline at end\nnow there is\n",
		"becomes-noeol.txt": "x\ny",
		"empty-later.txt":   "",
		"new-empty.txt":     "",
		"keep.txt":          "unchanged\n",
	}, "gone")
	d := res.Diff
	for _, want := range []string{
		"diff --git a/long.txt b/long.txt\n",
		"--- a/long.txt\n+++ b/long.txt\n@@ -27,7 +27,7 @@",
		"-line 30\n+line thirty\n",
		"diff --git a/gone/old.yaml b/gone/old.yaml\ndeleted file mode 100644\n",
		"--- a/gone/old.yaml\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a: 1\n-b: 2\n",
		"diff --git a/new/dir/file.yaml b/new/dir/file.yaml\nnew file mode 100644\n",
		"--- /dev/null\n+++ b/new/dir/file.yaml\n@@ -0,0 +1,2 @@\n+kind: New\n+spec: {}\n",
		"-no newline at end\n\\ No newline at end of file\n",
		"+y\n\\ No newline at end of file\n",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
	if strings.Contains(d, "keep.txt") {
		t.Error("diff mentions an unchanged file")
	}
	if strings.Count(d, "@@ -") != 8 {
		t.Errorf("expected two hunks in two-hunks.txt:\n%s", d)
	}

	// git apply on a checkout of the base commit gives the new tree.
	wt := t.TempDir()
	git(t, wt, "init", "-q")
	git(t, wt, "fetch", "-q", r.GitDir(), base.Commit.String())
	git(t, wt, "checkout", "-q", base.Commit.String())
	patch := filepath.Join(t.TempDir(), "change.patch")
	os.WriteFile(patch, []byte(d), 0o644)
	if out, err := gitErr(wt, "apply", "--check", "--index", patch); err != nil {
		t.Fatalf("git apply --check: %v\n%s\npatch:\n%s", err, out, d)
	}
	git(t, wt, "apply", "--index", patch)
	want := git(t, r.GitDir(), "rev-parse", res.Commit.String()+"^{tree}")
	if got := git(t, wt, "write-tree"); got != want {
		t.Fatalf("applied tree %s, want %s\npatch:\n%s", got, want, d)
	}
	// And our diff says the same as git's own, file by file.
	if stat := git(t, r.GitDir(), "diff", "--numstat", base.Commit.String(), res.Commit.String()); stat != numstat(t, d) {
		t.Fatalf("numstat: git\n%s\nours\n%s", stat, numstat(t, d))
	}
}

// numstat computes `git diff --numstat` from a unified diff.
func numstat(t *testing.T, d string) string {
	t.Helper()
	var out []string
	var file string
	add, del := 0, 0
	flush := func() {
		if file != "" {
			out = append(out, fmt.Sprintf("%d\t%d\t%s", add, del, file))
		}
	}
	for _, line := range strings.Split(d, "\n") {
		switch {
		case strings.HasPrefix(line, "diff --git "):
			flush()
			file = strings.TrimPrefix(strings.Fields(line)[2], "a/")
			add, del = 0, 0
		case strings.HasPrefix(line, "+++ "), strings.HasPrefix(line, "--- "):
		case strings.HasPrefix(line, "+"):
			add++
		case strings.HasPrefix(line, "-"):
			del++
		}
	}
	flush()
	return strings.Join(out, "\n")
}

func TestDiffRandomEditsApply(t *testing.T) {
	// Many small edit patterns against one base: each diff must apply.
	r := initRepo(t, true)
	base := put(t, r, map[string]string{"f.txt": longFile(30, nil)})
	wt := t.TempDir()
	git(t, wt, "init", "-q")
	git(t, wt, "fetch", "-q", r.GitDir(), base.Commit.String())
	edits := []map[int]string{
		{1: ""}, {30: ""}, {1: "first\n"}, {30: "last\n"}, {15: "a\nb\nc\n"},
		{4: "", 5: "", 6: "", 7: ""}, {2: "x\n", 9: "y\n"}, {2: "x\n", 10: "y\n"},
		{1: "", 2: "", 29: "", 30: ""}, {8: "eight\n", 16: "sixteen\n", 24: "twenty-four\n"},
	}
	for i, e := range edits {
		res, err := r.Commit(context.Background(), CommitRequest{
			Message: "edit", Author: testAuthor, DryRun: true,
			Build: func(*Snapshot) ([]Change, error) {
				return []Change{{Path: "f.txt", Content: []byte(longFile(30, e))}}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		git(t, wt, "checkout", "-q", "-f", base.Commit.String())
		patch := filepath.Join(t.TempDir(), "p")
		os.WriteFile(patch, []byte(res.Diff), 0o644)
		if out, err := gitErr(wt, "apply", patch); err != nil {
			t.Fatalf("edit %d: git apply: %v %s\n%s", i, err, out, res.Diff)
		}
		if got, _ := os.ReadFile(filepath.Join(wt, "f.txt")); string(got) != longFile(30, e) {
			t.Fatalf("edit %d: applied content differs:\n%s", i, res.Diff)
		}
	}
}
