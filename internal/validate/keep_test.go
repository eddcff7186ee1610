package validate

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	obol "github.com/obol/obol"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
)

// The applications Kustomization obol renders marks every Secret and PVC a slice holds with
// kustomize.toolkit.fluxcd.io/prune: disabled (wallets are never pruned), and nothing else: built
// the way kustomize-controller builds it, with the Kustomization's own patches.
func TestWalletObjectsNeverPruned(t *testing.T) {
	st := settings.New("dev")
	st.Default()
	files, err := render.Stack(obol.Assets(), st)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := files["clusters/dev/applications.yaml"]
	if !ok {
		t.Fatalf("no clusters/dev/applications.yaml among %d rendered files", len(files))
	}
	var ks unstructured.Unstructured
	if err := yaml.Unmarshal(raw, &ks.Object); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	slice := filepath.Join(src, "applications", "sell-http", "a")
	if err := os.MkdirAll(slice, 0o755); err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"wallet.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: wallet\n  namespace: apps\nstringData:\n  key: x\n",
		"data.yaml":   "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: wallet-data\n  namespace: apps\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n",
		"cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n  namespace: apps\n",
	}
	for name, doc := range docs {
		if err := os.WriteFile(filepath.Join(slice, name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := buildPath(context.Background(), src, "applications", ks, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.objects) != 3 {
		t.Fatalf("built %d objects, want 3", len(res.objects))
	}
	for _, o := range res.objects {
		got := o.GetAnnotations()["kustomize.toolkit.fluxcd.io/prune"]
		want := "disabled"
		if o.GetKind() == "ConfigMap" {
			want = ""
		}
		if got != want || o.GetName() == "not-used" {
			t.Errorf("%s/%s: prune annotation %q, want %q", o.GetKind(), o.GetName(), got, want)
		}
	}
}
