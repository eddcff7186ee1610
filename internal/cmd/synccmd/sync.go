// Package synccmd implements `obol sync`: bring the stack repo in step with its shared remote.
package synccmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/gitsync"
)

// Options are `obol sync`.
type Options struct {
	Factory *cmdutil.Factory
	NoPush  bool
	Resolve string
	Remote  writer.RemoteFlags
	Output  string
}

// NewCmdSync returns `obol sync`.
func NewCmdSync(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "sync",
		Args:  cobra.NoArgs,
		Short: "Fetch the shared remote, rebuild local commits on it, push",
		Long: `Bring the stack repo in step with its shared remote: fetch the remote branch, rebuild the
commits made here (by --no-push, or a push that failed) on the remote head, and push them.
Commits are rebuilt, never merged: each local commit's offers are copied onto the new head,
so a conflict only happens when a teammate changed the same offer. Then sync stops, keeps
your commit, and names theirs; --resolve theirs drops your change to that offer, --resolve
ours puts your version on top.`,
		Example: cmdutil.Examples(`obol sync
obol sync --no-push
obol sync --resolve theirs`),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.NoPush, "no-push", false, "fetch and rebuild only")
	cmd.Flags().StringVar(&opts.Resolve, "resolve", "", "on a conflict over an offer: ours (your version wins) or theirs (the remote's wins)")
	_ = cmd.RegisterFlagCompletionFunc("resolve", cobra.FixedCompletions([]string{"ours", "theirs"}, cobra.ShellCompDirectiveNoFileComp))
	writer.AddRemoteFlags(cmd, &opts.Remote)
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

// Run syncs and reports what moved.
func Run(ctx context.Context, opts *Options) error {
	f := opts.Factory
	if err := cmdutil.CheckFormat(opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML); err != nil {
		return err
	}
	res := gitsync.Resolve(opts.Resolve)
	if res != gitsync.Refuse && res != gitsync.Ours && res != gitsync.Theirs {
		return fmt.Errorf("--resolve %q: use ours or theirs", opts.Resolve)
	}
	r, err := f.OpenRepo()
	if err != nil {
		return err
	}
	rep, shared, err := writer.Sync(ctx, f, r, writer.SyncOptions{Remote: opts.Remote, Push: !opts.NoPush, Resolve: res})
	if err != nil {
		var ce *gitsync.ConflictError
		if errors.As(err, &ce) {
			return fmt.Errorf("sync: conflict: %w", err)
		}
		return fmt.Errorf("sync: %w", err)
	}
	if !shared {
		return errors.New("sync: this stack repo has no shared remote: `obol stack init --remote URL` creates one, `obol stack join URL` clones one (or `git remote add origin URL && git branch -u origin/main`)")
	}
	if opts.Output != cmdutil.FormatTable {
		return cmdutil.PrintData(f.IO.Out, opts.Output, document(rep))
	}
	writer.ReportSync(f.IO.Out, rep, true)
	if len(rep.Incoming) == 0 && len(rep.Pushed) == 0 && len(rep.Rebuilt) == 0 {
		fmt.Fprintf(f.IO.Out, "Up to date with %s/%s (%s)\n", rep.Upstream.Remote, rep.Upstream.Branch, cmdutil.Short(rep.Head))
	}
	return nil
}

type commitDoc struct {
	Commit  string         `json:"commit"`
	Author  cmdutil.Person `json:"author"`
	Subject string         `json:"subject"`
}

type rebuiltDoc struct {
	Old     string `json:"old"`
	New     string `json:"new,omitempty"`
	Subject string `json:"subject"`
}

type syncDoc struct {
	Head     string       `json:"head"`
	Remote   string       `json:"remote"`
	Incoming []commitDoc  `json:"incoming"`
	Rebuilt  []rebuiltDoc `json:"rebuilt"`
	Pushed   []string     `json:"pushed"`
	Attempts int          `json:"attempts"`
	Notes    []string     `json:"notes,omitempty"`
}

func document(rep gitsync.Report) syncDoc {
	d := syncDoc{Head: rep.Head.String(), Remote: rep.Remote.String(), Attempts: rep.Attempts, Notes: rep.Notes,
		Incoming: []commitDoc{}, Rebuilt: []rebuiltDoc{}, Pushed: []string{}}
	for _, c := range rep.Incoming {
		d.Incoming = append(d.Incoming, commitDoc{Commit: c.Hash.String(), Author: cmdutil.Person{Name: c.Author.Name, Email: c.Author.Email}, Subject: c.Subject()})
	}
	for _, rb := range rep.Rebuilt {
		doc := rebuiltDoc{Old: rb.Old.String(), Subject: rb.Subject}
		if !rb.New.IsZero() {
			doc.New = rb.New.String()
		}
		d.Rebuilt = append(d.Rebuilt, doc)
	}
	for _, h := range rep.Pushed {
		d.Pushed = append(d.Pushed, h.String())
	}
	return d
}
