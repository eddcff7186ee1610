package gitremote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/obol/obol/internal/gittest"
)

// The crash test re-runs this test binary as a helper process that fetches
// and is SIGKILLed; these variables tell the helper what to do.
const (
	envHelper = "GITREMOTE_CRASH_HELPER"
	envURL    = "GITREMOTE_CRASH_URL"
	envDir    = "GITREMOTE_CRASH_GITDIR"
	envBranch = "GITREMOTE_CRASH_BRANCH"
	envStage  = "GITREMOTE_CRASH_STAGE" // kill itself at this storePack stage
)

// TestCrashHelper is not a test: it is the helper process of
// TestCrashSafety (it does nothing unless GITREMOTE_CRASH_HELPER=1).
func TestCrashHelper(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("helper process for TestCrashSafety")
	}
	if st := os.Getenv(envStage); st != "" {
		testHookStage = func(s string) {
			if s == st {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Minute)
			}
		}
	}
	fmt.Println("fetching")
	rm := Remote{URL: os.Getenv(envURL), Auth: noEnv()}
	h, err := Fetch(context.Background(), os.Getenv(envDir), rm, os.Getenv(envBranch), nil)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(3)
	}
	fmt.Println("done", h)
	os.Exit(0)
}

// bigRemote makes a bare repository with a shared history of several
// hundred objects (60 commits over 120 files of a few KiB in 12
// directories) and branches b0..b<n-1>, each that history plus one commit
// of its own. It returns the path and each branch's head.
func bigRemote(t *testing.T, root string, n int) (string, []plumbing.Hash) {
	t.Helper()
	bare := gittest.InitBare(t, root, "big.git", "main")
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		const letters = "abcdefghijklmnopqrstuvwxyz"
		b := make([]byte, 3+rnd.IntN(8))
		for i := range b {
			b[i] = letters[rnd.IntN(len(letters))]
		}
		return string(b)
	}
	content := func() string {
		var b strings.Builder
		for b.Len() < 256+rnd.IntN(768) {
			b.WriteString(word())
			if rnd.IntN(12) == 0 {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
		return b.String()
	}
	var s bytes.Buffer
	mark := 0
	blob := func(data string) int {
		mark++
		fmt.Fprintf(&s, "blob\nmark :%d\ndata %d\n%s\n", mark, len(data), data)
		return mark
	}
	when := 1700000000
	commitTo := func(ref string, from int, files map[string]int) int {
		mark++
		when += 60
		msg := fmt.Sprintf("change %d", mark)
		fmt.Fprintf(&s, "commit %s\nmark :%d\ncommitter Obol Test <test@obol.invalid> %d +0000\ndata %d\n%s\n", ref, mark, when, len(msg), msg)
		if from > 0 {
			fmt.Fprintf(&s, "from :%d\n", from)
		}
		for path, m := range files {
			fmt.Fprintf(&s, "M 100644 :%d %s\n", m, path)
		}
		s.WriteString("\n")
		return mark
	}
	head := 0
	for c := 0; c < 60; c++ {
		files := map[string]int{}
		k := 2
		if c == 0 {
			k = 120
		}
		for i := 0; i < k; i++ {
			f := i
			if c > 0 {
				f = rnd.IntN(120)
			}
			files[fmt.Sprintf("d%02d/f%03d.txt", f%12, f)] = blob(content())
		}
		head = commitTo("refs/heads/main", head, files)
	}
	var heads []int
	for b := 0; b < n; b++ {
		heads = append(heads, commitTo(fmt.Sprintf("refs/heads/b%d", b), head, map[string]int{fmt.Sprintf("branch/b%d.txt", b): blob(content())}))
	}
	marks := filepath.Join(t.TempDir(), "marks")
	cmd := exec.Command("git", "fast-import", "--quiet", "--export-marks="+marks)
	cmd.Dir = bare
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	cmd.Stdin = &s
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
	// One pack on the server, as a real remote would have.
	gittest.Git(t, bare, nil, "repack", "-a", "-d", "-q")
	mb, err := os.ReadFile(marks)
	if err != nil {
		t.Fatal(err)
	}
	byMark := map[string]plumbing.Hash{}
	for _, l := range strings.Split(string(mb), "\n") {
		if m, h, ok := strings.Cut(l, " "); ok {
			byMark[m] = plumbing.NewHash(h)
		}
	}
	var hs []plumbing.Hash
	for _, m := range heads {
		hs = append(hs, byMark[fmt.Sprintf(":%d", m)])
	}
	return bare, hs
}

// helperResult is what became of one helper run.
type helperResult struct {
	killed  bool
	elapsed time.Duration // from "fetching" to "done" (or the kill)
	out     string
}

// runHelper runs TestCrashHelper fetching branch into gd, and SIGKILLs it
// after delay (counted from its "fetching" line) unless delay < 0.
func runHelper(t *testing.T, url, gd, branch, stage string, delay time.Duration) helperResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"=1", envURL+"="+url, envDir+"="+gd, envBranch+"="+branch, envStage+"="+stage)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(stdout)
	line, err := br.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "fetching" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper did not start: %q %v\n%s", line, err, stderr.String())
	}
	start := time.Now()
	exited := make(chan error, 1)
	fetched := make(chan time.Duration, 1)
	var rest bytes.Buffer
	go func() {
		l, _ := br.ReadString('\n')
		fetched <- time.Since(start) // "done" or "error" (or EOF when killed)
		rest.WriteString(l)
		_, _ = rest.ReadFrom(br)
		exited <- cmd.Wait()
	}()
	r := helperResult{}
	if delay >= 0 {
		select {
		case err := <-exited:
			r.elapsed = <-fetched
			r.out = rest.String()
			if err != nil {
				t.Fatalf("helper failed: %v\n%s\n%s", err, r.out, stderr.String())
			}
			return r
		case <-time.After(delay):
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		r.killed = true
	}
	err = <-exited
	r.elapsed = <-fetched
	r.out = rest.String()
	if r.killed || stage != "" {
		return r
	}
	if err != nil {
		t.Fatalf("helper failed: %v\n%s\n%s", err, r.out, stderr.String())
	}
	return r
}

// checkRepo is what must hold after any crash: git fsck --strict passes,
// and go-git (obol's repo package reads through it) can load every pack.
func checkRepo(t *testing.T, work string) {
	t.Helper()
	gittest.Fsck(t, work)
	st, err := openStorage(gitDir(work))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	it, err := st.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		t.Fatalf("go-git cannot list the objects: %v", err)
	}
	n := 0
	err = it.ForEach(func(plumbing.EncodedObject) error { n++; return nil })
	if err != nil && !errors.Is(err, storer.ErrStop) {
		t.Fatalf("go-git cannot read the objects after %d: %v", n, err)
	}
}

func TestCrashSafety(t *testing.T) {
	if os.Getenv(envHelper) == "1" {
		t.Skip("in the helper")
	}
	root := t.TempDir()
	const branches = 32
	bare, heads := bigRemote(t, root, branches)
	url := "file://" + bare
	objects := gittest.Git(t, bare, nil, "count-objects", "-v")
	t.Logf("remote: %s", strings.ReplaceAll(objects, "\n", ", "))

	// Kill at each step of storePack.
	for _, stage := range []string{"pack-written", "idx-written", "idx-renamed", "pack-renamed"} {
		work := initWork(t)
		runHelper(t, url, gitDir(work), "b0", stage, -1)
		checkRepo(t, work)
		tmps, _ := filepath.Glob(filepath.Join(gitDir(work), "objects", "pack", "*"))
		t.Logf("killed at %s: objects/pack has %d files", stage, len(tmps))
		// A later fetch still works and completes the repository.
		h, err := Fetch(testCtx(t), gitDir(work), Remote{URL: url, Auth: noEnv()}, "b0", nil)
		if err != nil || h != heads[0] {
			t.Fatalf("Fetch after a crash at %s = %s, %v", stage, h, err)
		}
		checkRepo(t, work)
		gittest.Git(t, work, nil, "rev-list", "--objects", h.String())
	}

	// Kill at random moments. One uninterrupted run first, to know how
	// long a fetch takes.
	work := initWork(t)
	gd := gitDir(work)
	full := runHelper(t, url, gd, "b0", "", time.Hour).elapsed
	if d := runHelper(t, url, gd, "b1", "", time.Hour).elapsed; d < full {
		full = d
	}
	t.Logf("uninterrupted helper fetch: %s", full)
	window := full + full/4
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	killedMid, completed := 0, 0
	for i := 2; i < branches; i++ {
		before := len(packs(t, gd))
		delay := time.Duration(rnd.Int64N(int64(window)))
		r := runHelper(t, url, gd, fmt.Sprintf("b%d", i), "", delay)
		checkRepo(t, work)
		if len(packs(t, gd)) > before {
			completed++
		} else if r.killed {
			killedMid++
		}
	}
	t.Logf("%d random kills: %d before the pack was installed, %d after", branches-2, killedMid, completed)
	tmps, _ := filepath.Glob(filepath.Join(gd, "objects", "pack", "tmp_*"))
	t.Logf("temp files left by the kills: %d", len(tmps))

	// Finally everything can still be fetched into the same repository.
	for i := 0; i < branches; i += 7 {
		h, err := Fetch(testCtx(t), gd, Remote{URL: url, Auth: noEnv()}, fmt.Sprintf("b%d", i), nil)
		if err != nil || h != heads[i] {
			t.Fatalf("final Fetch b%d = %s, %v", i, h, err)
		}
		gittest.Git(t, work, nil, "rev-list", "--objects", h.String())
	}
	checkRepo(t, work)
}
