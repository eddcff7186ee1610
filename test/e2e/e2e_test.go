// Package e2e runs obol against a real Kubernetes API server and the real Flux controllers.
//
// The tests skip unless OBOL_E2E=1: they need the control plane scripts/e2e/up.sh starts (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok, the Flux source, kustomize and
// helm controllers as host processes, and obol-git on loopback), whose binaries
// scripts/e2e/setup.sh builds in tens of CPU-minutes. `make test` must stay quick and hermetic,
// so it only compiles this package; `make e2e` builds, starts, runs and stops everything.
//
// The harness's state directory is $OBOL_E2E_STATE (default /tmp/obol-e2e); up.sh writes the
// kubeconfig, the git endpoint's URL and the directory it serves into $OBOL_E2E_STATE/env.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	obol "github.com/obol/obol"
	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/root"
)

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

type harness struct {
	kubeconfig string
	repo       string
	gitURL     string
}

func setup(t *testing.T) *harness {
	t.Helper()
	if os.Getenv("OBOL_E2E") != "1" {
		t.Skip("end-to-end test: needs the control plane of scripts/e2e/up.sh; run `make e2e` (OBOL_E2E=1)")
	}
	state := os.Getenv("OBOL_E2E_STATE")
	if state == "" {
		state = "/tmp/obol-e2e"
	}
	b, err := os.ReadFile(filepath.Join(state, "env"))
	if err != nil {
		t.Fatalf("the harness is not up (scripts/e2e/up.sh writes it): %v", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	h := &harness{kubeconfig: env["OBOL_E2E_KUBECONFIG"], gitURL: env["OBOL_E2E_GIT_URL"] + "/stack.git"}
	h.repo = filepath.Join(env["OBOL_E2E_REPOS"], "stack")
	if err := os.RemoveAll(h.repo); err != nil {
		t.Fatal(err)
	}
	return h
}

type result struct {
	out, err string
	code     int
}

// obol runs the command tree in-process, as main does.
func (h *harness) obol(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{
		IO:     &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Assets: obol.Assets(),
		Getenv: func(k string) string {
			switch k {
			case "OBOL_REPO":
				return h.repo
			case "OBOL_NO_K3D":
				return "1"
			case "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME":
				return "obol e2e"
			case "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL":
				return "e2e@example.com"
			}
			return ""
		},
		Now: time.Now,
	}
	cmd := root.NewCmdRoot(f)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil && !cmdutil.IsSilent(err) {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return result{out: out.String(), err: errOut.String(), code: cmdutil.ExitCode(err)}
}

func (h *harness) must(t *testing.T, args ...string) result {
	t.Helper()
	start := time.Now()
	r := h.obol(t, args...)
	t.Logf("obol %s (%.1fs)\n%s%s", strings.Join(args, " "), time.Since(start).Seconds(), r.out, r.err)
	if r.code != 0 {
		t.Fatalf("obol %s: exit %d", strings.Join(args, " "), r.code)
	}
	return r
}

func (h *harness) head(t *testing.T) string {
	t.Helper()
	b, err := exec.Command("git", "-C", h.repo, "rev-parse", "refs/heads/main").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// TestStackUp: init -> up (Ready at HEAD) -> up again changes nothing -> sell http -> trigger ->
// applied at the new commit -> delete what the stack applied -> up -> the offer is back.
func TestStackUp(t *testing.T) {
	h := setup(t)
	ctx := context.Background()
	kc := []string{"--kubeconfig", h.kubeconfig}
	up := append([]string{"stack", "up", "--skip-controllers-wait", "--timeout", "3m"}, kc...)

	h.must(t, "stack", "init", "--stack", "e2e", "--git-url", h.gitURL)
	start := time.Now()
	h.must(t, append(up, "--wait")...)
	t.Logf("TIMING stack up from an empty cluster to Ready at HEAD: %.1fs", time.Since(start).Seconds())

	cl, err := cluster.Connect(cluster.Config{Kubeconfig: h.kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	checkRootsAt(t, cl, h.head(t))

	// Running stack up again changes nothing.
	r := h.must(t, up...)
	if !strings.Contains(r.out, " 0 created, 0 configured,") {
		t.Errorf("second stack up changed objects: %s", r.out)
	}

	// A new commit reaches the cluster through the trigger, driven by revisions.
	h.must(t, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
	commit := h.head(t)
	start = time.Now()
	if err := cl.Trigger(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = cl.Wait(wctx, commit, func(p cluster.Progress) { t.Logf("  %s", p) })
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING commit -> applied by every root Kustomization: %.1fs", time.Since(start).Seconds())
	hrReady := waitHelmRelease(t, cl, "weather", 90*time.Second)
	t.Logf("TIMING commit -> HelmRelease weather Ready=%v: %.1fs", hrReady, time.Since(start).Seconds())
	checkGateway(t, cl, hrReady)
	r = h.must(t, append([]string{"stack", "status"}, kc...)...)
	if !strings.Contains(r.out, "weather") {
		t.Errorf("stack status does not list the offer's HelmRelease:\n%s", r.out)
	}

	// Delete what the stack applied for its applications (the Kustomization prunes the offer's
	// HelmRelease and values on deletion), then stack up: the repo brings it all back.
	ks := &kustomizev1.Kustomization{}
	key := types.NamespacedName{Namespace: cluster.Namespace, Name: "applications"}
	if err := cl.Kube.Get(ctx, key, ks); err != nil {
		t.Fatal(err)
	}
	if err := cl.Kube.Delete(ctx, ks); err != nil {
		t.Fatal(err)
	}
	gone(t, cl, key, &kustomizev1.Kustomization{})
	gone(t, cl, types.NamespacedName{Namespace: cluster.Namespace, Name: "weather"}, &helmv2.HelmRelease{})
	start = time.Now()
	h.must(t, append(up, "--wait")...)
	t.Logf("TIMING stack up after the applications were deleted -> Ready at HEAD: %.1fs", time.Since(start).Seconds())
	hrReady = waitHelmRelease(t, cl, "weather", 90*time.Second)
	t.Logf("TIMING HelmRelease weather back, Ready=%v: %.1fs", hrReady, time.Since(start).Seconds())
	checkGateway(t, cl, hrReady)
	checkRootsAt(t, cl, commit)

	// stack down suspends; stack up resumes; neither touches the repo.
	h.must(t, append([]string{"stack", "down"}, kc...)...)
	var susp kustomizev1.Kustomization
	if err := cl.Kube.Get(ctx, key, &susp); err != nil || !susp.Spec.Suspend {
		t.Errorf("after stack down: applications suspend=%v, %v", susp.Spec.Suspend, err)
	}
	if h.head(t) != commit {
		t.Error("stack down moved the branch")
	}
	h.must(t, append(up, "--wait")...)
	if err := cl.Kube.Get(ctx, key, &susp); err != nil || susp.Spec.Suspend {
		t.Errorf("after stack up: applications suspend=%v, %v", susp.Spec.Suspend, err)
	}

	// stack purge removes what the stack applied and Flux; stack up brings it all back from
	// the repo, with no resume code.
	start = time.Now()
	h.must(t, append([]string{"stack", "purge", "--yes", "--timeout", "2m"}, kc...)...)
	t.Logf("TIMING stack purge: %.1fs", time.Since(start).Seconds())
	gone(t, cl, types.NamespacedName{Namespace: "apps", Name: "weather-gateway"}, &appsv1.Deployment{})
	if h.head(t) != commit {
		t.Error("stack purge moved the branch")
	}
	start = time.Now()
	h.must(t, append(up, "--wait")...)
	hrReady = waitHelmRelease(t, cl, "weather", 90*time.Second)
	t.Logf("TIMING stack up after purge -> offer Ready=%v: %.1fs", hrReady, time.Since(start).Seconds())
	checkGateway(t, cl, hrReady)
	checkRootsAt(t, cl, commit)
}

// checkGateway: the offer's HelmRelease installed the gateway, and its Deployment is Available
// on the kwok node (kwok runs no containers: it marks the Pods Running and Ready).
func checkGateway(t *testing.T, cl *cluster.Client, hrReady bool) {
	t.Helper()
	if !hrReady {
		t.Error("HelmRelease weather is not Ready")
		return
	}
	var d appsv1.Deployment
	if err := cl.Kube.Get(context.Background(), types.NamespacedName{Namespace: "apps", Name: "weather-gateway"}, &d); err != nil {
		t.Fatalf("the gateway's Deployment: %v", err)
	}
	if d.Status.AvailableReplicas < 1 {
		t.Errorf("Deployment apps/weather-gateway: %d available replicas", d.Status.AvailableReplicas)
	}
}

func checkRootsAt(t *testing.T, cl *cluster.Client, commit string) {
	t.Helper()
	rows, err := cl.Status(context.Background(), commit)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		t.Logf("status: %s %s fetched=%s applied=%s ready=%s %s", r.Kind, r.Name, cluster.ShortRevision(r.Fetched), cluster.ShortRevision(r.Applied), r.Ready, r.Reason)
		if r.Kind != kustomizev1.KustomizationKind {
			continue
		}
		if r.Ready != "True" || !cluster.AtCommit(r.Applied, commit) {
			t.Errorf("Kustomization %s: Ready=%s applied %s, want True at %s (%s: %s)", r.Name, r.Ready, r.Applied, commit, r.Reason, r.Message)
		}
	}
}

// waitHelmRelease polls the HelmRelease until it exists and is Ready, and reports whether it
// got there (on kwok the gateway's pods run without an image, so Ready depends on the chart).
func waitHelmRelease(t *testing.T, cl *cluster.Client, name string, timeout time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var hr helmv2.HelmRelease
	for {
		err := cl.Kube.Get(ctx, types.NamespacedName{Namespace: cluster.Namespace, Name: name}, &hr)
		if err == nil {
			c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
			if c != nil && c.Status == "True" {
				return true
			}
			if c != nil && c.Status == "False" && (c.Reason == "InstallFailed" || c.Reason == "UpgradeFailed") {
				t.Logf("HelmRelease %s: %s: %s", name, c.Reason, c.Message)
				return false
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				t.Errorf("HelmRelease %s: %v", name, err)
				return false
			}
			c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
			if c == nil {
				t.Logf("HelmRelease %s exists, no Ready condition after %s", name, timeout)
			} else {
				t.Logf("HelmRelease %s not Ready after %s: %s: %s", name, timeout, c.Reason, c.Message)
			}
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func gone(t *testing.T, cl *cluster.Client, key types.NamespacedName, obj client.Object) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		err := cl.Kube.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%T %s is still there: %v", obj, key, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
