package gitserve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// capabilities advertised on the first ref line (symref and agent added).
var advertisedCaps = []string{
	"multi_ack_detailed", "side-band-64k", "side-band", "ofs-delta",
	"shallow", "no-progress", "include-tag",
}

type advRef struct {
	name string
	hash plumbing.Hash
}

// refsOf lists the refs to advertise: HEAD first (if it resolves), then the
// others sorted by name, with peeled entries for annotated tags.
func refsOf(st *filesystem.Storage) (refs []advRef, symref string, err error) {
	if head, err := st.Reference(plumbing.HEAD); err == nil {
		if head.Type() == plumbing.SymbolicReference {
			if t, err := storer.ResolveReference(st, head.Target()); err == nil {
				refs = append(refs, advRef{"HEAD", t.Hash()})
				symref = "HEAD:" + head.Target().String()
			}
		} else if !head.Hash().IsZero() {
			refs = append(refs, advRef{"HEAD", head.Hash()})
		}
	}
	iter, err := st.IterReferences()
	if err != nil {
		return nil, "", err
	}
	var rest []advRef
	err = iter.ForEach(func(r *plumbing.Reference) error {
		name := r.Name().String()
		if name == "HEAD" || !strings.HasPrefix(name, "refs/") {
			return nil
		}
		h := r.Hash()
		if r.Type() == plumbing.SymbolicReference {
			t, err := storer.ResolveReference(st, r.Name())
			if err != nil {
				return nil
			}
			h = t.Hash()
		}
		if _, err := st.EncodedObject(plumbing.AnyObject, h); err != nil {
			return nil // dangling ref: skip
		}
		rest = append(rest, advRef{name, h})
		if r.Name().IsTag() {
			if peeled, ok := peel(st, h); ok && peeled != h {
				rest = append(rest, advRef{name + "^{}", peeled})
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].name < rest[j].name })
	return append(refs, rest...), symref, nil
}

// unreachableWant returns the first want that no advertised ref reaches (zero: none). A want
// is served when it is a ref's value (or its peeled tag target) or a commit in the history of
// one; anything else, however present in the object database, is refused.
func unreachableWant(st *filesystem.Storage, wants []plumbing.Hash) (plumbing.Hash, error) {
	refs, _, err := refsOf(st)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	tips := map[plumbing.Hash]bool{}
	var starts []plumbing.Hash
	for _, r := range refs {
		if !tips[r.hash] {
			tips[r.hash] = true
			starts = append(starts, r.hash)
		}
	}
	missing := map[plumbing.Hash]bool{}
	for _, h := range wants {
		if !tips[h] {
			missing[h] = true
		}
	}
	if len(missing) == 0 {
		return plumbing.ZeroHash, nil
	}
	// Walk the commit history of every tip until every missing want is seen.
	seen := map[plumbing.Hash]bool{}
	queue := starts
	for len(queue) > 0 && len(missing) > 0 {
		h := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if seen[h] {
			continue
		}
		seen[h] = true
		delete(missing, h)
		c, err := object.GetCommit(st, h)
		if err != nil {
			continue // a tag or tree tip: it has no history to walk
		}
		queue = append(queue, c.ParentHashes...)
	}
	for _, h := range wants {
		if missing[h] {
			return h, nil
		}
	}
	return plumbing.ZeroHash, nil
}

// peel follows annotated tags to the first non-tag object.
func peel(st storer.EncodedObjectStorer, h plumbing.Hash) (plumbing.Hash, bool) {
	for i := 0; i < 16; i++ {
		o, err := st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return h, false
		}
		if o.Type() != plumbing.TagObject {
			return h, true
		}
		t, err := object.DecodeTag(st, o)
		if err != nil {
			return h, false
		}
		h = t.Target
	}
	return h, false
}

func (s *server) serveInfoRefs(w http.ResponseWriter, r *http.Request, gitDir string) {
	st := openStorage(gitDir)
	defer st.Close()
	refs, symref, err := refsOf(st)
	if err != nil {
		s.log.Error("listing refs", "repo", gitDir, "err", err)
		http.Error(w, "cannot read repository", http.StatusInternalServerError)
		return
	}
	caps := append([]string(nil), advertisedCaps...)
	if symref != "" {
		caps = append(caps, "symref="+symref)
	}
	caps = append(caps, "agent="+s.agent)
	var buf bytes.Buffer
	e := pktline.NewEncoder(&buf)
	_ = e.EncodeString("# service=git-upload-pack\n")
	_ = e.Flush()
	if len(refs) == 0 {
		_ = e.Encodef("%s capabilities^{}\x00%s\n", plumbing.ZeroHash, strings.Join(caps, " "))
	}
	for i, ref := range refs {
		if i == 0 {
			_ = e.Encodef("%s %s\x00%s\n", ref.hash, ref.name, strings.Join(caps, " "))
		} else {
			_ = e.Encodef("%s %s\n", ref.hash, ref.name)
		}
	}
	_ = e.Flush()
	h := w.Header()
	h.Set("Content-Type", "application/x-git-upload-pack-advertisement")
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func (s *server) serveUploadPack(w http.ResponseWriter, r *http.Request, gitDir string) {
	ct := r.Header.Get("Content-Type")
	if ct != "" && ct != "application/x-git-upload-pack-request" {
		http.Error(w, "bad Content-Type: want application/x-git-upload-pack-request", http.StatusUnsupportedMediaType)
		return
	}
	body, err := s.requestBody(w, r)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			http.Error(w, he.msg, he.code)
		} else {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
		return
	}
	req, err := parseUploadPackRequest(body)
	if err != nil {
		http.Error(w, "bad upload-pack request: "+err.Error(), http.StatusBadRequest)
		return
	}
	st := openStorage(gitDir)
	defer st.Close()
	if bad, err := unreachableWant(st, req.Wants); err != nil {
		s.log.Error("checking wants", "repo", gitDir, "err", err)
		http.Error(w, "cannot read repository", http.StatusInternalServerError)
		return
	} else if !bad.IsZero() {
		// As git's upload-pack over HTTP: only what the advertised refs reach is served, so an
		// object reset away (a secret committed once) cannot be fetched by its hash.
		http.Error(w, fmt.Sprintf("not our ref %s", bad), http.StatusBadRequest)
		return
	}
	up := &uploadPack{ctx: r.Context(), st: st, req: req}
	// Compute the shallow update up front, so that errors can still be
	// reported with an HTTP status.
	if err := up.computeShallow(); err != nil {
		s.log.Error("computing shallow boundary", "repo", gitDir, "err", err)
		http.Error(w, "cannot read repository", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-git-upload-pack-result")
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	w.WriteHeader(http.StatusOK)
	if err := up.run(w); err != nil {
		s.log.Error("upload-pack", "repo", gitDir, "err", err)
	}
}

type uploadPack struct {
	ctx context.Context
	st  *filesystem.Storage
	req *uploadPackRequest

	clientShallow map[plumbing.Hash]bool // client shallows that stay shallow
	origShallow   map[plumbing.Hash]bool // all shallows the client sent
	newShallow    []plumbing.Hash        // boundary commits to report as "shallow"
	unshallow     []plumbing.Hash        // client shallows to report as "unshallow"
	boundary      map[plumbing.Hash]bool // commits whose parents are not sent (depth limit)
	extraStarts   []plumbing.Hash        // parents of unshallowed commits
	commits       map[plumbing.Hash]*object.Commit
}

func (u *uploadPack) commit(h plumbing.Hash) (*object.Commit, error) {
	if c, ok := u.commits[h]; ok {
		return c, nil
	}
	c, err := object.GetCommit(u.st, h)
	if err != nil {
		return nil, err
	}
	if u.commits == nil {
		u.commits = map[plumbing.Hash]*object.Commit{}
	}
	u.commits[h] = c
	return c, nil
}

// computeShallow implements "deepen N": commits at distance < N from a want
// are sent with their parents; those at distance N are the new shallow
// boundary. Client shallows inside the new depth are unshallowed.
func (u *uploadPack) computeShallow() error {
	u.clientShallow = map[plumbing.Hash]bool{}
	u.origShallow = map[plumbing.Hash]bool{}
	u.boundary = map[plumbing.Hash]bool{}
	for _, h := range u.req.Shallows {
		u.clientShallow[h] = true
		u.origShallow[h] = true
	}
	depth := u.req.Depth
	if depth == 0 {
		return nil
	}
	notShallow := map[plumbing.Hash]bool{}
	if depth >= infiniteDepth {
		for h := range u.clientShallow {
			notShallow[h] = true
		}
	} else {
		dist := map[plumbing.Hash]int{}
		var queue []plumbing.Hash
		for _, w := range u.req.Wants {
			p, ok := peel(u.st, w)
			if !ok {
				continue
			}
			if _, err := u.commit(p); err != nil {
				continue // not a commit
			}
			if _, seen := dist[p]; !seen {
				dist[p] = 1
				queue = append(queue, p)
			}
		}
		for len(queue) > 0 {
			if err := u.ctx.Err(); err != nil {
				return err
			}
			h := queue[0]
			queue = queue[1:]
			c, err := u.commit(h)
			if err != nil {
				return err
			}
			d := dist[h]
			if d >= depth {
				if len(c.ParentHashes) > 0 {
					u.boundary[h] = true
				}
				continue
			}
			notShallow[h] = true
			for _, p := range c.ParentHashes {
				if _, seen := dist[p]; !seen {
					dist[p] = d + 1
					queue = append(queue, p)
				}
			}
		}
		for h := range u.boundary {
			if !u.clientShallow[h] {
				u.newShallow = append(u.newShallow, h)
			}
		}
		sortHashes(u.newShallow)
	}
	for _, h := range u.req.Shallows {
		if notShallow[h] && !u.boundary[h] {
			u.unshallow = append(u.unshallow, h)
			c, err := u.commit(h)
			if err != nil {
				continue
			}
			u.extraStarts = append(u.extraStarts, c.ParentHashes...)
		}
	}
	for _, h := range u.unshallow {
		delete(u.clientShallow, h)
	}
	return nil
}

func sortHashes(hs []plumbing.Hash) {
	sort.Slice(hs, func(i, j int) bool { return bytes.Compare(hs[i][:], hs[j][:]) < 0 })
}

// run writes the shallow-update section, the negotiation answers and, when
// the request ends with "done", the packfile.
func (u *uploadPack) run(w io.Writer) error {
	e := pktline.NewEncoder(w)
	if u.req.Depth > 0 {
		for _, h := range u.newShallow {
			if err := e.Encodef("shallow %s\n", h); err != nil {
				return err
			}
		}
		for _, h := range u.unshallow {
			if err := e.Encodef("unshallow %s\n", h); err != nil {
				return err
			}
		}
		if err := e.Flush(); err != nil {
			return err
		}
	}
	multiAck := 0
	if u.req.has("multi_ack_detailed") {
		multiAck = 2
	} else if u.req.has("multi_ack") {
		multiAck = 1
	}
	var common []plumbing.Hash
	seen := map[plumbing.Hash]bool{}
	for _, ev := range u.req.Events {
		switch ev.kind {
		case evHave:
			if seen[ev.hash] {
				continue
			}
			if _, err := u.st.EncodedObject(plumbing.AnyObject, ev.hash); err != nil {
				continue
			}
			seen[ev.hash] = true
			common = append(common, ev.hash)
			switch {
			case multiAck == 2:
				if err := e.Encodef("ACK %s common\n", ev.hash); err != nil {
					return err
				}
			case multiAck == 1:
				if err := e.Encodef("ACK %s continue\n", ev.hash); err != nil {
					return err
				}
			case len(common) == 1:
				if err := e.Encodef("ACK %s\n", ev.hash); err != nil {
					return err
				}
			}
		case evFlush:
			if len(common) == 0 || multiAck > 0 {
				if err := e.EncodeString("NAK\n"); err != nil {
					return err
				}
			}
			// Stateless RPC: a flush without "done" ends this round.
			return nil
		case evDone:
			if len(common) > 0 {
				if multiAck > 0 {
					if err := e.Encodef("ACK %s\n", common[len(common)-1]); err != nil {
						return err
					}
				}
			} else if err := e.EncodeString("NAK\n"); err != nil {
				return err
			}
			return u.sendPack(w, common)
		}
	}
	return nil
}

func (u *uploadPack) sendPack(w io.Writer, haves []plumbing.Hash) error {
	out := w
	var mux *sideband.Muxer
	switch {
	case u.req.has("side-band-64k"):
		mux = sideband.NewMuxer(sideband.Sideband64k, w)
	case u.req.has("side-band"):
		mux = sideband.NewMuxer(sideband.Sideband, w)
	}
	if mux != nil {
		out = mux
	}
	fail := func(err error) error {
		if mux != nil {
			_, _ = mux.WriteChannel(sideband.ErrorMessage, []byte("error: "+err.Error()+"\n"))
		}
		return err
	}
	hashes, err := u.objectsToSend(haves)
	if err != nil {
		return fail(err)
	}
	if mux != nil && !u.req.has("no-progress") {
		_, _ = mux.WriteChannel(sideband.ProgressMessage,
			[]byte(fmt.Sprintf("obol-git: sending %d objects\n", len(hashes))))
	}
	enc := packfile.NewEncoder(out, u.st, !u.req.has("ofs-delta"))
	if _, err := enc.Encode(hashes, 10); err != nil {
		return fail(err)
	}
	if mux != nil {
		return pktline.NewEncoder(w).Flush()
	}
	return nil
}

// objectsToSend returns everything reachable from the wants (commits within
// the depth limit, their trees and blobs, wanted tags) minus what the client
// has: commits reachable from its common haves (its shallow commits treated
// as parentless) and the trees of the excluded commits at the edge.
func (u *uploadPack) objectsToSend(haves []plumbing.Hash) ([]plumbing.Hash, error) {
	// Commits the client has.
	excluded := map[plumbing.Hash]bool{}
	var stack []plumbing.Hash
	for _, h := range haves {
		if p, ok := peel(u.st, h); ok {
			if _, err := u.commit(p); err == nil {
				stack = append(stack, p)
			}
		}
	}
	for len(stack) > 0 {
		if err := u.ctx.Err(); err != nil {
			return nil, err
		}
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if excluded[h] {
			continue
		}
		excluded[h] = true
		if u.origShallow[h] { // the client has no parents of its shallows
			continue
		}
		c, err := u.commit(h)
		if err != nil {
			continue // the client's history may reach beyond ours
		}
		stack = append(stack, c.ParentHashes...)
	}

	send := map[plumbing.Hash]bool{}
	var order []plumbing.Hash
	add := func(h plumbing.Hash) {
		if !send[h] {
			send[h] = true
			order = append(order, h)
		}
	}
	edge := map[plumbing.Hash]bool{}
	var commitsToWalk []plumbing.Hash
	var treesToWalk []plumbing.Hash
	var blobs []plumbing.Hash
	starts := append(append([]plumbing.Hash(nil), u.req.Wants...), u.extraStarts...)
	for _, h := range starts {
		// Peel tags, sending the tag objects themselves.
		for i := 0; i < 16; i++ {
			o, err := u.st.EncodedObject(plumbing.AnyObject, h)
			if err != nil {
				return nil, fmt.Errorf("object %s: %w", h, err)
			}
			if o.Type() != plumbing.TagObject {
				switch o.Type() {
				case plumbing.CommitObject:
					commitsToWalk = append(commitsToWalk, h)
				case plumbing.TreeObject:
					treesToWalk = append(treesToWalk, h)
				case plumbing.BlobObject:
					blobs = append(blobs, h)
				}
				break
			}
			add(h)
			t, err := object.DecodeTag(u.st, o)
			if err != nil {
				return nil, err
			}
			h = t.Target
		}
	}
	for _, b := range blobs {
		add(b)
	}
	var sentCommits []*object.Commit
	stack = commitsToWalk
	for len(stack) > 0 {
		if err := u.ctx.Err(); err != nil {
			return nil, err
		}
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if send[h] {
			continue
		}
		if excluded[h] {
			edge[h] = true
			continue
		}
		c, err := u.commit(h)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", h, err)
		}
		add(h)
		sentCommits = append(sentCommits, c)
		if u.boundary[h] || u.clientShallow[h] {
			continue
		}
		stack = append(stack, c.ParentHashes...)
	}

	// Trees and blobs the client has: trees of the edge commits and of (up
	// to 64 of) its common haves, which matters for shallow fetches where
	// the depth limit stops the walk before it meets the haves.
	for i, h := range haves {
		if i >= 64 {
			break
		}
		if p, ok := peel(u.st, h); ok {
			if _, err := u.commit(p); err == nil {
				edge[p] = true
			}
		}
	}
	have := map[plumbing.Hash]bool{}
	for h := range edge {
		c, err := u.commit(h)
		if err != nil {
			continue
		}
		if err := u.walkTree(c.TreeHash, have, func(plumbing.Hash) {}); err != nil {
			return nil, err
		}
	}
	seenTree := map[plumbing.Hash]bool{}
	for h := range have {
		seenTree[h] = true
	}
	for _, c := range sentCommits {
		treesToWalk = append(treesToWalk, c.TreeHash)
	}
	for _, t := range treesToWalk {
		if err := u.walkTree(t, seenTree, add); err != nil {
			return nil, err
		}
	}

	if u.req.has("include-tag") {
		iter, err := u.st.IterReferences()
		if err != nil {
			return nil, err
		}
		_ = iter.ForEach(func(r *plumbing.Reference) error {
			if !r.Name().IsTag() || r.Type() != plumbing.HashReference || send[r.Hash()] {
				return nil
			}
			o, err := u.st.EncodedObject(plumbing.TagObject, r.Hash())
			if err != nil {
				return nil
			}
			t, err := object.DecodeTag(u.st, o)
			if err != nil {
				return nil
			}
			if send[t.Target] {
				add(r.Hash())
			}
			return nil
		})
	}
	return order, nil
}

// walkTree calls fn for the tree and every tree/blob below it not yet in seen.
func (u *uploadPack) walkTree(h plumbing.Hash, seen map[plumbing.Hash]bool, fn func(plumbing.Hash)) error {
	if seen[h] {
		return nil
	}
	if err := u.ctx.Err(); err != nil {
		return err
	}
	seen[h] = true
	fn(h)
	t, err := object.GetTree(u.st, h)
	if err != nil {
		return fmt.Errorf("tree %s: %w", h, err)
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Submodule:
			continue
		case filemode.Dir:
			if err := u.walkTree(e.Hash, seen, fn); err != nil {
				return err
			}
		default:
			if !seen[e.Hash] {
				seen[e.Hash] = true
				fn(e.Hash)
			}
		}
	}
	return nil
}
