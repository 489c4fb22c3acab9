//go:build !unix

package main

import "time"

var epoch = time.Now()

// cpuTime falls back to real time where getrusage is not there: on an otherwise idle
// machine the two are close, for this single-goroutine program.
func cpuTime() time.Duration { return time.Since(epoch) }
