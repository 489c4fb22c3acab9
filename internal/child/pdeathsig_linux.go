package child

import "syscall"

// setPdeathsig has the kernel SIGKILL the child when its parent dies.
func setPdeathsig(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
