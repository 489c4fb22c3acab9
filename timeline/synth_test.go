package timeline

import (
	"fmt"
	"time"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
)

// t0 is the origin of the synthetic runs.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

// synth drives a Recorder as the runner would, on a clock that the test sets: gateway
// states are stamped with it, events and processes carry their own times.
type synth struct {
	now time.Time
	rec *Recorder
}

func newSynth(gateways ...string) *synth {
	s := &synth{now: t0}
	s.rec = New(Options{Now: func() time.Time { return s.now }, Gateways: gateways, Title: "synthetic"})
	return s
}

// state is gateway id entering state at ms.
func (s *synth) state(ms float64, id, state string) {
	s.now = at(ms)
	s.rec.WorkerState(id, state)
}

func (s *synth) event(ms float64, worker, pkg, test, action, output string) {
	tm := at(ms)
	e := gotest.Event{Time: &tm, Action: action, Package: pkg, Test: test, Worker: worker, Output: output}
	if gotest.IsTerminal(action) && test != "" {
		el := 0.0
		e.Elapsed = &el
	}
	s.rec.Event(e)
}

// test is one top-level test run of from..to ms ending in action.
func (s *synth) test(worker, pkg, name string, from, to float64, action string) {
	s.event(from, worker, pkg, name, gotest.ActionRun, "")
	s.event(to, worker, pkg, name, action, "")
}

// proc ends a process of pkg on worker that ran from..to ms.
func (s *synth) proc(worker, pkg string, from, to float64, exit string, tests ...string) {
	s.rec.Process(ledger.Process{Worker: worker, Package: pkg, Start: at(from), End: at(to), Tests: tests, Exit: exit})
}

// bigRun is a run of tests tests in procs processes of pkgs packages on gws gateways,
// test n taking dur(n) ms (one in 997 fails, one in 101 skips), every gateway starting up
// in 300 ms, each process going to the gateway free first.
func bigRun(gws, pkgs, procs, tests int, dur func(n int) float64) *Recorder {
	var ids []string
	for i := 0; i < gws; i++ {
		ids = append(ids, fmt.Sprintf("gw%d", i))
	}
	s := newSynth(ids...)
	free := make([]float64, gws) // when each gateway is free, in ms
	for i, id := range ids {
		s.state(float64(i), id, "starting")
	}
	for i, id := range ids {
		free[i] = 300 + float64(i)
		s.state(free[i], id, "ready")
	}
	perProc := tests / procs
	n := 0
	for p := 0; p < procs; p++ {
		pkg := fmt.Sprintf("example.com/big/pkg%03d", p%pkgs)
		g := 0
		for i := range free {
			if free[i] < free[g] {
				g = i
			}
		}
		start := free[g] + 0.5
		t := start + 8 // process start-up
		k := perProc
		if p == procs-1 {
			k = tests - n
		}
		var names []string
		for j := 0; j < k; j++ {
			name := fmt.Sprintf("TestCase%05d", n)
			d := dur(n)
			action := gotest.ActionPass
			switch {
			case n%997 == 5:
				action = gotest.ActionFail
			case n%101 == 3:
				action = gotest.ActionSkip
			}
			s.test(ids[g], pkg, name, t, t+d, action)
			names = append(names, name)
			t += d
			n++
		}
		free[g] = t + 1
		s.proc(ids[g], pkg, start, free[g], "ok", names...)
	}
	end := 0.0
	for _, f := range free {
		end = max(end, f)
	}
	for _, id := range ids {
		s.state(end+5, id, "done")
	}
	return s.rec
}

// uniformMs is 0.1 to 5 ms: every test about a pixel wide in a run of 50,000.
func uniformMs(n int) float64 { return 0.1 + float64((n*7919)%50)/10 }

// realisticMs is a suite's spread: 80% under a millisecond, 15% up to 20 ms, 4.5% up to
// 300 ms, 0.5% up to 3 s.
func realisticMs(n int) float64 {
	h := (n * 2654435761) % 1000
	f := float64((n*40503)%1000) / 1000 // where in its class
	switch {
	case h < 800:
		return 0.05 + f*0.95
	case h < 950:
		return 1 + f*19
	case h < 995:
		return 20 + f*280
	}
	return 300 + f*2700
}
