// Package layout names the paths of a stack repo. It is the one place that knows where things
// live, so the renderer, the commands and the validator agree.
package layout

import (
	"path"
	"strings"

	"github.com/obol/obol/api/v1alpha1"
)

// Fixed paths of a stack repo.
const (
	Applications   = "applications"
	Infrastructure = "infrastructure"
	Charts         = "charts"
	GatewayChart   = "charts/obol-gateway"
	OfferFile      = "offer.yaml"
)

// Kinds lists the offer types that have slices, in display order.
var Kinds = []v1alpha1.OfferType{v1alpha1.OfferTypeHTTP, v1alpha1.OfferTypeInference}

// KindDir is the directory holding every slice of one offer type: applications/sell-http.
func KindDir(t v1alpha1.OfferType) string { return path.Join(Applications, "sell-"+string(t)) }

// SliceDir is the directory of one offer: applications/sell-http/<name>.
func SliceDir(t v1alpha1.OfferType, name string) string { return path.Join(KindDir(t), name) }

// OfferPath is the path of an offer's source of truth.
func OfferPath(t v1alpha1.OfferType, name string) string {
	return path.Join(SliceDir(t, name), OfferFile)
}

// ClusterDir is the reconciler wiring of a stack: clusters/<stack>.
func ClusterDir(stack string) string { return path.Join("clusters", stack) }

// Unit is the part of the repo a path belongs to for conflict detection between writers: the
// slice directory for a path inside one (offer is then the offer's name), else the path itself.
// Two writers conflict only when they change the same unit.
func Unit(p string) (unit, offer string) {
	for _, t := range Kinds {
		rest, ok := strings.CutPrefix(p, KindDir(t)+"/")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "/")
		return SliceDir(t, name), name
	}
	return p, ""
}
