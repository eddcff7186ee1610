package offer

import (
	"fmt"
	"sort"
	"strings"
)

// ReservedPaths are answered by the gateway itself or kept for the stack's discovery
// documents, on every host: an offer whose path is one of them, or lies under one, would be
// shadowed (its buyers would get the gateway's health check, not the API they paid for).
var ReservedPaths = []string{"/healthz", "/readyz", "/metrics", "/.well-known", "/openapi.json"}

// Claim is the public path one offer takes at the edge.
type Claim struct {
	Name string
	Type string
	Path string
}

func (c Claim) String() string { return fmt.Sprintf("%s offer %s (path %s)", c.Type, c.Name, c.Path) }

// within reports whether p is q or lies under it, segment by segment, as the Gateway API's
// PathPrefix matches: /a/b is within /a, /ab is not.
func within(p, q string) bool {
	p, q = strings.TrimRight(p, "/"), strings.TrimRight(q, "/")
	return p == q || strings.HasPrefix(p, q+"/")
}

// ReservedConflict returns the reserved path p takes or lies under, or "".
func ReservedConflict(p string) string {
	for _, r := range ReservedPaths {
		if within(p, r) {
			return r
		}
	}
	return ""
}

// PathConflict says how a and b would fight over requests at the edge, or "" when they don't:
// the same path, or one inside the other (the longer prefix would take part of the other
// offer's traffic, possibly to another payTo).
func PathConflict(a, b Claim) string {
	pa, pb := strings.TrimRight(a.Path, "/"), strings.TrimRight(b.Path, "/")
	switch {
	case pa == pb:
		return fmt.Sprintf("%s and %s take the same path", a, b)
	case within(pa, pb):
		return fmt.Sprintf("%s lies inside %s: requests under %s would go to %s", a, b, pa, a.Name)
	case within(pb, pa):
		return fmt.Sprintf("%s lies inside %s: requests under %s would go to %s", b, a, pb, b.Name)
	}
	return ""
}

// PathError is one offer's path conflict; Offer is the offer it is reported on.
type PathError struct {
	Offer string
	msg   string
}

func (e *PathError) Error() string { return e.msg }

// PathErrors checks the claims of changed offers against every other claim and the reserved
// paths; each error names both offers and the fix. Claims of offers not in changed are not
// checked against each other (validate does that for the whole repo with every name changed);
// a conflict between two changed offers is reported once.
func PathErrors(claims []Claim, changed map[string]bool) []*PathError {
	sorted := append([]Claim(nil), claims...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var errs []*PathError
	for i, a := range sorted {
		if !changed[a.Name] {
			continue
		}
		if r := ReservedConflict(a.Path); r != "" {
			errs = append(errs, &PathError{a.Name, fmt.Sprintf("spec.path: %s takes %s, which the gateway reserves (%s): give it a path of its own with --path, e.g. /services/%s",
				a, r, strings.Join(ReservedPaths, ", "), a.Name)})
		}
		for j, b := range sorted {
			if i == j || (changed[b.Name] && j < i) {
				continue // each changed pair once
			}
			msg := PathConflict(a, b)
			if msg == "" {
				continue
			}
			// Reported on, and fixed by moving, the offer inside the other when it is one this
			// change touched; else the changed one.
			mover, other := a, b
			if changed[b.Name] && len(strings.TrimRight(b.Path, "/")) > len(strings.TrimRight(a.Path, "/")) {
				mover, other = b, a
			}
			errs = append(errs, &PathError{mover.Name, fmt.Sprintf("spec.path: %s: give %s a path outside %s's with --path (e.g. /services/%s), or delete one of them", msg, mover.Name, other.Name, mover.Name)})
		}
	}
	return errs
}
