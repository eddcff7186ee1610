package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDryRunWritesNothing: a dry run reports what would change and leaves
// every byte (and every mtime, directories included) under the repository as
// it was, even on an unborn branch where a real commit would create refs.
func TestDryRunWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		bare bool
		seed bool
		lock bool
	}{
		{"worktree", false, true, true},
		{"bare", true, true, true},
		{"unborn-no-lock-file-yet", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Init(t.TempDir(), InitOptions{Bare: tc.bare})
			if err != nil {
				t.Fatal(err)
			}
			var base Result
			if tc.seed {
				base = put(t, r, map[string]string{"app/a.yaml": "a: 1\n", "app/b.yaml": "b\n"})
			}
			before := hashDir(t, r.Dir(), true)
			objects := countObjects(t, r)
			res, err := r.Commit(context.Background(), CommitRequest{Message: "preview", Author: testAuthor, DryRun: true,
				Build: func(*Snapshot) ([]Change, error) {
					return []Change{
						{Path: "app/a.yaml", Content: []byte("a: 2\n")},
						{Path: "app/b.yaml", Delete: true},
						{Path: "app/new/c.yaml", Content: []byte("c\n")},
					}, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			wantChanged := "app/a.yaml,app/b.yaml,app/new/c.yaml"
			if !tc.seed {
				wantChanged = "app/a.yaml,app/new/c.yaml"
			}
			if !res.Commit.IsZero() || res.Parent != base.Commit || strings.Join(res.Changed, ",") != wantChanged {
				t.Fatalf("dry run result %+v", res)
			}
			if !strings.Contains(res.Diff, "+++ b/app/new/c.yaml") || (tc.seed && !strings.Contains(res.Diff, "-a: 1\n+a: 2\n")) {
				t.Fatalf("dry run diff:\n%s", res.Diff)
			}
			after := hashDir(t, r.Dir(), true)
			if !mapsEqual(before, after) {
				t.Fatalf("dry run changed the repository:\n%s", diffMaps(before, after))
			}
			if countObjects(t, r) != objects {
				t.Fatal("dry run wrote objects")
			}
			_, lockErr := os.Stat(filepath.Join(r.GitDir(), lockFileName))
			if !tc.lock && !os.IsNotExist(lockErr) {
				t.Fatal("dry run created the lock file")
			}
		})
	}
}

// TestDryRunReportsDirtyWorktree: a dry run runs the work tree checks too,
// so it predicts the refusal a real commit would meet.
func TestDryRunReportsDirtyWorktree(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"a.txt": "a\n"})
	writeWT(t, r, "a.txt", "edited\n")
	_, err := r.Commit(context.Background(), CommitRequest{Message: "m", Author: testAuthor, DryRun: true,
		Build: func(*Snapshot) ([]Change, error) { return []Change{{Path: "a.txt", Content: []byte("obol\n")}}, nil }})
	if !errors.Is(err, ErrDirtyWorktree) {
		t.Fatalf("err = %v", err)
	}
}
