// Command godist runs a Go module's tests distributed over gateways: local worker
// processes, ssh hosts, godist serve sockets and any command that reaches a shell (see
// CONTRACT.md at the repository root for the command line it takes).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/runner"
)

// buildShim is this program's own binary when it runs as a command (not inside a test):
// go test -exec runs it as the build shim of a first build (gobuild/shim.go).
var buildShim string

func main() {
	if gobuild.ShimRequested() {
		os.Exit(gobuild.RunShim(os.Args[1:], os.Stdout))
	}
	buildShim, _ = os.Executable()
	os.Exit(profiled(func() int { return run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr) }))
}

// profiled runs f, writing a CPU profile of it to $GODIST_CPUPROFILE when that is set (the
// master and each worker: a worker appends its pid to the name), for bench/REALWORLD.md.
func profiled(f func() int) int {
	name := os.Getenv("GODIST_CPUPROFILE")
	if name == "" {
		return f()
	}
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		name += "." + strconv.Itoa(os.Getpid())
	}
	out, err := os.Create(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "godist: GODIST_CPUPROFILE:", err)
		return f()
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		fmt.Fprintln(os.Stderr, "godist: GODIST_CPUPROFILE:", err)
		return f()
	}
	defer pprof.StopCPUProfile()
	return f()
}

// run is the whole program with its arguments and streams; it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCommand(stdout, stderr)
	args, err := commandLine(cmd, args)
	if err != nil {
		return exitStatus(err, stderr)
	}
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err = cmd.ExecuteContext(ctx)
	return exitStatus(err, stderr)
}

// statusError carries an exit status out of a command that already said what it had to.
type statusError struct{ status int }

func (e *statusError) Error() string { return fmt.Sprintf("exit status %d", e.status) }

// usageError is bad input on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitStatus is the one place where errors become exit statuses (CONTRACT.md).
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return runner.ExitOK
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.status
	}
	var ue *usageError
	var rue *runner.UsageError
	var rre *runner.RunError
	var pre *postRunError
	switch {
	case errors.As(err, &pre):
		// As gotestsum exits when its post-run command fails, whatever the tests did.
		fmt.Fprintf(stderr, "godist: %s\n", oneLine(err.Error()))
		return runner.ExitNoWorker
	case errors.As(err, &ue), errors.As(err, &rue), isFlagError(err):
		fmt.Fprintf(stderr, "godist: %s\n", oneLine(err.Error()))
		return runner.ExitUsage
	case errors.As(err, &rre):
		fmt.Fprintf(stderr, "%s\n", oneLine(err.Error()))
		return runner.ExitNoWorker
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "godist: interrupted")
		return 130
	default:
		fmt.Fprintf(stderr, "godist: %s\n", oneLine(err.Error()))
		return runner.ExitFailed
	}
}
