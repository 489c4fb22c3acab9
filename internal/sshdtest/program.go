package sshdtest

import (
	"fmt"
	"io"
	"os"
	"testing"
)

// WaitStdinOrSignal returns when the program's standard input ends (its parent went, or
// closed it) or a signal comes on sig: how a helper program of the tests knows to stop.
func WaitStdinOrSignal(sig <-chan os.Signal) {
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-sig:
	case <-eof:
	}
}

// StartProgram starts a server as Start does, for a program rather than a test (benchmark
// and chaos harnesses): logs go to stderr, and a failure is returned instead of failing
// a test. The caller must call stop, which stops sshd and every process it started and
// removes every file it made; stop is idempotent.
func StartProgram(opts Options) (s *Server, stop func(), err error) {
	t := &programTB{}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if f, ok := r.(programFatal); ok {
					err = f.err
					return
				}
				panic(r)
			}
		}()
		s = Start(t, opts)
	}()
	if err != nil {
		t.cleanup()
		return nil, nil, err
	}
	return s, t.cleanup, nil
}

// programTB is the part of testing.TB that Start uses, for a program. The embedded nil TB
// is never called: every method Start calls is defined here.
type programTB struct {
	testing.TB
	cleanups []func()
}

// programFatal carries a Fatalf or Skipf of Start out to StartProgram.
type programFatal struct{ err error }

func (t *programTB) Helper()                         {}
func (t *programTB) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }
func (t *programTB) Failed() bool                    { return false }
func (t *programTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (t *programTB) Fatalf(format string, args ...any) {
	panic(programFatal{fmt.Errorf(format, args...)})
}
func (t *programTB) Skipf(format string, args ...any) { t.Fatalf(format, args...) }

func (t *programTB) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}
