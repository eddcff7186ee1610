//go:build darwin

package repo

import "syscall"

func fromStat(st *syscall.Stat_t) *statData {
	return &statData{
		ctimeSec: int64(st.Ctimespec.Sec), ctimeNsec: int64(st.Ctimespec.Nsec),
		mtimeSec: int64(st.Mtimespec.Sec), mtimeNsec: int64(st.Mtimespec.Nsec),
		dev: uint64(st.Dev), ino: uint64(st.Ino),
		uid: st.Uid, gid: st.Gid, size: st.Size,
	}
}
