package team

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stack up creates a local k3d cluster only when no cluster is configured at all. A configured
// cluster that does not answer is reported, never replaced (k3d would also switch the current
// context); with --kubeconfig the error does not talk about k3d.
func TestStackUpNeverReplacesAConfiguredCluster(t *testing.T) {
	bin := t.TempDir()
	marker := filepath.Join(t.TempDir(), "k3d-ran")
	fake := "#!/bin/sh\necho \"$@\" >> " + marker + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "k3d"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	u := newUser(t, "Alice")
	for i, e := range u.env {
		if strings.HasPrefix(e, "PATH=") {
			u.env[i] = "PATH=" + bin + ":" + strings.TrimPrefix(e, "PATH=")
		}
	}
	u.env = append(u.env, "KUBECONFIG=")
	u.must("stack", "init", "--stack", "dev")
	home := filepath.Dir(u.repo)

	// A kubeconfig whose API server refuses connections.
	kube := filepath.Join(home, ".kube")
	if err := os.MkdirAll(kube, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: mine\n  context:\n    cluster: c\n    user: u\ncurrent-context: mine\nusers:\n- name: u\n  user:\n    token: x\n"
	if err := os.WriteFile(filepath.Join(kube, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := u.run("stack", "up")
	if code == 0 || !strings.Contains(errOut, `context "mine"`) || !strings.Contains(errOut, "does not answer") || strings.Contains(errOut, "k3d") {
		t.Errorf("stack up with a configured cluster that is down: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("stack up ran k3d while a configured cluster was down")
	}
	_, errOut, code = u.run("stack", "up", "--kubeconfig", filepath.Join(home, "missing"))
	if code == 0 || strings.Contains(errOut, "k3d") || !strings.Contains(errOut, "--kubeconfig") {
		t.Errorf("stack up --kubeconfig MISSING: exit %d\n%s", code, errOut)
	}

	// No kubeconfig at all: k3d is asked for a cluster.
	if err := os.RemoveAll(kube); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = u.run("stack", "up")
	ran, err := os.ReadFile(marker)
	if code == 0 || err != nil || !strings.Contains(string(ran), "cluster create") {
		t.Errorf("stack up with no cluster configured: exit %d, k3d ran %q (%v)\n%s", code, ran, err, errOut)
	}
}
