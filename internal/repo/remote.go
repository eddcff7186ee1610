package repo

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
)

// Upstream is where the branch obol writes is shared: git's
// branch.<b>.remote and branch.<b>.merge, and remote.<name>.url.
type Upstream struct {
	Remote string // "origin"
	URL    string
	Branch string // the remote's branch, e.g. "main"
}

// TrackingRef is the remote-tracking ref git keeps for the upstream branch,
// refs/remotes/<remote>/<branch>: the last remote head this clone saw.
func (u Upstream) TrackingRef() string { return "refs/remotes/" + u.Remote + "/" + u.Branch }

// Upstream reads the branch's upstream from the repository config; ok is
// false when the branch has none (a stack without a shared remote).
func (r *Repo) Upstream() (u Upstream, ok bool, err error) {
	cfg, err := r.objs.config()
	if err != nil {
		return u, false, err
	}
	b, found := cfg.Branches[r.branch]
	if !found || b.Remote == "" || b.Remote == "." {
		return u, false, nil
	}
	rc, found := cfg.Remotes[b.Remote]
	if !found || len(rc.URLs) == 0 {
		return u, false, fmt.Errorf("branch %s follows remote %q, which has no url: `git remote add %s URL`", r.branch, b.Remote, b.Remote)
	}
	u = Upstream{Remote: b.Remote, URL: rc.URLs[0], Branch: b.Merge.Short()}
	if !b.Merge.IsBranch() {
		u.Branch = r.branch
	}
	return u, true, nil
}

// SetUpstream records u as the branch's upstream, the way `git clone` and
// `git push -u` do, so the git CLI sees the same remote. The config file is
// replaced atomically.
func (r *Repo) SetUpstream(u Upstream) error {
	if err := validateBranch(u.Branch); err != nil {
		return err
	}
	cfg, err := r.objs.config()
	if err != nil {
		return err
	}
	rc := &config.RemoteConfig{
		Name:  u.Remote,
		URLs:  []string{u.URL},
		Fetch: []config.RefSpec{config.RefSpec("+refs/heads/*:refs/remotes/" + u.Remote + "/*")},
	}
	if err := rc.Validate(); err != nil {
		return fmt.Errorf("remote %s: %w", u.Remote, err)
	}
	cfg.Remotes[u.Remote] = rc
	cfg.Branches[r.branch] = &config.Branch{Name: r.branch, Remote: u.Remote, Merge: plumbing.NewBranchReferenceName(u.Branch)}
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	// config.lock is git's own lock for this file: a concurrent `git config` waits or fails.
	p := filepath.Join(r.gitDir, "config")
	var notes []string
	f, err := createGitLock(r.gitDir, p+".lock", &notes)
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(p+".lock", p)
	}
	if err != nil {
		os.Remove(p + ".lock")
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// Reindex makes objects that another writer (a fetch) added as packs visible.
func (r *Repo) Reindex() {
	r.objs.mu.Lock()
	defer r.objs.mu.Unlock()
	r.objs.st.Reindex()
}
