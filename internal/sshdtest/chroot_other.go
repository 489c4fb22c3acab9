//go:build !linux

package sshdtest

import (
	"errors"
	"runtime"
)

var errChrootLinux = errors.New("sshdtest: Options.Chroot needs Linux (a static busybox and Linux device numbers), not " + runtime.GOOS)

func checkChrootPath(string) error { return errChrootLinux }

func mknodChar(string, uint32, uint32) error { return errChrootLinux }
