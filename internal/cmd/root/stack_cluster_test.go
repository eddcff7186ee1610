package root_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// The cluster commands against no cluster: a clear error, and the repo untouched. The commands'
// behaviour against a real API server and Flux is tested in test/e2e (OBOL_E2E=1).
func TestStackUpNoCluster(t *testing.T) {
	repo := newStack(t)
	before := treeHash(t, repo)
	env := map[string]string{"OBOL_NO_K3D": "1"}
	missing := filepath.Join(t.TempDir(), "kubeconfig")
	for _, args := range [][]string{
		{"stack", "up", "--kubeconfig", missing},
		{"stack", "status", "--kubeconfig", missing},
		{"stack", "down", "--kubeconfig", missing},
		{"stack", "purge", "--yes", "--kubeconfig", missing},
	} {
		r := obolCLI(t, repo, env, args...)
		if r.code == 0 || !strings.Contains(r.err, "no usable Kubernetes cluster") {
			t.Errorf("obol %s: exit %d, stderr:\n%s", strings.Join(args, " "), r.code, r.err)
		}
	}
	if r := obolCLI(t, repo, env, "stack", "purge", "--kubeconfig", missing); r.code == 0 || !strings.Contains(r.err, "--yes") {
		t.Errorf("purge without --yes: exit %d, stderr:\n%s", r.code, r.err)
	}
	if after := treeHash(t, repo); after != before {
		t.Error("a cluster command changed the repo")
	}
}

// sell --wait with no cluster to wait on fails before committing: running it again once the
// cluster is there must not say the offer exists.
func TestSellWaitNoCluster(t *testing.T) {
	repo := newStack(t)
	missing := filepath.Join(t.TempDir(), "kubeconfig")
	before := treeHash(t, repo)
	r := obolCLI(t, repo, author, "sell", "http", "weather", "--upstream", "weather-api", "--per-request", "0.001",
		"--pay-to", payTo, "--wait", "--kubeconfig", missing, "--timeout", "5s")
	if r.code != 2 || !strings.Contains(r.err, "nothing committed") || !strings.Contains(r.err, "no usable Kubernetes cluster") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.err)
	}
	if treeHash(t, repo) != before {
		t.Error("sell --wait with no cluster wrote to the repo")
	}
	checkRepo(t, repo)
}

// An Argo CD stack: the same commands, the same slices (offer.yaml + values.yaml), Argo CD
// wiring under clusters/<stack>/, and obol validate renders it as Argo CD would.
func TestArgoCDStack(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "stack")
	env := map[string]string{"GIT_AUTHOR_NAME": "Test Seller", "GIT_AUTHOR_EMAIL": "seller@example.com", "OBOL_NO_K3D": "1"}
	if r := obolCLI(t, repo, env, "stack", "init", "--stack", "dev", "--engine", "argocd"); r.code != 0 {
		t.Fatalf("init: exit %d\n%s", r.code, r.err)
	}
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo)
	mustRun(t, repo, "sell", "inference", "qwen", "--model", "qwen3:8b", "--per-mtok", "0.5", "--pay-to", payTo)
	files := gitCLI(t, repo, "ls-files", "applications", "clusters")
	for _, want := range []string{"applications/sell-http/weather/offer.yaml", "applications/sell-http/weather/values.yaml", "clusters/dev/root.yaml", "clusters/dev/argocd/offers.yaml"} {
		if !strings.Contains(files, want) {
			t.Errorf("%s is not in the repo:\n%s", want, files)
		}
	}
	if strings.Contains(files, "helmrelease.yaml") || strings.Contains(files, "gotk-") {
		t.Errorf("Flux files in an Argo CD stack:\n%s", files)
	}
	if r := obolCLI(t, repo, env, "validate"); r.code != 0 || !strings.Contains(r.out, "valid (2 offers") {
		t.Errorf("validate: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := obolCLI(t, repo, env, "render", "--check"); r.code != 0 {
		t.Errorf("render --check: exit %d\n%s%s", r.code, r.out, r.err)
	}
	before := treeHash(t, repo)
	if r := obolCLI(t, repo, env, "stack", "down", "--kubeconfig", filepath.Join(t.TempDir(), "none")); r.code != 2 || !strings.Contains(r.err, "argocd app set obol-dev --sync-policy none") {
		t.Errorf("stack down on an Argo CD stack: exit %d\n%s", r.code, r.err)
	}
	if treeHash(t, repo) != before {
		t.Error("stack down changed the repo")
	}
	checkRepo(t, repo)
}
