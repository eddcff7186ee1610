package e2e

import (
	"strings"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
)

// TestInClusterGitEndpoint: with the default gitURL (the in-cluster endpoint), stack up applies
// the git endpoint with the Flux components and waits until it and the controllers' Deployments
// are Available (their pods "run" on the kwok node; the real controllers are host processes),
// the endpoint's pod on the control-plane node (where k3d mounts the repo). The harness's source-controller runs on the host and cannot resolve the
// in-cluster name, so nothing is fetched here: that part is TestEndToEnd's, over loopback.
func TestInClusterGitEndpoint(t *testing.T) {
	h := setup(t)
	h.wipe(t)
	h.must(t, "stack", "init", "--stack", "incluster")
	r := h.must(t, append([]string{"stack", "up"}, h.kc()...)...)
	t.Log(r.err)
	var repo sourcev1.GitRepository
	h.get(t, cluster.Namespace, cluster.Source, &repo)
	if repo.Spec.URL != settings.DefaultGitURL {
		t.Errorf("GitRepository URL %s, want %s", repo.Spec.URL, settings.DefaultGitURL)
	}
	var svc corev1.Service
	h.get(t, render.GitEndpointNamespace, render.GitEndpointName, &svc)
	var d appsv1.Deployment
	h.waitFor(t, "the git endpoint's Deployment to be Available", func() bool {
		h.get(t, render.GitEndpointNamespace, render.GitEndpointName, &d)
		return d.Status.AvailableReplicas == 1
	})
	if img := d.Spec.Template.Spec.Containers[0].Image; img != render.GitEndpointImage {
		t.Errorf("image %s, want %s", img, render.GitEndpointImage)
	}
	// A second stack up changes nothing, the endpoint included.
	if r := h.must(t, append([]string{"stack", "up"}, h.kc()...)...); !strings.Contains(r.out, " 0 created, 0 configured,") {
		t.Errorf("a second stack up changed objects: %s", r.out)
	}
}
