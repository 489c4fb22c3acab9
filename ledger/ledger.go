// Package ledger settles a godist run's results. Every event of the run passes through one
// Ledger, the only owner of result state: it writes each package's start and its single
// terminal action per scope (the whole run in load mode, one gateway in each mode), lets a
// test end once per run of it, and hands everything, in order, to the run's observers.
//
// What work remains is not the ledger's business: the scheduler's plan knows when a
// package has nothing left to run, and the runner then calls End. The ledger only keeps
// what was reported: whether a scope failed, was stopped, ran tests, and for how long.
//
// A Ledger is safe for concurrent use; observers are called one at a time, in the order
// of the calls that caused them.
package ledger

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/gotest"
)

// Observer watches a run. Calls come one at a time; an observer must not call back into
// the Ledger.
type Observer interface {
	// Event is one event of the go test -json stream, with its Worker.
	Event(e gotest.Event)
	// WorkerState is a gateway's state: "starting", "syncing", "ready", "busy", "lost",
	// "done".
	WorkerState(id, state string)
	// Note is a line of godist's own, for people ("godist: ...").
	Note(msg string)
	// SetTotal is the number of top-level test units planned (in each mode, times the
	// gateways).
	SetTotal(tests int)
}

// Process is one test process of a run, as an observer that draws the run sees it.
type Process struct {
	Worker  string    // the gateway it ran on
	Package string    // import path
	Start   time.Time // when the worker was asked to start it
	End     time.Time // when its exit came back
	// Tests are the top-level tests it was asked to run (nil: the whole package).
	Tests []string
	// Exit is how it ended: "ok", "exit status N", "signal: killed", or "lost" (its
	// gateway was lost, or it was cut short by the run's stop).
	Exit string
	// Bench is a process of the package's benchmarks.
	Bench bool
}

// ProcessObserver is an Observer that also wants each test process once it has ended
// (--timeline). Calls come one at a time, in the order the processes end.
type ProcessObserver interface {
	Process(p Process)
}

// Gateway is where a gateway of the run runs, as an observer that draws the run sees it.
type Gateway struct {
	ID string
	// Host is the host it runs on: what its spec names ("local" for popen, the host of
	// ssh= and socket=, the command of exec=; a via= gateway's hop's) until it is up, then
	// the hostname its worker reports (a local worker stays "local").
	Host string
}

// GatewayObserver is an Observer that also wants to know where each gateway runs. It is
// told of every gateway once, in the order of the command line, before any of them starts,
// and again once each is up.
type GatewayObserver interface {
	Gateway(g Gateway)
}

// Planned is one scope's work as the runner plans it, with the estimates the scheduler
// plans by (recorded durations; a test with no record gets its package's median).
type Planned struct {
	Scope Scope
	// Tests are the top-level tests to run, with their estimated durations; nil for a
	// package that runs whole, unlisted, or that leaves the run.
	Tests map[string]time.Duration
	// Whole is the estimate of a package that runs whole: its recorded duration, 0 when
	// none was recorded.
	Whole time.Duration
	// Gone is set when the scope leaves the run before it ran (its binary did not build
	// after all): it has no work.
	Gone bool
	// Expected is set for a package that is to run but is not built yet: it weighs Whole
	// (or what the others weigh) until it is planned, and is done once the package has a
	// result, wherever from (the build, the result cache, a worker).
	Expected bool
}

// PlanObserver is an Observer that also wants the work planned (the live view's progress
// and ETA). It is told of each scope once it is planned, and again with its new work when
// it is planned anew (its binary was linked anew) or leaves the run. A scope whose result
// came from the result cache is never planned. Observers must not change Tests.
type PlanObserver interface {
	Planned(p Planned)
}

// Events is an Observer that wants only the event stream.
type Events func(gotest.Event)

func (f Events) Event(e gotest.Event)     { f(e) }
func (Events) WorkerState(string, string) {}
func (Events) Note(string)                {}
func (Events) SetTotal(int)               {}

// Scope is where a package's result is settled: Worker is "" in load mode (one result per
// package) and the gateway's id in each mode (one result per package and gateway).
type Scope struct {
	Package, Worker string
}

// Options of a Ledger.
type Options struct {
	// Now is the clock of the events the ledger writes itself; nil means time.Now.
	Now func() time.Time
	// Coverage, if set, is asked at a scope's end for go test's "coverage: N% of
	// statements" text ("" for none). It is called without the ledger's lock held.
	Coverage func(ctx context.Context, s Scope) string
	// Ended, if set, is told of every scope's end, after it is written, with what was
	// written of it (the result cache keeps the scopes that passed). It is called without
	// the ledger's lock held.
	Ended func(s Scope, r Record)
}

// Record is what a scope's stream held, from after its start event to before its end
// (the "PASS", coverage and "ok"/"FAIL" lines and the package's terminal event).
type Record struct {
	Events  []gotest.Event
	Passed  bool
	Cover   string  // go test's coverage text, "" for none
	Elapsed float64 // seconds
}

// Ledger is the one owner of a run's result state.
type Ledger struct {
	mu     sync.Mutex
	obs    []Observer
	opts   Options
	scopes map[Scope]*entry
	failed bool // a package failed or did not build
}

type entry struct {
	started  bool
	start    time.Time
	failed   bool
	ending   bool // End was called: nothing more of it is written but its end
	procTime time.Duration
	stopped  string          // why it did not run to its end, if so
	noTests  bool            // a process of it said "no tests to run"
	ranTests bool            // a test of it ran
	tests    map[string]bool // tests running now (a run without its end yet)
	rec      []gotest.Event  // what was written of it, when Options.Ended is set
	cached   bool            // replayed from the result cache
}

// New returns a ledger that tells obs.
func New(opts Options, obs ...Observer) *Ledger {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Ledger{obs: obs, opts: opts, scopes: map[Scope]*entry{}}
}

// Expect registers a scope the run will settle. Only expected scopes are started and
// ended; events of others (the build's) pass through as they are.
func (l *Ledger) Expect(s Scope) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.scopes[s] == nil {
		l.scopes[s] = &entry{tests: map[string]bool{}}
	}
}

// Has reports whether s is expected.
func (l *Ledger) Has(s Scope) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.scopes[s] != nil
}

// Failed reports whether a package failed, or did not build, so far.
func (l *Ledger) Failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Emit writes an event. A test's terminal action is written once per run of it: a second
// one, with no run in between, is dropped. Package-level start and terminal events of an
// expected scope are the ledger's own to write (Start, End) and are dropped here; so is
// anything of a scope that has ended.
func (l *Ledger) Emit(s Scope, e gotest.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	en := l.scopes[s]
	if en == nil {
		// Not a scope of the run: the build's events (build failures, no test files).
		if (e.Action == gotest.ActionFail && e.Test == "") || e.Action == gotest.ActionBuildFail {
			l.failed = true
		}
		l.event(e)
		return
	}
	if en.ending {
		return
	}
	if e.Test == "" {
		if e.Action == gotest.ActionStart || gotest.IsTerminal(e.Action) {
			return
		}
		l.scopeEvent(en, e)
		return
	}
	switch {
	case e.Action == gotest.ActionRun:
		en.tests[e.Test] = true
		en.ranTests = true
	case gotest.IsTerminal(e.Action):
		if !en.tests[e.Test] {
			return // it ended already, or never ran here
		}
		delete(en.tests, e.Test)
	}
	l.startLocked(s, en, e.Worker)
	l.scopeEvent(en, e)
}

// scopeEvent writes an event of an expected scope, recording it for Options.Ended.
func (l *Ledger) scopeEvent(en *entry, e gotest.Event) {
	if l.opts.Ended != nil && !en.cached {
		en.rec = append(en.rec, e)
	}
	l.event(e)
}

// Replay writes a scope's stream as recorded before (a result from the cache: its events
// with the times of now), and its end as go test writes a cached result's:
// "ok  \tpkg\t(cached)". It reports false if the scope had started already.
func (l *Ledger) Replay(s Scope, worker string, r Record) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	en := l.scopes[s]
	if en == nil || en.started || en.ending {
		return false
	}
	l.startLocked(s, en, worker)
	en.cached = true // nothing of it is recorded again
	for _, e := range r.Events {
		t := l.opts.Now()
		e.Time = &t
		e.Package = s.Package
		if e.Test != "" && e.Action == gotest.ActionRun {
			en.ranTests = true
		}
		l.scopeEvent(en, e)
	}
	en.ending = true
	now := l.opts.Now()
	out := func(text string) {
		l.event(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: s.Package, Output: text, Worker: worker})
	}
	out("PASS\n")
	line := fmt.Sprintf("ok  \t%s\t(cached)", s.Package)
	if r.Cover != "" {
		out(r.Cover + "\n")
		line += "\t" + r.Cover
	}
	out(line + "\n")
	zero := 0.0
	l.event(gotest.Event{Time: &now, Action: gotest.ActionPass, Package: s.Package, Elapsed: &zero, Worker: worker})
	return true
}

// Running lists the tests of s that ran and have not ended, innermost first.
func (l *Ledger) Running(s Scope) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	en := l.scopes[s]
	if en == nil {
		return nil
	}
	var names []string
	for n := range en.tests {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		di, dj := strings.Count(names[i], "/"), strings.Count(names[j], "/")
		if di != dj {
			return di > dj
		}
		return names[i] < names[j]
	})
	return names
}

// Start writes the scope's start event, once, before anything else of it.
func (l *Ledger) Start(s Scope, worker string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if en := l.scopes[s]; en != nil && !en.ending {
		l.startLocked(s, en, worker)
	}
}

func (l *Ledger) startLocked(s Scope, en *entry, worker string) {
	if en.started {
		return
	}
	en.started = true
	en.start = l.opts.Now()
	t := en.start
	l.event(gotest.Event{Time: &t, Action: gotest.ActionStart, Package: s.Package, Worker: worker})
}

// Output writes package-level output of godist's own (a note on why something did not
// run) into the scope's stream.
func (l *Ledger) Output(s Scope, worker, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	en := l.scopes[s]
	if en == nil || en.ending {
		return
	}
	l.startLocked(s, en, worker)
	t := l.opts.Now()
	l.scopeEvent(en, gotest.Event{Time: &t, Action: gotest.ActionOutput, Package: s.Package, Output: text, Worker: worker})
}

// Fail marks the scope failed: its end will be FAIL.
func (l *Ledger) Fail(s Scope) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if en := l.scopes[s]; en != nil {
		en.failed = true
	}
}

// Stop marks the scope as not run to its end, and why ("-x stopped the run after 1
// failed test"): its end will be FAIL, never ok, and say so. The first reason stays.
func (l *Ledger) Stop(s Scope, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if en := l.scopes[s]; en != nil && en.stopped == "" {
		en.stopped = why
	}
}

// Stopped reports why the scope was stopped, "" if it was not.
func (l *Ledger) Stopped(s Scope) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if en := l.scopes[s]; en != nil {
		return en.stopped
	}
	return ""
}

// Process adds one of the scope's test processes: how long it ran (a package's Elapsed is
// its processes' time together, as go test reports its one process's), and whether it
// said "no tests to run" (go test's "[no tests to run]" is for a package where none ran).
func (l *Ledger) Process(s Scope, d time.Duration, saidNoTests bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if en := l.scopes[s]; en != nil {
		en.procTime += d
		en.noTests = en.noTests || saidNoTests
	}
}

// End writes the scope's terminal action, once: ok, FAIL, or FAIL for a scope stopped
// before its end. Later calls, and later events of the scope, are dropped.
func (l *Ledger) End(ctx context.Context, s Scope, worker string) {
	l.mu.Lock()
	en := l.scopes[s]
	if en == nil || en.ending {
		l.mu.Unlock()
		return
	}
	en.ending = true
	l.startLocked(s, en, worker)
	l.mu.Unlock()
	cover := ""
	if l.opts.Coverage != nil {
		// Merging counters takes a moment; nothing more of the scope can be written.
		cover = l.opts.Coverage(ctx, s)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now()
	el := roundMillis(en.procTime.Seconds())
	action, word, line := gotest.ActionPass, "PASS\n", fmt.Sprintf("ok  \t%s\t%.3fs", s.Package, el)
	if en.noTests && !en.ranTests {
		line += " [no tests to run]"
	}
	if en.failed || en.stopped != "" {
		action, word, line = gotest.ActionFail, "FAIL\n", fmt.Sprintf("FAIL\t%s\t%.3fs", s.Package, el)
		l.failed = true
	}
	out := func(text string) {
		l.event(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: s.Package, Output: text, Worker: worker})
	}
	if en.stopped != "" {
		// Not run to its end: never ok. The line says so, for people and for parsers.
		line += " [not run to the end: " + en.stopped + "]"
		out(gotest.StoppedPrefix + en.stopped + "\n")
	}
	out(word)
	if cover != "" {
		out(cover + "\n")
		line += "\t" + cover
	}
	out(line + "\n")
	l.event(gotest.Event{Time: &now, Action: action, Package: s.Package, Elapsed: &el, Worker: worker})
	if ended := l.opts.Ended; ended != nil {
		rec := Record{Events: en.rec, Passed: action == gotest.ActionPass, Cover: cover, Elapsed: el}
		en.rec = nil
		l.mu.Unlock()
		ended(s, rec)
		l.mu.Lock()
	}
}

// Started reports whether anything of the scope was written.
func (l *Ledger) Started(s Scope) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	en := l.scopes[s]
	return en != nil && en.started
}

// Drop closes a scope that never started without writing anything: go test -failfast
// reports nothing of the packages it did not start after a failure.
func (l *Ledger) Drop(s Scope) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if en := l.scopes[s]; en != nil && !en.started {
		en.ending = true
	}
}

// Scopes lists every expected scope.
func (l *Ledger) Scopes() []Scope {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Scope, 0, len(l.scopes))
	for s := range l.scopes {
		out = append(out, s)
	}
	return out
}

// Open lists the expected scopes that have not ended, sorted.
func (l *Ledger) Open() []Scope {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Scope
	for s, en := range l.scopes {
		if !en.ending {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Package != out[j].Package {
			return out[i].Package < out[j].Package
		}
		return out[i].Worker < out[j].Worker
	})
	return out
}

// ProcessEnded tells the observers that draw the run about one test process.
func (l *Ledger) ProcessEnded(p Process) {
	tell(l, func(o ProcessObserver) { o.Process(p) })
}

// Gateway tells the observers that draw the run where a gateway runs.
func (l *Ledger) Gateway(g Gateway) {
	tell(l, func(o GatewayObserver) { o.Gateway(g) })
}

// Planned tells the observers that want it a scope's planned work.
func (l *Ledger) Planned(p Planned) {
	tell(l, func(o PlanObserver) { o.Planned(p) })
}

// tell calls f, one at a time, with each observer that is also a T.
func tell[T any](l *Ledger, f func(T)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.obs {
		if t, ok := o.(T); ok {
			f(t)
		}
	}
}

// Note tells the observers a line of godist's own.
func (l *Ledger) Note(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.obs {
		o.Note(msg)
	}
}

// WorkerState tells the observers a gateway's state.
func (l *Ledger) WorkerState(id, state string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.obs {
		o.WorkerState(id, state)
	}
}

// SetTotal tells the observers how many test units are planned.
func (l *Ledger) SetTotal(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.obs {
		o.SetTotal(n)
	}
}

func (l *Ledger) event(e gotest.Event) {
	for _, o := range l.obs {
		o.Event(e)
	}
}

func roundMillis(s float64) float64 { return float64(int64(s*1000+0.5)) / 1000 }
