package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Trigger asks the reconciler to fetch and apply now: it sets reconcile.fluxcd.io/requestedAt
// on the GitRepository and the root Kustomizations. Call it after the branch ref moved.
func (c *Client) Trigger(ctx context.Context) error {
	for i, o := range rootObjects() {
		if err := c.requestReconcile(ctx, o, rootKey(i)); err != nil {
			if apierrors.IsNotFound(err) && i > 1 {
				continue // infrastructure/applications appear after the first sync
			}
			return err
		}
	}
	return nil
}

// requestReconcile sets reconcile.fluxcd.io/requestedAt to now on the Flux object at key.
func (c *Client) requestReconcile(ctx context.Context, o client.Object, key types.NamespacedName) error {
	o.SetNamespace(key.Namespace)
	o.SetName(key.Name)
	return c.requestReconcileAt(ctx, o, time.Now().Format(time.RFC3339Nano))
}

// Suspend sets spec.suspend on the GitRepository and the root Kustomizations (`obol stack
// down`): the reconciler stops; what runs and the repo stay. It returns what it suspended.
func (c *Client) Suspend(ctx context.Context) ([]string, error) { return c.setSuspend(ctx, true) }

// setSuspend patches spec.suspend where it differs, so a re-run changes nothing.
func (c *Client) setSuspend(ctx context.Context, suspend bool) ([]string, error) {
	var changed []string
	val := any(true)
	if !suspend {
		val = nil // remove the field: the repo's manifests do not set it
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"suspend": val}})
	for i, o := range rootObjects() {
		key := rootKey(i)
		if err := c.Kube.Get(ctx, key, o); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return changed, err
		}
		var cur bool
		switch t := o.(type) {
		case *sourcev1.GitRepository:
			cur = t.Spec.Suspend
		case *kustomizev1.Kustomization:
			cur = t.Spec.Suspend
		}
		if cur == suspend {
			continue
		}
		if err := c.Kube.Patch(ctx, o, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager)); err != nil {
			return changed, fmt.Errorf("setting spec.suspend=%v on %s %s: %w", suspend, kindOf(o), key, err)
		}
		changed = append(changed, kindOf(o)+"/"+key.Name)
	}
	return changed, nil
}

// Row is one line of `obol stack status`.
type Row struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Committed string `json:"committed,omitempty"` // the repo's head
	Fetched   string `json:"fetched,omitempty"`   // what the GitRepository's artifact holds
	Applied   string `json:"applied,omitempty"`   // Kustomization lastAppliedRevision, HelmRelease lastAttemptedRevision
	Ready     string `json:"ready"`               // True, False, Unknown, or "-" when there is no condition
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"`
	Suspended bool   `json:"suspended,omitempty"`
	Missing   bool   `json:"missing,omitempty"` // not in the cluster
	// Route is an offer's HTTPRoute at the edge (HelmRelease rows): whether buyers reach it.
	Route *RouteStatus `json:"route,omitempty"`
}

// Status reads the GitRepository, the root Kustomizations and the HelmReleases in the Flux
// namespace. committed is the repo's head commit (may be empty); releases are the HelmReleases
// the head defines (one per offer): each gets a row, Missing when the cluster lacks it. A
// HelmRelease's APPLIED is the revision its Kustomization last applied it at.
func (c *Client) Status(ctx context.Context, committed string, releases []string) ([]Row, error) {
	var rows []Row
	var repo sourcev1.GitRepository
	fetched := ""
	repoRow := Row{Name: Source, Namespace: Namespace, Kind: sourcev1.GitRepositoryKind, Committed: committed}
	switch err := c.Kube.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: Source}, &repo); {
	case apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err):
		repoRow.Missing, repoRow.Ready = true, "-"
		repoRow.Reason = "NotBootstrapped"
		repoRow.Message = "run `obol stack up`"
	case err != nil:
		return nil, err
	default:
		if repo.Status.Artifact != nil {
			fetched = repo.Status.Artifact.Revision
		}
		repoRow.Fetched = fetched
		repoRow.Suspended = repo.Spec.Suspend
		fillReady(&repoRow, repo.Status.Conditions, repo.Generation, repo.Status.ObservedGeneration)
	}
	rows = append(rows, repoRow)
	applied := map[string]string{}
	for _, name := range RootKustomizations {
		var ks kustomizev1.Kustomization
		r := Row{Name: name, Namespace: Namespace, Kind: kustomizev1.KustomizationKind, Committed: committed, Fetched: fetched}
		switch err := c.Kube.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: name}, &ks); {
		case apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err):
			r.Missing, r.Ready, r.Reason = true, "-", "NotFound"
		case err != nil:
			return nil, err
		default:
			r.Applied = ks.Status.LastAppliedRevision
			applied[name] = r.Applied
			r.Suspended = ks.Spec.Suspend
			fillReady(&r, ks.Status.Conditions, ks.Generation, ks.Status.ObservedGeneration)
		}
		rows = append(rows, r)
	}
	var hrs helmv2.HelmReleaseList
	if err := c.Kube.List(ctx, &hrs, client.InNamespace(Namespace)); err != nil && !apimeta.IsNoMatchError(err) {
		return nil, err
	}
	byName := map[string]*helmv2.HelmRelease{}
	names := append([]string(nil), releases...)
	for i := range hrs.Items {
		hr := &hrs.Items[i]
		byName[hr.Name] = hr
		if !slices.Contains(names, hr.Name) {
			names = append(names, hr.Name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		r := Row{Name: name, Namespace: Namespace, Kind: helmv2.HelmReleaseKind, Committed: committed, Fetched: fetched}
		hr := byName[name]
		if hr == nil {
			r.Missing, r.Ready, r.Reason = true, "-", "NotFound"
			r.Message = "not applied yet"
			rows = append(rows, r)
			continue
		}
		r.Applied = applied[hr.Labels[kustomizev1.GroupVersion.Group+"/name"]]
		r.Suspended = hr.Spec.Suspend
		fillReady(&r, hr.Status.Conditions, hr.Generation, hr.Status.ObservedGeneration)
		var err error
		if r.Ready != string(metav1.ConditionTrue) && !r.Suspended {
			// helm-controller says "InProgress" until its wait times out: the kubelet knows why.
			var trouble *PodTrouble
			if trouble, err = c.ReleasePods(ctx, hr, time.Time{}); err != nil {
				return nil, err
			}
			if trouble != nil {
				r.Reason, r.Message = trouble.Reason, trouble.String()
			}
		}
		if r.Route, err = c.ReleaseRoute(ctx, hr); err != nil {
			return nil, err
		}
		if r.Ready == string(metav1.ConditionTrue) && r.Route.Refused() {
			// Deployed, but no buyer can reach it: that is the offer's state.
			r.Ready, r.Reason, r.Message = "False", "RouteRefused", r.Route.String()
		}
		if !slices.Contains(releases, name) && releases != nil {
			r.Message = strings.TrimSpace("not in the repo's head (pruned on the next apply) " + r.Message)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func fillReady(r *Row, conds []metav1.Condition, gen, observed int64) {
	cond := apimeta.FindStatusCondition(conds, meta.ReadyCondition)
	if cond == nil {
		r.Ready, r.Reason = "Unknown", "NotReconciled"
		return
	}
	r.Ready, r.Reason, r.Message = string(cond.Status), cond.Reason, cond.Message
	if r.Suspended {
		r.Reason = "Suspended"
	} else if observed != gen && cond.Status == metav1.ConditionTrue {
		r.Ready, r.Reason = "Unknown", "Progressing"
	}
}

// ShortRevision turns main@sha1:<sha> (or a bare sha) into the first 12 hex digits; other
// revisions (chart versions) are returned as they are.
func ShortRevision(rev string) string {
	sha := rev
	if i := strings.LastIndex(rev, ":"); i >= 0 {
		sha = rev[i+1:]
	}
	if len(sha) >= 40 && isHex(sha) {
		return sha[:12]
	}
	return rev
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// AtCommit reports whether a Flux revision (main@sha1:<sha>) names commit.
func AtCommit(rev, commit string) bool {
	return commit != "" && rev != "" && strings.HasSuffix(rev, commit)
}
