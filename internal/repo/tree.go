package repo

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// treeEntry is one entry of a tree object. Names (and the original mode
// text) are substrings of one string per decoded tree, so decoding a tree of
// 10,000 entries costs two allocations.
type treeEntry struct {
	name     string
	mode     filemode.FileMode
	modeText string // as stored; re-emitted verbatim so unchanged entries keep their bytes
	hash     plumbing.Hash
}

func (e *treeEntry) isDir() bool { return e.mode == filemode.Dir }

// isFile reports whether the entry is something a work tree holds as a file
// (regular, executable or symlink); gitlinks and trees are not.
func (e *treeEntry) isFile() bool {
	return e.mode == filemode.Regular || e.mode == filemode.Executable ||
		e.mode == filemode.Deprecated || e.mode == filemode.Symlink
}

func parseTree(h plumbing.Hash, data []byte) ([]treeEntry, error) {
	s := string(data)
	entries := make([]treeEntry, 0, len(s)/36+1)
	for i := 0; i < len(s); {
		sp := strings.IndexByte(s[i:], ' ')
		if sp <= 0 {
			return nil, fmt.Errorf("tree %s: malformed entry at byte %d", h, i)
		}
		modeText := s[i : i+sp]
		mode, err := strconv.ParseUint(modeText, 8, 32)
		if err != nil {
			return nil, fmt.Errorf("tree %s: bad mode %q", h, modeText)
		}
		i += sp + 1
		nul := strings.IndexByte(s[i:], 0)
		if nul <= 0 || i+nul+1+20 > len(s) {
			return nil, fmt.Errorf("tree %s: malformed entry at byte %d", h, i)
		}
		e := treeEntry{name: s[i : i+nul], mode: filemode.FileMode(mode), modeText: modeText}
		i += nul + 1
		copy(e.hash[:], s[i:i+20])
		i += 20
		entries = append(entries, e)
	}
	return entries, nil
}

func encodeTree(entries []treeEntry) []byte {
	n := 0
	for i := range entries {
		n += len(entries[i].modeString()) + len(entries[i].name) + 22
	}
	out := make([]byte, 0, n)
	for i := range entries {
		e := &entries[i]
		out = append(out, e.modeString()...)
		out = append(out, ' ')
		out = append(out, e.name...)
		out = append(out, 0)
		out = append(out, e.hash[:]...)
	}
	return out
}

func (e *treeEntry) modeString() string {
	if e.modeText != "" {
		return e.modeText
	}
	return strconv.FormatUint(uint64(e.mode), 8)
}

// compareNames orders tree entries exactly as git does (base_name_compare):
// bytewise, with a directory name compared as if it ended in '/'.
func compareNames(a string, aDir bool, b string, bDir bool) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	ca, cb := byte(0), byte(0)
	if len(a) > n {
		ca = a[n]
	} else if aDir {
		ca = '/'
	}
	if len(b) > n {
		cb = b[n]
	} else if bDir {
		cb = '/'
	}
	return int(ca) - int(cb)
}

func compareEntries(a, b *treeEntry) int {
	return compareNames(a.name, a.isDir(), b.name, b.isDir())
}

// findEntry returns the index of the entry called name (file or directory)
// in git-sorted entries, or -1.
func findEntry(entries []treeEntry, name string) int {
	for _, dir := range [2]bool{false, true} {
		i := sort.Search(len(entries), func(i int) bool {
			return compareNames(entries[i].name, entries[i].isDir(), name, dir) >= 0
		})
		if i < len(entries) && entries[i].name == name {
			return i
		}
	}
	return -1
}

// readTree decodes tree h; the zero hash is the empty tree.
func readTree(rd objectReader, h plumbing.Hash) ([]treeEntry, error) {
	if h.IsZero() {
		return nil, nil
	}
	if p, ok := rd.(*pending); ok {
		return p.tree(h)
	}
	data, err := rd.read(plumbing.TreeObject, h)
	if err != nil {
		return nil, err
	}
	return parseTree(h, data)
}

// changeNode is one path component of a change set: a file to write, a path
// to delete, or a directory whose children change. A directory node with
// reset set drops its old content before its children apply.
type changeNode struct {
	write    bool
	content  []byte
	reset    bool
	children map[string]*changeNode
}

// add records c; later changes override earlier ones on the same path, and
// deleting a directory then writing into it replaces its content.
func (n *changeNode) add(c Change) error {
	parts := strings.Split(c.Path, "/")
	for i, p := range parts[:len(parts)-1] {
		child := n.children[p]
		if child == nil {
			child = &changeNode{}
			n.setChild(p, child)
		}
		if child.write {
			if c.Delete {
				return nil // nothing can exist below a file being written
			}
			return fmt.Errorf("change %s: %s is also written as a file", c.Path, strings.Join(parts[:i+1], "/"))
		}
		n = child
	}
	leaf := parts[len(parts)-1]
	if c.Delete {
		n.setChild(leaf, &changeNode{reset: true})
		return nil
	}
	if old := n.children[leaf]; old != nil && len(old.children) > 0 {
		return fmt.Errorf("change %s: it is also a directory in this change set", c.Path)
	}
	n.setChild(leaf, &changeNode{write: true, content: c.Content})
	return nil
}

func (n *changeNode) setChild(name string, c *changeNode) {
	if n.children == nil {
		n.children = map[string]*changeNode{}
	}
	n.children[name] = c
}

// applyTree returns the tree that results from applying n to tree base,
// adding new blobs and trees to p. Only trees along changed paths are read
// and rebuilt; untouched subtrees are reused by hash. An empty result is the
// zero hash (git keeps no empty directories).
func applyTree(p *pending, base plumbing.Hash, n *changeNode) (plumbing.Hash, error) {
	entries, err := readTree(p, base)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	removed := map[int]bool{}
	var inserts []treeEntry
	for name, child := range n.children {
		idx := findEntry(entries, name)
		var old *treeEntry
		if idx >= 0 {
			old = &entries[idx]
		}
		var nu *treeEntry
		switch {
		case child.write:
			mode := filemode.Regular
			if old != nil && (old.mode == filemode.Regular || old.mode == filemode.Executable) {
				mode = old.mode // keep an executable bit the content does not know about
			}
			e := treeEntry{name: name, mode: mode, hash: blobHash(child.content)}
			if old != nil && old.mode == mode {
				e.modeText = old.modeText
			}
			if old == nil || old.hash != e.hash {
				p.add(plumbing.BlobObject, child.content)
			}
			nu = &e
		case child.reset && len(child.children) == 0:
			// delete: nu stays nil
		default:
			sub := plumbing.ZeroHash
			if old != nil && old.isDir() && !child.reset {
				sub = old.hash
			}
			h, err := applyTree(p, sub, child)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if !h.IsZero() {
				e := treeEntry{name: name, mode: filemode.Dir, hash: h}
				if old != nil && old.isDir() {
					e.modeText = old.modeText
				}
				nu = &e
			}
		}
		if old == nil && nu == nil {
			continue
		}
		if old != nil && nu != nil && old.mode == nu.mode && old.hash == nu.hash {
			continue
		}
		if old != nil {
			removed[idx] = true
		}
		if nu != nil {
			inserts = append(inserts, *nu)
		}
	}
	if len(removed) == 0 && len(inserts) == 0 {
		return base, nil
	}
	sort.Slice(inserts, func(i, j int) bool { return compareEntries(&inserts[i], &inserts[j]) < 0 })
	out := make([]treeEntry, 0, len(entries)-len(removed)+len(inserts))
	j := 0
	for i := range entries {
		if removed[i] {
			continue
		}
		for j < len(inserts) && compareEntries(&inserts[j], &entries[i]) < 0 {
			out = append(out, inserts[j])
			j++
		}
		out = append(out, entries[i])
	}
	out = append(out, inserts[j:]...)
	if len(out) == 0 {
		return plumbing.ZeroHash, nil
	}
	return p.add(plumbing.TreeObject, encodeTree(out)), nil
}

// fileChange is one path whose content changed between two trees. from or to
// is nil when the file is added or deleted; both are files (never trees).
type fileChange struct {
	path     string
	from, to *treeEntry
}

// diffTrees lists the files that differ between trees a and b, descending
// only into subtrees whose hashes differ. The result is sorted by path.
func diffTrees(rd objectReader, a, b plumbing.Hash) ([]fileChange, error) {
	var out []fileChange
	if err := diffTreesInto(rd, a, b, "", &out); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

func diffTreesInto(rd objectReader, a, b plumbing.Hash, prefix string, out *[]fileChange) error {
	if a == b {
		return nil
	}
	ea, err := readTree(rd, a)
	if err != nil {
		return err
	}
	eb, err := readTree(rd, b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ea) || j < len(eb) {
		var c int
		switch {
		case i == len(ea):
			c = 1
		case j == len(eb):
			c = -1
		default:
			c = compareEntries(&ea[i], &eb[j])
		}
		switch {
		case c < 0:
			if err := listSide(rd, &ea[i], prefix, true, out); err != nil {
				return err
			}
			i++
		case c > 0:
			if err := listSide(rd, &eb[j], prefix, false, out); err != nil {
				return err
			}
			j++
		default:
			x, y := &ea[i], &eb[j]
			if x.hash != y.hash || x.mode != y.mode {
				if x.isDir() {
					if err := diffTreesInto(rd, x.hash, y.hash, prefix+x.name+"/", out); err != nil {
						return err
					}
				} else {
					*out = append(*out, fileChange{path: prefix + x.name, from: x, to: y})
				}
			}
			i++
			j++
		}
	}
	return nil
}

// listSide records every file under e as deleted (old side) or added.
func listSide(rd objectReader, e *treeEntry, prefix string, old bool, out *[]fileChange) error {
	if !e.isDir() {
		fc := fileChange{path: prefix + e.name}
		if old {
			fc.from = e
		} else {
			fc.to = e
		}
		*out = append(*out, fc)
		return nil
	}
	entries, err := readTree(rd, e.hash)
	if err != nil {
		return err
	}
	for i := range entries {
		if err := listSide(rd, &entries[i], prefix+e.name+"/", old, out); err != nil {
			return err
		}
	}
	return nil
}

// lookupPath finds the entry at a slash-separated path below tree root,
// decoding only the trees along the path. ok is false when it does not exist.
func lookupPath(rd objectReader, root plumbing.Hash, path string) (treeEntry, bool, error) {
	cur := root
	for {
		name, rest, more := strings.Cut(path, "/")
		entries, err := readTree(rd, cur)
		if err != nil {
			return treeEntry{}, false, err
		}
		i := findEntry(entries, name)
		if i < 0 {
			return treeEntry{}, false, nil
		}
		if !more {
			return entries[i], true, nil
		}
		if !entries[i].isDir() {
			return treeEntry{}, false, nil
		}
		cur, path = entries[i].hash, rest
	}
}
