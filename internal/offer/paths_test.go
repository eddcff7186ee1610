package offer

import (
	"strings"
	"testing"
)

func TestPathConflict(t *testing.T) {
	c := func(name, p string) Claim { return Claim{Name: name, Type: "http", Path: p} }
	for _, tc := range []struct {
		a, b Claim
		want string // a fragment of the message, "" for no conflict
	}{
		{c("a", "/services/weather"), c("b", "/services/weather"), "same path"},
		{c("a", "/services/weather/"), c("b", "/services/weather"), "same path"},
		{c("a", "/services/weather/sub"), c("b", "/services/weather"), "lies inside"},
		{c("a", "/services/weather"), c("b", "/services/weather/sub/deeper"), "lies inside"},
		{c("a", "/services/weather2"), c("b", "/services/weather"), ""},
		{c("a", "/services/w"), c("b", "/services/weather"), ""},
		{c("a", "/api"), c("b", "/services/api"), ""},
	} {
		got := PathConflict(tc.a, tc.b)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("PathConflict(%s, %s) = %q, want %q", tc.a.Path, tc.b.Path, got, tc.want)
		}
		if got != "" && (!strings.Contains(got, "offer a") || !strings.Contains(got, "offer b")) {
			t.Errorf("message %q does not name both offers", got)
		}
	}
}

func TestReservedPaths(t *testing.T) {
	for p, want := range map[string]string{
		"/healthz": "/healthz", "/healthz/x": "/healthz", "/readyz": "/readyz", "/metrics": "/metrics",
		"/.well-known/x402": "/.well-known", "/.well-known": "/.well-known", "/openapi.json": "/openapi.json",
		"/healthzz": "", "/services/healthz": "", "/metrics-api": "",
	} {
		if got := ReservedConflict(p); got != want {
			t.Errorf("ReservedConflict(%q) = %q, want %q", p, got, want)
		}
	}
}

// PathErrors checks the changed offers against all, and unchanged ones not against each other
// (a write must not fail for a conflict it did not make; validate reports those).
func TestPathErrorsOnlyForChanged(t *testing.T) {
	claims := []Claim{{Name: "old1", Path: "/x"}, {Name: "old2", Path: "/x"}, {Name: "new", Path: "/y"}}
	if errs := PathErrors(claims, map[string]bool{"new": true}); len(errs) != 0 {
		t.Fatalf("errors for an unrelated conflict: %v", errs)
	}
	if errs := PathErrors(claims, map[string]bool{"old1": true, "old2": true}); len(errs) != 1 {
		t.Fatalf("want the one conflict once, got %v", errs)
	}
	claims = append(claims, Claim{Name: "sub", Path: "/y/z"})
	errs := PathErrors(claims, map[string]bool{"sub": true})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "--path") {
		t.Fatalf("got %v", errs)
	}
}
