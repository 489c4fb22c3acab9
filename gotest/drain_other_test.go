//go:build !linux

package gotest

import (
	"errors"
	"os"
	"time"
)

// canWaitDrained reports whether waitDrained works on this system.
const canWaitDrained = false

func ensurePipeBuffer(f *os.File, n int) error {
	return errors.New("setting a pipe's buffer is implemented on Linux only")
}

func waitDrained(f *os.File, timeout time.Duration) error {
	return errors.New("waiting for a pipe to drain is implemented on Linux only")
}
