package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"
)

// BenchmarkConvergence measures, on the harness's control plane and in one run:
//   - commit -> offer Ready: from `obol sell` returning to the offer's HelmRelease Ready, over 20
//     offers, with obol's trigger (what `sell --wait` does: requestedAt on the GitRepository and
//     the Kustomizations, then following the revisions) and without it (Flux polling the
//     GitRepository at its 1m interval; the sells are spread over a minute, so they land at
//     every phase of the poll). The polling figures are the baseline: ratio = poll/trigger.
//   - stack up with 100 offers: from an empty (wiped) control plane, `stack up` until every
//     offer's HelmRelease is Ready.
//
// Each iteration is the whole measurement (minutes): run it with -benchtime 1x (make e2e-bench).
func BenchmarkConvergence(b *testing.B) {
	h := setup(b)
	up := append([]string{"stack", "up", "--timeout", "5m", "--wait"}, h.kc()...)
	for b.Loop() {
		if err := os.RemoveAll(h.repo); err != nil {
			b.Fatal(err)
		}
		h.wipe(b)
		h.must(b, "stack", "init", "--stack", "bench", "--git-url", h.gitURL)
		h.must(b, up...)

		sell := func(name string) {
			h.must(b, "sell", "http", name, "--upstream", "api", "--namespace", "bench", "--port", "8080",
				"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
		}
		// With the trigger, one offer at a time.
		var trig []time.Duration
		for i := range 20 {
			name := fmt.Sprintf("trig-%02d", i)
			sell(name)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			err := h.cl.Trigger(ctx)
			if err == nil {
				err = h.cl.Wait(ctx, h.head(b), nil)
			}
			if err == nil {
				err = h.cl.WaitRelease(ctx, name, false, nil)
			}
			cancel()
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			trig = append(trig, time.Since(start))
		}

		// Without it: 20 sells, one every 3s, and Flux's own polling.
		var names []string
		sold := map[string]time.Time{}
		for i := range 20 {
			name := fmt.Sprintf("poll-%02d", i)
			sell(name)
			sold[name] = time.Now()
			names = append(names, name)
			time.Sleep(3 * time.Second)
		}
		ready := h.waitReleases(b, names, 5*time.Minute)
		var poll []time.Duration
		for _, n := range names {
			poll = append(poll, ready[n].Sub(sold[n]))
		}

		// stack up with 100 offers from a wiped control plane.
		if err := os.RemoveAll(h.repo); err != nil {
			b.Fatal(err)
		}
		h.must(b, "stack", "init", "--stack", "bench", "--git-url", h.gitURL)
		names = names[:0]
		for i := range 100 {
			name := fmt.Sprintf("api-%03d", i)
			h.must(b, "sell", "http", name, "--upstream", "api", "--namespace", fmt.Sprintf("team-%d", i%10), "--port", "8080",
				"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
			names = append(names, name)
		}
		h.wipe(b)
		start := time.Now()
		h.must(b, up...)
		h.waitReleases(b, names, 10*time.Minute)
		stackUp := time.Since(start)

		tp50, tp95 := percentiles(trig)
		pp50, pp95 := percentiles(poll)
		b.ReportMetric(tp50.Seconds(), "trigger-p50-s")
		b.ReportMetric(tp95.Seconds(), "trigger-p95-s")
		b.ReportMetric(pp50.Seconds(), "poll-p50-s")
		b.ReportMetric(pp95.Seconds(), "poll-p95-s")
		b.ReportMetric(pp50.Seconds()/tp50.Seconds(), "poll/trigger-p50")
		b.ReportMetric(stackUp.Seconds(), "stackup-100-offers-s")
		b.Logf("commit -> offer Ready over 20 offers: trigger p50 %.2fs p95 %.2fs; polling (1m) p50 %.2fs p95 %.2fs; stack up, 100 offers, empty cluster -> all Ready %.1fs",
			tp50.Seconds(), tp95.Seconds(), pp50.Seconds(), pp95.Seconds(), stackUp.Seconds())
	}
}

// percentiles: nearest-rank p50 and p95.
func percentiles(d []time.Duration) (p50, p95 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.50), rank(0.95)
}
