package runner

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/scheduler"
)

// testState is what one process showed of one test.
type testState struct {
	state   string // "run", "pause", "cont" or a terminal action
	start   time.Time
	elapsed time.Duration // from its terminal event
	order   int           // when it was first seen in the process
}

// processEnd is how a test process ended, as far as judging its batch needs.
type processEnd struct {
	ExitOK    bool // exit status 0
	Completed bool // the testing package printed its final PASS or FAIL
}

// verdict is what a batch's process leaves to do. judge makes it; the runner acts on it.
type verdict struct {
	// Passed are tests still running after the process ran to its end (exit 0 after its
	// final PASS): benchmarks, which test2json never ends, or a test of a nested
	// testing.RunTests. They end pass, innermost first.
	Passed []string
	// Crashed are tests that were running when the process died: they fail, innermost
	// first, keeping their output.
	Crashed []string
	// Retry are the batch's top-level tests to run again in a new process: the process
	// crashed before they ended (or began).
	Retry []string
	// Reruns are failed tests to run again (--rerun-fails), each addressing just its
	// failed subtests, on another worker where there is one.
	Reruns []scheduler.Batch
	// FinalFails counts the tests that failed for good (for --maxfail).
	FinalFails int
	// Failed says the batch fails its package.
	Failed bool
}

// judge decides what a batch's ended process means, from the states of its tests, as go
// test would report them and so that a crash costs only the crashing test:
//   - the package's result follows the exit status: a test that "failed" in a process
//     that exited 0 (a nested testing.RunTests prints failing inner tests) fails neither
//     the package nor counts for --maxfail or --rerun-fails;
//   - a process that failed with no test failing failed the package itself (TestMain, init);
//   - a process that ended without the final PASS/FAIL crashed: its unfinished tests run
//     again elsewhere; one that printed it chose not to run the rest (-failfast).
//
// rerun says whether failed tests may run again (attempts left, run not stopped). judge is
// a pure function of its arguments.
func judge(b scheduler.Batch, end processEnd, states map[string]*testState, rerun bool, worker string) verdict {
	var v verdict
	var running []string
	for name, st := range states {
		if st.state == gotest.ActionRun || st.state == gotest.ActionCont {
			running = append(running, name)
		}
	}
	sortByDepthThenOrder(running, states)
	ranToEnd := end.ExitOK && end.Completed
	final := func(name string) string { // the state a test ends in
		st := states[name]
		if st.state == gotest.ActionRun || st.state == gotest.ActionCont {
			if ranToEnd {
				return gotest.ActionPass
			}
			return gotest.ActionFail
		}
		return st.state
	}
	if ranToEnd {
		v.Passed = running
	} else {
		v.Crashed = running
	}
	progressed := false
	for _, st := range states {
		if st.state != "" {
			progressed = true
		}
	}
	if !end.ExitOK && !end.Completed && progressed && !b.Whole && !b.Bench {
		for _, t := range b.Tests {
			if st := states[t]; st == nil || !gotest.IsTerminal(final(t)) {
				v.Retry = append(v.Retry, t)
			}
		}
	}
	testFailed := false
	if !end.ExitOK {
		for _, t := range failedTopLevel(b, states, final) {
			testFailed = true
			if rerun && !b.Bench {
				v.Reruns = append(v.Reruns, scheduler.Batch{Package: b.Package, Tests: []string{t},
					Run: rerunPattern(t, states, final), Attempt: b.Attempt + 1, Avoid: worker})
				continue
			}
			v.FinalFails++
		}
	}
	v.Failed = v.FinalFails > 0 || (!end.ExitOK && !testFailed)
	return v
}

// failedTopLevel lists the batch's top-level tests that failed, in start order: for a
// batch of named tests only those (a nested testing.RunTests reports inner tests under
// names of their own, which no -test.run of this binary selects).
func failedTopLevel(b scheduler.Batch, states map[string]*testState, final func(string) string) []string {
	var names []string
	for name := range states {
		if final(name) == gotest.ActionFail && !strings.Contains(name, "/") && (b.Whole || b.Bench || slices.Contains(b.Tests, name)) {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return states[names[i]].order < states[names[j]].order })
	return names
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
// test t.
func rerunPattern(t string, states map[string]*testState, final func(string) string) string {
	failed := map[string]bool{}
	for name := range states {
		if final(name) == gotest.ActionFail && (name == t || strings.HasPrefix(name, t+"/")) {
			failed[name] = true
		}
	}
	return leavesPattern(failed)
}

// leavesPattern is the -test.run pattern that selects exactly the leaves of names (those
// with no other name below them): each level quoted and anchored, so names with spaces or
// regexp characters are addressed precisely.
func leavesPattern(names map[string]bool) string {
	var leaves []string
	for name := range names {
		leaf := true
		for other := range names {
			if strings.HasPrefix(other, name+"/") {
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

func sortByDepthThenOrder(names []string, states map[string]*testState) {
	sort.Slice(names, func(i, j int) bool {
		di, dj := strings.Count(names[i], "/"), strings.Count(names[j], "/")
		if di != dj {
			return di > dj // innermost first
		}
		return states[names[i]].order < states[names[j]].order
	})
}
