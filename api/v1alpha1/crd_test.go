package v1alpha1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The committed CRD must be exactly what controller-gen makes of the Go types: a field added
// to the types without `make generate` would be pruned by the API server.
func TestCRDMatchesTypes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("go", "tool", "controller-gen", "crd", "paths=./api/...", "output:crd:dir="+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, b)
	}
	committed := filepath.Join(root, "templates", "infrastructure", "crds")
	gen, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadDir(committed)
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) != len(have) {
		t.Fatalf("controller-gen makes %d CRDs, %s holds %d: run make generate", len(gen), committed, len(have))
	}
	for _, e := range gen {
		want, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v (run make generate)", e.Name(), err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: the Go types changed; run make generate", e.Name())
		}
	}
}
