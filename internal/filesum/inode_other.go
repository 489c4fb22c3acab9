//go:build !unix

package filesum

import "os"

// Inode is not known here: 0, and a file is told from its replacement by its size and
// time alone.
func Inode(os.FileInfo) uint64 { return 0 }
