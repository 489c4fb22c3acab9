//go:build !unix

package child

import (
	"os"
	"syscall"
)

var supported = ErrUnsupported

func sysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(int) error { return ErrUnsupported }

func stop(int) error { return ErrUnsupported }

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer p.Release()
	return p.Kill()
}

func waitExited(int) bool { return false }
