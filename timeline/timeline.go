// Package timeline draws a godist run (--timeline FILE.html): one self-contained HTML
// page, with a Gantt chart of the run (a lane per gateway, its start-up and sync, a bar
// per test process and its tests coloured by outcome), the run's critical path and each
// worker's idle time. The page loads nothing from anywhere: its styles are inline and the
// chart is SVG written here; its only script is a few lines that light up a package's
// processes on every lane while the pointer is on one of them.
//
// A Recorder is a ledger.Observer and ledger.ProcessObserver: the runner tells it of
// every event, gateway state and test process; Write draws what it was told.
package timeline

import (
	"io"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
)

// Outcomes of a test run, as the chart colours them.
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip"
	// Cut is a test that did not run to its end: the run's stop cut it short
	// (gotest.StoppedPrefix), or its process ended (lost, killed) before it did.
	Cut = "cut"
)

// Options of a Recorder.
type Options struct {
	// Now stamps gateway states as they arrive, and the run's origin (New); nil means
	// time.Now. Events and processes carry their own times.
	Now func() time.Time
	// Gateways are the run's gateway ids, in order: each gets a lane even if it never
	// started (everything came from the result cache). Lanes of other ids follow.
	Gateways []string
	// Title heads the page (the run's package patterns); "" for none.
	Title string
}

// Recorder collects a run for its timeline. It is safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	opts Options
	run  Run
	lane map[string]*Lane
	// open are the test runs of a worker's package not yet claimed by a process, in the
	// order they started; running indexes those without an end by name.
	open    map[procKey][]*Test
	running map[procKey]map[string]*Test
	cached  map[string]bool
}

var (
	_ ledger.Observer        = (*Recorder)(nil)
	_ ledger.ProcessObserver = (*Recorder)(nil)
)

type procKey struct{ worker, pkg string }

// Run is what a Recorder was told, as the chart draws it.
type Run struct {
	Title string
	// Origin is when the run began (the Recorder's creation); End the latest time seen.
	Origin, End time.Time
	Lanes       []*Lane
	// Cached counts the packages that came from the result cache: nothing of them ran.
	Cached int
}

// Lane is one gateway's part of the run.
type Lane struct {
	ID     string
	States []State // in order of arrival
	Procs  []*Proc // in order of their start
}

// State is a gateway state ("starting", "syncing", "ready", "busy", "lost", "done") and
// when it came.
type State struct {
	State string
	At    time.Time
}

// Proc is one test process.
type Proc struct {
	ledger.Process
	// Runs are the top-level test runs it held, in the order they started.
	Runs []*Test
}

// Test is one run of a top-level test.
type Test struct {
	Name       string
	Start, End time.Time // as the stream saw it (End: the process's end if it never ended)
	Elapsed    float64   // seconds, as the test binary reported it (0: none)
	Outcome    string    // Pass, Fail, Skip or Cut; "" while running
	stopped    bool      // its output held gotest.StoppedPrefix
}

// New returns an empty Recorder; the run's origin is now.
func New(opts Options) *Recorder {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Recorder{opts: opts, lane: map[string]*Lane{}, open: map[procKey][]*Test{},
		running: map[procKey]map[string]*Test{}, cached: map[string]bool{}}
	r.run.Title = opts.Title
	r.run.Origin = opts.Now()
	r.run.End = r.run.Origin
	for _, id := range opts.Gateways {
		r.laneOf(id)
	}
	return r
}

func (r *Recorder) laneOf(id string) *Lane {
	l := r.lane[id]
	if l == nil {
		l = &Lane{ID: id}
		r.lane[id] = l
		r.run.Lanes = append(r.run.Lanes, l)
	}
	return l
}

func (r *Recorder) seen(t time.Time) {
	if t.After(r.run.End) {
		r.run.End = t
	}
}

// Event takes one event of the stream: the runs of top-level tests are kept.
func (r *Recorder) Event(e gotest.Event) {
	if e.Worker == "" || e.Package == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	at := r.opts.Now()
	if e.Time != nil {
		at = *e.Time
	}
	r.seen(at)
	k := procKey{e.Worker, e.Package}
	if e.Test == "" {
		if e.Action == gotest.ActionOutput && strings.HasPrefix(e.Output, "ok  \t") && strings.Contains(e.Output, "\t(cached)") {
			// A replayed result: its tests did not run.
			delete(r.open, k)
			delete(r.running, k)
			r.cached[e.Package] = true
		}
		return
	}
	if strings.Contains(e.Test, "/") {
		return // subtests are their top-level test's
	}
	run := r.running[k]
	switch {
	case e.Action == gotest.ActionRun:
		t := &Test{Name: e.Test, Start: at}
		r.open[k] = append(r.open[k], t)
		if run == nil {
			run = map[string]*Test{}
			r.running[k] = run
		}
		run[e.Test] = t
	case e.Action == gotest.ActionCont:
		// A parallel test resumed: it runs from now.
		if t := run[e.Test]; t != nil {
			t.Start = at
		}
	case e.Action == gotest.ActionOutput:
		if t := run[e.Test]; t != nil && strings.HasPrefix(e.Output, gotest.StoppedPrefix) {
			t.stopped = true
		}
	case gotest.IsTerminal(e.Action):
		t := run[e.Test]
		if t == nil {
			return
		}
		delete(run, e.Test)
		t.End, t.Outcome = at, e.Action
		if t.stopped {
			t.Outcome = Cut
		}
		if e.Elapsed != nil {
			t.Elapsed = *e.Elapsed
		}
	}
}

// WorkerState records a gateway's state, stamped now.
func (r *Recorder) WorkerState(id, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Now()
	r.seen(now)
	l := r.laneOf(id)
	l.States = append(l.States, State{State: state, At: now})
}

// Note is ignored.
func (r *Recorder) Note(string) {}

// SetTotal is ignored.
func (r *Recorder) SetTotal(int) {}

// Process records a test process that ended, with the test runs its worker streamed for
// its package since the previous one ended (a gateway runs one process at a time).
func (r *Recorder) Process(p ledger.Process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen(p.End)
	k := procKey{p.Worker, p.Package}
	pr := &Proc{Process: p, Runs: r.open[k]}
	delete(r.open, k)
	delete(r.running, k)
	for _, t := range pr.Runs {
		if t.Outcome == "" {
			t.Outcome, t.End = Cut, p.End
		}
	}
	l := r.laneOf(p.Worker)
	i := len(l.Procs)
	for i > 0 && l.Procs[i-1].Start.After(p.Start) {
		i--
	}
	l.Procs = append(l.Procs, nil)
	copy(l.Procs[i+1:], l.Procs[i:])
	l.Procs[i] = pr
}

// Snapshot is the run as recorded so far: a copy that later calls do not change.
func (r *Recorder) Snapshot() Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	run := r.run
	run.Lanes = make([]*Lane, len(r.run.Lanes))
	for i, l := range r.run.Lanes {
		// A process and its runs do not change once it is recorded.
		run.Lanes[i] = &Lane{ID: l.ID, States: append([]State(nil), l.States...), Procs: append([]*Proc(nil), l.Procs...)}
	}
	run.Cached = len(r.cached)
	return run
}

// Write writes the timeline page of what the Recorder was told.
func (r *Recorder) Write(w io.Writer) error {
	return Write(w, r.Snapshot())
}
