//go:build unix

package child

import "syscall"

// setPriority sets the niceness of process (or, on Linux, thread) id.
func setPriority(id, nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, id, nice)
}
