// Package cluster talks to the Kubernetes cluster a stack runs on: it bootstraps the reconciler
// (the pinned Flux components, then the sync objects) with server-side apply, asks it to fetch
// now, reads what it fetched and applied, and waits until a commit is applied.
//
// The package knows the reconciler's objects (one GitRepository and the root Kustomizations)
// and nothing about offers: everything an offer needs reaches the cluster through the repo.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
)

// FieldManager is the server-side apply field manager (and owner label prefix) of everything
// obol applies itself: the Flux components and the sync objects.
const FieldManager = "obol"

// Names of the reconciler's objects, as `flux bootstrap` names them.
const (
	Namespace = "flux-system"
	Source    = "flux-system"
)

// RootKustomizations are the Kustomizations obol's stack repo defines under clusters/<stack>/,
// in dependency order.
var RootKustomizations = []string{"flux-system", "infrastructure", "applications"}

// Config says which cluster to talk to. Empty fields follow kubectl: $KUBECONFIG, then
// ~/.kube/config, and the current context.
type Config struct {
	Kubeconfig string
	Context    string
}

// ErrNoCluster is returned by Connect when no kubeconfig or context is usable.
var ErrNoCluster = errors.New("no usable Kubernetes cluster")

// ErrNoKubeconfig is ErrNoCluster when no kubeconfig context exists at all: the one case in
// which `stack up` may create a local cluster (a configured cluster that is merely down is
// never replaced).
var ErrNoKubeconfig = fmt.Errorf("%w: no kubeconfig context", ErrNoCluster)

// Client is a connection to one cluster.
type Client struct {
	Kube    client.Client
	REST    *rest.Config
	Context string // the kubeconfig context in use
	rm      *ssa.ResourceManager
}

// Scheme knows the Kubernetes built-ins, CRDs and the Flux kinds obol reads.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = apiextensionsv1.AddToScheme(s)
	_ = sourcev1.AddToScheme(s)
	_ = kustomizev1.AddToScheme(s)
	_ = helmv2.AddToScheme(s)
	return s
}

// RESTConfig loads the client configuration the way kubectl does.
func RESTConfig(cfg Config) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.Kubeconfig != "" {
		if _, err := os.Stat(cfg.Kubeconfig); errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%w: --kubeconfig %s does not exist", ErrNoCluster, cfg.Kubeconfig)
		} else if err != nil {
			return nil, "", fmt.Errorf("%w: --kubeconfig: %w", ErrNoCluster, err)
		}
		rules.ExplicitPath = cfg.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, "", fmt.Errorf("%w: reading the kubeconfig: %w", ErrNoCluster, err)
	}
	ctxName := raw.CurrentContext
	if cfg.Context != "" {
		ctxName = cfg.Context
	}
	if ctxName == "" || len(raw.Contexts) == 0 {
		return nil, "", fmt.Errorf("%w (looked at %s): pass --kubeconfig FILE and/or --context NAME, or set KUBECONFIG",
			ErrNoKubeconfig, strings.Join(rules.GetLoadingPrecedence(), ", "))
	}
	if _, ok := raw.Contexts[ctxName]; !ok {
		return nil, "", fmt.Errorf("%w: context %q is not in the kubeconfig: `kubectl config get-contexts` lists them", ErrNoCluster, ctxName)
	}
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("%w: context %q: %w", ErrNoCluster, ctxName, err)
	}
	return rc, ctxName, nil
}

// Connect builds a client for the cluster cfg names.
func Connect(cfg Config) (*Client, error) {
	rc, ctxName, err := RESTConfig(cfg)
	if err != nil {
		return nil, err
	}
	return NewClient(rc, ctxName)
}

var quietOnce sync.Once

// NewClient builds a client from a REST config.
func NewClient(rc *rest.Config, ctxName string) (*Client, error) {
	// controller-runtime prints a stack trace when its logger was never set; obol reports errors
	// itself.
	quietOnce.Do(func() { crlog.SetLogger(logr.Discard()) })
	rc = rest.CopyConfig(rc)
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(rc, hc)
	if err != nil {
		return nil, err
	}
	kc, err := client.New(rc, client.Options{Scheme: Scheme(), Mapper: mapper, HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	poller := polling.NewStatusPoller(kc, mapper, polling.Options{})
	rm := ssa.NewResourceManager(kc, poller, ssa.Owner{Field: FieldManager, Group: "obol.org"})
	return &Client{Kube: kc, REST: rc, Context: ctxName, rm: rm}, nil
}

// Reachable checks that the API server answers, with an error that says which cluster.
func (c *Client) Reachable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var ns apiextensionsv1.CustomResourceDefinitionList
	if err := c.Kube.List(ctx, &ns, client.Limit(1)); err != nil {
		return fmt.Errorf("%w: the API server of context %q (%s) does not answer: %w", ErrNoCluster, c.Context, c.REST.Host, err)
	}
	return nil
}
