package secretscan

import (
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/obol/obol/internal/repo"
)

// History scans the commits reachable from head that are not reachable from any of stop (the
// remote's head, for a push; none, for the whole branch): every message, and every file each
// commit adds or changes (each distinct blob once, none of known: blobs known to be clean, such
// as obol's own rendering of what was scanned already). A secret committed and then deleted is
// still found, in the commit that added it.
func (s *Scanner) History(r *repo.Repo, head plumbing.Hash, known map[plumbing.Hash]bool, stop ...plumbing.Hash) ([]Finding, error) {
	if head.IsZero() {
		return nil, nil
	}
	seen := map[plumbing.Hash]bool{}
	for _, h := range stop {
		seen[h] = true
	}
	marked := false
	scanned := map[plumbing.Hash]bool{}
	var out []Finding
	queue := []plumbing.Hash{head}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if h.IsZero() || seen[h] {
			continue
		}
		seen[h] = true
		c, err := r.ReadCommit(h)
		if err != nil {
			return nil, err
		}
		if len(c.Parents) > 1 && !marked {
			// A merge can reach the remote's history around a stop commit: mark all of it
			// (a linear push, the usual case, never needs to).
			marked = true
			for _, st := range stop {
				if err := markAncestors(r, st, seen); err != nil {
					return nil, err
				}
			}
		}
		short := h.String()[:12]
		out = append(out, s.Message(short, c.Message)...)
		parents := c.Parents
		if len(parents) == 0 {
			parents = []plumbing.Hash{plumbing.ZeroHash}
		}
		for _, p := range parents {
			changes, err := r.DiffCommits(p, h)
			if err != nil {
				return nil, err
			}
			for _, ch := range changes {
				if ch.To.IsZero() || scanned[ch.To] || known[ch.To] || ch.ToMode == filemode.Submodule {
					continue
				}
				scanned[ch.To] = true
				b, err := r.ReadBlob(ch.To)
				if err != nil {
					return nil, err
				}
				for _, f := range s.File(ch.Path, b) {
					f.Commit = short
					out = append(out, f)
				}
			}
		}
		queue = append(queue, c.Parents...)
	}
	return out, nil
}

func markAncestors(r *repo.Repo, h plumbing.Hash, seen map[plumbing.Hash]bool) error {
	stack := []plumbing.Hash{h}
	marked := map[plumbing.Hash]bool{}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c.IsZero() || marked[c] {
			continue
		}
		marked[c], seen[c] = true, true
		info, err := r.ReadCommit(c)
		if err != nil {
			return err
		}
		stack = append(stack, info.Parents...)
	}
	return nil
}
