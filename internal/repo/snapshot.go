package repo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// Snapshot is a read-only view of one commit's tree, as an io/fs file system
// (slash-separated paths, no leading slash, "." is the root), so callers can
// use fs.WalkDir, fs.ReadFile, fs.Glob and fs.Sub on it. It is lazy: reading
// a file decodes only the trees along its path, whatever the repository's
// size. It is safe for concurrent use.
type Snapshot struct {
	objs   *objectStore
	commit plumbing.Hash
	tree   plumbing.Hash
	when   time.Time

	mu    sync.Mutex
	trees map[plumbing.Hash][]treeEntry
	sizes map[plumbing.Hash]int64
}

var (
	_ fs.FS         = (*Snapshot)(nil)
	_ fs.ReadFileFS = (*Snapshot)(nil)
	_ fs.ReadDirFS  = (*Snapshot)(nil)
	_ fs.StatFS     = (*Snapshot)(nil)
)

// Snapshot returns the view of commit rev; the zero hash gives an empty
// snapshot (an unborn branch).
func (r *Repo) Snapshot(rev plumbing.Hash) (*Snapshot, error) {
	s := &Snapshot{objs: r.objs, commit: rev, trees: map[plumbing.Hash][]treeEntry{}, sizes: map[plumbing.Hash]int64{}}
	if rev.IsZero() {
		return s, nil
	}
	c, err := r.readCommit(rev)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", rev, err)
	}
	s.tree, s.when = c.tree, c.when
	return s, nil
}

// Commit is the commit this snapshot shows (zero for an empty snapshot).
func (s *Snapshot) Commit() plumbing.Hash { return s.commit }

// Tree is the commit's root tree (zero for an empty snapshot).
func (s *Snapshot) Tree() plumbing.Hash { return s.tree }

// BlobHash returns the git object id of the file at name, so callers can
// compare content without reading it.
func (s *Snapshot) BlobHash(name string) (plumbing.Hash, error) {
	e, err := s.entry("stat", name)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if e.isDir() {
		return plumbing.ZeroHash, &fs.PathError{Op: "stat", Path: name, Err: errors.New("is a directory")}
	}
	return e.hash, nil
}

func (s *Snapshot) dir(h plumbing.Hash) ([]treeEntry, error) {
	s.mu.Lock()
	entries, ok := s.trees[h]
	s.mu.Unlock()
	if ok {
		return entries, nil
	}
	entries, err := readTree(s.objs, h)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.trees[h] = entries
	s.mu.Unlock()
	return entries, nil
}

// entry resolves name to its tree entry, decoding only the trees on the way.
func (s *Snapshot) entry(op, name string) (treeEntry, error) {
	if !fs.ValidPath(name) {
		return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	cur := treeEntry{name: ".", mode: filemode.Dir, hash: s.tree}
	if name == "." {
		return cur, nil
	}
	rest := name
	for {
		part, tail, more := strings.Cut(rest, "/")
		if !cur.isDir() {
			return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		entries, err := s.dir(cur.hash)
		if err != nil {
			return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		i := findEntry(entries, part)
		if i < 0 {
			return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		cur = entries[i]
		if !more {
			return cur, nil
		}
		rest = tail
	}
}

func (s *Snapshot) info(e treeEntry) *fileInfo {
	return &fileInfo{s: s, e: e}
}

// Stat implements fs.StatFS.
func (s *Snapshot) Stat(name string) (fs.FileInfo, error) {
	e, err := s.entry("stat", name)
	if err != nil {
		return nil, err
	}
	fi := s.info(e)
	if !e.isDir() {
		if _, err := s.size(e.hash); err != nil {
			return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
		}
	}
	return fi, nil
}

func (s *Snapshot) size(h plumbing.Hash) (int64, error) {
	s.mu.Lock()
	n, ok := s.sizes[h]
	s.mu.Unlock()
	if ok {
		return n, nil
	}
	n, err := s.objs.size(h)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.sizes[h] = n
	s.mu.Unlock()
	return n, nil
}

// ReadFile implements fs.ReadFileFS.
func (s *Snapshot) ReadFile(name string) ([]byte, error) {
	e, err := s.entry("read", name)
	if err != nil {
		return nil, err
	}
	if e.isDir() || e.mode == filemode.Submodule {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	data, err := s.objs.read(plumbing.BlobObject, e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return data, nil
}

// ReadDir implements fs.ReadDirFS: entries sorted by name.
func (s *Snapshot) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := s.entry("readdir", name)
	if err != nil {
		return nil, err
	}
	if !e.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return s.dirEntries(name, e.hash)
}

func (s *Snapshot) dirEntries(name string, h plumbing.Hash) ([]fs.DirEntry, error) {
	entries, err := s.dir(h)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, len(entries))
	for i := range entries {
		out[i] = fs.FileInfoToDirEntry(s.info(entries[i]))
	}
	// git orders a directory "a" after "a.b"; io/fs wants plain name order.
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Open implements fs.FS.
func (s *Snapshot) Open(name string) (fs.File, error) {
	e, err := s.entry("open", name)
	if err != nil {
		return nil, err
	}
	fi := s.info(e)
	if e.isDir() {
		entries, err := s.dirEntries(name, e.hash)
		if err != nil {
			return nil, err
		}
		return &openDir{fi: fi, entries: entries}, nil
	}
	if e.mode == filemode.Submodule {
		return &openFile{fi: fi, Reader: bytes.NewReader(nil)}, nil
	}
	data, err := s.objs.read(plumbing.BlobObject, e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	s.mu.Lock()
	s.sizes[e.hash] = int64(len(data))
	s.mu.Unlock()
	return &openFile{fi: fi, Reader: bytes.NewReader(data)}, nil
}

// fileInfo describes one tree entry. Size is looked up lazily (it reads the
// object header), ModTime is the commit time.
type fileInfo struct {
	s *Snapshot
	e treeEntry
}

func (fi *fileInfo) Name() string {
	if fi.e.name == "." {
		return "."
	}
	return path.Base(fi.e.name)
}

func (fi *fileInfo) Size() int64 {
	if fi.e.isDir() || fi.e.mode == filemode.Submodule {
		return 0
	}
	n, _ := fi.s.size(fi.e.hash)
	return n
}

func (fi *fileInfo) Mode() fs.FileMode {
	switch fi.e.mode {
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Submodule:
		return fs.ModeIrregular
	}
	return 0o644
}

func (fi *fileInfo) ModTime() time.Time { return fi.s.when }
func (fi *fileInfo) IsDir() bool        { return fi.e.isDir() }

// Sys returns the entry's git object id (plumbing.Hash).
func (fi *fileInfo) Sys() any { return fi.e.hash }

type openFile struct {
	fi *fileInfo
	*bytes.Reader
}

func (f *openFile) Stat() (fs.FileInfo, error) { return f.fi, nil }
func (f *openFile) Close() error               { return nil }

type openDir struct {
	fi      *fileInfo
	entries []fs.DirEntry
	off     int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return d.fi, nil }
func (d *openDir) Close() error               { return nil }
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.fi.Name(), Err: errors.New("is a directory")}
}

func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}

// commitInfo is what this layer needs from a commit object.
type commitInfo struct {
	tree    plumbing.Hash
	parents []plumbing.Hash
	when    time.Time
}

func (r *Repo) readCommit(h plumbing.Hash) (*commitInfo, error) {
	data, err := r.objs.read(plumbing.CommitObject, h)
	if err != nil {
		return nil, err
	}
	c := &commitInfo{}
	hdr, _, _ := bytes.Cut(data, []byte("\n\n"))
	for _, line := range strings.Split(string(hdr), "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "tree":
			if c.tree, err = parseHex(val); err != nil {
				return nil, fmt.Errorf("commit %s: tree: %w", h, err)
			}
		case "parent":
			p, err := parseHex(val)
			if err != nil {
				return nil, fmt.Errorf("commit %s: parent: %w", h, err)
			}
			c.parents = append(c.parents, p)
		case "committer":
			c.when = parseIdentTime(val)
		}
	}
	if c.tree.IsZero() {
		return nil, fmt.Errorf("commit %s: no tree", h)
	}
	return c, nil
}

// parseIdentTime reads the time of "Name <email> 1700000000 +0100".
func parseIdentTime(ident string) time.Time {
	i := strings.LastIndexByte(ident, '>')
	if i < 0 {
		return time.Time{}
	}
	f := strings.Fields(ident[i+1:])
	if len(f) != 2 {
		return time.Time{}
	}
	sec, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return time.Time{}
	}
	t := time.Unix(sec, 0)
	if tz, err := time.Parse("-0700", f[1]); err == nil {
		_, off := tz.Zone()
		t = t.In(time.FixedZone("", off))
	}
	return t
}

// EntryHash returns the object id of the file or directory (tree) at name: two snapshots whose
// directory has the same hash hold the same files under it.
func (s *Snapshot) EntryHash(name string) (plumbing.Hash, error) {
	e, err := s.entry("stat", name)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return e.hash, nil
}
