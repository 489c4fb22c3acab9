package timeline

import (
	"sort"
	"time"
)

// span is a half-open interval of time.
type span struct{ from, to time.Time }

func (s span) dur() time.Duration { return max(s.to.Sub(s.from), 0) }

// phase is a part of a lane that is no test process: start-up, sync, or idle (the gateway
// was up and ran no process).
type phase struct {
	kind string // phaseStart, phaseSync, phaseIdle
	span
}

const (
	phaseStart = "starting"
	phaseSync  = "syncing"
	phaseIdle  = "idle"
)

// laneStats is one worker's time in the run.
type laneStats struct {
	ID      string
	Ready   time.Time     // when it was first ready for work (zero: never)
	Startup time.Duration // "starting" until the next state
	Sync    time.Duration // "syncing" (the tree shipped) until the next state
	Busy    time.Duration // covered by its test processes
	Idle    time.Duration // up and running no process
	Tail    time.Duration // the part of Idle after its last process ended
	Procs   int
	Tests   int
	Lost    bool      // its last state was "lost"
	LastEnd time.Time // the end of its last process (zero: none)
	phases  []phase   // start-up, sync and idle, in order
	up      []span    // ready (not lost)
}

// step is one link of the critical path.
type step struct {
	Kind    string // phaseStart, phaseSync, phaseIdle, or "process"
	Package string // of a process
	Tests   int    // of a process: its top-level test runs
	Exit    string // of a process
	span
}

// pkgStats is one package's work over the run.
type pkgStats struct {
	Package     string
	Work        time.Duration // its processes' time together
	First, Last time.Time     // its first process's start, its last one's end
	Procs       int
	Lanes       int
}

// analysis is what the side of the chart says of a run: where the time went.
type analysis struct {
	Lanes []laneStats
	// CriticalLane is the lane whose last process ended last: the run's tests ended there.
	// Critical is the chain of what happened on it, start-up to its last process.
	CriticalLane string
	Critical     []step
	Longest      *pkgStats // the package with the most process time (nil: none ran)
	LongestProc  *Proc
	Work         time.Duration // every process's time together
	// Span is from the first worker's readiness to the last process's end; Bound is a
	// lower bound of it for this work on these workers: the longest process, or the work
	// spread evenly over the workers that were ever ready, whichever is longer.
	Span, Bound time.Duration
	Tests       map[string]int // top-level test runs by outcome
	Procs       int
}

// analyze works out where a run's time went.
func analyze(run Run) analysis {
	a := analysis{Tests: map[string]int{}}
	pkgs := map[string]*pkgStats{}
	pkgLanes := map[string]map[string]bool{}
	var firstReady, lastEnd time.Time
	ready := 0
	for _, l := range run.Lanes {
		st := statsOf(l, run.End)
		a.Lanes = append(a.Lanes, st)
		if !st.Ready.IsZero() {
			ready++
			if firstReady.IsZero() || st.Ready.Before(firstReady) {
				firstReady = st.Ready
			}
		}
		if !st.LastEnd.IsZero() && (a.CriticalLane == "" || st.LastEnd.After(lastEnd)) {
			a.CriticalLane, lastEnd = l.ID, st.LastEnd
		}
		for _, p := range l.Procs {
			d := p.End.Sub(p.Start)
			a.Work += d
			a.Procs++
			if a.LongestProc == nil || d > a.LongestProc.End.Sub(a.LongestProc.Start) {
				a.LongestProc = p
			}
			ps := pkgs[p.Package]
			if ps == nil {
				ps = &pkgStats{Package: p.Package, First: p.Start, Last: p.End}
				pkgs[p.Package] = ps
				pkgLanes[p.Package] = map[string]bool{}
			}
			ps.Work += d
			ps.Procs++
			if p.Start.Before(ps.First) {
				ps.First = p.Start
			}
			if p.End.After(ps.Last) {
				ps.Last = p.End
			}
			pkgLanes[p.Package][l.ID] = true
			for _, t := range p.Runs {
				a.Tests[t.Outcome]++
			}
		}
	}
	for _, ps := range pkgs {
		ps.Lanes = len(pkgLanes[ps.Package])
		if a.Longest == nil || ps.Work > a.Longest.Work || ps.Work == a.Longest.Work && ps.Package < a.Longest.Package {
			a.Longest = ps
		}
	}
	if a.CriticalLane != "" {
		for i, l := range run.Lanes {
			if l.ID == a.CriticalLane {
				a.Critical = chainOf(l, a.Lanes[i])
			}
		}
		if firstReady.IsZero() || firstReady.After(lastEnd) {
			firstReady = a.Critical[0].from
		}
		a.Span = lastEnd.Sub(firstReady)
		if ready > 0 {
			a.Bound = a.Work / time.Duration(ready)
		}
		a.Bound = max(a.Bound, a.LongestProc.End.Sub(a.LongestProc.Start))
	}
	return a
}

// statsOf is a lane's time: its phases from its states, its busy time from its processes;
// the run ended at end.
func statsOf(l *Lane, end time.Time) laneStats {
	st := laneStats{ID: l.ID, Procs: len(l.Procs)}
	// Up: from each "ready" to the next "lost" (a local worker lost and started again is
	// ready again), or the run's end.
	var up []span
	upSince := time.Time{}
	for i, s := range l.States {
		next := end
		if i+1 < len(l.States) {
			next = l.States[i+1].At
		}
		switch s.State {
		case phaseStart:
			st.Startup += next.Sub(s.At)
			st.phases = append(st.phases, phase{phaseStart, span{s.At, next}})
		case phaseSync:
			st.Sync += next.Sub(s.At)
			st.phases = append(st.phases, phase{phaseSync, span{s.At, next}})
		case "ready", "busy", "done":
			if st.Ready.IsZero() {
				st.Ready = s.At
			}
			if upSince.IsZero() {
				upSince = s.At
			}
		case "lost":
			if !upSince.IsZero() {
				up = append(up, span{upSince, s.At})
				upSince = time.Time{}
			}
		}
	}
	if n := len(l.States); n > 0 && l.States[n-1].State == "lost" {
		st.Lost = true
	}
	var busy []span
	for _, p := range l.Procs {
		busy = append(busy, span{p.Start, p.End})
		st.Tests += len(p.Runs)
		if p.End.After(st.LastEnd) {
			st.LastEnd = p.End
		}
	}
	busy = union(busy)
	if len(busy) > 0 && (st.Ready.IsZero() || busy[0].from.Before(st.Ready)) {
		// Processes without a "ready" before them (told of processes only): up from the first.
		st.Ready = busy[0].from
		if upSince.IsZero() && len(up) == 0 {
			upSince = st.Ready
		}
	}
	if !upSince.IsZero() {
		up = append(up, span{upSince, end})
	}
	st.up = up
	for _, b := range busy {
		st.Busy += b.dur()
	}
	for _, gap := range minus(up, busy) {
		st.Idle += gap.dur()
		st.phases = append(st.phases, phase{phaseIdle, gap})
		if !st.LastEnd.IsZero() && !gap.from.Before(st.LastEnd) {
			st.Tail += gap.dur()
		}
	}
	if st.LastEnd.IsZero() {
		st.Tail = st.Idle
	}
	return st
}

// chainOf is the chain of work on a lane up to its last process's end: start-up, sync,
// then each process and each idle gap between them, in order.
func chainOf(l *Lane, st laneStats) []step {
	var out []step
	for _, ph := range st.phases {
		if ph.kind != phaseIdle && ph.from.Before(st.LastEnd) {
			out = append(out, step{Kind: ph.kind, span: span{ph.from, minTime(ph.to, st.LastEnd)}})
		}
	}
	for _, ph := range st.phases {
		if ph.kind == phaseIdle && ph.to.After(ph.from) && !ph.from.After(st.LastEnd) {
			out = append(out, step{Kind: phaseIdle, span: span{ph.from, minTime(ph.to, st.LastEnd)}})
		}
	}
	for _, p := range l.Procs {
		out = append(out, step{Kind: "process", Package: p.Package, Tests: len(p.Runs), Exit: p.Exit, span: span{p.Start, p.End}})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].from.Before(out[j].from) })
	// Idle gaps cut at the last end leave nothing after it.
	kept := out[:0]
	for _, s := range out {
		if s.Kind != phaseIdle || s.to.After(s.from) {
			kept = append(kept, s)
		}
	}
	return kept
}

// union merges overlapping spans, sorted by start.
func union(in []span) []span {
	sort.Slice(in, func(i, j int) bool { return in[i].from.Before(in[j].from) })
	var out []span
	for _, s := range in {
		if !s.to.After(s.from) {
			continue
		}
		if n := len(out); n > 0 && !s.from.After(out[n-1].to) {
			if s.to.After(out[n-1].to) {
				out[n-1].to = s.to
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// minus is a minus b, both sorted and disjoint (b as union gives it).
func minus(a, b []span) []span {
	var out []span
	for _, s := range a {
		cur := s.from
		for _, x := range b {
			if !x.to.After(cur) || !x.from.Before(s.to) {
				continue
			}
			if x.from.After(cur) {
				out = append(out, span{cur, x.from})
			}
			if x.to.After(cur) {
				cur = x.to
			}
		}
		if s.to.After(cur) {
			out = append(out, span{cur, s.to})
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
