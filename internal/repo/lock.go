package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLocked is returned when another process holds the repository lock past
// the caller's deadline.
var ErrLocked = errors.New("repository is locked by another obol process")

const lockFileName = "obol.lock"

// repoLock is an exclusive flock on <gitdir>/obol.lock, held for a whole
// commit (build, write, ref move, work tree sync). The kernel drops a flock
// when its holder dies, so a killed obol never blocks the next one: there is
// nothing stale to clean up. The file holds the holder's pid so a waiter can
// say who it is waiting for.
type repoLock struct{ f *os.File }

func acquireLock(ctx context.Context, gitDir string) (*repoLock, error) {
	path := filepath.Join(gitDir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	fd := int(f.Fd())
	wait := time.Millisecond
	var timer *time.Timer
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			holder := "another process"
			if pid := readLockPid(path); pid > 0 {
				holder = "pid " + strconv.Itoa(pid)
			}
			f.Close()
			return nil, fmt.Errorf("lock %s: held by %s: %w (%w)", path, holder, ErrLocked, ctx.Err())
		case <-timer.C:
		}
		wait = min(wait*2, 20*time.Millisecond)
	}
	if timer != nil {
		timer.Stop()
	}
	// Record who holds it. Failing to do so does not weaken the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &repoLock{f: f}, nil
}

func (l *repoLock) release() {
	if l == nil || l.f == nil {
		return
	}
	// Every git lock file this holder created is gone by now: forget them (a killed holder
	// never gets here, and the next one removes what it left).
	_ = os.Remove(filepath.Join(filepath.Dir(l.f.Name()), ownLocksName))
	// Best effort: closing the file drops the flock whatever these return.
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// readLockPid returns the pid recorded in a lock file, or 0. It is advisory:
// the pid is only meaningful while the lock is held.
func readLockPid(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0
	}
	return pid
}
