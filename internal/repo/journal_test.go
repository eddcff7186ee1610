package repo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func crashFixture(t *testing.T) (*Repo, Result) {
	r := initRepo(t, false)
	base := put(t, r, map[string]string{"app/a.txt": "old a\n", "app/b.txt": "old b\n", "keep.txt": "k\n"})
	return r, base
}

var crashChanges = []Change{
	{Path: "app/a.txt", Content: []byte("new a\n")},
	{Path: "app/b.txt", Delete: true},
	{Path: "app/c/d.txt", Content: []byte("new d\n")},
}

// TestJournalRecoveryInProcess: a commit stops right after the ref moved (a
// test hook returns an error, as a crash would). The journal records it; the
// work tree is stale; the next commit finishes the sync first.
func TestJournalRecoveryInProcess(t *testing.T) {
	r, base := crashFixture(t)
	crash := errors.New("simulated crash")
	testHookAfterRefMove = func() error { return crash }
	res, err := r.Commit(context.Background(), CommitRequest{Message: "interrupted", Author: testAuthor,
		Build: func(*Snapshot) ([]Change, error) { return crashChanges, nil }})
	testHookAfterRefMove = nil
	if !errors.Is(err, crash) {
		t.Fatalf("err = %v", err)
	}
	checkInterrupted(t, r, base, res.Commit)

	// The next commit recovers, then commits.
	res2 := put(t, r, map[string]string{"next.txt": "next\n"})
	if len(res2.Notes) == 0 || !strings.Contains(strings.Join(res2.Notes, "\n"), "finished the work tree sync") {
		t.Fatalf("notes %q", res2.Notes)
	}
	checkRecovered(t, r)
	if readWT(t, r, "next.txt") != "next\n" {
		t.Fatal("the next commit was not applied")
	}
}

// TestJournalRecoveryAfterSIGKILL: the same with a real crash: a child
// process SIGKILLs itself between the ref move and the sync (holding the
// flock and index.lock). Recover finishes the job.
func TestJournalRecoveryAfterSIGKILL(t *testing.T) {
	r, base := crashFixture(t)
	cmd := helperCmd(t, "crash-after-ref-move", r.Dir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("helper: %v %s", err, stderr.String())
	}
	head := headOf(t, r)
	checkInterrupted(t, r, base, head)
	if _, err := os.Stat(filepath.Join(r.GitDir(), "index.lock")); err != nil {
		t.Fatalf("the killed commit held index.lock; it should still be there: %v", err)
	}

	notes, err := r.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(notes, "\n")
	if !strings.Contains(all, "finished the work tree sync") || !strings.Contains(all, "index.lock") {
		t.Fatalf("notes %q", notes)
	}
	checkRecovered(t, r)
	if notes, _ := r.Recover(context.Background()); len(notes) != 0 {
		t.Fatalf("second Recover did something: %q", notes)
	}
}

// checkInterrupted asserts the state right after a crash between ref move and
// sync: branch at the new commit, journal present, work tree still old.
func checkInterrupted(t *testing.T, r *Repo, base Result, head interface{ String() string }) {
	t.Helper()
	if head.String() == base.Commit.String() {
		t.Fatal("the ref did not move")
	}
	if got := git(t, r.Dir(), "rev-parse", "main"); got != head.String() {
		t.Fatalf("main = %s", got)
	}
	data, err := os.ReadFile(filepath.Join(r.GitDir(), journalName))
	if err != nil {
		t.Fatalf("no journal: %v", err)
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	if j.Branch != "main" || j.Old != base.Commit.String() || j.New != head.String() ||
		strings.Join(j.Paths, ",") != "app/a.txt,app/b.txt,app/c/d.txt" {
		t.Fatalf("journal %+v", j)
	}
	if readWT(t, r, "app/a.txt") != "old a\n" {
		t.Fatal("work tree already synced: the crash did not happen where intended")
	}
	if out := git(t, r.Dir(), "status", "--porcelain"); out == "" {
		t.Fatal("git status clean before recovery; the test proves nothing")
	}
}

func checkRecovered(t *testing.T, r *Repo) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(r.GitDir(), journalName)); !os.IsNotExist(err) {
		t.Fatal("journal not removed")
	}
	if readWT(t, r, "app/a.txt") != "new a\n" || readWT(t, r, "app/c/d.txt") != "new d\n" {
		t.Fatal("work tree not synced")
	}
	if _, err := os.Stat(filepath.Join(r.Dir(), "app/b.txt")); !os.IsNotExist(err) {
		t.Fatal("deleted file still in the work tree")
	}
	assertConsistent(t, r)
}

// TestJournalRecoveryKeepsUserEdits: if the user edited a journalled path
// after the crash, recovery leaves the edit and says so.
func TestJournalRecoveryKeepsUserEdits(t *testing.T) {
	r, _ := crashFixture(t)
	testHookAfterRefMove = func() error { return errors.New("crash") }
	r.Commit(context.Background(), CommitRequest{Message: "interrupted", Author: testAuthor,
		Build: func(*Snapshot) ([]Change, error) { return crashChanges, nil }})
	testHookAfterRefMove = nil
	writeWT(t, r, "app/a.txt", "user wrote this\n")
	notes, err := r.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "left your change to app/a.txt") {
		t.Fatalf("notes %q", notes)
	}
	if readWT(t, r, "app/a.txt") != "user wrote this\n" {
		t.Fatal("user edit overwritten")
	}
	// Only the user's edit shows; the index matches HEAD.
	if out := git(t, r.Dir(), "status", "--porcelain"); out != " M app/a.txt" {
		t.Fatalf("status %q", out)
	}
}

// TestJournalWithoutRefMove: a journal whose ref never moved is just dropped.
func TestJournalWithoutRefMove(t *testing.T) {
	r, base := crashFixture(t)
	j := &journal{Branch: "main", Old: base.Commit.String(), New: strings.Repeat("1", 40), Paths: []string{"app/a.txt"}}
	if err := r.writeJournal(j); err != nil {
		t.Fatal(err)
	}
	notes, err := r.Recover(context.Background())
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "never moved") {
		t.Fatalf("notes %q err %v", notes, err)
	}
	if _, err := os.Stat(filepath.Join(r.GitDir(), journalName)); !os.IsNotExist(err) {
		t.Fatal("journal kept")
	}
	assertConsistent(t, r)
}
