package cluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	obol "github.com/obol/obol"
	"github.com/obol/obol/internal/fluxmanifests"
)

const syncYAML = `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  url: http://obol-git.obol-system.svc.cluster.local/stack.git
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./clusters/dev
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
`

func TestLoadObjects(t *testing.T) {
	comps, err := fs.ReadFile(obol.Assets(), fluxmanifests.ComponentsFile)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := LoadObjects(comps, []byte(syncYAML), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := objs.GitURL(); got != "http://obol-git.obol-system.svc.cluster.local/stack.git" {
		t.Errorf("GitURL = %q", got)
	}
	kinds := map[string]int{}
	for _, o := range objs.Components {
		kinds[o.GetKind()]++
	}
	if kinds["CustomResourceDefinition"] == 0 || kinds["Deployment"] != 3 || kinds["Namespace"] != 1 {
		t.Errorf("components: %v", kinds)
	}
	objs, err = LoadObjects(comps, []byte(syncYAML), "http://127.0.0.1:9/stack.git")
	if err != nil {
		t.Fatal(err)
	}
	if got := objs.GitURL(); got != "http://127.0.0.1:9/stack.git" {
		t.Errorf("--git-url override: GitURL = %q", got)
	}
	if _, err := LoadObjects(comps, []byte(strings.SplitN(syncYAML, "---", 2)[0]), ""); err == nil {
		t.Error("sync objects without the Kustomization: no error")
	}
}

func TestRevisions(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	for rev, want := range map[string]string{
		"main@sha1:" + sha: "0123456789ab",
		sha:                "0123456789ab",
		"0.1.0":            "0.1.0",
		"":                 "",
	} {
		if got := ShortRevision(rev); got != want {
			t.Errorf("ShortRevision(%q) = %q, want %q", rev, got, want)
		}
	}
	if !AtCommit("main@sha1:"+sha, sha) || AtCommit("main@sha1:"+sha, "") || AtCommit("", sha) || AtCommit("main@sha1:ffff", sha) {
		t.Error("AtCommit")
	}
	for reason, want := range map[string]bool{"Progressing": false, "DependencyNotReady": false, "ArtifactFailed": false, "BuildFailed": true, "ReconciliationFailed": true, "HealthCheckFailed": true} {
		if terminal(reason) != want {
			t.Errorf("terminal(%q) = %v", reason, !want)
		}
	}
}

func TestRESTConfigNoCluster(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := RESTConfig(Config{Kubeconfig: filepath.Join(dir, "missing")}); !errors.Is(err, ErrNoCluster) {
		t.Errorf("missing kubeconfig: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := RESTConfig(Config{Kubeconfig: empty})
	if !errors.Is(err, ErrNoCluster) || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("kubeconfig without contexts: %v", err)
	}
	one := filepath.Join(dir, "one")
	kc := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: a
  context: {cluster: c, user: u}
current-context: a
`
	if err := os.WriteFile(one, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, name, err := RESTConfig(Config{Kubeconfig: one}); err != nil || name != "a" {
		t.Errorf("RESTConfig = %q, %v", name, err)
	}
	if _, _, err := RESTConfig(Config{Kubeconfig: one, Context: "b"}); !errors.Is(err, ErrNoCluster) {
		t.Errorf("unknown context: %v", err)
	}
}
