package child

import (
	"errors"
	"os"
	"syscall"
)

// errInvalidParameter is what OpenProcess says of a pid no process has.
const errInvalidParameter = syscall.Errno(87) // ERROR_INVALID_PARAMETER

func gone(pid int) bool {
	p, err := os.FindProcess(pid)
	if err == nil {
		p.Release()
		return false
	}
	return errors.Is(err, errInvalidParameter)
}
