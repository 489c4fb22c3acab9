//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package main

import "os"

// keyMode: on this platform keys are read as typed lines (r, f or q, then Enter).
func keyMode(*os.File) (restore func()) { return func() {} }
