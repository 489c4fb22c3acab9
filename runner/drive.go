package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/scheduler"
	"github.com/godist/godist/worker"
	"github.com/godist/godist/xspec"
)

func hashString(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// drive starts the gateways concurrently and runs one worker loop per gateway until the
// plan is done. A gateway that fails to start or is lost gives its work back.
func (r *runner) drive(ctx context.Context, gws []xspec.Gateway) {
	group := gateway.NewGroup(gateway.Options{Executable: r.cfg.Executable})
	defer group.Terminate(5 * time.Second)
	var wg sync.WaitGroup
	for _, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.workerState(g.ID, "starting")
			gw, err := group.StartWith(ctx, g.ID, g.Spec, r.workerEnv(g.ID))
			if err != nil {
				r.workerState(g.ID, "lost")
				r.note("godist: " + err.Error())
				if n := r.plan.Abandon(g.ID); n > 0 {
					r.abandonScope(g.ID)
				}
				return
			}
			if r.remoteGW[g.ID] {
				r.workerState(g.ID, "syncing")
				if _, err := r.prepareRemote(ctx, gw); err != nil {
					r.note("godist: " + err.Error())
					gw.Close()
					r.plan.Leave(g.ID)
					r.abandon(g.ID)
					return
				}
			}
			r.workerState(g.ID, "ready")
			// A local worker that dies is started again (its tests went back to the queue);
			// a remote one is not: whatever killed it would likely do it again.
			for restarts := 0; ; restarts++ {
				lost := r.workLoop(ctx, gw, platformOf(g.Spec))
				gw.Close()
				if !lost || ctx.Err() != nil || g.Spec.Type != xspec.TypePopen || g.Spec.Via != "" || restarts == maxRestarts {
					if lost {
						r.abandon(g.ID)
					}
					return
				}
				if gw, err = group.StartWith(ctx, g.ID, g.Spec, r.workerEnv(g.ID)); err != nil {
					r.note("godist: restarting " + g.ID + ": " + err.Error())
					r.abandon(g.ID)
					return
				}
				r.note("godist: " + g.ID + " started again")
				r.workerState(g.ID, "ready")
			}
		}()
	}
	wg.Wait()
}

// maxRestarts is how often a lost local worker is started again.
const maxRestarts = 3

// abandon gives up a lost gateway: in each mode its remaining work cannot go elsewhere.
func (r *runner) abandon(id string) {
	if r.plan.Abandon(id) > 0 || r.cfg.Mode == scheduler.Each {
		r.abandonScope(id)
	}
}

// workLoop runs batches on one gateway until the plan has none left for it (false) or the
// gateway is lost (true; the batch it held went back to the queue).
func (r *runner) workLoop(ctx context.Context, gw *gateway.Gateway, platform string) bool {
	for {
		b, ok := r.plan.Next(gw.ID)
		if !ok {
			r.workerState(gw.ID, "done")
			return false
		}
		if ctx.Err() != nil {
			r.plan.Finish(gw.ID, b, nil)
			return false
		}
		r.workerState(gw.ID, "busy")
		out := r.runBatch(ctx, gw, platform, b)
		if lostErr := out.lost; lostErr != nil {
			// The gateway is gone: the batch's unsettled tests go back to the others.
			r.plan.Finish(gw.ID, b, out.retry)
			r.plan.Leave(gw.ID)
			r.workerState(gw.ID, "lost")
			if ctx.Err() == nil {
				r.note(fmt.Sprintf("godist: gateway %s lost: %v", gw.ID, lostErr))
			}
			return true
		}
		r.plan.Finish(gw.ID, b, out.retry, out.reruns...)
		r.workerState(gw.ID, "ready")
	}
}

// testState is what one process showed of one test.
type testState struct {
	state   string // "run", "pause", "cont" or a terminal action
	start   time.Time
	elapsed time.Duration // from its terminal event
	order   int
}

// batchOutcome is what a batch leaves to do.
type batchOutcome struct {
	retry  []string          // top-level tests to run again in a new process (a crash, a lost gateway)
	reruns []scheduler.Batch // failed tests to run again (--rerun-fails)
	lost   error             // the gateway was lost
}

// runBatch runs one batch in one test process and settles what it can.
func (r *runner) runBatch(ctx context.Context, gw *gateway.Gateway, platform string, b scheduler.Batch) batchOutcome {
	scope := ""
	if r.cfg.Mode == scheduler.Each {
		scope = gw.ID
	}
	key := scopeKey(b.Package, scope)
	if !r.hasScope(key) {
		return batchOutcome{} // the build settled it for this gateway
	}
	bin := r.bins[platform][b.Package]
	if bin == "" {
		r.note(fmt.Sprintf("godist: %s: no %s test binary for %s", gw.ID, platform, b.Package))
		r.settle(key, gw.ID, unitsOf(b), true, "")
		return batchOutcome{}
	}
	r.startPackage(key, gw.ID)

	states := map[string]*testState{}
	order := 0
	finalPhase := false
	completed := false
	noTests, ranTest := false, false
	conv := gotest.NewConverter(b.Package, func(e gotest.Event) {
		e.Worker = gw.ID
		if e.Test == "" {
			// Package-level events: the run's own start and end are the runner's to write,
			// once per package; each process's "PASS"/"FAIL" lines would repeat them.
			if finalPhase || e.Action == gotest.ActionStart || gotest.IsTerminal(e.Action) {
				return
			}
			if e.Action == gotest.ActionOutput && (e.Output == "PASS\n" || e.Output == "FAIL\n") {
				completed = true // the testing package finished its run: no crash
				return
			}
			if e.Action == gotest.ActionOutput && e.Output == "testing: warning: no tests to run\n" {
				noTests = true
			}
			if r.coverRoot != "" && e.Action == gotest.ActionOutput && coverageLine.MatchString(e.Output) && strings.HasPrefix(e.Output, "coverage: ") {
				return // one process's share; the package's merged figure comes at its end
			}
			r.emit(e)
			return
		}
		st := states[e.Test]
		if st == nil {
			st = &testState{order: order}
			order++
			states[e.Test] = st
		}
		switch e.Action {
		case gotest.ActionRun:
			st.state, st.start = e.Action, time.Now()
			ranTest = true
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
		r.emit(e)
	}, time.Now)

	args := r.testArgs(b)
	req := worker.Request{Path: bin, Args: args, Dir: r.pkgInfo[b.Package].Dir, Env: r.testEnv(gw.ID)}
	if r.remoteGW[gw.ID] {
		// Its host has the tree (prepared at start); the binary goes now, once per host.
		st, err := r.prepareRemote(ctx, gw)
		if err == nil {
			req.Path, err = r.remoteBinary(ctx, gw, st, b.Package, bin)
		}
		if err != nil {
			retry := b.Tests
			if b.Whole || b.Bench {
				// Nothing of it ran; a Whole or benchmark batch has no tests to re-queue.
				r.settle(key, gw.ID, 1, true, fmt.Sprintf("godist: %s could not receive the test binary: %v\n", gw.ID, err))
				retry = nil
			}
			return batchOutcome{retry: retry, lost: err}
		}
		req.Dir = st.remoteDir(req.Dir)
	} else if dir := r.coverDir(key); dir != "" {
		req.Args = append(req.Args, "-test.gocoverdir="+dir)
	}
	if r.cfg.Timeout > 0 {
		req.KillAfter = r.cfg.Timeout + time.Minute
	}
	// Test processes share their host; a benchmark process has it to itself, as go test
	// runs benchmarks one at a time.
	unlock := r.lockHost(gw, b.Bench)
	start := time.Now()
	exit, err := worker.Run(r.runCtx, gw, req, func(p []byte) { conv.Write(p) })
	elapsed := time.Since(start)
	unlock()
	r.addProcessTime(key, elapsed)
	if err != nil && r.stopReason(ctx) != "" {
		// Stopped (-x, --maxfail, interrupted): what it was running did not run to the end.
		finalPhase = true
		r.stopBatch(ctx, key, gw.ID, b, states)
		return batchOutcome{}
	}
	if err != nil {
		// Fate unknown: every unsettled test of the batch runs again elsewhere.
		finalPhase = true
		var retry []string
		for _, t := range b.Tests {
			if st := states[t]; st == nil || !gotest.IsTerminal(st.state) {
				retry = append(retry, t)
			}
		}
		r.settleSettled(key, gw.ID, b, states)
		if b.Whole || b.Bench {
			r.settle(key, gw.ID, 1, true, fmt.Sprintf("godist: %s was lost while running this package: %v\n", gw.ID, err))
		}
		return batchOutcome{retry: retry, lost: err}
	}
	finalPhase = true
	conv.Exited(exitError(exit), elapsed)
	r.markNoTests(key, noTests, ranTest)

	// A process that exited 0 after the testing package's final PASS ran to its end: what
	// still shows as running there (benchmarks, which test2json never ends, or a test of a
	// nested testing.RunTests) passed. Otherwise, tests that started and never ended were
	// running when the process died: they fail, innermost first, keeping their output.
	// Tests that never started, or were paused waiting for a parallel turn, run again in a
	// new process.
	var running []string
	for name, st := range states {
		if st.state == gotest.ActionRun || st.state == gotest.ActionCont {
			running = append(running, name)
		}
	}
	sortByDepthThenOrder(running, states)
	ranToEnd := exit.Success() && completed
	var progressed bool
	for _, st := range states {
		if st.state != "" {
			progressed = true
		}
	}
	for _, name := range running {
		el := time.Since(states[name].start).Seconds()
		now := time.Now()
		if ranToEnd {
			r.emit(gotest.Event{Time: &now, Action: gotest.ActionPass, Package: b.Package, Test: name, Elapsed: &el, Worker: gw.ID})
			states[name].state = gotest.ActionPass
			continue
		}
		r.emit(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: b.Package, Test: name, Worker: gw.ID,
			Output: fmt.Sprintf("=== godist: test process %s on %s while %s was running\n", exit, gw.ID, name)})
		r.emit(gotest.Event{Time: &now, Action: gotest.ActionFail, Package: b.Package, Test: name, Elapsed: &el, Worker: gw.ID})
		states[name].state = gotest.ActionFail
	}
	var out batchOutcome
	// A process that ended without the testing package's final PASS or FAIL crashed; one
	// that printed it chose not to run the rest (-failfast).
	if !exit.Success() && !completed && progressed && !b.Whole && !b.Bench {
		for _, t := range b.Tests {
			if st := states[t]; st == nil || !gotest.IsTerminal(st.state) {
				out.retry = append(out.retry, t)
			}
		}
		if len(out.retry) > 0 {
			r.note(fmt.Sprintf("godist: %s: the test process of %s ended (%s); running %d test(s) again in a new process", gw.ID, b.Package, exit, len(out.retry)))
		}
	}
	// A test process's start-up cost: its time less its top-level tests' time.
	if exit.Success() && len(b.Tests) > 0 {
		var testTime time.Duration
		for name, st := range states {
			if !strings.Contains(name, "/") {
				testTime += st.elapsed
			}
		}
		r.durations.RecordStartup(b.Package, max(elapsed-testTime, 0))
	}
	// The package's result follows the process's exit status, as go test's does: a test
	// that "failed" in a process that exited 0 (a nested testing.RunTests prints failing
	// inner tests) does not fail it, nor count for --maxfail or --rerun-fails. Failed tests
	// run again while --rerun-fails allows, each with just its failed subtests, on another
	// worker where there is one; the others' failures are final.
	finalFails, testFailed := 0, false
	if !exit.Success() {
		for _, t := range r.failedTopLevel(b, states) {
			testFailed = true
			if b.Attempt < r.cfg.RerunFails && r.stopReason(ctx) == "" && !b.Bench {
				out.reruns = append(out.reruns, scheduler.Batch{Package: b.Package, Tests: []string{t},
					Run: rerunPattern(t, states), Attempt: b.Attempt + 1, Avoid: gw.ID})
				continue
			}
			finalFails++
		}
	}
	if b.Attempt > 0 {
		for _, t := range topLevelIn(states, gotest.ActionPass) {
			r.note(fmt.Sprintf("godist: %s.%s passed on attempt %d (on %s): flaky", b.Package, t, b.Attempt+1, gw.ID))
		}
	}
	if len(out.reruns) > 0 {
		r.note(fmt.Sprintf("godist: %s: running %d failed test(s) of %s again (attempt %d of %d)", gw.ID, len(out.reruns), b.Package, b.Attempt+2, r.cfg.RerunFails+1))
	}
	// A process that failed with no test failing failed the package itself (TestMain, init).
	failed := finalFails > 0 || (!exit.Success() && !testFailed)
	r.settle(key, gw.ID, unitsOf(b)-len(out.retry)-len(out.reruns), failed, "")
	if failed && r.cfg.Failfast {
		if dropped := r.plan.Stop(gw.ID, b.Package); dropped > 0 {
			r.settle(key, gw.ID, dropped, true, "")
		}
	}
	r.countFailures(finalFails)
	return out
}

// failedTopLevel lists the batch's top-level tests that failed, in start order: for a
// batch of named tests only those (a nested testing.RunTests reports inner tests under
// names of their own, which no -test.run of this binary selects).
func (r *runner) failedTopLevel(b scheduler.Batch, states map[string]*testState) []string {
	names := topLevelIn(states, gotest.ActionFail)
	if b.Whole || b.Bench {
		return names
	}
	var out []string
	for _, n := range names {
		if slices.Contains(b.Tests, n) {
			out = append(out, n)
		}
	}
	return out
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

// topLevelIn lists, in start order, the top-level tests whose state is action.
func topLevelIn(states map[string]*testState, action string) []string {
	var names []string
	for name, st := range states {
		if st.state == action && !strings.Contains(name, "/") {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return states[names[i]].order < states[names[j]].order })
	return names
}

// rerunPattern is the -test.run pattern that selects exactly the failed leaves of top-level
// test t: each level quoted and anchored, so names with spaces or regexp characters are
// addressed precisely.
func rerunPattern(t string, states map[string]*testState) string {
	var leaves []string
	for name, st := range states {
		if st.state != gotest.ActionFail || (name != t && !strings.HasPrefix(name, t+"/")) {
			continue
		}
		leaf := true
		for other, ost := range states {
			if ost.state == gotest.ActionFail && strings.HasPrefix(other, name+"/") {
				leaf = false
				break
			}
		}
		if leaf {
			leaves = append(leaves, name)
		}
	}
	sort.Strings(leaves)
	alts := make([]string, len(leaves))
	for i, name := range leaves {
		levels := strings.Split(name, "/")
		for j, l := range levels {
			levels[j] = "^" + regexp.QuoteMeta(l) + "$"
		}
		alts[i] = strings.Join(levels, "/")
	}
	return strings.Join(alts, "|")
}

// stopBatch settles a batch whose process the run's stop (-x, --maxfail, an interrupt)
// killed: the tests it was running did not run to the end, so they fail, saying so in a
// line of their own (StoppedMarker); the failures it had are final.
func (r *runner) stopBatch(ctx context.Context, key, worker string, b scheduler.Batch, states map[string]*testState) {
	why := r.stopReason(ctx)
	var running []string
	for name, st := range states {
		if st.state == gotest.ActionRun || st.state == gotest.ActionCont || st.state == gotest.ActionPause {
			running = append(running, name)
		}
	}
	sortByDepthThenOrder(running, states)
	for _, name := range running {
		now := time.Now()
		el := time.Since(states[name].start).Seconds()
		r.emit(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: b.Package, Test: name, Worker: worker,
			Output: gotest.StoppedPrefix + why + "\n"})
		r.emit(gotest.Event{Time: &now, Action: gotest.ActionFail, Package: b.Package, Test: name, Elapsed: &el, Worker: worker})
		states[name].state = gotest.ActionFail
	}
	fails := 0
	for _, t := range r.failedTopLevel(b, states) {
		if !slices.Contains(running, t) {
			fails++
		}
	}
	r.stopScope(key, worker, why)
	r.settle(key, worker, unitsOf(b), fails > 0, "")
	r.countFailures(fails)
}

// stopReason says why the run stopped ("-x stopped the run after 1 failed test"), or ""
// while it goes on.
func (r *runner) stopReason(ctx context.Context) string {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	switch {
	case r.isStopped && r.cfg.MaxFail == 1:
		return fmt.Sprintf("-x stopped the run after %d failed test", r.failures)
	case r.isStopped:
		return fmt.Sprintf("--maxfail %d stopped the run after %d failed tests", r.cfg.MaxFail, r.failures)
	case ctx.Err() != nil:
		return "the run was interrupted"
	}
	return ""
}

func unitsOf(b scheduler.Batch) int {
	if b.Whole || b.Bench {
		return 1
	}
	return len(b.Tests)
}

// settleSettled settles the tests of a batch that ended before its gateway was lost.
func (r *runner) settleSettled(key, worker string, b scheduler.Batch, states map[string]*testState) {
	n := 0
	for _, t := range b.Tests {
		if st := states[t]; st != nil && gotest.IsTerminal(st.state) {
			n++
		}
	}
	failed := false
	for _, st := range states {
		if st.state == gotest.ActionFail {
			failed = true
		}
	}
	if n > 0 || failed {
		r.settle(key, worker, n, failed, "")
	}
}

func sortByDepthThenOrder(names []string, states map[string]*testState) {
	sort.Slice(names, func(i, j int) bool {
		di, dj := strings.Count(names[i], "/"), strings.Count(names[j], "/")
		if di != dj {
			return di > dj // innermost first
		}
		return states[names[i]].order < states[names[j]].order
	})
}

func exitError(e *worker.Exit) error {
	if e.Success() {
		return nil
	}
	return fmt.Errorf("%s", e)
}

// testArgs are the flags of one test process.
func (r *runner) testArgs(b scheduler.Batch) []string {
	args := []string{"-test.v=test2json", "-test.paniconexit0"}
	if b.Bench {
		// The package's benchmarks, after its tests (which ran in processes of their own).
		args = append(args, "-test.run=^$", "-test.bench="+r.cfg.Bench)
	} else if b.Whole {
		if r.cfg.Run != "" {
			args = append(args, "-test.run="+r.cfg.Run)
		}
	} else if b.Run != "" {
		args = append(args, "-test.run="+b.Run)
	} else if r.cfg.Run == "" && len(b.Tests) == r.listed[b.Package] && !b.Retry {
		// The whole package in one process, as go test runs it: no -test.run, which a test
		// that calls testing.RunTests itself (testify's suite tests) would also see.
	} else {
		args = append(args, "-test.run="+gotest.RunPattern(r.cfg.Run, b.Tests))
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

// startPackage writes a package's start event the first time one of its batches starts.
func (r *runner) startPackage(key, worker string) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	ps := r.pkgs[key]
	if ps == nil || ps.started {
		return
	}
	ps.started = true
	ps.start = time.Now()
	t := ps.start
	r.emitLocked(gotest.Event{Time: &t, Action: gotest.ActionStart, Package: ps.path, Worker: worker})
}

// settle marks n units of a package's scope as done; when none is left, the package ends
// with its one terminal event, as go test writes it. note, if any, is package output.
func (r *runner) settle(key, worker string, n int, failed bool, note string) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	ps := r.pkgs[key]
	if ps == nil || ps.done {
		return
	}
	if !ps.started {
		ps.started = true
		ps.start = time.Now()
		t := ps.start
		r.emitLocked(gotest.Event{Time: &t, Action: gotest.ActionStart, Package: ps.path, Worker: worker})
	}
	if note != "" {
		t := time.Now()
		r.emitLocked(gotest.Event{Time: &t, Action: gotest.ActionOutput, Package: ps.path, Output: note, Worker: worker})
	}
	ps.failed = ps.failed || failed
	ps.pending -= n
	if ps.pending > 0 {
		return
	}
	ps.done = true
	cover := ""
	if r.coverRoot != "" {
		// All of the package's processes are done; merging takes a moment, so not under
		// the lock: nothing more of this package can arrive meanwhile.
		r.emitMu.Unlock()
		cover = coverPercent(context.Background(), r.coverDir(key))
		r.emitMu.Lock()
	}
	now := time.Now()
	el := roundMillis(ps.procTime.Seconds())
	action, word, line := gotest.ActionPass, "PASS\n", fmt.Sprintf("ok  \t%s\t%.3fs", ps.path, el)
	if ps.noTests && !ps.sawTests {
		line += " [no tests to run]"
	}
	if ps.failed || ps.stopped != "" {
		action, word, line = gotest.ActionFail, "FAIL\n", fmt.Sprintf("FAIL\t%s\t%.3fs", ps.path, el)
	}
	if ps.stopped != "" {
		// Not run to its end: never ok. The line says so, for people and for parsers.
		line += " [not run to the end: " + ps.stopped + "]"
		r.emitLocked(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: ps.path, Worker: worker,
			Output: gotest.StoppedPrefix + ps.stopped + "\n"})
	}
	if word != "" {
		r.emitLocked(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: ps.path, Output: word, Worker: worker})
	}
	if cover != "" {
		r.emitLocked(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: ps.path, Output: cover + "\n", Worker: worker})
		line += "\t" + cover
	}
	r.emitLocked(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: ps.path, Output: line + "\n", Worker: worker})
	r.emitLocked(gotest.Event{Time: &now, Action: action, Package: ps.path, Elapsed: &el, Worker: worker})
}

// hasScope reports whether key is a package scope of the run (in each mode, one whose
// binary built for the gateway's platform).
func (r *runner) hasScope(key string) bool {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	return r.pkgs[key] != nil
}

// stopScope marks a package scope as not run to its end, and why.
func (r *runner) stopScope(key, worker, why string) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if ps := r.pkgs[key]; ps != nil && ps.stopped == "" {
		ps.stopped = why
	}
}

// markNoTests notes whether a process of the package said "no tests to run", and whether
// it ran a test: go test's "[no tests to run]" is for a package where none ran.
func (r *runner) markNoTests(key string, said, ran bool) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if ps := r.pkgs[key]; ps != nil {
		ps.noTests = ps.noTests || said
		ps.sawTests = ps.sawTests || ran
	}
}

// addProcessTime adds the run time of one of a package's processes: a package's elapsed
// time is that of its processes together, as go test reports one process's time.
func (r *runner) addProcessTime(key string, d time.Duration) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if ps := r.pkgs[key]; ps != nil {
		ps.procTime += d
	}
}

func roundMillis(s float64) float64 { return float64(int64(s*1000+0.5)) / 1000 }

// abandonScope settles every package of a lost gateway in each mode.
func (r *runner) abandonScope(worker string) {
	if r.cfg.Mode != scheduler.Each {
		return
	}
	r.emitMu.Lock()
	var keys []string
	for k, ps := range r.pkgs {
		if ps.worker == worker && !ps.done {
			keys = append(keys, k)
		}
	}
	r.lost = true
	r.emitMu.Unlock()
	for _, k := range keys {
		r.emitMu.Lock()
		ps := r.pkgs[k]
		n := ps.pending
		r.emitMu.Unlock()
		r.settle(k, worker, n, true, fmt.Sprintf("godist: gateway %s was lost; %d test(s) of this package did not run there\n", worker, n))
	}
}

// settleLeftovers ends the packages that never finished: the run was interrupted or every
// gateway was lost.
func (r *runner) settleLeftovers(ctx context.Context) {
	r.emitMu.Lock()
	var keys []string
	for k, ps := range r.pkgs {
		if !ps.done {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 && ctx.Err() == nil && !r.stopped() {
		r.lost = true
	}
	r.emitMu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		r.emitMu.Lock()
		ps := r.pkgs[k]
		n := ps.pending
		r.emitMu.Unlock()
		why := "no gateway was left to run them"
		if stop := r.stopReason(ctx); stop != "" {
			why = stop
			r.stopScope(k, ps.worker, stop)
		}
		r.settle(k, ps.worker, n, true, fmt.Sprintf("godist: %d test(s) of this package did not run: %s\n", n, why))
	}
}
