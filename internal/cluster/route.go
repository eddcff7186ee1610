package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/obol/obol/internal/argocd"
)

// The Gateway every offer's HTTPRoute attaches to (infrastructure/edge/).
const (
	EdgeNamespace = "traefik"
	EdgeGateway   = "traefik-gateway"
)

var httpRouteGVK = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}

// RouteStatus is what the edge's controller says of an offer's HTTPRoute, for the stack's
// Gateway: whether a buyer's request can reach the offer's gateway at all.
type RouteStatus struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Missing: no HTTPRoute (not applied yet, or the Gateway API is not installed).
	Missing bool `json:"missing,omitempty"`
	// Observed: the edge's controller reported on the route's current generation for the
	// stack's Gateway. Until then Accepted and ResolvedRefs are "Unknown".
	Observed     bool      `json:"observed"`
	Accepted     Condition `json:"accepted"`
	ResolvedRefs Condition `json:"resolvedRefs"`
}

// Condition is one Gateway API condition as the controller wrote it.
type Condition struct {
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// OK reports that the route is accepted by the stack's Gateway with every reference resolved.
func (r *RouteStatus) OK() bool {
	return r != nil && r.Observed && r.Accepted.Status == "True" && r.ResolvedRefs.Status == "True"
}

// Refused reports that the controller has looked at the current generation and said no.
func (r *RouteStatus) Refused() bool {
	return r != nil && r.Observed && (r.Accepted.Status == "False" || r.ResolvedRefs.Status == "False")
}

// Summary is one word when all is well, else the first failing condition with its reason.
func (r *RouteStatus) Summary() string {
	switch {
	case r == nil:
		return "-"
	case r.Missing:
		return "NoRoute"
	case !r.Observed:
		return "NotObserved"
	case r.Accepted.Status != "True":
		return "Accepted=" + r.Accepted.Status + " " + r.Accepted.Reason
	case r.ResolvedRefs.Status != "True":
		return "ResolvedRefs=" + r.ResolvedRefs.Status + " " + r.ResolvedRefs.Reason
	}
	return "Accepted"
}

func (r *RouteStatus) String() string {
	s := fmt.Sprintf("HTTPRoute %s/%s: %s", r.Namespace, r.Name, r.Summary())
	for _, c := range []Condition{r.Accepted, r.ResolvedRefs} {
		if c.Status == "False" && c.Message != "" {
			return s + ": " + c.Message
		}
	}
	return s
}

// ReleaseRoute reads the HTTPRoute the gateway chart renders for a HelmRelease, in the
// release's namespace.
func (c *Client) ReleaseRoute(ctx context.Context, hr *helmv2.HelmRelease) (*RouteStatus, error) {
	return c.Route(ctx, hr.GetReleaseNamespace(), GatewayObjectName(hr.GetReleaseName()))
}

// GatewayObjectName is the name the gateway chart gives its objects (Deployment, Service,
// HTTPRoute) for a Helm release: its "obol-gateway.fullname".
func GatewayObjectName(release string) string {
	if len(release) > 55 {
		release = release[:55]
	}
	return strings.TrimSuffix(release, "-") + "-gateway"
}

// Route reads an HTTPRoute's status for the stack's Gateway.
func (c *Client) Route(ctx context.Context, namespace, name string) (*RouteStatus, error) {
	out := &RouteStatus{Name: name, Namespace: namespace, Accepted: Condition{Status: "Unknown"}, ResolvedRefs: Condition{Status: "Unknown"}}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(httpRouteGVK)
	switch err := c.Kube.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, u); {
	case apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err):
		out.Missing = true
		return out, nil
	case err != nil:
		return nil, fmt.Errorf("reading HTTPRoute %s/%s: %w", namespace, name, err)
	}
	var route struct {
		Status struct {
			Parents []struct {
				ParentRef struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"parentRef"`
				ControllerName string             `json:"controllerName"`
				Conditions     []metav1.Condition `json:"conditions"`
			} `json:"parents"`
		} `json:"status"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &route); err != nil {
		return nil, fmt.Errorf("reading HTTPRoute %s/%s status: %w", namespace, name, err)
	}
	for _, p := range route.Status.Parents {
		ns := p.ParentRef.Namespace
		if ns == "" {
			ns = namespace
		}
		if p.ParentRef.Name != EdgeGateway || ns != EdgeNamespace {
			continue
		}
		acc := apimeta.FindStatusCondition(p.Conditions, "Accepted")
		refs := apimeta.FindStatusCondition(p.Conditions, "ResolvedRefs")
		if acc == nil || acc.ObservedGeneration != u.GetGeneration() {
			break
		}
		out.Observed = true
		out.Accepted = Condition{Status: string(acc.Status), Reason: acc.Reason, Message: firstLine(acc.Message)}
		if refs != nil {
			out.ResolvedRefs = Condition{Status: string(refs.Status), Reason: refs.Reason, Message: firstLine(refs.Message)}
		}
	}
	return out, nil
}

// WaitRoute follows an HTTPRoute until the edge accepted it with every reference resolved; a
// route refused for RouteRefusedAfter is an error with the controller's reason.
func (c *Client) WaitRoute(ctx context.Context, namespace, name string, progress func(*RouteStatus)) error {
	var refused refusalClock
	last := ""
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		rs, err := c.Route(ctx, namespace, name)
		if err != nil && !atDeadline(ctx) {
			return err
		}
		if rs != nil {
			if s := rs.String(); s != last && progress != nil {
				last = s
				progress(rs)
			}
			if rs.OK() {
				return nil
			}
			if refused.expired(rs) {
				return fmt.Errorf("the edge refuses the route, so no buyer can reach the offer: %s", rs)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for the edge to accept HTTPRoute %s/%s (last seen: %s): %w", namespace, name, last, ctx.Err())
		case <-t.C:
		}
	}
}

// ArgoDestination is the namespace an Application deploys to.
func (c *Client) ArgoDestination(ctx context.Context, name string) (string, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(argocd.APIVersion)
	u.SetKind(argocd.ApplicationKind)
	if err := c.Kube.Get(ctx, types.NamespacedName{Namespace: argocd.Namespace, Name: name}, u); err != nil {
		return "", fmt.Errorf("reading Application %s/%s: %w", argocd.Namespace, name, err)
	}
	ns, _, _ := unstructured.NestedString(u.Object, "spec", "destination", "namespace")
	return ns, nil
}

// OfferCondition is one condition of an offer's status, in the predecessor's vocabulary:
// GatewayReady (its x402 gateway runs and its upstream answers the health check),
// RoutePublished (the edge accepted its HTTPRoute) and Ready (a buyer can pay here).
type OfferCondition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// OfferConditions reads an offer's conditions on a Flux stack: its HelmRelease, the pods of
// its release and its HTTPRoute.
func (c *Client) OfferConditions(ctx context.Context, name string) ([]OfferCondition, error) {
	var hr helmv2.HelmRelease
	gw := OfferCondition{Type: "GatewayReady", Status: "Unknown"}
	var rs *RouteStatus
	switch err := c.Kube.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: name}, &hr); {
	case apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err):
		gw.Reason, gw.Message = "NotApplied", "HelmRelease "+Namespace+"/"+name+" is not in the cluster yet"
	case err != nil:
		return nil, fmt.Errorf("reading HelmRelease %s/%s: %w", Namespace, name, err)
	default:
		if cond := apimeta.FindStatusCondition(hr.Status.Conditions, "Ready"); cond != nil {
			gw.Status, gw.Reason, gw.Message = string(cond.Status), cond.Reason, firstLine(cond.Message)
		}
		if gw.Status != "True" {
			trouble, err := c.ReleasePods(ctx, &hr, time.Time{})
			if err != nil {
				return nil, err
			}
			if trouble != nil {
				gw.Status, gw.Reason, gw.Message = "False", trouble.Reason, trouble.String()
			}
		}
		if rs, err = c.ReleaseRoute(ctx, &hr); err != nil {
			return nil, err
		}
	}
	return offerConditions(gw, rs), nil
}

// ArgoOfferConditions is OfferConditions on an Argo CD stack: the offer's Application's health
// and its HTTPRoute in the offer's namespace.
func (c *Client) ArgoOfferConditions(ctx context.Context, name, namespace string) ([]OfferCondition, error) {
	gw := OfferCondition{Type: "GatewayReady", Status: "Unknown", Reason: "NotApplied"}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(argocd.APIVersion)
	u.SetKind(argocd.ApplicationKind)
	switch err := c.Kube.Get(ctx, types.NamespacedName{Namespace: argocd.Namespace, Name: name}, u); {
	case apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err):
	case err != nil:
		return nil, fmt.Errorf("reading Application %s/%s: %w", argocd.Namespace, name, err)
	default:
		var app argocd.Application
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &app); err != nil {
			return nil, fmt.Errorf("decoding Application %s: %w", name, err)
		}
		if app.Status != nil {
			var r Row
			argoHealth(&r, app.Status)
			gw.Status, gw.Reason, gw.Message = r.Ready, r.Reason, r.Message
		}
	}
	rs, err := c.Route(ctx, namespace, GatewayObjectName(name))
	if err != nil {
		return nil, err
	}
	return offerConditions(gw, rs), nil
}

func offerConditions(gw OfferCondition, rs *RouteStatus) []OfferCondition {
	route := OfferCondition{Type: "RoutePublished", Status: "Unknown", Reason: "NoRoute"}
	if rs != nil {
		route.Reason = rs.Summary()
		switch {
		case rs.OK():
			route.Status, route.Reason = "True", "Accepted"
		case rs.Refused():
			route.Status, route.Message = "False", rs.String()
		}
	}
	ready := OfferCondition{Type: "Ready", Status: "True", Reason: "Serving"}
	for _, c := range []OfferCondition{gw, route} {
		if c.Status != "True" {
			ready = OfferCondition{Type: "Ready", Status: c.Status, Reason: c.Type + ":" + c.Reason, Message: c.Message}
			break
		}
	}
	return []OfferCondition{gw, route, ready}
}
