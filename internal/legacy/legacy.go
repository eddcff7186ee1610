// Package legacy reads the predecessor tool's on-disk offer stores (its config directory) and
// maps each offer to a ServiceOffer. It is pure: it reads an fs.FS and never touches git or a
// cluster, so `obol import` can show what it would do before doing it.
//
// Two stores are read:
//
//   - inference/<name>/config.json: the host inference gateway's descriptors;
//   - sell-http/<namespace>__<name>.yaml: the sell ledger, the applied ServiceOffer manifests
//     (bare, or a v1 List holding a Namespace, maybe a backend, and the ServiceOffer).
//
// Every offer returned is defaulted and passes offer.Validate; everything else found is
// reported as a Problem naming the file and what to do.
package legacy

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/offer"
)

// Store directories inside the predecessor's config directory.
const (
	InferenceDir  = "inference"
	SellLedgerDir = "sell-http"
)

// MaxFileSize bounds a legacy file: real ones are a few KiB.
const MaxFileSize = 1 << 20

// Kind classifies a Problem.
type Kind string

const (
	// Skipped means the file holds nothing to import, by design (a tombstone, an agent offer, a
	// directory or a file that is not part of a store).
	Skipped Kind = "skipped"
	// Malformed means the file cannot be read as what its store holds.
	Malformed Kind = "malformed"
	// Rejected means the file is an offer, but not one obol can import as is.
	Rejected Kind = "rejected"
	// Dropped means the offer is imported, but a field of it has no equivalent and is left behind.
	Dropped Kind = "dropped"
	// Changed means the offer is imported with a value translated to what it meant (e.g. an
	// upstream on localhost as the host saw it becomes host.k3d.internal).
	Changed Kind = "changed"
)

// IsNote reports whether k is about an imported offer rather than a file left behind.
func (k Kind) IsNote() bool { return k == Dropped || k == Changed }

// Item is one offer found in a store.
type Item struct {
	// Path is the file, relative to the config directory (slash-separated).
	Path string
	// Offer is the mapped offer, defaulted and valid.
	Offer *v1alpha1.ServiceOffer
}

// Problem is something about a file the user should know: why it was not imported, or what
// of it was left behind.
type Problem struct {
	Path string
	Kind Kind
	// Name is the offer's name when known.
	Name string
	// Reason says what is wrong and what to do about it.
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s: %s", p.Path, p.Kind, p.Reason)
}

// Result is what Read found.
type Result struct {
	Items    []Item
	Problems []Problem
}

// Read reads both stores. An offer name found twice (names are unique in a stack repo) is
// imported from the first file, in path order, and the others are rejected.
func Read(fsys fs.FS) Result {
	var res Result
	for _, read := range []func(fs.FS) ([]Item, []Problem){ReadInference, ReadSellLedger} {
		items, probs := read(fsys)
		res.Items = append(res.Items, items...)
		res.Problems = append(res.Problems, probs...)
	}
	seen := map[string]string{}
	kept := res.Items[:0]
	for _, it := range res.Items {
		if first, dup := seen[it.Offer.Name]; dup {
			res.Problems = append(res.Problems, Problem{Path: it.Path, Kind: Rejected, Name: it.Offer.Name,
				Reason: fmt.Sprintf("offer name %q is also used by %s, and names are unique in a stack: rename one with `obol sell` after the import", it.Offer.Name, first)})
			continue
		}
		seen[it.Offer.Name] = it.Path
		kept = append(kept, it)
	}
	res.Items = kept
	return res
}

// collector gathers a store's results.
type collector struct {
	items []Item
	probs []Problem
	// notes are the current offer's Dropped and Changed problems: reported only when the offer
	// is imported, since a rejected offer's details would be noise.
	notes []Problem
}

func (c *collector) problem(path string, k Kind, name, format string, args ...any) {
	p := Problem{Path: path, Kind: k, Name: name, Reason: fmt.Sprintf(format, args...)}
	switch k {
	case Dropped, Changed:
		c.notes = append(c.notes, p)
		return
	case Rejected, Malformed:
		c.notes = nil
	}
	c.probs = append(c.probs, p)
}

// finish defaults and validates a mapped offer: one the new rules reject is reported with
// the validation's own message and not returned, never changed to fit.
func (c *collector) finish(path string, o *v1alpha1.ServiceOffer) {
	offer.Default(o)
	if err := offer.Validate(o); err != nil {
		c.problem(path, Rejected, o.Name, "obol's validation rejects it (fix it in the file and import again, or recreate it with `obol sell`):\n%s", indent(err.Error()))
		return
	}
	c.items = append(c.items, Item{Path: path, Offer: o})
	c.probs = append(c.probs, c.notes...)
	c.notes = nil
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// readSmall reads a file, refusing huge ones.
func readSmall(fsys fs.FS, p string) ([]byte, error) {
	st, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("is %d bytes, more than %d: not a store file", st.Size(), MaxFileSize)
	}
	return fs.ReadFile(fsys, p)
}

// sortedKeys returns m's keys in order, for deterministic reports.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
