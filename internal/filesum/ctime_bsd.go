//go:build darwin || freebsd || netbsd

package filesum

import (
	"os"
	"syscall"
	"time"
)

// ChangeTime is fi's status change time (ctime), which every write, rename into place,
// chmod or link moves and no program can set back; ok is false where the platform has none.
func ChangeTime(fi os.FileInfo) (t time.Time, ok bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(int64(st.Ctimespec.Sec), int64(st.Ctimespec.Nsec)), true
	}
	return time.Time{}, false
}
