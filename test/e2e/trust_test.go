package e2e

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	obol "github.com/obol/obol"

	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/render"
)

// strayManifestsRefused pushes, bypassing obol, the two attacks of a stack repo's pusher: a
// ClusterRoleBinding to cluster-admin beside the slices and a privileged hostPID Pod in a
// directory of its own. validate refuses them first; the cluster refuses them for the
// applications Kustomization's identity, and neither object exists. Then, as that identity,
// the admission policy refuses a HelmRelease that is no slice's rendering. Removing the files
// lets the Kustomization converge again.
func strayManifestsRefused(t *testing.T, h *harness, wait []string) {
	t.Helper()
	ctx := context.Background()
	files := map[string]string{
		"applications/sell-http/evil.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: evil\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: ServiceAccount\n  name: default\n  namespace: default\n",
		"applications/notes/x.yaml":        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: evil\n  namespace: default\nspec:\n  hostPID: true\n  containers:\n  - name: x\n    image: ghcr.io/obol/obol-gateway:0.1.0\n    securityContext:\n      privileged: true\n",
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", h.repo, "-c", "user.name=e2e", "-c", "user.email=e2e@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for p, c := range files {
		full := filepath.Join(h.repo, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", p)
	}
	git("commit", "-q", "-m", "stray manifests")

	r := h.obol("validate")
	for p := range files {
		if r.code != 1 || !strings.Contains(r.out, p) {
			t.Errorf("validate with %s: exit %d\n%s%s", p, r.code, r.out, r.err)
		}
	}
	start := time.Now()
	r = h.obol(append([]string{"stack", "up"}, wait...)...)
	t.Logf("stack up --wait with stray manifests: exit %d after %.1fs\n%s", r.code, time.Since(start).Seconds(), lastLine(r.err))
	want := `User "system:serviceaccount:flux-system:` + render.ApplicationsServiceAccount + `" cannot`
	if r.code == 0 || !strings.Contains(r.err+r.out, "forbidden") {
		t.Errorf("stack up --wait: exit %d, want the applications Kustomization refused\n%s%s", r.code, r.out, r.err)
	}
	var ks kustomizev1.Kustomization
	h.get(t, "flux-system", "applications", &ks)
	if c := apimeta.FindStatusCondition(ks.Status.Conditions, "Ready"); c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, want) {
		t.Errorf("Kustomization applications: Ready %+v, want False with %q", c, want)
	}
	if err := h.cl.Kube.Get(ctx, client.ObjectKey{Name: "evil"}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRoleBinding evil: %v, want NotFound", err)
	}
	if err := h.cl.Kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "evil"}, &corev1.Pod{}); !apierrors.IsNotFound(err) {
		t.Errorf("Pod default/evil: %v, want NotFound", err)
	}

	// As the applications identity, directly: RBAC refuses other kinds, the admission policy a
	// HelmRelease that would run as helm-controller or install another chart.
	as := rest.CopyConfig(h.cl.REST)
	as.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:flux-system:" + render.ApplicationsServiceAccount}
	apps, err := client.New(as, client.Options{Scheme: cluster.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "evil"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "default"}}}
	if err := apps.Create(ctx, crb, client.DryRunAll); !apierrors.IsForbidden(err) {
		t.Errorf("ClusterRoleBinding as %s: %v, want Forbidden", render.ApplicationsServiceAccount, err)
	}
	var hr helmv2.HelmRelease
	h.get(t, "flux-system", "api-00", &hr)
	for name, mutate := range map[string]func(*helmv2.HelmRelease){
		"runs as helm-controller": func(x *helmv2.HelmRelease) { x.Spec.ServiceAccountName = "helm-controller" },
		"installs into kube-system": func(x *helmv2.HelmRelease) {
			x.Spec.TargetNamespace, x.Spec.StorageNamespace = "kube-system", "kube-system"
		},
		"installs another chart": func(x *helmv2.HelmRelease) { x.Spec.ChartRef.Name = "other" },
		"has no offer label":     func(x *helmv2.HelmRelease) { delete(x.Labels, render.LabelOffer) },
	} {
		x := &helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "evil-hr", Namespace: "flux-system", Labels: map[string]string{}}, Spec: *hr.Spec.DeepCopy()}
		for k, v := range hr.Labels {
			x.Labels[k] = v
		}
		mutate(x)
		err := apps.Create(ctx, x, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+render.ApplicationsServiceAccount+"'") {
			t.Errorf("a HelmRelease that %s, as %s: %v, want the admission policy's refusal", name, render.ApplicationsServiceAccount, err)
		}
	}
	// The slice's own HelmRelease passes (a dry-run update of api-00 as itself).
	same := hr.DeepCopy()
	same.ManagedFields = nil
	if err := apps.Update(ctx, same, client.DryRunAll); err != nil {
		t.Errorf("the slice's own HelmRelease as %s: %v", render.ApplicationsServiceAccount, err)
	}

	for p := range files {
		git("rm", "-q", p)
	}
	git("commit", "-q", "-m", "remove the stray manifests")
	h.must(t, append([]string{"stack", "up"}, wait...)...)
}

// foreignFluxRefused: on a cluster whose Flux already syncs another repo through
// flux-system/flux-system (as `flux bootstrap` leaves it), stack up refuses, naming the object
// and --adopt, and changes nothing; with --adopt it takes the stack over.
func foreignFluxRefused(t *testing.T, h *harness, up []string) {
	t.Helper()
	ctx := context.Background()
	b, err := fs.ReadFile(obol.Assets(), "clusters/flux-system/crds/source.toolkit.fluxcd.io_gitrepositories.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(b, crd); err != nil {
		t.Fatal(err)
	}
	if err := h.cl.Kube.Create(ctx, crd); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the GitRepository CRD to be Established", func() bool {
		h.get(t, "", crd.Name, crd)
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true
			}
		}
		return false
	})
	if err := h.cl.Kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	theirs := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "flux-system", Namespace: "flux-system"},
		Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/acme/fleet", Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}
	if err := h.cl.Kube.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	r := h.obol(up...)
	if r.code == 0 || !strings.Contains(r.err, "GitRepository flux-system/flux-system (syncing https://github.com/acme/fleet)") || !strings.Contains(r.err, "--adopt") {
		t.Fatalf("stack up over a foreign Flux sync: exit %d\n%s%s", r.code, r.out, r.err)
	}
	h.get(t, "flux-system", "flux-system", theirs)
	if theirs.Spec.URL != "https://github.com/acme/fleet" {
		t.Fatalf("the refused stack up changed the GitRepository: %s", theirs.Spec.URL)
	}
	h.must(t, append(up, "--adopt")...)
	h.get(t, "flux-system", "flux-system", theirs)
	if theirs.Spec.URL == "https://github.com/acme/fleet" {
		t.Fatal("stack up --adopt did not take the GitRepository over")
	}
}
