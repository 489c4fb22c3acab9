package runner

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/deploy"
	"github.com/godist/godist/gateway"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
	"github.com/godist/godist/scheduler"
	"github.com/godist/godist/worker"
)

// batchOutcome is what a batch leaves to the plan.
type batchOutcome struct {
	retry  []string          // top-level tests to run again in a new process (a crash, a lost gateway)
	reruns []scheduler.Batch // failed tests to run again (--rerun-fails)
	lost   error             // the gateway was lost
	unrun  bool              // nothing of the batch ran: it goes back to the plan as it was
	// discard: it ran with a binary that go then replaced; what it did does not count.
	discard bool
	// elapsed is how long its process took, if it ran to its end and passed (the plan
	// learns the gateway's speed from it: scheduler.Plan.Ran); 0 otherwise.
	elapsed time.Duration
}

// runBatch runs one batch in one test process: it streams the process's events through
// the ledger, then judges how the process ended and settles what that says.
func (r *runner) runBatch(ctx context.Context, gw *gateway.Gateway, platform string, b scheduler.Batch) batchOutcome {
	s := r.scopeOf(b.Package, gw.ID)
	if !r.ledger.Has(s) {
		return batchOutcome{} // the build settled it for this gateway
	}
	tracef("batch %s on %s: %d test(s)", b.Package, gw.ID, len(b.Tests))
	defer tracef("batch %s on %s done", b.Package, gw.ID)
	bin := r.binFor(platform, b.Package)
	if bin == "" {
		r.ledger.Output(s, gw.ID, fmt.Sprintf("godist: %s: no %s test binary for this package\n", gw.ID, platform))
		r.ledger.Fail(s)
		return batchOutcome{}
	}
	// A binary an earlier run left, which go has not yet said is up to date: the process
	// runs now, its output is held back until go has.
	// Its batches of the first generation run with it; once go links it anew, the plan's
	// work is reset (a later generation) and runs with the new binary.
	sp := r.speculationOf(b.Package)
	if sp != nil && b.Gen == 0 {
		bin = sp.path
	} else {
		sp = nil
	}
	if sp == nil {
		r.ledger.Start(s, gw.ID)
	}
	if b.Attempt > 0 {
		// Said here, where it is known who runs it: the plan gives a re-run to a worker
		// other than the one it failed on (Batch.Avoid) when there is one.
		r.ledger.Note(fmt.Sprintf("godist: %s: running failed test %s of %s again (attempt %d of %d; it failed on %s)",
			gw.ID, strings.Join(b.Tests, " "), b.Package, b.Attempt+1, r.cfg.RerunFails+1, b.Avoid))
	}

	states := map[string]*testState{}
	runningTop := 0 // top-level tests running, not paused
	completed, noTests := false, false
	conv := gotest.NewConverter(b.Package, func(e gotest.Event) {
		e.Worker = gw.ID
		if e.Test == "" {
			if e.Action == gotest.ActionOutput && (e.Output == "PASS\n" || e.Output == "FAIL\n") {
				completed = true // the testing package finished its run: no crash
				return           // the package's end is the ledger's to write, once
			}
			if e.Action == gotest.ActionOutput && (strings.HasPrefix(e.Output, "ok  \t"+b.Package+"\t") || strings.HasPrefix(e.Output, "FAIL\t"+b.Package+"\t")) {
				return // one process's result line: the package's is the ledger's to write
			}
			if e.Action == gotest.ActionOutput && e.Output == "testing: warning: no tests to run\n" {
				noTests = true
			}
			if r.coverRoot != "" && e.Action == gotest.ActionOutput && coverageLine.MatchString(e.Output) && strings.HasPrefix(e.Output, "coverage: ") {
				return // one process's share; the package's merged figure comes at its end
			}
			r.ledger.Emit(s, e)
			return
		}
		st := states[e.Test]
		if st == nil {
			st = &testState{order: len(states)}
			states[e.Test] = st
		}
		if top := !strings.Contains(e.Test, "/"); top {
			// A top-level test that starts while another runs (not paused) was started by
			// it: that one calls testing.RunTests itself. Split, a -test.run would make its
			// tests vanish; the package stays in one process from now on.
			was := st.state == gotest.ActionRun || st.state == gotest.ActionCont
			if e.Action == gotest.ActionRun && runningTop > 0 {
				r.durations.KeepTogether(b.Package)
			}
			now := e.Action == gotest.ActionRun || e.Action == gotest.ActionCont
			switch {
			case now && !was:
				runningTop++
			case was && !now && e.Action != gotest.ActionOutput:
				runningTop--
			}
		}
		switch e.Action {
		case gotest.ActionRun:
			st.state, st.start = e.Action, time.Now()
		case gotest.ActionPause, gotest.ActionCont:
			st.state = e.Action
		case gotest.ActionPass, gotest.ActionFail, gotest.ActionSkip:
			st.state = e.Action
			if e.Elapsed != nil {
				st.elapsed = time.Duration(*e.Elapsed * float64(time.Second))
			}
			if !strings.Contains(e.Test, "/") && !b.Bench {
				r.durations.Record(b.Package, e.Test, st.elapsed)
			}
		}
		if r.lostEnded.drop(s, e) {
			return // it ended in a run on a gateway that was lost: said once already
		}
		r.ledger.Emit(s, e)
	}, time.Now)

	req := worker.Request{Path: bin, Args: r.testArgs(b), Dir: r.pkgInfo[b.Package].Dir, Env: r.testEnv(gw.ID), TestLog: r.results != nil}
	var base string // where its host has the tree, if remote
	if r.remoteGW[gw.ID] {
		// Its host has the tree (shipped at start); the binary goes now, once per host.
		var err error
		base, err = r.deploy.Tree(ctx, gw)
		if err == nil {
			req.Path, err = r.deploy.Binary(ctx, gw, "test binary of "+b.Package, bin)
		}
		if err != nil {
			// Nothing of it ran: the whole batch goes back, for another gateway.
			return batchOutcome{unrun: true, lost: err}
		}
		req.Dir = deploy.Dir(base, req.Dir)
	} else if dir := r.coverDir(s); dir != "" {
		req.Args = append(req.Args, "-test.gocoverdir="+dir)
	}
	if r.cfg.Timeout > 0 {
		req.KillAfter = r.cfg.Timeout + time.Minute
	}
	// Test processes share their host; a benchmark process has it to itself, as go test
	// runs benchmarks one at a time.
	unlock := r.lockHost(gw, b.Bench)
	start := time.Now()
	runCtx := r.runCtx
	out := func(p []byte) { conv.Write(p) }
	var stopHolding func() (live bool)
	if sp != nil {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithCancel(r.runCtx)
		defer cancel()
		out, stopHolding = r.hold(s, gw.ID, sp, conv, cancel)
	}
	exit, err := worker.Run(runCtx, gw, req, out)
	elapsed := time.Since(start)
	unlock()
	defer func() {
		p := ledger.Process{Worker: gw.ID, Package: b.Package, Start: start, End: start.Add(elapsed), Tests: b.Tests, Exit: "lost", Bench: b.Bench}
		if b.Whole {
			p.Tests = nil
		}
		if err == nil && exit != nil {
			p.Exit = "ok"
			if !exit.Success() {
				p.Exit = exit.String()
			}
		}
		r.ledger.ProcessEnded(p)
	}()
	if sp != nil && !stopHolding() {
		// Linked anew, or it no longer builds: this run of it does not count.
		return batchOutcome{discard: true}
	}
	if err != nil {
		r.markUncacheable(s)
		r.ledger.Process(s, elapsed, false)
		if why := r.stopReason(ctx); why != "" {
			// Stopped (-x, --maxfail, interrupted): what it was running did not run to the end.
			r.stopBatch(s, gw.ID, b, states, why)
			return batchOutcome{}
		}
		// Fate unknown: every unsettled test of the batch runs again elsewhere.
		r.listLate(ctx, &b)
		var retry []string
		for _, t := range b.Tests {
			if st := states[t]; st == nil || !gotest.IsTerminal(st.state) {
				retry = append(retry, t)
			}
		}
		r.lostEnded.add(s, retry, states)
		if len(topLevelIn(states, gotest.ActionFail)) > 0 {
			r.ledger.Fail(s)
		}
		if b.Whole || b.Bench {
			r.ledger.Output(s, gw.ID, fmt.Sprintf("godist: %s was lost while running this package: %v\n", gw.ID, err))
			r.ledger.Fail(s)
		}
		return batchOutcome{retry: retry, lost: err}
	}
	if req.TestLog {
		r.addTestLog(s, gw.ID, exit.TestLog, req.Dir, base)
	}
	conv.Exited(exitError(exit), elapsed)
	r.ledger.Process(s, elapsed, noTests)
	r.noteUnlisted(b.Package, states)

	if !completed && !exit.Success() {
		r.listLate(ctx, &b) // died: what it did not get to runs again, by name
	}
	if b.Whole {
		r.countUnlisted(b.Package, states)
	}
	rerun := b.Attempt < r.cfg.RerunFails && r.stopReason(ctx) == ""
	v := judge(b, processEnd{ExitOK: exit.Success(), Completed: completed}, states, rerun, gw.ID)
	for _, name := range v.Passed {
		r.endTest(s, gw.ID, b.Package, name, states[name], gotest.ActionPass, "")
	}
	for _, name := range v.Crashed {
		r.endTest(s, gw.ID, b.Package, name, states[name], gotest.ActionFail,
			fmt.Sprintf("=== godist: test process %s on %s while %s was running\n", exit, gw.ID, name))
	}
	if len(v.Retry) > 0 {
		r.ledger.Note(fmt.Sprintf("godist: %s: the test process of %s ended (%s); running %d test(s) again in a new process", gw.ID, b.Package, exit, len(v.Retry)))
	}
	// A test process's start-up cost: its time less its top-level tests' time.
	if exit.Success() && (len(b.Tests) > 0 || b.Whole) {
		var testTime time.Duration
		for name, st := range states {
			if !strings.Contains(name, "/") {
				testTime += st.elapsed
			}
		}
		r.durations.RecordStartup(b.Package, max(elapsed-testTime, 0))
	}
	if b.Attempt > 0 {
		for _, t := range topLevelIn(states, gotest.ActionPass) {
			r.ledger.Note(fmt.Sprintf("godist: %s.%s passed on attempt %d (on %s): flaky", b.Package, t, b.Attempt+1, gw.ID))
		}
	}
	if v.Failed {
		r.ledger.Fail(s)
		if r.cfg.Failfast {
			r.plan.Stop(gw.ID, b.Package) // -failfast: nothing more of the package starts
		}
	}
	r.countFailures(v.FinalFails)
	bo := batchOutcome{retry: v.Retry, reruns: v.Reruns}
	if exit.Success() && completed && len(v.Retry) == 0 {
		bo.elapsed = elapsed
	}
	return bo
}

// hold is the output function of a process that runs a speculative binary: its output is
// held back until go says whether the binary is up to date; then it is written, and what
// follows is written as it comes (up to date), or the process is killed (kill) and its
// output dropped (linked anew, or no longer building). stop, once the process has ended,
// waits for go's answer if need be and reports whether the run counts.
func (r *runner) hold(s ledger.Scope, worker string, sp *speculation, conv *gotest.Converter, kill func()) (out func([]byte), stop func() (live bool)) {
	var mu sync.Mutex
	var held bytes.Buffer
	live, dead := false, false
	ended := make(chan struct{})
	decided := make(chan struct{})
	go func() {
		defer close(decided)
		select {
		case <-sp.done:
		case <-ended:
			<-sp.done // the process ended first: go's answer still decides
		}
		mu.Lock()
		defer mu.Unlock()
		if _, ok := sp.resolved(); !ok {
			dead = true
			kill()
			return
		}
		r.ledger.Start(s, worker)
		conv.Write(held.Bytes())
		held.Reset()
		live = true
	}()
	out = func(p []byte) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case live:
			conv.Write(p)
		case !dead:
			held.Write(p)
		}
	}
	stop = func() bool {
		close(ended)
		<-decided
		return live
	}
	return out, stop
}

// noteUnlisted remembers a package that ran top-level tests its binary does not list: a
// test that runs testing.RunTests itself (testify's suite tests do). Split, its batches
// would get a -test.run that the nested RunTests also applies, and those tests would
// vanish; so it stays in one process from now on (scheduler.Durations.Together).
func (r *runner) noteUnlisted(pkg string, states map[string]*testState) {
	r.listMu.Lock()
	names := r.listedNames[pkg]
	r.listMu.Unlock()
	if names == nil {
		return
	}
	for name := range states {
		if !strings.Contains(name, "/") && !names[name] {
			r.durations.KeepTogether(pkg)
			return
		}
	}
}

// countUnlisted adds to the reporters' total the top-level tests that a package run
// unlisted showed beyond the one unit it was planned as.
func (r *runner) countUnlisted(pkg string, states map[string]*testState) {
	r.listMu.Lock()
	_, ok := r.unlisted[pkg]
	r.listMu.Unlock()
	n := len(topLevelIn(states, gotest.ActionPass)) + len(topLevelIn(states, gotest.ActionFail)) + len(topLevelIn(states, gotest.ActionSkip))
	if !ok || n <= 1 {
		return
	}
	r.totalMu.Lock()
	r.total += n - 1
	total := r.total
	r.totalMu.Unlock()
	r.ledger.SetTotal(total)
}

// endTest writes the end of a test the process left running, after a line saying why.
func (r *runner) endTest(s ledger.Scope, worker, pkg, name string, st *testState, action, why string) {
	now := time.Now()
	el := now.Sub(st.start).Seconds()
	if why != "" {
		r.ledger.Emit(s, gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: pkg, Test: name, Worker: worker, Output: why})
	}
	r.ledger.Emit(s, gotest.Event{Time: &now, Action: action, Package: pkg, Test: name, Elapsed: &el, Worker: worker})
	st.state = action
}

// stopBatch settles a batch whose process the run's stop (-x, --maxfail, an interrupt)
// killed: the tests it was running did not run to the end, so they fail, saying so in a
// line of their own (gotest.StoppedPrefix), and the package is stopped; the failures it
// had before are final.
func (r *runner) stopBatch(s ledger.Scope, worker string, b scheduler.Batch, states map[string]*testState, why string) {
	var running []string
	for name, st := range states {
		if st.state == gotest.ActionRun || st.state == gotest.ActionCont || st.state == gotest.ActionPause {
			running = append(running, name)
		}
	}
	sortByDepthThenOrder(running, states)
	fails := len(topLevelIn(states, gotest.ActionFail))
	for _, name := range running {
		r.endTest(s, worker, b.Package, name, states[name], gotest.ActionFail, gotest.StoppedPrefix+why+"\n")
	}
	if fails > 0 {
		r.ledger.Fail(s)
	}
	r.ledger.Stop(s, why)
	r.countFailures(fails)
}

// exitError is how the process ended, as gotest.Converter.Exited takes it: as go test
// does, it prints the error only for a process that printed nothing or did not exit by
// itself (a signal, a kill, no start).
func exitError(e *worker.Exit) error {
	if e.Success() {
		return nil
	}
	return processExit{e}
}

// processExit is a process's end that was not a success.
type processExit struct{ e *worker.Exit }

func (p processExit) Error() string { return p.e.String() }

// Exited reports whether the process exited by itself, as *exec.ExitError's does.
func (p processExit) Exited() bool {
	return p.e.Code >= 0 && p.e.Signal == "" && p.e.Killed == "" && p.e.Err == ""
}

// lockHost holds gw's host for a test process: shared, or alone for a benchmark process.
// It returns the release.
func (r *runner) lockHost(gw *gateway.Gateway, alone bool) func() {
	if r.cfg.Bench == "" {
		return func() {}
	}
	host := gw.Info.Hostname
	if !r.remoteGW[gw.ID] {
		host = "" // the local machine
	}
	r.hostMu.Lock()
	if r.hostLocks == nil {
		r.hostLocks = map[string]*sync.RWMutex{}
	}
	l := r.hostLocks[host]
	if l == nil {
		l = &sync.RWMutex{}
		r.hostLocks[host] = l
	}
	r.hostMu.Unlock()
	if alone {
		l.Lock()
		return l.Unlock
	}
	l.RLock()
	return l.RUnlock
}

// testArgs are the flags of one test process.
func (r *runner) testArgs(b scheduler.Batch) []string {
	args := []string{"-test.v=test2json", "-test.paniconexit0"}
	r.listMu.Lock()
	all := len(b.Tests) == r.listed[b.Package]
	r.listMu.Unlock()
	switch {
	case b.Bench:
		// The package's benchmarks, after its tests (which ran in processes of their own).
		args = append(args, "-test.run=^$", "-test.bench="+r.cfg.Bench)
	case b.Whole:
		if run := r.runFor(b.Package); run != "" {
			args = append(args, "-test.run="+run)
		}
	case b.Run != "":
		args = append(args, "-test.run="+b.Run)
	case r.runFor(b.Package) == "" && all && !b.Retry:
		// The whole package in one process, as go test runs it: no -test.run, which a test
		// that calls testing.RunTests itself (testify's suite tests) would also see.
	default:
		args = append(args, "-test.run="+gotest.RunPattern(r.runFor(b.Package), b.Tests))
	}
	if r.cfg.Skip != "" {
		args = append(args, "-test.skip="+r.cfg.Skip)
	}
	if r.cfg.Timeout > 0 {
		args = append(args, "-test.timeout="+r.cfg.Timeout.String())
	}
	if r.cfg.Count > 0 {
		args = append(args, "-test.count="+strconv.Itoa(r.cfg.Count))
	}
	if r.cfg.Short {
		args = append(args, "-test.short")
	}
	if r.cfg.Failfast {
		args = append(args, "-test.failfast")
	}
	if r.cfg.Shuffle != "" {
		args = append(args, "-test.shuffle="+r.cfg.Shuffle)
	}
	args = append(args, r.cfg.TestFlags...)
	return append(args, r.cfg.TestArgs...)
}

// testEnv is the environment of a test process on gateway id: the worker variables, and
// as go test gives it, $GOROOT/bin first in PATH where the go command's GOROOT is at hand
// (on this machine). PWD, the package directory, is set where the process starts.
func (r *runner) testEnv(id string) []string {
	env := r.workerEnv(id)
	if r.gorootBin != "" && !r.remoteGW[id] {
		path := os.Getenv("PATH")
		if path != "" {
			path = string(os.PathListSeparator) + path
		}
		env = append(env, "PATH="+r.gorootBin+path)
	}
	return env
}

// workerEnv is the environment every test process sees.
func (r *runner) workerEnv(id string) []string {
	return []string{"GODIST_WORKER=" + id, "GODIST_WORKER_COUNT=" + strconv.Itoa(r.nworkers), "GODIST_TESTRUNUID=" + r.uid}
}

// endedSubtests are the subtests that ended (and were reported) in a run of their
// top-level test on a gateway that was lost before the test itself ended: the test runs
// again elsewhere, and the new run's events of those subtests are dropped, so that each
// still ends once. A top-level test's entries go when it ends (a --rerun-fails attempt
// after that reports its subtests again, as a new run). Safe for concurrent use.
type endedSubtests struct {
	mu sync.Mutex
	m  map[ledger.Scope]map[string]bool // scope -> subtest names
}

// add records the subtests of the tests of retry that ended in states.
func (x *endedSubtests) add(s ledger.Scope, retry []string, states map[string]*testState) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for name, st := range states {
		top, _, sub := strings.Cut(name, "/")
		if !sub || !gotest.IsTerminal(st.state) || !slices.Contains(retry, top) {
			continue
		}
		if x.m == nil {
			x.m = map[ledger.Scope]map[string]bool{}
		}
		if x.m[s] == nil {
			x.m[s] = map[string]bool{}
		}
		x.m[s][name] = true
	}
}

// drop reports whether e is an event of a subtest that ended before, in a lost run; a
// top-level test's end clears its subtests.
func (x *endedSubtests) drop(s ledger.Scope, e gotest.Event) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	ended := x.m[s]
	if len(ended) == 0 {
		return false
	}
	if !strings.Contains(e.Test, "/") {
		if gotest.IsTerminal(e.Action) {
			for name := range ended {
				if strings.HasPrefix(name, e.Test+"/") {
					delete(ended, name)
				}
			}
		}
		return false
	}
	return ended[e.Test]
}
