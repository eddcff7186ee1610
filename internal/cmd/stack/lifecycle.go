package stack

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/cmd/clusterutil"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/gitsync"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/settings"
)

// StatusOptions are `obol stack status`.
type StatusOptions struct {
	Factory *cmdutil.Factory
	Cluster clusterutil.ClusterFlags
	Output  string
}

func newCmdStatus(f *cmdutil.Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "status",
		Args:  cobra.NoArgs,
		Short: "What the reconciler fetched and applied, against the repo's head",
		Long: `One row per root object (the GitRepository and the Kustomizations flux-system,
infrastructure, applications) and per offer (its HelmRelease): COMMITTED is the repo's head,
FETCHED the revision the GitRepository holds, APPLIED the revision the object was last applied
at (for an offer, by the applications Kustomization), READY and REASON its Ready condition. An
offer of the head that the cluster lacks is listed as NotFound; a HelmRelease the head no longer
has says it will be pruned.`,
		Example: cmdutil.Examples(`obol stack status
obol stack status -o json`),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckFormat(opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunStatus(cmd.Context(), opts)
		},
	}
	clusterutil.AddClusterFlags(cmd, &opts.Cluster)
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

// RunStatus prints the reconciler's view of the stack.
func RunStatus(ctx context.Context, opts *StatusOptions) error {
	f := opts.Factory
	st, err := readStack(f, "")
	if err != nil {
		return fmt.Errorf("stack status: %w", err)
	}
	cl, err := opts.Cluster.Connect(ctx)
	if err != nil {
		return fmt.Errorf("stack status: %w", err)
	}
	var rows []cluster.Row
	if st.Argo != nil {
		root, _, infra, _ := render.ArgoNames(st.Name)
		rows, err = cl.ArgoStatus(ctx, st.Commit, append([]string{root, infra}, st.Releases...))
	} else {
		rows, err = cl.Status(ctx, st.Commit, st.Releases)
	}
	if err != nil {
		return fmt.Errorf("stack status: %w", err)
	}
	if opts.Output != cmdutil.FormatTable {
		return cmdutil.PrintData(f.IO.Out, opts.Output, cmdutil.NewList(rows))
	}
	if err := cmdutil.Table(f.IO.Out, []string{"NAME", "KIND", "COMMITTED", "FETCHED", "APPLIED", "READY", "ROUTE", "REASON"}, StatusTable(rows)); err != nil {
		return err
	}
	return reportDivergence(f, st.Dir)
}

// reportDivergence says, on a stack with a shared remote, when the reconciler cannot be at
// this clone's head: commits not pushed, or pushed by others and not fetched here.
func reportDivergence(f *cmdutil.Factory, dir string) error {
	r, err := repo.Open(dir)
	if err != nil {
		return err
	}
	u, ok, err := r.Upstream()
	if err != nil || !ok {
		return err
	}
	ahead, behind, err := gitsync.Divergence(r, u)
	if err != nil {
		return err
	}
	where := u.Remote + "/" + u.Branch
	if ahead > 0 {
		fmt.Fprintf(f.IO.ErrOut, "%s here not pushed to %s yet, and the reconciler follows %s: run `obol sync`\n", cmdutil.Plural(ahead, "commit"), where, where)
	}
	if behind > 0 {
		fmt.Fprintf(f.IO.ErrOut, "%s has %s this clone lacks (as of the last fetch): run `obol sync`\n", where, cmdutil.Plural(behind, "commit"))
	}
	return nil
}

// StatusTable renders rows as table cells, revisions shortened to 12 hex digits.
func StatusTable(rows []cluster.Row) [][]string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		reason := r.Reason
		if r.Ready == "False" && r.Message != "" {
			reason += ": " + r.Message
		}
		if len(reason) > 120 {
			reason = reason[:117] + "..."
		}
		out = append(out, []string{r.Name, r.Kind, dash(cluster.ShortRevision(r.Committed)), dash(cluster.ShortRevision(r.Fetched)),
			dash(cluster.ShortRevision(r.Applied)), dash(r.Ready), dash(r.Route.Summary()), dash(reason)})
	}
	return out
}

// DownOptions are `obol stack down`.
type DownOptions struct {
	Factory *cmdutil.Factory
	Cluster clusterutil.ClusterFlags
}

func newCmdDown(f *cmdutil.Factory, runF func(context.Context, *DownOptions) error) *cobra.Command {
	opts := &DownOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "down",
		Args:  cobra.NoArgs,
		Short: "Stop the reconciler following the repo (suspend it); nothing is deleted",
		Long: `Set spec.suspend on the GitRepository and the root Kustomizations: Flux stops fetching
and applying. What runs keeps running, and the repo is not touched. ` + "`obol stack up`" + ` resumes.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunDown(cmd.Context(), opts)
		},
	}
	clusterutil.AddClusterFlags(cmd, &opts.Cluster)
	return cmd
}

// RunDown suspends the reconciler.
func RunDown(ctx context.Context, opts *DownOptions) error {
	if err := notForArgo(opts.Factory, "down", "argocd app set obol-<stack> --sync-policy none"); err != nil {
		return err
	}
	cl, err := opts.Cluster.Connect(ctx)
	if err != nil {
		return fmt.Errorf("stack down: %w", err)
	}
	done, err := cl.Suspend(ctx)
	if err != nil {
		return fmt.Errorf("stack down: %w", err)
	}
	if len(done) == 0 {
		fmt.Fprintln(opts.Factory.IO.Out, "Nothing to suspend (already down, or never bootstrapped)")
		return nil
	}
	fmt.Fprintf(opts.Factory.IO.Out, "Suspended %v; the repo is untouched: `obol stack up` resumes\n", done)
	return nil
}

// PurgeOptions are `obol stack purge`.
type PurgeOptions struct {
	Factory *cmdutil.Factory
	Cluster clusterutil.ClusterFlags
	Yes     bool
	Timeout time.Duration
}

func newCmdPurge(f *cmdutil.Factory, runF func(context.Context, *PurgeOptions) error) *cobra.Command {
	opts := &PurgeOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "purge",
		Args:  cobra.NoArgs,
		Short: "Remove everything the stack applied, then Flux; the repo stays",
		Long: `Delete the stack's Kustomizations with prune (Flux deletes what they applied), then the
GitRepository, then the Flux components. The stack repo is not touched: ` + "`obol stack up`" + `
brings everything back.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !opts.Yes {
				return fmt.Errorf("stack purge deletes every object the stack applied and Flux itself from the cluster: pass --yes")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunPurge(cmd.Context(), opts)
		},
	}
	clusterutil.AddClusterFlags(cmd, &opts.Cluster)
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "confirm")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for each deletion")
	return cmd
}

// RunPurge removes the stack's objects and Flux from the cluster.
func RunPurge(ctx context.Context, opts *PurgeOptions) error {
	f := opts.Factory
	st, err := readStack(f, "")
	if err != nil {
		return fmt.Errorf("stack purge: %w", err)
	}
	if st.Argo != nil {
		return notForArgo(f, "purge", "argocd app delete obol-<stack> --cascade")
	}
	cl, err := opts.Cluster.Connect(ctx)
	if err != nil {
		return fmt.Errorf("stack purge: %w", err)
	}
	err = cl.Purge(ctx, st.Objs, cluster.PurgeOptions{Timeout: opts.Timeout, Progress: func(format string, args ...any) {
		fmt.Fprintf(f.IO.ErrOut, format+"\n", args...)
	}})
	if err != nil {
		return fmt.Errorf("stack purge: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Purged; the repo %s is untouched: `obol stack up` brings the stack back\n", st.Dir)
	return nil
}

// notForArgo refuses down and purge on a stack Argo CD reconciles, naming Argo CD's own way.
func notForArgo(f *cmdutil.Factory, verb, instead string) error {
	head, err := f.OpenHead()
	if err != nil || head.Settings.Spec.Engine != settings.EngineArgoCD {
		return nil // not an Argo CD stack (or no repo: the Flux path reports it)
	}
	return fmt.Errorf("stack %s: not available for a stack Argo CD reconciles (engine argocd): use `%s`; the repo is untouched either way", verb, strings.ReplaceAll(instead, "<stack>", head.Settings.Metadata.Name))
}
