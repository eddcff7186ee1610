// Package e2e runs obol against a real Kubernetes cluster on this machine: a real API server,
// and a real node (kubelet, containerd, runc, CNI, kube-proxy, CoreDNS) on which the Flux
// controllers, the git endpoint and every offer's gateway run as pods, from images built here.
//
// The tests skip unless OBOL_E2E=1: they need the cluster scripts/e2e/up.sh starts, whose
// binaries scripts/e2e/setup.sh builds once. `make test` only compiles this package; `make e2e`
// builds, starts, runs and stops everything.
//
// The harness's state directory is $OBOL_E2E_STATE (default /tmp/obol-e2e); up.sh writes the
// kubeconfig, the node's name and address and the directory the git endpoint serves into
// $OBOL_E2E_STATE/env. Test servers (upstreams, the facilitator, git remotes) listen on the
// node's address, the one address of the host the pods can reach.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
	"github.com/obol/obol/internal/x402/x402test"
)

// TestEndToEnd is the loop on a real node: init -> up (the Flux controllers and the git
// endpoint start as pods; Ready; a second up changes nothing) -> sell inference and http with
// --wait -> the gateway pods run from our image and pass their probes -> a buyer on the host
// pays through the gateway's Service and the gateway reaches the model by cluster DNS -> update
// -> delete prunes the pod -> --wait fails fast, with the reason, for a gateway that cannot
// become Ready and for a commit the Kustomization cannot build -> 20 offers, the source made
// unreadable (nothing pruned), the cluster wiped, stack up: all back with containers running ->
// status agrees with the repo -> down and purge leave the repo alone, and up brings it all back.
func TestEndToEnd(t *testing.T) {
	h := setup(t)
	h.wipe(t) // an empty cluster, whatever ran before
	up := append([]string{"stack", "up", "--timeout", "3m"}, h.kc()...)

	// The default git URL: the in-cluster endpoint serving the repo from the node, as on k3d.
	// The node is this host, so the edge's node port is the port a buyer here uses, as the k3d
	// host port is on a laptop.
	h.must(t, "stack", "init", "--stack", "e2e", "--public-url", edgeURL)
	foreignFluxRefused(t, h, up)
	start := time.Now()
	h.must(t, append(up, "--wait")...)
	t.Logf("TIMING stack up --wait (after stack up --adopt bootstrapped) to Ready at HEAD: %.1fs", time.Since(start).Seconds())
	checkRootsAt(t, h, h.head(t))
	checkGitEndpoint(t, h)
	checkEdge(t, h)
	checkPodsRun(t, h, 5)
	if r := h.must(t, up...); !strings.Contains(r.out, " 0 created, 0 configured,") {
		t.Errorf("a second stack up changed objects: %s", r.out)
	}

	// The upstreams are real servers on the node's address behind cluster DNS names.
	model := startUpstream(t, h.nodeIP, http.StatusOK)
	// The facilitator (it checks the buyer's signatures) is on the node's address too, behind
	// a cluster-local name: an offer's facilitator must be https unless it is cluster-local.
	fac := x402test.NewFacilitator(t, x402test.FacilitatorOptions{Host: h.nodeIP})
	facURL, err := url.Parse(fac.URL())
	if err != nil {
		t.Fatal(err)
	}
	facPort, _ := strconv.Atoi(facURL.Port())
	upstreams := func() {
		h.hostService(t, "e2e-upstreams", "model", 11434, model.Port)
		h.hostService(t, "e2e-upstreams", "facilitator", 80, facPort)
		h.hostService(t, "apps", "weather-api", 8080, model.Port)
		for i := range 4 {
			h.hostService(t, fmt.Sprintf("team-%d", i), "api", 8080, model.Port)
		}
	}
	upstreams()
	modelURL := "http://model.e2e-upstreams.svc.cluster.local:11434"
	facilitator := "http://facilitator.e2e-upstreams.svc.cluster.local"
	wait := append([]string{"--wait", "--timeout", "3m"}, h.kc()...)
	start = time.Now()
	r := h.must(t, append([]string{"sell", "inference", "qwen", "--model", "qwen3:8b", "--upstream-url", modelURL,
		"--facilitator", facilitator, "--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"}, wait...)...)
	t.Logf("TIMING sell inference --wait: %.1fs", time.Since(start).Seconds())
	if !strings.Contains(r.out, "HelmRelease qwen Ready at "+h.head(t)[:12]) {
		t.Errorf("sell --wait did not report the release Ready at the new head:\n%s", r.out)
	}
	if !strings.Contains(r.err, "HelmRelease qwen: Ready=True") || !strings.Contains(r.err, "HTTPRoute llm/qwen-gateway: Accepted") {
		t.Errorf("sell --wait showed no progress up to the route's acceptance:\n%s", r.err)
	}
	if !strings.Contains(r.out, "URL: "+edgeURL+"/services/qwen\n") {
		t.Errorf("sell printed no URL for the offer:\n%s", r.out)
	}
	r = h.must(t, append([]string{"sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--facilitator", facilitator, "--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"}, wait...)...)
	qwen := checkGateway(t, h, "qwen", "llm", "1000")
	checkGateway(t, h, "weather", "apps", "1000")
	weatherURL := edgeURL + "/services/weather"
	if !strings.Contains(r.out, "URL: "+weatherURL+"\n") {
		t.Errorf("sell printed no URL for the offer:\n%s", r.out)
	}
	if qwen.Upstream != modelURL || qwen.Facilitator != facilitator {
		t.Errorf("qwen's config in the API server: upstream %q facilitator %q", qwen.Upstream, qwen.Facilitator)
	}
	checkPodsRun(t, h, 7)

	// A buyer on the host pays at the URL sell printed: the edge (Traefik) routes to the gateway
	// pod, which settles and then asks the upstream, by its cluster DNS name. Both offer kinds,
	// both protocol generations.
	servePaid(t, edgeURL+"/services/qwen/v1/chat/completions", 2, model, fac, 1)
	servePaid(t, weatherURL+"/forecast?city=Paris", 1, model, fac, 2)
	payPerTokenAndOBOL(t, h, wait, edgeURL+"/services/qwen/v1/chat/completions", weatherURL+"/forecast", fac)
	routeStatus(t, h, wait)
	conflictRefused(t, h)

	// update changes what runs (a new pod); delete prunes it.
	oldPods := gatewayPods(t, h, "weather", "apps")
	h.must(t, append([]string{"sell", "update", "qwen", "--per-request", "0.002"}, wait...)...)
	checkGateway(t, h, "qwen", "llm", "2000")
	h.must(t, append([]string{"sell", "delete", "weather"}, wait...)...)
	h.gone(t, cluster.Namespace, "weather", &helmv2.HelmRelease{})
	h.gone(t, "apps", "weather-gateway", httpRoute())
	edgeAnswers(t, weatherURL+"/forecast", http.StatusNotFound)
	h.gone(t, "apps", "weather-gateway", &appsv1.Deployment{})
	h.gone(t, "apps", "weather-gateway", &corev1.Service{})
	h.gone(t, "apps", "weather-gateway", &corev1.ConfigMap{})
	h.gone(t, cluster.Namespace, "weather-gateway-values", &corev1.ConfigMap{})
	for _, p := range oldPods {
		h.gone(t, "apps", p.Name, &corev1.Pod{})
		h.containerGone(t, p)
	}

	waitFailsFast(t, h, wait)

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
	strayManifestsRefused(t, h, wait)
	head := h.head(t)
	unreadableSourceNeverPrunes(t, h, names)
	before := checkPodsRun(t, h, 5+len(names))
	h.wipe(t)
	if r := h.obol(append([]string{"stack", "status"}, h.kc()...)...); !strings.Contains(r.out, "NotBootstrapped") {
		t.Fatalf("after the wipe the cluster still has the stack:\n%s%s", r.out, r.err)
	}
	for _, p := range before {
		h.containerGone(t, p)
	}
	upstreams()
	start = time.Now()
	h.must(t, append(up, "--wait")...)
	h.waitReleases(t, names, 5*time.Minute)
	t.Logf("TIMING wiped cluster -> stack up -> all %d offers Ready: %.1fs", len(names), time.Since(start).Seconds())
	checkGateway(t, h, "qwen", "llm", "2000")
	checkGateway(t, h, "api-19", "team-3", "3000")
	checkPodsRun(t, h, 5+len(names))
	checkStatusAgrees(t, h, head, names)

	// down suspends and purge removes; neither touches the repo; up brings it all back.
	h.must(t, append([]string{"stack", "down"}, h.kc()...)...)
	var ks kustomizev1.Kustomization
	h.get(t, cluster.Namespace, "applications", &ks)
	if !ks.Spec.Suspend {
		t.Error("after stack down: applications is not suspended")
	}
	qwenPods := gatewayPods(t, h, "qwen", "llm")
	start = time.Now()
	h.must(t, append([]string{"stack", "purge", "--yes", "--timeout", "3m"}, h.kc()...)...)
	t.Logf("TIMING stack purge with %d offers: %.1fs", len(names), time.Since(start).Seconds())
	h.gone(t, "llm", "qwen-gateway", &appsv1.Deployment{})
	for _, p := range qwenPods {
		h.gone(t, "llm", p.Name, &corev1.Pod{})
		h.containerGone(t, p)
	}
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
	checkPodsRun(t, h, 5+len(names))
	checkStatusAgrees(t, h, head, names)
	if out, err := exec.Command("git", "-C", h.repo, "fsck", "--strict").CombinedOutput(); err != nil {
		t.Errorf("git fsck: %v\n%s", err, out)
	}
}

// checkGitEndpoint: the GitRepository reads the in-cluster endpoint (obol-git from our image,
// on the control-plane node, serving the repo from the hostPath) and its artifact is the head.
func checkGitEndpoint(t *testing.T, h *harness) {
	t.Helper()
	var repo sourcev1.GitRepository
	h.get(t, cluster.Namespace, cluster.Source, &repo)
	if repo.Spec.URL != settings.DefaultGitURL {
		t.Errorf("GitRepository URL %s, want %s", repo.Spec.URL, settings.DefaultGitURL)
	}
	if repo.Status.Artifact == nil || !cluster.AtCommit(repo.Status.Artifact.Revision, h.head(t)) {
		t.Errorf("source-controller's artifact %+v, want the head %s fetched from obol-git", repo.Status.Artifact, h.head(t))
	}
	var d appsv1.Deployment
	h.get(t, render.GitEndpointNamespace, render.GitEndpointName, &d)
	if img := d.Spec.Template.Spec.Containers[0].Image; img != render.GitEndpointImage {
		t.Errorf("obol-git image %s, want %s", img, render.GitEndpointImage)
	}
	if d.Status.AvailableReplicas != 1 {
		t.Errorf("obol-git: %d available", d.Status.AvailableReplicas)
	}
}

// checkPodsRun: every pod in the cluster is on the node, Running, and every container in it
// started in containerd (a containerd:// ID in the pod status that crictl on the node lists as
// running) and is Ready. want is how many pods the stack should have. It returns the pods.
func checkPodsRun(t *testing.T, h *harness, want int) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := h.cl.Kube.List(context.Background(), &pods); err != nil {
		t.Fatal(err)
	}
	running := h.runningContainers(t)
	var live []corev1.Pod
	var table strings.Builder
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		live = append(live, p)
		if p.Spec.NodeName != h.node || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s/%s: node %q phase %s, want Running on %s", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase, h.node)
		}
		if len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
			t.Errorf("pod %s/%s: %d container statuses for %d containers", p.Namespace, p.Name, len(p.Status.ContainerStatuses), len(p.Spec.Containers))
		}
		for _, cs := range p.Status.ContainerStatuses {
			id, ok := strings.CutPrefix(cs.ContainerID, "containerd://")
			if !ok || len(id) < 13 || cs.State.Running == nil || cs.Started == nil || !*cs.Started || !cs.Ready {
				t.Errorf("pod %s/%s container %s: id %q running %v ready %v", p.Namespace, p.Name, cs.Name, cs.ContainerID, cs.State.Running != nil, cs.Ready)
				continue
			}
			if !running[id] {
				t.Errorf("pod %s/%s container %s: containerd has no running container %s", p.Namespace, p.Name, cs.Name, id)
			}
			fmt.Fprintf(&table, "  %-16s %-44s %-8s %s %s\n", p.Namespace, p.Name, cs.Name, id[:13], cs.Image)
		}
	}
	if len(live) != want {
		t.Errorf("%d pods in the cluster, want %d", len(live), want)
	}
	t.Logf("%d pods running on %s, %d containers running in containerd:\n%s", len(live), h.node, len(running), table.String())
	return live
}

// runningContainers are the IDs of the containers crictl lists as running on the node.
func (h *harness) runningContainers(t testing.TB) map[string]bool {
	t.Helper()
	out, err := exec.Command(h.crictl[0], append(h.crictl[1:], "ps", "-o", "json", "--state", "running")...).Output()
	if err != nil {
		t.Fatalf("crictl ps: %v", err)
	}
	var ps struct {
		Containers []struct{ ID string } `json:"containers"`
	}
	if err := json.Unmarshal(out, &ps); err != nil {
		t.Fatalf("crictl ps: %v", err)
	}
	ids := map[string]bool{}
	for _, c := range ps.Containers {
		ids[c.ID] = true
	}
	return ids
}

// containerGone waits until none of the pod's containers is running in containerd any more.
func (h *harness) containerGone(t *testing.T, p corev1.Pod) {
	t.Helper()
	h.waitFor(t, "the containers of pod "+p.Namespace+"/"+p.Name+" to stop", func() bool {
		running := h.runningContainers(t)
		for _, cs := range p.Status.ContainerStatuses {
			if running[strings.TrimPrefix(cs.ContainerID, "containerd://")] {
				return false
			}
		}
		return true
	})
}

// gatewayPods are the pods of an offer's gateway.
func gatewayPods(t *testing.T, h *harness, name, ns string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := h.cl.Kube.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": name}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) == 0 {
		t.Fatalf("no pods of %s/%s", ns, name)
	}
	return pods.Items
}

// checkGateway: the offer's gateway Deployment, Service and config are in the API server with
// the offer's values, and the Deployment's pod runs our image with the chart's security context
// and passes its probes. It returns the config the API server holds.
func checkGateway(t *testing.T, h *harness, name, ns, amount string) *gatewayconfig.Config {
	t.Helper()
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
	ready := 0
	for _, p := range gatewayPods(t, h, name, ns) {
		if p.DeletionTimestamp != nil {
			continue
		}
		sc, csc := p.Spec.SecurityContext, p.Spec.Containers[0].SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			t.Errorf("pod %s/%s runs without the chart's security context", ns, p.Name)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready && strings.HasPrefix(cs.ContainerID, "containerd://") && cs.Image == "ghcr.io/obol/obol-gateway:0.1.0" {
				ready++
			}
		}
	}
	if ready < 1 {
		t.Errorf("no Ready gateway container of %s/%s from ghcr.io/obol/obol-gateway:0.1.0", ns, full)
	}
	return cfg
}

// waitFailsFast: --wait ends with the reason, long before its timeout, when an offer's gateway
// cannot become Ready (its upstream's health check answers 503, so the readiness probe fails)
// and when the Kustomization cannot build the commit; stack status shows the same reason.
func waitFailsFast(t *testing.T, h *harness, wait []string) {
	t.Helper()
	sick := startUpstream(t, h.nodeIP, http.StatusServiceUnavailable)
	h.hostService(t, "sick", "sick-api", 8080, sick.Port)
	start := time.Now()
	r := h.obol(append([]string{"sell", "http", "sick", "--upstream", "sick-api", "--namespace", "sick", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia"}, wait...)...)
	took := time.Since(start)
	t.Logf("sell --wait of a gateway that cannot become Ready: exit %d after %.1fs\n%s%s", r.code, took.Seconds(), r.out, r.err)
	if r.code == 0 || !strings.Contains(r.err, "ReadinessProbeFailed") || !strings.Contains(r.err, "statuscode: 503") || took > 2*time.Minute {
		t.Errorf("sell --wait: exit %d after %s, want a failure naming the failing readiness probe well before the 3m timeout", r.code, took)
	}
	r = h.must(t, append([]string{"stack", "status"}, h.kc()...)...)
	if !strings.Contains(r.out, "ReadinessProbeFailed") {
		t.Errorf("stack status does not show why sick is not Ready:\n%s", r.out)
	}
	// Once the upstream is healthy the same release becomes Ready by itself (helm-controller
	// finishes the install it was waiting on; a delete would wait for that too).
	sick.SetHealth(http.StatusOK)
	h.waitReleases(t, []string{"sick"}, 3*time.Minute)
	h.must(t, append([]string{"sell", "delete", "sick"}, wait...)...)

	// A commit the applications Kustomization cannot build (a file that is not YAML).
	bad := filepath.Join(h.repo, "applications", "notes.yaml")
	if err := os.WriteFile(bad, []byte("kind: ConfigMap\nmetadata: {name: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", h.repo, "-c", "user.name=e2e", "-c", "user.email=e2e@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("add", "applications/notes.yaml")
	git("commit", "-q", "-m", "a file kustomize cannot read")
	start = time.Now()
	r = h.obol(append([]string{"stack", "up"}, wait...)...)
	took = time.Since(start)
	t.Logf("stack up --wait at a commit that does not build: exit %d after %.1fs\n%s%s", r.code, took.Seconds(), r.out, r.err)
	if r.code == 0 || !strings.Contains(r.err+r.out, "Kustomization applications: BuildFailed") || took > 2*time.Minute {
		t.Errorf("stack up --wait: exit %d after %s, want the Kustomization's BuildFailed well before the timeout", r.code, took)
	}
	r = h.must(t, append([]string{"stack", "status"}, h.kc()...)...)
	if !strings.Contains(r.out, "BuildFailed") {
		t.Errorf("stack status does not show the build failure:\n%s", r.out)
	}
	git("rm", "-q", "applications/notes.yaml")
	git("commit", "-q", "-m", "remove it")
	h.must(t, append([]string{"stack", "up"}, wait...)...)
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
	var list struct{ Items []cluster.Row }
	if err := json.Unmarshal([]byte(r.out), &list); err != nil || !strings.Contains(r.out, `"kind": "List"`) {
		t.Fatalf("stack status -o json: %v\n%s", err, r.out)
	}
	rows := list.Items
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
			} else if !row.Route.OK() {
				t.Errorf("status: offer %s: route %+v, want accepted", row.Name, row.Route)
			}
		}
	}
	for o := range want {
		if !seen[o] {
			t.Errorf("status: no HelmRelease for the offer %s", o)
		}
	}
}
