package render

import (
	"fmt"
	"path"

	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/settings"
)

// Slice file names. offer.yaml is the input; the rest are rendered from it.
const (
	ValuesFile        = "values.yaml"
	HelmReleaseFile   = "helmrelease.yaml"
	KustomizationFile = "kustomization.yaml"
)

// Labels on everything rendered for an offer.
const (
	LabelOffer     = "obol.org/offer"
	LabelOfferType = "obol.org/offer-type"
)

// Values are the gateway chart's values for one offer: the offer itself (the chart renders the
// ServiceOffer from it, so both engines deploy the same object) and the gateway's config.
type Values struct {
	FullnameOverride string                `json:"fullnameOverride"`
	Offer            OfferValues           `json:"offer"`
	Gateway          *gatewayconfig.Config `json:"gateway"`
	Route            RouteValues           `json:"route"`
}

// OfferValues is the ServiceOffer as the chart renders it.
type OfferValues struct {
	Name      string                    `json:"name"`
	Namespace string                    `json:"namespace"`
	Spec      v1alpha1.ServiceOfferSpec `json:"spec"`
}

// RouteValues publishes the offer's path through the Gateway API.
type RouteValues struct {
	Enabled bool   `json:"enabled"`
	Path    string `json:"path"`
}

// ValuesFor derives the chart values of a defaulted, valid offer.
func ValuesFor(o *v1alpha1.ServiceOffer) (*Values, error) {
	gw, err := GatewayConfig(o)
	if err != nil {
		return nil, err
	}
	return &Values{
		FullnameOverride: o.Name,
		Offer:            OfferValues{Name: o.Name, Namespace: o.Namespace, Spec: o.Spec},
		Gateway:          gw,
		Route:            RouteValues{Enabled: true, Path: o.Spec.Path},
	}, nil
}

// Slice renders the files derived from one offer (everything in its slice but offer.yaml).
// The offer must be defaulted and valid.
func Slice(st *settings.Stack, o *v1alpha1.ServiceOffer) (Files, error) {
	dir := layout.SliceDir(o.Spec.Type, o.Name)
	values, err := ValuesFor(o)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", o.Name, err)
	}
	valuesYAML, err := yaml.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("render %s: values: %w", o.Name, err)
	}
	switch st.Spec.Engine {
	case settings.EngineFlux:
	case settings.EngineArgoCD:
		// The ApplicationSet finds the slice by its offer.yaml and deploys the chart with
		// values.yaml: nothing else to render.
		return Files{path.Join(dir, ValuesFile): append([]byte(sliceHeader), valuesYAML...)}, nil
	default:
		return nil, fmt.Errorf("render %s: engine %q has no slice renderer", o.Name, st.Spec.Engine)
	}
	labels := map[string]string{LabelOffer: o.Name, LabelOfferType: string(o.Spec.Type)}
	cm := o.Name + ValuesConfigMapSuffix
	hr, err := manifests(sliceHeader, helmRelease(o.Name, o.Namespace, GatewayHelmChart, cm, labels))
	if err != nil {
		return nil, fmt.Errorf("render %s: helmrelease: %w", o.Name, err)
	}
	k := &kustypes.Kustomization{
		TypeMeta:  kustypes.TypeMeta{APIVersion: kustypes.KustomizationVersion, Kind: kustypes.KustomizationKind},
		Resources: []string{HelmReleaseFile},
		ConfigMapGenerator: []kustypes.ConfigMapArgs{{GeneratorArgs: kustypes.GeneratorArgs{
			Name:          cm,
			Namespace:     FluxNamespace,
			KvPairSources: kustypes.KvPairSources{FileSources: []string{ValuesFile}},
			Options: &kustypes.GeneratorOptions{
				// A fixed name lets the HelmRelease refer to it; the watch label makes
				// helm-controller upgrade as soon as the values change.
				DisableNameSuffixHash: true,
				Labels:                managedLabels(map[string]string{"reconcile.fluxcd.io/watch": "Enabled", LabelOffer: o.Name, LabelOfferType: string(o.Spec.Type)}),
			},
		}}},
	}
	kb, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("render %s: kustomization: %w", o.Name, err)
	}
	return Files{
		path.Join(dir, ValuesFile):        append([]byte(sliceHeader), valuesYAML...),
		path.Join(dir, HelmReleaseFile):   hr,
		path.Join(dir, KustomizationFile): append([]byte(sliceHeader), kb...),
	}, nil
}

// kustomizeFile renders a plain kustomization.yaml listing resources.
func kustomizeFile(header string, resources []string) ([]byte, error) {
	k := &kustypes.Kustomization{
		TypeMeta:  kustypes.TypeMeta{APIVersion: kustypes.KustomizationVersion, Kind: kustypes.KustomizationKind},
		Resources: resources,
	}
	b, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	return append([]byte(header), b...), nil
}
