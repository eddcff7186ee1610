// Package offer is the ServiceOffer as obol reads and writes it: the defaults an offer gets
// (Default), the rules it must satisfy (Validate), and the offer.yaml codec (Decode, Encode).
//
// The intended order is Decode, Default, Validate: Decode is strict about syntax and shape,
// Default fills what may be omitted, and Validate reports every semantic problem at once, each
// with a concrete fix.
package offer

import (
	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/chains"
)

const (
	// DefaultFacilitator is the x402 facilitator an offer uses unless it names one (the
	// predecessor's default, Obol-run).
	DefaultFacilitator = "https://x402.gcp.obol.tech"
	// DefaultChain is the payment network an offer uses unless it names one.
	DefaultChain = "base"
	// DefaultScheme is the only x402 scheme obol sells with.
	DefaultScheme = "exact"
	// DefaultMaxTimeoutSeconds is how long a payment authorization may take by default.
	DefaultMaxTimeoutSeconds = 300
	// DefaultHTTPPort is the upstream port of an http offer.
	DefaultHTTPPort = 8080
	// DefaultHealthPath is the upstream health path of an http offer.
	DefaultHealthPath = "/health"
	// DefaultInferenceNamespace is the namespace of inference offers.
	DefaultInferenceNamespace = "llm"
	// DefaultRuntime is the serving runtime of an inference offer.
	DefaultRuntime = "ollama"
	// PathPrefix is the prefix of an offer's default public path, /services/<name>.
	PathPrefix = "/services/"
)

// Default fills the fields an offer may omit. It never overwrites a value that is set, except
// that a payment network given by alias or CAIP-2 id becomes the chain's canonical name
// (eip155:84532 -> base-sepolia); an unknown network is kept as is for Validate to report.
// Default is idempotent.
//
// It fills: apiVersion and kind; spec.type (http); spec.payment.scheme (exact),
// maxTimeoutSeconds (300), network (DefaultChain when empty), facilitator
// (DefaultFacilitator); spec.path (/services/<name>); for http offers the upstream's namespace
// (metadata.namespace), port (8080) and healthPath (/health); for inference offers
// metadata.namespace (llm) and model.runtime (ollama).
func Default(o *v1alpha1.ServiceOffer) {
	if o == nil {
		return
	}
	if o.APIVersion == "" {
		o.APIVersion = v1alpha1.APIVersion
	}
	if o.Kind == "" {
		o.Kind = v1alpha1.ServiceOfferKind
	}
	s := &o.Spec
	if s.Type == "" {
		s.Type = v1alpha1.OfferTypeHTTP
	}

	p := &s.Payment
	if p.Scheme == "" {
		p.Scheme = DefaultScheme
	}
	if p.MaxTimeoutSeconds == 0 {
		p.MaxTimeoutSeconds = DefaultMaxTimeoutSeconds
	}
	if p.Network == "" {
		p.Network = DefaultChain
	}
	if c, ok := chains.Lookup(p.Network); ok {
		p.Network = c.Name
	}
	if p.Facilitator == "" {
		p.Facilitator = DefaultFacilitator
	}

	switch s.Type {
	case v1alpha1.OfferTypeHTTP:
		if s.Upstream == nil {
			s.Upstream = &v1alpha1.UpstreamSpec{}
		}
		u := s.Upstream
		if u.URL != "" {
			// An API outside the cluster: no Service to default, and no health path to probe
			// unless the seller names one (a readiness probe would poll a third party).
			break
		}
		if u.Namespace == "" {
			u.Namespace = o.Namespace
		}
		if u.Port == 0 {
			u.Port = DefaultHTTPPort
		}
		if u.HealthPath == "" {
			u.HealthPath = DefaultHealthPath
		}
	case v1alpha1.OfferTypeInference:
		if o.Namespace == "" {
			o.Namespace = DefaultInferenceNamespace
		}
		if s.Model != nil && s.Model.Runtime == "" {
			s.Model.Runtime = DefaultRuntime
		}
	}

	if s.Path == "" && o.Name != "" {
		s.Path = PathPrefix + o.Name
	}
}

// defaulted returns a defaulted copy of o, leaving o untouched. Default only writes the
// top-level fields of o and the Upstream and Model structs, so those are the parts copied.
func defaulted(o *v1alpha1.ServiceOffer) *v1alpha1.ServiceOffer {
	c := *o
	if o.Spec.Upstream != nil {
		u := *o.Spec.Upstream
		c.Spec.Upstream = &u
	}
	if o.Spec.Model != nil {
		m := *o.Spec.Model
		c.Spec.Model = &m
	}
	Default(&c)
	return &c
}
