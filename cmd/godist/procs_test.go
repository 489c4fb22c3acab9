package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/proc"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// workers and test processes that belong to this test's godist binary.
func leftovers() (workers, tests []int) {
	return proc.Matching(godistBin, " worker"), hangTestProcs()
}

// hangTestProcs are the test processes of the hang fixture that a godist worker started
// (wherever their binary lives, with or without a -test.run): they run in the fixture's
// directory (or a remote copy of it) with -test.v=test2json and have a GODIST_TESTRUNUID;
// other test packages' runs of the same fixture do not.
// hangDir is this checkout's hang fixture directory (remote copies mirror it at its
// absolute path, so it ends theirs too): another checkout's runs do not match.
var hangDir = func() string {
	d, _ := filepath.Abs("../../fixtures/hang")
	return d
}()

func hangTestProcs() []int {
	var out []int
	for _, pid := range proc.Matching("-test.v=test2json", "-test.paniconexit0") {
		if proc.HasEnv(pid, "GODIST_TESTRUNUID") && strings.HasSuffix(proc.Cwd(pid), hangDir) {
			out = append(out, pid)
		}
	}
	return out
}

func startHang(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(godistBin, append([]string{"--durations", filepath.Join(t.TempDir(), "d.json"), "-timeout", "1m"}, args...)...)
	cmd.Dir = fixturesDir(t)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if !waitFor(60*time.Second, func() bool { _, tests := leftovers(); return len(tests) > 0 }) {
		t.Fatalf("the hang test process never started; godist said:\n%s", out.String())
	}
	return cmd
}

func assertNoLeftovers(t *testing.T) {
	t.Helper()
	if !waitFor(10*time.Second, func() bool { w, tp := leftovers(); return len(w) == 0 && len(tp) == 0 }) {
		w, tp := leftovers()
		t.Fatalf("left behind: workers %v, test processes %v", w, tp)
	}
}

func TestNoProcessLeftAfterNormalExit(t *testing.T) {
	assertNoLeftovers(t)
	_, _, code := runCmd(t, fixturesDir(t), godistBin, "--durations", filepath.Join(t.TempDir(), "d.json"), "-n", "2", "-timeout", "2s", "./hang", "./pass")
	if code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	assertNoLeftovers(t)
}

func TestNoProcessLeftAfterInterrupt(t *testing.T) {
	assertNoLeftovers(t)
	cmd := startHang(t, "-n", "2", "./hang")
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("godist did not exit within 15s of SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("interrupted run exited 0")
	}
	assertNoLeftovers(t)
}

func TestNoProcessLeftAfterMasterKilled(t *testing.T) {
	assertNoLeftovers(t)
	cmd := startHang(t, "-n", "2", "./hang")
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	assertNoLeftovers(t)
}

// A worker that dies takes its test processes with it, and the master runs the tests it
// held on another worker.
func TestWorkerCrashLosesNoResult(t *testing.T) {
	assertNoLeftovers(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	cmd := startHang(t, "-n", "2", "--jsonfile", jf, "-timeout", "3s", "./hang")
	// Kill the worker that runs the hang test: the parent of its test process.
	_, tests := leftovers()
	ppid := proc.Parent(tests[0])
	cmd.Process.Signal(syscall.Signal(0))
	if err := child.KillPid(ppid); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	data, err := os.ReadFile(jf)
	if err != nil {
		t.Fatal(err)
	}
	got := parseStream(t, data, false)
	const fx = "github.com/godist/godist/fixtures/hang"
	for _, name := range []string{"TestBefore", "TestHang", "TestAfter"} {
		if len(got.tests[fx+" "+name]) != 1 {
			t.Errorf("%s: %v, want exactly one result after its worker died", name, got.tests[fx+" "+name])
		}
	}
	if len(got.pkgs[fx]) != 1 {
		t.Errorf("package: %v, want exactly one result", got.pkgs[fx])
	}
	assertNoLeftovers(t)
}
