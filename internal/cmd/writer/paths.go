package writer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/settings"
	"github.com/obol/obol/internal/stackrepo"
)

// checkPaths refuses a change whose offers would take another offer's public path, or one
// the gateway reserves, or an object or namespace the stack owns, before anything is written. It is part of Commit, so sell, update,
// import and rollback all pass through it; a change that touches no offer.yaml costs nothing.
// It returns every offer's claim as the change leaves them (nil when it touched no offer), for
// the claims cache of the commit it becomes.
func checkPaths(gitDir string, head fs.FS, changes []repo.Change) ([]offer.Claim, error) {
	changed := map[string]bool{}
	var mine []offer.Claim
	var st *settings.Stack
	var collisions []error
	for _, c := range changes {
		unit, name := layout.Unit(c.Path)
		if name == "" || c.Path != path.Join(unit, layout.OfferFile) {
			continue
		}
		changed[name] = true
		if c.Delete {
			continue
		}
		o, err := offer.Decode(c.Path, c.Content)
		if err != nil {
			return nil, err
		}
		offer.Default(o)
		mine = append(mine, stackrepo.ClaimOf(o))
		if st == nil {
			if st, err = stackrepo.Settings(head); err != nil {
				return nil, err
			}
		}
		for _, col := range render.Collisions(st.Metadata.Name, string(st.Spec.Engine), o.Name, o.Namespace) {
			collisions = append(collisions, fmt.Errorf("offer %s: %w", o.Name, col))
		}
	}
	if len(collisions) > 0 {
		return nil, fmt.Errorf("the offer would take an object the stack owns, nothing written:\n%w", errors.Join(collisions...))
	}
	if len(changed) == 0 {
		return nil, nil
	}
	all, err := cachedClaims(gitDir, head)
	if err != nil {
		return nil, err
	}
	claims := mine
	for _, c := range all {
		if !changed[c.Name] {
			claims = append(claims, c)
		}
	}
	if len(mine) > 0 {
		if pes := offer.PathErrors(claims, changed); len(pes) > 0 {
			errs := make([]error, len(pes))
			for i, pe := range pes {
				errs[i] = pe
			}
			return nil, fmt.Errorf("path conflict, nothing written:\n%w", errors.Join(errs...))
		}
	}
	return claims, nil
}

// The claims cache: every offer's public path at one state of applications/, keyed by the
// tree ids of its kind directories. Reading every offer.yaml costs about 140 µs an offer (1.4 s
// at 10,000), so each write reuses the claims the previous commit obol made left, and stores
// its own. It is content-addressed, so a stale file is a miss, never a wrong answer; deleting
// it is harmless.
const claimsCacheFile = "obol-claims"

// The cache file is the key on the first line, then one claim a line: name, type and path
// separated by NUL (none of them can hold one). Plain lines, not JSON: it is read on every
// write, and at 10,000 offers encoding/json alone would cost more than the commit.
func encodeClaims(key string, claims []offer.Claim) []byte {
	var b bytes.Buffer
	b.WriteString(key)
	b.WriteByte('\n')
	for _, c := range claims {
		b.WriteString(c.Name)
		b.WriteByte(0)
		b.WriteString(c.Type)
		b.WriteByte(0)
		b.WriteString(c.Path)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func decodeClaims(data []byte, key string) ([]offer.Claim, bool) {
	first, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok || string(first) != key {
		return nil, false
	}
	claims := make([]offer.Claim, 0, bytes.Count(rest, []byte("\n")))
	for line := range bytes.SplitSeq(rest, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		f := bytes.Split(line, []byte{0})
		if len(f) != 3 {
			return nil, false
		}
		claims = append(claims, offer.Claim{Name: string(f[0]), Type: string(f[1]), Path: string(f[2])})
	}
	return claims, true
}

// claimsKey names the state of applications/ in snap: the tree id of each kind directory.
func claimsKey(snap fs.FS) (string, bool) {
	s, ok := snap.(*repo.Snapshot)
	if !ok {
		return "", false
	}
	var parts []string
	for _, t := range layout.Kinds {
		h, err := s.EntryHash(layout.KindDir(t))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			parts = append(parts, "-")
		case err != nil:
			return "", false
		default:
			parts = append(parts, h.String())
		}
	}
	return strings.Join(parts, ":"), true
}

// cachedClaims is stackrepo.Claims(head), from the cache when it holds head's state.
func cachedClaims(gitDir string, head fs.FS) ([]offer.Claim, error) {
	key, ok := claimsKey(head)
	if ok && gitDir != "" {
		if b, err := os.ReadFile(filepath.Join(gitDir, claimsCacheFile)); err == nil {
			if claims, ok := decodeClaims(b, key); ok {
				return claims, nil
			}
		}
	}
	// A miss is not saved here: a write that is refused leaves the repo, .git included, as it
	// was. The commit a write makes saves its claims (Commit).
	return stackrepo.Claims(head, nil)
}

// saveClaims writes the cache (best effort: a cache that cannot be written is only slower).
func saveClaims(gitDir, key string, claims []offer.Claim) {
	if gitDir == "" || key == "" {
		return
	}
	b := encodeClaims(key, claims)
	tmp, err := os.CreateTemp(gitDir, claimsCacheFile+".*.tmp")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), filepath.Join(gitDir, claimsCacheFile)) != nil {
		_ = os.Remove(tmp.Name())
	}
}
