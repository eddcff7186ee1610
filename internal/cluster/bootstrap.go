package cluster

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Objects are what Bootstrap applies: the Flux components (CRDs, Namespace, RBAC, controllers)
// and the sync objects (GitRepository + Kustomization flux-system).
type Objects struct {
	Components []*unstructured.Unstructured
	Sync       []*unstructured.Unstructured
}

// LoadObjects parses gotk-components.yaml and gotk-sync.yaml. A non-empty gitURL replaces the
// GitRepository's spec.url (the settings' gitURL is what the repo holds already).
func LoadObjects(components, sync []byte, gitURL string) (*Objects, error) {
	comps, err := utils.ReadObjects(bytes.NewReader(components))
	if err != nil {
		return nil, fmt.Errorf("the Flux components: %w", err)
	}
	syncObjs, err := utils.ReadObjects(bytes.NewReader(sync))
	if err != nil {
		return nil, fmt.Errorf("the sync objects: %w", err)
	}
	var haveRepo, haveKs bool
	for _, o := range syncObjs {
		switch {
		case o.GetKind() == sourcev1.GitRepositoryKind && o.GetName() == Source:
			haveRepo = true
			if gitURL != "" {
				if err := unstructured.SetNestedField(o.Object, gitURL, "spec", "url"); err != nil {
					return nil, err
				}
			}
		case o.GetKind() == kustomizev1.KustomizationKind && o.GetName() == Source:
			haveKs = true
		}
	}
	if !haveRepo || !haveKs {
		return nil, fmt.Errorf("the sync objects lack the GitRepository or the Kustomization %s/%s", Namespace, Source)
	}
	return &Objects{Components: comps, Sync: syncObjs}, nil
}

// GitURL returns the URL the sync GitRepository fetches from.
func (o *Objects) GitURL() string {
	for _, obj := range o.Sync {
		if obj.GetKind() == sourcev1.GitRepositoryKind {
			u, _, _ := unstructured.NestedString(obj.Object, "spec", "url")
			return u
		}
	}
	return ""
}

// BootstrapOptions tune Bootstrap.
type BootstrapOptions struct {
	// Timeout bounds each wait (CRDs established, Deployments available). Default 5m.
	Timeout time.Duration
	// Progress, when set, receives one line per step.
	Progress func(format string, args ...any)
}

// BootstrapResult is what Bootstrap did.
type BootstrapResult struct {
	Components *ssa.ChangeSet
	Sync       *ssa.ChangeSet
	// Resumed names the suspended objects Bootstrap resumed (after `obol stack down`).
	Resumed []string
}

// Changed counts the objects created or configured (0 on a re-run against an unchanged repo).
func (r *BootstrapResult) Changed() int {
	n := len(r.Resumed)
	for _, cs := range []*ssa.ChangeSet{r.Components, r.Sync} {
		if cs == nil {
			continue
		}
		for _, e := range cs.Entries {
			if e.Action != ssa.UnchangedAction && e.Action != ssa.SkippedAction {
				n++
			}
		}
	}
	return n
}

// Summary is one line: how many objects were created, configured, unchanged.
func (r *BootstrapResult) Summary() string {
	counts := map[ssa.Action]int{}
	for _, cs := range []*ssa.ChangeSet{r.Components, r.Sync} {
		if cs == nil {
			continue
		}
		for _, e := range cs.Entries {
			counts[e.Action]++
		}
	}
	s := fmt.Sprintf("%d created, %d configured, %d unchanged", counts[ssa.CreatedAction], counts[ssa.ConfiguredAction], counts[ssa.UnchangedAction])
	if len(r.Resumed) > 0 {
		s += fmt.Sprintf(", %d resumed", len(r.Resumed))
	}
	return s
}

func (o BootstrapOptions) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(format, args...)
	}
}

// Bootstrap applies the Flux components with server-side apply (CRDs and Namespaces first),
// waits for the controllers, then applies the sync objects and resumes anything `stack down`
// suspended. Applying the same objects again changes nothing.
func (c *Client) Bootstrap(ctx context.Context, objs *Objects, opts BootstrapOptions) (*BootstrapResult, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	applyOpts := ssa.DefaultApplyOptions()
	applyOpts.WaitTimeout = opts.Timeout
	applyOpts.WaitInterval = time.Second
	res := &BootstrapResult{}

	opts.progress("applying the Flux components (%d objects)", len(objs.Components))
	cs, err := c.rm.ApplyAllStaged(ctx, objs.Components, applyOpts)
	res.Components = cs
	if err != nil {
		return res, fmt.Errorf("applying the Flux components: %w", err)
	}
	var deps []*unstructured.Unstructured
	var names []string
	for _, o := range objs.Components {
		if o.GetKind() == "Deployment" {
			deps = append(deps, o)
			names = append(names, o.GetName())
		}
	}
	opts.progress("waiting for %d Deployments to be available: %s", len(deps), strings.Join(names, ", "))
	if err := c.rm.Wait(deps, ssa.WaitOptions{Interval: time.Second, Timeout: opts.Timeout}); err != nil {
		return res, fmt.Errorf("the Flux controllers or the git endpoint are not available (kubectl get deploy,pods -A; for the git endpoint's image, see `make git-image`): %w", err)
	}
	opts.progress("applying the sync objects (GitRepository %s <- %s)", Source, objs.GitURL())
	cs, err = c.rm.ApplyAll(ctx, objs.Sync, applyOpts)
	res.Sync = cs
	if err != nil {
		return res, fmt.Errorf("applying the sync objects: %w", err)
	}
	resumed, err := c.setSuspend(ctx, false)
	res.Resumed = resumed
	if err != nil {
		return res, err
	}
	return res, nil
}

// rootObjects are the GitRepository and the root Kustomizations, as typed objects to read.
func rootObjects() []client.Object {
	objs := []client.Object{&sourcev1.GitRepository{}}
	for range RootKustomizations {
		objs = append(objs, &kustomizev1.Kustomization{})
	}
	return objs
}

func rootKey(i int) types.NamespacedName {
	if i == 0 {
		return types.NamespacedName{Namespace: Namespace, Name: Source}
	}
	return types.NamespacedName{Namespace: Namespace, Name: RootKustomizations[i-1]}
}

func kindOf(o client.Object) string {
	switch o.(type) {
	case *sourcev1.GitRepository:
		return sourcev1.GitRepositoryKind
	case *kustomizev1.Kustomization:
		return kustomizev1.KustomizationKind
	}
	return fmt.Sprintf("%T", o)
}
