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
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/godist/godist/internal/sshdtest"
)

// tb is the part of testing.TB that sshdtest uses, for a program. The embedded nil TB is
// never called: every method sshdtest calls is defined here.
type tb struct {
	testing.TB
	cleanups []func()
}

func (t *tb) Helper()                         {}
func (t *tb) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }
func (t *tb) Failed() bool                    { return false }
func (t *tb) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (t *tb) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sshdserve: "+format+"\n", args...)
	t.cleanup()
	os.Exit(1)
}
func (t *tb) Skipf(format string, args ...any) { t.Fatalf(format, args...) }

func (t *tb) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

func main() {
	envFile := flag.String("env", "", "write the server's description as shell assignments to `FILE`")
	chroot := flag.Bool("chroot", false, "chroot sessions of the test user into a busybox-only directory (needs root)")
	flag.Parse()
	if *envFile == "" {
		fmt.Fprintln(os.Stderr, "sshdserve: -env FILE is required")
		os.Exit(2)
	}
	t := &tb{}
	s := sshdtest.Start(t, sshdtest.Options{Chroot: *chroot, LogLevel: "ERROR"})
	q := func(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }
	desc := fmt.Sprintf("SSHD_ALIAS=%s\nSSHD_HOME=%s\nSSHD_CONFIG=%s\nSSHD_REMOTE_HOME=%s\nSSHD_PORT=%d\nSSHD_USER=%s\n",
		q(s.Alias), q(s.Home), q(s.ConfigFile), q(s.RemoteHome), s.Port, q(s.User))
	tmp := *envFile + ".tmp"
	err := os.WriteFile(tmp, []byte(desc), 0o644)
	if err == nil {
		err = os.Rename(tmp, *envFile)
	}
	if err != nil {
		t.Fatalf("writing %s: %v", *envFile, err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-sig:
	case <-eof:
	}
	t.cleanup()
	os.Remove(*envFile)
}
