//go:build unix

package child

import (
	"errors"
	"syscall"
)

var supported error

func sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(attr)
	return attr
}

func killGroup(pgid int) error { return syscall.Kill(-pgid, syscall.SIGKILL) }

func stop(pid int) error { return syscall.Kill(pid, syscall.SIGSTOP) }

func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
