package gateway

import (
	"context"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/proc"
	"github.com/godist/godist/internal/sshdtest"
	"github.com/godist/godist/xspec"
)

// startExecKeepalive starts an exec=sh gateway (bootstrapped with this test binary as the
// worker) whose liveness bound is bound.
func startExecKeepalive(t *testing.T, bound time.Duration) *Gateway {
	t.Helper()
	s, err := xspec.Parse("exec=sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Start(ctx, "gw0", s, Options{Binaries: testBinaries(t), Env: []string{workerEnv + "=1"}, Keepalive: bound})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// An idle exec= link is not lost: the liveness check's requests keep bytes coming.
func TestExecIdleLinkStaysUp(t *testing.T) {
	g := startExecKeepalive(t, time.Second)
	select {
	case <-g.Done():
		t.Fatalf("an idle, healthy exec= gateway was lost: %v", g.Err())
	case <-time.After(2500 * time.Millisecond):
	}
	var got string
	if err := callFn(t, g, "echo", "still there", &got); err != nil || got != "still there" {
		t.Fatalf("echo after 2.5s idle: %q, %v", got, err)
	}
}

// A frozen exec= link (its processes stopped: the command that carries it, or what it
// reaches) is found within the bound, and the gateway is lost saying why.
func TestExecFrozenLinkLostWithinBound(t *testing.T) {
	const bound = 1500 * time.Millisecond
	g := startExecKeepalive(t, bound)
	// This test is not parallel (t.Setenv): every process below this one is its link's.
	frozen := proc.Descendants(os.Getpid())
	if len(frozen) == 0 {
		t.Fatal("no process below the test: where is the exec= command?")
	}
	for _, pid := range frozen {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, pid := range frozen {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	stopped := time.Now()
	select {
	case <-g.Done():
	case <-time.After(bound + 3*time.Second):
		t.Fatalf("a frozen exec= link was not lost within %v", bound+3*time.Second)
	}
	if took := time.Since(stopped); took > bound+time.Second {
		t.Errorf("lost after %v, bound %v", took, bound)
	}
	if err := g.Err(); err == nil || !strings.Contains(err.Error(), "nothing came from the worker for") {
		t.Errorf("Err = %v, want it to say nothing came from the worker", err)
	}
	g.Close()
	// The link's process group is killed; its members other than the command may take
	// a moment to be reaped.
	for _, pid := range frozen {
		deadline := time.Now().Add(5 * time.Second)
		for proc.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if proc.Alive(pid) {
			t.Errorf("process %d of the frozen link outlived its gateway by 5s", pid)
		}
	}
}

// A popen worker that is stopped (SIGSTOP) rather than dead: its process and pipes stay,
// and only the liveness check finds it, within the bound; Close then leaves nothing.
func TestStoppedWorkerLostWithinBound(t *testing.T) {
	const bound = 1500 * time.Millisecond
	s, err := xspec.Parse("popen")
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := proc.Descendants(os.Getpid())
	g, err := Start(ctx, "gw0", s, Options{Executable: exe, Env: []string{workerEnv + "=1"}, Keepalive: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var worker []int
	for _, pid := range proc.Descendants(os.Getpid()) {
		if !slices.Contains(before, pid) {
			worker = append(worker, pid)
		}
	}
	if len(worker) != 1 {
		t.Fatalf("want one new process (the worker), got %v", worker)
	}
	syscall.Kill(worker[0], syscall.SIGSTOP)
	defer syscall.Kill(worker[0], syscall.SIGCONT)
	stopped := time.Now()
	select {
	case <-g.Done():
	case <-time.After(bound + 3*time.Second):
		t.Fatalf("a stopped worker was not lost within %v", bound+3*time.Second)
	}
	if took := time.Since(stopped); took > bound+time.Second {
		t.Errorf("lost after %v, bound %v", took, bound)
	}
	if err := g.Err(); err == nil || !strings.Contains(err.Error(), "nothing came from the worker for") {
		t.Errorf("Err = %v, want it to say nothing came from the worker", err)
	}
	g.Close()
	if proc.Alive(worker[0]) {
		t.Errorf("the stopped worker %d outlived its gateway", worker[0])
	}
}

// A worker stopped behind sshd, on a connection another gateway shares: sshd answers the
// keepalives and never closes the session (its command still runs), so only the liveness
// check finds it, within the bound; its gateway is lost and closes, and the other one
// goes on working over the same connection.
func TestStoppedSSHWorkerLostWithinBound(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	sshUse(t, s.Home)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	const bound = 1500 * time.Millisecond
	group := NewGroup(Options{Binaries: testBinaries(t), Env: []string{workerEnv + "=1"}, Keepalive: bound})
	defer group.Terminate(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spec := sshSpec(t, s.Alias)
	a, err := group.Start(ctx, "gw0", spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := group.Start(ctx, "gw1", spec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.Children(), a.Info.PID) {
		t.Fatalf("worker pid %d is not below sshd (%v)", a.Info.PID, s.Children())
	}
	syscall.Kill(a.Info.PID, syscall.SIGSTOP)
	defer syscall.Kill(a.Info.PID, syscall.SIGCONT)
	stopped := time.Now()
	select {
	case <-a.Done():
	case <-time.After(bound + 5*time.Second):
		t.Fatalf("a stopped worker behind sshd was not lost within %v", bound+5*time.Second)
	}
	if took := time.Since(stopped); took > bound+time.Second {
		t.Errorf("lost after %v, bound %v", took, bound)
	}
	if err := a.Err(); err == nil || !strings.Contains(err.Error(), "nothing came from the worker for") {
		t.Errorf("Err = %v, want it to say nothing came from the worker", err)
	}
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close of the lost gateway hung")
	}
	var got string
	if err := callFn(t, b, "echo", "still there", &got); err != nil || got != "still there" {
		t.Fatalf("the other gateway on the connection: %q, %v", got, err)
	}
}
