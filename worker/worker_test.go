package worker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/proc"
	"github.com/godist/godist/xspec"
)

const workerEnv = "WORKER_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		reg := NewRegistry()
		Register(reg)
		err := Serve(context.Background(), Stdio(), reg)
		if err != nil && !IsEndOfStream(err) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func start(t *testing.T) *gateway.Gateway {
	t.Helper()
	s, _ := xspec.Parse("popen")
	exe, _ := os.Executable()
	g, err := gateway.Start(context.Background(), "gw0", s, gateway.Options{Executable: exe, Env: []string{workerEnv + "=1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func sh(script string) Request {
	return Request{Path: "/bin/sh", Args: []string{"-c", script}}
}

func run(t *testing.T, g *gateway.Gateway, req Request) (*Exit, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	exit, err := Run(ctx, g, req, func(p []byte) { out.Write(p) })
	if err != nil {
		t.Fatal(err)
	}
	return exit, out.String()
}

func TestRunStreamsOutputAndExitStatus(t *testing.T) {
	g := start(t)
	dir := t.TempDir()
	req := sh(`echo out; echo err >&2; pwd; echo "$X"; exit 3`)
	req.Dir = dir
	req.Env = []string{"X=from the master"}
	exit, out := run(t, g, req)
	if exit.Code != 3 || exit.Success() || exit.String() != "exit status 3" {
		t.Errorf("exit %+v, want status 3", exit)
	}
	want := "out\nerr\n" + dir + "\nfrom the master\n"
	if out != want {
		t.Errorf("output %q, want %q (stdout and stderr on one pipe, in order)", out, want)
	}
}

func TestRunLargeOutputArrivesWhole(t *testing.T) {
	g := start(t)
	exit, out := run(t, g, sh(`head -c 5000000 /dev/zero | tr '\0' 'x'`))
	if !exit.Success() || len(out) != 5000000 || strings.Trim(out, "x") != "" {
		t.Fatalf("exit %v, %d bytes", exit, len(out))
	}
}

func TestRunSignalAndStartFailure(t *testing.T) {
	g := start(t)
	exit, _ := run(t, g, sh(`kill -SEGV $$`))
	if exit.Signal != "segmentation fault" || exit.Code != -1 {
		t.Errorf("exit %+v, want killed by SIGSEGV", exit)
	}
	exit, _ = run(t, g, Request{Path: "/nonexistent/binary"})
	if exit.Err == "" || !strings.Contains(exit.String(), "could not start") {
		t.Errorf("exit %+v, want a start failure", exit)
	}
}

// pidsFrom reads the pids a script wrote into a file.
func pidsFrom(t *testing.T, path string) []int {
	t.Helper()
	var pids []int
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		f := strings.Fields(string(b))
		if len(f) >= 2 {
			for _, s := range f {
				p, _ := strconv.Atoi(s)
				pids = append(pids, p)
			}
			return pids
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the script never wrote its pids")
	return nil
}

// Cancelling Run kills the process and everything it started (its process group).
func TestRunCancelKillsProcessGroup(t *testing.T) {
	g := start(t)
	pidfile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, g, sh(`sleep 300 & echo $$ $! > `+pidfile+`; wait`), func([]byte) {})
		done <- err
	}()
	pids := pidsFrom(t, pidfile)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned no error after cancel")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not unblock Run")
	}
	for _, p := range pids {
		deadline := time.Now().Add(5 * time.Second)
		for proc.Alive(p) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if proc.Alive(p) {
			t.Errorf("process %d survived the cancel", p)
		}
	}
}

func TestKillAfter(t *testing.T) {
	g := start(t)
	req := sh(`sleep 300`)
	req.KillAfter = 200 * time.Millisecond
	exit, _ := run(t, g, req)
	if exit.Killed != "timeout" {
		t.Fatalf("exit %+v, want killed for timeout", exit)
	}
}

// A grandchild that keeps the output pipe open does not keep Run waiting once the test
// process exited.
func TestGrandchildHoldingPipe(t *testing.T) {
	g := start(t)
	start := time.Now()
	exit, out := run(t, g, sh(`(sleep 300 &) ; echo bye`))
	if !exit.Success() || out != "bye\n" {
		t.Fatalf("exit %v, output %q", exit, out)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("waited for the grandchild")
	}
}

// When the worker goes away, its test processes go with it.
func TestWorkerGoneKillsTestProcesses(t *testing.T) {
	g := start(t)
	pidfile := filepath.Join(t.TempDir(), "pids")
	go Run(context.Background(), g, sh(`sleep 300 & echo $$ $! > `+pidfile+`; wait`), func([]byte) {})
	pids := pidsFrom(t, pidfile)
	g.Close()
	for _, p := range pids {
		deadline := time.Now().Add(5 * time.Second)
		for proc.Alive(p) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if proc.Alive(p) {
			t.Errorf("test process %d outlived its worker", p)
		}
	}
}

// Cancel after the test process has exited, while a process that left its group still
// holds the output pipe: the worker returns at once. (It once waited for the exit it had
// already taken, for ever: the master then killed it 5 s later, and on an ssh or serve
// host nothing would.)
func TestCancelAfterExitUnblock(t *testing.T) {
	g := start(t)
	dir := t.TempDir()
	shPid, holderPid := filepath.Join(dir, "sh"), filepath.Join(dir, "holder")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// setsid: a new session, out of reach of the group kill; it keeps stdout open and
		// says its own pid (setsid may fork).
		_, err := Run(ctx, g, sh(`setsid sh -c 'echo $$ > `+holderPid+`; exec sleep 300' & while [ ! -s `+holderPid+` ]; do :; done; echo $$ $(cat `+holderPid+`) > `+shPid), func([]byte) {})
		done <- err
	}()
	pids := pidsFrom(t, shPid)
	shell, holder := pids[0], pids[1]
	t.Cleanup(func() { child.KillPid(holder) })
	// The shell has exited (the worker took its exit) while the escaped sleep runs on.
	deadline := time.Now().Add(20 * time.Second)
	for proc.Alive(shell) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling for the condition, not timing it
	}
	if proc.Alive(shell) || !proc.Alive(holder) {
		t.Fatalf("shell alive %v, holder alive %v: want the shell gone and the holder there", proc.Alive(shell), proc.Alive(holder))
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned no error after cancel")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not unblock Run")
	}
	// The worker's side must be done too: ended, the session lets the worker exit by
	// itself (Terminate kills it, and says so, only if it has not within the bound).
	if err := g.Terminate(30 * time.Second); err != nil {
		t.Fatalf("the worker did not exit by itself after the cancel: %v", err)
	}
}
