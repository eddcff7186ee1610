package repo

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// objectStore reads objects through go-git's storage (loose objects, packs,
// alternates) and writes new objects as loose objects, the way git does.
type objectStore struct {
	gitDir string

	mu sync.Mutex // go-git's ObjectStorage is not safe for concurrent use
	st *filesystem.Storage
}

func newObjectStore(gitDir string) *objectStore {
	st := filesystem.NewStorageWithOptions(osfs.New(gitDir), cache.NewObjectLRU(16*cache.MiByte), filesystem.Options{})
	return &objectStore{gitDir: gitDir, st: st}
}

func (s *objectStore) config() (*config.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.st.Config()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return cfg, nil
}

// read returns the content of object h, which must be of type typ.
func (s *objectStore) read(typ plumbing.ObjectType, h plumbing.Hash) ([]byte, error) {
	if data, ok, err := s.readLoose(typ, h); ok || err != nil {
		return data, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, err := s.st.EncodedObject(typ, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// A git gc may have packed it since the pack list was loaded.
		s.st.Reindex()
		obj, err = s.st.EncodedObject(typ, h)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", typ, h, err)
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", typ, h, err)
	}
	defer rd.Close()
	data := make([]byte, obj.Size())
	if _, err := io.ReadFull(rd, data); err != nil {
		return nil, fmt.Errorf("read %s %s: %w", typ, h, err)
	}
	return data, nil
}

var zlibReaders sync.Pool

// readLoose reads a loose object straight into a buffer of its exact size
// (go-git's reader grows one while copying); ok is false when h is not a
// loose object, so the caller looks in the packs.
func (s *objectStore) readLoose(typ plumbing.ObjectType, h plumbing.Hash) (data []byte, ok bool, err error) {
	hex := h.String()
	f, err := os.Open(filepath.Join(s.gitDir, "objects", hex[:2], hex[2:]))
	if err != nil {
		return nil, false, nil
	}
	defer f.Close()
	fail := func(err error) ([]byte, bool, error) {
		return nil, true, fmt.Errorf("read %s %s: %w", typ, h, err)
	}
	var zr io.ReadCloser
	if v := zlibReaders.Get(); v != nil {
		zr = v.(io.ReadCloser)
		err = zr.(zlib.Resetter).Reset(f, nil)
	} else {
		zr, err = zlib.NewReader(f)
	}
	if err != nil {
		return fail(err)
	}
	defer zlibReaders.Put(zr)
	var head [64]byte
	n, err := io.ReadFull(zr, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fail(err)
	}
	nul := bytes.IndexByte(head[:n], 0)
	if nul < 0 {
		return fail(errors.New("malformed loose object header"))
	}
	t, sz, _ := strings.Cut(string(head[:nul]), " ")
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || size < 0 {
		return fail(errors.New("malformed loose object header"))
	}
	if t != typ.String() {
		return fail(fmt.Errorf("is a %s: %w", t, plumbing.ErrObjectNotFound))
	}
	data = make([]byte, size)
	copied := copy(data, head[nul+1:n])
	if int64(n-nul-1) > size {
		return fail(errors.New("loose object longer than its header says"))
	}
	if _, err := io.ReadFull(zr, data[copied:]); err != nil {
		return fail(err)
	}
	return data, true, nil
}

func (s *objectStore) size(h plumbing.Hash) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.st.EncodedObjectSize(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		s.st.Reindex()
		n, err = s.st.EncodedObjectSize(h)
	}
	if err != nil {
		return 0, fmt.Errorf("size of object %s: %w", h, err)
	}
	return n, nil
}

func (s *objectStore) has(h plumbing.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.HasEncodedObject(h) == nil
}

// Loose objects are compressed at level 1, git's default
// (core.looseCompression), except large ones: a tree listing thousands of
// offers is mostly SHA-1 bytes that barely compress (about 25%), and level 1
// costs ~4 ms to write and ~3 ms to read back per commit at 10,000 entries
// where zlib's stored mode costs ~0.2 ms each way. git reads both; `git gc`
// packs and compresses them anyway.
const storeUncompressedAbove = 64 << 10

var zlibPools = map[int]*sync.Pool{}

func init() {
	for _, level := range []int{zlib.BestSpeed, zlib.NoCompression} {
		zlibPools[level] = &sync.Pool{New: func() any {
			w, _ := zlib.NewWriterLevel(nil, level)
			return w
		}}
	}
}

// writeLoose stores data as loose object h unless it already exists:
// objects/xx/<38 hex>, written to a temporary file and renamed into place so
// a reader never sees a partial object.
func (s *objectStore) writeLoose(typ plumbing.ObjectType, h plumbing.Hash, data []byte) error {
	hex := h.String()
	dir := filepath.Join(s.gitDir, "objects", hex[:2])
	final := filepath.Join(dir, hex[2:])
	if _, err := os.Lstat(final); err == nil {
		return nil
	}
	if s.has(h) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("write object %s: %w", hex, err)
	}
	f, err := os.CreateTemp(dir, "tmp_obj_")
	if err != nil {
		return fmt.Errorf("write object %s: %w", hex, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write object %s: %w", hex, err)
	}
	bw := bufio.NewWriterSize(f, 32<<10)
	level := zlib.BestSpeed
	if len(data) > storeUncompressedAbove {
		level = zlib.NoCompression
	}
	zw := zlibPools[level].Get().(*zlib.Writer)
	zw.Reset(bw)
	hdr := append(append(append([]byte(typ.String()), ' '), strconv.Itoa(len(data))...), 0)
	_, err = zw.Write(hdr)
	if err == nil {
		_, err = zw.Write(data)
	}
	if err == nil {
		err = zw.Close()
	}
	zlibPools[level].Put(zw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o444)
	}
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write object %s: %w", hex, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write object %s: %w", hex, err)
	}
	return nil
}

// objectReader is what tree walks and diffs read through: the store, or the
// store plus objects built in memory and not written yet.
type objectReader interface {
	read(typ plumbing.ObjectType, h plumbing.Hash) ([]byte, error)
}

type pendingObject struct {
	typ  plumbing.ObjectType
	data []byte
}

// pending holds the objects a commit creates until they are written, so a
// dry run and the pre-write checks can read them without touching disk.
type pending struct {
	store *objectStore
	snap  *Snapshot // decodes (and caches) the stored trees; may be nil
	objs  map[plumbing.Hash]pendingObject
	order []plumbing.Hash
	trees map[plumbing.Hash][]treeEntry // decoded pending trees
}

func newPending(s *objectStore, snap *Snapshot) *pending {
	return &pending{store: s, snap: snap, objs: map[plumbing.Hash]pendingObject{}, trees: map[plumbing.Hash][]treeEntry{}}
}

// tree decodes tree h once per commit: stored trees through the snapshot
// (sharing what Build already read), pending ones here.
func (p *pending) tree(h plumbing.Hash) ([]treeEntry, error) {
	if entries, ok := p.trees[h]; ok {
		return entries, nil
	}
	if _, ok := p.objs[h]; !ok && p.snap != nil {
		return p.snap.dir(h)
	}
	data, err := p.read(plumbing.TreeObject, h)
	if err != nil {
		return nil, err
	}
	entries, err := parseTree(h, data)
	if err != nil {
		return nil, err
	}
	p.trees[h] = entries
	return entries, nil
}

func (p *pending) add(typ plumbing.ObjectType, data []byte) plumbing.Hash {
	h := plumbing.ComputeHash(typ, data)
	if _, ok := p.objs[h]; !ok {
		p.objs[h] = pendingObject{typ, data}
		p.order = append(p.order, h)
	}
	return h
}

func (p *pending) read(typ plumbing.ObjectType, h plumbing.Hash) ([]byte, error) {
	if o, ok := p.objs[h]; ok {
		if o.typ != typ {
			return nil, fmt.Errorf("read %s %s: %w", typ, h, plumbing.ErrObjectNotFound)
		}
		return o.data, nil
	}
	return p.store.read(typ, h)
}

// write writes the i-th pending object. Objects may be written in any order
// and in parallel: nothing refers to them until the ref moves, and an
// unreachable object (even one whose children are missing) is harmless.
func (p *pending) write(i int) error {
	h := p.order[i]
	o := p.objs[h]
	return p.store.writeLoose(o.typ, h, o.data)
}

// parallel runs fn(0..n-1) on up to 4 goroutines and returns the first error.
func parallel(n int, fn func(i int) error) error {
	if n <= 1 {
		if n == 1 {
			return fn(0)
		}
		return nil
	}
	var (
		next atomic.Int64
		mu   sync.Mutex
		err  error
		wg   sync.WaitGroup
	)
	for range min(n, 4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if e := fn(i); e != nil {
					mu.Lock()
					if err == nil {
						err = e
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return err
}

func blobHash(content []byte) plumbing.Hash {
	return plumbing.ComputeHash(plumbing.BlobObject, content)
}
