package render

import (
	"path"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/internal/argocd"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/settings"
)

// Argo CD wiring, under clusters/<stack>/: root.yaml is the app of apps `obol stack up`
// applies; it syncs clusters/<stack>/argocd/, which holds the AppProject, the infrastructure
// Application (CRDs, sync wave -1) and the ApplicationSet that finds every slice itself (wave
// 0). Adding an offer writes only its own directory.
const (
	ArgoRootFile   = "root.yaml"
	ArgoDir        = "argocd"
	ArgoOffersGlob = "applications/sell-%s/*/offer.yaml"
)

// ArgoNames are the Argo CD objects of a stack.
func ArgoNames(stack string) (root, project, infrastructure, offers string) {
	return "obol-" + stack, "obol-" + stack, "obol-" + stack + "-infrastructure", "obol-" + stack + "-offers"
}

// argoSync is every obol Application's sync policy: automated, pruning, self-healing, never
// syncing an empty render (a source that reads as empty must not delete offers), retried.
func argoSync(options ...string) *argocd.SyncPolicy {
	factor := int64(2)
	return &argocd.SyncPolicy{
		Automated:   &argocd.SyncPolicyAutomated{Prune: true, SelfHeal: true, AllowEmpty: false},
		SyncOptions: options,
		Retry:       &argocd.RetryStrategy{Limit: 5, Backoff: &argocd.Backoff{Duration: "5s", Factor: &factor, MaxDuration: "3m"}},
	}
}

func argoMeta(name, wave string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Namespace: argocd.Namespace, Labels: managedLabels(nil)}
	if wave != "" {
		m.Annotations = map[string]string{argocd.SyncWave: wave}
	}
	return m
}

func argoWiring(st *settings.Stack) (Files, error) {
	dir := layout.ClusterDir(st.Metadata.Name)
	rootName, projectName, infraName, offersName := ArgoNames(st.Metadata.Name)
	repo, rev := st.Spec.GitURL, st.Spec.Branch
	tm := func(kind string) metav1.TypeMeta { return metav1.TypeMeta{APIVersion: argocd.APIVersion, Kind: kind} }

	root := &argocd.Application{
		TypeMeta:   tm(argocd.ApplicationKind),
		ObjectMeta: argoMeta(rootName, ""),
		Spec: argocd.ApplicationSpec{
			// The root lives in the default project: it creates the stack's project.
			Project:     "default",
			Source:      &argocd.ApplicationSource{RepoURL: repo, TargetRevision: rev, Path: path.Join(dir, ArgoDir)},
			Destination: argocd.ApplicationDestination{Server: argocd.InCluster, Namespace: argocd.Namespace},
			SyncPolicy:  argoSync(),
		},
	}
	project := &argocd.AppProject{
		TypeMeta:   tm(argocd.AppProjectKind),
		ObjectMeta: argoMeta(projectName, "-2"),
		Spec: argocd.AppProjectSpec{
			Description:  "obol stack " + st.Metadata.Name + ": its infrastructure and offers, from its stack repo only",
			SourceRepos:  []string{repo},
			Destinations: []argocd.ApplicationDestination{{Server: argocd.InCluster, Namespace: "*"}},
			// CRDs and the edge (infrastructure: Traefik's ClusterRole and binding, the
			// GatewayClass) and the offers' Namespaces (CreateNamespace).
			ClusterResourceWhitelist: []metav1.GroupKind{
				{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}, {Group: "", Kind: "Namespace"},
				{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"},
				{Group: "gateway.networking.k8s.io", Kind: "GatewayClass"},
			},
			NamespaceResourceWhitelist: []metav1.GroupKind{{Group: "*", Kind: "*"}},
		},
	}
	// Offers belong to a project of their own: only the gateway chart's kinds, into namespaces
	// the stack does not own, from the stack repo. A slice cannot widen it.
	offersProject := &argocd.AppProject{
		TypeMeta:   tm(argocd.AppProjectKind),
		ObjectMeta: argoMeta(projectName+ArgoOffersProjectSuffix, "-2"),
		Spec: argocd.AppProjectSpec{
			Description:                "obol stack " + st.Metadata.Name + ": its offers, each the gateway chart with a slice's values",
			SourceRepos:                []string{repo},
			Destinations:               offerDestinations(),
			ClusterResourceWhitelist:   []metav1.GroupKind{{Group: "", Kind: "Namespace"}},
			NamespaceResourceWhitelist: OfferKinds,
		},
	}
	infra := &argocd.Application{
		TypeMeta:   tm(argocd.ApplicationKind),
		ObjectMeta: argoMeta(infraName, "-1"),
		Spec: argocd.ApplicationSpec{
			Project:     projectName,
			Source:      &argocd.ApplicationSource{RepoURL: repo, TargetRevision: rev, Path: layout.Infrastructure},
			Destination: argocd.ApplicationDestination{Server: argocd.InCluster},
			// The Gateway API CRDs exceed the 256 KiB last-applied annotation of client-side apply.
			SyncPolicy: argoSync("ServerSideApply=true"),
		},
	}
	var files []argocd.GitFileGeneratorItem
	for _, t := range []string{"http", "inference"} {
		files = append(files, argocd.GitFileGeneratorItem{Path: path.Join(layout.Applications, "sell-"+t, "*", "offer.yaml")})
	}
	offers := &argocd.ApplicationSet{
		TypeMeta:   tm(argocd.ApplicationSetKind),
		ObjectMeta: argoMeta(offersName, "0"),
		Spec: argocd.ApplicationSetSpec{
			GoTemplate:        true,
			GoTemplateOptions: []string{"missingkey=error"},
			Generators:        []argocd.ApplicationSetGenerator{{Git: &argocd.GitGenerator{RepoURL: repo, Revision: rev, Files: files}}},
			Template: argocd.ApplicationSetTemplate{
				ApplicationSetTemplateMeta: argocd.ApplicationSetTemplateMeta{
					Name:   "{{ .metadata.name }}",
					Labels: managedLabels(map[string]string{LabelOffer: "{{ .metadata.name }}", LabelOfferType: "{{ .spec.type }}"}),
					// Deleting an offer's slice deletes its Application, and with this finalizer
					// what it deployed, as Flux prunes a removed HelmRelease. A source that cannot
					// be read makes the generator fail, which deletes nothing.
					Finalizers: []string{argocd.ResourcesFinalizer},
				},
				Spec: argocd.ApplicationSpec{
					Project: projectName + ArgoOffersProjectSuffix,
					// The vendored chart with the slice's values.yaml (rendered from its offer.yaml).
					Sources: []argocd.ApplicationSource{
						{RepoURL: repo, TargetRevision: rev, Path: layout.GatewayChart, Helm: &argocd.ApplicationSourceHelm{
							ReleaseName: "{{ .metadata.name }}",
							ValueFiles:  []string{"$values/{{ .path.path }}/" + ValuesFile},
						}},
						{RepoURL: repo, TargetRevision: rev, Ref: "values"},
					},
					Destination: argocd.ApplicationDestination{Server: argocd.InCluster, Namespace: "{{ .metadata.namespace }}"},
					SyncPolicy:  argoSync("CreateNamespace=true"),
				},
			},
		},
	}
	rootB, err := manifests(Header, root)
	if err != nil {
		return nil, err
	}
	out := Files{path.Join(dir, ArgoRootFile): rootB}
	if InClusterGitEndpoint(st.Spec.GitURL) {
		// stack up applies it with root.yaml; the root Application keeps it in step after.
		b, err := gitEndpoint(st)
		if err != nil {
			return nil, err
		}
		out[path.Join(dir, ArgoDir, GitEndpointFile)] = b
	}
	for name, obj := range map[string]any{"project.yaml": project, "offers-project.yaml": offersProject, "infrastructure.yaml": infra, "offers.yaml": offers} {
		b, err := manifests(Header, obj)
		if err != nil {
			return nil, err
		}
		out[path.Join(dir, ArgoDir, name)] = b
	}
	return out, nil
}

// offerDestinations allow every namespace of the cluster but the reserved ones (Argo CD's
// "!namespace" entries deny).
func offerDestinations() []argocd.ApplicationDestination {
	var out []argocd.ApplicationDestination
	for _, ns := range ReservedNamespaces() {
		out = append(out, argocd.ApplicationDestination{Server: argocd.InCluster, Namespace: "!" + ns})
	}
	return append(out, argocd.ApplicationDestination{Server: argocd.InCluster, Namespace: "*"})
}
