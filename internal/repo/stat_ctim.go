//go:build linux || openbsd

package repo

import "syscall"

func fromStat(st *syscall.Stat_t) *statData {
	return &statData{
		ctimeSec: int64(st.Ctim.Sec), ctimeNsec: int64(st.Ctim.Nsec),
		mtimeSec: int64(st.Mtim.Sec), mtimeNsec: int64(st.Mtim.Nsec),
		dev: uint64(st.Dev), ino: uint64(st.Ino),
		uid: st.Uid, gid: st.Gid, size: st.Size,
	}
}
