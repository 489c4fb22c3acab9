package report

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
)

// termSize is a terminal size a test changes while the Reporter reads it.
type termSize struct {
	mu   sync.Mutex
	w, h int
}

func (s *termSize) get() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w, s.h
}

func (s *termSize) set(w, h int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w, s.h = w, h
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// liveRun plays a run on four gateways in fake time: two local, two on a remote host (one
// lost); a failure with nine lines of output streams in; calc is planned test by test,
// util runs whole. It stops 3.25s in, with two tests running.
func liveRun(r *Reporter) {
	ev := func(action, pkg, test, worker string, args ...any) {
		e := gotest.Event{Action: action, Package: pkg, Test: test, Worker: worker}
		if len(args) > 0 {
			switch a := args[0].(type) {
			case float64:
				e.Elapsed = &a
			case string:
				e.Output = a
			}
		}
		r.Event(e)
	}
	time.Sleep(50 * time.Millisecond) // no step on a tick of the frames: the screens are the same every time
	for i, h := range []string{"local", "local", "build-eu-1.example.com", "build-eu-1.example.com"} {
		r.Gateway(ledger.Gateway{ID: fmt.Sprintf("gw%d", i), Host: h})
	}
	for i := range 4 {
		r.WorkerState(fmt.Sprintf("gw%d", i), "starting")
	}
	r.Planned(ledger.Planned{Scope: ledger.Scope{Package: "example.com/calc"}, Tests: map[string]time.Duration{
		"TestSlow": secs(8), "TestTable": secs(2), "TestDiv": secs(1), "TestAdd": secs(1),
	}})
	r.Planned(ledger.Planned{Scope: ledger.Scope{Package: "example.com/util"}, Whole: secs(4)})
	time.Sleep(200 * time.Millisecond)
	r.WorkerState("gw2", "syncing")
	r.WorkerState("gw0", "busy")
	r.WorkerState("gw1", "busy")
	ev("start", "example.com/calc", "", "gw0")
	ev("run", "example.com/calc", "TestSlow", "gw0")
	ev("run", "example.com/calc", "TestTable", "gw1")
	ev("run", "example.com/calc", "TestTable/pos", "gw1")
	time.Sleep(300 * time.Millisecond)
	ev("pass", "example.com/calc", "TestTable/pos", "gw1", 0.3)
	ev("run", "example.com/calc", "TestTable/neg", "gw1")
	r.WorkerState("gw3", "lost")
	r.Note("godist: gateway gw3 lost: connection reset by peer")
	time.Sleep(700 * time.Millisecond)
	ev("pass", "example.com/calc", "TestTable/neg", "gw1", 0.7)
	ev("pass", "example.com/calc", "TestTable", "gw1", 1.0)
	r.WorkerState("gw1", "ready")
	r.WorkerState("gw2", "ready")
	r.WorkerState("gw1", "busy")
	ev("run", "example.com/calc", "TestDiv", "gw1")
	for i := range 9 {
		ev("output", "example.com/calc", "TestDiv", "gw1", fmt.Sprintf("    calc_test.go:%d: line %d of what went wrong, long enough to be cut at forty columns\n", 20+i, i+1))
	}
	ev("fail", "example.com/calc", "TestDiv", "gw1", 0.5)
	r.WorkerState("gw1", "ready")
	r.WorkerState("gw2", "busy")
	ev("start", "example.com/util", "", "gw2")
	ev("run", "example.com/util", "TestA", "gw2")
	ev("skip", "example.com/util", "TestA", "gw2", 0.0)
	ev("run", "example.com/util", "TestB", "gw2")
	time.Sleep(2 * time.Second)
}

// The live view at 40, 80 and 200 columns, as a terminal shows it mid-run: the failure
// with the first lines of its output above, then the progress line, then a row per
// gateway; no line wider than the terminal, and nothing of it left after Close.
func TestLiveViewGolden(t *testing.T) {
	for _, width := range []int{40, 80, 200} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf syncBuffer
				r := newReporter(t, Options{Out: &buf, TTY: true, Width: width, Height: 24, Now: time.Now})
				liveRun(r)
				scr := screen(t, buf.String())
				golden(t, fmt.Sprintf("live-%d.golden", width), []byte(scr+"\n"))
				checkFits(t, scr, width)
				if n := len(frameLines(scr)); n != 5 {
					t.Errorf("%d lines of the live view on the screen, want 5 (progress and 4 gateways):\n%s", n, scr)
				}
				r.Close(time.Second)
				if l := frameLines(screen(t, buf.String())); len(l) > 0 {
					t.Errorf("left on the screen after Close: %q", l)
				}
			})
		})
	}
}

// checkFits fails the test for a line of scr wider than the terminal's width less one.
func checkFits(t *testing.T, scr string, width int) {
	t.Helper()
	for _, l := range strings.Split(scr, "\n") {
		if n := ansi.StringWidth(l); n > width-1 {
			t.Errorf("a line %d columns wide on a terminal of %d: %q", n, width, l)
		}
	}
}

// The progress is the estimated work done, not a count of tests: what ended counts as
// its estimate, what runs as far as it got (up to its estimate).
func TestLiveViewProgressByEstimates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newReporter(t, Options{Out: new(syncBuffer), TTY: true, Now: time.Now})
		liveRun(r)
		r.mu.Lock()
		total, done, known := r.live.progress(time.Now())
		left, ok := r.live.eta(time.Now(), total, done, known)
		r.mu.Unlock()
		// calc: 12s planned; TestTable (2s) and TestDiv (1s) ended, TestSlow (8s) has run
		// 3s. util: 4s as a whole, TestB has run 2s (TestA, skipped, took nothing).
		if want := secs(16); total != want {
			t.Errorf("total %v, want %v", total, want)
		}
		if want := secs(8); done != want {
			t.Errorf("done %v, want %v", done, want)
		}
		// 8s of work in the 3s since the first gateway went busy leaves 3s at that rate,
		// but TestSlow has 5s of its estimate left.
		if !known || !ok || left != secs(5) {
			t.Errorf("ETA %v (known %v, ok %v), want 5s", left, known, ok)
		}
		r.Close(time.Second)
	})
}

// A package with no estimate weighs what the others do on average and counts only once
// it ends; with no estimate at all there is no ETA.
func TestLiveViewProgressUnknown(t *testing.T) {
	v := newLiveView(false)
	t0 := time.Unix(1000, 0)
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "a"}})
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "b"}})
	v.setState("gw0", "busy", t0)
	v.event(gotest.Event{Action: "run", Package: "a", Test: "TestA", Worker: "gw0"}, t0)
	now := t0.Add(5 * time.Second)
	total, done, known := v.progress(now)
	if total != 2*time.Second || done != 0 || known {
		t.Errorf("progress %v of %v (known %v), want 0 of 2s, unknown", done, total, known)
	}
	if _, ok := v.eta(now, total, done, known); ok {
		t.Error("an ETA with nothing known")
	}
	v.event(gotest.Event{Action: "pass", Package: "a", Worker: "gw0"}, now)
	if total, done, _ = v.progress(now); done != time.Second || total != 2*time.Second {
		t.Errorf("progress %v of %v after a ended, want 1s of 2s", done, total)
	}
	// A replanned package replaces its work; one that leaves the run has none.
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "b"}, Tests: map[string]time.Duration{"TestB": 3 * time.Second}})
	if total, _, known = v.progress(now); total != 6*time.Second || !known {
		t.Errorf("total %v (known %v) after b's plan, want 6s (a weighs b's 3s)", total, known)
	}
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "b"}, Gone: true})
	if total, _, _ = v.progress(now); total != time.Second {
		t.Errorf("total %v after b left, want a's 1s", total)
	}
}

// 64 gateways on three hosts: one row per host, in the order of its first gateway, with
// how many of its workers are in each state and what the longest-running one runs.
func TestLiveViewGroupsPerHost(t *testing.T) {
	for _, width := range []int{40, 80, 200} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf syncBuffer
				r := newReporter(t, Options{Out: &buf, TTY: true, Width: width, Height: 30, Now: time.Now})
				hosts := []string{"local", "rack1-node07.example.com", "rack2-node11.example.com"}
				for i := range 64 {
					r.Gateway(ledger.Gateway{ID: fmt.Sprintf("gw%d", i), Host: hosts[min(i/8, 2)]})
				}
				for i := range 64 {
					id := fmt.Sprintf("gw%d", i)
					switch {
					case i == 63:
						r.WorkerState(id, "lost")
					case i%4 == 3:
						r.WorkerState(id, "ready")
					default:
						r.WorkerState(id, "busy")
						r.Event(gotest.Event{Action: "run", Package: "example.com/pkg" + fmt.Sprint(i%5), Test: fmt.Sprintf("Test%02d", i), Worker: id})
					}
					time.Sleep(50 * time.Millisecond) // the first ones run the longest
				}
				time.Sleep(time.Second)
				scr := screen(t, buf.String())
				golden(t, fmt.Sprintf("live-hosts-%d.golden", width), []byte(scr+"\n"))
				checkFits(t, scr, width)
				r.Close(time.Second)
			})
		})
	}
}

// The frame is never taller than the terminal, nor a line of it wider, whatever the size;
// as the terminal gets shorter, gateways are grouped per host, then hosts cut.
func TestLiveViewFitsAnySize(t *testing.T) {
	v := newLiveView(false)
	t0 := time.Unix(1000, 0)
	for i := range 20 {
		id := fmt.Sprintf("gw%d", i)
		v.setHost(id, fmt.Sprintf("host-%d.example.com", i%7))
		v.setState(id, "busy", t0)
		v.event(gotest.Event{Action: "run", Package: "example.com/a/very/long/package/path", Test: "TestWithAVeryLongName/and_a_subtest", Worker: id}, t0)
	}
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "example.com/a/very/long/package/path"}, Tests: map[string]time.Duration{"TestWithAVeryLongName": time.Hour}})
	for _, width := range []int{1, 2, 10, 20, 30, 40, 80, 200} {
		for _, height := range []int{1, 2, 3, 5, 8, 12, 24, 60} {
			in := frameInput{now: t0.Add(90 * time.Minute), elapsed: 90 * time.Minute, width: width, height: height,
				passed: 123456, failed: 789, skipped: 12}
			lines := v.frame(in)
			if len(lines) > max(height-1, 1) {
				t.Errorf("%dx%d: %d lines", width, height, len(lines))
			}
			for _, l := range lines {
				if n := ansi.StringWidth(l); n > max(width-1, 0) {
					t.Errorf("%dx%d: a line %d wide: %q", width, height, n, l)
				}
			}
			switch {
			case width < 20:
			case height >= 25 && len(lines) != 21:
				t.Errorf("%dx%d: %d lines, want a row per gateway", width, height, len(lines))
			case height == 12 && len(lines) != 8:
				t.Errorf("%dx%d: %d lines, want a row per host", width, height, len(lines))
			case height == 8 && (len(lines) != 7 || !strings.HasPrefix(lines[6], "… 2 more hosts")):
				t.Errorf("%dx%d: %q, want 5 hosts and a line for the 2 more", width, height, lines)
			}
		}
	}
}

// A terminal narrower than when the frame was drawn wraps the frame's longer lines (tmux
// does): the cursor goes up over every row they take.
func TestShownFrameRowsAt(t *testing.T) {
	f := shownFrame{widths: []int{79, 30, 79}, width: 80}
	for _, tc := range []struct{ width, rows int }{{80, 3}, {200, 3}, {79, 3}, {40, 2 + 1 + 2}, {30, 3 + 1 + 3}, {10, 8 + 3 + 8}} {
		if got := f.rowsAt(tc.width); got != tc.rows {
			t.Errorf("at %d columns: %d rows, want %d", tc.width, got, tc.rows)
		}
	}
	if got := (shownFrame{}).rowsAt(80); got != 0 {
		t.Errorf("no frame: %d rows", got)
	}
}

// A resize redraws the frame at the new width at the next frame, over the old one.
func TestLiveViewFollowsResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		size := &termSize{w: 200, h: 24}
		r := newReporter(t, Options{Out: &buf, TTY: true, Size: size.get, Now: time.Now})
		liveRun(r)
		size.set(250, 30) // wider: no line wrapped, the cursor goes up as many lines
		time.Sleep(frameInterval)
		scr := screen(t, buf.String())
		if n := len(frameLines(scr)); n != 5 {
			t.Errorf("after a resize, %d lines of the live view, want 5:\n%s", n, scr)
		}
		if !strings.Contains(scr, "gw0 local") || !strings.Contains(scr, "build-eu-1.example.com") {
			t.Errorf("hosts not shown at 250 columns:\n%s", scr)
		}
		r.Close(time.Second)
	})
}

// Lines from tests (the excerpts of a failure, -v output) cannot move the cursor or
// break the frame: escape sequences and control characters go, tabs become spaces.
func TestTermLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                          "plain",
		"\x1b[31mred\x1b[0m":             "red",
		"a\tb":                           "a       b",
		"12345678\tx":                    "12345678        x",
		"up\x1b[2Aover\rback\x07":        "upoverback",
		"wide 世界\tz":                     "wide 世界       z",
		"\x1b]0;title\x07after":          "after",
		"cursor\x1b[10;10Hjump\x1b[Jend": "cursorjumpend",
	} {
		if got := termLine(in); got != want {
			t.Errorf("termLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", -time.Second: "0s", 1500 * time.Millisecond: "1s", 59 * time.Second: "59s",
		time.Minute: "1m00s", 68 * time.Second: "1m08s", time.Hour - time.Second: "59m59s",
		time.Hour: "1h00m", 125 * time.Minute: "2h05m",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// A package expected to run but not built yet weighs as work to come, so that a first run's
// bar does not stand at 100 % once its first packages have passed; it is done once the
// package has a result, from a worker or from the build (no worker), and a plan replaces it.
func TestLiveViewProgressCountsExpectedPackages(t *testing.T) {
	v := newLiveView(false)
	t0 := time.Unix(1000, 0)
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "a"}, Tests: map[string]time.Duration{"TestA": time.Second}})
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "b"}, Expected: true})
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "c"}, Expected: true, Whole: 2 * time.Second})
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "d"}, Expected: true})
	v.setState("gw0", "busy", t0)
	v.event(gotest.Event{Action: "run", Package: "a", Test: "TestA", Worker: "gw0"}, t0)
	v.event(gotest.Event{Action: "pass", Package: "a", Test: "TestA", Worker: "gw0", Elapsed: ptr(1.0)}, t0)
	v.event(gotest.Event{Action: "pass", Package: "a", Worker: "gw0"}, t0)
	// a (1s) done; b and d weigh the average of what is known (1.5s), c its 2s.
	if total, done, _ := v.progress(t0); total != 6*time.Second || done != time.Second {
		t.Fatalf("progress %v of %v with b, c, d to come, want 1s of 6s", done, total)
	}
	// b does not build: the build's result (no worker) ends it.
	v.event(gotest.Event{Action: "fail", Package: "b", FailedBuild: "b [b.test]"}, t0)
	// c is planned anew with its tests, and d's result comes from a worker.
	v.planned(ledger.Planned{Scope: ledger.Scope{Package: "c"}, Tests: map[string]time.Duration{"TestC": 4 * time.Second}})
	v.event(gotest.Event{Action: "pass", Package: "d", Worker: "gw0"}, t0)
	total, done, _ := v.progress(t0)
	// a 1s, b and d 2.5s each (the average of a's 1s and c's 4s), c 4s, of which c is left.
	if total != 10*time.Second || done != 6*time.Second {
		t.Errorf("progress %v of %v, want 6s of 10s (only c left)", done, total)
	}
	// A build event of a package that was planned (not expected) is not its end.
	v.event(gotest.Event{Action: "fail", Package: "c"}, t0)
	if _, d, _ := v.progress(t0); d != done {
		t.Errorf("done %v after a worker-less event of a planned package, want %v", d, done)
	}
}
