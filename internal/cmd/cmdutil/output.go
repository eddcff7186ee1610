package cmdutil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats for -o.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// AddOutputFlag adds -o/--output with the given formats; the first is the default.
func AddOutputFlag(cmd *cobra.Command, target *string, formats ...string) {
	*target = formats[0]
	cmd.Flags().StringVarP(target, "output", "o", formats[0], fmt.Sprintf("output format: %v", formats))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// CheckFormat refuses a format the command does not offer.
func CheckFormat(format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return fmt.Errorf("--output %q is not a format of this command: use one of %v", format, allowed)
}

// PrintData writes v as JSON or YAML.
func PrintData(w io.Writer, format string, v any) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case FormatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q", format)
}

// List is how every command prints a collection with -o json|yaml, as kubectl does: one
// shape for every kind of list.
type List[T any] struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Items      []T    `json:"items"`
}

// NewList wraps items (nil prints as []).
func NewList[T any](items []T) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{APIVersion: "v1", Kind: "List", Items: items}
}

// Person is a commit's author or committer in JSON, the same in every command.
type Person struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Table writes rows under a header, aligned like kubectl's tables. On a terminal, the table
// fits its width: the widest columns are cut (with "…") until it does; COLUMNS overrides the
// width, and output to a pipe or file is never cut.
func Table(w io.Writer, header []string, rows [][]string) error {
	return TableWidth(w, terminalWidth(w), header, rows)
}

// TableWidth is Table cut to width columns (0: never cut).
func TableWidth(w io.Writer, width int, header []string, rows [][]string) error {
	const gap, minCol = 3, 8
	if width > 0 {
		widths := make([]int, len(header))
		for _, r := range append([][]string{header}, rows...) {
			for i, c := range r {
				if i < len(widths) {
					widths[i] = max(widths[i], utf8.RuneCountInString(c))
				}
			}
		}
		total := func() int {
			t := gap * (len(widths) - 1)
			for _, x := range widths {
				t += x
			}
			return t
		}
		for total() > width {
			widest := 0
			for i := range widths {
				if widths[i] > widths[widest] {
					widest = i
				}
			}
			if widths[widest] <= minCol {
				break
			}
			widths[widest]--
		}
		cut := func(r []string) []string {
			out := make([]string, len(r))
			for i, c := range r {
				if i < len(widths) && utf8.RuneCountInString(c) > widths[i] {
					c = string([]rune(c)[:widths[i]-1]) + "…"
				}
				out[i] = c
			}
			return out
		}
		header = cut(header)
		cutRows := make([][]string, len(rows))
		for i, r := range rows {
			cutRows[i] = cut(r)
		}
		rows = cutRows
	}
	// tabwriter writes each cell and its padding on its own: one write(2) for the table.
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 4, gap, ' ', 0)
	write := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	write(header)
	for _, r := range rows {
		write(r)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// terminalWidth is the width to fit w's table to: $COLUMNS, else the terminal's, else 0 (not
// a terminal: never cut).
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	if c, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && c > 0 {
		return c
	}
	if c, _, err := term.GetSize(int(f.Fd())); err == nil && c > 0 {
		return c
	}
	return 0
}

// Examples indents example text the way kubectl and flux do in --help.
func Examples(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n")
}

// Short abbreviates a commit hash for humans.
func Short(h fmt.Stringer) string {
	s := h.String()
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// Plural is "1 commit", "2 commits"; an irregular plural can be given: Plural(n, "file
// differs", "files differ").
func Plural(n int, what string, plural ...string) string {
	if n == 1 {
		return "1 " + what
	}
	if len(plural) > 0 {
		return fmt.Sprintf("%d %s", n, plural[0])
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Article puts "a" or "an" before word, by its sound: "an inference", "an http" (aitch).
func Article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) || strings.HasPrefix(word, "http") {
		return "an " + word
	}
	return "a " + word
}
