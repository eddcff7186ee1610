package render_test

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol"
	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
)

// -update rewrites the golden files from the current rendering (flux2's pattern).
var update = flag.Bool("update", false, "rewrite golden files")

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

func httpOffer(name string) *v1alpha1.ServiceOffer {
	o := &v1alpha1.ServiceOffer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps"},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeHTTP,
			Upstream: &v1alpha1.UpstreamSpec{Service: "weather-api", Port: 8080},
			Payment: v1alpha1.PaymentSpec{
				Network: "base-sepolia",
				PayTo:   payTo,
				Price:   v1alpha1.PriceSpec{PerRequest: "0.001"},
			},
		},
	}
	offer.Default(o)
	return o
}

func inferenceOffer(name string) *v1alpha1.ServiceOffer {
	o := &v1alpha1.ServiceOffer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeInference,
			Model:    &v1alpha1.ModelSpec{Name: "qwen3:8b"},
			Upstream: &v1alpha1.UpstreamSpec{URL: "http://host.k3d.internal:11434"},
			Payment: v1alpha1.PaymentSpec{
				PayTo: strings.ToLower(payTo),
				Price: v1alpha1.PriceSpec{PerMTok: "0.5"},
			},
			Registration: &v1alpha1.RegistrationSpec{Enabled: true, Name: "Qwen 3 8B", Skills: []string{"text-generation"}},
		},
	}
	offer.Default(o)
	return o
}

func TestGolden(t *testing.T) {
	t.Run("flux", func(t *testing.T) { golden(t, settings.EngineFlux, filepath.Join("testdata", "golden"), nil) })
	// Argo CD: only what differs from Flux (the wiring and the slices); infrastructure/ and
	// charts/ are the same files, checked above.
	t.Run("argocd", func(t *testing.T) {
		golden(t, settings.EngineArgoCD, filepath.Join("testdata", "golden-argocd"), func(p string) bool {
			return strings.HasPrefix(p, "clusters/") || strings.HasPrefix(p, "applications/")
		})
	})
}

func golden(t *testing.T, engine settings.Engine, golden string, keep func(string) bool) {
	st := settings.New("dev")
	st.Spec.Engine = engine
	weather, qwen := httpOffer("weather"), inferenceOffer("qwen")
	for _, o := range []*v1alpha1.ServiceOffer{weather, qwen} {
		if err := offer.Validate(o); err != nil {
			t.Fatalf("fixture %s is invalid: %v", o.Name, err)
		}
	}
	files, err := render.All(obol.Assets(), st, []*v1alpha1.ServiceOffer{weather, qwen})
	if err != nil {
		t.Fatal(err)
	}
	for p := range files {
		if keep != nil && !keep(p) {
			delete(files, p)
		}
	}
	if *update {
		if err := os.RemoveAll(golden); err != nil {
			t.Fatal(err)
		}
		for p, c := range files {
			dst := filepath.Join(golden, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, c, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every rendered file matches its golden file, and no golden file is missing from the render.
	seen := map[string]bool{}
	err = filepath.WalkDir(golden, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(golden, p)
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, ok := files[rel]
		if !ok {
			t.Errorf("%s: in the golden files but not rendered", rel)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from its golden file (run go test ./internal/render -update and review the diff):\n--- got\n%s", rel, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range files {
		if !seen[p] {
			t.Errorf("%s: rendered but has no golden file (run with -update)", p)
		}
	}
}

// Rendering is a pure function: the same input gives the same bytes, every time.
func TestRenderIsByteStable(t *testing.T) {
	st := settings.New("dev")
	offers := []*v1alpha1.ServiceOffer{httpOffer("a"), inferenceOffer("b")}
	first, err := render.All(obol.Assets(), st, offers)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, err := render.All(obol.Assets(), st, offers)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(first) {
			t.Fatalf("run %d rendered %d files, first run %d", i, len(again), len(first))
		}
		for p, c := range first {
			if !bytes.Equal(again[p], c) {
				t.Fatalf("run %d: %s changed between renderings", i, p)
			}
		}
	}
}

func TestEveryRenderedYAMLIsMarkedGenerated(t *testing.T) {
	files, err := render.All(obol.Assets(), settings.New("dev"), []*v1alpha1.ServiceOffer{httpOffer("a")})
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range files {
		if strings.HasPrefix(p, "charts/") {
			continue // vendored byte for byte
		}
		if !render.IsGenerated(c) {
			t.Errorf("%s has no generated-file header", p)
		}
	}
	if render.IsGenerated([]byte("apiVersion: v1\n# Code generated by obol. DO NOT EDIT.\n")) {
		t.Error("a header that is not on the first line must not count")
	}
}

func TestSliceRefusesTwoRenderingsOfOnePath(t *testing.T) {
	_, err := render.All(obol.Assets(), settings.New("dev"), []*v1alpha1.ServiceOffer{httpOffer("a"), httpOffer("a")})
	if err == nil || !strings.Contains(err.Error(), "two renderings") {
		t.Fatalf("want a two-renderings error, got %v", err)
	}
}

// The in-cluster git endpoint's image is tagged like the gateway's (the chart's appVersion, what
// `make git-image` builds), and is rendered only for the in-cluster URL.
func TestGitEndpoint(t *testing.T) {
	chart, err := fs.ReadFile(obol.Assets(), "charts/obol-gateway/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(chart, &meta); err != nil || meta.AppVersion == "" {
		t.Fatalf("Chart.yaml appVersion: %q %v", meta.AppVersion, err)
	}
	if want := "ghcr.io/obol/obol-git:" + meta.AppVersion; render.GitEndpointImage != want {
		t.Errorf("GitEndpointImage %s, want %s", render.GitEndpointImage, want)
	}
	for url, want := range map[string]bool{
		"http://obol-git.obol-system.svc.cluster.local/stack.git": true,
		"http://obol-git.obol-system/stack.git":                   true,
		"http://127.0.0.1:18080/stack.git":                        false,
		"https://github.com/acme/stack.git":                       false,
	} {
		st := settings.New("dev")
		st.Spec.GitURL = url
		st.Default()
		files, err := render.Stack(obol.Assets(), st)
		if err != nil {
			t.Fatal(err)
		}
		_, got := files["clusters/dev/flux-system/obol-git.yaml"]
		ks := string(files["clusters/dev/flux-system/kustomization.yaml"])
		if got != want || strings.Contains(ks, "obol-git.yaml") != want {
			t.Errorf("%s: obol-git.yaml rendered %v, in kustomization.yaml %v; want %v", url, got, strings.Contains(ks, "obol-git.yaml"), want)
		}
	}
}

// A stack on a shared remote that needs credentials points its GitRepository at the Secret
// stack up creates; one that needs none has no secretRef.
func TestGitRepositorySecretRef(t *testing.T) {
	for secret, want := range map[string]string{"": "", settings.DefaultGitSecret: "secretRef:\n    name: " + settings.DefaultGitSecret} {
		st := settings.New("dev")
		st.Spec.GitURL, st.Spec.GitSecret = "https://git.example.com/team/stack.git", secret
		st.Default()
		if err := st.Validate(); err != nil {
			t.Fatal(err)
		}
		files, err := render.Stack(obol.Assets(), st)
		if err != nil {
			t.Fatal(err)
		}
		sync := string(files["clusters/dev/flux-system/gotk-sync.yaml"])
		if got := strings.Contains(sync, "secretRef:"); got != (want != "") || want != "" && !strings.Contains(sync, want) {
			t.Errorf("gitSecret %q: gotk-sync.yaml:\n%s", secret, sync)
		}
	}
}
