// Package history reads a stack repo's history in terms of offers: which commit changed which
// offer, and what an offer's slice was before a change. It reads commits and trees only.
package history

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/repo"
)

// Entry is one commit of the branch's first-parent history.
type Entry struct {
	Commit *repo.CommitInfo
	// Parent is the first parent (zero for the root commit).
	Parent plumbing.Hash
	// Units are the slice directories and other files the commit changed, sorted.
	Units []string
	// Offers are the names of the offers whose slices it changed, sorted.
	Offers []string
}

// Touches reports whether the commit changed unit u.
func (e *Entry) Touches(u string) bool {
	i := sort.SearchStrings(e.Units, u)
	return i < len(e.Units) && e.Units[i] == u
}

// Walk calls fn for each first-parent commit from head back to the root, newest first, until
// fn returns stop.
func Walk(r *repo.Repo, head plumbing.Hash, fn func(*Entry) (stop bool, err error)) error {
	for h := head; !h.IsZero(); {
		c, err := r.ReadCommit(h)
		if err != nil {
			return err
		}
		e := &Entry{Commit: c}
		if len(c.Parents) > 0 {
			e.Parent = c.Parents[0]
		}
		diff, err := r.DiffCommits(e.Parent, h)
		if err != nil {
			return err
		}
		units, offers := map[string]bool{}, map[string]bool{}
		for _, d := range diff {
			u, o := layout.Unit(d.Path)
			units[u] = true
			if o != "" {
				offers[o] = true
			}
		}
		e.Units, e.Offers = keys(units), keys(offers)
		stop, err := fn(e)
		if err != nil || stop {
			return err
		}
		h = e.Parent
	}
	return nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// OfferUnits are the units of offer name among units (its slice directory; two if it changed type).
func OfferUnits(units []string, name string) []string {
	var out []string
	for _, u := range units {
		if _, o := layout.Unit(u); o == name {
			out = append(out, u)
		}
	}
	return out
}

// LastChange finds the newest commit from head that changed offer name.
func LastChange(r *repo.Repo, head plumbing.Hash, name string) (*Entry, error) {
	var found *Entry
	err := Walk(r, head, func(e *Entry) (bool, error) {
		for _, o := range e.Offers {
			if o == name {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	if err == nil && found == nil {
		err = fmt.Errorf("offer %s: %w: `obol log` lists the history", name, ErrUnchanged)
	}
	return found, err
}

// ErrUnchanged is LastChange's error for an offer no commit on the branch changed.
var ErrUnchanged = errors.New("no commit on this branch changed it")

// Resolve finds the commit of the branch's first-parent history whose hash starts with rev
// (at least 4 hex digits).
func Resolve(r *repo.Repo, head plumbing.Hash, rev string) (*Entry, error) {
	rev = strings.ToLower(rev)
	var found []*Entry
	err := Walk(r, head, func(e *Entry) (bool, error) {
		if strings.HasPrefix(e.Commit.Hash.String(), rev) {
			found = append(found, e)
		}
		return len(rev) == 40 && len(found) > 0, nil
	})
	switch {
	case err != nil:
		return nil, err
	case len(found) == 0:
		return nil, fmt.Errorf("no commit %s on this branch: `obol log` lists the commits", rev)
	case len(found) > 1:
		return nil, fmt.Errorf("commit %s is ambiguous (%d commits start with it): give more digits", rev, len(found))
	}
	return found[0], nil
}

// UnitChanges are the changes that make unit u hold exactly what snap holds there: the slice
// directory replaced wholesale (or removed), or the single file set (or removed).
func UnitChanges(snap *repo.Snapshot, u string) ([]repo.Change, error) {
	fi, err := snap.Stat(u)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return []repo.Change{{Path: u, Delete: true}}, nil
	case err != nil:
		return nil, err
	case !fi.IsDir():
		data, err := snap.ReadFile(u)
		if err != nil {
			return nil, err
		}
		return []repo.Change{{Path: u, Content: data}}, nil
	}
	changes := []repo.Change{{Path: u, Delete: true}}
	err = fs.WalkDir(snap, u, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := snap.ReadFile(p)
		if err != nil {
			return err
		}
		changes = append(changes, repo.Change{Path: path.Clean(p), Content: data})
		return nil
	})
	return changes, err
}

// SameUnit reports whether unit u has the same content (or is absent) in both snapshots.
func SameUnit(a, b *repo.Snapshot, u string) (bool, error) {
	ha, err := unitHash(a, u)
	if err != nil {
		return false, err
	}
	hb, err := unitHash(b, u)
	return err == nil && ha == hb, err
}

func unitHash(s *repo.Snapshot, p string) (plumbing.Hash, error) {
	fi, err := s.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	h, _ := fi.Sys().(plumbing.Hash)
	return h, nil
}
