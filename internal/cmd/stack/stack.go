// Package stack implements `obol stack`: creating the stack repo (init) and running it on a
// cluster (up, status, down, purge).
package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
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
	Write   cmdutil.WriteFlags
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
obol stack init --stack prod --git-url https://git.example.com/team/stack.git`),
		RunE: func(cmd *cobra.Command, args []string) error {
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
	cmdutil.AddWriteFlags(cmd, &opts.Write)
	_ = cmd.RegisterFlagCompletionFunc("engine", cobra.FixedCompletions([]string{"flux", "argocd"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// RunInit validates the settings, then creates the repo with one commit holding everything
// rendered for an empty stack. An existing repo is never touched.
func RunInit(ctx context.Context, opts *InitOptions) error {
	f := opts.Factory
	st := settings.New(opts.Stack)
	st.Spec.Branch, st.Spec.GitURL, st.Spec.Engine = opts.Branch, opts.GitURL, settings.Engine(opts.Engine)
	st.Default()
	if err := st.Validate(); err != nil {
		return fmt.Errorf("stack init: %w", err)
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

	dir, err := f.RepoDir()
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	existed := err == nil
	switch {
	case existed && len(ents) > 0:
		return fmt.Errorf("stack init: %s already exists and is not empty: pick another --repo, or use the stack that is there", dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("stack init: %w", err)
	}
	if opts.Write.DryRun {
		// Make the first commit in a throwaway repo: its diff is the whole stack.
		tmp, err := os.MkdirTemp("", "obol-init-")
		if err != nil {
			return err
		}
		dir, existed = tmp, false
	}
	// Nothing of a failed init is worth keeping; an empty directory the user made stays.
	cleanup := func() {
		if existed {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				_ = os.RemoveAll(filepath.Join(dir, e.Name()))
			}
			return
		}
		_ = os.RemoveAll(dir)
	}
	r, err := repo.Init(dir, repo.InitOptions{Branch: st.Spec.Branch, Bare: opts.Bare})
	if err != nil {
		cleanup()
		return fmt.Errorf("stack init: %w", err)
	}
	msg := "stack init: " + st.Metadata.Name
	res, err := f.Commit(ctx, r, opts.Write, msg, func(fs.FS) ([]repo.Change, error) {
		changes := make([]repo.Change, 0, len(files))
		for _, p := range files.Paths() {
			changes = append(changes, repo.Change{Path: p, Content: files[p]})
		}
		return changes, nil
	})
	if opts.Write.DryRun || err != nil {
		cleanup()
	}
	if err != nil {
		if cmdutil.IsSilent(err) {
			return err
		}
		return fmt.Errorf("stack init: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Created stack %s in %s (commit %s)\n", st.Metadata.Name, dir, cmdutil.Short(res.Commit))
	fmt.Fprintf(f.IO.Out, "Next: obol sell http NAME ... or obol sell inference NAME ...\n")
	return nil
}
