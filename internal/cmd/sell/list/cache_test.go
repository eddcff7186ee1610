package list

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/stackrepo"
)

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

func httpOffer(name, price string) *v1alpha1.ServiceOffer {
	o := &v1alpha1.ServiceOffer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps"},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeHTTP,
			Upstream: &v1alpha1.UpstreamSpec{Service: "svc-" + name, Port: 8080},
			Payment:  v1alpha1.PaymentSpec{Network: "base-sepolia", PayTo: payTo, Price: v1alpha1.PriceSpec{PerRequest: price}},
		},
	}
	offer.Default(o)
	return o
}

// commit writes files (path -> content; nil deletes) and returns the new head.
func commit(t *testing.T, r *repo.Repo, files map[string][]byte) *repo.Snapshot {
	t.Helper()
	res, err := r.Commit(context.Background(), repo.CommitRequest{
		Message: "m",
		Author:  repo.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1_780_000_000, 0)},
		Build: func(*repo.Snapshot) ([]repo.Change, error) {
			var out []repo.Change
			for p, c := range files {
				out = append(out, repo.Change{Path: p, Content: c, Delete: c == nil})
			}
			return out, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Snapshot(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func offerFile(t *testing.T, o *v1alpha1.ServiceOffer) []byte {
	t.Helper()
	b, err := offer.Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uncached is what the list shows without any cache.
func uncached(t *testing.T, head *repo.Snapshot) ([]*v1alpha1.ServiceOffer, int) {
	t.Helper()
	entries, err := stackrepo.Slices(head)
	if err != nil {
		t.Fatal(err)
	}
	read, failed := stackrepo.ReadOffers(head, entries)
	var offers []*v1alpha1.ServiceOffer
	broken := 0
	for i := range read {
		if failed[i] != nil {
			broken++
			continue
		}
		offers = append(offers, read[i])
	}
	return offers, broken
}

// TestCache: whatever the cache holds, the list is what the head holds.
func TestCache(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "stack"), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for i := range 20 {
		o := httpOffer(fmt.Sprintf("o%02d", i), "0.001")
		files[layout.OfferPath(o.Spec.Type, o.Name)] = offerFile(t, o)
	}
	head := commit(t, r, files)
	gitDir := r.GitDir()

	// check compares the list with the head's and whether the cache file was left as it was.
	check := func(step string, head *repo.Snapshot, unchanged bool) {
		t.Helper()
		before, _ := os.ReadFile(filepath.Join(gitDir, cacheFile))
		got, errs, err := readOffers(gitDir, head)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		want, wantErrs := uncached(t, head)
		if !reflect.DeepEqual(got, want) || len(errs) != wantErrs {
			t.Fatalf("%s: the cached list differs from the head's:\n%d offers, %d errors\nwant %d offers, %d errors", step, len(got), len(errs), len(want), wantErrs)
		}
		after, _ := os.ReadFile(filepath.Join(gitDir, cacheFile))
		if same := before != nil && string(before) == string(after); same != unchanged {
			t.Errorf("%s: cache left as it was: %v, want %v", step, same, unchanged)
		}
	}
	check("cold", head, false)
	check("warm", head, true)

	// An edited offer: its new content, the other 19 from the cache.
	o := httpOffer("o03", "0.5")
	head = commit(t, r, map[string][]byte{layout.OfferPath(o.Spec.Type, o.Name): offerFile(t, o)})
	check("edited", head, false)
	if got, _, _ := readOffers(gitDir, head); got[3].Spec.Payment.Price.PerRequest != "0.5" {
		t.Errorf("edited offer listed as %q", got[3].Spec.Payment.Price.PerRequest)
	}

	// The same offer.yaml under another name is not that offer: it is broken (name mismatch).
	head = commit(t, r, map[string][]byte{"applications/sell-http/copy/offer.yaml": files[layout.OfferPath(v1alpha1.OfferTypeHTTP, "o00")]})
	check("copied", head, false)
	if _, errs, _ := readOffers(gitDir, head); len(errs) != 1 {
		t.Errorf("a copied offer.yaml: %d errors, want 1", len(errs))
	}
	// A broken offer is read again each time (its error is not cached), the others are not.
	check("broken, again", head, true)

	// A deleted offer is gone.
	head = commit(t, r, map[string][]byte{"applications/sell-http/copy/offer.yaml": nil, layout.OfferPath(v1alpha1.OfferTypeHTTP, "o05"): nil})
	check("deleted", head, false)

	// A cache that is garbage, of another format or another obol, is read past and replaced.
	for _, bad := range []string{"{", `{"version":"0/other","tree":"x","entries":[]}`, ""} {
		if err := os.WriteFile(filepath.Join(gitDir, cacheFile), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("cache %q", bad), head, false)
	}
	check("warm again", head, true)
}
