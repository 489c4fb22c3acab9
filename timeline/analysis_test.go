package timeline

import (
	"reflect"
	"testing"
	"time"
)

func msd(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// Three gateways: gw0 local (two processes, a gap between them, done early), gw1 remote
// (syncs its tree, runs the longest process, ends last), gw2 lost while starting.
func threeLanes() *synth {
	s := newSynth("gw0", "gw1", "gw2")
	s.state(0, "gw0", "starting")
	s.state(0, "gw1", "starting")
	s.state(0, "gw2", "starting")
	s.state(50, "gw1", "syncing")
	s.state(80, "gw2", "lost")
	s.state(100, "gw0", "ready")
	s.test("gw0", "ex/p", "TestP1", 110, 390, "pass")
	s.proc("gw0", "ex/p", 100, 400, "ok", "TestP1")
	s.state(250, "gw1", "ready")
	s.test("gw0", "ex/p", "TestP2", 510, 890, "fail")
	s.proc("gw0", "ex/p", 500, 900, "exit status 1", "TestP2")
	s.state(1000, "gw0", "done")
	s.test("gw1", "ex/c", "TestC", 310, 1190, "pass")
	s.proc("gw1", "ex/c", 300, 1200, "ok")
	s.state(1200, "gw1", "done")
	return s
}

func TestAnalyzeIdleAndCriticalPath(t *testing.T) {
	a := analyze(threeLanes().rec.Snapshot())
	want := map[string]laneStats{
		// Up from 100 to the run's end (1200): busy 300+400, idle the gap and the tail.
		"gw0": {Ready: at(100), Startup: msd(100), Busy: msd(700), Idle: msd(400), Tail: msd(300), Procs: 2, Tests: 2, LastEnd: at(900)},
		// Start-up 50, sync 200, idle while waiting for its first process.
		"gw1": {Ready: at(250), Startup: msd(50), Sync: msd(200), Busy: msd(900), Idle: msd(50), Tail: 0, Procs: 1, Tests: 1, LastEnd: at(1200)},
		// Lost before it was ready: never up, never idle.
		"gw2": {Startup: msd(80), Lost: true},
	}
	if len(a.Lanes) != 3 {
		t.Fatalf("%d lanes, want 3", len(a.Lanes))
	}
	for _, got := range a.Lanes {
		w := want[got.ID]
		w.ID = got.ID
		got.phases, got.up = nil, nil // checked through what they add up to
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", got.ID, got, w)
		}
	}
	if a.CriticalLane != "gw1" {
		t.Errorf("critical lane %q, want gw1 (its process ended last)", a.CriticalLane)
	}
	wantSteps := []step{
		{Kind: phaseStart, span: span{at(0), at(50)}},
		{Kind: phaseSync, span: span{at(50), at(250)}},
		{Kind: phaseIdle, span: span{at(250), at(300)}},
		{Kind: "process", Package: "ex/c", Tests: 1, Exit: "ok", span: span{at(300), at(1200)}},
	}
	if len(a.Critical) != len(wantSteps) {
		t.Fatalf("critical path %+v, want %+v", a.Critical, wantSteps)
	}
	for i := range wantSteps {
		if a.Critical[i] != wantSteps[i] {
			t.Errorf("step %d: %+v, want %+v", i, a.Critical[i], wantSteps[i])
		}
	}
	if a.Longest == nil || a.Longest.Package != "ex/c" || a.Longest.Work != msd(900) {
		t.Errorf("longest package %+v, want ex/c with 900ms", a.Longest)
	}
	if a.Work != msd(1600) || a.Span != msd(1100) {
		t.Errorf("work %v span %v, want 1.6s and 1.1s (first ready 100ms, last end 1200ms)", a.Work, a.Span)
	}
	// 1600ms over the 2 workers that were ever ready is 800ms; the longest process is
	// longer.
	if a.Bound != msd(900) {
		t.Errorf("bound %v, want 900ms (the longest process)", a.Bound)
	}
	if a.Tests[Pass] != 2 || a.Tests[Fail] != 1 {
		t.Errorf("tests %v, want 2 pass 1 fail", a.Tests)
	}
}

// A local worker lost in a process and started again is up twice: the time between is
// neither busy nor idle.
func TestAnalyzeLostAndRestarted(t *testing.T) {
	s := newSynth("gw0", "gw1")
	s.state(0, "gw0", "starting")
	s.state(10, "gw0", "ready")
	s.test("gw0", "ex/a", "TestA", 20, 90, "pass")
	s.event(95, "gw0", "ex/a", "TestB", "run", "")
	s.proc("gw0", "ex/a", 10, 100, "lost")
	s.state(100, "gw0", "lost")
	s.state(150, "gw0", "ready")
	s.test("gw0", "ex/a", "TestB", 160, 290, "pass")
	s.proc("gw0", "ex/a", 150, 300, "ok", "TestB")
	s.state(300, "gw0", "done")
	s.state(0, "gw1", "starting")
	s.state(20, "gw1", "ready")
	s.test("gw1", "ex/b", "TestL", 30, 390, "pass")
	s.proc("gw1", "ex/b", 20, 400, "ok")
	s.state(400, "gw1", "done")
	run := s.rec.Snapshot()
	a := analyze(run)
	gw0 := a.Lanes[0]
	if gw0.Busy != msd(240) || gw0.Idle != msd(100) || gw0.Tail != msd(100) || gw0.Lost {
		t.Errorf("gw0: busy %v idle %v tail %v lost %v; want 240ms, 100ms (after its last process), 100ms, false",
			gw0.Busy, gw0.Idle, gw0.Tail, gw0.Lost)
	}
	if a.CriticalLane != "gw1" || len(a.Critical) != 2 {
		t.Errorf("critical %s %+v, want gw1: start-up, process", a.CriticalLane, a.Critical)
	}
	// The lost process's unfinished test is cut short; the run again passes.
	first := run.Lanes[0].Procs[0]
	if len(first.Runs) != 2 || first.Runs[1].Name != "TestB" || first.Runs[1].Outcome != Cut || !first.Runs[1].End.Equal(at(100)) {
		t.Errorf("lost process runs %+v, want TestA pass and TestB cut at its end", first.Runs)
	}
	if a.Tests[Cut] != 1 || a.Tests[Pass] != 3 {
		t.Errorf("tests %v, want 3 pass 1 cut", a.Tests)
	}
}

// A run where nothing ran (everything cached, or nothing built) has lanes and no path.
func TestAnalyzeNothingRan(t *testing.T) {
	s := newSynth("gw0")
	a := analyze(s.rec.Snapshot())
	if len(a.Lanes) != 1 || a.CriticalLane != "" || a.Critical != nil || a.Longest != nil || a.Span != 0 {
		t.Errorf("analysis of an empty run: %+v", a)
	}
}

func TestIntervals(t *testing.T) {
	u := union([]span{{at(5), at(7)}, {at(0), at(2)}, {at(1), at(3)}, {at(3), at(4)}, {at(9), at(9)}})
	if len(u) != 2 || u[0] != (span{at(0), at(4)}) || u[1] != (span{at(5), at(7)}) {
		t.Errorf("union: %v", u)
	}
	m := minus([]span{{at(0), at(10)}, {at(20), at(30)}}, []span{{at(-1), at(1)}, {at(4), at(6)}, {at(25), at(40)}})
	want := []span{{at(1), at(4)}, {at(6), at(10)}, {at(20), at(25)}}
	if len(m) != len(want) {
		t.Fatalf("minus: %v, want %v", m, want)
	}
	for i := range want {
		if m[i] != want[i] {
			t.Errorf("minus[%d] = %v, want %v", i, m[i], want[i])
		}
	}
}
