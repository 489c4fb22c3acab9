// Command sshdserve runs an sshdtest server outside of a test, for benchmark scripts: it
// starts a real sshd on 127.0.0.1 as sshdtest.Start does, writes shell assignments that
// describe it to the file named by -env (written last, so its appearance means ready), and
// stops sshd and removes everything it made when its standard input closes or it gets
// SIGINT/SIGTERM.
//
//	go run ./internal/sshdtest/cmd/sshdserve -env /tmp/sshd.env < fifo &
//	. /tmp/sshd.env   # SSHD_ALIAS SSHD_HOME SSHD_CONFIG SSHD_REMOTE_HOME SSHD_PORT
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/godist/godist/internal/sshdtest"
)

func main() {
	envFile := flag.String("env", "", "write the server's description as shell assignments to `FILE`")
	chroot := flag.Bool("chroot", false, "chroot sessions of the test user into a busybox-only directory (needs root)")
	flag.Parse()
	if *envFile == "" {
		fmt.Fprintln(os.Stderr, "sshdserve: -env FILE is required")
		os.Exit(2)
	}
	s, stop, err := sshdtest.StartProgram(sshdtest.Options{Chroot: *chroot, LogLevel: "ERROR"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sshdserve: %v\n", err)
		os.Exit(1)
	}
	q := func(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }
	desc := fmt.Sprintf("SSHD_ALIAS=%s\nSSHD_HOME=%s\nSSHD_CONFIG=%s\nSSHD_REMOTE_HOME=%s\nSSHD_PORT=%d\nSSHD_USER=%s\n",
		q(s.Alias), q(s.Home), q(s.ConfigFile), q(s.RemoteHome), s.Port, q(s.User))
	tmp := *envFile + ".tmp"
	err = os.WriteFile(tmp, []byte(desc), 0o644)
	if err == nil {
		err = os.Rename(tmp, *envFile)
	}
	if err != nil {
		stop()
		fmt.Fprintf(os.Stderr, "sshdserve: writing %s: %v\n", *envFile, err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	sshdtest.WaitStdinOrSignal(sig)
	stop()
	os.Remove(*envFile)
}
