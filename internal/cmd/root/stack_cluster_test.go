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

// sell --wait commits first (the commit is the change; the cluster only follows it), then
// reports that it could not wait, with a failing exit code.
func TestSellWaitNoCluster(t *testing.T) {
	repo := newStack(t)
	missing := filepath.Join(t.TempDir(), "kubeconfig")
	r := obolCLI(t, repo, author, "sell", "http", "weather", "--upstream", "weather-api", "--per-request", "0.001",
		"--pay-to", payTo, "--wait", "--kubeconfig", missing, "--timeout", "5s")
	if r.code != 2 || !strings.Contains(r.err, "committed ") || !strings.Contains(r.err, "no usable Kubernetes cluster") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.err)
	}
	if log := gitCLI(t, repo, "log", "-1", "--format=%s"); !strings.Contains(log, "sell http weather: create") {
		t.Errorf("head commit %q, want the offer's commit", log)
	}
	checkRepo(t, repo)
}
