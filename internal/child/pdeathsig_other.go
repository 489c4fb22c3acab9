//go:build unix && !linux

package child

import "syscall"

// setPdeathsig does nothing: only Linux kills a child when its parent dies. The child's
// stream ending is what tells it (see the package doc).
func setPdeathsig(*syscall.SysProcAttr) {}
