// Package stack implements `obol stack`: creating the stack repo (init) and running it on a
// cluster (up, status, down, purge).
package stack

import (
	"context"
	"errors"
	"fmt"
	"github.com/go-git/go-git/v5/plumbing"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/gitremote"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/settings"
)

// NewCmdStack returns `obol stack`.
func NewCmdStack(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stack",
		Short: "Create and run the stack: the repo and the cluster that follows it",
	}
	cmd.AddCommand(newCmdInit(f, nil))
	cmd.AddCommand(newCmdJoin(f, nil))
	cmd.AddCommand(newCmdUp(f, nil))
	cmd.AddCommand(newCmdStatus(f, nil))
	cmd.AddCommand(newCmdDown(f, nil))
	cmd.AddCommand(newCmdPurge(f, nil))
	return cmd
}

// InitOptions are `obol stack init`.
type InitOptions struct {
	Factory *cmdutil.Factory
	Stack   string
	Branch  string
	GitURL  string
	Engine  string
	Bare    bool
	// Remote is the team's shared remote: the repo is pushed there and the reconciler watches it.
	Remote string
	// Public: the reconciler needs no credentials for the remote.
	Public bool
	// The edge (spec.edge, spec.tunnel in obol.yaml).
	EdgePort       int32
	PublicURL      string
	TunnelHostname string
	Write          writer.WriteFlags
	gitURLSet      bool
}

func newCmdInit(f *cmdutil.Factory, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "init",
		Args:  cobra.NoArgs,
		Short: "Create the stack repo and its first commit",
		Long: `Create a git repository holding the whole desired state of a stack: the reconciler's
wiring under clusters/<stack>/, the infrastructure, and an empty applications/ for offers.
The repo goes to --repo, else $OBOL_REPO, else $XDG_DATA_HOME/obol/stack.`,
		Example: cmdutil.Examples(`obol stack init --stack dev
obol stack init --stack dev --repo ./stack
obol stack init --stack prod --remote git@github.com:team/stack.git
obol stack init --stack prod --remote https://git.example.com/team/stack.git --token-file ~/.obol-token`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.gitURLSet = cmd.Flags().Changed("git-url")
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunInit(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Stack, "stack", "default", "stack name: the cluster's directory under clusters/")
	cmd.Flags().StringVar(&opts.Branch, "branch", settings.DefaultBranch, "branch the reconciler follows")
	cmd.Flags().StringVar(&opts.GitURL, "git-url", settings.DefaultGitURL, "URL the reconciler fetches the repo from")
	cmd.Flags().StringVar(&opts.Engine, "engine", string(settings.EngineFlux), "reconciler: flux or argocd (the same slices; the wiring under clusters/<stack>/ differs)")
	cmd.Flags().BoolVar(&opts.Bare, "bare", false, "create a bare repo (no work tree)")
	cmd.Flags().StringVar(&opts.Remote, "remote", "", "the team's shared remote (an empty repository): obol pushes there and the reconciler watches it")
	cmd.Flags().BoolVar(&opts.Public, "public", false, "with --remote: the reconciler can read the remote without credentials")
	cmd.Flags().Int32Var(&opts.EdgePort, "edge-port", settings.DefaultEdgePort, "host port the k3d cluster of `obol stack up` maps to the edge (offers at http://localhost:PORT)")
	cmd.Flags().StringVar(&opts.PublicURL, "public-url", "", "base URL buyers reach the edge at on a cluster of your own, e.g. https://api.example.com (the offers' URLs)")
	cmd.Flags().StringVar(&opts.TunnelHostname, "tunnel-hostname", "", "publish the edge through a Cloudflare tunnel at this hostname; `obol stack up --tunnel-token-file` gives it its token")
	writer.AddWriteFlags(cmd, &opts.Write)
	_ = cmd.RegisterFlagCompletionFunc("engine", cobra.FixedCompletions([]string{"flux", "argocd"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// RunInit validates the settings, then creates the repo with one commit holding everything
// rendered for an empty stack. An existing repo is never touched.
func RunInit(ctx context.Context, opts *InitOptions) error {
	f := opts.Factory
	if opts.Remote != "" {
		opts.Remote = writer.TakeURLCredential(f, opts.Remote)
	}
	st := settings.New(opts.Stack)
	st.Spec.Branch, st.Spec.GitURL, st.Spec.Engine = opts.Branch, opts.GitURL, settings.Engine(opts.Engine)
	st.Spec.Edge.Port, st.Spec.Edge.PublicURL, st.Spec.Tunnel.Hostname = opts.EdgePort, opts.PublicURL, opts.TunnelHostname
	if opts.Remote != "" {
		if !opts.gitURLSet {
			u, err := ReconcilerURL(opts.Remote)
			if err != nil {
				return fmt.Errorf("stack init: --remote: %w", err)
			}
			st.Spec.GitURL = u
		}
		if !opts.Public && !render.InClusterGitEndpoint(st.Spec.GitURL) {
			st.Spec.GitSecret = settings.DefaultGitSecret
		}
	}
	st.Default()
	if err := st.Validate(); err != nil {
		return fmt.Errorf("stack init: %w", err)
	}
	var upstream repo.Upstream
	var remoteHead plumbing.Hash
	if opts.Remote != "" && !opts.Write.DryRun {
		// A stack is created on an empty branch, or on one a forge started with a README (no
		// stack in it): an existing stack is joined, never overwritten.
		upstream = repo.Upstream{Remote: "origin", URL: opts.Remote, Branch: st.Spec.Branch}
		h, err := gitremote.Head(ctx, writer.Remote(f, opts.Remote, opts.Write.Remote), st.Spec.Branch)
		if err != nil {
			return fmt.Errorf("stack init: --remote %s: %w", gitremote.Redact(opts.Remote), err)
		}
		remoteHead = h
	}
	files, err := render.Stack(f.Assets, st)
	if err != nil {
		return fmt.Errorf("stack init: %w", err)
	}
	settingsFile, err := st.Encode()
	if err != nil {
		return fmt.Errorf("stack init: %w", err)
	}
	files[settings.File] = settingsFile

	dir, err := f.NewRepoDir()
	if err != nil {
		return err
	}
	if err := checkEmptyDir(dir); err != nil {
		return fmt.Errorf("stack init: %w, or use the stack that is there", err)
	}
	cleanup := cleanupFunc(dir)
	if opts.Write.DryRun {
		// Make the first commit in a throwaway repo: its diff is the whole stack.
		tmp, err := os.MkdirTemp("", "obol-init-")
		if err != nil {
			return err
		}
		dir, cleanup = tmp, func() { _ = os.RemoveAll(tmp) }
	}
	r, err := repo.Init(dir, repo.InitOptions{Branch: st.Spec.Branch, Bare: opts.Bare})
	if err != nil {
		cleanup()
		return fmt.Errorf("stack init: %w", err)
	}
	if upstream.URL != "" {
		if err := r.SetUpstream(upstream); err != nil {
			cleanup()
			return fmt.Errorf("stack init: %w", err)
		}
	}
	if !remoteHead.IsZero() {
		if err := writer.Pull(ctx, f, r, &opts.Write); err != nil {
			cleanup()
			return fmt.Errorf("stack init: %w", err)
		}
		head, err := r.Head()
		if err == nil {
			var snap *repo.Snapshot
			if snap, err = r.Snapshot(head); err == nil {
				if _, serr := fs.Stat(snap, settings.File); serr == nil {
					cleanup()
					return fmt.Errorf("stack init: --remote %s already holds a stack on branch %s (at %s): work on it with `obol stack join %s`", gitremote.Redact(opts.Remote), st.Spec.Branch, cmdutil.Short(head), gitremote.Redact(opts.Remote))
				}
			}
		}
		if err != nil {
			cleanup()
			return fmt.Errorf("stack init: %w", err)
		}
		fmt.Fprintf(f.IO.ErrOut, "--remote %s: branch %s holds no stack yet (a forge's first commit, say): the stack is committed on top of it\n", gitremote.Redact(opts.Remote), st.Spec.Branch)
	}
	msg := "stack init: " + st.Metadata.Name
	res, err := writer.Commit(ctx, f, r, opts.Write, msg, func(fs.FS) ([]repo.Change, error) {
		changes := make([]repo.Change, 0, len(files))
		for _, p := range files.Paths() {
			changes = append(changes, repo.Change{Path: p, Content: files[p]})
		}
		return changes, nil
	})
	if opts.Write.DryRun || err != nil && res.Commit.IsZero() {
		cleanup()
	}
	if err != nil {
		if cmdutil.IsSilent(err) {
			return err
		}
		return fmt.Errorf("stack init: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Created stack %s in %s (commit %s)\n", st.Metadata.Name, dir, cmdutil.Short(res.Commit))
	if upstream.URL != "" {
		fmt.Fprintf(f.IO.Out, "Shared remote: %s (branch %s); the reconciler fetches %s\n", gitremote.Redact(upstream.URL), upstream.Branch, gitremote.Redact(st.Spec.GitURL))
		if st.Spec.GitSecret != "" {
			fmt.Fprintf(f.IO.Out, "Give the cluster read access: obol stack up --git-token-file FILE (or --git-ssh-key FILE)\n")
		}
	}
	fmt.Fprintf(f.IO.Out, "Next: obol sell http NAME ... or obol sell inference NAME ...\n")
	return nil
}

// checkEmptyDir refuses a repo directory that exists with something in it: init and join never
// touch an existing repo.
func checkEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case err == nil && len(ents) > 0:
		return fmt.Errorf("%s already exists and is not empty: pick another --repo", dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return nil
}

// cleanupFunc undoes a failed init or join in dir: nothing of it is worth keeping, and an
// empty directory the user made stays.
func cleanupFunc(dir string) func() {
	_, err := os.Stat(dir)
	existed := err == nil
	return func() {
		if existed {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				_ = os.RemoveAll(filepath.Join(dir, e.Name()))
			}
			return
		}
		_ = os.RemoveAll(dir)
	}
}
