package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402/x402test"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &out, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got := out.String(); got != "obol-gateway dev\n" {
		t.Fatalf("--version printed %q", got)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"mode":"http","typo":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 2},
		{[]string{"--nope"}, 2},
		{[]string{"--config", bad, "extra"}, 2},
		{[]string{"--config", filepath.Join(dir, "missing.json")}, 1},
		{[]string{"--config", bad}, 1}, // unknown field
		{[]string{"--config", bad, "--log-level", "loud"}, 2},
	} {
		if got := run(context.Background(), tc.args, io.Discard, io.Discard); got != tc.want {
			t.Errorf("%q: exit %d, want %d", tc.args, got, tc.want)
		}
	}
}

// syncBuffer collects the JSON log lines concurrently written by the gateway.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listenAddr waits for the "listening" log line and returns its address.
func listenAddr(t testing.TB, logs func() string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for l := range strings.SplitSeq(logs(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "listening" {
				return m["addr"].(string)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the gateway did not start:\n%s", logs())
	return ""
}

func writeConfig(t testing.TB, upstream, facilitator string) string {
	t.Helper()
	cfg := &gatewayconfig.Config{
		Offer: "qwen", Mode: gatewayconfig.ModeInference, Upstream: upstream, PathPrefix: "/services/qwen", Facilitator: facilitator,
		Payment: gatewayconfig.Payment{
			Scheme: "exact", Network: "eip155:84532", NetworkName: "base-sepolia",
			PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", Amount: "1000", MaxTimeoutSeconds: 300,
			Asset: gatewayconfig.Asset{Address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", Symbol: "USDC", Decimals: 6, TransferMethod: "eip3009", EIP712Name: "USDC", EIP712Version: "2"},
			Price: gatewayconfig.Price{PerRequest: "0.001"},
		},
		Limits: gatewayconfig.DefaultLimits(gatewayconfig.ModeInference),
	}
	data, err := gatewayconfig.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGracefulShutdown stops the gateway (as SIGTERM does) while a paid request is at the
// upstream: the request still gets its answer and is settled, and the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{SettleDelay: 200 * time.Millisecond})
	cfgPath := writeConfig(t, up.URL, fac.URL())

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logs := &syncBuffer{}
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, []string{"--config", cfgPath, "--listen", "127.0.0.1:0"}, logs, io.Discard) }()
	addr := listenAddr(t, logs.String)

	type result struct {
		status int
		tx     string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/services/qwen/v1/chat/completions", strings.NewReader(`{}`))
		resp, receipt, err := x402test.NewBuyer(t, 2).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r := result{status: resp.StatusCode}
		if receipt != nil {
			r.tx = receipt.Transaction
		}
		done <- r
	}()
	<-entered
	stop() // SIGTERM
	r := <-done
	if r.err != nil || r.status != 200 || r.tx == "" {
		t.Fatalf("in-flight request during shutdown: %+v", r)
	}
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs.String())
	}
	if len(fac.Settlements()) != 1 {
		t.Fatalf("settlements %d", len(fac.Settlements()))
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("still serving after shutdown")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// buildGateway builds the static binary once per test binary.
var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

func buildGateway(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "obol-gateway-test")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "obol-gateway")
		cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-s -w -X main.version=test", "-o", buildPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// idleRSS starts the real binary, waits for /readyz, and returns its resident set size in KiB
// and its binary's size in bytes; it then stops it with SIGTERM and checks it exits 0.
func idleRSS(t testing.TB) (rssKiB, binBytes int64) {
	bin := buildGateway(t)
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	defer up.Close()
	cfg := writeConfig(t, up.URL, "http://127.0.0.1:9")
	cmd := exec.Command(bin, "--config", cfg, "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	logs := &syncBuffer{}
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(logs, bufio.NewReader(stdout)); close(copied) }()
	addr := listenAddr(t, logs.String)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // idle
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rssKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	if rssKiB == 0 {
		t.Fatalf("no VmRSS in %s", status)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-copied
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	return rssKiB, st.Size()
}

// TestIdleRSS builds the static binary, starts it, and checks its idle resident memory is
// within the 30 MiB goal (and that SIGTERM stops it cleanly).
func TestIdleRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	rss, size := idleRSS(t)
	t.Logf("idle RSS %.1f MiB, binary %.1f MiB", float64(rss)/1024, float64(size)/(1<<20))
	if rss > 30<<10 {
		t.Errorf("idle RSS %d KiB, goal <= 30 MiB", rss)
	}
}

// BenchmarkIdleRSS reports the real binary's idle RSS and size (`make bench`).
func BenchmarkIdleRSS(b *testing.B) {
	var rss, size int64
	for range b.N {
		rss, size = idleRSS(b)
	}
	b.ReportMetric(float64(rss)/1024, "idle-rss-MiB")
	b.ReportMetric(float64(size)/(1<<20), "binary-MiB")
}
