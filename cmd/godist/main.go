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
	"syscall"

	"github.com/godist/godist/runner"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
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
	switch {
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
