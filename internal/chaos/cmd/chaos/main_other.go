//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "chaos: runs only on Linux (it reads /proc and becomes a child subreaper)")
	os.Exit(2)
}
