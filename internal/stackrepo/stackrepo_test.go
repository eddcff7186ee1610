package stackrepo

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/obol/obol/internal/settings"
)

const offerYAML = `apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata:
  name: weather
  namespace: apps
spec:
  type: http
  upstream: {service: weather-api, namespace: apps, port: 8080}
  payment:
    network: base-sepolia
    payTo: "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
    price: {perRequest: "0.001"}
`

func stackFS(t *testing.T, files map[string]string) fstest.MapFS {
	t.Helper()
	s, err := settings.New("dev").Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := fstest.MapFS{settings.File: {Data: s}}
	for p, c := range files {
		m[p] = &fstest.MapFile{Data: []byte(c)}
	}
	return m
}

func TestSlicesAndOffers(t *testing.T) {
	fsys := stackFS(t, map[string]string{
		"applications/sell-http/weather/offer.yaml": offerYAML,
		"applications/sell-inference/README.md":     "not a slice",
	})
	entries, err := Slices(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name != "weather" || entries[0].Dir() != "applications/sell-http/weather" {
		t.Fatalf("slices: %+v", entries)
	}
	if e, found, err := Find(fsys, "weather"); err != nil || !found || e.Type != "http" {
		t.Fatalf("find: %+v %v %v", e, found, err)
	}
	if _, found, _ := Find(fsys, "rain"); found {
		t.Fatal("found an offer that is not there")
	}
	offers, err := Offers(fsys)
	if err != nil || len(offers) != 1 || offers[0].Spec.Payment.Scheme != "exact" {
		t.Fatalf("offers (defaulted): %+v %v", offers, err)
	}
}

func TestOfferMustMatchItsDirectory(t *testing.T) {
	fsys := stackFS(t, map[string]string{"applications/sell-inference/weather/offer.yaml": offerYAML})
	_, err := Offers(fsys)
	if err == nil || !strings.Contains(err.Error(), "do not match the directory") {
		t.Fatalf("want a mismatch error, got %v", err)
	}
}

func TestNotAStack(t *testing.T) {
	if _, err := Settings(fstest.MapFS{}); !errors.Is(err, ErrNotStack) {
		t.Fatalf("got %v", err)
	}
}

// canonicalPath agrees with a full decode on what offer.Encode writes, and declines anything
// else rather than guess.
func TestCanonicalPath(t *testing.T) {
	head := "apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nmetadata:\n  name: w\n  namespace: apps\n"
	tail := "  type: http\n  upstream:\n    healthPath: /health\n    path: /not/this\n    port: 80\n    service: w\n"
	for _, tc := range []struct {
		name, src, want string
		ok              bool
	}{
		{"set", head + "spec:\n  path: /x/y\n" + tail, "/x/y", true},
		{"default", head + "spec:\n" + tail, "", true},
		{"after spec", head + "spec:\n" + tail + "status:\n  path: /z\n", "", true},
		{"quoted", head + "spec:\n  path: \"/x\"\n" + tail, "", false},
		{"flow", head + "spec: {path: /x}\n", "", false},
		{"other apiVersion", "kind: ServiceOffer\napiVersion: obol.org/v1alpha1\nspec:\n  path: /x\n", "", false},
		{"anchor", head + "spec:\n  path: &p /x\n" + tail, "", false},
	} {
		got, ok := canonicalPath([]byte(tc.src))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: canonicalPath = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
