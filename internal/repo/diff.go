package repo

import (
	"bytes"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	fdiff "github.com/go-git/go-git/v5/plumbing/format/diff"
	"github.com/go-git/go-git/v5/utils/diff"
	"github.com/sergi/go-diff/diffmatchpatch"
)

// renderDiff prints the file changes as `git diff` does (3 lines of context)
// with go-git's UnifiedEncoder; this file only adapts the changes to its
// Patch/FilePatch/Chunk interfaces and line-diffs with go-git's utils/diff.
func renderDiff(rd objectReader, changes []fileChange) (string, error) {
	if len(changes) == 0 {
		return "", nil
	}
	p := &patch{}
	for _, c := range changes {
		fp, err := newFilePatch(rd, c)
		if err != nil {
			return "", err
		}
		p.files = append(p.files, fp)
	}
	var buf strings.Builder
	if err := fdiff.NewUnifiedEncoder(&buf, fdiff.DefaultContextLines).Encode(p); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func newFilePatch(rd objectReader, c fileChange) (*filePatch, error) {
	fp := &filePatch{}
	var oldText, newText []byte
	for _, side := range []struct {
		e    *treeEntry
		dst  *fdiff.File
		text *[]byte
	}{{c.from, &fp.from, &oldText}, {c.to, &fp.to, &newText}} {
		if side.e == nil {
			continue
		}
		*side.dst = &diffFile{path: c.path, mode: side.e.mode, hash: side.e.hash}
		if side.e.mode == filemode.Submodule {
			fp.binary = true
			continue
		}
		data, err := rd.read(plumbing.BlobObject, side.e.hash)
		if err != nil {
			return nil, err
		}
		*side.text = data
	}
	if fp.binary || isBinary(oldText) || isBinary(newText) {
		fp.binary = true
		return fp, nil
	}
	for _, d := range diff.Do(string(oldText), string(newText)) {
		ch := &chunk{content: d.Text}
		switch d.Type {
		case diffmatchpatch.DiffInsert:
			ch.op = fdiff.Add
		case diffmatchpatch.DiffDelete:
			ch.op = fdiff.Delete
		default:
			ch.op = fdiff.Equal
		}
		fp.chunks = append(fp.chunks, ch)
	}
	return fp, nil
}

// isBinary is git's heuristic: a NUL byte in the first 8000 bytes.
func isBinary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0
}

type patch struct{ files []fdiff.FilePatch }

func (p *patch) FilePatches() []fdiff.FilePatch { return p.files }
func (p *patch) Message() string                { return "" }

type filePatch struct {
	from, to fdiff.File
	binary   bool
	chunks   []fdiff.Chunk
}

func (f *filePatch) IsBinary() bool                  { return f.binary }
func (f *filePatch) Files() (fdiff.File, fdiff.File) { return f.from, f.to }
func (f *filePatch) Chunks() []fdiff.Chunk           { return f.chunks }

type diffFile struct {
	path string
	mode filemode.FileMode
	hash plumbing.Hash
}

func (f *diffFile) Hash() plumbing.Hash     { return f.hash }
func (f *diffFile) Mode() filemode.FileMode { return f.mode }
func (f *diffFile) Path() string            { return f.path }

type chunk struct {
	content string
	op      fdiff.Operation
}

func (c *chunk) Content() string       { return c.content }
func (c *chunk) Type() fdiff.Operation { return c.op }
