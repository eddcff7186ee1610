package repo

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// ErrRefMoved is returned when the branch no longer points where a commit
// expected it to: someone else (usually the git CLI) committed in between.
// Commit handles it by building again on the new head.
var ErrRefMoved = errors.New("branch ref moved")

// ErrRefLocked is returned when git's own lock file for the ref (or the
// index) stays in place: a git command is running on the repository.
var ErrRefLocked = errors.New("locked by a running git command")

// staleGitLock is how old a git .lock file must be before obol, which holds
// its own flock so no obol process can own it, removes it as left behind by
// a killed process.
const staleGitLock = 10 * time.Second

// gitLockWait is how long obol waits for a fresh git .lock to go away (a
// variable so tests can shorten it).
var gitLockWait = 2 * time.Second

// readHEAD returns the ref HEAD points to, or "" when HEAD is detached.
func (r *Repo) readHEAD() (string, error) {
	data, err := os.ReadFile(filepath.Join(r.gitDir, "HEAD"))
	if err != nil {
		return "", fmt.Errorf("read HEAD: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if ref, ok := strings.CutPrefix(s, "ref:"); ok {
		return strings.TrimSpace(ref), nil
	}
	if _, err := parseHex(s); err != nil {
		return "", fmt.Errorf("read HEAD: unrecognised content %q", s)
	}
	return "", nil
}

// readRef returns the value of ref name (e.g. refs/heads/main) from its loose
// file, else from packed-refs; the zero hash when it does not exist.
func (r *Repo) readRef(name string) (plumbing.Hash, error) {
	data, err := os.ReadFile(filepath.Join(r.gitDir, filepath.FromSlash(name)))
	switch {
	case err == nil:
		s := strings.TrimSpace(string(data))
		if strings.HasPrefix(s, "ref:") {
			return plumbing.ZeroHash, fmt.Errorf("ref %s is a symbolic ref (%s); obol writes branches only", name, s)
		}
		h, err := parseHex(s)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("ref %s: %w", name, err)
		}
		return h, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		return r.readPackedRef(name)
	default:
		return plumbing.ZeroHash, fmt.Errorf("ref %s: %w", name, err)
	}
}

func (r *Repo) readPackedRef(name string) (plumbing.Hash, error) {
	f, err := os.Open(filepath.Join(r.gitDir, "packed-refs"))
	if errors.Is(err, fs.ErrNotExist) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("ref %s: %w", name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) < 42 || line[0] == '#' || line[0] == '^' {
			continue
		}
		if string(line[41:]) == name && line[40] == ' ' {
			h, err := parseHex(string(line[:40]))
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("ref %s in packed-refs: %w", name, err)
			}
			return h, nil
		}
	}
	if err := sc.Err(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("ref %s: read packed-refs: %w", name, err)
	}
	return plumbing.ZeroHash, nil
}

func parseHex(s string) (plumbing.Hash, error) {
	if len(s) != 40 {
		return plumbing.ZeroHash, fmt.Errorf("not an object id: %q", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return plumbing.ZeroHash, fmt.Errorf("not an object id: %q", s)
		}
	}
	return plumbing.NewHash(s), nil
}

// refUpdate moves one ref with git's lockfile protocol.
type refUpdate struct {
	name     string // refs/heads/<branch>
	old, new plumbing.Hash
	ident    string // "Name <email> unixtime +zzzz" for the reflog
	message  string // reflog message, e.g. "commit: subject"
	logHEAD  bool   // HEAD points at this ref: append to HEAD's reflog too
	logAll   bool   // core.logAllRefUpdates: create the reflog if missing
}

// refLock is git's lock on one ref: <ref>.lock, created with
// O_CREAT|O_EXCL. Holding it keeps git commands from moving the ref.
type refLock struct {
	name, refPath, lockPath string
	f                       *os.File
}

// lockRef takes the lock for ref name. notes receives what it had to clean
// up (a stale lock).
func (r *Repo) lockRef(name string, notes *[]string) (*refLock, error) {
	l := &refLock{name: name, refPath: filepath.Join(r.gitDir, filepath.FromSlash(name))}
	l.lockPath = l.refPath + ".lock"
	if err := os.MkdirAll(filepath.Dir(l.refPath), 0o777); err != nil {
		return nil, fmt.Errorf("update %s: %w", name, err)
	}
	f, err := createGitLock(r.gitDir, l.lockPath, notes)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", name, err)
	}
	l.f = f
	return l, nil
}

// abort releases the lock without moving the ref. Safe on nil and twice.
func (l *refLock) abort() {
	if l != nil && l.f != nil {
		l.f.Close()
		os.Remove(l.lockPath)
		l.f = nil
	}
}

// commitRef moves the ref from u.old to u.new the way git does: check the
// current value (loose file, else packed-refs), write and fsync the new value
// into the lock file, append the reflog, rename the lock over the ref. A
// crash at any point leaves the old ref or the new one, never a truncated
// file. It returns ErrRefMoved if the ref no longer holds u.old (zero: must
// not exist). The lock is released either way.
func (r *Repo) commitRef(l *refLock, u refUpdate) error {
	defer l.abort()
	cur, err := r.readRef(u.name)
	if err != nil {
		return fmt.Errorf("update %s: %w", u.name, err)
	}
	if cur != u.old {
		return fmt.Errorf("update %s: expected %s, found %s: %w", u.name, u.old, cur, ErrRefMoved)
	}
	_, err = l.f.WriteString(u.new.String() + "\n")
	if err == nil {
		err = l.f.Sync()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err == nil {
		err = r.appendReflog(u)
	}
	if err == nil {
		err = os.Rename(l.lockPath, l.refPath)
	}
	if err != nil {
		os.Remove(l.lockPath)
		return fmt.Errorf("update %s: %w", u.name, err)
	}
	return nil
}

// createGitLock creates a git-style lock file and records it as obol's (see
// recordOwnLock). An existing lock older than
// staleGitLock was left by a killed process (obol holds its flock, so no obol
// process owns it) and is removed with a note; a fresh one belongs to a
// running git command, so wait briefly for it to go away.
func createGitLock(gitDir, lockPath string, notes *[]string) (*os.File, error) {
	deadline := time.Now().Add(gitLockWait)
	for {
		f, err := createOwnedLock(gitDir, lockPath)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		fi, serr := os.Stat(lockPath)
		if serr == nil && time.Since(fi.ModTime()) > staleGitLock {
			if rerr := os.Remove(lockPath); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return nil, fmt.Errorf("remove stale lock %s: %w", lockPath, rerr)
			}
			*notes = append(*notes, fmt.Sprintf("removed stale lock %s (left %s ago by a killed process)", lockPath, time.Since(fi.ModTime()).Round(time.Second)))
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s exists: %w (if no git command is running, remove it)", lockPath, ErrRefLocked)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// appendReflog adds git's reflog line for u to logs/<ref> (and logs/HEAD),
// following core.logAllRefUpdates like git: existing logs are always
// appended to; missing ones are created only when it is on.
func (r *Repo) appendReflog(u refUpdate) error {
	line := fmt.Sprintf("%s %s %s\t%s\n", u.old, u.new, u.ident, oneLine(u.message))
	names := []string{u.name}
	if u.logHEAD {
		names = append(names, "HEAD")
	}
	for _, name := range names {
		p := filepath.Join(r.gitDir, "logs", filepath.FromSlash(name))
		flags := os.O_WRONLY | os.O_APPEND
		if u.logAll {
			flags |= os.O_CREATE
			if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
				return fmt.Errorf("reflog %s: %w", name, err)
			}
		}
		f, err := os.OpenFile(p, flags, 0o666)
		if errors.Is(err, fs.ErrNotExist) && !u.logAll {
			continue
		}
		if err != nil {
			return fmt.Errorf("reflog %s: %w", name, err)
		}
		_, err = f.WriteString(line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("reflog %s: %w", name, err)
		}
	}
	return nil
}

// logAllRefUpdates reads core.logAllRefUpdates; git's default is on for
// repositories with a work tree and off for bare ones.
func (r *Repo) logAllRefUpdates() bool {
	cfg, err := r.objs.config()
	if err != nil || cfg.Raw == nil {
		return !r.bare
	}
	v := strings.ToLower(cfg.Raw.Section("core").Option("logallrefupdates"))
	switch v {
	case "true", "yes", "on", "1", "always":
		return true
	case "false", "no", "off", "0":
		return false
	}
	return !r.bare
}

// oneLine is the first line of a message (its subject).
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// ownLocksName lists the git lock files obol creates, with their device and
// inode. Every obol writer holds the repository flock, so when the next one
// takes it, a listed lock file that is still the very file recorded was left
// by a killed obol and is removed at once, instead of looking like a running
// git command's lock until it is staleGitLock old.
const ownLocksName = "obol-locks"

// createOwnedLock creates lockPath so that a kill at any instant leaves either
// no lock or a recorded one: the file is made under a private name, recorded,
// then hard-linked to the lock name (atomic, and EEXIST when someone holds the
// lock, like O_EXCL), and the private name dropped. The private name ends in
// ".lock" so git never reads it as a ref.
func createOwnedLock(gitDir, lockPath string) (*os.File, error) {
	tmp := strings.TrimSuffix(lockPath, ".lock") + fmt.Sprintf(".obol-%d-%d.lock", os.Getpid(), rand.Uint64())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, err
	}
	recordOwnLock(gitDir, lockPath, tmp, f)
	err = os.Link(tmp, lockPath)
	os.Remove(tmp)
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func recordOwnLock(gitDir, lockPath, tmp string, f *os.File) {
	fi, err := f.Stat()
	if err != nil {
		return
	}
	id := fileIDOf(fi)
	rel, err1 := filepath.Rel(gitDir, lockPath)
	relTmp, err2 := filepath.Rel(gitDir, tmp)
	if err1 != nil || err2 != nil || strings.ContainsAny(rel+relTmp, " \n") {
		return
	}
	lf, err := os.OpenFile(filepath.Join(gitDir, ownLocksName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return // without a record, a lock left behind is only cleared once stale
	}
	fmt.Fprintf(lf, "%d %d %s %s\n", id.Dev, id.Ino, filepath.ToSlash(rel), filepath.ToSlash(relTmp))
	lf.Close()
}

// removeOwnLocks runs under the repository flock: it removes the lock files a
// killed obol left (still the recorded file), and their private names, and
// clears the list.
func removeOwnLocks(gitDir string, notes *[]string) {
	p := filepath.Join(gitDir, ownLocksName)
	data, err := os.ReadFile(p)
	if err != nil || len(data) == 0 {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || !fs.ValidPath(f[2]) || !fs.ValidPath(f[3]) || !strings.HasSuffix(f[2], ".lock") || !strings.HasSuffix(f[3], ".lock") {
			continue
		}
		dev, err1 := strconv.ParseUint(f[0], 10, 64)
		ino, err2 := strconv.ParseUint(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		os.Remove(filepath.Join(gitDir, filepath.FromSlash(f[3])))
		lock := filepath.Join(gitDir, filepath.FromSlash(f[2]))
		fi, err := os.Lstat(lock)
		if err != nil || fileIDOf(fi) != (fileID{Dev: dev, Ino: ino}) {
			continue
		}
		if os.Remove(lock) == nil {
			*notes = append(*notes, fmt.Sprintf("removed %s, left by a killed obol", f[2]))
		}
	}
	_ = os.Remove(p)
}
