//go:build unix

package rsync

import (
	"io/fs"
	"syscall"
)

// oNoFollow makes an open fail on a symbolic link (ELOOP) instead of following it.
const oNoFollow = syscall.O_NOFOLLOW

// devIno is the device and inode of fi.
func devIno(fi fs.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true
}
