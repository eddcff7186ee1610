package render

import (
	"fmt"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/argocd"
)

// What the repo's applications/ may apply, and as whom. Flux's multi-tenancy lockdown is the
// model: the applications Kustomization impersonates a service account that can manage only
// what slices render (HelmReleases and their values ConfigMaps, in flux-system), and every
// offer's HelmRelease impersonates one that can manage only what the gateway chart renders.
// RBAC cannot say "only HelmReleases of the gateway chart", so an admission policy says it:
// whatever the applications identity writes must look like a slice's own rendering.
const (
	// ApplicationsServiceAccount is the identity kustomize-controller applies applications/ as.
	ApplicationsServiceAccount = "obol-applications"
	// OffersServiceAccount is the identity helm-controller installs every offer's chart as.
	OffersServiceAccount = "obol-offers"
	// ValuesConfigMapSuffix names the ConfigMap a slice generates from its values.yaml.
	ValuesConfigMapSuffix = "-gateway-values"
	// ArgoOffersProjectSuffix names the AppProject every offer's Application belongs to.
	ArgoOffersProjectSuffix = "-offers"
)

// ReservedNamespaces are the namespaces the stack (or Kubernetes, or a reconciler) owns. An
// offer installed into one would put its chart's objects beside the stack's own, where a name
// collision replaces them, so no offer may use one.
func ReservedNamespaces() []string {
	ns := []string{"kube-system", "kube-public", "kube-node-lease", FluxNamespace, argocd.Namespace, GitEndpointNamespace, EdgeNamespace}
	sort.Strings(ns)
	return ns
}

// OfferKinds are the kinds the gateway chart renders into an offer's namespace: all an offer's
// chart may create, by either engine.
var OfferKinds = []metav1.GroupKind{
	{Group: "", Kind: "ConfigMap"},
	{Group: "", Kind: "Service"},
	{Group: "apps", Kind: "Deployment"},
	{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"},
	{Group: v1alpha1.Group, Kind: "ServiceOffer"},
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

var rw = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// fluxLockdown renders the identities and the policy of applications/ (into
// clusters/<stack>/applications.yaml, applied by the flux-system Kustomization as Flux itself).
func fluxLockdown() []any {
	labels := managedLabels(nil)
	meta := func(name, ns string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	}
	appsSA := &corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(ApplicationsServiceAccount, FluxNamespace)}
	appsRole := &rbacv1.Role{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "Role"),
		ObjectMeta: meta(ApplicationsServiceAccount, FluxNamespace),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"helm.toolkit.fluxcd.io"}, Resources: []string{"helmreleases"}, Verbs: rw},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: rw},
		},
	}
	appsBinding := &rbacv1.RoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"),
		ObjectMeta: meta(ApplicationsServiceAccount, FluxNamespace),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: appsRole.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: appsSA.Name, Namespace: FluxNamespace}},
	}
	offersSA := &corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(OffersServiceAccount, FluxNamespace)}
	offersRole := &rbacv1.ClusterRole{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
		ObjectMeta: metav1.ObjectMeta{Name: OffersServiceAccount, Labels: labels},
		Rules: []rbacv1.PolicyRule{
			// Install.CreateNamespace (Helm applies it server-side); Helm never deletes one.
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update"}},
			// Helm's release records live in the offer's namespace (spec.storageNamespace).
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: rw},
			// What Helm's waiter reads to tell a rollout is done.
			{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
	for _, gk := range OfferKinds {
		offersRole.Rules = append(offersRole.Rules, rbacv1.PolicyRule{APIGroups: []string{gk.Group}, Resources: []string{resourceOf(gk.Kind)}, Verbs: rw})
	}
	offersBinding := &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: OffersServiceAccount, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: offersRole.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: offersSA.Name, Namespace: FluxNamespace}},
	}
	policy, binding := applicationsPolicy()
	return []any{appsSA, appsRole, appsBinding, offersSA, offersRole, offersBinding, policy, binding}
}

// resourceOf is the plural resource name of the kinds in OfferKinds.
func resourceOf(kind string) string { return strings.ToLower(kind) + "s" }

// applicationsPolicy is the admission policy for what the applications identity writes: only
// objects labelled as an offer's, HelmReleases only of the shared gateway chart, installed as
// the offers identity into a namespace the stack does not own, and values ConfigMaps.
func applicationsPolicy() (*admissionv1.ValidatingAdmissionPolicy, *admissionv1.ValidatingAdmissionPolicyBinding) {
	name := ApplicationsServiceAccount
	user := "system:serviceaccount:" + FluxNamespace + ":" + ApplicationsServiceAccount
	quoted := make([]string, 0, len(ReservedNamespaces()))
	for _, ns := range ReservedNamespaces() {
		quoted = append(quoted, "'"+ns+"'")
	}
	reserved := "[" + strings.Join(quoted, ", ") + "]"
	ops := []admissionv1.OperationType{admissionv1.Create, admissionv1.Update, admissionv1.Delete}
	fail := admissionv1.Fail
	hr := "request.operation != 'DELETE' && request.kind.kind == 'HelmRelease'"
	offerLabel := "'" + LabelOffer + "'"
	policy := &admissionv1.ValidatingAdmissionPolicy{
		TypeMeta:   typeMeta("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: managedLabels(nil)},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{
				{RuleWithOperations: admissionv1.RuleWithOperations{Operations: ops, Rule: admissionv1.Rule{
					APIGroups: []string{"helm.toolkit.fluxcd.io"}, APIVersions: []string{"*"}, Resources: []string{"helmreleases"}}}},
				{RuleWithOperations: admissionv1.RuleWithOperations{Operations: ops, Rule: admissionv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
			}},
			MatchConditions: []admissionv1.MatchCondition{{Name: "applied-from-applications", Expression: "request.userInfo.username == '" + user + "'"}},
			Validations: []admissionv1.Validation{
				{
					Expression: "oldObject == null || (has(oldObject.metadata.labels) && " + offerLabel + " in oldObject.metadata.labels)",
					Message:    "applications/ may change or delete only an offer's own objects (labelled " + LabelOffer + ")",
				},
				{
					Expression: "object == null || (has(object.metadata.labels) && " + offerLabel + " in object.metadata.labels)",
					Message:    "applications/ may apply only what a slice renders (objects labelled " + LabelOffer + ")",
				},
				{
					Expression: "object == null || request.kind.kind != 'ConfigMap' || object.metadata.name.endsWith('" + ValuesConfigMapSuffix + "')",
					Message:    "a slice's ConfigMap is its values: <offer>" + ValuesConfigMapSuffix,
				},
				{
					Expression: "!(" + hr + ") || (has(object.spec.chartRef) && !has(object.spec.chart) && object.spec.chartRef.kind == 'HelmChart' && object.spec.chartRef.name == '" + GatewayHelmChart + "' && has(object.spec.chartRef.namespace) && object.spec.chartRef.namespace == '" + FluxNamespace + "')",
					Message:    "an offer's HelmRelease installs the stack's gateway chart (chartRef HelmChart " + FluxNamespace + "/" + GatewayHelmChart + ") and nothing else",
				},
				{
					Expression: "!(" + hr + ") || (has(object.spec.serviceAccountName) && object.spec.serviceAccountName == '" + OffersServiceAccount + "' && !has(object.spec.kubeConfig) && !has(object.spec.postRenderers))",
					Message:    "an offer's HelmRelease runs as " + OffersServiceAccount + ", in this cluster, without post-renderers",
				},
				{
					Expression: "!(" + hr + ") || (has(object.spec.targetNamespace) && !(object.spec.targetNamespace in " + reserved + ") && has(object.spec.storageNamespace) && object.spec.storageNamespace == object.spec.targetNamespace)",
					Message:    "an offer installs into a namespace of its own, not one the stack owns " + reserved + ", and keeps its release there",
				},
			},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   typeMeta("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: managedLabels(nil)},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	return policy, binding
}

// ObjectID names one object: group/kind, namespace and name.
type ObjectID struct {
	Group, Kind, Namespace, Name string
}

func (id ObjectID) String() string {
	k := id.Kind
	if id.Group != "" {
		k += "." + id.Group
	}
	if id.Namespace == "" {
		return k + "/" + id.Name
	}
	return k + "/" + id.Namespace + "/" + id.Name
}

// StackObjects are the objects the stack's own wiring creates that an offer's objects could
// collide with: the reconciler objects beside which offers' objects live (flux-system for Flux,
// argocd for Argo CD). Offers' chart objects live in namespaces of their own (ReservedNamespaces
// keeps them out of the stack's). TestStackObjectsListsTheWiring keeps this in step with the
// rendering.
func StackObjects(stack, engine string) []ObjectID {
	if engine == "argocd" {
		root, project, infra, offers := ArgoNames(stack)
		return []ObjectID{
			{Group: "argoproj.io", Kind: "Application", Namespace: argocd.Namespace, Name: root},
			{Group: "argoproj.io", Kind: "Application", Namespace: argocd.Namespace, Name: infra},
			{Group: "argoproj.io", Kind: "AppProject", Namespace: argocd.Namespace, Name: project},
			{Group: "argoproj.io", Kind: "AppProject", Namespace: argocd.Namespace, Name: project + ArgoOffersProjectSuffix},
			{Group: "argoproj.io", Kind: "ApplicationSet", Namespace: argocd.Namespace, Name: offers},
		}
	}
	out := []ObjectID{
		{Group: "source.toolkit.fluxcd.io", Kind: "GitRepository", Namespace: FluxNamespace, Name: FluxSource},
		{Group: "source.toolkit.fluxcd.io", Kind: "HelmChart", Namespace: FluxNamespace, Name: GatewayHelmChart},
		{Group: "", Kind: "ServiceAccount", Namespace: FluxNamespace, Name: ApplicationsServiceAccount},
		{Group: "", Kind: "ServiceAccount", Namespace: FluxNamespace, Name: OffersServiceAccount},
		{Group: "rbac.authorization.k8s.io", Kind: "Role", Namespace: FluxNamespace, Name: ApplicationsServiceAccount},
		{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding", Namespace: FluxNamespace, Name: ApplicationsServiceAccount},
	}
	for _, ks := range []string{FluxSource, "infrastructure", "applications"} {
		out = append(out, ObjectID{Group: "kustomize.toolkit.fluxcd.io", Kind: "Kustomization", Namespace: FluxNamespace, Name: ks})
	}
	return out
}

// OfferObjects are the objects an offer's slice makes its reconciler create beside the stack's
// wiring (in flux-system or argocd).
func OfferObjects(engine, name string) []ObjectID {
	if engine == "argocd" {
		return []ObjectID{{Group: "argoproj.io", Kind: "Application", Namespace: argocd.Namespace, Name: name}}
	}
	return []ObjectID{
		{Group: "helm.toolkit.fluxcd.io", Kind: "HelmRelease", Namespace: FluxNamespace, Name: name},
		{Group: "", Kind: "ConfigMap", Namespace: FluxNamespace, Name: name + ValuesConfigMapSuffix},
	}
}

// Collision is an offer whose objects would be the stack's own.
type Collision struct {
	Field, Value, Problem, Fix string
}

func (c Collision) Error() string {
	return fmt.Sprintf("%s: %q %s: %s", c.Field, c.Value, c.Problem, c.Fix)
}

// Collisions reports what of an offer (its name, its namespace) collides with an object the
// stack owns, for the stack's engine. Nothing: no collision.
func Collisions(stack, engine, name, namespace string) []Collision {
	var out []Collision
	for _, ns := range ReservedNamespaces() {
		if namespace == ns {
			out = append(out, Collision{Field: "metadata.namespace", Value: namespace,
				Problem: "is a namespace the stack or Kubernetes owns (" + strings.Join(ReservedNamespaces(), ", ") + ")",
				Fix:     "install the offer into a namespace of its own, e.g. --namespace " + name})
		}
	}
	owned := map[ObjectID]bool{}
	for _, id := range StackObjects(stack, engine) {
		owned[id] = true
	}
	for _, id := range OfferObjects(engine, name) {
		if owned[id] {
			out = append(out, Collision{Field: "metadata.name", Value: name,
				Problem: "would be the stack's own " + id.String() + ", which the offer would replace (and its prune delete the stack)",
				Fix:     "choose another offer name"})
			break
		}
	}
	return out
}
