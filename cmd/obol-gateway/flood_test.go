package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/x402test"
)

// TestFloodStaysUnderMemoryLimit runs the gateway binary as the chart runs it (GOMEMLIMIT 90%
// of the 128Mi limit) and floods it on loopback: 2000 connections that declare a 1 MiB body
// and send a byte, 1000 slowloris connections trickling headers, 2000 clients at once, 400
// forged payments, and 300 paid streams abandoned after their first event. Honest buyers are still served throughout, the forged payments cost the
// facilitator nothing, and the process's peak RSS stays under the limit. Every loop is bounded.
func TestFloodStaysUnderMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a gateway process")
	}
	bin := filepath.Join(t.TempDir(), "obol-gateway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body, _ := io.ReadAll(r.Body); strings.Contains(string(body), `"stream":true`) {
			// A long stream, which the flood's buyers abandon after its first event.
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 100 && r.Context().Err() == nil; i++ {
				fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
				_ = http.NewResponseController(w).Flush()
				time.Sleep(20 * time.Millisecond)
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"paid"}}]}`)
	}))
	defer up.Close()
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	port := freePort(t)
	cmd := exec.Command(bin, "--config", writeConfig(t, up.URL, fac.URL()), "--listen", "127.0.0.1:"+port, "--log-level", "error")
	cmd.Env = append(os.Environ(), "GOMEMLIMIT=115MiB")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := "http://127.0.0.1:" + port
	waitUp(t, base)
	path := "/services/qwen/v1/chat/completions"
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	var slow []net.Conn
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()
	// Slow bodies: headers whole, a 1 MiB body declared, one byte sent.
	for range 2000 {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{", path)
		slow = append(slow, c)
	}
	// Slowloris: a request line and half a header, never finished.
	for range 1000 {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nX-Slow: ", path)
		slow = append(slow, c)
	}

	// 2000 clients at once (unpaid), 500 forged payments, and honest buyers among them.
	buyer := x402test.NewBuyer(t, 2)
	resp, err := client.Post(base+path, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, req, err := x402test.ChooseV2(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var unpaid402, honestOK, honest, forgedServed atomic.Int64
	sem := make(chan struct{}, 256)
	for i := range 2500 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			hr, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
			switch {
			case i < 2000:
			case i%5 == 0:
				h, err := buyer.SignV2(req, nil)
				if err != nil {
					return
				}
				hr.Header.Set(x402.HeaderPaymentSignature, h)
				honest.Add(1)
			default:
				p, err := buyer.PayloadV2(req, nil, nil)
				if err != nil {
					return
				}
				p.Payload.Signature = "0x" + hex.EncodeToString(append(make([]byte, 64), 27))
				p.Raw = nil
				h, _ := x402.EncodeHeader(p)
				hr.Header.Set(x402.HeaderPaymentSignature, h)
			}
			resp, err := client.Do(hr)
			// An honest buyer told "busy" retries the same payment, as the 503 says to.
			for try := 0; err == nil && resp.StatusCode == http.StatusServiceUnavailable && i%5 == 0 && try < 50; try++ {
				resp.Body.Close()
				time.Sleep(20 * time.Millisecond)
				hr2, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
				hr2.Header = hr.Header
				resp, err = client.Do(hr2)
			}
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case i < 2000 && resp.StatusCode == 402:
				unpaid402.Add(1)
			case i >= 2000 && i%5 == 0 && resp.StatusCode == 200:
				honestOK.Add(1)
			case i >= 2000 && i%5 != 0 && resp.StatusCode == 200:
				forgedServed.Add(1)
			}
		}()
	}
	wg.Wait()
	// 300 paid streams abandoned after their first event, 50 at a time: each was settled
	// before its first byte, so hanging up gets nothing for free.
	var abandoned atomic.Int64
	settledBefore := len(fac.Settlements())
	for range 300 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h, err := buyer.SignV2(req, nil)
			if err != nil {
				return
			}
			hr, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(`{"stream":true,"messages":[]}`))
			hr.Header.Set(x402.HeaderPaymentSignature, h)
			for try := 0; try < 50; try++ {
				resp, err := client.Do(hr)
				if err != nil {
					return
				}
				if resp.StatusCode == http.StatusServiceUnavailable {
					resp.Body.Close()
					time.Sleep(20 * time.Millisecond)
					hr, _ = http.NewRequest(http.MethodPost, base+path, strings.NewReader(`{"stream":true,"messages":[]}`))
					hr.Header.Set(x402.HeaderPaymentSignature, h)
					continue
				}
				if resp.StatusCode == 200 {
					_, _ = bufio.NewReader(resp.Body).ReadString('\n')
					abandoned.Add(1)
				}
				resp.Body.Close() // hangs up mid-stream
				return
			}
		}()
	}
	wg.Wait()
	hwm := peakRSS(t, cmd.Process.Pid)
	if paid := len(fac.Settlements()) - settledBefore; abandoned.Load() != 300 || paid != 300 {
		t.Errorf("%d streams abandoned, %d settled; want 300 and 300", abandoned.Load(), paid)
	}
	t.Logf("flood: %d unpaid answered 402, %d/%d honest paid served, %d forged served, %d streams abandoned and paid, facilitator verify calls %d, peak RSS %.1f MiB",
		unpaid402.Load(), honestOK.Load(), honest.Load(), forgedServed.Load(), abandoned.Load(), fac.Verifies(), float64(hwm)/(1<<20))
	if unpaid402.Load() != 2000 || honestOK.Load() != honest.Load() || forgedServed.Load() != 0 {
		t.Errorf("unpaid 402s %d/2000, honest %d/%d, forged served %d", unpaid402.Load(), honestOK.Load(), honest.Load(), forgedServed.Load())
	}
	if fac.Verifies() != int(honest.Load()+abandoned.Load()) {
		t.Errorf("%d facilitator verifications for %d honest payments: forged ones reached it", fac.Verifies(), honest.Load()+abandoned.Load())
	}
	if hwm >= 128<<20 {
		t.Errorf("peak RSS %d bytes, over the chart's 128Mi limit", hwm)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func waitUp(t *testing.T, base string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the gateway did not start")
}

// peakRSS is the process's VmHWM (peak resident set), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
