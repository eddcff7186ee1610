package render

import (
	"io/fs"
	"sort"
	"testing/fstest"

	"github.com/obol/obol/internal/repo"
)

// Overlay is base with changes applied: the tree a commit of changes would hold, to render
// and check before committing. (testing/fstest's MapFS is a plain in-memory fs.FS.)
func Overlay(base fs.FS, changes []repo.Change) (fs.FS, error) {
	out := fstest.MapFS{}
	err := fs.WalkDir(base, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(base, p)
		if err != nil {
			return err
		}
		out[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		if c.Delete {
			delete(out, c.Path)
			continue
		}
		out[c.Path] = &fstest.MapFile{Data: c.Content, Mode: 0o644}
	}
	return out, nil
}

// Merge applies later changes over earlier ones, one change a path, sorted by path.
func Merge(sets ...[]repo.Change) []repo.Change {
	by := map[string]repo.Change{}
	for _, set := range sets {
		for _, c := range set {
			by[c.Path] = c
		}
	}
	out := make([]repo.Change, 0, len(by))
	for _, c := range by {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
