// Package argocd is a faithful typed subset of Argo CD's argoproj.io/v1alpha1 API: the
// Application, ApplicationSet and AppProject fields obol renders and reads. Argo CD's own Go
// module cannot be required here (it pins k8s.io/kubernetes and modules this registry does not
// serve), so these structs follow its JSON field names, and every object obol renders is checked
// against Argo CD's own CRD schemas, vendored in crds/ (scripts/gen-argocd-crds.sh).
package argocd

import (
	"embed"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CRDs are Argo CD's CustomResourceDefinitions, at the version in crds/VERSION.
//
//go:embed crds/*.yaml crds/VERSION
var CRDs embed.FS

// API group and names.
const (
	Group              = "argoproj.io"
	Version            = "v1alpha1"
	APIVersion         = Group + "/" + Version
	ApplicationKind    = "Application"
	ApplicationSetKind = "ApplicationSet"
	AppProjectKind     = "AppProject"
	// Namespace is where Argo CD watches its Applications by default.
	Namespace = "argocd"
	// InCluster is the destination server of the cluster Argo CD runs in.
	InCluster = "https://kubernetes.default.svc"
	// SyncWave orders resources within one sync: lower waves are applied and Healthy first.
	SyncWave = "argocd.argoproj.io/sync-wave"
	// ResourcesFinalizer makes deleting an Application delete what it deployed.
	ResourcesFinalizer = "resources-finalizer.argocd.argoproj.io"
)

// Application is argoproj.io/v1alpha1 Application.
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ApplicationSpec    `json:"spec"`
	Status            *ApplicationStatus `json:"status,omitempty"`
}

// ApplicationSpec is what to deploy, where, and how to sync it.
type ApplicationSpec struct {
	Source      *ApplicationSource     `json:"source,omitempty"`
	Sources     []ApplicationSource    `json:"sources,omitempty"`
	Destination ApplicationDestination `json:"destination"`
	Project     string                 `json:"project"`
	SyncPolicy  *SyncPolicy            `json:"syncPolicy,omitempty"`
}

// ApplicationSource is one git path (a Helm chart, a kustomization or plain manifests), or a
// ref other sources read value files from ($<ref>/path).
type ApplicationSource struct {
	RepoURL        string                      `json:"repoURL"`
	Path           string                      `json:"path,omitempty"`
	TargetRevision string                      `json:"targetRevision,omitempty"`
	Helm           *ApplicationSourceHelm      `json:"helm,omitempty"`
	Directory      *ApplicationSourceDirectory `json:"directory,omitempty"`
	Ref            string                      `json:"ref,omitempty"`
}

// ApplicationSourceHelm are a Helm source's options.
type ApplicationSourceHelm struct {
	ReleaseName string   `json:"releaseName,omitempty"`
	ValueFiles  []string `json:"valueFiles,omitempty"`
}

// ApplicationSourceDirectory are a plain-manifests source's options.
type ApplicationSourceDirectory struct {
	Recurse bool `json:"recurse,omitempty"`
}

// ApplicationDestination is a cluster and namespace.
type ApplicationDestination struct {
	Server    string `json:"server,omitempty"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// SyncPolicy says when and how Argo CD syncs.
type SyncPolicy struct {
	Automated   *SyncPolicyAutomated `json:"automated,omitempty"`
	SyncOptions []string             `json:"syncOptions,omitempty"`
	Retry       *RetryStrategy       `json:"retry,omitempty"`
}

// SyncPolicyAutomated is automated sync. AllowEmpty is always written: false means a render
// with no resources is refused instead of pruning everything.
type SyncPolicyAutomated struct {
	Prune      bool `json:"prune,omitempty"`
	SelfHeal   bool `json:"selfHeal,omitempty"`
	AllowEmpty bool `json:"allowEmpty"`
}

// RetryStrategy retries failed syncs.
type RetryStrategy struct {
	Limit   int64    `json:"limit,omitempty"`
	Backoff *Backoff `json:"backoff,omitempty"`
}

// Backoff is the retry back-off.
type Backoff struct {
	Duration    string `json:"duration,omitempty"`
	Factor      *int64 `json:"factor,omitempty"`
	MaxDuration string `json:"maxDuration,omitempty"`
}

// ApplicationStatus is the part of the status obol reads.
type ApplicationStatus struct {
	Sync           SyncStatus             `json:"sync,omitempty"`
	Health         HealthStatus           `json:"health,omitempty"`
	OperationState *OperationState        `json:"operationState,omitempty"`
	Conditions     []ApplicationCondition `json:"conditions,omitempty"`
}

// SyncStatus compares the live state with the target revision(s).
type SyncStatus struct {
	Status    string   `json:"status"` // Synced, OutOfSync, Unknown
	Revision  string   `json:"revision,omitempty"`
	Revisions []string `json:"revisions,omitempty"` // multi-source Applications
}

// HealthStatus is the Application's aggregated health.
type HealthStatus struct {
	Status  string `json:"status,omitempty"` // Healthy, Progressing, Degraded, Missing, Suspended, Unknown
	Message string `json:"message,omitempty"`
}

// OperationState is the last or current sync operation.
type OperationState struct {
	Phase   string `json:"phase"` // Running, Succeeded, Failed, Error, Terminating
	Message string `json:"message,omitempty"`
}

// ApplicationCondition is an error or warning Argo CD reports (ComparisonError, ...).
type ApplicationCondition struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// AppProject is argoproj.io/v1alpha1 AppProject: what an Application may deploy, from where, to
// where.
type AppProject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              AppProjectSpec `json:"spec"`
}

// AppProjectSpec is a project's policy.
type AppProjectSpec struct {
	Description                string                   `json:"description,omitempty"`
	SourceRepos                []string                 `json:"sourceRepos,omitempty"`
	Destinations               []ApplicationDestination `json:"destinations,omitempty"`
	ClusterResourceWhitelist   []metav1.GroupKind       `json:"clusterResourceWhitelist,omitempty"`
	NamespaceResourceWhitelist []metav1.GroupKind       `json:"namespaceResourceWhitelist,omitempty"`
}

// ApplicationSet is argoproj.io/v1alpha1 ApplicationSet.
type ApplicationSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ApplicationSetSpec `json:"spec"`
}

// ApplicationSetSpec generates Applications from a template.
type ApplicationSetSpec struct {
	GoTemplate        bool                      `json:"goTemplate,omitempty"`
	GoTemplateOptions []string                  `json:"goTemplateOptions,omitempty"`
	Generators        []ApplicationSetGenerator `json:"generators"`
	Template          ApplicationSetTemplate    `json:"template"`
	SyncPolicy        *ApplicationSetSyncPolicy `json:"syncPolicy,omitempty"`
}

// ApplicationSetGenerator is one generator; obol uses the git generator.
type ApplicationSetGenerator struct {
	Git *GitGenerator `json:"git,omitempty"`
}

// GitGenerator makes one parameter set per matching file (files) or directory.
type GitGenerator struct {
	RepoURL  string                 `json:"repoURL"`
	Revision string                 `json:"revision"`
	Files    []GitFileGeneratorItem `json:"files,omitempty"`
}

// GitFileGeneratorItem is a glob of files whose YAML/JSON fields become parameters.
type GitFileGeneratorItem struct {
	Path string `json:"path"`
}

// ApplicationSetTemplate is the Application every parameter set is rendered into.
type ApplicationSetTemplate struct {
	ApplicationSetTemplateMeta `json:"metadata"`
	Spec                       ApplicationSpec `json:"spec"`
}

// ApplicationSetTemplateMeta is the generated Application's metadata.
type ApplicationSetTemplateMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Finalizers  []string          `json:"finalizers,omitempty"`
}

// ApplicationSetSyncPolicy controls what the ApplicationSet controller may do to the
// Applications it generated.
type ApplicationSetSyncPolicy struct {
	PreserveResourcesOnDeletion bool `json:"preserveResourcesOnDeletion,omitempty"`
}
