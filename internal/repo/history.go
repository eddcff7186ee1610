package repo

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// CommitInfo is a commit as history commands show it.
type CommitInfo struct {
	Hash    plumbing.Hash
	Tree    plumbing.Hash
	Parents []plumbing.Hash
	Author  Signature // When carries the author's time zone
	Message string
}

// Subject is the first line of the message.
func (c *CommitInfo) Subject() string { return oneLine(c.Message) }

// ReadCommit reads commit h.
func (r *Repo) ReadCommit(h plumbing.Hash) (*CommitInfo, error) {
	data, err := r.objs.read(plumbing.CommitObject, h)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", h, err)
	}
	c := &CommitInfo{Hash: h}
	hdr, msg, _ := bytes.Cut(data, []byte("\n\n"))
	c.Message = string(msg)
	for _, line := range strings.Split(string(hdr), "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "tree":
			if c.Tree, err = parseHex(val); err != nil {
				return nil, fmt.Errorf("commit %s: tree: %w", h, err)
			}
		case "parent":
			p, err := parseHex(val)
			if err != nil {
				return nil, fmt.Errorf("commit %s: parent: %w", h, err)
			}
			c.Parents = append(c.Parents, p)
		case "author":
			c.Author = parseIdent(val)
		}
	}
	if c.Tree.IsZero() {
		return nil, fmt.Errorf("commit %s: no tree", h)
	}
	return c, nil
}

// parseIdent reads "Name <email> 1700000000 +0100".
func parseIdent(s string) Signature {
	lt, gt := strings.IndexByte(s, '<'), strings.LastIndexByte(s, '>')
	if lt < 0 || gt < lt {
		return Signature{Name: strings.TrimSpace(s)}
	}
	return Signature{Name: strings.TrimSpace(s[:lt]), Email: s[lt+1 : gt], When: parseIdentTime(s)}
}

// PathChange is one file that differs between two commits: From or To is
// the zero hash where the file is absent.
type PathChange struct {
	Path     string
	From, To plumbing.Hash
	FromMode filemode.FileMode
	ToMode   filemode.FileMode
}

// DiffCommits lists the files that differ between commits a and b (the zero
// hash is the empty tree), sorted by path. It reads only subtrees that differ.
func (r *Repo) DiffCommits(a, b plumbing.Hash) ([]PathChange, error) {
	ta, err := r.commitTree(a)
	if err != nil {
		return nil, err
	}
	tb, err := r.commitTree(b)
	if err != nil {
		return nil, err
	}
	files, err := diffTrees(r.objs, ta, tb)
	if err != nil {
		return nil, err
	}
	out := make([]PathChange, 0, len(files))
	for _, f := range files {
		c := PathChange{Path: f.path}
		if f.from != nil {
			c.From, c.FromMode = f.from.hash, f.from.mode
		}
		if f.to != nil {
			c.To, c.ToMode = f.to.hash, f.to.mode
		}
		out = append(out, c)
	}
	return out, nil
}

// ReadRef returns the value of a ref (e.g. refs/remotes/origin/main); the
// zero hash when it does not exist.
func (r *Repo) ReadRef(name string) (plumbing.Hash, error) { return r.readRef(name) }

// ReadBlob reads blob h.
func (r *Repo) ReadBlob(h plumbing.Hash) ([]byte, error) {
	data, err := r.objs.read(plumbing.BlobObject, h)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	return data, nil
}
