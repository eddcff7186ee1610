package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/gittest"
	"github.com/obol/obol/internal/settings"
)

// TestTeamRemoteStackUp: a stack on a shared remote that needs credentials (git http-backend
// with token auth, on the node's address, where source-controller's pod reaches it). stack up refuses until it is given a read-only token, stores
// it as the GitRepository's Secret, and the real source-controller fetches the remote with it;
// a sell is pushed there and reconciled from there.
func TestTeamRemoteStackUp(t *testing.T) {
	h := setup(t)
	h.wipe(t)
	h.hostService(t, "apps", "weather-api", 8080, startUpstream(t, h.nodeIP, 200).Port)
	root := t.TempDir()
	bare := gittest.InitBare(t, root, "stack.git", "main")
	const user, token = "x-access-token", "e2e-token-7f3a9c"
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{Username: user, Token: token, Host: h.nodeIP})
	url := srv.RepoURL("stack.git")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := []string{"--repo", filepath.Join(t.TempDir(), "stack")}
	h.must(t, append([]string{"stack", "init", "--stack", "team", "--remote", url, "--token-file", tokenFile}, repo...)...)

	up := append(append([]string{"stack", "up", "--timeout", "3m"}, h.kc()...), repo...)
	if r := h.obol(up...); r.code != 2 || !strings.Contains(r.err, "--git-token-file") {
		t.Fatalf("stack up without credentials: exit %d, want a refusal naming --git-token-file:\n%s%s", r.code, r.out, r.err)
	}
	r := h.must(t, append(up, "--wait", "--git-token-file", tokenFile, "--git-username", user)...)
	if strings.Contains(r.out+r.err, token) {
		t.Fatal("stack up printed the token")
	}
	var secret corev1.Secret
	h.get(t, cluster.Namespace, settings.DefaultGitSecret, &secret)
	if string(secret.Data["username"]) != user || string(secret.Data["password"]) != token {
		t.Fatalf("credentials Secret holds %q / %d bytes", secret.Data["username"], len(secret.Data["password"]))
	}
	var gr sourcev1.GitRepository
	h.get(t, cluster.Namespace, cluster.Source, &gr)
	if gr.Spec.URL != url || gr.Spec.SecretRef == nil || gr.Spec.SecretRef.Name != settings.DefaultGitSecret {
		t.Fatalf("GitRepository: url %s secretRef %+v", gr.Spec.URL, gr.Spec.SecretRef)
	}
	// What source-controller fetched, with the Secret, is the commit init pushed.
	if head := gittest.Git(t, bare, nil, "rev-parse", "main"); gr.Status.Artifact == nil || !strings.Contains(gr.Status.Artifact.Revision, head) {
		t.Fatalf("the reconciler's artifact is %+v, want the remote head %s", gr.Status.Artifact, head)
	}

	// A sell is pushed to the remote and reconciled from it.
	h.must(t, append(append([]string{"sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia", "--token-file", tokenFile, "--wait", "--timeout", "3m"}, h.kc()...), repo...)...)
	head := gittest.Git(t, bare, nil, "rev-parse", "main")
	h.get(t, cluster.Namespace, cluster.Source, &gr)
	if gr.Status.Artifact == nil || !strings.Contains(gr.Status.Artifact.Revision, head) {
		t.Fatalf("the reconciler's artifact is %+v, want the remote head %s", gr.Status.Artifact, head)
	}
	// A second stack up with the same token keeps the Secret and changes nothing.
	if r := h.must(t, append(up, "--git-token-file", tokenFile, "--git-username", user)...); !strings.Contains(r.out, " 0 created, 0 configured,") {
		t.Errorf("a second stack up changed objects: %s", r.out)
	}

	// Rolling back the create is a delete, pushed and waited for until the release is gone.
	r = h.must(t, append(append([]string{"rollback", "weather", "--token-file", tokenFile, "--wait", "--timeout", "3m"}, h.kc()...), repo...)...)
	if !strings.Contains(r.out, "rollback weather: undo") {
		t.Errorf("rollback output:\n%s", r.out)
	}
	if got := gittest.Git(t, bare, nil, "ls-tree", "--name-only", "main", "applications/sell-http/"); got != "" {
		t.Errorf("the remote still has offers after the rollback: %s", got)
	}

	// A commit kept local is one the reconciler cannot see: status says so.
	h.must(t, append([]string{"sell", "http", "news", "--upstream", "news-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia", "--no-push"}, repo...)...)
	if r := h.must(t, append(append([]string{"stack", "status"}, h.kc()...), repo...)...); !strings.Contains(r.err, "1 commit here not pushed to origin/main") {
		t.Errorf("stack status does not report the unpushed commit:\n%s", r.err)
	}
}

// TestTeamRemoteStackUpSSH: the same over SSH with a deploy key: source-controller reads the
// remote with the key and known_hosts stack up stored as the Secret.
func TestTeamRemoteStackUpSSH(t *testing.T) {
	h := setup(t)
	h.wipe(t)
	h.hostService(t, "apps", "weather-api", 8080, startUpstream(t, h.nodeIP, 200).Port)
	root := t.TempDir()
	gittest.InitBare(t, root, "stack.git", "main")
	srv := gittest.StartSSHOn(t, root, h.nodeIP)
	url := srv.RepoURL("stack.git")
	repo := []string{"--repo", filepath.Join(t.TempDir(), "stack")}
	keys := []string{"--ssh-key", srv.ClientKeyFile, "--known-hosts", srv.KnownHostsFile}
	h.must(t, append(append([]string{"stack", "init", "--stack", "team", "--remote", url}, keys...), repo...)...)
	up := append(append([]string{"stack", "up", "--timeout", "3m", "--wait", "--git-ssh-key", srv.ClientKeyFile, "--git-known-hosts", srv.KnownHostsFile}, h.kc()...), repo...)
	h.must(t, up...)
	var secret corev1.Secret
	h.get(t, cluster.Namespace, settings.DefaultGitSecret, &secret)
	if len(secret.Data["identity"]) == 0 || !strings.Contains(string(secret.Data["known_hosts"]), h.nodeIP) {
		t.Fatalf("deploy-key Secret has keys %v", secret.Data)
	}
	h.must(t, append(append(append([]string{"sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia", "--wait", "--timeout", "3m"}, keys...), h.kc()...), repo...)...)
}
