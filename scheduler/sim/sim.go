package main

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"time"

	"github.com/godist/godist/scheduler"
)

// Result is what one simulated run measured.
type Result struct {
	Makespan time.Duration // the last batch's end, in virtual time
	// LB is a lower bound of the makespan for the workload: the larger of the work (every
	// test, one process start-up per package) spread over the workers' capacity from when
	// each comes up (at its host's speed, until it is lost), and the longest test with its
	// package's start-up on the fastest host from the first worker's start. Without start-ups,
	// delays, stragglers and losses it is max(Σt/N, t_max).
	LB     time.Duration
	LBKind string // "area" or "longest": which of the two it is
	// PlainLB is max(Σt/N, t_max + its package's start-up), whatever the hosts.
	PlainLB time.Duration
	// PolicyLB is LB, or more where a package that never ran, which runs whole in one
	// process (runner/list.go), takes longer on the fastest host from the first start.
	PolicyLB time.Duration

	Runs      [][]int // how many times each test ran to its end, as w.Pkgs[i].Tests[j]
	Batches   int     // test processes started (those of lost workers too)
	Retried   int     // tests handed out again after their worker was lost
	WholePkgs int     // packages that ran unlisted, in one process (never ran before)
	Unknown   int     // tests with no recorded duration
	LastStart time.Duration
	// LongestBatch is the longest batch, as its worker took it (start-up included).
	LongestBatch time.Duration
	// LongestEnd is when the longest test ended, and LongestSlow its host's factor.
	LongestEnd  time.Duration
	LongestSlow float64
	// WholeMax is the work of the largest package that ran unlisted (start-up and tests):
	// it runs in one process, so the makespan is at least this after the first worker
	// came up.
	WholeMax   time.Duration
	Calls      int           // calls into the scheduler package during the run
	PlanCPU    time.Duration // process CPU time inside Plan's calls
	DurCPU     time.Duration // process CPU time inside Durations' calls (estimates, records)
	SchedWall  time.Duration // real time inside both
	PeakHeap   uint64        // bytes of heap objects (garbage too), sampled after every event
	PeakLive   uint64        // bytes of the heap live at a GC, the largest
	SchedMem   uint64        // bytes the durations store and the plan hold at the start
	Tests      int
	Pkgs       int
	TotalWork  time.Duration // Σt
	LongestDur time.Duration // t_max
}

// ErrStuck is a simulation that cannot end: every worker waits and nothing is in flight, or
// every worker was lost with work left.
var ErrStuck = errors.New("sim: the run cannot end")

type state int

const (
	starting state = iota
	free           // its batch ended: it asks again at once
	waiting        // asked and got nothing: Next would block
	busy
	done
	dead
)

type kind int

const (
	evReady kind = iota
	evEnd
	evDeath
)

type event struct {
	at   time.Duration
	seq  int
	kind kind
	w    int
	gen  int // the worker's batch it is the end of
}

type events []event

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	if e[i].at != e[j].at {
		return e[i].at < e[j].at
	}
	return e[i].seq < e[j].seq
}
func (e events) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)   { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

type simWorker struct {
	Worker
	state state
	batch scheduler.Batch
	idx   []int // the batch's tests, as indexes into its package's tests, in run order
	start time.Duration
	gen   int
}

type sim struct {
	w       Workload
	plan    *scheduler.Plan
	durs    *scheduler.Durations
	pkgOf   map[string]int
	testOf  []map[string]int
	workers []simWorker
	q       events
	seq     int
	now     time.Duration
	res     *Result
	sample  []metrics.Sample
	waitBuf []int
	answers []answer
	// the first worker's start, the fastest host's factor
	minReady time.Duration
	minSlow  float64
}

// Run simulates the workload on the real scheduler.Plan, in virtual time: the plan is asked
// for work by each free worker, a batch takes its tests' true durations plus a process
// start-up, times its host's factor, and nothing sleeps.
func Run(w Workload) (*Result, error) {
	s := &sim{w: w, pkgOf: map[string]int{}, res: &Result{}}
	s.sample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	s.res.Runs = make([][]int, len(w.Pkgs))
	s.res.Pkgs = len(w.Pkgs)
	s.testOf = make([]map[string]int, len(w.Pkgs))
	base := liveHeap()
	// The durations file of the previous run: what it recorded.
	s.durs = scheduler.NewDurations()
	for i, p := range w.Pkgs {
		s.pkgOf[p.Path] = i
		s.res.Runs[i] = make([]int, len(p.Tests))
		s.testOf[i] = make(map[string]int, len(p.Tests))
		known := false
		for j, t := range p.Tests {
			s.testOf[i][t.Name] = j
			s.res.Tests++
			s.res.TotalWork += t.Dur
			s.res.LongestDur = max(s.res.LongestDur, t.Dur)
			if t.Known {
				s.durs.Record(p.Path, t.Name, t.Recorded)
				known = true
			} else {
				s.res.Unknown++
			}
		}
		if known {
			s.durs.RecordStartup(p.Path, p.RecordedStartup)
		}
	}
	s.bounds()
	ids := make([]string, len(w.Workers))
	for i, wk := range w.Workers {
		ids[i] = wk.ID
		s.workers = append(s.workers, simWorker{Worker: wk})
	}
	// The run: packages made as runner/list.go makes them, added to an open plan as the
	// pipeline adds them (runner/pipeline.go), here all of them at the start.
	var pkgs []scheduler.Package
	s.timed(&s.res.DurCPU, func() { pkgs = s.packages() })
	s.res.PolicyLB = max(s.res.LB, s.minReady+scale(s.res.WholeMax, s.minSlow))
	s.timed(&s.res.PlanCPU, func() {
		s.plan = scheduler.NewOpenPlan(scheduler.Load, len(w.Workers), ids)
		for _, p := range pkgs {
			s.plan.Add(p)
			s.res.Calls++
		}
		s.plan.Seal()
		s.res.Calls += 2
	})
	pkgs = nil
	if after := liveHeap(); after > base {
		s.res.SchedMem = after - base // the store and the plan, at the start
	}
	for i, wk := range s.workers {
		s.push(event{at: wk.Ready, kind: evReady, w: i})
		if wk.Dies > 0 {
			s.push(event{at: wk.Dies, kind: evDeath, w: i})
		}
	}
	s.samplePeak()
	for len(s.q) > 0 {
		e := heap.Pop(&s.q).(event)
		s.now = e.at
		wk := &s.workers[e.w]
		switch e.kind {
		case evReady:
			if wk.state == starting {
				s.ask([]int{e.w})
			}
		case evEnd:
			if wk.state != busy || wk.gen != e.gen {
				continue // its worker was lost meanwhile
			}
			s.end(e.w, len(wk.idx))
			s.res.Makespan = s.now
			s.ask(s.waiters(e.w)) // it asks again; the others wake up
		case evDeath:
			s.lose(e.w)
			s.ask(s.waiters(-1))
		}
		s.samplePeak()
	}
	left := 0
	for _, wk := range s.workers {
		if wk.state == waiting || wk.state == busy {
			left++
		}
	}
	var remaining int
	s.timed(&s.res.PlanCPU, func() { remaining = s.plan.Remaining() })
	if left > 0 || remaining > 0 {
		return s.res, fmt.Errorf("%w: %d workers wait, %d tests not handed out", ErrStuck, left, remaining)
	}
	return s.res, nil
}

// packages makes the scheduler's packages from the durations store as runner/list.go
// does (listOne, runsUnlisted, unlistedUnit, firstOf): a package that never ran runs
// unlisted, whole, in one process; one that ran is listed, each test estimated by its
// record or else its package's median, a test new to it first.
func (s *sim) packages() []scheduler.Package {
	out := make([]scheduler.Package, 0, len(s.w.Pkgs))
	for _, p := range s.w.Pkgs {
		sp := scheduler.Package{Path: p.Path}
		if !s.durs.Known(p.Path) {
			sp.Whole, sp.NoSplit = true, true
			_, sp.Startup = s.durs.Estimates(p.Path, nil)
			s.res.WholePkgs++
			work := p.Startup
			for _, t := range p.Tests {
				work += t.Dur
			}
			s.res.WholeMax = max(s.res.WholeMax, work)
			out = append(out, sp)
			s.res.Calls += 2
			continue
		}
		names := make([]string, len(p.Tests))
		for j, t := range p.Tests {
			names[j] = t.Name
		}
		est, startup := s.durs.Estimates(p.Path, names)
		sp.Startup = startup
		for j, n := range names {
			first := 0
			if !s.durs.HasTest(p.Path, n) {
				first = 1
			}
			sp.Tests = append(sp.Tests, scheduler.Test{Name: n, Est: est[j], First: first})
		}
		s.res.Calls += 2 + len(names)
		out = append(out, sp)
	}
	return out
}

func (s *sim) push(e event) {
	e.seq = s.seq
	s.seq++
	heap.Push(&s.q, e)
}

// timed runs f, adding the process CPU time it took to *into and its real time to SchedWall.
func (s *sim) timed(into *time.Duration, f func()) {
	c0, t0 := cpuTime(), time.Now()
	f()
	*into += cpuTime() - c0
	s.res.SchedWall += time.Since(t0)
}

func (s *sim) samplePeak() {
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() == metrics.KindUint64 {
		s.res.PeakHeap = max(s.res.PeakHeap, s.sample[0].Value.Uint64())
	}
	if s.sample[1].Value.Kind() == metrics.KindUint64 {
		s.res.PeakLive = max(s.res.PeakLive, s.sample[1].Value.Uint64())
	}
}

// waiters are the workers blocked in Next, in a fixed order: each Finish or Leave wakes
// them all, and each asks again, as the runner's goroutines do (runner/drive.go workLoop).
// With first >= 0, worker first comes before them. (The slice is reused: the simulation's
// garbage would count in the peak heap.)
func (s *sim) waiters(first int) []int {
	out := s.waitBuf[:0]
	if first >= 0 {
		out = append(out, first)
	}
	for i := range s.workers {
		if s.workers[i].state == waiting {
			out = append(out, i)
		}
	}
	s.waitBuf = out
	return out
}

// ask lets each of ws ask the plan for a batch, in order, and starts what they get.
func (s *sim) ask(ws []int) {
	got := slices.Grow(s.answers[:0], len(ws))[:len(ws)]
	s.answers = got
	s.timed(&s.res.PlanCPU, func() {
		for k, i := range ws {
			got[k].b, got[k].ok, got[k].done = s.plan.TryNext(s.workers[i].ID)
		}
	})
	s.res.Calls += len(ws)
	for k, i := range ws {
		wk := &s.workers[i]
		a := got[k]
		got[k] = answer{} // let the batch go
		switch {
		case a.ok:
			s.begin(i, a.b)
		case a.done:
			wk.state = done
		default:
			wk.state = waiting
		}
	}
}

type answer struct {
	b        scheduler.Batch
	ok, done bool
}

// begin starts batch b on worker i: its end is an event.
func (s *sim) begin(i int, b scheduler.Batch) {
	wk := &s.workers[i]
	pi, ok := s.pkgOf[b.Package]
	if !ok {
		panic("sim: a batch of an unknown package " + b.Package)
	}
	p := s.w.Pkgs[pi]
	wk.idx = wk.idx[:0]
	if b.Whole {
		for j := range p.Tests {
			wk.idx = append(wk.idx, j)
		}
	} else {
		for _, n := range b.Tests {
			wk.idx = append(wk.idx, s.testOf[pi][n])
		}
		slices.Sort(wk.idx) // -test.run runs them in the binary's order
	}
	d := p.Startup
	for _, j := range wk.idx {
		d += p.Tests[j].Dur
	}
	wk.state, wk.batch, wk.start = busy, b, s.now
	wk.gen++
	s.res.Batches++
	s.res.LastStart = s.now
	s.res.LongestBatch = max(s.res.LongestBatch, scale(d, wk.Slow))
	s.push(event{at: s.now + scale(d, wk.Slow), kind: evEnd, w: i, gen: wk.gen})
}

// end settles the first n tests of worker i's batch (all of them: its process ended) and
// gives the batch back with the others to run again.
func (s *sim) end(i, n int) {
	wk := &s.workers[i]
	pi := s.pkgOf[wk.batch.Package]
	p := s.w.Pkgs[pi]
	var retry []string
	for _, j := range wk.idx[n:] {
		retry = append(retry, p.Tests[j].Name)
	}
	s.timed(&s.res.DurCPU, func() {
		for _, j := range wk.idx[:n] {
			s.durs.Record(p.Path, p.Tests[j].Name, scale(p.Tests[j].Dur, wk.Slow))
		}
	})
	s.res.Calls += n + 1
	at := wk.start + scale(p.Startup, wk.Slow)
	for _, j := range wk.idx[:n] {
		s.res.Runs[pi][j]++
		at += scale(p.Tests[j].Dur, wk.Slow)
		if p.Tests[j].Dur == s.res.LongestDur {
			s.res.LongestEnd, s.res.LongestSlow = at, wk.Slow
		}
	}
	s.res.Retried += len(retry)
	b := wk.batch
	if b.Whole && len(retry) > 0 {
		// The runner lists a whole package whose process died (runner/list.go listLate):
		// what it did not get to runs again by name.
		b.Whole = false
		for _, j := range wk.idx {
			b.Tests = append(b.Tests, p.Tests[j].Name)
		}
	}
	s.timed(&s.res.PlanCPU, func() {
		if len(retry) == 0 {
			// Its process ran to its end: the runner tells the plan how long it took
			// (runner/drive.go workLoop).
			s.plan.Ran(wk.ID, wk.batch, s.now-wk.start)
		}
		s.plan.Finish(wk.ID, b, retry)
	})
	s.res.Calls++
	wk.state = free
}

// lose takes worker i away: the tests of its batch that had not ended run again elsewhere,
// through the plan's retry path, as runner/drive.go workLoop gives them back.
func (s *sim) lose(i int) {
	wk := &s.workers[i]
	if wk.state == busy {
		p := s.w.Pkgs[s.pkgOf[wk.batch.Package]]
		at := wk.start + scale(p.Startup, wk.Slow)
		n := 0
		for _, j := range wk.idx {
			at += scale(p.Tests[j].Dur, wk.Slow)
			if at > s.now {
				break
			}
			n++
		}
		s.end(i, n)
	}
	if wk.state != done {
		s.timed(&s.res.PlanCPU, func() { s.plan.Leave(wk.ID) })
		s.res.Calls++
	}
	wk.state = dead
}

// bounds computes LB and PlainLB.
func (s *sim) bounds() {
	var work, longest time.Duration
	for _, p := range s.w.Pkgs {
		work += p.Startup
		for _, t := range p.Tests {
			work += t.Dur
			longest = max(longest, p.Startup+t.Dur)
		}
	}
	n := len(s.w.Workers)
	s.res.PlainLB = max(s.res.TotalWork/time.Duration(n), longest)
	if n == 0 {
		return
	}
	minReady, minSlow := s.w.Workers[0].Ready, s.w.Workers[0].Slow
	for _, wk := range s.w.Workers {
		minReady, minSlow = min(minReady, wk.Ready), min(minSlow, wk.Slow)
	}
	// The smallest T by which the workers' capacity holds the work.
	capacity := func(t time.Duration) float64 {
		var c float64
		for _, wk := range s.w.Workers {
			end := t
			if wk.Dies > 0 {
				end = min(end, wk.Dies)
			}
			if end > wk.Ready {
				c += float64(end-wk.Ready) / wk.Slow
			}
		}
		return c
	}
	lo, hi := time.Duration(0), time.Duration(1)
	for capacity(hi) < float64(work) {
		hi *= 2
		if hi > time.Duration(math.MaxInt64/4) {
			break // the workers die before they can do it all: no area bound
		}
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if capacity(mid) >= float64(work) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	area := lo
	long := minReady + scale(longest, minSlow)
	s.minReady, s.minSlow = minReady, minSlow
	s.res.LB, s.res.LBKind = area, "area"
	if long > area {
		s.res.LB, s.res.LBKind = long, "longest"
	}
}

// liveHeap collects garbage and returns the bytes of the heap objects left.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func scale(d time.Duration, f float64) time.Duration {
	if f == 1 {
		return d
	}
	return time.Duration(float64(d) * f)
}
