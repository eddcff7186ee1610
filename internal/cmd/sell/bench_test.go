package sell_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol"
	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/root"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/settings"
)

const benchPayTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

var benchSizes = []int{100, 1000, 10000}

var gitEnv = []string{"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com",
	"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com", "GIT_CONFIG_NOSYSTEM=1"}

// fixtureSlices renders n real http offer slices plus the stack files, as `obol sell` would
// have committed them.
func fixtureSlices(tb testing.TB, n int) []repo.Change {
	st := settings.New("bench")
	files, err := render.Stack(obol.Assets(), st)
	if err != nil {
		tb.Fatal(err)
	}
	sf, err := st.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	files[settings.File] = sf
	for i := 0; i < n; i++ {
		if err := files.Merge(benchSlice(tb, st, fmt.Sprintf("s%05d", i))); err != nil {
			tb.Fatal(err)
		}
	}
	out := make([]repo.Change, 0, len(files))
	for _, p := range files.Paths() {
		out = append(out, repo.Change{Path: p, Content: files[p]})
	}
	return out
}

// benchSlice is the slice obol renders for benchOffer(name), offer.yaml included.
func benchSlice(tb testing.TB, st *settings.Stack, name string) render.Files {
	o := benchOffer(name)
	files, err := render.Slice(st, o)
	if err != nil {
		tb.Fatal(err)
	}
	src, err := offer.Encode(o)
	if err != nil {
		tb.Fatal(err)
	}
	files[layout.OfferPath(o.Spec.Type, o.Name)] = src
	return files
}

func benchOffer(name string) *v1alpha1.ServiceOffer {
	o := &v1alpha1.ServiceOffer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps"},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeHTTP,
			Upstream: &v1alpha1.UpstreamSpec{Service: "svc-" + name, Port: 8080},
			Payment:  v1alpha1.PaymentSpec{Network: "base-sepolia", PayTo: benchPayTo, Price: v1alpha1.PriceSpec{PerRequest: "0.001"}},
		},
	}
	offer.Default(o)
	return o
}

var (
	fixtureMu    sync.Mutex
	fixtureCache = map[int][]repo.Change{}
)

// newFixtureRepo creates a stack repo (with a work tree and index) already holding n slices.
func newFixtureRepo(tb testing.TB, n int) string {
	fixtureMu.Lock()
	changes, ok := fixtureCache[n]
	if !ok {
		changes = fixtureSlices(tb, n)
		fixtureCache[n] = changes
	}
	fixtureMu.Unlock()
	dir := filepath.Join(tb.TempDir(), "stack")
	r, err := repo.Init(dir, repo.InitOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	_, err = r.Commit(context.Background(), repo.CommitRequest{
		Message: "fixture",
		Author:  repo.Signature{Name: "bench", Email: "bench@example.com", When: time.Unix(1_780_000_000, 0)},
		Build:   func(*repo.Snapshot) ([]repo.Change, error) { return changes, nil },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

func sellArgs(name string) []string {
	return []string{"sell", "http", name, "--upstream", "svc", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", benchPayTo, "--chain", "base-sepolia"}
}

// runObol runs the obol command tree in-process, as main does.
func runObol(tb testing.TB, dir string, args ...string) {
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard},
		Secrets: root.Secrets,
		Assets:  obol.Assets(),
		Getenv: func(k string) string {
			switch k {
			case "OBOL_REPO":
				return dir
			case "GIT_AUTHOR_NAME":
				return "bench"
			case "GIT_AUTHOR_EMAIL":
				return "bench@example.com"
			}
			return ""
		},
		Now: time.Now,
	}
	cmd := root.NewCmdRoot(f)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		tb.Fatalf("obol %v: %v", args, err)
	}
}

// gitAddCommit is the baseline: the same slice written by hand, then `git add` + `git commit`.
func gitAddCommit(tb testing.TB, dir string, slice map[string][]byte, name string) {
	for p, c := range slice {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, c, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for _, args := range [][]string{{"add", "applications/sell-http/" + name}, {"commit", "-q", "-m", "sell http " + name + ": create"}} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), gitEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

// gitBaseline times `git add && git commit` of ten slices, as obol renders them, in gitDir and
// returns the time per slice.
func gitBaseline(b *testing.B, gitDir string) time.Duration {
	st := settings.New("bench")
	const baselineOps = 10
	start := time.Now()
	for i := 0; i < baselineOps; i++ {
		name := fmt.Sprintf("git%05d", i)
		gitAddCommit(b, gitDir, benchSlice(b, st, name), name)
	}
	return time.Since(start) / baselineOps
}

// BenchmarkSellHTTP measures `obol sell http` end to end (validate, render, commit, work tree
// and index sync) on repos of 100, 1,000 and 10,000 slices. In the same run it times the
// baseline, `git add <slice> && git commit` of the same files on an identical repo, and
// reports git-ms/op and speedup-x (baseline time / obol time).
func BenchmarkSellHTTP(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("slices=%d", n), func(b *testing.B) {
			obolDir := newFixtureRepo(b, n)
			gitDir := newFixtureRepo(b, n)
			// Baseline first, same number of commits as obol will make.
			gitPerOp := gitBaseline(b, gitDir)

			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				runObol(b, obolDir, sellArgs(fmt.Sprintf("new%06d", i))...)
			}
			b.StopTimer()
			obolPerOp := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(gitPerOp.Microseconds())/1000, "git-ms/op")
			b.ReportMetric(float64(obolPerOp.Microseconds())/1000, "obol-ms/op")
			b.ReportMetric(float64(gitPerOp)/float64(obolPerOp), "speedup-x")
		})
	}
}

// BenchmarkSellPeakRSS runs the real obol binary once per op on a 10,000-slice repo and
// reports its peak resident set (ru_maxrss), beside that of `obol-full --version` (the start-up
// cost of the binary a sell runs in) measured in the same run. Goal: at most 100 MiB.
func BenchmarkSellPeakRSS(b *testing.B) {
	bin := buildObol(b)
	n := benchSizes[len(benchSizes)-1]
	dir := newFixtureRepo(b, n)
	env := append(append(os.Environ(), "OBOL_REPO="+dir), gitEnv...)
	// obol runs obol-full for a sell: its own start is the baseline.
	baseline := peakRSS(b, env, filepath.Join(filepath.Dir(bin), "obol-full"), "--version")
	var peak int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rss := peakRSS(b, env, append([]string{bin}, sellArgs(fmt.Sprintf("rss%06d", i))...)...); rss > peak {
			peak = rss
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(baseline)/1024, "version-RSS-MiB")
	b.ReportMetric(float64(peak)/float64(baseline), "x-version-RSS")
}

// peakRSS runs a command through a small launcher process (this test binary, re-executed)
// and returns the command's ru_maxrss in KiB. Measuring from the benchmark process itself
// would count the benchmark's own memory: a child's maxrss includes what it shared with its
// parent before exec.
func peakRSS(tb testing.TB, env []string, args ...string) int64 {
	launcher := exec.Command(os.Args[0], "-test.run=^$")
	spec, _ := json.Marshal(args)
	launcher.Env = append(env, "OBOL_RSS_LAUNCH="+string(spec))
	var stdout, stderr bytes.Buffer
	launcher.Stdout, launcher.Stderr = &stdout, &stderr
	if err := launcher.Run(); err != nil {
		tb.Fatalf("%v: %v\n%s", args, err, stderr.String())
	}
	var kib int64
	if _, err := fmt.Sscan(stdout.String(), &kib); err != nil {
		tb.Fatalf("launcher said %q: %v", stdout.String(), err)
	}
	return kib
}

// TestMain turns the test binary into the launcher peakRSS needs when OBOL_RSS_LAUNCH is set.
func TestMain(m *testing.M) {
	if spec := os.Getenv("OBOL_RSS_LAUNCH"); spec != "" {
		var args []string
		if err := json.Unmarshal([]byte(spec), &args); err != nil || len(args) == 0 {
			fmt.Fprintln(os.Stderr, "OBOL_RSS_LAUNCH:", err)
			os.Exit(2)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkSellProcess measures what a user waits for: the built obol binary run as a process
// (start-up, package init and all), against the baseline of `git add && git commit` as
// processes on an identical repo whose index is settled first (`git update-index --refresh`,
// as after any git status), in the same run, at 1,000 and 10,000 slices; and `obol --version`
// against `git --version`, the bare cost of starting each program; and `obol sell list` and
// the completion of an offer name at 1,000 offers against `git ls-tree` of the same tree.
func BenchmarkSellProcess(b *testing.B) {
	bin := buildObol(b)
	run := func(env []string, dir string, name string, args ...string) []byte {
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return out
	}
	// Start-up: obol against git doing the like, both as processes, in the same run.
	// want is in what obol prints: the time is that of the real answer.
	startup := func(b *testing.B, env []string, dir string, git []string, want, exe string, obolArgs ...string) {
		const baselineOps = 20
		start := time.Now()
		for i := 0; i < baselineOps; i++ {
			run(env, dir, "git", git...)
		}
		gitPerOp := time.Since(start) / baselineOps
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			run(env, dir, exe, obolArgs...)
		}
		b.StopTimer()
		if out := run(env, dir, exe, obolArgs...); !strings.Contains(string(out), want) {
			b.Fatalf("obol %v printed no %q:\n%s", obolArgs, want, out)
		}
		obolPerOp := b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(gitPerOp.Microseconds())/1000, "git-ms/op")
		b.ReportMetric(float64(obolPerOp.Microseconds())/1000, "obol-ms/op")
		b.ReportMetric(float64(gitPerOp)/float64(obolPerOp), "speedup-x")
	}
	b.Run("version", func(b *testing.B) {
		startup(b, os.Environ(), "", []string{"--version"}, "obol version", bin, "--version")
	})
	// sell list and the completion of an offer name (what TAB runs) at 1,000 offers, against
	// git listing the same tree.
	env := append(os.Environ(), gitEnv...)
	lsTree := []string{"ls-tree", "-r", "--name-only", "HEAD", "applications/"}
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("list/slices=%d", n), func(b *testing.B) {
			startup(b, env, newFixtureRepo(b, n), lsTree, fmt.Sprintf("s%05d", n-1), bin, "sell", "list")
		})
	}
	listDir := newFixtureRepo(b, 1000)
	b.Run("complete/slices=1000", func(b *testing.B) {
		startup(b, env, listDir, lsTree, "s00999\thttp", bin, "__complete", "sell", "update", "s00")
	})
	// The full CLI's start, for comparison: its version, run directly.
	b.Run("full-version", func(b *testing.B) {
		startup(b, os.Environ(), "", []string{"--version"}, "obol version", filepath.Join(filepath.Dir(bin), "obol-full"), "--version")
	})
	for _, n := range benchSizes[1:] {
		b.Run(fmt.Sprintf("slices=%d", n), func(b *testing.B) {
			obolDir := newFixtureRepo(b, n)
			gitDir := newFixtureRepo(b, n)
			env := append(os.Environ(), gitEnv...)
			run(env, gitDir, "git", "update-index", "-q", "--refresh")
			gitPerOp := gitBaseline(b, gitDir)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run(env, obolDir, bin, sellArgs(fmt.Sprintf("new%06d", i))...)
			}
			b.StopTimer()
			obolPerOp := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(gitPerOp.Microseconds())/1000, "git-ms/op")
			b.ReportMetric(float64(obolPerOp.Microseconds())/1000, "obol-ms/op")
			b.ReportMetric(float64(gitPerOp)/float64(obolPerOp), "speedup-x")
		})
	}
}

// buildObol builds obol and obol-full side by side, as make build does, and returns obol's path.
func buildObol(b *testing.B) string {
	dir := b.TempDir()
	for _, name := range []string{"obol", "obol-full"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, name), "github.com/obol/obol/cmd/"+name)
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	return filepath.Join(dir, "obol")
}
