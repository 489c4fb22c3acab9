//go:build !unix

package main

import "os/exec"

// ownGroup does nothing here: cancellation kills the process alone.
func ownGroup(cmd *exec.Cmd) {}
