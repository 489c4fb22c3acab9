package sshdtest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// checkChrootPath checks what sshd will check of a ChrootDirectory's components.
func checkChrootPath(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Uid != 0 || st.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("chroot path component %s is not root-owned or is group/other-writable (uid %d, mode %v)", p, sys.Uid, st.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
	}
}

// mknodChar makes the character device major:minor at p.
func mknodChar(p string, major, minor uint32) error {
	return syscall.Mknod(p, syscall.S_IFCHR|0o666, int(mkdev(major, minor)))
}

// mkdev is Linux's device number of major:minor.
func mkdev(major, minor uint32) uint64 {
	return uint64(major)<<8 | uint64(minor&0xff) | uint64(minor&^0xff)<<12
}
