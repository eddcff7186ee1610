package gitremote

import (
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// objectsToPush lists the objects reachable from tip that the remote does
// not have, given commits it has (old, and other advertised heads present
// here). Like `git rev-list --objects tip --not have...`, but cheaper than
// go-git's revlist.Objects, which walks every tree of the whole history
// behind the haves: here only the commit graph behind the haves is walked,
// and only the trees of the boundary commits (the haves that are parents of
// commits being sent, and the haves themselves) mark trees and blobs as
// present. An object the remote has deeper in its history may be sent
// again; the server simply keeps one copy.
func objectsToPush(st *filesystem.Storage, tip plumbing.Hash, haves []plumbing.Hash) ([]plumbing.Hash, error) {
	getCommit := func(h plumbing.Hash) (*object.Commit, error) {
		return object.GetCommit(st, h)
	}

	// Every commit the remote has (that we have too).
	remote := map[plumbing.Hash]bool{}
	var queue []plumbing.Hash
	for _, h := range haves {
		if !h.IsZero() && !remote[h] {
			if _, err := getCommit(h); err != nil {
				continue // not here (or not a commit): no help
			}
			remote[h] = true
			queue = append(queue, h)
		}
	}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		c, err := getCommit(h)
		if err != nil {
			continue // e.g. a shallow boundary
		}
		for _, p := range c.ParentHashes {
			if !remote[p] {
				remote[p] = true
				queue = append(queue, p)
			}
		}
	}

	// Commits to send, and the boundary.
	var send []*object.Commit
	boundary := map[plumbing.Hash]bool{}
	for _, h := range haves {
		if remote[h] {
			boundary[h] = true
		}
	}
	seen := map[plumbing.Hash]bool{}
	queue = []plumbing.Hash{tip}
	seen[tip] = true
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if remote[h] {
			boundary[h] = true
			continue
		}
		c, err := getCommit(h)
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", h, err)
		}
		send = append(send, c)
		for _, p := range c.ParentHashes {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}

	// Trees and blobs the remote has: those of the boundary commits.
	have := map[plumbing.Hash]bool{}
	for h := range boundary {
		c, err := getCommit(h)
		if err != nil {
			continue
		}
		if err := walkTree(st, c.TreeHash, have, nil); err != nil {
			return nil, err
		}
	}

	var out []plumbing.Hash
	add := func(h plumbing.Hash) { out = append(out, h) }
	for _, c := range send {
		add(c.Hash)
		if err := walkTree(st, c.TreeHash, have, add); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// walkTree marks tree h and everything below it in seen, calling add for
// each object not seen before. Subtrees already seen are not entered.
func walkTree(st *filesystem.Storage, h plumbing.Hash, seen map[plumbing.Hash]bool, add func(plumbing.Hash)) error {
	if seen[h] {
		return nil
	}
	seen[h] = true
	if add != nil {
		add(h)
	}
	t, err := object.GetTree(st, h)
	if err != nil {
		if errors.Is(err, plumbing.ErrObjectNotFound) && add == nil {
			return nil // a have we cannot read: it just does not help
		}
		return fmt.Errorf("read tree %s: %w", h, err)
	}
	for _, e := range t.Entries {
		switch {
		case e.Mode == filemode.Submodule:
		case e.Mode == filemode.Dir:
			if err := walkTree(st, e.Hash, seen, add); err != nil {
				return err
			}
		case !seen[e.Hash]:
			seen[e.Hash] = true
			if add != nil {
				add(e.Hash)
			}
		}
	}
	return nil
}
