// Package e2e runs obol against a real Kubernetes API server and the real Flux controllers.
//
// The tests skip unless OBOL_E2E=1: they need the control plane scripts/e2e/up.sh starts (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok, the Flux source, kustomize and
// helm controllers as host processes, and obol-git on loopback), whose binaries
// scripts/e2e/setup.sh builds once. `make test` only compiles this package; `make e2e` builds,
// starts, runs and stops everything.
//
// The harness's state directory is $OBOL_E2E_STATE (default /tmp/obol-e2e); up.sh writes the
// kubeconfig, the git endpoint's URL and the directory it serves into $OBOL_E2E_STATE/env.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/x402/x402test"
)

// TestEndToEnd is the loop: init -> up (Ready; a second up changes nothing) -> sell
// inference and http with --wait -> the gateways are in the API server with the offers' values
// and their pods run on the simulated node -> the gateway binary, on loopback with the config
// the API server holds, answers 402 and serves a paid request -> update -> delete prunes ->
// 20 offers, the cluster wiped, stack up: all back and Ready -> status agrees with the repo ->
// down and purge leave the repo alone, and up brings everything back.
func TestEndToEnd(t *testing.T) {
	h := setup(t)
	h.wipe(t) // an empty cluster, whatever ran before
	up := append([]string{"stack", "up", "--timeout", "3m"}, h.kc()...)

	h.must(t, "stack", "init", "--stack", "e2e", "--git-url", h.gitURL)
	start := time.Now()
	h.must(t, append(up, "--wait")...)
	t.Logf("TIMING stack up from an empty cluster to Ready at HEAD: %.1fs", time.Since(start).Seconds())
	checkRootsAt(t, h, h.head(t))
	if r := h.must(t, up...); !strings.Contains(r.out, " 0 created, 0 configured,") {
		t.Errorf("a second stack up changed objects: %s", r.out)
	}

	// Two offers, each committed and waited for until its gateway is Ready.
	model := startFakeModel(t)
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{})
	wait := append([]string{"--wait", "--timeout", "3m"}, h.kc()...)
	start = time.Now()
	r := h.must(t, append([]string{"sell", "inference", "qwen", "--model", "qwen3:8b", "--upstream-url", model.URL,
		"--facilitator", fac.URL(), "--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"}, wait...)...)
	t.Logf("TIMING sell inference --wait: %.1fs", time.Since(start).Seconds())
	if !strings.Contains(r.out, "HelmRelease qwen Ready at "+h.head(t)[:12]) {
		t.Errorf("sell --wait did not report the release Ready at the new head:\n%s", r.out)
	}
	if !strings.Contains(r.err, "HelmRelease qwen: Ready=True") {
		t.Errorf("sell --wait showed no progress:\n%s", r.err)
	}
	h.must(t, append([]string{"sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"}, wait...)...)
	qwen := checkGateway(t, h, "qwen", "llm", "1000")
	checkGateway(t, h, "weather", "apps", "1000")
	if qwen.Upstream != model.URL || qwen.Facilitator != fac.URL() {
		t.Errorf("qwen's config in the API server: upstream %q facilitator %q", qwen.Upstream, qwen.Facilitator)
	}

	// The gateway binary, on loopback, with the config the API server holds for qwen.
	servePaid(t, h, "qwen", "llm", model, fac)

	// update changes what runs; delete prunes it.
	h.must(t, append([]string{"sell", "update", "qwen", "--per-request", "0.002"}, wait...)...)
	checkGateway(t, h, "qwen", "llm", "2000")
	h.must(t, append([]string{"sell", "delete", "weather"}, wait...)...)
	h.gone(t, cluster.Namespace, "weather", &helmv2.HelmRelease{})
	h.gone(t, "apps", "weather-gateway", &appsv1.Deployment{})
	h.gone(t, "apps", "weather-gateway", &corev1.Service{})
	h.gone(t, "apps", "weather-gateway", &corev1.ConfigMap{})
	h.gone(t, cluster.Namespace, "weather-gateway-values", &corev1.ConfigMap{})

	// 20 offers, then the whole cluster state thrown away: stack up brings them all back.
	names := []string{"qwen"}
	for i := range 20 {
		name := fmt.Sprintf("api-%02d", i)
		names = append(names, name)
		h.must(t, "sell", "http", name, "--upstream", "api", "--namespace", fmt.Sprintf("team-%d", i%4), "--port", "8080",
			"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
	}
	h.must(t, append([]string{"sell", "update", "api-19", "--per-request", "0.003"}, wait...)...)
	h.waitReleases(t, names, 3*time.Minute)
	head := h.head(t)
	unreadableSourceNeverPrunes(t, h, names)
	h.wipe(t)
	if r := h.obol(append([]string{"stack", "status"}, h.kc()...)...); !strings.Contains(r.out, "NotBootstrapped") {
		t.Fatalf("after the wipe the cluster still has the stack:\n%s%s", r.out, r.err)
	}
	start = time.Now()
	h.must(t, append(up, "--wait")...)
	h.waitReleases(t, names, 5*time.Minute)
	t.Logf("TIMING wiped cluster -> stack up -> all %d offers Ready: %.1fs", len(names), time.Since(start).Seconds())
	checkGateway(t, h, "qwen", "llm", "2000")
	checkGateway(t, h, "api-19", "team-3", "3000")
	checkStatusAgrees(t, h, head, names)

	// down suspends and purge removes; neither touches the repo; up brings it all back.
	h.must(t, append([]string{"stack", "down"}, h.kc()...)...)
	var ks kustomizev1.Kustomization
	h.get(t, cluster.Namespace, "applications", &ks)
	if !ks.Spec.Suspend {
		t.Error("after stack down: applications is not suspended")
	}
	start = time.Now()
	h.must(t, append([]string{"stack", "purge", "--yes", "--timeout", "3m"}, h.kc()...)...)
	t.Logf("TIMING stack purge with %d offers: %.1fs", len(names), time.Since(start).Seconds())
	h.gone(t, "llm", "qwen-gateway", &appsv1.Deployment{})
	if h.head(t) != head {
		t.Error("stack down/purge moved the branch")
	}
	if out, err := exec.Command("git", "-C", h.repo, "status", "--porcelain").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("the repo's work tree changed: %s %v", out, err)
	}
	start = time.Now()
	h.must(t, append(up, "--wait")...)
	h.waitReleases(t, names, 5*time.Minute)
	t.Logf("TIMING stack up after purge -> all %d offers Ready: %.1fs", len(names), time.Since(start).Seconds())
	checkStatusAgrees(t, h, head, names)
	if out, err := exec.Command("git", "-C", h.repo, "fsck", "--strict").CombinedOutput(); err != nil {
		t.Errorf("git fsck: %v\n%s", err, out)
	}
}

// checkGateway: the offer's gateway Deployment, Service and config are in the API server with
// the offer's values, the Deployment is Available and its pods Running on the kwok node. It
// returns the config the API server holds.
func checkGateway(t *testing.T, h *harness, name, ns, amount string) *gatewayconfig.Config {
	t.Helper()
	ctx := context.Background()
	full := name + "-gateway"
	var cm corev1.ConfigMap
	h.get(t, ns, full, &cm)
	cfg, err := gatewayconfig.Load([]byte(cm.Data["config.json"]))
	if err != nil {
		t.Fatalf("ConfigMap %s/%s config.json: %v", ns, full, err)
	}
	if cfg.Offer != name || cfg.Payment.PayTo != payTo || cfg.Payment.Amount != amount || cfg.Payment.Network != "eip155:84532" {
		t.Errorf("%s's config in the API server: offer %q payTo %q amount %q network %q, want %s %s %s eip155:84532",
			name, cfg.Offer, cfg.Payment.PayTo, cfg.Payment.Amount, cfg.Payment.Network, name, payTo, amount)
	}
	// Byte for byte what obol derives from the repo's head.
	if r := h.obol("gateway", "config", name); r.code != 0 || strings.TrimSpace(r.out) != strings.TrimSpace(cm.Data["config.json"]) {
		t.Errorf("obol gateway config %s (exit %d) differs from the API server's:\n%s\n%s", name, r.code, r.out, cm.Data["config.json"])
	}
	var svc corev1.Service
	h.get(t, ns, full, &svc)
	var d appsv1.Deployment
	h.get(t, ns, full, &d)
	if d.Status.AvailableReplicas < 1 || d.Status.UpdatedReplicas < 1 {
		t.Errorf("Deployment %s/%s: %d available, %d updated", ns, full, d.Status.AvailableReplicas, d.Status.UpdatedReplicas)
	}
	var pods corev1.PodList
	if err := h.cl.Kube.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName == "kwok-node-0" && p.DeletionTimestamp == nil {
			running++
		}
	}
	if running < 1 {
		t.Errorf("no Running pod of %s/%s on kwok-node-0 (%d pods)", ns, full, len(pods.Items))
	}
	return cfg
}

// servePaid starts the real gateway binary on loopback with the config.json the API server
// holds for the offer: an unpaid request gets 402, a paid one reaches the model and is settled.
func servePaid(t *testing.T, h *harness, name, ns string, model *fakeModel, fac *x402test.Facilitator) {
	t.Helper()
	var cm corev1.ConfigMap
	h.get(t, ns, name+"-gateway", &cm)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cm.Data["config.json"]), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, h.buildGateway(t), "--config", path, "--listen", addr)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	}()
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	url := base + "/services/" + name + "/v1/chat/completions"
	body := `{"model":"qwen3:8b","messages":[{"role":"user","content":"hi"}]}`
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired || model.Calls() != 0 {
		t.Fatalf("unpaid request: %d, model called %d times; want 402 and none", resp.StatusCode, model.Calls())
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, receipt, err := x402test.NewBuyer(t, 2).Do(req)
	if err != nil {
		t.Fatalf("paid request: %v", err)
	}
	var answer struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || len(answer.Choices) != 1 || answer.Choices[0].Message.Content != "paid answer" {
		t.Fatalf("paid request: %d %+v %v", resp.StatusCode, answer, err)
	}
	if receipt == nil || receipt.Transaction == "" || model.Calls() != 1 {
		t.Fatalf("paid request: receipt %+v, model called %d times", receipt, model.Calls())
	}
	s := fac.Settlements()
	if len(s) != 1 || s[0].To != payTo || s[0].Value != "1000" || s[0].Network != "eip155:84532" {
		t.Fatalf("settlements: %+v", s)
	}
	t.Logf("gateway on %s with the API server's config: 402 unpaid, 200 paid, settled %s to %s (tx %s)", addr, s[0].Value, s[0].To, receipt.Transaction)
}

// unreadableSourceNeverPrunes takes the stack repo away from the git endpoint (it answers 404)
// and makes Flux fetch and reconcile: the fetch fails, the Kustomizations reconcile what they
// last fetched, and every offer stays. With the repo back, stack up converges again.
func unreadableSourceNeverPrunes(t *testing.T, h *harness, offers []string) {
	t.Helper()
	ctx := context.Background()
	away := h.repo + ".away"
	if err := os.Rename(h.repo, away); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.Rename(away, h.repo); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	if err := h.cl.Trigger(ctx); err != nil {
		t.Fatal(err)
	}
	var repo sourcev1.GitRepository
	var ks kustomizev1.Kustomization
	h.get(t, cluster.Namespace, cluster.Source, &repo)
	repoToken := repo.Annotations[meta.ReconcileRequestAnnotation]
	h.get(t, cluster.Namespace, "applications", &ks)
	ksToken := ks.Annotations[meta.ReconcileRequestAnnotation]
	deadline := time.Now().Add(2 * time.Minute)
	for {
		h.get(t, cluster.Namespace, cluster.Source, &repo)
		h.get(t, cluster.Namespace, "applications", &ks)
		c := apimeta.FindStatusCondition(repo.Status.Conditions, meta.ReadyCondition)
		if c != nil && c.Status == "False" && repo.Status.LastHandledReconcileAt == repoToken && ks.Status.LastHandledReconcileAt == ksToken {
			t.Logf("source unreadable: GitRepository %s: %s; applications reconciled, still at %s", c.Reason, c.Message, cluster.ShortRevision(ks.Status.LastAppliedRevision))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unreadable source was not reconciled: GitRepository %+v (handled %q, want %q), applications handled %q want %q",
				c, repo.Status.LastHandledReconcileAt, repoToken, ks.Status.LastHandledReconcileAt, ksToken)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var hrs helmv2.HelmReleaseList
	if err := h.cl.Kube.List(ctx, &hrs, client.InNamespace(cluster.Namespace)); err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, hr := range hrs.Items {
		if hr.DeletionTimestamp == nil {
			left[hr.Name] = true
		}
	}
	for _, o := range offers {
		if !left[o] {
			t.Errorf("offer %s was pruned while the source could not be read", o)
		}
	}
	restore()
	h.must(t, append([]string{"stack", "up", "--wait", "--timeout", "2m"}, h.kc()...)...)
}

func checkRootsAt(t *testing.T, h *harness, commit string) {
	t.Helper()
	rows, err := h.cl.Status(context.Background(), commit, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Kind != kustomizev1.KustomizationKind {
			continue
		}
		if r.Ready != "True" || !cluster.AtCommit(r.Applied, commit) {
			t.Errorf("Kustomization %s: Ready=%s applied %s, want True at %s (%s: %s)", r.Name, r.Ready, r.Applied, commit, r.Reason, r.Message)
		}
	}
}

// checkStatusAgrees: `obol stack status -o json` has the repo's head fetched and applied by
// every root Kustomization, and exactly the repo's offers as Ready HelmReleases.
func checkStatusAgrees(t *testing.T, h *harness, head string, offers []string) {
	t.Helper()
	r := h.must(t, append([]string{"stack", "status", "-o", "json"}, h.kc()...)...)
	var rows []cluster.Row
	if err := json.Unmarshal([]byte(r.out), &rows); err != nil {
		t.Fatalf("stack status -o json: %v\n%s", err, r.out)
	}
	want := map[string]bool{}
	for _, o := range offers {
		want[o] = true
	}
	seen := map[string]bool{}
	for _, row := range rows {
		switch row.Kind {
		case "GitRepository":
			if !cluster.AtCommit(row.Fetched, head) || row.Committed != head {
				t.Errorf("status: GitRepository committed %s fetched %s, want %s", row.Committed, row.Fetched, head)
			}
		case kustomizev1.KustomizationKind:
			if !cluster.AtCommit(row.Applied, head) || row.Ready != "True" {
				t.Errorf("status: Kustomization %s applied %s Ready=%s, want %s True", row.Name, row.Applied, row.Ready, head)
			}
		case helmv2.HelmReleaseKind:
			seen[row.Name] = true
			if !want[row.Name] {
				t.Errorf("status: HelmRelease %s is not an offer in the repo", row.Name)
			} else if row.Ready != "True" || row.Missing || !cluster.AtCommit(row.Applied, head) || row.Committed != head {
				t.Errorf("status: offer %s committed %s applied %s Ready=%s %s, want %s True", row.Name, row.Committed, row.Applied, row.Ready, row.Reason, head)
			}
		}
	}
	for o := range want {
		if !seen[o] {
			t.Errorf("status: no HelmRelease for the offer %s", o)
		}
	}
}
