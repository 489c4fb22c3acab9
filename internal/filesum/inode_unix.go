//go:build unix

package filesum

import (
	"os"
	"syscall"
)

// Inode is fi's inode number, 0 where the platform has none.
func Inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
