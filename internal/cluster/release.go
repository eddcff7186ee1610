package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReleaseProgress is one observation of a HelmRelease while waiting for it.
type ReleaseProgress struct {
	Elapsed time.Duration
	Name    string
	Exists  bool
	Handled bool   // the helm-controller handled the reconcile request Wait made
	Ready   string // the Ready condition's status, or "-"
	Reason  string
	Message string
	// Pods is why a pod of the release is not Ready yet, when the kubelet says so.
	Pods *PodTrouble
	// Route is the offer's HTTPRoute at the edge, read once the release is Ready.
	Route *RouteStatus
}

func (p ReleaseProgress) key() string {
	pods := ""
	if p.Pods != nil {
		pods = p.Pods.Reason
	}
	return fmt.Sprint(p.Exists, p.Handled, p.Ready, p.Reason, pods, p.Route.Summary())
}

func (p ReleaseProgress) String() string {
	if !p.Exists {
		return fmt.Sprintf("%5.1fs HelmRelease %s: not there", p.Elapsed.Seconds(), p.Name)
	}
	s := fmt.Sprintf("%5.1fs HelmRelease %s: Ready=%s %s", p.Elapsed.Seconds(), p.Name, p.Ready, p.Reason)
	if !p.Handled {
		s = fmt.Sprintf("%5.1fs HelmRelease %s: waiting for helm-controller (Ready=%s %s)", p.Elapsed.Seconds(), p.Name, p.Ready, p.Reason)
	}
	if p.Pods != nil {
		s += "; " + p.Pods.String()
	}
	if p.Route != nil {
		s += "; " + p.Route.String()
	}
	return s
}

// RouteRefusedAfter is how long an HTTPRoute the edge refused (Accepted or ResolvedRefs False
// at its current generation) is waited on before --wait gives up: long enough for the
// controller to see a Service or grant applied in the same pass.
var RouteRefusedAfter = 5 * time.Second

// refusalClock times how long a route has been refused without a break.
type refusalClock struct{ since time.Time }

// expired reports whether rs has been refused for RouteRefusedAfter.
func (c *refusalClock) expired(rs *RouteStatus) bool {
	if !rs.Refused() {
		c.since = time.Time{}
		return false
	}
	if c.since.IsZero() {
		c.since = time.Now()
	}
	return time.Since(c.since) >= RouteRefusedAfter
}

// WaitRelease follows the HelmRelease name (in the Flux namespace) after the commit that
// changed it was applied (see Wait). With gone, it waits until the HelmRelease no longer
// exists: the Kustomization pruned it and the helm-controller uninstalled it. Otherwise it
// asks the helm-controller to reconcile (reconcile.fluxcd.io/requestedAt) and waits until it
// has handled that request and the release is Ready at its current generation: the request
// is made after the new values were applied, so the reconcile that handles it saw them. A
// failed install or upgrade returns the controller's own reason, and a pod of the release that
// cannot become Ready (a crash loop, an image that cannot be had, a readiness probe failing for
// NotReadyAfter) the kubelet's, without waiting for helm-controller's own timeout. A Ready
// release is then followed until the edge accepted its HTTPRoute with every reference resolved
// (a buyer can reach it), and a route the edge refuses is an error with the controller's reason.
func (c *Client) WaitRelease(ctx context.Context, name string, gone bool, progress func(ReleaseProgress)) error {
	start := time.Now()
	key := types.NamespacedName{Namespace: Namespace, Name: name}
	token := ""
	var last, p ReleaseProgress
	var pods *PodTrouble
	var podsRead time.Time
	var refused refusalClock
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		var hr helmv2.HelmRelease
		err := c.Kube.Get(ctx, key, &hr)
		p = ReleaseProgress{Elapsed: time.Since(start), Name: name, Ready: "-"}
		switch {
		case apierrors.IsNotFound(err):
			if gone {
				notify(progress, p, &last, true)
				return nil
			}
		case err != nil:
			if !atDeadline(ctx) {
				return fmt.Errorf("reading HelmRelease %s: %w", key, err)
			}
		default:
			p.Exists = true
			if token == "" && !gone {
				token = time.Now().Format(time.RFC3339Nano)
				if err := c.requestReconcileAt(ctx, &hr, token); err != nil {
					return err
				}
			}
			p.Handled = gone || hr.Status.LastHandledReconcileAt == token
			if cond := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition); cond != nil {
				p.Ready, p.Reason, p.Message = string(cond.Status), cond.Reason, cond.Message
				if !gone && p.Handled && cond.ObservedGeneration == hr.Generation {
					if cond.Status == metav1.ConditionTrue {
						rs, err := c.ReleaseRoute(ctx, &hr)
						if err != nil && !atDeadline(ctx) {
							return err
						}
						p.Route = rs
						if rs.OK() {
							notify(progress, p, &last, true)
							return nil
						}
						if refused.expired(rs) {
							notify(progress, p, &last, true)
							return fmt.Errorf("HelmRelease %s is Ready, but the edge refuses its route, so no buyer can reach it: %s", key, rs)
						}
					}
					if cond.Status == metav1.ConditionFalse && releaseFailed(cond.Reason, &hr) {
						notify(progress, p, &last, true)
						return fmt.Errorf("HelmRelease %s: %s: %s", key, cond.Reason, cond.Message)
					}
				}
			}
			if !gone && time.Since(podsRead) >= time.Second {
				podsRead = time.Now()
				if pods, err = c.ReleasePods(ctx, &hr, start); err != nil && !atDeadline(ctx) {
					return err
				}
			}
			p.Pods = pods
			if pods != nil && pods.Stuck {
				notify(progress, p, &last, true)
				return fmt.Errorf("HelmRelease %s: its gateway cannot become Ready: %s", key, pods)
			}
		}
		notify(progress, p, &last, false)
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for HelmRelease %s (last seen: %s): %w", key, p.String(), ctx.Err())
		case <-t.C:
		}
	}
}

// releaseFailed: the helm-controller gave up on this generation (Stalled: remediation
// retries are exhausted), or a test, rollback or uninstall failed. A failed install or
// upgrade that remediation will retry is waited out, its reason shown as progress.
func releaseFailed(reason string, hr *helmv2.HelmRelease) bool {
	if s := apimeta.FindStatusCondition(hr.Status.Conditions, meta.StalledCondition); s != nil && s.Status == metav1.ConditionTrue {
		return true
	}
	switch reason {
	case helmv2.TestFailedReason, helmv2.RollbackFailedReason, helmv2.UninstallFailedReason:
		return true
	}
	return false
}

// requestReconcileAt sets reconcile.fluxcd.io/requestedAt to token.
func (c *Client) requestReconcileAt(ctx context.Context, o client.Object, token string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{meta.ReconcileRequestAnnotation: token}}})
	if err := c.Kube.Patch(ctx, o, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("asking %s %s/%s to reconcile: %w", kindOf(o), o.GetNamespace(), o.GetName(), err)
	}
	return nil
}
