// Package rollback implements `obol rollback`: undo a change with a new commit, pushed like
// any other write.
package rollback

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/clusterutil"
	"github.com/obol/obol/internal/cmd/cmdutil"
	rendercmd "github.com/obol/obol/internal/cmd/render"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/history"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/stackrepo"
)

// Options are `obol rollback`.
type Options struct {
	Factory *cmdutil.Factory
	Target  string
	Write   writer.WriteFlags
	Wait    clusterutil.WaitFlags
}

// NewCmdRollback returns `obol rollback`.
func NewCmdRollback(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "rollback OFFER|COMMIT",
		Args:  cobra.ExactArgs(1),
		Short: "Undo an offer's last change, or a whole commit, with a new commit",
		Long: `Write a commit that undoes a change, and push it like any other write; history is never
rewritten. With an offer name, the offer's slice goes back to exactly what it was before its
last change (a rollback of a create deletes the offer; rolling back again undoes the rollback).
With a commit (4 to 40 hex digits, from ` + "`obol log`" + `), every offer and file it changed goes
back, unless one was changed again since: then that later commit is named, roll it back first.`,
		Example: cmdutil.Examples(`obol rollback weather
obol rollback weather --wait
obol rollback 3f2a9c1e --dry-run`),
		ValidArgsFunction: f.CompleteOffers,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	writer.AddWriteFlags(cmd, &opts.Write)
	clusterutil.AddWaitFlags(cmd, &opts.Wait)
	return cmd
}

// Run builds the undo on the branch head (again, if another writer moved it) and commits it.
func Run(ctx context.Context, opts *Options) error {
	f := opts.Factory
	if err := opts.Wait.Check(ctx, opts.Write); err != nil {
		return err
	}
	r, err := f.OpenRepo()
	if err != nil {
		return err
	}
	// The message names the commit undone, so plan once on the head as it is now; the build
	// plans again under the lock and refuses if another writer changed what it would undo.
	if err := writer.Pull(ctx, f, r, &opts.Write); err != nil {
		return fmt.Errorf("rollback %s: %w", opts.Target, err)
	}
	h, err := r.Head()
	if err != nil {
		return err
	}
	snap, err := r.Snapshot(h)
	if err != nil {
		return err
	}
	_, msg, err := plan(r, snap, opts.Target)
	if err != nil {
		return fmt.Errorf("rollback %s: %w", opts.Target, err)
	}
	res, err := writer.Commit(ctx, f, r, opts.Write, msg, func(head fs.FS) ([]repo.Change, error) {
		changes, m, err := plan(r, head.(*repo.Snapshot), opts.Target)
		if err == nil && m != msg {
			err = fmt.Errorf("%s changed while rolling back (%s): run the rollback again", opts.Target, m)
		}
		if err != nil {
			return nil, err
		}
		return consistent(f, head, changes)
	})
	if err != nil {
		if cmdutil.IsSilent(err) {
			return err
		}
		return fmt.Errorf("rollback %s: %w", opts.Target, err)
	}
	if res.Commit.IsZero() {
		if !opts.Write.DryRun {
			fmt.Fprintf(f.IO.ErrOut, "rollback %s: nothing to change\n", opts.Target)
		}
		return nil
	}
	fmt.Fprintf(f.IO.Out, "%s (commit %s, %s)\n", msg, cmdutil.Short(res.Commit), cmdutil.Plural(len(res.Changed), "file"))
	if !opts.Wait.Wait {
		return nil
	}
	return wait(ctx, f, r, opts.Wait, res.Commit)
}

// wait follows each offer the rollback changed until its release is Ready at the commit, or
// gone when the rollback removed the offer.
func wait(ctx context.Context, f *cmdutil.Factory, r *repo.Repo, w clusterutil.WaitFlags, commit plumbing.Hash) error {
	snap, err := r.Snapshot(commit)
	if err != nil {
		return err
	}
	st, err := stackrepo.Settings(snap)
	if err != nil {
		return err
	}
	var offers []string
	err = history.Walk(r, commit, func(e *history.Entry) (bool, error) {
		offers = e.Offers
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, name := range offers {
		_, found, err := stackrepo.Find(snap, name)
		if err != nil {
			return err
		}
		if err := clusterutil.WaitRelease(ctx, f, w, st, commit.String(), name, !found); err != nil {
			return fmt.Errorf("rolled back in %s, but --wait: %w", cmdutil.Short(commit), err)
		}
	}
	return nil
}

// plan computes the undo of target on head, and the commit message that names what it undoes.
func plan(r *repo.Repo, head *repo.Snapshot, target string) ([]repo.Change, string, error) {
	if e, err := history.LastChange(r, head.Commit(), target); err == nil {
		units := history.OfferUnits(e.Units, target)
		changes, err := restore(r, e, units)
		return changes, fmt.Sprintf("rollback %s: undo %s (%s)", target, e.Commit.Hash.String()[:12], e.Commit.Subject()), err
	} else if !isHex(target) {
		if errors.Is(err, history.ErrUnchanged) {
			err = errors.New("no offer or commit by that name on this branch (a commit is named by its hash): `obol log` lists the history")
		}
		return nil, "", err
	}
	e, err := history.Resolve(r, head.Commit(), target)
	if err != nil {
		return nil, "", err
	}
	if e.Parent.IsZero() {
		return nil, "", fmt.Errorf("commit %s created the stack; there is nothing before it to go back to", target)
	}
	// Every unit must still be as the commit left it: a later change would be lost silently.
	after, err := r.Snapshot(e.Commit.Hash)
	if err != nil {
		return nil, "", err
	}
	for _, u := range e.Units {
		same, err := history.SameUnit(after, head, u)
		if err != nil {
			return nil, "", err
		}
		if !same {
			later, err := laterChange(r, head, e, u)
			if err != nil {
				return nil, "", err
			}
			return nil, "", fmt.Errorf("%s was changed again after %s, by %s (%s, %q): roll that back first, or roll back the offer by name",
				u, e.Commit.Hash.String()[:12], later.Commit.Hash.String()[:12], later.Commit.Author.Name, later.Commit.Subject())
		}
	}
	changes, err := restore(r, e, e.Units)
	return changes, fmt.Sprintf("rollback %s (%s)", e.Commit.Hash.String()[:12], e.Commit.Subject()), err
}

// restore makes each unit hold what it held before commit e.
func restore(r *repo.Repo, e *history.Entry, units []string) ([]repo.Change, error) {
	before, err := r.Snapshot(e.Parent)
	if err != nil {
		return nil, err
	}
	var changes []repo.Change
	for _, u := range units {
		c, err := history.UnitChanges(before, u)
		if err != nil {
			return nil, err
		}
		changes = append(changes, c...)
	}
	return changes, nil
}

func laterChange(r *repo.Repo, head *repo.Snapshot, e *history.Entry, u string) (*history.Entry, error) {
	var found *history.Entry
	err := history.Walk(r, head.Commit(), func(x *history.Entry) (bool, error) {
		if x.Commit.Hash == e.Commit.Hash {
			return true, nil
		}
		if found == nil && x.Touches(u) {
			found = x
		}
		return false, nil
	})
	if err == nil && found == nil {
		found = e
	}
	return found, err
}

func isHex(s string) bool {
	if len(s) < 4 || len(s) > 40 {
		return false
	}
	_, err := hex.DecodeString(strings.Repeat("0", len(s)%2) + s)
	return err == nil
}

// consistent makes a rollback's result a repo validate accepts: the sources it restores
// (offer.yaml, obol.yaml) must be valid today, and every file obol derives from them is
// rendered anew from them (a commit rendered by an older obol, or a restored obol.yaml, would
// otherwise leave stale derived files).
func consistent(f *cmdutil.Factory, head fs.FS, changes []repo.Change) ([]repo.Change, error) {
	all, _, _, err := rendercmd.Rerender(f.Assets, head, changes)
	if err != nil {
		return nil, fmt.Errorf("the rolled-back repo would not be valid today (validate would refuse it):\n%w", err)
	}
	return all, nil
}
