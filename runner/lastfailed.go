package runner

import (
	"fmt"

	"github.com/godist/godist/gobuild"
	"strings"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
)

// Failed first, and --lf. What failed is recorded with the durations (Durations.Failed):
// a test whose last end was fail is there until it ends otherwise; "" is the package
// itself (it did not build, or failed outside its tests). The next run starts those tests
// first, and --lf runs only them.

// failures is an observer of the run's stream that keeps Durations.Failed up to date.
type failures struct {
	r       *runner
	stopped map[string]bool // "pkg\x00test" cut short by the run's stop: not a failure
	failed  map[string]bool // packages where a test failed in this run
}

func (f *failures) Event(e gotest.Event) {
	d := f.r.durations
	if d == nil || e.Package == "" {
		return
	}
	key := e.Package + "\x00" + e.Test
	switch {
	case e.Action == gotest.ActionOutput && strings.HasPrefix(e.Output, gotest.StoppedPrefix):
		f.stopped[key] = true
	case e.Action == gotest.ActionRun:
		delete(f.stopped, key)
	case e.Action == gotest.ActionBuildFail:
		d.SetFailed(e.Package, "", true)
	case gotest.IsTerminal(e.Action) && e.Test != "":
		if e.Action == gotest.ActionFail && !f.stopped[key] {
			d.SetFailed(e.Package, e.Test, true)
			f.failed[e.Package] = true
		} else if e.Action != gotest.ActionFail {
			d.SetFailed(e.Package, e.Test, false)
		}
	case gotest.IsTerminal(e.Action):
		// The package: a failure of its own only when none of its tests failed.
		own := e.Action == gotest.ActionFail && !f.failed[e.Package] && !f.stopped[key]
		d.SetFailed(e.Package, "", own)
	}
}

func (f *failures) Note(string)                {}
func (f *failures) WorkerState(string, string) {}
func (f *failures) SetTotal(int)               {}

var _ ledger.Observer = (*failures)(nil)

// firstOf is Test.First for top-level test name of pkg.
func (r *runner) firstOf(pkg, name string, failed map[string]bool) int {
	if failed[name] {
		return 2
	}
	for t := range failed {
		if strings.HasPrefix(t, name+"/") {
			return 2
		}
	}
	if r.durations.Known(pkg) && !r.durations.HasTest(pkg, name) {
		return 1
	}
	return 0
}

// lastFailedPatterns is, for --lf, the -run pattern of each package with recorded
// failures: its failed tests, each addressed to its failed leaves ("" for a package that
// failed as a whole: all of it runs).
func (r *runner) lastFailedPatterns() map[string]string {
	out := map[string]string{}
	for _, pkg := range r.durations.FailedPackages() {
		failed := r.durations.FailedTests(pkg)
		if failed[""] {
			out[pkg] = ""
			continue
		}
		out[pkg] = leavesPattern(failed)
	}
	return out
}

// runFor is the -run pattern of pkg's tests: --lf's for the package, or -run.
func (r *runner) runFor(pkg string) string {
	if r.lastFailed != nil {
		return r.lastFailed[pkg]
	}
	return r.cfg.Run
}

// onlyLastFailed keeps, for --lf, the packages of pkgs with recorded failures, and sets
// their -run patterns; with none recorded among pkgs, all of pkgs run, as a note says.
func (r *runner) onlyLastFailed(pkgs []gobuild.Package) []gobuild.Package {
	pats := r.lastFailedPatterns()
	var keep []gobuild.Package
	for _, p := range pkgs {
		if _, ok := pats[p.ImportPath]; ok {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		r.ledger.Note("godist: --lf: no failures recorded in the previous run of these packages; running all of them")
		return pkgs
	}
	r.lastFailed = pats
	n := 0
	for _, p := range keep {
		n += len(r.durations.FailedTests(p.ImportPath))
	}
	r.ledger.Note(fmt.Sprintf("godist: --lf: running %d failed test(s) of the previous run, in %d package(s)", n, len(keep)))
	return keep
}
