package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/obol/obol/internal/argocd"
)

// Argo CD's annotations that make its controllers look at git now instead of at their next
// poll (3 minutes by default).
const (
	argoRefresh    = "argocd.argoproj.io/refresh"
	argoSetRefresh = "argocd.argoproj.io/application-set-refresh"
)

// ErrNoArgoCD is returned when the cluster has no Argo CD to hand the stack to.
var ErrNoArgoCD = fmt.Errorf("no Argo CD in this cluster (no CustomResourceDefinition applications.%s)", argocd.Group)

// ArgoInstalled checks that the cluster serves Argo CD's Application kind.
func (c *Client) ArgoInstalled(ctx context.Context) error {
	var crd apiextensionsv1.CustomResourceDefinition
	err := c.Kube.Get(ctx, types.NamespacedName{Name: "applications." + argocd.Group}, &crd)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: install Argo CD first (kubectl create namespace argocd && kubectl apply -n argocd --server-side -f https://raw.githubusercontent.com/argoproj/argo-cd/stable/manifests/install.yaml), or use a stack initialised with --engine flux", ErrNoArgoCD)
	}
	return err
}

// ReadArgoObjects parses the objects `stack up` applies for Argo CD (the root Application and
// the git endpoint); a non-empty gitURL replaces the root Application's repoURL.
func ReadArgoObjects(gitURL string, docs ...[]byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, d := range docs {
		o, err := utils.ReadObjects(bytes.NewReader(d))
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	for _, o := range objs {
		if o.GetKind() == argocd.ApplicationKind && gitURL != "" {
			if err := unstructured.SetNestedField(o.Object, gitURL, "spec", "source", "repoURL"); err != nil {
				return nil, err
			}
		}
	}
	return objs, nil
}

// ArgoBootstrap applies the Argo CD objects of a stack with server-side apply (Namespaces first)
// and asks Argo CD to look at git now. Applying the same objects again changes nothing.
func (c *Client) ArgoBootstrap(ctx context.Context, objs []*unstructured.Unstructured, opts BootstrapOptions) (*BootstrapResult, error) {
	if err := c.ArgoInstalled(ctx); err != nil {
		return nil, err
	}
	applyOpts := ssa.DefaultApplyOptions()
	applyOpts.WaitTimeout = opts.Timeout
	opts.progress("applying the stack's root Application (%d objects)", len(objs))
	cs, err := c.rm.ApplyAllStaged(ctx, objs, applyOpts)
	if err != nil {
		return &BootstrapResult{Sync: cs}, fmt.Errorf("applying the root Application: %w", err)
	}
	return &BootstrapResult{Sync: cs}, nil
}

// ArgoRefresh asks Argo CD to compare the named Applications with git now, and the named
// ApplicationSets to regenerate (missing ones are skipped: they appear after the first sync).
func (c *Client) ArgoRefresh(ctx context.Context, apps, sets []string) error {
	for _, set := range []struct {
		kind, ann, val string
		names          []string
	}{{argocd.ApplicationKind, argoRefresh, "normal", apps}, {argocd.ApplicationSetKind, argoSetRefresh, "true", sets}} {
		for _, name := range set.names {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion(argocd.APIVersion)
			u.SetKind(set.kind)
			u.SetNamespace(argocd.Namespace)
			u.SetName(name)
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{set.ann: set.val}}})
			if err := c.Kube.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("asking Argo CD to refresh %s %s: %w", set.kind, name, err)
			}
		}
	}
	return nil
}

// ArgoProgress is one observation of an Application.
type ArgoProgress struct {
	Elapsed  time.Duration
	Name     string
	Exists   bool
	Sync     string // Synced, OutOfSync, Unknown
	Revision string // the revision(s) it is synced to, joined
	Health   string
	Message  string
}

func (p ArgoProgress) key() string {
	return fmt.Sprint(p.Exists, p.Sync, p.Revision, p.Health, p.Message)
}

func (p ArgoProgress) String() string {
	if !p.Exists {
		return fmt.Sprintf("%5.1fs Application %s: not there", p.Elapsed.Seconds(), p.Name)
	}
	s := fmt.Sprintf("%5.1fs Application %s: %s at %s, %s", p.Elapsed.Seconds(), p.Name, orDash(p.Sync), orDash(ShortRevision(p.Revision)), orDash(p.Health))
	if p.Message != "" {
		s += ": " + p.Message
	}
	return s
}

// ArgoWait follows the Application name until it is Synced to commit and Healthy (or, with
// gone, until it no longer exists). A sync operation that failed at the commit ends the wait
// with Argo CD's own message.
func (c *Client) ArgoWait(ctx context.Context, name, commit string, gone bool, progress func(ArgoProgress)) error {
	start := time.Now()
	var last ArgoProgress
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		p := ArgoProgress{Elapsed: time.Since(start), Name: name}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(argocd.APIVersion)
		u.SetKind(argocd.ApplicationKind)
		err := c.Kube.Get(ctx, types.NamespacedName{Namespace: argocd.Namespace, Name: name}, u)
		switch {
		case apierrors.IsNotFound(err):
			if gone {
				notify(progress, p, &last, true)
				return nil
			}
		case err != nil:
			if !atDeadline(ctx) {
				return fmt.Errorf("reading Application %s/%s: %w", argocd.Namespace, name, err)
			}
		default:
			var app argocd.Application
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &app); err != nil {
				return fmt.Errorf("decoding Application %s: %w", name, err)
			}
			p.Exists = true
			var failed string
			if st := app.Status; st != nil {
				p.Sync, p.Health = st.Sync.Status, st.Health.Status
				revs := append([]string{st.Sync.Revision}, st.Sync.Revisions...)
				p.Revision = strings.Join(slices.DeleteFunc(revs, func(s string) bool { return s == "" }), ",")
				for _, cond := range st.Conditions {
					p.Message = cond.Type + ": " + cond.Message
				}
				if op := st.OperationState; op != nil && (op.Phase == "Failed" || op.Phase == "Error") {
					failed = op.Message
					p.Message = "sync " + op.Phase + ": " + op.Message
				}
				at := slices.ContainsFunc(revs, func(r string) bool { return r != "" && AtCommit(r, commit) })
				if !gone && at && p.Sync == "Synced" && p.Health == "Healthy" {
					notify(progress, p, &last, true)
					return nil
				}
				if !gone && at && failed != "" {
					notify(progress, p, &last, true)
					return fmt.Errorf("sync of Application %s failed: %s", name, p.Message)
				}
			}
		}
		notify(progress, p, &last, false)
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for Application %s (last seen: %s): %w", name, p.String(), ctx.Err())
		case <-t.C:
		}
	}
}

// argoHealth fills a row from an Application's status: APPLIED its synced revision, READY True
// when Healthy, REASON its sync status and health, MESSAGE its last condition.
func argoHealth(r *Row, st *argocd.ApplicationStatus) {
	revs := slices.DeleteFunc(append([]string{st.Sync.Revision}, st.Sync.Revisions...), func(s string) bool { return s == "" })
	if len(revs) > 0 {
		r.Applied = revs[0]
	}
	r.Ready = "False"
	if st.Health.Status == "Healthy" {
		r.Ready = "True"
	}
	r.Reason = strings.TrimSpace(st.Sync.Status + " " + st.Health.Status)
	for _, cond := range st.Conditions {
		r.Message = cond.Type + ": " + cond.Message
	}
}

// offerLabel is the label the offers' ApplicationSet puts on each offer's Application
// (render.LabelOffer; cluster does not import render).
const offerLabel = "obol.org/offer"

// ArgoStatus is Status for a stack Argo CD reconciles: a row per named Application (the root,
// the infrastructure, one per offer of the head, plus any other Application obol generated).
// APPLIED is the revision it is synced to, READY its health (True when Healthy), REASON its
// sync status and health; an offer's row has its route.
func (c *Client) ArgoStatus(ctx context.Context, committed string, apps []string) ([]Row, error) {
	if err := c.ArgoInstalled(ctx); err != nil {
		return nil, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion(argocd.APIVersion)
	list.SetKind(argocd.ApplicationKind + "List")
	if err := c.Kube.List(ctx, list, client.InNamespace(argocd.Namespace), client.MatchingLabels{"app.kubernetes.io/managed-by": "obol"}); err != nil {
		return nil, err
	}
	byName := map[string]*argocd.Application{}
	names := append([]string(nil), apps...)
	for i := range list.Items {
		var app argocd.Application
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &app); err != nil {
			return nil, err
		}
		byName[app.Name] = &app
		if !slices.Contains(names, app.Name) {
			names = append(names, app.Name)
		}
	}
	var rows []Row
	for _, name := range names {
		r := Row{Name: name, Namespace: argocd.Namespace, Kind: argocd.ApplicationKind, Committed: committed}
		app := byName[name]
		switch {
		case app == nil:
			r.Missing, r.Ready, r.Reason, r.Message = true, "-", "NotFound", "not generated yet"
		case app.Status == nil:
			r.Ready, r.Reason = "Unknown", "NotReconciled"
		default:
			argoHealth(&r, app.Status)
		}
		// An offer's Application (the ApplicationSet labels it with the offer's name): its route.
		if app != nil && app.Labels[offerLabel] == name && app.Spec.Destination.Namespace != "" {
			rs, err := c.Route(ctx, app.Spec.Destination.Namespace, GatewayObjectName(name))
			if err != nil {
				return nil, err
			}
			r.Route = rs
			if r.Ready == "True" && rs.Refused() {
				r.Ready, r.Reason, r.Message = "False", "RouteRefused", rs.String()
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}
