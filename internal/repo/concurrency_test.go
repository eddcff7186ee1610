package repo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentCommitsGoroutines: 20 goroutines, each with its own Open'ed
// Repo, commit disjoint paths at once: 20 commits, none lost, work tree clean.
func TestConcurrentCommitsGoroutines(t *testing.T) {
	r := initRepo(t, false)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ri, err := Open(r.Dir())
			if err != nil {
				errs <- err
				return
			}
			p := fmt.Sprintf("applications/sell-http/g%02d/offer.yaml", i)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err = ri.Commit(ctx, CommitRequest{Message: "add " + p, Author: testAuthor,
				Build: func(*Snapshot) ([]Change, error) {
					return []Change{{Path: p, Content: []byte(p + "\n")}}, nil
				}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := git(t, r.Dir(), "rev-list", "--count", "main"); c != strconv.Itoa(n) {
		t.Fatalf("%s commits, want %d", c, n)
	}
	files := treeFiles(t, r.Dir(), "main")
	for i := range n {
		p := fmt.Sprintf("applications/sell-http/g%02d/offer.yaml", i)
		if files[p] != p {
			t.Errorf("lost %s", p)
		}
	}
	assertConsistent(t, r)
}

// TestConcurrentCommitsProcesses: the same with 8 OS processes (this test
// binary re-executed), 3 commits each.
func TestConcurrentCommitsProcesses(t *testing.T) {
	r := initRepo(t, false)
	const procs, each = 8, 3
	type proc struct {
		cmd interface{ Wait() error }
		out *strings.Builder
	}
	var cmds []proc
	for i := range procs {
		cmd := helperCmd(t, "commit", r.Dir(), fmt.Sprintf("OBOL_PREFIX=p%d", i), fmt.Sprintf("OBOL_N=%d", each))
		var out strings.Builder
		cmd.Stderr = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, proc{cmd: cmd, out: &out})
	}
	for i, c := range cmds {
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, c.out)
		}
	}
	if c := git(t, r.Dir(), "rev-list", "--count", "main"); c != strconv.Itoa(procs*each) {
		t.Fatalf("%s commits, want %d", c, procs*each)
	}
	files := treeFiles(t, r.Dir(), "main")
	if len(files) != procs*each {
		t.Fatalf("%d files, want %d", len(files), procs*each)
	}
	assertConsistent(t, r)
}

// TestCASRebuild: the git CLI commits while Build runs; the compare-and-swap
// fails, Build runs again on the new head, and both changes survive.
func TestCASRebuild(t *testing.T) {
	for _, bare := range []bool{false, true} {
		t.Run(map[bool]string{false: "worktree", true: "bare"}[bare], func(t *testing.T) {
			r := initRepo(t, bare)
			base := put(t, r, map[string]string{"base.txt": "base\n"})
			var heads []string
			res, err := r.Commit(context.Background(), CommitRequest{Message: "obol change", Author: testAuthor,
				Build: func(head *Snapshot) ([]Change, error) {
					heads = append(heads, head.Commit().String())
					if len(heads) == 1 {
						cliCommit(t, r, "cli.txt", "from the CLI\n")
					}
					return []Change{{Path: "obol.txt", Content: []byte("from obol\n")}}, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			if len(heads) != 2 || heads[0] != base.Commit.String() || heads[1] == heads[0] {
				t.Fatalf("Build saw heads %v", heads)
			}
			if res.Attempts != 2 || res.Parent.String() != heads[1] {
				t.Fatalf("Attempts %d Parent %s, want 2 and %s", res.Attempts, res.Parent, heads[1])
			}
			files := treeFiles(t, r.Dir(), "main")
			if files["cli.txt"] != "from the CLI" || files["obol.txt"] != "from obol" || files["base.txt"] != "base" {
				t.Fatalf("tree after rebuild: %v", files)
			}
			if got := git(t, r.Dir(), "log", "--format=%s", "main"); got != "obol change\ncli commit\ntest commit" {
				t.Fatalf("history:\n%s", got)
			}
			assertConsistent(t, r)
		})
	}
}

// cliCommit commits one file with the git CLI behind obol's back.
func cliCommit(t *testing.T, r *Repo, path, content string) {
	t.Helper()
	if r.Bare() {
		blob := gitStdin(t, r.Dir(), content, "hash-object", "-w", "--stdin")
		idx := filepath.Join(t.TempDir(), "index")
		env := []string{"GIT_INDEX_FILE=" + idx}
		gitEnv(t, r.Dir(), env, "read-tree", "main")
		gitEnv(t, r.Dir(), env, "update-index", "--add", "--cacheinfo", "100644,"+blob+","+path)
		tree := gitEnv(t, r.Dir(), env, "write-tree")
		c := git(t, r.Dir(), "commit-tree", tree, "-p", "main", "-m", "cli commit")
		git(t, r.Dir(), "update-ref", "refs/heads/main", c)
		return
	}
	writeWT(t, r, path, content)
	git(t, r.Dir(), "add", path)
	git(t, r.Dir(), "commit", "-q", "-m", "cli commit")
}

// TestLockHeldByKilledProcess: a process that holds the repository lock is
// SIGKILLed; the kernel drops its flock and the next commit proceeds at once.
// While it was alive, a commit with a deadline failed naming its pid.
func TestLockHeldByKilledProcess(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"a": "a\n"})
	cmd := helperCmd(t, "hold-lock", r.Dir())
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	pid := cmd.Process.Pid

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = r.Commit(ctx, CommitRequest{Message: "m", Author: testAuthor,
		Build: func(*Snapshot) ([]Change, error) { return []Change{{Path: "b", Content: []byte("b\n")}}, nil }})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", pid)) {
		t.Fatalf("commit under a held lock: %v (want ErrLocked naming pid %d)", err, pid)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("did not honour the deadline")
	}

	cmd.Process.Kill() // SIGKILL: no chance to clean up
	cmd.Wait()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	res, err := r.Commit(ctx2, CommitRequest{Message: "after kill", Author: testAuthor,
		Build: func(*Snapshot) ([]Change, error) { return []Change{{Path: "b", Content: []byte("b\n")}}, nil }})
	if err != nil || res.Commit.IsZero() {
		t.Fatalf("commit after the holder died: %v", err)
	}
	assertConsistent(t, r)
}

// TestStaleRefLock: a refs/heads/main.lock older than 10 s (a killed git or
// obol) is removed with a note; a fresh one (a running git) is waited for.
func TestStaleRefLock(t *testing.T) {
	r := initRepo(t, false)
	put(t, r, map[string]string{"a": "a\n"})
	lock := filepath.Join(r.GitDir(), "refs/heads/main.lock")

	os.WriteFile(lock, nil, 0o644)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(lock, old, old)
	res := put(t, r, map[string]string{"b": "b\n"})
	if res.Commit.IsZero() || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "removed stale lock") || !strings.Contains(res.Notes[0], "main.lock") {
		t.Fatalf("stale lock: commit %s notes %q", res.Commit, res.Notes)
	}
	assertConsistent(t, r)

	// Fresh: released while we wait.
	os.WriteFile(lock, nil, 0o644)
	go func() { time.Sleep(200 * time.Millisecond); os.Remove(lock) }()
	res = put(t, r, map[string]string{"c": "c\n"})
	if res.Commit.IsZero() || len(res.Notes) != 0 {
		t.Fatalf("fresh lock released during the wait: %+v", res)
	}

	// Fresh and never released: a clear error, nothing moved.
	defer func(d time.Duration) { gitLockWait = d }(gitLockWait)
	gitLockWait = 300 * time.Millisecond
	os.WriteFile(lock, nil, 0o644)
	defer os.Remove(lock)
	head := headOf(t, r)
	_, err := r.Commit(context.Background(), CommitRequest{Message: "m", Author: testAuthor,
		Build: func(*Snapshot) ([]Change, error) { return []Change{{Path: "d", Content: []byte("d\n")}}, nil }})
	if !errors.Is(err, ErrRefLocked) || !strings.Contains(err.Error(), "main.lock") {
		t.Fatalf("held git lock: %v", err)
	}
	if headOf(t, r) != head {
		t.Fatal("ref moved")
	}
	if _, err := os.Stat(filepath.Join(r.Dir(), "d")); !os.IsNotExist(err) {
		t.Fatal("work tree written although the ref did not move")
	}
	if _, err := os.Stat(filepath.Join(r.GitDir(), journalName)); !os.IsNotExist(err) {
		t.Fatal("journal left behind")
	}
	if _, err := os.Stat(filepath.Join(r.GitDir(), "index.lock")); !os.IsNotExist(err) {
		t.Fatal("index.lock left behind")
	}
}

// TestRefWriteIsAtomic: the ref file is never truncated in place; the new
// value arrives by rename (a different inode) with a trailing newline.
func TestRefWriteIsAtomic(t *testing.T) {
	r := initRepo(t, true)
	put(t, r, map[string]string{"a": "a\n"})
	refPath := filepath.Join(r.GitDir(), "refs/heads/main")
	before, _ := os.Stat(refPath)
	res := put(t, r, map[string]string{"a": "b\n"})
	after, _ := os.Stat(refPath)
	if os.SameFile(before, after) {
		t.Fatal("ref rewritten in place instead of renamed over")
	}
	data, _ := os.ReadFile(refPath)
	if string(data) != res.Commit.String()+"\n" {
		t.Fatalf("ref content %q", data)
	}
	if _, err := os.Stat(refPath + ".lock"); !os.IsNotExist(err) {
		t.Fatal("lock left")
	}
}
