// Package child starts and kills godist's child processes: the one place that knows how a
// process is put in a process group of its own, tied to its parent's life, killed with
// everything it started, and told apart from a process that is gone.
//
// Every child godist may have to kill — local workers, popen and via commands, the test
// processes a worker runs, the workers `godist serve` starts, the sshd of the tests — is
// started with Start and killed with Process.Kill.
//
// On Linux the kernel kills a child (SIGKILL) when its parent dies, even of SIGKILL
// (Pdeathsig). Other unix systems have no such thing; there a child learns of its parent's
// death from its stream instead: a worker's stdin ends when the master (or `godist serve`)
// dies, the worker then ends its session and kills the process groups of its test
// processes on the way out. A child that reads no stream (the tests' sshd) outlives a
// killed parent there.
//
// On systems without process groups and signals (windows), Start refuses with
// ErrUnsupported: godist could not kill a test's process tree. A windows master can still
// use workers on unix hosts (ssh=).
package child

import (
	"errors"
	"os/exec"
	"runtime"
	"sync"
)

// ErrUnsupported is Start's error on a system without process groups (windows).
var ErrUnsupported = errors.New("child: no process groups on " + runtime.GOOS + ": godist cannot kill a test's process tree here; run workers on a unix host (ssh=)")

// Supported is nil where Start works, ErrUnsupported where it refuses: a check for the
// point of use, before work that Start would only waste (building a worker to start).
func Supported() error { return supported }

// Process is a started command that leads a process group of its own. Its methods are
// safe for concurrent use.
type Process struct {
	cmd *exec.Cmd
	pid int

	mu     sync.Mutex
	reaped bool // the leader is reaped, or about to be: its pid may be someone else's
}

// Start starts cmd (as cmd.Start does) as the leader of a new process group, so that a
// terminal's Ctrl-C does not reach it and Kill reaches everything it starts that stays in
// its group. On Linux the kernel SIGKILLs it when this process dies; strictly, when the
// thread that started it ends, which in Go happens only to a thread a goroutine locked and
// left locked at its end: do not call Start from such a goroutine.
//
// cmd.SysProcAttr must be nil: Start sets it. cmd.Cancel is left alone (it kills the leader
// only); kill the group with Kill.
//
// The caller must call Wait exactly once, or the leader stays a zombie.
func Start(cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr != nil {
		return nil, errors.New("child: cmd.SysProcAttr is already set")
	}
	if supported != nil {
		return nil, supported
	}
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &Process{cmd: cmd, pid: cmd.Process.Pid}, nil
}

// Pid is the leader's process id, which is also its group's id.
func (p *Process) Pid() int { return p.pid }

// Wait waits for the leader to exit and reaps it, and returns what cmd.Wait returns (which
// also waits for cmd's Stdin, Stdout and Stderr copying, if any). Call it exactly once.
//
// atExit, if not nil, is called once the leader has exited and before it is reaped, from
// Wait's goroutine: the last moment at which Kill still reaches what the leader left
// running in its group (a background process holding its output pipe open). Where the
// system cannot wait without reaping (neither Linux nor a BSD: aix, solaris, illumos),
// atExit is called just after the leader is reaped, before Kill turns into a no-op; a
// process group without members is then killed by number, as it used to be.
func (p *Process) Wait(atExit func()) error {
	if waitExited(p.pid) {
		// The leader is a zombie: its pid, and so its group's id, is not reused until
		// cmd.Wait below reaps it.
		if atExit != nil {
			atExit()
		}
		p.setReaped()
		return p.cmd.Wait()
	}
	err := p.cmd.Wait()
	if atExit != nil {
		atExit()
	}
	p.setReaped()
	return err
}

func (p *Process) setReaped() {
	p.mu.Lock()
	p.reaped = true
	p.mu.Unlock()
}

// Kill sends SIGKILL to the leader's whole process group, unless Wait has reaped (or is
// reaping) the leader: after that its pid, and so the group's id, may belong to someone
// else, and Kill does nothing. It reports whether it sent the signal. Processes that left
// the group (setsid, setpgid) are not reached.
func (p *Process) Kill() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return false
	}
	return killGroup(p.pid) == nil
}

// Suspend stops the leader alone (SIGSTOP) unless Wait has reaped it, so that it starts
// nothing more while its descendants are killed. It reports whether it sent the signal.
func (p *Process) Suspend() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return false
	}
	return stop(p.pid) == nil
}

// KillPid sends SIGKILL to process pid alone. The caller must know that pid is still the
// process it means, one of its own descendants that its parent has not reaped (for
// example one just listed below a Process that is Suspended); any other pid may have been
// reused by a stranger.
func KillPid(pid int) error { return killPid(pid) }

// Gone reports whether no process has id pid: one that exited and was reaped, or never
// was. A zombie is not gone; neither is a process this one may not signal. When it cannot
// tell, Gone says false.
func Gone(pid int) bool { return gone(pid) }
