// Package gitsync keeps the branch obol writes in step with the stack's shared remote: fetch
// the remote head, rebuild the local commits on it, push with the remote head as the expected
// old value, and retry with jitter when another writer got there first. Commits are rebuilt,
// never merged: each local commit's changed units (a slice directory, or a single file) are
// copied onto the new head, so two writers only conflict when they change the same unit.
package gitsync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/obol/obol/internal/gitremote"
	"github.com/obol/obol/internal/history"
	"github.com/obol/obol/internal/repo"
)

// Resolve says what to do when a local commit and the remote changed the same unit.
type Resolve string

const (
	// Refuse stops with a ConflictError; the local commits stay as they are.
	Refuse Resolve = ""
	// Ours replays the local content of the unit over the remote's.
	Ours Resolve = "ours"
	// Theirs keeps the remote's content and drops the local change to that unit.
	Theirs Resolve = "theirs"
)

// Options configure one Sync.
type Options struct {
	Remote   gitremote.Remote
	Upstream repo.Upstream
	// Who is recorded in the reflogs of the refs Sync moves.
	Who repo.Signature
	// Unit maps a path to the unit two writers conflict on (nil: the path itself).
	Unit func(path string) string
	// Push sends the rebuilt commits; false only fetches and rebuilds (`--no-push`).
	Push bool
	// Fresh says the caller fetched moments ago: the first round pushes against the
	// remote-tracking ref without fetching again. If the remote moved since, that push is
	// refused as stale and the next round fetches, as after any lost race.
	Fresh   bool
	Resolve Resolve
	// MaxAttempts bounds the fetch-rebuild-push rounds lost to other writers (default 40).
	MaxAttempts int
	// Backoff is the base of the jittered exponential wait between lost rounds (default 25ms,
	// capped at 40 times the base).
	Backoff time.Duration
	// Progress, when set, hears about each lost round.
	Progress func(format string, args ...any)
	// BeforePush, when set, sees the commits about to be pushed (those of head that remote
	// lacks) and can refuse them; the commits stay local.
	BeforePush func(head, remote plumbing.Hash) error

	beforePush func() // tests: another writer's push lands here
}

// Report is what a Sync did.
type Report struct {
	// Incoming are the commits the remote had that the local branch lacked, newest first.
	Incoming []*repo.CommitInfo
	// Rebuilt are the local commits replayed on the remote head (old hash -> new hash), oldest first.
	Rebuilt []Rebuilt
	// Pushed are the commits the remote received, oldest first.
	Pushed []plumbing.Hash
	// Head is where the local branch ends up; Remote is the remote head afterwards.
	Head, Remote plumbing.Hash
	// Upstream is the remote branch synced with.
	Upstream repo.Upstream
	// Attempts is the number of fetch-rebuild-push rounds.
	Attempts int
	Notes    []string
}

// Rebuilt is one local commit rebuilt on a newer head. New is zero when it became empty
// (the remote already had the same change) and was dropped.
type Rebuilt struct {
	Old, New plumbing.Hash
	Subject  string
}

// ConflictError is a local commit and a remote commit that changed the same unit differently.
type ConflictError struct {
	Unit   string
	Local  *repo.CommitInfo
	Remote *repo.CommitInfo
}

func (e *ConflictError) Error() string {
	r, l := e.Remote, e.Local
	return fmt.Sprintf("%s was changed on the remote by %s <%s> in %s (%q, %s), and by your commit %s (%q): "+
		"your change is kept in the local commit; `obol sync --resolve theirs` drops it for %s, `--resolve ours` puts your version on top",
		e.Unit, r.Author.Name, r.Author.Email, short(r.Hash), r.Subject(), r.Author.When.Format(time.RFC3339),
		short(l.Hash), l.Subject(), e.Unit)
}

// ErrGaveUp is returned when every round lost to another writer.
var ErrGaveUp = errors.New("the remote branch kept moving")

// Sync runs fetch, rebuild and push rounds under the repository lock until the remote holds
// the local commits or a round fails for a reason other than a lost race.
func Sync(ctx context.Context, r *repo.Repo, o Options) (rep Report, err error) {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 40
	}
	if o.Backoff <= 0 {
		o.Backoff = 25 * time.Millisecond
	}
	if o.Unit == nil {
		o.Unit = func(p string) string { return p }
	}
	lk, err := r.Lock(ctx)
	if err != nil {
		return rep, err
	}
	defer lk.Unlock()
	defer func() { rep.Notes = lk.Notes() }()
	rep.Upstream = o.Upstream
	s := &syncer{r: r, lk: lk, o: o, ancestors: map[plumbing.Hash]bool{}, origin: map[plumbing.Hash]plumbing.Hash{}}
	for attempt := 1; ; attempt++ {
		rep.Attempts = attempt
		done, err := s.round(ctx, &rep)
		if err == nil && done {
			return rep, nil
		}
		if err != nil && !errors.Is(err, gitremote.ErrStale) {
			return rep, err
		}
		if attempt >= o.MaxAttempts {
			return rep, fmt.Errorf("push to %s: gave up after %d attempts: %w; your commits are kept locally, run `obol sync` to push them", gitremote.Redact(o.Remote.URL), attempt, ErrGaveUp)
		}
		if o.Progress != nil {
			o.Progress("remote %s moved while pushing; rebuilding on its new head (attempt %d of %d)", o.Upstream.Branch, attempt+1, o.MaxAttempts)
		}
		if err := sleep(ctx, backoff(o.Backoff, attempt)); err != nil {
			return rep, err
		}
	}
}

// backoff is full jitter over an exponential window: writers that collided spread out.
func backoff(base time.Duration, attempt int) time.Duration {
	window := base << min(attempt-1, 5)
	window = min(window, 40*base)
	return time.Duration(rand.Int64N(int64(window)) + 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type syncer struct {
	r  *repo.Repo
	lk *repo.Locked
	o  Options
	// ancestors memoises "is an ancestor of some remote head seen": remote heads only grow.
	ancestors map[plumbing.Hash]bool
	// origin maps a commit rebuilt in an earlier round back to the local commit it came
	// from, so the report names the commits the user made, however many rounds it took.
	origin map[plumbing.Hash]plumbing.Hash
}

// round is one fetch, rebuild, push. done is false (with ErrStale) when the push lost a race.
func (s *syncer) round(ctx context.Context, rep *Report) (done bool, err error) {
	r, o := s.r, s.o
	local, err := r.Head()
	if err != nil {
		return false, err
	}
	tracking := o.Upstream.TrackingRef()
	known, err := r.ReadRef(tracking)
	if err != nil {
		return false, err
	}
	haves := []plumbing.Hash{}
	for _, h := range []plumbing.Hash{local, known} {
		if !h.IsZero() {
			haves = append(haves, h)
		}
	}
	remote := known
	if !o.Fresh || rep.Attempts > 1 {
		if remote, err = gitremote.Fetch(ctx, r.GitDir(), o.Remote, o.Upstream.Branch, haves); err != nil {
			return false, fmt.Errorf("fetch %s: %w", gitremote.Redact(o.Remote.URL), err)
		}
		r.Reindex()
	}
	if remote != known && !remote.IsZero() {
		if err := s.lk.SetRef(tracking, known, remote, o.Who, "fetch: "+o.Upstream.Remote+"/"+o.Upstream.Branch); err != nil {
			return false, err
		}
	}
	rep.Remote = remote
	if err := s.markAncestors(remote); err != nil {
		return false, err
	}
	mine, base, err := s.localOnly(local)
	if err != nil {
		return false, err
	}
	if rep.Incoming, err = s.commitsSince(remote, base); err != nil {
		return false, err
	}
	head := local
	if len(mine) == 0 {
		// Nothing of ours to send: fast-forward to the remote head.
		if local != remote && !remote.IsZero() {
			if err := s.lk.MoveBranch(local, remote, o.Who, "obol sync: fast-forward to "+o.Upstream.Remote+"/"+o.Upstream.Branch); err != nil {
				return false, err
			}
		}
		rep.Head = remote
		if remote.IsZero() {
			rep.Head = local
		}
		return true, nil
	}
	if base != remote {
		if head, err = s.rebuild(mine, base, remote, rep); err != nil {
			return false, err
		}
		if err := s.lk.MoveBranch(local, head, o.Who, "obol sync: rebuilt on "+o.Upstream.Remote+"/"+o.Upstream.Branch); err != nil {
			return false, err
		}
	}
	rep.Head = head
	if !o.Push || head == remote {
		return true, nil
	}
	if o.BeforePush != nil {
		if err := o.BeforePush(head, remote); err != nil {
			return false, err
		}
	}
	if o.beforePush != nil {
		o.beforePush()
	}
	if err := gitremote.Push(ctx, r.GitDir(), o.Remote, o.Upstream.Branch, remote, head); err != nil {
		if errors.Is(err, gitremote.ErrStale) {
			return false, err
		}
		return false, fmt.Errorf("push to %s: %w; your commits are kept locally, run `obol sync` to push them", gitremote.Redact(o.Remote.URL), err)
	}
	pushed, err := s.commitsSince(head, remote)
	if err != nil {
		return false, err
	}
	for i := len(pushed) - 1; i >= 0; i-- {
		rep.Pushed = append(rep.Pushed, pushed[i].Hash)
	}
	rep.Remote = head
	// The fetch above left the tracking ref at the remote head (or as it was, if the branch was new).
	if !remote.IsZero() {
		known = remote
	}
	if err := s.lk.SetRef(tracking, known, head, o.Who, "update by push"); err != nil {
		return false, err
	}
	return true, nil
}

// localOnly lists the first-parent commits from local back to the first one a remote head
// seen so far contains (newest first), and that commit (zero: none).
func (s *syncer) localOnly(local plumbing.Hash) (mine []*repo.CommitInfo, base plumbing.Hash, err error) {
	base = local
	for !base.IsZero() && !s.ancestors[base] {
		c, err := s.r.ReadCommit(base)
		if err != nil {
			return nil, base, err
		}
		mine = append(mine, c)
		base = plumbing.ZeroHash
		if len(c.Parents) > 0 {
			base = c.Parents[0]
		}
	}
	return mine, base, nil
}

// markAncestors records every ancestor of h (h included).
func (s *syncer) markAncestors(h plumbing.Hash) error {
	stack := []plumbing.Hash{h}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c.IsZero() || s.ancestors[c] {
			continue
		}
		s.ancestors[c] = true
		info, err := s.r.ReadCommit(c)
		if err != nil {
			return err
		}
		stack = append(stack, info.Parents...)
	}
	return nil
}

// commitsSince lists the first-parent commits from head back to (not including) base, newest first.
func (s *syncer) commitsSince(head, base plumbing.Hash) ([]*repo.CommitInfo, error) {
	var out []*repo.CommitInfo
	for h := head; !h.IsZero() && h != base; {
		c, err := s.r.ReadCommit(h)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		h = plumbing.ZeroHash
		if len(c.Parents) > 0 {
			h = c.Parents[0]
		}
	}
	return out, nil
}

// rebuild replays mine (newest first, all sitting on base) onto onto, oldest first.
func (s *syncer) rebuild(mine []*repo.CommitInfo, base, onto plumbing.Hash, rep *Report) (plumbing.Hash, error) {
	r := s.r
	theirs, err := r.DiffCommits(base, onto)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	remoteUnits := map[string]bool{}
	for _, c := range theirs {
		remoteUnits[s.o.Unit(c.Path)] = true
	}
	ontoSnap, err := r.Snapshot(onto)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	head := onto
	rebuilt := make([]Rebuilt, 0, len(mine))
	for i := len(mine) - 1; i >= 0; i-- {
		c := mine[i]
		parent := plumbing.ZeroHash
		if len(c.Parents) > 0 {
			parent = c.Parents[0]
		}
		diff, err := r.DiffCommits(parent, c.Hash)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		snap, err := r.Snapshot(c.Hash)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		var changes []repo.Change
		seen := map[string]bool{}
		for _, d := range diff {
			u := s.o.Unit(d.Path)
			if seen[u] {
				continue
			}
			seen[u] = true
			if remoteUnits[u] {
				same, err := history.SameUnit(ontoSnap, snap, u)
				if err != nil {
					return plumbing.ZeroHash, err
				}
				if same || s.o.Resolve == Theirs {
					continue
				}
				if s.o.Resolve != Ours {
					other, err := s.lastChange(onto, base, u)
					if err != nil {
						return plumbing.ZeroHash, err
					}
					return plumbing.ZeroHash, &ConflictError{Unit: u, Local: c, Remote: other}
				}
			}
			ch, err := history.UnitChanges(snap, u)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			changes = append(changes, ch...)
		}
		n, err := r.WriteCommit(head, changes, c.Author, c.Message)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("rebuild %s: %w", short(c.Hash), err)
		}
		old := c.Hash
		if o, ok := s.origin[old]; ok {
			old = o
		}
		if !n.IsZero() {
			s.origin[n] = old
		}
		rebuilt = append(rebuilt, Rebuilt{Old: old, New: n, Subject: c.Subject()})
		if !n.IsZero() {
			head = n
		}
	}
	rep.Rebuilt = rebuilt
	return head, nil
}

// lastChange finds the newest first-parent commit between head and base that touched unit u.
func (s *syncer) lastChange(head, base plumbing.Hash, u string) (*repo.CommitInfo, error) {
	commits, err := s.commitsSince(head, base)
	if err != nil {
		return nil, err
	}
	for _, c := range commits {
		parent := plumbing.ZeroHash
		if len(c.Parents) > 0 {
			parent = c.Parents[0]
		}
		diff, err := s.r.DiffCommits(parent, c.Hash)
		if err != nil {
			return nil, err
		}
		for _, d := range diff {
			if s.o.Unit(d.Path) == u {
				return c, nil
			}
		}
	}
	// Changed by a merge's other side: name the remote head.
	return s.r.ReadCommit(head)
}

func short(h plumbing.Hash) string { return h.String()[:12] }

// Divergence counts, without contacting the remote, the first-parent commits of the local
// branch that the last fetched remote head lacks (ahead) and the other way round (behind).
func Divergence(r *repo.Repo, u repo.Upstream) (ahead, behind int, err error) {
	local, err := r.Head()
	if err != nil {
		return 0, 0, err
	}
	remote, err := r.ReadRef(u.TrackingRef())
	if err != nil {
		return 0, 0, err
	}
	s := &syncer{r: r, ancestors: map[plumbing.Hash]bool{}}
	if err := s.markAncestors(remote); err != nil {
		return 0, 0, err
	}
	mine, base, err := s.localOnly(local)
	if err != nil {
		return 0, 0, err
	}
	theirs, err := s.commitsSince(remote, base)
	return len(mine), len(theirs), err
}

// Ancestors is the set of commits reachable from h, h included.
func Ancestors(r *repo.Repo, h plumbing.Hash) (map[plumbing.Hash]bool, error) {
	s := &syncer{r: r, ancestors: map[plumbing.Hash]bool{}}
	err := s.markAncestors(h)
	return s.ancestors, err
}
