package e2e

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol/internal/argocd"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
)

// TestArgoCDStackUp: an Argo CD stack against a real API server and node. No Argo CD controller runs
// here (its module cannot be built on this machine), so this proves what obol does: without
// Argo CD, stack up says so; with Argo CD's CRDs, the root Application is accepted by the API
// server's own validation of Argo CD's schema, a second stack up changes nothing, and --wait and
// sell --wait follow the Application, print what they see and time out with it.
func TestArgoCDStackUp(t *testing.T) {
	h := setup(t)
	h.wipe(t)
	ctx := context.Background()
	h.must(t, "stack", "init", "--stack", "e2e", "--engine", "argocd")
	up := append([]string{"stack", "up"}, h.kc()...)
	if r := h.obol(up...); r.code != 2 || !strings.Contains(r.err, "no Argo CD in this cluster") {
		t.Fatalf("stack up without Argo CD: exit %d\n%s%s", r.code, r.out, r.err)
	}

	// What an Argo CD install brings that obol needs: its namespace and CRDs.
	if err := h.cl.Kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: argocd.Namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	files, err := fs.Glob(argocd.CRDs, "crds/*.yaml")
	if err != nil || len(files) != 3 {
		t.Fatalf("Argo CD CRDs: %v %v", files, err)
	}
	for _, f := range files {
		b, _ := fs.ReadFile(argocd.CRDs, f)
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, crd); err != nil {
			t.Fatal(err)
		}
		if err := h.cl.Kube.Create(ctx, crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := crd.Name
		h.waitFor(t, "CRD "+name+" Established", func() bool {
			h.get(t, "", name, crd)
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true
				}
			}
			return false
		})
	}

	// The root Application and the in-cluster git endpoint (Namespace, Deployment, Service,
	// NetworkPolicy), whose pod then runs on the node: the repo server would read the repo from it.
	r := h.must(t, up...)
	if !strings.Contains(r.out, "5 created") {
		t.Errorf("stack up: %s", r.out)
	}
	var git appsv1.Deployment
	h.waitFor(t, "the git endpoint's Deployment to be Available", func() bool {
		h.get(t, render.GitEndpointNamespace, render.GitEndpointName, &git)
		return git.Status.AvailableReplicas == 1
	})
	root := &unstructured.Unstructured{}
	root.SetAPIVersion(argocd.APIVersion)
	root.SetKind(argocd.ApplicationKind)
	h.get(t, argocd.Namespace, "obol-e2e", root)
	if url, _, _ := unstructured.NestedString(root.Object, "spec", "source", "repoURL"); url != settings.DefaultGitURL {
		t.Errorf("root Application repoURL %q, want %q", url, settings.DefaultGitURL)
	}
	if ann := root.GetAnnotations()["argocd.argoproj.io/refresh"]; ann != "normal" {
		t.Errorf("stack up did not ask Argo CD to refresh: annotations %v", root.GetAnnotations())
	}
	if r := h.must(t, up...); !strings.Contains(r.out, " 0 created, 0 configured,") {
		t.Errorf("a second stack up changed objects: %s", r.out)
	}

	// No controller syncs it: --wait shows what it sees and gives up at the timeout.
	r = h.obol(append(up, "--wait", "--timeout", "3s")...)
	if r.code != 2 || !strings.Contains(r.err, "Application obol-e2e:") || !strings.Contains(r.err, "timed out waiting for Application obol-e2e") {
		t.Errorf("stack up --wait with no Argo CD controller: exit %d\n%s", r.code, r.err)
	}
	r = h.must(t, append([]string{"stack", "status", "-o", "json"}, h.kc()...)...)
	if !strings.Contains(r.out, `"name": "obol-e2e"`) || !strings.Contains(r.out, `"name": "obol-e2e-infrastructure"`) {
		t.Errorf("stack status:\n%s", r.out)
	}
	r = h.obol(append([]string{"sell", "http", "weather", "--upstream", "weather-api", "--per-request", "0.001", "--pay-to", payTo,
		"--wait", "--timeout", "3s"}, h.kc()...)...)
	if r.code != 2 || !strings.Contains(r.out, "sell http weather: create (commit") || !strings.Contains(r.err, "Application weather: not there") {
		t.Errorf("sell --wait with no Argo CD controller: exit %d\n%s%s", r.code, r.out, r.err)
	}
}
