package render_test

import (
	"bytes"
	"path"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol"
	"github.com/obol/obol/internal/argocd"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
)

// StackObjects is a fast list kept by hand; it must be exactly what the wiring renders beside
// offers (in flux-system or argocd), or a collision would go unnoticed.
func TestStackObjectsListsTheWiring(t *testing.T) {
	for _, engine := range []settings.Engine{settings.EngineFlux, settings.EngineArgoCD} {
		st := settings.New("dev")
		st.Spec.Engine = engine
		st.Default()
		files, err := render.Stack(obol.Assets(), st)
		if err != nil {
			t.Fatal(err)
		}
		var rendered []string
		for p, b := range files {
			// The Flux components are Flux's own objects, not names an offer can take.
			if !strings.HasPrefix(p, "clusters/") || path.Base(p) == "gotk-components.yaml" || !strings.HasSuffix(p, ".yaml") {
				continue
			}
			for _, doc := range bytes.Split(b, []byte("\n---\n")) {
				var obj struct {
					APIVersion string `json:"apiVersion"`
					Kind       string `json:"kind"`
					Metadata   struct{ Name, Namespace string }
				}
				if err := yaml.Unmarshal(doc, &obj); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				ns := obj.Metadata.Namespace
				if obj.Kind == "" || obj.Kind == "Kustomization" && obj.APIVersion == "kustomize.config.k8s.io/v1beta1" ||
					(ns != render.FluxNamespace && ns != argocd.Namespace) {
					continue
				}
				gv, _ := schema.ParseGroupVersion(obj.APIVersion)
				rendered = append(rendered, render.ObjectID{Group: gv.Group, Kind: obj.Kind, Namespace: ns, Name: obj.Metadata.Name}.String())
			}
		}
		var listed []string
		for _, id := range render.StackObjects("dev", string(engine)) {
			listed = append(listed, id.String())
		}
		slices.Sort(rendered)
		slices.Sort(listed)
		if !slices.Equal(rendered, listed) {
			t.Errorf("%s: rendered beside offers\n  %s\nStackObjects\n  %s", engine, strings.Join(rendered, "\n  "), strings.Join(listed, "\n  "))
		}
	}
}

// The attacks of an offer named after the stack's own objects, or installed into its namespaces.
func TestCollisions(t *testing.T) {
	for _, tc := range []struct {
		engine, name, namespace, want string
	}{
		{"argocd", "obol-dev", "llm", `metadata.name: "obol-dev" would be the stack's own Application.argoproj.io/argocd/obol-dev`},
		{"argocd", "obol-dev-infrastructure", "llm", `metadata.name: "obol-dev-infrastructure" would be the stack's own Application.argoproj.io/argocd/obol-dev-infrastructure`},
		{"flux", "x", "flux-system", `metadata.namespace: "flux-system" is a namespace the stack or Kubernetes owns`},
		{"flux", "x", "kube-system", `metadata.namespace: "kube-system"`},
		{"flux", "traefik", "traefik", `metadata.namespace: "traefik"`},
		{"argocd", "x", "argocd", `metadata.namespace: "argocd"`},
		{"argocd", "x", "obol-system", `metadata.namespace: "obol-system"`},
	} {
		got := render.Collisions("dev", tc.engine, tc.name, tc.namespace)
		if len(got) == 0 || !strings.Contains(got[0].Error(), tc.want) {
			t.Errorf("%s %s/%s: %v, want %q", tc.engine, tc.namespace, tc.name, got, tc.want)
		}
	}
	for _, ok := range []struct{ engine, name, namespace string }{
		{"flux", "obol-dev", "llm"}, {"argocd", "obol-prod", "default"}, {"argocd", "weather", "weather"}, {"flux", "applications", "apps"},
	} {
		if got := render.Collisions("dev", ok.engine, ok.name, ok.namespace); len(got) != 0 {
			t.Errorf("%+v: %v, want none", ok, got)
		}
	}
}

// The in-cluster git endpoint admits only the reconciler's fetcher.
func TestGitEndpointNetworkPolicy(t *testing.T) {
	st := settings.New("dev")
	st.Default()
	files, err := render.Stack(obol.Assets(), st)
	if err != nil {
		t.Fatal(err)
	}
	b := string(files["clusters/dev/flux-system/obol-git.yaml"])
	for _, want := range []string{"kind: NetworkPolicy", "app: source-controller", "kubernetes.io/metadata.name: flux-system",
		"app.kubernetes.io/name: argocd-repo-server", "kubernetes.io/metadata.name: argocd", "- Ingress"} {
		if !strings.Contains(b, want) {
			t.Errorf("obol-git.yaml lacks %q", want)
		}
	}
}
