package sell

import (
	"context"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/clusterutil"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/repo"
)

// DeleteOptions are `obol sell delete NAME`.
type DeleteOptions struct {
	Factory *cmdutil.Factory
	Name    string
	Write   writer.WriteFlags
	Wait    clusterutil.WaitFlags
}

func newCmdDelete(f *cmdutil.Factory, runF func(context.Context, *DeleteOptions) error) *cobra.Command {
	opts := &DeleteOptions{Factory: f}
	cmd := &cobra.Command{
		Use:               "delete NAME",
		Aliases:           []string{"rm"},
		Args:              cobra.ExactArgs(1),
		Short:             "Stop selling an offer: remove its slice and commit",
		Example:           cmdutil.Examples(`obol sell delete weather`),
		ValidArgsFunction: f.CompleteOffers,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunDelete(cmd.Context(), opts)
		},
	}
	writer.AddWriteFlags(cmd, &opts.Write)
	clusterutil.AddWaitFlags(cmd, &opts.Wait)
	return cmd
}

// RunDelete removes the offer's whole slice; the reconciler prunes what it deployed.
func RunDelete(ctx context.Context, opts *DeleteOptions) error {
	f := opts.Factory
	if err := opts.Wait.Check(ctx, opts.Write); err != nil {
		return err
	}
	r, offerType, msg, err := openExisting(ctx, f, &opts.Write, opts.Name, "delete")
	if err != nil {
		return err
	}
	res, err := writer.Commit(ctx, f, r, opts.Write, msg, func(head fs.FS) ([]repo.Change, error) {
		e, err := findAs(head, opts.Name, offerType)
		if err != nil {
			return nil, err
		}
		return []repo.Change{{Path: e.Dir(), Delete: true}}, nil
	})
	return finish(ctx, f, r, opts.Wait, msg, res, err, opts.Name, true)
}
