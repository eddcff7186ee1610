package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PurgeOptions tune Purge.
type PurgeOptions struct {
	Timeout  time.Duration // per object waited for; default 5m
	Progress func(format string, args ...any)
}

// Purge removes what the stack runs, then the reconciler. The stack's Kustomizations are
// deleted with prune (kustomize-controller's finalizer deletes what each applied), applications
// before infrastructure; the flux-system Kustomization, which applied Flux itself, is deleted
// with prune switched off, then the GitRepository, then the Flux components (CRDs last; the Namespace stays, empty). The
// repo is not touched: `obol stack up` brings everything back.
func (c *Client) Purge(ctx context.Context, components *Objects, opts PurgeOptions) error {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	say := func(format string, args ...any) {
		if opts.Progress != nil {
			opts.Progress(format, args...)
		}
	}
	// Resume first: a suspended Kustomization's finalizer does not prune.
	if _, err := c.setSuspend(ctx, false); err != nil {
		return err
	}
	for i := len(RootKustomizations) - 1; i >= 0; i-- {
		name := RootKustomizations[i]
		ks := &kustomizev1.Kustomization{}
		key := types.NamespacedName{Namespace: Namespace, Name: name}
		if err := c.Kube.Get(ctx, key, ks); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if name == Source {
			// Suspended, kustomize-controller's finalizer prunes nothing; prune=false too. (It
			// applies itself from the repo, so prune alone could be reset to true meanwhile.)
			patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"prune": false, "suspend": true}})
			if err := c.Kube.Patch(ctx, ks, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager)); err != nil {
				return fmt.Errorf("keeping Flux while deleting Kustomization %s: %w", name, err)
			}
			say("deleting Kustomization %s (prune off: it applied Flux itself)", name)
		} else {
			say("deleting Kustomization %s and pruning what it applied", name)
		}
		if err := c.deleteAndWait(ctx, ks, opts.Timeout); err != nil {
			return err
		}
		// The Kustomization's prune deletes without waiting; a HelmRelease's finalizer then
		// uninstalls its release, which needs the CRDs the release uses (ServiceOffer, HTTPRoute),
		// so infrastructure, which applied them, goes only once those releases are gone.
		if err := c.waitPrunedReleases(ctx, name, opts.Timeout, say); err != nil {
			return err
		}
	}
	say("deleting GitRepository %s", Source)
	if err := c.deleteAndWait(ctx, &sourcev1.GitRepository{}, opts.Timeout, types.NamespacedName{Namespace: Namespace, Name: Source}); err != nil {
		return err
	}
	if components != nil {
		// Whatever Flux objects remain (HelmReleases pruned a moment ago, HelmCharts, ...) carry
		// finalizers their controllers run: delete them while the controllers still run, and
		// wait, so neither a release is left installed nor a CRD stuck Terminating.
		if err := c.deleteCustomResources(ctx, components, opts.Timeout, say); err != nil {
			return err
		}
		// The Namespace stays (as with `flux uninstall --keep-namespace`): deleting it leaves it
		// Terminating for a while, and a `stack up` meanwhile could not create anything in it.
		var del []*unstructured.Unstructured
		for _, o := range components.Components {
			if o.GetKind() != "Namespace" {
				del = append(del, o)
			}
		}
		say("deleting the Flux components (%d objects; the %s Namespace stays)", len(del), Namespace)
		cs, err := c.rm.DeleteAll(ctx, del, ssa.DefaultDeleteOptions())
		if err != nil {
			return fmt.Errorf("deleting the Flux components: %w", err)
		}
		if err := c.rm.WaitForSetTermination(cs, ssa.WaitOptions{Interval: PollInterval, Timeout: opts.Timeout}); err != nil {
			return fmt.Errorf("waiting for the Flux components to be gone: %w", err)
		}
	}
	return nil
}

// deleteAndWait deletes obj (read at key, or at its own name) and polls until it is gone, so
// a finalizer's pruning is finished before the next step.
func (c *Client) deleteAndWait(ctx context.Context, obj client.Object, timeout time.Duration, key ...types.NamespacedName) error {
	k := client.ObjectKeyFromObject(obj)
	if len(key) > 0 {
		k = key[0]
		obj.SetNamespace(k.Namespace)
		obj.SetName(k.Name)
	}
	if err := c.Kube.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s %s: %w", kindOf(obj), k, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		err := c.Kube.Get(ctx, k, obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s is still there after %s (its finalizer has not finished; kubectl -n %s describe it): %w", kindOf(obj), k, timeout, k.Namespace, ctx.Err())
		case <-t.C:
		}
	}
}

// deleteCustomResources deletes every object of the CRDs among components, in all namespaces,
// and waits until none is left.
func (c *Client) deleteCustomResources(ctx context.Context, components *Objects, timeout time.Duration, say func(string, ...any)) error {
	var kinds []schema.GroupVersionKind
	for _, o := range components.Components {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		vers, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		for _, v := range vers {
			m, _ := v.(map[string]any)
			if stored, _ := m["storage"].(bool); stored {
				name, _ := m["name"].(string)
				kinds = append(kinds, schema.GroupVersionKind{Group: group, Version: name, Kind: kind + "List"})
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for first := true; ; first = false {
		left := 0
		for _, gvk := range kinds {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk)
			if err := c.Kube.List(ctx, list); err != nil {
				if apimeta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
					continue
				}
				return fmt.Errorf("listing %s: %w", gvk.Kind, err)
			}
			for i := range list.Items {
				left++
				o := &list.Items[i]
				if o.GetDeletionTimestamp() != nil {
					continue
				}
				if first {
					say("deleting %s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
				}
				if err := c.Kube.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("deleting %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d Flux objects are still there (their finalizers have not finished: are the controllers running?): %w", left, ctx.Err())
		case <-time.After(PollInterval):
		}
	}
}

// waitPrunedReleases waits until no HelmRelease applied by the Kustomization ks is left.
func (c *Client) waitPrunedReleases(ctx context.Context, ks string, timeout time.Duration, say func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sel := client.MatchingLabels{kustomizev1.GroupVersion.Group + "/name": ks, kustomizev1.GroupVersion.Group + "/namespace": Namespace}
	said := -1
	for {
		var hrs helmv2.HelmReleaseList
		if err := c.Kube.List(ctx, &hrs, client.InNamespace(Namespace), sel); err != nil {
			if apimeta.IsNoMatchError(err) {
				return nil
			}
			if !atDeadline(ctx) {
				return err
			}
		}
		if len(hrs.Items) == 0 && ctx.Err() == nil {
			return nil
		}
		if len(hrs.Items) != said {
			say("  waiting for %d HelmReleases of %s to uninstall", len(hrs.Items), ks)
			said = len(hrs.Items)
		}
		select {
		case <-ctx.Done():
			names := make([]string, 0, len(hrs.Items))
			for _, hr := range hrs.Items {
				names = append(names, hr.Name)
			}
			return fmt.Errorf("HelmReleases of %s still there after %s (is the helm-controller running?): %v", ks, timeout, names)
		case <-time.After(PollInterval):
		}
	}
}
