package validate

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchStack is the mini stack with n more slices of each kind.
func benchStack(b testing.TB, n int) tree {
	tr := miniStack(b)
	for i := 0; i < n; i++ {
		for k, v := range sliceFiles("sell-http", fmt.Sprintf("h%03d", i), httpOfferSpec, i%2 == 0) {
			tr[k] = v
		}
		for k, v := range sliceFiles("sell-inference", fmt.Sprintf("m%03d", i), inferenceOfferSpec, i%2 == 1) {
			tr[k] = v
		}
	}
	return tr
}

// BenchmarkRepo validates a stack with 200 slices (100 per kind, 606 objects under
// applications/). Besides ns/op it reports x-bare-build: the time of Repo over the time of
// the three bare kustomize builds (Objects) of the same paths, measured in the same run, so
// the figure means something on a loaded machine.
func BenchmarkRepo(b *testing.B) {
	dir := b.TempDir()
	benchStack(b, 100).write(b, dir)
	schemas := fluxSchemas(b)
	var repo, bare time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		rep, err := Repo(context.Background(), Options{Root: dir, Entry: "clusters/dev", Schemas: schemas})
		repo += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK() || len(rep.Findings) != 0 {
			b.Fatalf("findings:\n%s", rep)
		}
		if got := rep.Built[2].Objects; got != 606 {
			b.Fatalf("applications built %d objects, want 606", got)
		}

		b.StopTimer()
		start = time.Now()
		for _, p := range []string{"clusters/dev", "infrastructure", "applications"} {
			if _, err := Objects(dir, p); err != nil {
				b.Fatal(err)
			}
		}
		bare += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(repo)/float64(bare), "x-bare-build")
}
