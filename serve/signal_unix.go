//go:build unix

package serve

import (
	"strconv"
	"syscall"
)

// signalName is the name of sig without "SIG", as exit-signal wants it (RFC 4254 6.10).
func signalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE", syscall.SIGHUP: "HUP",
		syscall.SIGILL: "ILL", syscall.SIGINT: "INT", syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE",
		syscall.SIGQUIT: "QUIT", syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM", syscall.SIGUSR1: "USR1",
		syscall.SIGUSR2: "USR2", syscall.SIGBUS: "BUS", syscall.SIGTRAP: "TRAP",
	}
	if n, ok := names[sig]; ok {
		return n
	}
	return strconv.Itoa(int(sig)) + "@godist"
}
