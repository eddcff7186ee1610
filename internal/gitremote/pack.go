package gitremote

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Why not go-git's filesystem PackfileWriter (dotgit.PackWriter): it streams
// the pack into objects/pack/tmp_pack_*, which is fine, but then writes the
// .idx directly under its final name (a crash leaves a truncated
// pack-X.idx, and a later save of the same pack skips it because it
// "exists"), and it neither fsyncs nor checks that the objects the pack
// refers to are present. So storePack does the same steps itself:
//
//  1. the pack goes to a temp file in objects/pack and is fsynced; its
//     trailing checksum must match its content exactly (no trailing bytes);
//  2. it is indexed with go-git's packfile.Parser (which refuses a thin
//     pack's deltas against objects outside the pack) into an in-memory
//     .idx, and every object it refers to must be in the pack or already in
//     the repository;
//  3. the .idx goes to a temp file, fsynced;
//  4. rename the .idx to pack-<sum>.idx, THEN rename the .pack to
//     pack-<sum>.pack, then fsync the directory.
//
// The order in step 4 is the one safe for both readers of the repository:
// git finds packs by their .idx and ignores an .idx whose .pack is missing;
// go-git (and so obol's own repo package) finds packs by their .pack and
// fails on every object lookup if the .pack's .idx is missing. With the
// .idx first, every state a SIGKILL can leave is either "no new pack" (temp
// files, which both ignore and git gc prunes) or "an .idx nobody reads
// yet", or the complete pack. The same order go-git's writer uses, minus
// its partial .idx.

const (
	tmpPackPrefix = "tmp_pack_obol_"
	tmpIdxPrefix  = "tmp_idx_obol_"
)

// testHookStage, when set by a test, is called at each step of storePack
// (to simulate a crash there).
var testHookStage func(stage string)

func stage(s string) {
	if testHookStage != nil {
		testHookStage(s)
	}
}

// storePack reads a pack from r and installs it in gitDir's object
// database. st is the repository's storage (for the connectivity check).
// It returns the number of objects stored.
func storePack(gitDir string, r io.Reader, st *filesystem.Storage) (n int, err error) {
	dir := filepath.Join(gitDir, "objects", "pack")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, err
	}
	removeStaleTemps(dir)

	f, err := os.CreateTemp(dir, tmpPackPrefix)
	if err != nil {
		return 0, err
	}
	tmpPack, tmpIdx := f.Name(), ""
	defer func() {
		// Whatever was not renamed into place goes.
		if f != nil {
			f.Close()
		}
		if tmpPack != "" {
			os.Remove(tmpPack)
		}
		if tmpIdx != "" {
			os.Remove(tmpIdx)
		}
	}()

	size, err := io.Copy(f, r)
	if err != nil {
		return 0, fmt.Errorf("receiving the pack: %w", err)
	}
	if size == 0 {
		// Nothing sent (the server found nothing we lack).
		return 0, nil
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	sum, err := verifyTrailer(f, size)
	if err != nil {
		return 0, err
	}
	stage("pack-written")

	// Index it.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	iw := new(idxfile.Writer)
	parser, err := packfile.NewParser(packfile.NewScanner(f), iw)
	if err != nil {
		return 0, err
	}
	psum, err := parser.Parse()
	if err != nil {
		return 0, fmt.Errorf("invalid pack from the server: %w", err)
	}
	if psum != sum {
		return 0, fmt.Errorf("invalid pack from the server: checksum %s, trailer %s", psum, sum)
	}
	idx, err := iw.Index()
	if err != nil {
		return 0, err
	}
	count, err := idx.Count()
	if err != nil {
		return 0, err
	}
	if count == 0 {
		return 0, nil
	}
	if err := checkConnected(dir, filepath.Base(tmpPack), idx, st); err != nil {
		return 0, err
	}

	// The .idx, to a temp file.
	fi, err := os.CreateTemp(dir, tmpIdxPrefix)
	if err != nil {
		return 0, err
	}
	tmpIdx = fi.Name()
	_, err = idxfile.NewEncoder(fi).Encode(idx)
	if err == nil {
		err = fi.Sync()
	}
	if cerr := fi.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write pack index: %w", err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return 0, err
	}
	f = nil
	// Packs and their indexes are read-only, as git makes them.
	_ = os.Chmod(tmpPack, 0o444)
	_ = os.Chmod(tmpIdx, 0o444)
	stage("idx-written")

	base := filepath.Join(dir, "pack-"+sum.String())
	if fileExists(base+".pack") && fileExists(base+".idx") {
		// The same pack is installed already.
		return int(count), nil
	}
	if err := os.Rename(tmpIdx, base+".idx"); err != nil {
		return 0, err
	}
	tmpIdx = ""
	stage("idx-renamed")
	if err := os.Rename(tmpPack, base+".pack"); err != nil {
		// Leave no .idx without its .pack behind.
		os.Remove(base + ".idx")
		return 0, err
	}
	tmpPack = ""
	stage("pack-renamed")
	syncDir(dir)
	return int(count), nil
}

// verifyTrailer checks that the last 20 bytes of the file are the SHA-1 of
// everything before them (so there is nothing after the pack either) and
// returns them.
func verifyTrailer(f *os.File, size int64) (plumbing.Hash, error) {
	var sum plumbing.Hash
	if size < 12+20 {
		return sum, fmt.Errorf("invalid pack from the server: only %d bytes", size)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return sum, err
	}
	h := sha1.New()
	if _, err := io.CopyN(h, f, size-20); err != nil {
		return sum, err
	}
	if _, err := io.ReadFull(f, sum[:]); err != nil {
		return sum, err
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		return sum, errors.New("invalid pack from the server: its checksum does not match its content")
	}
	return sum, nil
}

// checkConnected makes sure every object the new pack refers to (commit
// trees and parents, tree entries, tag targets) is in the pack or already
// in the repository, the way git's fetch checks connectivity. Together with
// "every object already in the repository is complete" this means the new
// history is complete, so a later read can never hit a missing object.
func checkConnected(dir, name string, idx *idxfile.MemoryIndex, st *filesystem.Storage) error {
	fs := osfs.New(dir)
	bf, err := fs.Open(name)
	if err != nil {
		return err
	}
	pf := packfile.NewPackfile(idx, fs, bf, 0)
	defer pf.Close()

	known := map[plumbing.Hash]bool{}
	has := func(h plumbing.Hash) bool {
		if ok, _ := idx.Contains(h); ok {
			return true
		}
		if v, ok := known[h]; ok {
			return v
		}
		v := st.HasEncodedObject(h) == nil
		known[h] = v
		return v
	}
	missing := func(from plumbing.Hash, to plumbing.Hash) error {
		return fmt.Errorf("incomplete pack from the server: %s refers to %s, which is neither in the pack nor in the repository", from, to)
	}

	it, err := idx.EntriesByOffset()
	if err != nil {
		return err
	}
	defer it.Close()
	for {
		e, err := it.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		o, err := pf.GetByOffset(int64(e.Offset))
		if err != nil {
			return fmt.Errorf("read object %s from the new pack: %w", e.Hash, err)
		}
		switch o.Type() {
		case plumbing.CommitObject:
			var c object.Commit
			if err := c.Decode(o); err != nil {
				return fmt.Errorf("commit %s: %w", e.Hash, err)
			}
			if !has(c.TreeHash) {
				return missing(e.Hash, c.TreeHash)
			}
			for _, p := range c.ParentHashes {
				if !has(p) {
					return missing(e.Hash, p)
				}
			}
		case plumbing.TreeObject:
			var t object.Tree
			if err := t.Decode(o); err != nil {
				return fmt.Errorf("tree %s: %w", e.Hash, err)
			}
			for _, te := range t.Entries {
				if te.Mode == filemode.Submodule {
					continue
				}
				if !has(te.Hash) {
					return missing(e.Hash, te.Hash)
				}
			}
		case plumbing.TagObject:
			var t object.Tag
			if err := t.Decode(o); err != nil {
				return fmt.Errorf("tag %s: %w", e.Hash, err)
			}
			if !has(t.Target) {
				return missing(e.Hash, t.Target)
			}
		}
	}
}

func fileExists(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}

// syncDir makes the renames durable (best effort: not every platform can
// fsync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// removeStaleTemps deletes temp files this package left behind when a
// process was killed mid-fetch, once they are old enough that no fetch can
// still be writing them. (git gc prunes them too.)
func removeStaleTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, tmpPackPrefix) && !strings.HasPrefix(n, tmpIdxPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 6*time.Hour {
			os.Remove(filepath.Join(dir, n))
		}
	}
}
