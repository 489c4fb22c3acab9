package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/sshdtest"
)

// tmuxTerm is a tmux server of the test's own (its own socket), with one window running a
// command in a real terminal.
type tmuxTerm struct {
	t      *testing.T
	socket string
}

var tmuxN atomic.Int32

func requireTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("GODIST_REQUIRE_SSHD") != "" {
			t.Fatal("tmux is not installed (GODIST_REQUIRE_SSHD is set: .ci/run installs it)")
		}
		t.Skip("tmux is not installed")
	}
}

// startTmux runs shell command cmd in a new tmux window of width x height; the server
// and everything in it end with the test. The terminal is UTF-8 (-u) whatever the locale.
func startTmux(t *testing.T, width, height int, env []string, cmd string) *tmuxTerm {
	t.Helper()
	tm := &tmuxTerm{t: t, socket: fmt.Sprintf("godist-test-%d-%d", os.Getpid(), tmuxN.Add(1))}
	args := []string{"-u", "-L", tm.socket, "-f", "/dev/null", "new-session", "-d", "-s", "w",
		"-x", strconv.Itoa(width), "-y", strconv.Itoa(height)}
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	args = append(args, cmd)
	if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-L", tm.socket, "kill-server").Run() })
	return tm
}

// screen is the window's text, its scrollback included.
func (tm *tmuxTerm) screen() string {
	out, err := exec.Command("tmux", "-L", tm.socket, "capture-pane", "-p", "-J", "-S", "-5000", "-t", "w").Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func (tm *tmuxTerm) keys(keys ...string) {
	tm.t.Helper()
	if out, err := exec.Command("tmux", append([]string{"-L", tm.socket, "send-keys", "-t", "w"}, keys...)...).CombinedOutput(); err != nil {
		tm.t.Fatalf("tmux send-keys %v: %v\n%s", keys, err, out)
	}
}

// waitScreen waits until cond holds for the screen, or fails the test after d.
func (tm *tmuxTerm) waitScreen(d time.Duration, what string, cond func(string) bool) string {
	tm.t.Helper()
	var s string
	if !waitFor(d, func() bool { s = tm.screen(); return cond(s) }) {
		tm.t.Fatalf("no %s on the screen within %v:\n%s", what, d, s)
	}
	return s
}

const watchWaiting = "godist --watch: waiting for changes"

// waitRuns waits for the n-th run of the watch to end.
func (tm *tmuxTerm) waitRuns(n int) string {
	tm.t.Helper()
	return tm.waitScreen(90*time.Second, fmt.Sprintf("end of run %d", n), func(s string) bool {
		return strings.Count(s, watchWaiting) >= n
	})
}

// godist --watch in a real terminal, driven by file edits and keys: a change runs what it
// affects (the rest is cached), f runs the failed tests, r everything, q quits; the
// worker stays up from one run to the next and is gone after q.
func TestWatchInATerminal(t *testing.T) {
	t.Parallel()
	requireTmux(t)
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module watch.example\n\ngo 1.21\n")
	writeTestFile(t, root, "a/a_test.go", `package a

import ("os"; "testing")

func TestWorker(t *testing.T) { t.Logf("worker pid %d", os.Getppid()) }
func TestFailsWhenMarked(t *testing.T) {
	if _, err := os.Stat("testdata/fail"); err == nil { t.Fatal("marked to fail") }
}
`)
	writeTestFile(t, root, "a/testdata/keep", "")
	writeTestFile(t, root, "b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) {}\n")
	jf := filepath.Join(root, "run.json") // in the tree: written by godist, so no change to run on
	cache := filepath.Join(t.TempDir(), "results")
	d := filepath.Join(t.TempDir(), "d.json")
	cmd := fmt.Sprintf("cd %s && %s -n 1 -v --watch --cache-dir %s --durations %s --jsonfile %s ./...; echo EXITED $?; sleep 600",
		root, godistBin, cache, d, jf)
	tm := startTmux(t, 120, 40, []string{"NO_COLOR=1", "GODIST_CACHE_DIR="}, cmd)

	ran := func() []string { // what the last run ran, "pkg Test" (not what it replayed)
		t.Helper()
		data := mustRead(t, jf)
		cached := cachedIn(t, data)
		var out []string
		for _, r := range ranTests(t, data) {
			if pkg, _, _ := strings.Cut(r, " "); !cached[pkg] {
				out = append(out, r)
			}
		}
		return out
	}
	tm.waitRuns(1)
	if got := ran(); len(got) != 3 {
		t.Fatalf("first run ran %v, want TestWorker, TestFailsWhenMarked and TestB", got)
	}
	pid1 := workerPids(tm.screen())

	// A change in b: only b runs again; a is cached.
	writeTestFile(t, root, "b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) { t.Log(\"edited\") }\n")
	tm.waitRuns(2)
	if got := ran(); strings.Join(got, ",") != "watch.example/b TestB" {
		t.Errorf("after editing b: ran %v, want only b's test", got)
	}
	// A file a's test looks at: a runs again, and fails.
	writeTestFile(t, root, "a/testdata/fail", "")
	s := tm.waitRuns(3)
	if got := ran(); len(got) != 2 || !strings.Contains(s, "marked to fail") {
		t.Errorf("after marking a to fail: ran %v, want a's two tests, failing\n%s", got, s)
	}
	// f: the failed test only.
	tm.keys("f")
	tm.waitRuns(4)
	if got := ran(); strings.Join(got, ",") != "watch.example/a TestFailsWhenMarked" {
		t.Errorf("after f: ran %v, want only the failed test", got)
	}
	// r: everything, nothing from the cache.
	tm.keys("r")
	s = tm.waitRuns(5)
	if got := ran(); len(got) != 3 {
		t.Errorf("after r: ran %v, want all three tests", got)
	}
	pids := workerPids(s)
	if len(pid1) != 1 || len(pids) < 2 || pids[len(pids)-1] != pid1[0] {
		t.Errorf("the worker did not stay up between runs: worker pids %v", pids)
	}
	// q: godist exits 0 and its worker is gone.
	tm.keys("q")
	tm.waitScreen(30*time.Second, "EXITED 0", func(s string) bool { return strings.Contains(s, "EXITED 0") })
	if len(pid1) == 1 && !waitFor(10*time.Second, func() bool { return syscall.Kill(pid1[0], 0) != nil }) {
		t.Errorf("worker %d is still running after q", pid1[0])
	}
}

var workerPidRE = regexp.MustCompile(`worker pid (\d+)`)

// workerPids lists the worker pids the screen shows, in order.
func workerPids(screen string) []int {
	var out []int
	for _, m := range workerPidRE.FindAllStringSubmatch(screen, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// Ctrl-C ends the watch at once, with its worker.
func TestWatchInterrupted(t *testing.T) {
	t.Parallel()
	requireTmux(t)
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module watch2.example\n\ngo 1.21\n")
	writeTestFile(t, root, "a/a_test.go", "package a\n\nimport (\"os\"; \"testing\")\n\nfunc TestWorker(t *testing.T) { t.Logf(\"worker pid %d\", os.Getppid()) }\n")
	cmd := fmt.Sprintf("cd %s && %s -n 1 -v --watch --cache-dir %s --durations %s ./...; echo EXITED $?; sleep 600",
		root, godistBin, filepath.Join(t.TempDir(), "results"), filepath.Join(t.TempDir(), "d.json"))
	tm := startTmux(t, 100, 30, []string{"NO_COLOR=1"}, cmd)
	s := tm.waitRuns(1)
	pids := workerPids(s)
	tm.keys("C-c")
	tm.waitScreen(30*time.Second, "EXITED", func(s string) bool { return strings.Contains(s, "EXITED ") })
	if len(pids) != 1 {
		t.Fatalf("worker pids on the screen: %v", pids)
	}
	if !waitFor(10*time.Second, func() bool { return syscall.Kill(pids[0], 0) != nil }) {
		t.Errorf("worker %d is still running after Ctrl-C", pids[0])
	}
}

// --watch with a remote gateway: its worker stays up between runs, a change of a file the
// tests read is shipped and runs them again there, and q leaves no session behind. (Keys
// come on a pipe here: off a terminal they are read as they come.)
func TestSSHWatch(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module watch3.example\n\ngo 1.21\n")
	writeTestFile(t, root, "a/a_test.go", `package a

import ("os"; "testing")

func TestReads(t *testing.T) {
	b, err := os.ReadFile("testdata/in.txt")
	if err != nil { t.Fatal(err) }
	t.Logf("worker pid %d read %s", os.Getppid(), b)
}
`)
	writeTestFile(t, root, "a/testdata/in.txt", "one")
	cmd := exec.Command(godistBin, "--tx", "ssh="+s.Alias, "-v", "--watch", "--cache-dir", filepath.Join(t.TempDir(), "results"),
		"--durations", filepath.Join(t.TempDir(), "d.json"), "./...")
	cmd.Dir = root
	cmd.Env = sshEnv(t, s)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	keys, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	runs := func(n int) {
		t.Helper()
		if !waitFor(90*time.Second, func() bool { return strings.Count(out.String(), watchWaiting) >= n }) {
			t.Fatalf("run %d did not end:\n%s", n, out.String())
		}
	}
	runs(1)
	writeTestFile(t, root, "a/testdata/in.txt", "two")
	runs(2)
	got := out.String()
	pids := workerPids(got)
	if len(pids) != 2 || pids[0] != pids[1] || !strings.Contains(got, "read two") {
		t.Errorf("want two runs on one remote worker, the second reading the shipped change; worker pids %v\n%s", pids, got)
	}
	// Only the changed file went to the host the second time.
	synced := regexp.MustCompile(`synced \((\d+) files sent`).FindAllStringSubmatch(got, -1)
	if len(synced) != 2 || synced[1][1] != "1" {
		t.Errorf("want the tree shipped once whole and then only the one changed file; syncs: %v\n%s", synced, got)
	}
	keys.Write([]byte("q"))
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("godist --watch exited with %v after q\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("godist --watch did not exit 30s after q\n%s", out.String())
	}
	if !waitFor(10*time.Second, func() bool { return len(s.Children()) == 0 }) {
		t.Errorf("sshd still has session processes %v after q", s.Children())
	}
}
