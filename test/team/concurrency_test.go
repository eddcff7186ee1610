package team

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obol/obol/internal/gittest"
)

// teamOf starts a loopback HTTP remote, creates the stack there from the first clone and
// joins it from the others.
func teamOf(t testing.TB, n int) (bare string, users []*user) {
	root := t.TempDir()
	bare = gittest.InitBare(t, root, "stack.git", "main")
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{})
	url := srv.RepoURL("stack.git")
	for i := range n {
		u := newUser(t, fmt.Sprintf("Member%d", i))
		if i == 0 {
			u.must("stack", "init", "--stack", "team", "--remote", url, "--public")
		} else {
			u.must("stack", "join", url)
		}
		users = append(users, u)
	}
	return bare, users
}

// concurrentSells starts perClone `obol sell` processes in each clone at once and waits for
// all of them; it returns their failures.
func concurrentSells(t testing.TB, users []*user, perClone int, prefix string) []string {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	start := make(chan struct{})
	for ci, u := range users {
		for k := range perClone {
			name := fmt.Sprintf("%s-%d-%d", prefix, ci, k)
			cmd := u.command(sellArgs(name)...)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out, err := cmd.CombinedOutput()
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v\n%s", name, err, out))
					mu.Unlock()
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	return failures
}

// TestConcurrentSells is 50 `obol sell` processes started at once from 5 clones against one
// loopback remote: every one lands as its own commit, none lost, each slice whole.
func TestConcurrentSells(t *testing.T) {
	const clones, perClone = 5, 10
	bare, users := teamOf(t, clones)
	began := time.Now()
	if failures := concurrentSells(t, users, perClone, "offer"); len(failures) > 0 {
		t.Fatalf("%d of %d sells failed:\n%s", len(failures), clones*perClone, strings.Join(failures, "\n"))
	}
	t.Logf("%d concurrent sells from %d clones landed in %.1fs", clones*perClone, clones, time.Since(began).Seconds())
	if got := gittest.Git(t, bare, nil, "rev-list", "--count", "main"); got != fmt.Sprint(clones*perClone+1) {
		t.Fatalf("remote has %s commits, want %d (init + one per sell)", got, clones*perClone+1)
	}
	if merges := gittest.Git(t, bare, nil, "rev-list", "--merges", "--count", "main"); merges != "0" {
		t.Fatalf("%s merge commits, want none", merges)
	}
	// Each commit adds exactly one whole slice.
	subjects := strings.Split(gittest.Git(t, bare, nil, "log", "--format=%s", "main"), "\n")
	seen := map[string]bool{}
	for _, s := range subjects[:len(subjects)-1] {
		seen[s] = true
	}
	ref := sliceFiles(t, bare, "main", "applications/sell-http/offer-0-0")
	for ci := range clones {
		for k := range perClone {
			name := fmt.Sprintf("offer-%d-%d", ci, k)
			if !seen["sell http "+name+": create"] {
				t.Errorf("no commit for %s on the remote", name)
			}
			files := sliceFiles(t, bare, "main", "applications/sell-http/"+name)
			if strings.Join(files, ",") != strings.Join(ref, ",") {
				t.Errorf("slice %s has files %v, want %v", name, files, ref)
			}
		}
	}
	gittest.Fsck(t, bare)
	for _, u := range users {
		gittest.Fsck(t, u.repo)
		if st := gittest.Git(t, u.repo, nil, "status", "--porcelain"); st != "" {
			t.Errorf("%s's work tree is not clean:\n%s", u.name, st)
		}
	}
	// Every clone converges on the same head.
	for _, u := range users {
		u.must("sync")
		if got, want := gittest.Git(t, u.repo, nil, "rev-parse", "HEAD"), gittest.Git(t, bare, nil, "rev-parse", "main"); got != want {
			t.Errorf("%s is at %s after sync, want %s", u.name, got, want)
		}
	}
}

// BenchmarkConcurrentSells measures 50 sells from 5 clones, against the baseline of the same
// 50 sells run one after another from one clone (no races to lose).
func BenchmarkConcurrentSells(b *testing.B) {
	const clones, perClone = 5, 10
	for b.Loop() {
		b.StopTimer()
		_, serial := teamOf(b, 1)
		b.StartTimer()
		t0 := time.Now()
		for k := range clones * perClone {
			serial[0].must(sellArgs(fmt.Sprintf("s-%d", k))...)
		}
		serialTime := time.Since(t0)
		b.StopTimer()
		_, users := teamOf(b, clones)
		b.StartTimer()
		t0 = time.Now()
		if failures := concurrentSells(b, users, perClone, "c"); len(failures) > 0 {
			b.Fatalf("%d sells failed:\n%s", len(failures), strings.Join(failures, "\n"))
		}
		concurrent := time.Since(t0)
		b.ReportMetric(serialTime.Seconds(), "serial-s")
		b.ReportMetric(concurrent.Seconds(), "concurrent-s")
		b.ReportMetric(concurrent.Seconds()/serialTime.Seconds(), "concurrent/serial")
	}
}

func sliceFiles(t testing.TB, repoDir, rev, dir string) []string {
	t.Helper()
	out := gittest.Git(t, repoDir, nil, "ls-tree", "-r", "--name-only", rev, "--", dir)
	var files []string
	for _, p := range strings.Split(out, "\n") {
		if p != "" {
			files = append(files, strings.TrimPrefix(p, dir+"/"))
		}
	}
	sort.Strings(files)
	return files
}

// TestSIGKILL kills `obol sell` 200 times at random points, from the first file write to the
// push, and checks after every kill that the clone is a valid repository whose branch holds
// only whole slices; every tenth round a full sync must recover and go on. Before each round a
// teammate pushes from another clone, so every killed sell also has a pull to fast-forward
// (a branch move with a work tree sync) on its way.
func TestSIGKILL(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 40
	}
	bare, users := teamOf(t, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	u, mate := users[0], users[1]
	// A sell starts, pulls (a fast-forward over the teammate's commit), commits, then pushes.
	// A quarter of the kills land anywhere in a whole sell's time; the others are triggered by
	// what the sell does, seen as moves of its branch ref: within 2 ms after the pull's
	// fast-forward (its work tree sync), within 2 ms after the commit (the commit's work tree
	// sync), and anywhere from the commit to past the end (the push).
	mate.must(sellArgs("mate-calibrate")...)
	moves, span, name := calibrate(t, u)
	commitAt := moves[len(moves)-1]
	ref := filepath.Join(u.repo, ".git", "refs", "heads", "main")
	want := sliceFiles(t, u.repo, "HEAD", "applications/sell-http/"+name)
	// Where the kills landed, told by what moved: nothing, the local branch, or the remote too.
	var before, local, pushed int
	// The offers a killed sell committed (locally, or pushed too): each must be on the remote
	// once the next write of this clone (here the sync every tenth round) has run.
	var committed []string
	onRemote := func(when string) {
		t.Helper()
		for _, n := range committed {
			if gittest.Git(t, bare, nil, "ls-tree", "--name-only", "main", "applications/sell-http/"+n) == "" {
				t.Fatalf("%s: offer %s, committed by a killed sell, is not on the remote", when, n)
			}
		}
	}
	for i := range kills {
		mate.must(sellArgs(fmt.Sprintf("m%d", i))...)
		remoteBefore := gittest.Git(t, bare, nil, "rev-parse", "main")
		cmd := u.command(sellArgs(fmt.Sprintf("k%d", i))...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 0:
			time.Sleep(time.Duration(rng.Int64N(int64(span) * 6 / 5)))
		case 1:
			afterMoves(ref, 1, span*2)
			time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Millisecond))))
		case 2:
			afterMoves(ref, 2, span*2)
			time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Millisecond))))
		default:
			afterMoves(ref, 2, span*2)
			time.Sleep(time.Duration(rng.Int64N(int64(span-commitAt) + int64(20*time.Millisecond))))
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		checkClone(t, u.repo, want)
		switch {
		case gittest.Git(t, bare, nil, "rev-parse", "main") != remoteBefore:
			pushed++
			committed = append(committed, fmt.Sprintf("k%d", i))
		case hasSlice(t, u.repo, fmt.Sprintf("k%d", i)):
			local++
			committed = append(committed, fmt.Sprintf("k%d", i))
		default:
			before++
		}
		if i%10 == 9 {
			u.must("sync")
			onRemote(fmt.Sprintf("round %d, after sync", i))
			if st := gittest.Git(t, u.repo, nil, "status", "--porcelain"); st != "" {
				t.Fatalf("round %d: after recovery the work tree is not clean:\n%s", i, st)
			}
		}
	}
	u.must("sync")
	onRemote("after the final sync")
	checkClone(t, u.repo, want)
	mate.must("sync")
	for _, c := range users {
		if got, want := gittest.Git(t, c.repo, nil, "rev-parse", "HEAD"), gittest.Git(t, bare, nil, "rev-parse", "main"); got != want {
			t.Fatalf("after the final sync %s is at %s, the remote at %s", c.name, got, want)
		}
	}
	gittest.Fsck(t, bare)
	u.must("validate")
	// The kills must have landed where they were aimed: before the commit, between the commit
	// and the push, and after the push; otherwise this test proves less than it says.
	if !testing.Short() && (before == 0 || local == 0 || pushed == 0) {
		t.Errorf("kills landed %d before the commit, %d between commit and push, %d after the push: every place must be hit", before, local, pushed)
	}
	n := gittest.Git(t, bare, nil, "rev-list", "--count", "main")
	t.Logf("%d SIGKILLs into a %v sell (branch moves at %v): %d before the local commit, %d after it and before the push, %d after the push; 0 corrupt repos; %s commits on the remote",
		kills, span.Round(time.Millisecond), moves, before, local, pushed, n)
}

// afterMoves returns once the ref file has been replaced n times, or after limit.
func afterMoves(ref string, n int, limit time.Duration) {
	fi, _ := os.Stat(ref)
	deadline := time.Now().Add(limit)
	for seen := 0; seen < n && time.Now().Before(deadline); {
		if now, err := os.Stat(ref); err == nil && (fi == nil || !os.SameFile(fi, now)) {
			seen++
			fi = now
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// hasSlice reports whether the clone's branch holds the offer's slice.
func hasSlice(t *testing.T, dir, name string) bool {
	return gittest.Git(t, dir, nil, "ls-tree", "--name-only", "HEAD", "applications/sell-http/"+name) != ""
}

// calibrate runs one sell and returns when its branch ref moved (the pull's fast-forward, then
// the local commit: the last move) and how long it took.
func calibrate(t *testing.T, u *user) (moves []time.Duration, span time.Duration, name string) {
	ref := filepath.Join(u.repo, ".git", "refs", "heads", "main")
	fi, err := os.Stat(ref)
	if err != nil {
		t.Fatal(err)
	}
	name = fmt.Sprintf("calibrate-%d", time.Now().UnixNano())
	cmd := u.command(sellArgs(name)...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("calibration sell: %v", err)
			}
			if len(moves) == 0 {
				t.Fatal("calibration sell: the branch never moved")
			}
			return moves, time.Since(start), name
		default:
		}
		if now, err := os.Stat(ref); err == nil && !os.SameFile(fi, now) {
			moves = append(moves, time.Since(start))
			fi = now
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// checkClone is what a kill must never break: git fsck --strict passes, the branch points at a
// commit whose every slice is whole.
func checkClone(t *testing.T, dir string, want []string) {
	t.Helper()
	gittest.Fsck(t, dir)
	list := gittest.Git(t, dir, nil, "ls-tree", "-r", "--name-only", "HEAD", "--", "applications/sell-http")
	bySlice := map[string][]string{}
	for _, p := range strings.Split(list, "\n") {
		rest, ok := strings.CutPrefix(p, "applications/sell-http/")
		if !ok {
			continue
		}
		name, file, _ := strings.Cut(rest, "/")
		bySlice[name] = append(bySlice[name], file)
	}
	for name, files := range bySlice {
		sort.Strings(files)
		if strings.Join(files, ",") != strings.Join(want, ",") {
			t.Fatalf("slice %s is committed half-written: %v, want %v", name, files, want)
		}
	}
}
