//go:build !unix

package gateway

import (
	"errors"
	"runtime"
)

// searchable cannot tell here; the exec error stands as it is.
func searchable(string) error { return nil }

func setPriority(int, int) error {
	return errors.New("no niceness on " + runtime.GOOS)
}
