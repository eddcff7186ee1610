package render

import (
	"fmt"
	"io/fs"
	"path"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/internal/fluxmanifests"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/settings"
)

// The names Flux's own bootstrap uses, so `flux` commands work on an obol stack as on any other.
const (
	FluxNamespace = "flux-system"
	FluxSource    = "flux-system"
)

// Intervals follow Flux's recommended settings; commits are picked up at once anyway, because
// obol asks the reconciler to fetch right after each commit.
var (
	sourceInterval = metav1.Duration{Duration: time.Minute}
	syncInterval   = metav1.Duration{Duration: 10 * time.Minute}
	retryInterval  = metav1.Duration{Duration: time.Minute}
	applyTimeout   = metav1.Duration{Duration: 5 * time.Minute}
)

// managedLabels mark everything obol renders, so it can be found with one label selector.
func managedLabels(extra map[string]string) map[string]string {
	l := map[string]string{"app.kubernetes.io/managed-by": "obol"}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

func sourceRef() kustomizev1.CrossNamespaceSourceReference {
	return kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: FluxSource}
}

// fluxWiring renders clusters/<stack>/: the sync objects (what flux bootstrap writes) and the
// two root Kustomizations. Infrastructure comes first; applications depend on it, so the
// ServiceOffer CRD exists before any offer.
func fluxWiring(assets fs.FS, st *settings.Stack) (Files, error) {
	dir := layout.ClusterDir(st.Metadata.Name)
	// The pinned Flux components, as `flux bootstrap` writes them: stack up applies them, and
	// the flux-system Kustomization keeps them in step with the repo afterwards.
	components, err := fs.ReadFile(assets, fluxmanifests.ComponentsFile)
	if err != nil {
		return nil, fmt.Errorf("the embedded Flux components: %w", err)
	}
	repo := &sourcev1.GitRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.GitRepositoryKind},
		ObjectMeta: metav1.ObjectMeta{Name: FluxSource, Namespace: FluxNamespace, Labels: managedLabels(nil)},
		Spec: sourcev1.GitRepositorySpec{
			URL:       st.Spec.GitURL,
			Reference: &sourcev1.GitRepositoryRef{Branch: st.Spec.Branch},
			Interval:  sourceInterval,
			Timeout:   &metav1.Duration{Duration: time.Minute},
		},
	}
	if st.Spec.GitSecret != "" {
		repo.Spec.SecretRef = &meta.LocalObjectReference{Name: st.Spec.GitSecret}
	}
	root := kustomization(FluxSource, "./"+dir, nil, false)
	sync, err := manifests(Header, repo, root)
	if err != nil {
		return nil, err
	}
	files := Files{}
	fluxResources := []string{"gotk-components.yaml", "gotk-sync.yaml"}
	if InClusterGitEndpoint(st.Spec.GitURL) {
		b, err := gitEndpoint(st)
		if err != nil {
			return nil, err
		}
		files[path.Join(dir, "flux-system", GitEndpointFile)] = b
		fluxResources = append(fluxResources, GitEndpointFile)
	}
	fluxKs, err := kustomizeFile(Header, fluxResources)
	if err != nil {
		return nil, err
	}
	infra, err := manifests(Header, kustomization("infrastructure", "./"+layout.Infrastructure, nil, true), gatewayHelmChart())
	if err != nil {
		return nil, err
	}
	appsKs := kustomization("applications", "./"+layout.Applications, []string{"infrastructure"}, false)
	// applications/ is applied as an identity that can manage only what slices render.
	appsKs.Spec.ServiceAccountName = ApplicationsServiceAccount
	apps, err := manifests(Header, append([]any{appsKs}, fluxLockdown()...)...)
	if err != nil {
		return nil, err
	}
	files[path.Join(dir, "flux-system", "gotk-components.yaml")] = components
	files[path.Join(dir, "flux-system", "gotk-sync.yaml")] = sync
	files[path.Join(dir, "flux-system", "kustomization.yaml")] = fluxKs
	files[path.Join(dir, "infrastructure.yaml")] = infra
	files[path.Join(dir, "applications.yaml")] = apps
	return files, nil
}

// keepKinds are what may hold a wallet's keys or data: a Secret or PVC committed to the repo
// (SOPS-encrypted, say) is applied like anything else but never pruned, so deleting a file,
// or a slice, by mistake cannot destroy a wallet. Removing one is a deliberate kubectl delete.
var keepKinds = []struct{ apiVersion, kind string }{{"v1", "Secret"}, {"v1", "PersistentVolumeClaim"}}

// keepPatches marks every object of keepKinds the Kustomization applies with
// kustomize.toolkit.fluxcd.io/prune: disabled.
func keepPatches() []kustomize.Patch {
	var out []kustomize.Patch
	for _, k := range keepKinds {
		out = append(out, kustomize.Patch{
			Patch:  fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata:\n  name: not-used\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n", k.apiVersion, k.kind),
			Target: &kustomize.Selector{Kind: k.kind},
		})
	}
	return out
}

// kustomization renders one Flux Kustomization of the stack repo. prune is always on: the repo
// is the whole truth, so what leaves it leaves the cluster. A source that cannot be read makes
// Flux stop, never prune.
func kustomization(name, p string, dependsOn []string, wait bool) *kustomizev1.Kustomization {
	ks := &kustomizev1.Kustomization{
		TypeMeta:   metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: FluxNamespace, Labels: managedLabels(nil)},
		Spec: kustomizev1.KustomizationSpec{
			Interval:      syncInterval,
			RetryInterval: &retryInterval,
			Timeout:       &applyTimeout,
			Path:          p,
			Prune:         true,
			Wait:          wait,
			SourceRef:     sourceRef(),
			Patches:       keepPatches(),
		},
	}
	for _, d := range dependsOn {
		ks.Spec.DependsOn = append(ks.Spec.DependsOn, kustomizev1.DependencyReference{Name: d})
	}
	return ks
}

// GatewayHelmChart is the HelmChart (in clusters/<stack>/infrastructure.yaml) that
// packages the vendored gateway chart once per chart version; every offer's HelmRelease
// installs it through spec.chartRef, so a new offer needs no chart build of its own.
const GatewayHelmChart = "obol-gateway"

// gatewayHelmChart packages the gateway chart vendored in the repo once per chart version
// (reconcileStrategy ChartVersion) for every offer's HelmRelease. It is Flux wiring, so it sits
// beside the infrastructure Kustomization rather than in the engine-neutral infrastructure/.
func gatewayHelmChart() *sourcev1.HelmChart {
	return &sourcev1.HelmChart{
		TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.HelmChartKind},
		ObjectMeta: metav1.ObjectMeta{Name: GatewayHelmChart, Namespace: FluxNamespace, Labels: managedLabels(nil)},
		Spec: sourcev1.HelmChartSpec{
			Chart:             "./" + layout.GatewayChart,
			ReconcileStrategy: sourcev1.ReconcileStrategyChartVersion,
			SourceRef:         sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.GitRepositoryKind, Name: FluxSource},
			Interval:          syncInterval,
		},
	}
}

// helmRelease deploys the shared gateway HelmChart with values from a ConfigMap that the
// slice's kustomization generates. The release lives in flux-system and installs into the
// offer's namespace, creating it, so a slice never has to create a namespace another slice
// might also create.
func helmRelease(name, targetNamespace, helmChart, valuesConfigMap string, labels map[string]string) *helmv2.HelmRelease {
	return &helmv2.HelmRelease{
		TypeMeta:   metav1.TypeMeta{APIVersion: helmv2.GroupVersion.String(), Kind: helmv2.HelmReleaseKind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: FluxNamespace, Labels: managedLabels(labels)},
		Spec: helmv2.HelmReleaseSpec{
			Interval: syncInterval,
			Timeout:  &applyTimeout,
			// Helm's own (legacy) waiter checks every 2s from the start; the default kstatus
			// poller checks every 5s, which put a 5s floor under every install and upgrade.
			WaitStrategy:    &helmv2.WaitStrategy{Name: helmv2.WaitStrategyLegacy},
			ReleaseName:     name,
			TargetNamespace: targetNamespace,
			// Installed as the offers identity (only the chart's kinds), with the release
			// records beside the offer rather than beside Flux's own credentials.
			ServiceAccountName: OffersServiceAccount,
			StorageNamespace:   targetNamespace,
			ChartRef: &helmv2.CrossNamespaceSourceReference{
				Kind:      sourcev1.HelmChartKind,
				Name:      helmChart,
				Namespace: FluxNamespace,
			},
			Install: &helmv2.Install{
				CreateNamespace: true,
				Remediation:     &helmv2.InstallRemediation{Retries: 3},
			},
			Upgrade: &helmv2.Upgrade{
				Remediation: &helmv2.UpgradeRemediation{Retries: 3},
			},
			ValuesFrom: []helmv2.ValuesReference{{Kind: "ConfigMap", Name: valuesConfigMap, ValuesKey: "values.yaml"}},
		},
	}
}
