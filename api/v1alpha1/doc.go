// Package v1alpha1 holds obol's API types: the ServiceOffer (the one declarative format of an
// offer, stored as offer.yaml in its slice) and the Stack settings (obol.yaml at the root of a
// stack repo).
//
// The ServiceOffer keeps the predecessor's field names so offers and tooling carry over; the
// CRD under templates/ is generated from these types (make generate) and a test fails when
// they disagree.
//
// +kubebuilder:object:generate=true
// +groupName=obol.org
package v1alpha1

import "k8s.io/apimachinery/pkg/runtime/schema"

const (
	// Group is the API group of obol's kinds.
	Group = "obol.org"
	// Version is the API version of obol's kinds.
	Version = "v1alpha1"
	// ServiceOfferKind is the kind of an offer.
	ServiceOfferKind = "ServiceOffer"
	// StackKind is the kind of the stack settings file (obol.yaml).
	StackKind = "Stack"
)

// GroupVersion is obol.org/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// APIVersion is "obol.org/v1alpha1", as written in manifests.
var APIVersion = GroupVersion.String()
