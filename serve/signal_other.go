//go:build !unix

package serve

import (
	"strconv"
	"syscall"
)

// signalName: no process ends by a signal here (workers are refused anyway).
func signalName(sig syscall.Signal) string { return strconv.Itoa(int(sig)) + "@godist" }
