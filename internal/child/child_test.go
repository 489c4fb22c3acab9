//go:build linux

package child

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/proc"
)

// A test binary started with this variable set is the parent of TestParentDeath.
const parentEnv = "GODIST_CHILD_TEST_PARENT"

func TestMain(m *testing.M) {
	if os.Getenv(parentEnv) == "1" {
		beParent()
		return
	}
	os.Exit(m.Run())
}

// beParent starts a sleep, prints its pid and waits; the test kills it.
func beParent() {
	p, err := Start(exec.Command("sleep", "30"))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(p.Pid())
	p.Wait(nil)
	os.Exit(0)
}

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cleanup kills, at the end of the test, whatever of pids (its own descendants) lives on.
func cleanup(t *testing.T, pids ...*int) {
	t.Cleanup(func() {
		for _, pid := range pids {
			if *pid > 0 && proc.Alive(*pid) {
				KillPid(*pid)
			}
		}
	})
}

// waited is a Wait going on in the background.
type waited struct {
	done chan struct{}
	err  error // Wait's, once done is closed
}

// startWaited starts cmd and waits for it in the background, calling atExit with the
// process if it is not nil; the test's end kills the group if Wait has not reaped it.
func startWaited(t *testing.T, cmd *exec.Cmd, atExit func(*Process)) (*Process, *waited) {
	t.Helper()
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	w := &waited{done: make(chan struct{})}
	go func() {
		var f func()
		if atExit != nil {
			f = func() { atExit(p) }
		}
		w.err = p.Wait(f)
		close(w.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		<-w.done
	})
	return p, w
}

// waitFor is the background Wait's error, failing the test if it takes over 10s.
func waitFor(t *testing.T, w *waited) error {
	t.Helper()
	select {
	case <-w.done:
		return w.err
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10s")
		return nil
	}
}

// stdoutPipe makes cmd's stdout a pipe of the test's own: unlike cmd.StdoutPipe, Wait
// does not close it. Close the write end once cmd has started.
func stdoutPipe(t *testing.T, cmd *exec.Cmd) *pipe {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	cmd.Stdout = w
	return &pipe{r: bufio.NewReader(r), w: w}
}

type pipe struct {
	r *bufio.Reader
	w *os.File
}

// readPid reads a pid printed on a line of its own.
func (p *pipe) readPid(t *testing.T) int {
	t.Helper()
	p.w.Close()
	line, err := p.r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a pid: %v (read %q)", err, line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("want a pid, got %q", line)
	}
	return pid
}

func TestKillGroup(t *testing.T) {
	p, waited := startWaited(t, exec.Command("/bin/sh", "-c", "sleep 30 & wait"), nil)
	sh, sleep := p.Pid(), 0
	cleanup(t, &sleep)
	if pgid, err := syscall.Getpgid(sh); err != nil || pgid != sh {
		t.Fatalf("the shell's process group is %d (%v), want its own %d", pgid, err, sh)
	}
	eventually(t, "the shell has not started its sleep", func() bool {
		kids := proc.Descendants(sh)
		if len(kids) == 1 {
			sleep = kids[0]
		}
		return sleep != 0
	})
	if pgid, _ := syscall.Getpgid(sleep); pgid != sh {
		t.Fatalf("the sleep is in group %d, want the shell's %d", pgid, sh)
	}
	if !p.Kill() {
		t.Fatal("Kill sent no signal to a running group")
	}
	err := waitFor(t, waited)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Wait = %v, want killed by SIGKILL", err)
	}
	eventually(t, "the sleep outlived its group's kill", func() bool { return !proc.Alive(sleep) })
	if proc.Alive(sh) || !Gone(sh) {
		t.Errorf("the reaped shell %d: alive %v, gone %v", sh, proc.Alive(sh), Gone(sh))
	}
	if p.Kill() {
		t.Error("Kill after Wait sent a signal to a group that may be someone else's")
	}
	if p.Suspend() {
		t.Error("Suspend after Wait sent a signal")
	}
}

// atExit runs while the leader is a zombie: Kill then still reaches what it left behind.
func TestWaitAtExitKillsLeftovers(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & echo $!")
	out := stdoutPipe(t, cmd)
	var zombie, gone, sent bool
	_, waited := startWaited(t, cmd, func(p *Process) {
		zombie, gone = !proc.Alive(p.Pid()), Gone(p.Pid())
		sent = p.Kill()
	})
	sleep := out.readPid(t)
	cleanup(t, &sleep)
	if err := waitFor(t, waited); err != nil {
		t.Fatalf("Wait = %v, want the shell's exit status 0", err)
	}
	if !zombie || gone {
		t.Errorf("at exit the leader was alive %v, gone %v; want a zombie, not yet reaped", !zombie, gone)
	}
	if !sent {
		t.Fatal("Kill from atExit sent no signal")
	}
	eventually(t, "the shell's background sleep outlived the kill at exit", func() bool { return !proc.Alive(sleep) })
}

// Without atExit a leader's background process is left alone, and a leader that ends by
// itself reports its exit status.
func TestWaitLeavesOthersAlone(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & echo $!; exit 3")
	out := stdoutPipe(t, cmd)
	p, waited := startWaited(t, cmd, nil)
	sleep := out.readPid(t)
	cleanup(t, &sleep)
	err := waitFor(t, waited)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Wait = %v, want exit status 3", err)
	}
	if !proc.Alive(sleep) {
		t.Error("the background sleep died with its leader")
	}
	if p.Kill() {
		t.Error("Kill after Wait sent a signal")
	}
}

func TestSuspendAndKillPid(t *testing.T) {
	p, waited := startWaited(t, exec.Command("sleep", "30"), nil)
	if !p.Suspend() {
		t.Fatal("Suspend sent no signal")
	}
	eventually(t, "the sleep is not stopped", func() bool { return proc.Stopped(p.Pid()) })
	if err := KillPid(p.Pid()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waited)
	if !Gone(p.Pid()) {
		t.Error("a killed and reaped process is not gone")
	}
}

func TestGone(t *testing.T) {
	if Gone(os.Getpid()) || Gone(os.Getppid()) {
		t.Error("this process or its parent is gone")
	}
	if !Gone(1 << 30) { // above any pid_max
		t.Error("a pid above pid_max is not gone")
	}
}

func TestStartRefusesSysProcAttr(t *testing.T) {
	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if _, err := Start(cmd); err == nil {
		t.Fatal("Start took a command with SysProcAttr set")
	}
	if cmd.Process != nil {
		t.Fatal("Start started it anyway")
	}
}

func TestStartError(t *testing.T) {
	_, err := Start(exec.Command("/nonexistent/godist-child-test"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Start = %v, want the exec error", err)
	}
}

// The kernel kills a child when its parent dies, even of SIGKILL.
func TestParentDeath(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), parentEnv+"=1")
	out := stdoutPipe(t, cmd)
	parent, waited := startWaited(t, cmd, nil)
	sleep := out.readPid(t)
	cleanup(t, &sleep)
	if proc.Parent(sleep) != parent.Pid() {
		t.Fatalf("the sleep's parent is %d, want %d", proc.Parent(sleep), parent.Pid())
	}
	// The sleep leads a group of its own: killing the parent's group does not reach it.
	if !parent.Kill() {
		t.Fatal("Kill sent no signal")
	}
	waitFor(t, waited)
	eventually(t, "the sleep outlived its SIGKILLed parent", func() bool { return !proc.Alive(sleep) })
}
