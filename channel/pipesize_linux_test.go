package channel

import (
	"os"
	"syscall"
)

// setPipeSize grows a pipe's kernel buffer (F_SETPIPE_SZ), so that bulk
// transfers need fewer wakeups; best effort.
func setPipeSize(f *os.File, size int) {
	const fSetPipeSz = 1031
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, uintptr(size))
	})
}
