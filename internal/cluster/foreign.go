package cluster

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ManagedByLabel marks what obol renders and applies.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// Foreign lists the objects of objs that exist in the cluster but are not obol's: not labelled
// managed-by obol, and never applied by obol's field manager. Bootstrapping over them would take
// them over: a Flux bootstrapped by `flux bootstrap` would be repointed at the obol repo and
// prune what its own root applied.
func (c *Client) Foreign(ctx context.Context, objs []*unstructured.Unstructured) ([]string, error) {
	var out []string
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if !watched(gvk.GroupKind()) {
			continue
		}
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(gvk)
		err := c.Kube.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}, cur)
		if apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look for %s %s/%s: %w", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
		if cur.GetLabels()[ManagedByLabel] == "obol" || appliedByObol(cur) {
			continue
		}
		what := fmt.Sprintf("%s %s/%s", gvk.Kind, cur.GetNamespace(), cur.GetName())
		if url, ok, _ := unstructured.NestedString(cur.Object, "spec", "url"); ok {
			what += " (syncing " + url + ")"
		}
		out = append(out, what)
	}
	return out, nil
}

// watched: the objects whose takeover matters, the sync objects (what a reconciler follows).
// obol labels every one it renders; the controllers carry Flux's own labels and are left out.
func watched(gk schema.GroupKind) bool {
	return gk.Kind == "GitRepository" && gk.Group == "source.toolkit.fluxcd.io" ||
		gk.Kind == "Kustomization" && gk.Group == "kustomize.toolkit.fluxcd.io" ||
		gk.Kind == "Application" && gk.Group == "argoproj.io"
}

func appliedByObol(o *unstructured.Unstructured) bool {
	for _, m := range o.GetManagedFields() {
		if m.Manager == FieldManager {
			return true
		}
	}
	return false
}
