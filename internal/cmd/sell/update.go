package sell

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/cmd/clusterutil"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/stackrepo"
)

// UpdateOptions are `obol sell update NAME`.
type UpdateOptions struct {
	Factory *cmdutil.Factory
	Name    string
	Write   writer.WriteFlags
	Wait    clusterutil.WaitFlags
	flags   offerFlags
	fs      *pflag.FlagSet
}

func newCmdUpdate(f *cmdutil.Factory, runF func(context.Context, *UpdateOptions) error) *cobra.Command {
	opts := &UpdateOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "update NAME",
		Args:  cobra.ExactArgs(1),
		Short: "Change an offer: edit its offer.yaml, re-render its slice, commit",
		Long: `Change only the fields whose flags are given; everything else stays as it is in the
offer.yaml at the branch head. Naming a price model replaces the old one.`,
		Example: cmdutil.Examples(`# Raise the price
obol sell update weather --per-request 0.002

# Move an inference offer to Base mainnet
obol sell update qwen --chain base`),
		ValidArgsFunction: f.CompleteOffers,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			opts.fs = cmd.Flags()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunUpdate(cmd.Context(), opts)
		},
	}
	opts.flags.addTo(cmd.Flags(), "")
	completeValues(cmd)
	writer.AddWriteFlags(cmd, &opts.Write)
	clusterutil.AddWaitFlags(cmd, &opts.Wait)
	return cmd
}

// RunUpdate applies the flags to the offer at the branch head. The update is computed inside
// the commit's build step, so a concurrent writer's change to another offer is never undone
// and a change to this one is never overwritten with stale data.
func RunUpdate(ctx context.Context, opts *UpdateOptions) error {
	f := opts.Factory
	if err := opts.Wait.Check(ctx, opts.Write); err != nil {
		return err
	}
	r, offerType, msg, err := openExisting(ctx, f, &opts.Write, opts.Name, "update")
	if err != nil {
		return err
	}
	var dropped error
	res, err := writer.Commit(ctx, f, r, opts.Write, msg, func(head fs.FS) ([]repo.Change, error) {
		e, err := findAs(head, opts.Name, offerType)
		if err != nil {
			return nil, err
		}
		o, err := stackrepo.Offer(head, e)
		if err != nil {
			// A hand edit broke it: repair it, leaving out what does not decode (and saying so),
			// as long as the update makes a valid offer.
			data, rerr := fs.ReadFile(head, e.OfferPath())
			if rerr != nil {
				return nil, err
			}
			var de *offer.DroppedError
			if o, rerr = offer.DecodeRepair(e.OfferPath(), data); !errors.As(rerr, &de) {
				return nil, fmt.Errorf("%w\n(it cannot be repaired by update: fix it by hand, or `obol rollback %s`)", err, opts.Name)
			}
			dropped = de
		}
		if err := opts.flags.apply(o, opts.fs, noEnv); err != nil {
			return nil, err
		}
		offer.Default(o)
		if err := offer.Validate(o); err != nil {
			return nil, fmt.Errorf("invalid offer:\n%w", flagErrors(err, o.Spec.Type))
		}
		return SliceChanges(head, o)
	})
	if err == nil && dropped != nil {
		fmt.Fprintf(f.IO.ErrOut, "repaired %s: left out of its offer.yaml what did not decode:\n%v\n", opts.Name, dropped)
	}
	return finish(ctx, f, r, opts.Wait, msg, res, err, opts.Name, false)
}

// openExisting opens the repo for a change to an existing offer and names the commit,
// "sell <type> <name>: <verb>".
func openExisting(ctx context.Context, f *cmdutil.Factory, w *writer.WriteFlags, name, verb string) (*repo.Repo, v1alpha1.OfferType, string, error) {
	if err := checkName(name); err != nil {
		return nil, "", "", err
	}
	// On a shared stack the offer may have been created or changed by a teammate: pull first.
	r, err := f.OpenRepo()
	if err != nil {
		return nil, "", "", err
	}
	if err := writer.Pull(ctx, f, r, w); err != nil {
		return nil, "", "", fmt.Errorf("sell %s %s: %w", verb, name, err)
	}
	head, err := f.OpenHead()
	if err != nil {
		return nil, "", "", err
	}
	e, err := findAs(head.Snapshot, name, "")
	if err != nil {
		return nil, "", "", err
	}
	return head.Repo, e.Type, fmt.Sprintf("sell %s %s: %s", e.Type, name, verb), nil
}

// findAs finds an existing offer; with a type, it must still be of that type (another writer
// may have replaced it since the commit message was chosen).
func findAs(head fs.FS, name string, t v1alpha1.OfferType) (stackrepo.Entry, error) {
	if _, err := stackrepo.Settings(head); err != nil {
		return stackrepo.Entry{}, err
	}
	e, found, err := stackrepo.Find(head, name)
	if err != nil {
		return e, err
	}
	if !found {
		return e, fmt.Errorf("offer %s does not exist: `obol sell list` shows the offers", name)
	}
	if t != "" && e.Type != t {
		return e, fmt.Errorf("offer %s changed from %s to %s while this command ran: run it again", name, t, e.Type)
	}
	return e, nil
}

// noEnv keeps X402_WALLET out of updates: an update changes only what its flags say.
func noEnv(string) string { return "" }

// checkName refuses names that cannot be an offer before anything is read, with the same
// message offer validation gives.
func checkName(name string) error {
	var errs offer.Errors
	if !errors.As(offer.Validate(&v1alpha1.ServiceOffer{ObjectMeta: metav1.ObjectMeta{Name: name}}), &errs) {
		return nil
	}
	for _, e := range errs {
		if e.Field == "metadata.name" {
			return fmt.Errorf("NAME (%w)", e)
		}
	}
	return nil
}
