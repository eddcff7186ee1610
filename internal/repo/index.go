package repo

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// indexFile is .git/index, loaded under index.lock (git's own lock, so git
// commands wait for us and we for them) and rewritten for exactly the paths a
// commit changed. Versions 2 and 3, the forms git writes by default, are
// patched as bytes: runs of unchanged entries are written straight from the
// old file around the changed paths, so a 40,000-entry (4 MB) index costs one
// read, one SHA-1 pass (mostly done in the background, see prehash) and one
// write, where go-git's decoder and encoder take ~110 ms and 1.5 million
// allocations. Anything else (version 4) goes through go-git's
// plumbing/format/index decoder and encoder; what neither understands (split
// index, sparse index) is refused before anything is written. The result is
// byte-for-byte what go-git's encoder writes (a test checks it).
type indexFile struct {
	path     string
	lockPath string
	lock     *os.File
	lockID   fileID
	// mtimeSec is the loaded index's mtime (seconds); entries modified at or
	// after it are "racily clean" and get smudged when copied (see racy).
	mtimeSec int64

	// fast path (v2/v3): the raw file and the offset of every entry, with
	// offsets[n] the end of the entries.
	raw     []byte
	offsets []int
	pre     *prehash

	// fallback: go-git's decoded index.
	gg *index.Index
}

// fileID identifies a file across processes (device and inode).
type fileID struct{ Dev, Ino uint64 }

type indexInfo struct {
	found    bool
	conflict bool
	hash     plumbing.Hash
	mode     filemode.FileMode
}

// indexUpdate sets or removes the entry for one path.
type indexUpdate struct {
	path   string
	remove bool
	hash   plumbing.Hash
	mode   filemode.FileMode
	st     *statData
}

var forceGoGitIndex = false // tests and benchmarks: exercise the go-git codec path

// lockIndex takes index.lock and loads the index.
func lockIndex(gitDir string, notes *[]string) (*indexFile, error) {
	x := &indexFile{path: filepath.Join(gitDir, "index")}
	x.lockPath = x.path + ".lock"
	lk, err := createGitLock(gitDir, x.lockPath, notes)
	if err != nil {
		return nil, fmt.Errorf("lock index: %w", err)
	}
	x.lock = lk
	if fi, err := lk.Stat(); err == nil {
		x.lockID = fileIDOf(fi)
	}
	if err := x.load(); err != nil {
		x.unlock()
		return nil, err
	}
	return x, nil
}

// readIndex loads the index without locking it (for dry runs).
func readIndex(gitDir string) (*indexFile, error) {
	x := &indexFile{path: filepath.Join(gitDir, "index")}
	if err := x.load(); err != nil {
		return nil, err
	}
	return x, nil
}

func (x *indexFile) load() error {
	raw, mtime, err := readFileStat(x.path)
	if errors.Is(err, fs.ErrNotExist) {
		raw = emptyIndex()
	} else if err != nil {
		return fmt.Errorf("read index %s: %w", x.path, err)
	} else {
		x.mtimeSec = mtime.Unix()
	}
	if !forceGoGitIndex {
		if offsets, ok := parseRawIndex(raw); ok {
			x.raw, x.offsets = raw, offsets
			return nil
		}
	}
	idx := &index.Index{}
	if err := index.NewDecoder(bytes.NewReader(raw)).Decode(idx); err != nil {
		return fmt.Errorf("index %s is in a form obol cannot update (%w); nothing was written. "+
			"If it is a split or sparse index, run `git update-index --no-split-index` or `git sparse-checkout disable` first", x.path, err)
	}
	for _, e := range idx.Entries {
		if e.Stage != 0 {
			return fmt.Errorf("index %s has unresolved merge conflicts (%s); resolve them first", x.path, e.Name)
		}
	}
	x.gg = idx
	return nil
}

// readFileStat reads a file and its mtime from one open file.
func readFileStat(p string) ([]byte, time.Time, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, time.Time{}, err
	}
	return data, fi.ModTime(), nil
}

func emptyIndex() []byte {
	b := []byte("DIRC\x00\x00\x00\x02\x00\x00\x00\x00")
	sum := sha1.Sum(b)
	return append(b, sum[:]...)
}

// parseRawIndex indexes the entries of a version 2 or 3 index whose
// extensions are all optional; ok is false for anything else.
func parseRawIndex(raw []byte) ([]int, bool) {
	if len(raw) < 32 || string(raw[:4]) != "DIRC" {
		return nil, false
	}
	version := binary.BigEndian.Uint32(raw[4:])
	if version != 2 && version != 3 {
		return nil, false
	}
	// Like git (since 2.13, outside fsck), do not verify the trailing
	// checksum on read: it costs a SHA-1 pass over the whole file. The
	// structure is still checked entry by entry.
	end := len(raw) - 20
	count := int(binary.BigEndian.Uint32(raw[8:]))
	if count > end/62 {
		return nil, false
	}
	offsets := make([]int, 0, count+1)
	off := 12
	for range count {
		if off+62 > end {
			return nil, false
		}
		flags := binary.BigEndian.Uint16(raw[off+60:])
		hdr := 62
		if flags&0x4000 != 0 {
			if version < 3 {
				return nil, false
			}
			hdr = 64
		}
		nameLen := int(flags & 0xfff)
		if nameLen == 0xfff {
			nul := bytes.IndexByte(raw[off+hdr:end], 0)
			if nul < 0 {
				return nil, false
			}
			nameLen = nul
		}
		size := (hdr + nameLen + 8) &^ 7
		if off+size > end {
			return nil, false
		}
		offsets = append(offsets, off)
		off += size
	}
	offsets = append(offsets, off)
	for p := off; p < end; {
		if p+8 > end || raw[p] < 'A' || raw[p] > 'Z' {
			return nil, false // a mandatory extension (split or sparse index)
		}
		p += 8 + int(binary.BigEndian.Uint32(raw[p+4:]))
		if p > end {
			return nil, false
		}
	}
	return offsets, true
}

func (x *indexFile) n() int { return len(x.offsets) - 1 }

func (x *indexFile) name(i int) []byte {
	off := x.offsets[i]
	flags := binary.BigEndian.Uint16(x.raw[off+60:])
	hdr := 62
	if flags&0x4000 != 0 {
		hdr = 64
	}
	nameLen := int(flags & 0xfff)
	if nameLen == 0xfff {
		nameLen = bytes.IndexByte(x.raw[off+hdr:], 0)
	}
	return x.raw[off+hdr : off+hdr+nameLen]
}

// lowerBound is the first raw entry whose name is >= path.
func (x *indexFile) lowerBound(from int, path string) int {
	return from + sort.Search(x.n()-from, func(i int) bool { return string(x.name(from+i)) >= path })
}

// lookup reports the stage-0 entry for path.
func (x *indexFile) lookup(path string) indexInfo {
	var info indexInfo
	if x.gg != nil {
		es := x.gg.Entries
		i := sort.Search(len(es), func(i int) bool { return es[i].Name >= path })
		for ; i < len(es) && es[i].Name == path; i++ {
			if es[i].Stage != 0 {
				info.conflict = true
				continue
			}
			info.found, info.hash, info.mode = true, es[i].Hash, es[i].Mode
		}
		return info
	}
	for i := x.lowerBound(0, path); i < x.n() && string(x.name(i)) == path; i++ {
		off := x.offsets[i]
		if binary.BigEndian.Uint16(x.raw[off+60:])>>12&3 != 0 {
			info.conflict = true
			continue
		}
		info.found = true
		info.mode = filemode.FileMode(binary.BigEndian.Uint32(x.raw[off+24:]))
		copy(info.hash[:], x.raw[off+40:off+60])
	}
	return info
}

// unlock drops index.lock without changing the index.
func (x *indexFile) unlock() {
	if x.pre != nil {
		<-x.pre.done // it reads raw
		x.pre = nil
	}
	if x.lock != nil {
		x.lock.Close()
		os.Remove(x.lockPath)
		x.lock = nil
	}
}

// indexChange is a path the commit will set or remove, known before the
// work tree is written (the stat data comes later).
type indexChange struct {
	path   string
	remove bool
}

// prehash is the SHA-1 of the part of the new index that precedes the first
// changed path (header included), computed in the background while the
// objects, the ref and the work tree are written: at 40,000 entries that is
// a 4 MB hash off the critical path.
type prehash struct {
	changes []indexChange
	done    chan struct{}
	h       hash.Hash
	pieces  [][]byte
	next    int // first entry not covered
}

// prepare starts hashing the unchanged prefix of the new index. changes must
// be what commit will get (else commit recomputes from scratch).
func (x *indexFile) prepare(changes []indexChange) {
	if x.gg != nil || len(changes) == 0 {
		return
	}
	changes = slices.Clone(changes)
	sort.Slice(changes, func(i, j int) bool { return changes[i].path < changes[j].path })
	pre := &prehash{changes: changes, done: make(chan struct{}), h: sha1.New()}
	pre.next = x.lowerBound(0, changes[0].path)
	x.pre = pre
	header := x.header(x.newCount(changes))
	go func() {
		defer close(pre.done)
		pre.pieces = x.runPieces(append(pre.pieces, header), 0, pre.next)
		for _, p := range pre.pieces {
			pre.h.Write(p)
		}
	}()
}

func (x *indexFile) newCount(changes []indexChange) int {
	count := x.n()
	for _, c := range changes {
		i := x.lowerBound(0, c.path)
		for j := i; j < x.n() && string(x.name(j)) == c.path; j++ {
			count--
		}
		if !c.remove {
			count++
		}
	}
	return count
}

func (x *indexFile) header(count int) []byte {
	h := slices.Clone(x.raw[:12])
	binary.BigEndian.PutUint32(h[8:], uint32(count))
	return h
}

// commit writes the updated index to index.lock and renames it into place.
// The cached-tree extension (and every other optional one) is dropped, so
// git recomputes what it needs.
func (x *indexFile) commit(updates []indexUpdate) error {
	sort.Slice(updates, func(i, j int) bool { return updates[i].path < updates[j].path })
	var pieces [][]byte
	if x.gg != nil {
		data, err := x.encodeGoGit(updates)
		if err != nil {
			x.unlock()
			return fmt.Errorf("write index %s: %w", x.path, err)
		}
		pieces = [][]byte{data}
	} else {
		pieces = x.patchRaw(updates)
	}
	bw := bufio.NewWriterSize(x.lock, 64<<10)
	var err error
	for _, p := range pieces {
		if _, err = bw.Write(p); err != nil {
			break
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := x.lock.Close(); err == nil {
		err = cerr
	}
	x.lock = nil
	if err == nil {
		err = os.Rename(x.lockPath, x.path)
	}
	if err != nil {
		os.Remove(x.lockPath)
		return fmt.Errorf("write index %s: %w", x.path, err)
	}
	return nil
}

// patchRaw returns the new index as byte pieces: runs of unchanged entries
// are slices of the old file (no copy), around the updated paths. updates
// must be sorted by path.
func (x *indexFile) patchRaw(updates []indexUpdate) [][]byte {
	var pieces [][]byte
	var h hash.Hash
	cur := 0
	if pre := x.pre; pre != nil {
		<-pre.done
		if sameChanges(pre.changes, updates) {
			pieces, h, cur = pre.pieces, pre.h, pre.next
		}
		x.pre = nil
	}
	start := len(pieces)
	if h == nil {
		changes := make([]indexChange, len(updates))
		for i, u := range updates {
			changes[i] = indexChange{u.path, u.remove}
		}
		h = sha1.New()
		pieces = append(pieces, x.header(x.newCount(changes)))
	}
	for _, u := range updates {
		i := x.lowerBound(cur, u.path)
		pieces = x.runPieces(pieces, cur, i)
		j := i
		for j < x.n() && string(x.name(j)) == u.path {
			j++
		}
		if !u.remove {
			pieces = append(pieces, appendRawEntry(nil, u))
		}
		cur = j
	}
	pieces = x.runPieces(pieces, cur, x.n())
	for _, p := range pieces[start:] {
		h.Write(p)
	}
	return append(pieces, h.Sum(nil))
}

func sameChanges(changes []indexChange, updates []indexUpdate) bool {
	if len(changes) != len(updates) {
		return false
	}
	for i, u := range updates {
		if changes[i].path != u.path || changes[i].remove != u.remove {
			return false
		}
	}
	return true
}

// runPieces appends entries [from, to) of the old index: one slice of the
// old file, split around racily clean entries, which are copied smudged.
func (x *indexFile) runPieces(pieces [][]byte, from, to int) [][]byte {
	run := x.offsets[from]
	for k := from; k < to; k++ {
		off := x.offsets[k]
		if !x.racy(int64(binary.BigEndian.Uint32(x.raw[off+8:]))) {
			continue
		}
		if run < off {
			pieces = append(pieces, x.raw[run:off])
		}
		e := slices.Clone(x.raw[off:x.offsets[k+1]])
		copy(e[36:40], []byte{0, 0, 0, 0})
		pieces = append(pieces, e)
		run = x.offsets[k+1]
	}
	if end := x.offsets[to]; run < end {
		pieces = append(pieces, x.raw[run:end])
	}
	return pieces
}

// racy reports whether an entry with this mtime is "racily clean" against the
// loaded index: git could not tell a same-second edit from the stat data, so
// the entry is smudged (size 0) and git re-checks its content. This is what
// git does when it rewrites an index, without the content check.
func (x *indexFile) racy(mtimeSec int64) bool {
	return x.mtimeSec > 0 && mtimeSec >= x.mtimeSec
}

func appendRawEntry(out []byte, u indexUpdate) []byte {
	var hdr [62]byte
	st := u.st
	be := binary.BigEndian
	be.PutUint32(hdr[0:], uint32(st.ctimeSec))
	be.PutUint32(hdr[4:], uint32(st.ctimeNsec))
	be.PutUint32(hdr[8:], uint32(st.mtimeSec))
	be.PutUint32(hdr[12:], uint32(st.mtimeNsec))
	be.PutUint32(hdr[16:], uint32(st.dev))
	be.PutUint32(hdr[20:], uint32(st.ino))
	be.PutUint32(hdr[24:], uint32(u.mode))
	be.PutUint32(hdr[28:], st.uid)
	be.PutUint32(hdr[32:], st.gid)
	be.PutUint32(hdr[36:], uint32(st.size))
	copy(hdr[40:60], u.hash[:])
	be.PutUint16(hdr[60:], uint16(min(len(u.path), 0xfff)))
	out = append(out, hdr[:]...)
	out = append(out, u.path...)
	size := (62 + len(u.path) + 8) &^ 7
	for range size - 62 - len(u.path) {
		out = append(out, 0)
	}
	return out
}

// encodeGoGit applies the updates to the go-git decoded index and encodes it.
func (x *indexFile) encodeGoGit(updates []indexUpdate) ([]byte, error) {
	idx := x.gg
	byPath := map[string]indexUpdate{}
	for _, u := range updates {
		byPath[u.path] = u
	}
	kept := idx.Entries[:0]
	for _, e := range idx.Entries {
		if _, ok := byPath[e.Name]; ok {
			continue
		}
		if !e.ModifiedAt.IsZero() && x.racy(e.ModifiedAt.Unix()) {
			e.Size = 0
		}
		kept = append(kept, e)
	}
	for _, u := range updates {
		if u.remove {
			continue
		}
		st := u.st
		kept = append(kept, &index.Entry{
			Name:       u.path,
			Hash:       u.hash,
			Mode:       u.mode,
			CreatedAt:  unixOrZero(st.ctimeSec, st.ctimeNsec),
			ModifiedAt: unixOrZero(st.mtimeSec, st.mtimeNsec),
			Dev:        uint32(st.dev),
			Inode:      uint32(st.ino),
			UID:        st.uid,
			GID:        st.gid,
			Size:       uint32(st.size),
		})
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Name < kept[j].Name })
	idx.Entries = kept
	idx.Cache = nil
	idx.ResolveUndo = nil
	idx.EndOfIndexEntry = nil
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if err := index.NewEncoder(bw).Encode(idx); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// removeOwnIndexLock removes index.lock if it is the very file a crashed
// obol created (same device and inode as recorded in the journal).
func removeOwnIndexLock(gitDir string, id fileID) bool {
	p := filepath.Join(gitDir, "index.lock")
	fi, err := os.Lstat(p)
	if err != nil || id == (fileID{}) {
		return false
	}
	if fileIDOf(fi) != id {
		return false
	}
	return os.Remove(p) == nil
}

// unixOrZero is the zero time for zero stat data (go-git encodes it as 0).
func unixOrZero(sec, nsec int64) time.Time {
	if sec == 0 && nsec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, nsec)
}
