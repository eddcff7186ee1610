// Package importcmd implements `obol import`: a one-shot migration of the predecessor's
// on-disk offer stores into slices of the stack repo, in one commit.
package importcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/sell"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/legacy"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/stackrepo"
)

// Options are `obol import`.
type Options struct {
	Factory *cmdutil.Factory
	// From is the predecessor's config directory; "" means DefaultFrom.
	From  string
	Write writer.WriteFlags
}

// NewCmdImport returns `obol import`.
func NewCmdImport(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "import",
		Args:  cobra.NoArgs,
		Short: "Import the offers of the predecessor obol CLI into the stack repo, in one commit",
		Long: `Import reads the predecessor's offer stores in its config directory (--from, default
$OBOL_CONFIG_DIR, else $XDG_CONFIG_HOME/obol, else ~/.config/obol):

  inference/<name>/config.json        inference gateway descriptors
  sell-http/<namespace>__<name>.yaml  the sell ledger (http offers; agent offers are skipped)

and commits every importable offer as a slice, all in one commit. Each offer must pass the
same validation as obol sell; an offer it rejects is reported with the field, value and fix
and is not imported (never changed to fit). Fields with no equivalent are listed as
"dropped", values translated (a model server on localhost becomes host.k3d.internal) as
"changed". An offer whose slice already exists with the same content is unchanged, so
importing twice changes nothing; one that exists with different content is a conflict and
is left alone. Tombstoned (deleted) descriptors and agent offers are skipped.

Exit status:
  0  every importable offer is in the repo (skipped files and dropped fields do not count)
  1  with --dry-run: the import would change the repo (whatever was rejected); without: it
     committed what it could, but some files were rejected, malformed or in conflict
  2  error: --from unreadable or holding no store, no stack repo, the commit failed

The report goes to stdout (stderr with --dry-run, whose stdout is the diff).`,
		Example: cmdutil.Examples(`obol import --dry-run            # show the report and the diff, write nothing
obol import --from ~/.config/obol`),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunImport(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.From, "from", "", "the predecessor's config directory (default $OBOL_CONFIG_DIR, else $XDG_CONFIG_HOME/obol, else ~/.config/obol)")
	_ = cmd.MarkFlagDirname("from")
	writer.AddWriteFlags(cmd, &opts.Write)
	return cmd
}

// DefaultFrom is the predecessor's config directory, resolved as it resolved it (its
// development mode, OBOL_DEVELOPMENT, is not followed: pass --from .workspace/config).
func DefaultFrom(getenv func(string) string) string {
	if d := getenv("OBOL_CONFIG_DIR"); d != "" {
		return d
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "obol")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "obol")
	}
	return ""
}

// Outcome is what became of one offer or file.
type Outcome string

// What happened to each file, as the report says it.
const (
	Imported Outcome = "imported"
	// WouldImport is Imported in a dry run's report.
	WouldImport Outcome = "would import"
	Unchanged   Outcome = "unchanged"
	Conflict    Outcome = "conflict"
	Skipped     Outcome = Outcome(legacy.Skipped)
	Rejected    Outcome = Outcome(legacy.Rejected)
	Malformed   Outcome = Outcome(legacy.Malformed)
)

// Row is one line of the report.
type Row struct {
	Outcome Outcome
	Name    string
	Path    string
	Detail  string
	// Notes are what of an imported offer was left behind ("dropped: ...") or translated
	// ("changed: ...").
	Notes []string
}

// RunImport reads --from, then commits every importable offer at once.
func RunImport(ctx context.Context, opts *Options) error {
	f := opts.Factory
	from := opts.From
	if from == "" {
		from = DefaultFrom(f.Getenv)
		if from == "" {
			return errors.New("import: cannot find the predecessor's config directory: pass --from DIR")
		}
	}
	if err := checkFrom(from); err != nil {
		return err
	}
	res := legacy.Read(os.DirFS(from))

	var offers []legacy.Item
	var rows []Row
	notes := map[string][]string{}
	for _, p := range res.Problems {
		if p.Kind.IsNote() {
			notes[p.Path] = append(notes[p.Path], string(p.Kind)+": "+p.Reason)
			continue
		}
		rows = append(rows, Row{Outcome: Outcome(p.Kind), Name: p.Name, Path: p.Path, Detail: p.Reason})
	}
	for _, it := range res.Items {
		// legacy validated it already; validate again so nothing reaches the repo unchecked.
		offer.Default(it.Offer)
		if err := offer.Validate(it.Offer); err != nil {
			rows = append(rows, Row{Outcome: Rejected, Name: it.Offer.Name, Path: it.Path, Detail: "obol's validation rejects it:\n" + err.Error()})
			continue
		}
		offers = append(offers, it)
	}

	r, err := f.OpenRepo()
	if err != nil {
		return err
	}
	head, err := f.OpenHead()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	// The message needs the count before the commit builds; build checks it still holds.
	plan, _, err := classify(head.Snapshot, offers)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	n := count(plan, Imported)
	msg := fmt.Sprintf("import: %s from %s", cmdutil.Plural(n, "offer"), from)

	var result repo.Result
	if n > 0 {
		result, err = writer.Commit(ctx, f, r, opts.Write, msg, func(head fs.FS) ([]repo.Change, error) {
			p, changes, err := classify(head, offers)
			if err != nil {
				return nil, err
			}
			if count(p, Imported) != n {
				return nil, errors.New("the stack repo changed while importing: run obol import again")
			}
			plan = p
			return changes, nil
		})
		if err != nil && !errors.Is(err, cmdutil.ErrDiff) {
			return fmt.Errorf("%s: %w", msg, err)
		}
	}
	rows = append(plan, rows...)
	for i := range rows {
		rows[i].Notes = notes[rows[i].Path]
	}

	out := f.IO.Out
	if opts.Write.DryRun {
		out = f.IO.ErrOut
		// Nothing is imported by a dry run: say what would be.
		for i := range rows {
			if rows[i].Outcome == Imported {
				rows[i].Outcome = WouldImport
			}
		}
	}
	printReport(out, rows)
	switch {
	case opts.Write.DryRun:
		fmt.Fprintf(out, "import (dry run): would import %s from %s\n", cmdutil.Plural(n, "offer"), from)
	case !result.Commit.IsZero():
		fmt.Fprintf(out, "%s (commit %s, %s)\n", msg, cmdutil.Short(result.Commit), cmdutil.Plural(len(result.Changed), "file"))
	default:
		fmt.Fprintf(f.IO.ErrOut, "import from %s: nothing to change\n", from)
	}

	attention := count(rows, Rejected) + count(rows, Malformed) + count(rows, Conflict)
	if attention > 0 && opts.Write.DryRun {
		// A dry run's exit status says whether the repo would change (as every --dry-run).
		fmt.Fprintf(f.IO.ErrOut, "import (dry run): %d files would not be imported (rejected, malformed or in conflict): see the report\n", attention)
		return err
	}
	if attention > 0 {
		fmt.Fprintf(f.IO.ErrOut, "import: %d files were not imported (rejected, malformed or in conflict): see the report\n", attention)
		return &cmdutil.ExitError{Code: cmdutil.ExitDiff, Silent: true}
	}
	if errors.Is(err, cmdutil.ErrDiff) {
		return err
	}
	return nil
}

// checkFrom fails early when --from is not a predecessor config directory, so a typo is not
// mistaken for "nothing to import".
func checkFrom(from string) error {
	st, err := os.Stat(from)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("import: --from %s does not exist: give the predecessor's config directory (default ~/.config/obol)", from)
	}
	if err != nil {
		return fmt.Errorf("import: --from: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("import: --from %s is not a directory", from)
	}
	for _, d := range []string{legacy.InferenceDir, legacy.SellLedgerDir} {
		if st, err := os.Stat(filepath.Join(from, d)); err == nil && st.IsDir() {
			return nil
		}
	}
	return fmt.Errorf("import: %s holds neither %s/ nor %s/: is --from the predecessor's config directory?", from, legacy.InferenceDir, legacy.SellLedgerDir)
}

// classify decides each offer against head: a new slice (whose files it returns), one that
// is already there (unchanged), or a name taken by a different offer (conflict).
func classify(head fs.FS, items []legacy.Item) ([]Row, []repo.Change, error) {
	var rows []Row
	var changes []repo.Change
	for _, it := range items {
		o := it.Offer
		row := Row{Name: o.Name, Path: it.Path}
		e, found, err := stackrepo.Find(head, o.Name)
		if err != nil {
			return nil, nil, err
		}
		if found {
			row.Outcome, row.Detail = compare(head, e, o)
			rows = append(rows, row)
			continue
		}
		c, err := sell.SliceChanges(head, o)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", it.Path, err)
		}
		changes = append(changes, c...)
		row.Outcome = Imported
		row.Detail = fmt.Sprintf("%s offer in namespace %s -> %s", o.Spec.Type, o.Namespace, stackrepo.Entry{Type: o.Spec.Type, Name: o.Name}.Dir())
		rows = append(rows, row)
	}
	return rows, changes, nil
}

// compare tells an existing slice holding the same offer from a different one.
func compare(head fs.FS, e stackrepo.Entry, o *v1alpha1.ServiceOffer) (Outcome, string) {
	conflict := func(why string) (Outcome, string) {
		return Conflict, fmt.Sprintf("%s already exists in the stack repo (%s) %s: the import leaves it as it is; compare with `obol sell show %s`, then update or delete one of them", o.Name, e.Dir(), why, o.Name)
	}
	existing, err := stackrepo.Offer(head, e)
	if err != nil {
		return conflict("but cannot be read (" + err.Error() + ")")
	}
	a, errA := offer.Encode(existing)
	b, errB := offer.Encode(o)
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		return conflict("with different content")
	}
	return Unchanged, "already in the stack repo at " + e.Dir()
}

func count(rows []Row, o Outcome) int {
	n := 0
	for _, r := range rows {
		if r.Outcome == o {
			n++
		}
	}
	return n
}

// printReport writes one line per offer or file, details indented under it.
func printReport(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tNAME\tFROM")
	for _, r := range rows {
		name := r.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Outcome, name, r.Path)
	}
	_ = tw.Flush()
	for _, r := range rows {
		if (r.Outcome == Imported || r.Outcome == WouldImport) && len(r.Notes) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s %s (%s):\n", r.Outcome, orDash(r.Name), r.Path)
		fmt.Fprintln(w, indent(r.Detail, "  "))
		for _, n := range r.Notes {
			fmt.Fprintln(w, indent(n, "  "))
		}
	}
	first, n := "imported", count(rows, Imported)
	if c := count(rows, WouldImport); c > 0 {
		first, n = "would be imported", c
	}
	fmt.Fprintf(w, "\n%d %s, %d unchanged, %d skipped, %d rejected, %d malformed, %d conflicts\n",
		n, first, count(rows, Unchanged), count(rows, Skipped), count(rows, Rejected), count(rows, Malformed), count(rows, Conflict))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}
