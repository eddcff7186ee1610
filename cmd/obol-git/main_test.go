package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if rc := run(context.Background(), []string{"--version"}, &out, io.Discard, nil); rc != 0 {
		t.Fatalf("rc=%d", rc)
	}
	if !strings.HasPrefix(out.String(), "obol-git ") {
		t.Fatalf("got %q", out.String())
	}
}

func TestUsage(t *testing.T) {
	if rc := run(context.Background(), nil, io.Discard, io.Discard, nil); rc != 2 {
		t.Fatalf("rc=%d", rc)
	}
}

func TestServeAndShutdown(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", "-b", "main", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, []string{"--root", dir, "--listen", "127.0.0.1:0"}, io.Discard, &logs, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case rc := <-done:
		t.Fatalf("exited early rc=%d", rc)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + addr + "/stack.git/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-git-upload-pack-advertisement" {
		t.Fatalf("info/refs %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	cancel()
	select {
	case rc := <-done:
		if rc != 0 {
			t.Fatalf("rc=%d", rc)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown")
	}
	if !strings.Contains(logs.String(), `"msg":"request"`) || !strings.Contains(logs.String(), `"path":"/healthz"`) {
		t.Fatalf("no JSON request log: %s", logs.String())
	}
}

// The port the obol-git image declares (the Makefile's git-image), the one it listens on by
// default and the one the stack's Deployment names must be one port; the image builder's
// default is the gateway's 8402.
func TestImagePortIsTheListenPort(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^git-image:.*\n\t.*mkimage .*--port (\d+)`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile's git-image target does not pass --port to mkimage")
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	def := regexp.MustCompile(`fs.String\("listen", ":(\d+)"`).FindSubmatch(src)
	if def == nil || string(def[1]) != string(m[1]) {
		t.Errorf("image declares port %s, obol-git listens on %q by default", m[1], def)
	}
	dep, err := os.ReadFile(filepath.Join("..", "..", "internal", "render", "testdata", "golden", "clusters", "dev", "flux-system", "obol-git.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dep), "containerPort: "+string(m[1])) {
		t.Errorf("the rendered Deployment does not name port %s", m[1])
	}
}
