package repo

import (
	"fmt"
	"os"
	"syscall"
)

// statData is the stat information git keeps in an index entry.
type statData struct {
	ctimeSec, ctimeNsec int64
	mtimeSec, mtimeNsec int64
	dev, ino            uint64
	uid, gid            uint32
	size                int64
}

// lstatData stats a work-tree path for its index entry.
func lstatData(p string) (*statData, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("stat %s: no system stat data", p)
	}
	return fromStat(st), nil
}

// fileIDOf identifies an open or named file by device and inode.
func fileIDOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}
	}
	return fileID{}
}
