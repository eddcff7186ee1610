// Package gitremote is the network half of obol's stack repositories: it
// talks to a team's shared remote over smart HTTP(S), SSH or a local path,
// moves objects, and pushes one branch with an explicit old value that the
// server compares and swaps.
//
// It never writes a ref, the config or HEAD of the local repository: obol's
// repo package owns those (with its own locks). The only thing Fetch adds to
// the local repository is one pack (plus its index), installed so that a
// SIGKILL at any moment leaves a repository `git fsck --strict` accepts and
// go-git can read (see storePack).
//
// The wire protocol is git's protocol v0, built and parsed with go-git's
// plumbing (transport.NewEndpoint, packp, sideband, packfile). The HTTP and
// SSH clients are small ones of this package's own over net/http and
// golang.org/x/crypto/ssh rather than go-git's plumbing/transport/http and
// /ssh, because those pull in modules obol's go.mod does not carry
// (groupcache, kevinburke/ssh_config, skeema/knownhosts, xanzy/ssh-agent)
// and because they cannot honour a context while dialling SSH and hide the
// HTTP status behind error strings. ~/.ssh/config is read with
// kevinburke/ssh_config, as go-git reads it; GIT_SSH_COMMAND and GIT_SSH
// run the user's ssh instead, as git does.
// Local paths run the git CLI's own upload-pack/receive-pack, as git (and
// go-git's file transport) do.
package gitremote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Remote is one remote URL plus how to authenticate to it. URL forms:
// https://host/path, http://..., ssh://[user@]host[:port]/path,
// [user@]host:path (scp-like, SSH), file:///path, or a local path.
type Remote struct {
	URL  string
	Auth AuthOptions
}

// AuthOptions says how to authenticate. The zero value uses the
// environment (see Getenv) and the user's usual SSH and git setup.
type AuthOptions struct {
	// TokenFile: a file holding an HTTPS token/password (trailing newline
	// trimmed). It wins over the environment and the URL.
	TokenFile string
	// Username for HTTPS token auth when the URL has none; else
	// OBOL_GIT_USERNAME, else DefaultUsername ("x-access-token", which
	// GitHub, GitLab access tokens and Gitea/Forgejo all accept with a
	// token as the password; see DefaultUsername for the exceptions).
	Username string
	// SSHKeyFile: a private key for SSH (else OBOL_SSH_KEY, else the ssh
	// agent at SSH_AUTH_SOCK plus ~/.ssh/id_ed25519, id_ecdsa, id_rsa that
	// exist). An explicit key is the only one offered. Passphrase-protected
	// keys cannot be used from a file (there is no prompt): load them into
	// ssh-agent.
	SSHKeyFile string
	// KnownHostsFile overrides known_hosts for SSH (else SSH_KNOWN_HOSTS,
	// a list like PATH, else ~/.ssh/known_hosts and
	// /etc/ssh/ssh_known_hosts); host keys are always checked strictly.
	// ~/.ssh/config's HostName, Port, User and IdentityFile apply to a host
	// alias; with GIT_SSH_COMMAND or GIT_SSH set, that ssh is run instead,
	// as git runs it.
	KnownHostsFile string
	// Getenv reads the environment (nil: os.Getenv). Env: OBOL_GIT_TOKEN
	// (the token itself), OBOL_GIT_TOKEN_FILE, OBOL_GIT_USERNAME,
	// OBOL_SSH_KEY, SSH_AUTH_SOCK, SSH_KNOWN_HOSTS, HOME, USER; and for
	// the git credential helper HOME, XDG_CONFIG_HOME, GIT_CONFIG_GLOBAL,
	// GIT_CONFIG_SYSTEM, GIT_CONFIG_NOSYSTEM (which, when Getenv is set,
	// replace the process's values in git's environment).
	Getenv func(string) string
	// NoCredentialHelper turns off the git credential helper. By default,
	// when no token is given for an HTTP(S) URL and the server answers
	// 401, `git credential fill` is asked (if git is on PATH; with
	// GIT_TERMINAL_PROMPT=0 and no askpass, so it never prompts), then
	// `git credential approve` after success or `reject` after a 401.
	NoCredentialHelper bool
}

// Head returns what the remote's refs/heads/<branch> points to (zero hash
// if the branch does not exist or the repository is empty; an error if the
// repository does not exist or auth fails). It only reads the reference
// advertisement of git-upload-pack, so read-only credentials suffice.
func Head(ctx context.Context, rm Remote, branch string) (plumbing.Hash, error) {
	var h plumbing.Hash
	err := withConn(ctx, rm, "", func(c *conn) error {
		ref, err := branchRef(branch)
		if err != nil {
			return err
		}
		s, err := c.open(ctx, uploadPack)
		if err != nil {
			return err
		}
		defer s.close()
		h = refHash(s.adv(), ref)
		return nil
	})
	return h, err
}

// Fetch downloads refs/heads/<branch> of the remote with every object
// reachable from it that gitDir lacks, stores them in gitDir's object
// database as one pack, and returns the remote head (zero if the branch
// does not exist: nothing fetched). haves are local commits the remote
// probably has (the local branch head, the last known remote head); those
// present locally, and a few of their ancestors, are offered so the server
// sends only what is new. It writes no refs. A head already present locally
// is returned without downloading anything.
func Fetch(ctx context.Context, gitDir string, rm Remote, branch string, haves []plumbing.Hash) (plumbing.Hash, error) {
	var head plumbing.Hash
	err := withConn(ctx, rm, gitDir, func(c *conn) error {
		ref, err := branchRef(branch)
		if err != nil {
			return err
		}
		st, err := openStorage(gitDir)
		if err != nil {
			return err
		}
		defer st.Close()
		s, err := c.open(ctx, uploadPack)
		if err != nil {
			return err
		}
		defer s.close()
		ar := s.adv()
		h := refHash(ar, ref)
		if h.IsZero() || st.HasEncodedObject(h) == nil {
			head = h
			return nil
		}

		req := packp.NewUploadPackRequest()
		band := negotiate(ar.Capabilities, req.Capabilities, capability.OFSDelta, capability.NoProgress)
		// No multi_ack (one round: haves then done) and no thin-pack (the
		// pack must be complete on its own).
		req.Wants = []plumbing.Hash{h}
		req.Haves = localHaves(st, haves)
		var body bytes.Buffer
		if err := req.UploadRequest.Encode(&body); err != nil {
			return err
		}
		if err := req.UploadHaves.Encode(&body, false); err != nil {
			return err
		}
		if err := pktline.NewEncoder(&body).EncodeString("done\n"); err != nil {
			return err
		}

		rc, err := s.rpc(ctx, body.Bytes())
		if err != nil {
			return err
		}
		defer rc.Close()
		resp := packp.NewUploadPackResponse(req)
		if err := resp.Decode(io.NopCloser(rc)); err != nil {
			return c.ioErr(ctx, "reading the fetch response", err)
		}
		var pack io.Reader = resp
		msgs := newTail(4 << 10)
		if band >= 0 {
			d := sideband.NewDemuxer(band, resp)
			d.Progress = msgs
			pack = d
		}
		if _, err := storePack(gitDir, pack, st); err != nil {
			if m := msgs.String(); m != "" {
				err = fmt.Errorf("%w (remote: %s)", err, m)
			}
			return c.ioErr(ctx, "fetch", err)
		}
		st.Reindex()
		if err := st.HasEncodedObject(h); err != nil {
			return fmt.Errorf("fetch %s from %s: the server did not send it", h, c.redactedURL())
		}
		head = h
		return nil
	})
	return head, err
}

// Push sets the remote's refs/heads/<branch> from old (zero: must not
// exist) to new, sending the objects reachable from new that are not
// reachable from old (old is known to the remote, and present locally
// unless zero). The server does the compare-and-swap: if the remote ref is
// not old any more the push is rejected and Push returns an error wrapping
// ErrStale, and the remote is unchanged. Other rejections (hooks, protected
// branch, non-fast-forward policy, permission) return an error wrapping
// ErrRejected with the server's reason. There is no force beyond the
// old->new compare-and-swap; new need not descend from old (the server's
// own non-fast-forward policy applies). old == new, or a remote already at
// new, is a no-op. Deleting (new zero) is not supported.
func Push(ctx context.Context, gitDir string, rm Remote, branch string, old, new plumbing.Hash) error {
	return withConn(ctx, rm, gitDir, func(c *conn) error {
		ref, err := branchRef(branch)
		if err != nil {
			return err
		}
		if new.IsZero() {
			return errors.New("push: deleting a remote branch is not supported")
		}
		if old == new {
			return nil
		}
		st, err := openStorage(gitDir)
		if err != nil {
			return err
		}
		defer st.Close()
		if _, err := object.GetCommit(st, new); err != nil {
			return fmt.Errorf("push %s: %s is not a commit in %s: %w", ref, new, gitDir, err)
		}

		s, err := c.open(ctx, receivePack)
		if err != nil {
			return err
		}
		defer s.close()
		ar := s.adv()
		cur := refHash(ar, ref)
		if cur == new {
			return nil
		}
		if cur != old && !testSkipPrecheck {
			return staleError(c, ref, cur, old, "", "")
		}

		// What the remote has: old, and whatever it advertises that we have.
		haves := []plumbing.Hash{old}
		for name, h := range ar.References {
			if !strings.HasSuffix(name, "^{}") {
				haves = append(haves, h)
			}
		}
		hashes, err := objectsToPush(st, new, haves)
		if err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}

		req := packp.NewReferenceUpdateRequest()
		hasReport := ar.Capabilities.Supports(capability.ReportStatus)
		band := negotiate(ar.Capabilities, req.Capabilities, capability.ReportStatus, capability.Quiet)
		req.Commands = []*packp.Command{{Name: ref, Old: old, New: new}}
		var body bytes.Buffer
		if err := req.Encode(&body); err != nil {
			return err
		}
		// receive-pack wants a pack for any non-delete command, even an
		// empty one.
		useRefDeltas := !ar.Capabilities.Supports(capability.OFSDelta)
		if _, err := packfile.NewEncoder(&body, st, useRefDeltas).Encode(hashes, 10); err != nil {
			return fmt.Errorf("push %s: packing %d objects: %w", ref, len(hashes), err)
		}

		rc, err := s.rpc(ctx, body.Bytes())
		if err != nil {
			return err
		}
		defer rc.Close()
		if !hasReport {
			// No report: the only way to learn the outcome is to look.
			_, _ = io.Copy(io.Discard, rc)
			s.close()
			return c.verifyAfter(ctx, ref, old, new, "the server does not report push results")
		}
		var r io.Reader = rc
		msgs := newTail(4 << 10)
		if band >= 0 {
			d := sideband.NewDemuxer(band, rc)
			d.Progress = msgs
			r = d
		}
		report := packp.NewReportStatus()
		if err := report.Decode(r); err != nil {
			err = c.ioErr(ctx, "reading the push report", err)
			if m := msgs.String(); m != "" {
				err = fmt.Errorf("%w (remote: %s)", err, m)
			}
			return fmt.Errorf("%w; the push may or may not have been applied: check the remote branch with Head", err)
		}
		if report.UnpackStatus != "ok" {
			return rejected(c, ref, "the server failed to unpack the objects: "+report.UnpackStatus, msgs.String())
		}
		for _, cs := range report.CommandStatuses {
			if cs.ReferenceName != ref || cs.Status == "ok" {
				continue
			}
			s.close()
			return c.classifyRejection(ctx, ref, old, new, cs.Status, msgs.String())
		}
		return nil
	})
}

// testSkipPrecheck makes Push send its command even when the advertisement
// already shows the ref moved, so tests can see the server's own
// compare-and-swap answer.
var testSkipPrecheck bool

// withConn runs one operation: it opens the remote, runs fn, and returns
// fn's error without any secret in it.
func withConn(ctx context.Context, rm Remote, dir string, fn func(*conn) error) error {
	c, err := newConn(rm, dir)
	if err != nil {
		sec := &secrets{}
		if c != nil {
			sec = c.sec
		}
		return sec.clean(err)
	}
	err = fn(c)
	// Credentials from the helper that got a 2xx are approved even if the
	// operation failed later (they worked); a 401 rejected them already.
	c.finish(ctx)
	return c.sec.clean(err)
}

// ioErr is a failure while talking to the server: the context's error if
// it was cancelled, else err with the server's name.
func (c *conn) ioErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %s: %w", c.redactedURL(), what, ctx.Err())
	}
	return fmt.Errorf("%s: %s: %w", c.redactedURL(), what, pktErr(err, what))
}

// classifyRejection decides whether a refused command was a lost race
// (ErrStale) or a refusal (ErrRejected). The server's wording for a failed
// compare-and-swap differs across git versions and forges ("failed to
// update ref", "failed to lock", "stale info", ...), so the remote branch
// is read again: if it is no longer old, the push was stale.
func (c *conn) classifyRejection(ctx context.Context, ref plumbing.ReferenceName, old, new plumbing.Hash, reason, msgs string) error {
	cur, err := c.head(ctx, ref)
	switch {
	case err == nil && cur == new:
		return nil // someone pushed the same commit
	case err == nil && cur != old:
		return staleError(c, ref, cur, old, reason, msgs)
	case err != nil && looksStale(reason+" "+msgs):
		return staleError(c, ref, plumbing.ZeroHash, old, reason, msgs)
	}
	return rejected(c, ref, reason, msgs)
}

// verifyAfter reads the remote branch after a push whose outcome the
// server did not report.
func (c *conn) verifyAfter(ctx context.Context, ref plumbing.ReferenceName, old, new plumbing.Hash, why string) error {
	cur, err := c.head(ctx, ref)
	switch {
	case err != nil:
		return fmt.Errorf("push %s to %s: %s, and reading it back failed: %w", ref, c.redactedURL(), why, err)
	case cur == new:
		return nil
	case cur != old:
		return staleError(c, ref, cur, old, "", "")
	}
	return rejected(c, ref, why+"; the branch is unchanged", "")
}

// head reads ref with a fresh upload-pack session on the same connection
// settings (credentials that worked are reused).
func (c *conn) head(ctx context.Context, ref plumbing.ReferenceName) (plumbing.Hash, error) {
	s, err := c.open(ctx, uploadPack)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer s.close()
	return refHash(s.adv(), ref), nil
}

func looksStale(s string) bool {
	s = strings.ToLower(s)
	for _, k := range []string{"cannot lock ref", "failed to lock", "but expected", "reference already exists", "stale info", "incorrect old value", "fetch first"} {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

func staleError(c *conn, ref plumbing.ReferenceName, cur, old plumbing.Hash, reason, msgs string) error {
	now := "is at " + cur.String()
	switch {
	case cur.IsZero() && reason != "":
		now = "moved"
	case cur.IsZero():
		now = "does not exist"
	}
	was := old.String()
	if old.IsZero() {
		was = "absent"
	}
	msg := fmt.Sprintf("push %s to %s: the remote branch %s, not %s as expected", ref.Short(), c.redactedURL(), now, was)
	if reason != "" {
		msg += fmt.Sprintf(" (server: %q", reason)
		if msgs != "" {
			msg += "; remote said: " + msgs
		}
		msg += ")"
	}
	return fmt.Errorf("%w: %s: fetch, integrate the new commits, and push again", ErrStale, msg)
}

func rejected(c *conn, ref plumbing.ReferenceName, reason, msgs string) error {
	msg := fmt.Sprintf("push %s to %s: %q", ref.Short(), c.redactedURL(), reason)
	if msgs != "" {
		msg += "; remote said: " + msgs
	}
	return fmt.Errorf("%w: %s", ErrRejected, msg)
}

// branchRef is refs/heads/<branch>; a full refs/heads/ name is accepted too.
func branchRef(branch string) (plumbing.ReferenceName, error) {
	b := strings.TrimPrefix(branch, "refs/heads/")
	if !validRefPart(b) {
		return "", fmt.Errorf("invalid branch name %q", branch)
	}
	return plumbing.NewBranchReferenceName(b), nil
}

// validRefPart applies git's check-ref-format rules to a branch name.
func validRefPart(b string) bool {
	if b == "" || b == "@" || strings.HasPrefix(b, "-") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".") || strings.Contains(b, "..") || strings.Contains(b, "@{") ||
		strings.Contains(b, "//") || strings.HasPrefix(b, "/") {
		return false
	}
	for _, comp := range strings.Split(b, "/") {
		if strings.HasPrefix(comp, ".") || strings.HasSuffix(comp, ".lock") {
			return false
		}
	}
	for _, r := range b {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	return true
}

// refHash is the advertised value of ref (zero if absent).
func refHash(ar *packp.AdvRefs, ref plumbing.ReferenceName) plumbing.Hash {
	if ar == nil {
		return plumbing.ZeroHash
	}
	return ar.References[ref.String()]
}

// openStorage opens gitDir's object database for reading (and the pack
// index cache).
func openStorage(gitDir string) (*filesystem.Storage, error) {
	fi, err := os.Stat(filepath.Join(gitDir, "objects"))
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a git directory (no objects/)", gitDir)
	}
	return filesystem.NewStorageWithOptions(osfs.New(gitDir), cache.NewObjectLRUDefault(), filesystem.Options{}), nil
}

// maxHaves bounds the commits offered in a fetch.
const (
	maxHaves         = 256
	ancestorsPerHave = 32
)

// localHaves offers the given commits that exist locally and some of their
// ancestors (breadth first), so the server finds a common base even if the
// given commits themselves are unknown to it.
func localHaves(st *filesystem.Storage, haves []plumbing.Hash) []plumbing.Hash {
	var out []plumbing.Hash
	seen := map[plumbing.Hash]bool{}
	for _, h := range haves {
		if len(out) >= maxHaves {
			break
		}
		if h.IsZero() || seen[h] {
			continue
		}
		c, err := object.GetCommit(st, h)
		if err != nil {
			continue
		}
		seen[h] = true
		out = append(out, h)
		queue := []*object.Commit{c}
		n := 0
		for len(queue) > 0 && n < ancestorsPerHave && len(out) < maxHaves {
			c := queue[0]
			queue = queue[1:]
			for _, p := range c.ParentHashes {
				if seen[p] {
					continue
				}
				seen[p] = true
				pc, err := object.GetCommit(st, p)
				if err != nil {
					continue
				}
				out = append(out, p)
				n++
				queue = append(queue, pc)
			}
		}
	}
	return out
}

// negotiate sets in caps what both sides support: the widest side-band (returned; -1 for
// none), the optional capabilities asked for, and obol's agent string.
func negotiate(server, caps *capability.List, optional ...capability.Capability) sideband.Type {
	var band sideband.Type = -1
	switch {
	case server.Supports(capability.Sideband64k):
		_ = caps.Set(capability.Sideband64k)
		band = sideband.Sideband64k
	case server.Supports(capability.Sideband):
		_ = caps.Set(capability.Sideband)
		band = sideband.Sideband
	}
	for _, c := range optional {
		if server.Supports(c) {
			_ = caps.Set(c)
		}
	}
	if server.Supports(capability.Agent) {
		_ = caps.Set(capability.Agent, "obol")
	}
	return band
}
