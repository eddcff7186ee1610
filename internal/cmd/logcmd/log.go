// Package logcmd implements `obol log`: the stack's history in terms of offers.
package logcmd

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/gitsync"
	"github.com/obol/obol/internal/history"
	"github.com/obol/obol/internal/repo"
)

// Options are `obol log`.
type Options struct {
	Factory *cmdutil.Factory
	Offer   string
	Limit   int
	Output  string
}

// NewCmdLog returns `obol log`.
func NewCmdLog(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "log [OFFER]",
		Args:  cobra.MaximumNArgs(1),
		Short: "Show the stack's history: who changed which offer, when",
		Long: `List the commits of the stack repo's branch, newest first, with the offers each changed.
With an offer name, only the commits that changed that offer. On a stack with a shared remote,
commits not pushed yet are marked.`,
		Example: cmdutil.Examples(`obol log
obol log weather
obol log -n 5 -o json`),
		ValidArgsFunction: f.CompleteOffers,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Offer = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Limit, "max-count", "n", 0, "show at most this many commits (0: all)")
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

// Row is one commit as `obol log -o json` prints it.
type Row struct {
	Commit  string         `json:"commit"`
	Author  cmdutil.Person `json:"author"`
	Date    time.Time      `json:"date"`
	Offers  []string       `json:"offers"`
	Paths   []string       `json:"paths"`
	Subject string         `json:"subject"`
	Pushed  *bool          `json:"pushed,omitempty"`
}

// Run walks the branch head's first-parent history.
func Run(opts *Options) error {
	f := opts.Factory
	if err := cmdutil.CheckFormat(opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML); err != nil {
		return err
	}
	if opts.Limit < 0 {
		return fmt.Errorf("--max-count %d: give 0 (all) or a positive number", opts.Limit)
	}
	r, err := f.OpenRepo()
	if err != nil {
		return err
	}
	head, err := r.Head()
	if err != nil {
		return err
	}
	pushed, err := remoteAncestors(r)
	if err != nil {
		return err
	}
	rows := []Row{}
	err = history.Walk(r, head, func(e *history.Entry) (bool, error) {
		if opts.Offer != "" && !contains(e.Offers, opts.Offer) {
			return false, nil
		}
		c := e.Commit
		row := Row{Commit: c.Hash.String(), Author: cmdutil.Person{Name: c.Author.Name, Email: c.Author.Email}, Date: c.Author.When,
			Offers: e.Offers, Paths: e.Units, Subject: c.Subject()}
		if pushed != nil {
			p := pushed[c.Hash]
			row.Pushed = &p
		}
		rows = append(rows, row)
		return opts.Limit > 0 && len(rows) >= opts.Limit, nil
	})
	if err != nil {
		return err
	}
	if opts.Offer != "" && len(rows) == 0 {
		return fmt.Errorf("offer %s: no commit on this branch changed it: `obol sell list` shows the offers", opts.Offer)
	}
	if opts.Output != cmdutil.FormatTable {
		return cmdutil.PrintData(f.IO.Out, opts.Output, cmdutil.NewList(rows))
	}
	table := make([][]string, 0, len(rows))
	local := 0
	for _, row := range rows {
		commit := row.Commit[:12]
		if row.Pushed != nil && !*row.Pushed {
			commit += " (local)"
			local++
		}
		what := strings.Join(row.Offers, ",")
		if what == "" {
			what = "-"
		}
		table = append(table, []string{commit, row.Date.Format("2006-01-02 15:04"), row.Author.Name, what, row.Subject})
	}
	if err := cmdutil.Table(f.IO.Out, []string{"COMMIT", "DATE", "AUTHOR", "OFFERS", "SUBJECT"}, table); err != nil {
		return err
	}
	if local > 0 {
		fmt.Fprintf(f.IO.ErrOut, "%s not pushed yet: run `obol sync`\n", cmdutil.Plural(local, "commit"))
	}
	return nil
}

// remoteAncestors is the set of commits the last fetched remote head contains; nil when the
// stack has no shared remote.
func remoteAncestors(r *repo.Repo) (map[plumbing.Hash]bool, error) {
	u, ok, err := r.Upstream()
	if err != nil || !ok {
		return nil, err
	}
	h, err := r.ReadRef(u.TrackingRef())
	if err != nil {
		return nil, err
	}
	return gitsync.Ancestors(r, h)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
