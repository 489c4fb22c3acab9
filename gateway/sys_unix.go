//go:build unix

package gateway

import "golang.org/x/sys/unix"

// searchable is nil if this process's effective ids may search dir, as a child's chdir
// needs (faccessat(2) with AT_EACCESS).
func searchable(dir string) error {
	return unix.Faccessat(unix.AT_FDCWD, dir, unix.X_OK, unix.AT_EACCESS)
}
