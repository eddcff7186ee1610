package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/obol/obol/internal/cluster"
)

// BenchmarkConvergence measures, on the harness's real node and in one run:
//   - commit -> offer Ready: from `obol sell` returning to the offer's HelmRelease Ready (its
//     gateway pod running and Ready: the releases use Helm's wait), over 20 offers, with obol's
//     trigger (what `sell --wait` does: requestedAt on the GitRepository and the Kustomizations,
//     then following the revisions) and without it (Flux polling the GitRepository at its 1m
//     interval; the sells are spread over a minute, so they land at every phase of the poll),
//     each polled offer timed to its Ready condition's lastTransitionTime (1 s resolution), so
//     an offer that became Ready while others were being sold is not stamped late. The polling
//     figures are the baseline: ratio = poll/trigger.
//   - stack up with 100 offers: from an empty (wiped) cluster, `stack up` until every offer's
//     HelmRelease is Ready and 100 gateway containers are Ready, split into bootstrap (the Flux
//     controllers' and git endpoint's pods started) and convergence; and the memory the node's
//     pods then use (the kubepods cgroup's RSS) and the kubelet's and containerd's RSS.
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
		api := startUpstream(b, h.nodeIP, 200)
		upstreams := func() {
			for i := range 10 {
				h.hostService(b, fmt.Sprintf("team-%d", i), "api", 8080, api.Port)
			}
			h.hostService(b, "bench", "api", 8080, api.Port)
		}
		upstreams()
		h.must(b, "stack", "init", "--stack", "bench")
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
		h.waitReleases(b, names, 5*time.Minute)
		var poll []time.Duration
		for _, n := range names {
			var hr helmv2.HelmRelease
			h.get(b, cluster.Namespace, n, &hr)
			c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
			// The transition is stamped in whole seconds: compare it with the sell's second.
			poll = append(poll, c.LastTransitionTime.Sub(sold[n].Truncate(time.Second)))
		}

		// stack up with 100 offers from a wiped control plane.
		if err := os.RemoveAll(h.repo); err != nil {
			b.Fatal(err)
		}
		h.must(b, "stack", "init", "--stack", "bench")
		names = names[:0]
		for i := range 100 {
			name := fmt.Sprintf("api-%03d", i)
			h.must(b, "sell", "http", name, "--upstream", "api", "--namespace", fmt.Sprintf("team-%d", i%10), "--port", "8080",
				"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
			names = append(names, name)
		}
		h.wipe(b)
		upstreams()
		start := time.Now()
		h.must(b, append([]string{"stack", "up", "--timeout", "5m"}, h.kc()...)...)
		bootstrap := time.Since(start)
		h.waitReleases(b, names, 10*time.Minute)
		stackUp := time.Since(start)
		if n := readyGateways(b, h); n != 100 {
			b.Fatalf("%d gateway containers Ready, want 100", n)
		}
		podsMiB, kubeletMiB, containerdMiB := nodeMemory(b, h)

		tp50, tp95 := percentiles(trig)
		pp50, pp95 := percentiles(poll)
		b.ReportMetric(tp50.Seconds(), "trigger-p50-s")
		b.ReportMetric(tp95.Seconds(), "trigger-p95-s")
		b.ReportMetric(pp50.Seconds(), "poll-p50-s")
		b.ReportMetric(pp95.Seconds(), "poll-p95-s")
		b.ReportMetric(pp50.Seconds()/tp50.Seconds(), "poll/trigger-p50")
		b.ReportMetric(stackUp.Seconds(), "stackup-100-offers-s")
		b.ReportMetric(bootstrap.Seconds(), "stackup-bootstrap-s")
		b.ReportMetric(podsMiB, "pods-100-offers-MiB")
		b.ReportMetric(kubeletMiB+containerdMiB, "kubelet+containerd-MiB")
		b.Logf("commit -> offer Ready over 20 offers: trigger p50 %.2fs p95 %.2fs; polling (1m) p50 %.2fs p95 %.2fs; stack up, 100 offers, empty cluster -> all Ready %.1fs (bootstrap %.1fs); pods %.0f MiB, kubelet %.0f MiB, containerd %.0f MiB",
			tp50.Seconds(), tp95.Seconds(), pp50.Seconds(), pp95.Seconds(), stackUp.Seconds(), bootstrap.Seconds(), podsMiB, kubeletMiB, containerdMiB)
	}
}

// readyGateways counts the Ready gateway containers on the node.
func readyGateways(b *testing.B, h *harness) int {
	var pods corev1.PodList
	if err := h.cl.Kube.List(context.Background(), &pods, client.MatchingLabels{"app.kubernetes.io/name": "obol-gateway"}); err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready && strings.HasPrefix(cs.ContainerID, "containerd://") {
				n++
			}
		}
	}
	return n
}

// nodeMemory: the RSS of every pod on the node (the kubepods memory cgroup, cgroup v1), and the
// kubelet's and containerd's own RSS, in MiB.
func nodeMemory(b *testing.B, h *harness) (pods, kubelet, containerd float64) {
	st, err := os.ReadFile("/sys/fs/cgroup/memory/kubepods/memory.stat")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "total_rss "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			pods = n / (1 << 20)
		}
	}
	pids, err := os.ReadFile(filepath.Join(h.state, "pids"))
	if err != nil {
		b.Fatal(err)
	}
	rss := func(pid string) float64 {
		s, _ := os.ReadFile("/proc/" + pid + "/status")
		for _, line := range strings.Split(string(s), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				return kb / 1024
			}
		}
		return 0
	}
	for _, line := range strings.Split(string(pids), "\n") {
		if pid, name, ok := strings.Cut(line, " "); ok {
			switch name {
			case "kubelet":
				kubelet = rss(pid)
			case "containerd":
				containerd = rss(pid)
			}
		}
	}
	return pods, kubelet, containerd
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
