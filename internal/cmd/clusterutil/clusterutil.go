// Package clusterutil is what the commands that reach a cluster share: --kubeconfig and
// --context, and a writing command's --wait. It is apart from cmdutil because it links
// client-go, which the commands that only read the repo do not need.
package clusterutil

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
)

// ClusterFlags pick the cluster: --kubeconfig and --context, else kubectl's defaults.
type ClusterFlags struct {
	Kubeconfig string
	Context    string
}

// AddClusterFlags adds --kubeconfig and --context.
func AddClusterFlags(cmd *cobra.Command, c *ClusterFlags) {
	cmd.Flags().StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, else ~/.kube/config)")
	cmd.Flags().StringVar(&c.Context, "context", "", "kubeconfig context (default the current context)")
	_ = cmd.MarkFlagFilename("kubeconfig")
}

// Config is the cluster.Config the flags select.
func (c ClusterFlags) Config() cluster.Config {
	return cluster.Config{Kubeconfig: c.Kubeconfig, Context: c.Context}
}

// Connect connects to the cluster the flags select and checks that it answers.
func (c ClusterFlags) Connect(ctx context.Context) (*cluster.Client, error) {
	cl, err := cluster.Connect(c.Config())
	if err != nil {
		return nil, err
	}
	if err := cl.Reachable(ctx); err != nil {
		return nil, err
	}
	return cl, nil
}

// TimeoutContext is ctx bounded by d; d <= 0 means no bound.
func TimeoutContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// WaitFlags are a writing command's --wait, --timeout and cluster flags.
type WaitFlags struct {
	Wait    bool
	Timeout time.Duration
	Cluster ClusterFlags
}

// AddWaitFlags adds --wait, --timeout, --kubeconfig and --context.
func AddWaitFlags(cmd *cobra.Command, w *WaitFlags) {
	cmd.Flags().BoolVar(&w.Wait, "wait", false, "after the commit, ask the reconciler to fetch now and wait until the commit is applied and the offer's gateway is Ready (or gone)")
	cmd.Flags().DurationVar(&w.Timeout, "timeout", 5*time.Minute, "how long --wait waits")
	AddClusterFlags(cmd, &w.Cluster)
}

// Check rejects --wait with --dry-run (a dry run commits nothing to wait for) and, before
// anything is committed, --wait on a cluster that does not answer: the commit would land and
// the command fail, and running it again would say the offer exists.
func (w WaitFlags) Check(ctx context.Context, write writer.WriteFlags) error {
	if !w.Wait {
		return nil
	}
	if write.DryRun {
		return fmt.Errorf("--wait and --dry-run: a dry run commits nothing to wait for; drop one of them")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := w.Cluster.Connect(ctx); err != nil {
		return fmt.Errorf("--wait: nothing committed, the cluster to wait on does not answer (start it, pick another with --kubeconfig/--context, or leave out --wait): %w", err)
	}
	return nil
}

// WaitRelease is --wait after a commit moved the branch (never before): it asks the
// reconciler to fetch now, follows it until commit is applied, then until the offer's
// HelmRelease (Flux) or Application (Argo CD) named release is Ready at that commit (or gone,
// when the commit removed it), printing progress to ErrOut.
func WaitRelease(ctx context.Context, f *cmdutil.Factory, w WaitFlags, st *settings.Stack, commit, release string, gone bool) error {
	ctx, cancel := TimeoutContext(ctx, w.Timeout)
	defer cancel()
	cl, err := w.Cluster.Connect(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	what := "Ready"
	if gone {
		what = "removed"
	}
	if st.Spec.Engine == settings.EngineArgoCD {
		return waitArgo(ctx, f, cl, w, st, commit, release, gone, start)
	}
	fmt.Fprintf(f.IO.ErrOut, "Waiting for %s to be applied and HelmRelease %s to be %s (context %s, timeout %s)\n", cluster.ShortRevision(commit), release, what, cl.Context, w.Timeout)
	if err := cl.Trigger(ctx); err != nil {
		return err
	}
	if err := cl.Wait(ctx, commit, func(p cluster.Progress) { fmt.Fprintf(f.IO.ErrOut, "  %s\n", p) }); err != nil {
		return err
	}
	if err := cl.WaitRelease(ctx, release, gone, func(p cluster.ReleaseProgress) { fmt.Fprintf(f.IO.ErrOut, "  %s\n", p) }); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.Out, "HelmRelease %s %s at %s (%.1fs)\n", release, what, cluster.ShortRevision(commit), time.Since(start).Seconds())
	return nil
}

// waitArgo is WaitRelease for a stack Argo CD reconciles: refresh the root Application and the
// offers' ApplicationSet (so a new offer's Application is generated now, not at the next poll)
// and the offer's Application, then follow the Application to the commit, Synced and Healthy.
func waitArgo(ctx context.Context, f *cmdutil.Factory, cl *cluster.Client, w WaitFlags, st *settings.Stack, commit, app string, gone bool, start time.Time) error {
	if err := cl.ArgoInstalled(ctx); err != nil {
		return err
	}
	root, _, _, offers := render.ArgoNames(st.Metadata.Name)
	what := "Synced and Healthy"
	if gone {
		what = "removed"
	}
	fmt.Fprintf(f.IO.ErrOut, "Waiting for Application %s to be %s at %s (context %s, timeout %s)\n", app, what, cluster.ShortRevision(commit), cl.Context, w.Timeout)
	if err := cl.ArgoRefresh(ctx, []string{root, app}, []string{offers}); err != nil {
		return err
	}
	refreshed := false
	err := cl.ArgoWait(ctx, app, commit, gone, func(p cluster.ArgoProgress) {
		fmt.Fprintf(f.IO.ErrOut, "  %s\n", p)
		// A new offer's Application appears after the ApplicationSet regenerated: refresh it
		// then, so it compares with the commit at once.
		if p.Exists && !refreshed {
			refreshed = true
			_ = cl.ArgoRefresh(ctx, []string{app}, nil)
		}
	})
	if err != nil {
		return err
	}
	if !gone {
		ns, err := cl.ArgoDestination(ctx, app)
		if err != nil {
			return err
		}
		if err := cl.WaitRoute(ctx, ns, cluster.GatewayObjectName(app), func(rs *cluster.RouteStatus) { fmt.Fprintf(f.IO.ErrOut, "  %s\n", rs) }); err != nil {
			return fmt.Errorf("the offer's Application %s is Healthy, but %w", app, err)
		}
	}
	fmt.Fprintf(f.IO.Out, "Application %s %s at %s (%.1fs)\n", app, what, cluster.ShortRevision(commit), time.Since(start).Seconds())
	return nil
}
