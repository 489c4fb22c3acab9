package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/godist/godist/internal/sshdtest"
	"github.com/godist/godist/scheduler"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// liveModule writes a module whose run on n gateways holds still in a known state until
// the test lets it go: package work has n-1 tests, each passing a subtest, skipping one
// and then waiting in a third until the file release exists; package fails has a test
// that fails at once with ten lines of output, on the gateway left (it may start after
// the others). The durations file gives each waiting test 5s, so that each runs in a
// process of its own, on its own gateway.
func liveModule(t *testing.T, n int) (root, durations, release string) {
	t.Helper()
	root = t.TempDir()
	release = filepath.Join(t.TempDir(), "release")
	writeTestFile(t, root, "go.mod", "module live.example\n\ngo 1.21\n")
	var b strings.Builder
	fmt.Fprintf(&b, `package work

import (
	"os"
	"testing"
	"time"
)

func block(t *testing.T) {
	t.Run("setup", func(t *testing.T) {})
	t.Run("optional", func(t *testing.T) { t.Skip("not here") })
	t.Run("wait", func(t *testing.T) {
		for {
			if _, err := os.Stat(%q); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
`, release)
	d := scheduler.NewDurations()
	for i := range n - 1 {
		fmt.Fprintf(&b, "\nfunc TestBlock%d(t *testing.T) { block(t) }\n", i)
		d.Record("live.example/work", fmt.Sprintf("TestBlock%d", i), 5*time.Second)
	}
	writeTestFile(t, root, "work/work_test.go", b.String())
	writeTestFile(t, root, "fails/fails_test.go", `package fails

import "testing"

func TestFailsFast(t *testing.T) {
	for i := 1; i <= 9; i++ {
		t.Logf("line %d of what went wrong", i)
	}
	t.Fatal("boom")
}
`)
	d.Record("live.example/fails", "TestFailsFast", 100*time.Millisecond)
	durations = filepath.Join(t.TempDir(), "durations.json")
	if err := d.Save(durations); err != nil {
		t.Fatal(err)
	}
	return root, durations, release
}

// pane is the window's text, its scrollback included; with join, lines the terminal
// wrapped are joined again (-J), so a line that did not fit shows whole.
func (tm *tmuxTerm) pane(join bool) string {
	args := []string{"-L", tm.socket, "capture-pane", "-p", "-S", "-5000", "-t", "w"}
	if join {
		args = append(args, "-J")
	}
	out, err := exec.Command("tmux", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(out), "\n")
}

func (tm *tmuxTerm) resize(width, height int) {
	tm.t.Helper()
	if out, err := exec.Command("tmux", "-L", tm.socket, "resize-window", "-t", "w", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height)).CombinedOutput(); err != nil {
		tm.t.Fatalf("tmux resize-window: %v\n%s", err, out)
	}
}

// waitPane waits until cond holds for the pane (not joined), or fails the test after d.
func (tm *tmuxTerm) waitPane(d time.Duration, what string, cond func(string) bool) string {
	tm.t.Helper()
	var s string
	if !waitFor(d, func() bool { s = tm.pane(false); return cond(s) }) {
		tm.t.Fatalf("no %s on the screen within %v:\n%s", what, d, s)
	}
	return s
}

// The lines of the live view: its progress line (the bar, the share done) and the rows of
// gateways (an id and a state) or hosts (counts of states).
var (
	progressLine = regexp.MustCompile(`^(godist )?[█░]+ \d+%`)
	gatewayRow   = regexp.MustCompile(`^gw\d+ .*\b(running|idle|starting|syncing|waiting|lost|done) +\d+(s|m\d\ds|h\d\dm)\b`)
	hostRow      = regexp.MustCompile(`^\S+ +\d+ (running|run|idle)\b`)
)

func isFrameLine(l string) bool {
	return progressLine.MatchString(l) || gatewayRow.MatchString(l) || hostRow.MatchString(l)
}

// frameOf is the live view at the bottom of a pane: the progress line and what follows.
func frameOf(pane string) []string {
	lines := strings.Split(pane, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if progressLine.MatchString(lines[i]) {
			return lines[i:]
		}
	}
	return nil
}

// framesIn counts the progress lines of a pane: a frame left behind shows as a second.
func framesIn(pane string) int {
	n := 0
	for _, l := range strings.Split(pane, "\n") {
		if progressLine.MatchString(l) {
			n++
		}
	}
	return n
}

// holding reports whether the pane shows the run of liveModule on n gateways holding
// still: n-1 running a waiting test each, one idle, the failure above, and the counts
// (at 40 columns the skipped count may not fit).
func holding(n int) func(string) bool {
	return func(pane string) bool {
		f := frameOf(pane)
		if len(f) != n+1 || !failsEnded.MatchString(pane) {
			return false
		}
		p := f[0]
		if !strings.Contains(p, fmt.Sprintf(" %d passed  1 failed  %d skipped ", n-1, n-1)) && !strings.Contains(p, fmt.Sprintf(" %d ok 1 fail", n-1)) {
			return false
		}
		running, idle := 0, 0
		for _, r := range f[1:] {
			switch {
			case holdingRow.MatchString(r):
				running++
			case idleRow.MatchString(r):
				idle++
			}
		}
		return running == n-1 && idle == 1
	}
}

var (
	failsEnded = regexp.MustCompile(`(?m)^FAIL live\.example/fails \d`) // the package's line, after the test's
	holdingRow = regexp.MustCompile(`^gw\d+ .*running +\d+s .*TestBlock\d+`)
	idleRow    = regexp.MustCompile(`^gw\d+ .*idle +\d+s$`)
)

// checkLines fails the test for a line wider than the window, less one column (the live
// view keeps the last one free); join is a pane captured with lines joined.
func checkLines(t *testing.T, join string, width int, what string) {
	t.Helper()
	for _, l := range strings.Split(join, "\n") {
		if n := utf8.RuneCountInString(l); n > width-1 {
			t.Errorf("%s: a line of %d columns in a window of %d: %q", what, n, width, l)
		}
	}
}

var (
	normBar   = regexp.MustCompile(`[█░]+`)
	normTime  = regexp.MustCompile(`\b\d+(\.\d+)?(h\d\dm|m\d\ds|s)\b`)
	normPct   = regexp.MustCompile(`\b\d+%`)
	normBlock = regexp.MustCompile(`TestBlock\d+`)
	normGw    = regexp.MustCompile(`\[gw\d+\]`)
	normSpace = regexp.MustCompile(` {2,}`)
	normHost  = regexp.MustCompile(`^(gw\d+) \S+ `)
)

// normalise takes out of a pane what changes from run to run: times, shares, the bar's
// length, which gateway got which test (gateway rows are sorted); runs of spaces become
// one (the columns' widths follow the times). With host set, the gateways' host column
// becomes HOST.
func normalise(pane string, host bool) string {
	var out, rows []string
	for _, l := range strings.Split(strings.TrimRight(pane, "\n"), "\n") {
		row := gatewayRow.MatchString(l)
		l = normBar.ReplaceAllString(l, "[bar]")
		l = normTime.ReplaceAllString(l, "T")
		l = strings.ReplaceAll(l, "ETA -", "ETA T")
		l = normPct.ReplaceAllString(l, "N%")
		l = normBlock.ReplaceAllString(l, "TestBlockN")
		l = normGw.ReplaceAllString(l, "[gwN]")
		l = normSpace.ReplaceAllString(l, " ")
		if host {
			l = normHost.ReplaceAllString(l, "$1 HOST ")
		}
		if row {
			rows = append(rows, normID.ReplaceAllString(l, "gwN"))
			continue
		}
		out = append(out, l)
	}
	sort.Strings(rows)
	return strings.Join(append(out, rows...), "\n") + "\n"
}

var normID = regexp.MustCompile(`^gw\d+`)

// liveGolden compares got with testdata/name, or rewrites it with -update.
func liveGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("the screen differs from %s (-update rewrites it)\n--- got:\n%s--- want:\n%s", path, got, want)
	}
}

// liveCommand is the shell command that runs godist on root in the window, and says how
// it exited.
func liveCommand(root, durations string, args ...string) string {
	return fmt.Sprintf("cd %s && %s --durations %s %s ./...; echo EXITED $?; sleep 600", root, godistBin, durations, strings.Join(args, " "))
}

// liveEnv is a terminal's environment for the live view: colours allowed (NO_COLOR empty).
var liveEnv = []string{"NO_COLOR=", "GODIST_CACHE_DIR=off"}

// release lets the run of liveModule go on, and waits for it to end: with exit status 1
// (a test failed), and the summary; nothing of the live view may be left, anywhere in
// the scrollback, and what godist printed before the failures section fits the window
// (unless width is 0: plain lines are not cut).
func releaseAndEnd(t *testing.T, tm *tmuxTerm, release string, width, n int) string {
	t.Helper()
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	end := tm.waitPane(90*time.Second, "EXITED", func(s string) bool { return strings.Contains(s, "EXITED ") })
	if !strings.Contains(end, "EXITED 1") {
		t.Errorf("godist did not exit 1:\n%s", end)
	}
	summary := fmt.Sprintf("%d passed, 1 failed, %d skipped in ", 3*(n-1), n-1)
	if !strings.Contains(tm.pane(true), summary) {
		t.Errorf("no summary %q:\n%s", summary, tm.pane(true))
	}
	for _, l := range strings.Split(end, "\n") {
		if isFrameLine(l) {
			t.Errorf("a line of the live view left after the run: %q\n%s", l, end)
		}
	}
	if width > 0 {
		before, _, _ := strings.Cut(tm.pane(true), "\n=== Failed")
		checkLines(t, before, width, "after the run")
	}
	return end
}

// The live view in a real terminal (tmux) at 40, 80 and 200 columns, four local workers
// (-n 4): mid-run, the failure that streamed in with the first lines of its output, the
// progress line, and one row per worker with its host, state, time and test, each in
// its place; no line wider than the window; nothing of it left after the run.
func TestLiveViewTerminal(t *testing.T) {
	t.Parallel()
	requireTmux(t)
	for _, width := range []int{40, 80, 200} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			t.Parallel()
			root, durations, release := liveModule(t, 4)
			tm := startTmux(t, width, 24, liveEnv, liveCommand(root, durations, "-n", "4"))
			pane := tm.waitPane(120*time.Second, "run holding with 4 workers busy", holding(4))
			checkLines(t, tm.pane(true), width, "mid-run")
			if n := framesIn(pane); n != 1 {
				t.Errorf("%d progress lines on the screen, want 1:\n%s", n, pane)
			}
			f := frameOf(pane)
			for i, r := range f[1:] {
				if want := fmt.Sprintf("gw%d local ", i); !strings.HasPrefix(r, want) {
					t.Errorf("row %d is %q, want it to start %q", i, r, want)
				}
			}
			progress := `^godist [█░]{8,40} \d+%  ETA (\d+s|-)  3 passed  1 failed  3 skipped  \d+s$`
			if width == 40 {
				progress = `^(godist )?[█░]{8,} \d+% ETA (\d+s|-) 3 ok 1 fail( 3 skip)?( \d+s)?$`
			}
			if !regexp.MustCompile(progress).MatchString(f[0]) {
				t.Errorf("progress line %q, want it to match %s", f[0], progress)
			}
			if !strings.Contains(pane, "line 4 of what") || strings.Contains(pane, "line 5 of what") ||
				!strings.Contains(pane, "… 6 more lines") {
				t.Errorf("the failure's output is not cut to its first 4 lines:\n%s", pane)
			}
			// The progress line varies with the times at 40 columns (what fits); the rest is
			// the same every time.
			liveGolden(t, fmt.Sprintf("live-popen-%d.golden", width), normalise(strings.Replace(pane, f[0], "<progress>", 1), false))
			releaseAndEnd(t, tm, release, width, 4)
		})
	}
}

// With NO_COLOR, a terminal gets the plain lines, as a pipe does: no live view.
func TestLiveViewNoColor(t *testing.T) {
	t.Parallel()
	requireTmux(t)
	root, durations, release := liveModule(t, 4)
	tm := startTmux(t, 80, 24, []string{"NO_COLOR=1", "GODIST_CACHE_DIR=off"}, liveCommand(root, durations, "-n", "4"))
	pane := tm.waitPane(120*time.Second, "plain FAIL lines", func(s string) bool {
		return strings.Contains(s, "--- FAIL: TestFailsFast (") && regexp.MustCompile(`(?m)^FAIL\s+live\.example/fails\s+\d`).MatchString(s)
	})
	for _, l := range strings.Split(pane, "\n") {
		if isFrameLine(l) {
			t.Errorf("a line of the live view with NO_COLOR: %q", l)
		}
	}
	releaseAndEnd(t, tm, release, 0, 4)
}

// A resize mid-run (200 columns, then 40, then 80): the view is drawn again at the new
// width, over the old one (which the terminal wrapped when it got narrower), leaving no
// stale line behind.
func TestLiveViewResize(t *testing.T) {
	t.Parallel()
	requireTmux(t)
	root, durations, release := liveModule(t, 4)
	tm := startTmux(t, 200, 24, liveEnv, liveCommand(root, durations, "-n", "4"))
	tm.waitPane(120*time.Second, "run holding with 4 workers busy", holding(4))
	for _, width := range []int{40, 80} {
		tm.resize(width, 24)
		pane := tm.waitPane(10*time.Second, fmt.Sprintf("view redrawn at %d columns", width), func(s string) bool {
			f := frameOf(s)
			return len(f) == 5 && utf8.RuneCountInString(f[0]) <= width-1 && holding(4)(s)
		})
		if n := framesIn(pane); n != 1 {
			t.Errorf("at %d columns: %d progress lines in the scrollback, want 1:\n%s", width, n, pane)
		}
		rows := 0
		for _, l := range strings.Split(pane, "\n") {
			if gatewayRow.MatchString(l) {
				rows++
			}
		}
		if rows != 4 {
			t.Errorf("at %d columns: %d gateway rows in the scrollback, want 4:\n%s", width, rows, pane)
		}
		join := tm.pane(true)
		for _, l := range frameOf(join) {
			if utf8.RuneCountInString(l) > width-1 {
				t.Errorf("at %d columns: a line of the view of %d columns: %q", width, utf8.RuneCountInString(l), l)
			}
		}
	}
	releaseAndEnd(t, tm, release, 80, 4)
}

// Sixteen gateways over ssh (a real sshd): a row each where the window has room for them,
// at 80 and 200 columns (their host is the one the workers report); in a window of 14
// lines, one row for the host, with the count of its running workers and its
// longest-running test; at 40 columns, the rows cut to fit.
func TestLiveViewSSH(t *testing.T) {
	t.Parallel()
	requireTmux(t)
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	env := append([]string{}, liveEnv...)
	env = append(env, s.Env()...)
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	for _, tc := range []struct{ width, height int }{{80, 30}, {200, 30}, {80, 14}, {40, 30}} {
		t.Run(fmt.Sprintf("%dx%d", tc.width, tc.height), func(t *testing.T) {
			root, durations, release := liveModule(t, 16)
			tm := startTmux(t, tc.width, tc.height, env, liveCommand(root, durations, "--tx", "16*ssh="+s.Alias))
			grouped := tc.height < 16+1+5
			var pane string
			if grouped {
				pane = tm.waitPane(180*time.Second, "one host row with 16 running", func(p string) bool {
					f := frameOf(p)
					return len(f) == 2 && regexp.MustCompile(`^\S+ +15 running 1 idle +\d+s live.example/work TestBlock\d+/wait \[gw\d+\]$`).MatchString(f[1]) &&
						strings.Contains(f[0], " 15 passed  1 failed  15 skipped ")
				})
			} else {
				pane = tm.waitPane(180*time.Second, "run holding with 16 gateways busy", holding(16))
				f := frameOf(pane)
				host, _ := os.Hostname() // what the workers report: sshd runs here
				for i, r := range f[1:] {
					if !strings.HasPrefix(r, fmt.Sprintf("gw%d ", i)) {
						t.Errorf("row %d is %q, want gw%d's", i, r, i)
					}
					if tc.width == 200 && len(host) <= 24 && !strings.HasPrefix(r, fmt.Sprintf("gw%-2d %s ", i, host)) {
						t.Errorf("row %d is %q, want the host %s", i, r, host)
					}
				}
			}
			checkLines(t, tm.pane(true), tc.width, "mid-run")
			if n := framesIn(pane); n != 1 {
				t.Errorf("%d progress lines on the screen, want 1:\n%s", n, pane)
			}
			if tc.width != 40 {
				// Every part is on the screen at these widths: the golden holds it all. (At 40
				// columns what fits of a row depends on the host's name.)
				f := frameOf(pane)
				norm := normalise(strings.Join(f, "\n"), true)
				if grouped {
					norm = normalise(strings.Join(f[:1], "\n"), false) + "HOST" + normalise(f[1][strings.IndexByte(f[1], ' '):], false)
				}
				liveGolden(t, fmt.Sprintf("live-ssh-%dx%d.golden", tc.width, tc.height), norm)
			}
			releaseAndEnd(t, tm, release, tc.width, 16)
		})
	}
}
