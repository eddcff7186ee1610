package stack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/render"
)

// UpOptions are `obol stack up`.
type UpOptions struct {
	Factory *cmdutil.Factory
	Cluster cmdutil.ClusterFlags
	GitURL  string
	Wait    bool
	Timeout time.Duration
	// SkipControllersWait does not wait for the Flux Deployments: for clusters whose Flux
	// controllers run outside the cluster (the end-to-end harness).
	SkipControllersWait bool
}

func newCmdUp(f *cmdutil.Factory, runF func(context.Context, *UpOptions) error) *cobra.Command {
	opts := &UpOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "up",
		Args:  cobra.NoArgs,
		Short: "Bootstrap Flux on the cluster, pointed at the stack repo, and let it converge",
		Long: `Apply the pinned Flux components of the stack repo's head (clusters/<stack>/flux-system/)
with server-side apply, wait for the controllers, then apply the sync objects (GitRepository and
Kustomization flux-system) and ask Flux to fetch now. Everything else, offers included, comes
from the repo through Flux. Running it again changes nothing; after ` + "`obol stack down`" + ` it
resumes the reconciler.

The cluster is --kubeconfig/--context, else $KUBECONFIG or ~/.kube/config. With no usable
kubeconfig and a k3d binary on PATH, it creates the k3d cluster obol-<stack> with the repo
mounted into the node.`,
		Example: cmdutil.Examples(`obol stack up --wait
obol stack up --context k3d-obol-dev --wait --timeout 10m
obol stack up --git-url http://127.0.0.1:8080/stack.git --skip-controllers-wait`),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunUp(cmd.Context(), opts)
		},
	}
	cmdutil.AddClusterFlags(cmd, &opts.Cluster)
	cmd.Flags().StringVar(&opts.GitURL, "git-url", "", "URL the GitRepository fetches from (default obol.yaml's spec.gitURL)")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the root Kustomizations are Ready at the repo's head")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for the controllers and, with --wait, for the head to be applied")
	cmd.Flags().BoolVar(&opts.SkipControllersWait, "skip-controllers-wait", false, "do not wait for the Flux Deployments (controllers that run outside the cluster)")
	return cmd
}

// RunUp bootstraps and, with --wait, follows the reconciler until the head is applied.
func RunUp(ctx context.Context, opts *UpOptions) error {
	f := opts.Factory
	st, err := readStack(f, opts.GitURL)
	if err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	cl, err := opts.Cluster.Connect(ctx)
	if errors.Is(err, cluster.ErrNoCluster) && opts.Cluster == (cmdutil.ClusterFlags{}) && f.Getenv("KUBECONFIG") == "" {
		if k3d := lookK3d(f.Getenv); k3d != "" {
			ctxName, kerr := createK3d(ctx, f, k3d, st)
			if kerr != nil {
				return fmt.Errorf("stack up: %w", kerr)
			}
			cl, err = cmdutil.ClusterFlags{Context: ctxName}.Connect(ctx)
		}
	}
	if err != nil {
		if errors.Is(err, cluster.ErrNoCluster) {
			return fmt.Errorf("stack up: %w\n(no k3d on PATH either: install k3d to get a local cluster, or point --kubeconfig/--context at one)", err)
		}
		return fmt.Errorf("stack up: %w", err)
	}
	progress := func(format string, args ...any) {
		fmt.Fprintf(f.IO.ErrOut, format+"\n", args...)
	}
	fmt.Fprintf(f.IO.ErrOut, "Stack %s at %s -> context %s (%s)\n", st.Name, cluster.ShortRevision(st.Commit), cl.Context, cl.REST.Host)
	start := time.Now()
	if st.Argo != nil {
		return runUpArgo(ctx, opts, cl, st, progress, start)
	}
	res, err := cl.Bootstrap(ctx, st.Objs, cluster.BootstrapOptions{
		SkipDeploymentsWait: opts.SkipControllersWait,
		Timeout:             opts.Timeout,
		Progress:            progress,
	})
	if err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Bootstrapped: %s (%.1fs)\n", res.Summary(), time.Since(start).Seconds())
	if err := cl.Trigger(ctx); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	if !opts.Wait {
		fmt.Fprintf(f.IO.Out, "Flux is fetching %s; `obol stack status` shows its progress\n", cluster.ShortRevision(st.Commit))
		return nil
	}
	wctx, cancel := cmdutil.TimeoutContext(ctx, opts.Timeout)
	defer cancel()
	if err := cl.Wait(wctx, st.Commit, func(p cluster.Progress) { progress("  %s", p) }); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Ready: %s applied (%.1fs)\n", cluster.ShortRevision(st.Commit), time.Since(start).Seconds())
	return nil
}

// runUpArgo hands the stack to the Argo CD already running in the cluster: it applies the root
// Application (and the git endpoint), asks Argo CD to look at git now and, with --wait, follows
// the root Application until it is Synced to the head and Healthy.
func runUpArgo(ctx context.Context, opts *UpOptions, cl *cluster.Client, st *stackAtHead, progress func(string, ...any), start time.Time) error {
	f := opts.Factory
	res, err := cl.ArgoBootstrap(ctx, st.Argo, cluster.BootstrapOptions{Timeout: opts.Timeout, Progress: progress})
	if err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Applied: %s (%.1fs)\n", res.Summary(), time.Since(start).Seconds())
	root, _, _, offers := render.ArgoNames(st.Name)
	if err := cl.ArgoRefresh(ctx, []string{root}, []string{offers}); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	if !opts.Wait {
		fmt.Fprintf(f.IO.Out, "Argo CD is syncing %s; `obol stack status` shows its progress\n", cluster.ShortRevision(st.Commit))
		return nil
	}
	wctx, cancel := cmdutil.TimeoutContext(ctx, opts.Timeout)
	defer cancel()
	if err := cl.ArgoWait(wctx, root, st.Commit, false, func(p cluster.ArgoProgress) { progress("  %s", p) }); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Ready: Application %s Synced and Healthy at %s (%.1fs)\n", root, cluster.ShortRevision(st.Commit), time.Since(start).Seconds())
	return nil
}
