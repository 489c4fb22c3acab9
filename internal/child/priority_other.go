//go:build !unix

package child

import (
	"errors"
	"runtime"
)

func setPriority(int, int) error {
	return errors.New("no niceness on " + runtime.GOOS)
}
