package list

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/cmd/version"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/stackrepo"
)

// cacheFile, in the git directory beside git's own index, holds the offers the last list read,
// by the git blob id of their offer.yaml: decoding a thousand offer.yaml files is most of a
// list's time, and a blob id names its content for good. It is only ever a shortcut: a
// missing, unreadable or foreign cache is read past, and one that cannot be written is not.
const cacheFile = "obol-offers"

// cacheFormat changes when what the cache holds does.
const cacheFormat = "1"

type cache struct {
	// Version is the obol that wrote the cache: another may default or validate differently.
	Version string `json:"version"`
	// Tree is the applications/ tree the entries were read from: when the head still has it,
	// not even the slice directories are read again.
	Tree    string       `json:"tree"`
	Entries []cacheEntry `json:"entries"`
}

type cacheEntry struct {
	Type  v1alpha1.OfferType     `json:"type"`
	Name  string                 `json:"name"`
	Blob  string                 `json:"blob,omitempty"`
	Offer *v1alpha1.ServiceOffer `json:"offer,omitempty"` // nil: it did not read; never cached
}

func cacheVersion() string { return cacheFormat + "/" + version.Version }

func loadCache(gitDir string) *cache {
	b, err := os.ReadFile(filepath.Join(gitDir, cacheFile))
	if err != nil {
		return nil
	}
	var c cache
	if json.Unmarshal(b, &c) != nil || c.Version != cacheVersion() {
		return nil
	}
	return &c
}

// readOffers is stackrepo.ReadOffers of every slice at head, through the cache.
func readOffers(gitDir string, head *repo.Snapshot) ([]*v1alpha1.ServiceOffer, []error, error) {
	tree, _ := head.EntryHash(layout.Applications)
	old := loadCache(gitDir)
	if old != nil && old.Tree == tree.String() && complete(old) {
		return old.offers(), nil, nil
	}
	entries, err := stackrepo.Slices(head)
	if err != nil {
		return nil, nil, err
	}
	known := map[string]*v1alpha1.ServiceOffer{}
	if old != nil {
		for _, e := range old.Entries {
			if e.Offer != nil {
				known[e.Blob] = e.Offer
			}
		}
	}
	next := cache{Version: cacheVersion(), Tree: tree.String(), Entries: make([]cacheEntry, len(entries))}
	var missed []stackrepo.Entry
	var at []int
	for i, e := range entries {
		next.Entries[i] = cacheEntry{Type: e.Type, Name: e.Name}
		if blob, err := head.BlobHash(e.OfferPath()); err == nil {
			next.Entries[i].Blob = blob.String()
			// The same offer.yaml copied to another directory names another offer: not a hit.
			if o, ok := known[blob.String()]; ok && o.Name == e.Name && o.Spec.Type == e.Type {
				next.Entries[i].Offer = o
				continue
			}
		}
		missed, at = append(missed, e), append(at, i)
	}
	read, failed := stackrepo.ReadOffers(head, missed)
	var errs []error
	for k, i := range at {
		next.Entries[i].Offer = read[k]
		if failed[k] != nil {
			errs = append(errs, failed[k])
		}
	}
	// Here the cache was missing, of another tree, or held a broken offer: it changes.
	saveCache(gitDir, &next)
	return next.offers(), errs, nil
}

// offers are the entries' offers that read, in order.
func (c *cache) offers() []*v1alpha1.ServiceOffer {
	out := make([]*v1alpha1.ServiceOffer, 0, len(c.Entries))
	for _, e := range c.Entries {
		if e.Offer != nil {
			out = append(out, e.Offer)
		}
	}
	return out
}

func complete(c *cache) bool {
	for _, e := range c.Entries {
		if e.Offer == nil {
			return false
		}
	}
	return true
}

// saveCache replaces the cache at once (write, then rename), so a concurrent list reads the
// old one or the new one, never half of one.
func saveCache(gitDir string, c *cache) {
	b, err := json.Marshal(c)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(gitDir, cacheFile+".*.tmp")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), filepath.Join(gitDir, cacheFile)) != nil {
		_ = os.Remove(tmp.Name())
	}
}
