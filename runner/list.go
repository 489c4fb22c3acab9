package runner

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/ledger"
	"github.com/godist/godist/scheduler"
)

// list asks each binary for its tests and makes the scheduler's packages.
func (r *runner) list(ctx context.Context, bins []gobuild.Binary) ([]scheduler.Package, error) {
	out := make([]scheduler.Package, len(bins))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, b := range bins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = r.listOne(ctx, b)
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}

// listOne asks one binary for its tests (or the list cache, by the binary's content) and
// makes its scheduler package.
func (r *runner) listOne(ctx context.Context, b gobuild.Binary) scheduler.Package {
	l, err := r.lists.get(ctx, b, func() (gotest.List, error) { return listTests(ctx, b, r.workerEnv("list")) })
	p := scheduler.Package{Path: b.Package.ImportPath}
	if len(r.durations.FailedTests(p.Path)) > 0 {
		p.First = 2
	}
	// A package that never ran is not split on guesses; nor one that asks not to be.
	p.NoSplit = b.Package.NoSplit || !r.durations.Known(p.Path) || r.durations.MustKeepTogether(p.Path)
	var sel []string
	if err == nil {
		sel = deselect(r.cfg.Skip, selectTop(r.runFor(p.Path), l.Runnable()))
		p.Bench = r.cfg.Bench != "" && len(selectTop(r.cfg.Bench, l.Benchmarks)) > 0
	} else if r.cfg.Bench != "" {
		p.Bench = true // the binary could not list: let it look for benchmarks itself
	}
	if err == nil && len(sel) == 0 {
		r.deselect(p.Path) // -run and -skip leave it nothing to run: not "not run"
	}
	if err != nil || len(sel) == 0 {
		// Run the package as go test would, in one process: it lists no tests we may
		// pick one by one, or it could not list them at all.
		p.Whole = true
		_, p.Startup = r.durations.Estimates(p.Path, nil)
	} else {
		est, startup := r.durations.Estimates(p.Path, sel)
		failed := r.durations.FailedTests(p.Path)
		for j, n := range sel {
			p.Tests = append(p.Tests, scheduler.Test{Name: n, Est: est[j], First: r.firstOf(p.Path, n, failed)})
		}
		p.Startup = startup
	}
	r.listMu.Lock()
	if r.listed == nil {
		r.listed = map[string]int{}
		r.listedNames = map[string]map[string]bool{}
	}
	r.listed[p.Path] = len(p.Tests)
	if err == nil {
		names := map[string]bool{}
		for _, n := range l.Runnable() {
			names[n] = true
		}
		r.listedNames[p.Path] = names
	}
	r.listMu.Unlock()
	return p
}

// runsUnlisted says whether pkg runs whole, as go test runs it, before anything is
// listed: it will not be split (it never ran, asks not to be, or must stay together), and
// no -run, -skip or -bench needs its names. Its list is made only if its process dies,
// for the tests it did not get to.
func (r *runner) runsUnlisted(p gobuild.Package) bool {
	c := r.cfg
	if c.Run != "" || c.Skip != "" || c.Bench != "" || c.List != "" || c.ShardN > 0 || c.LastFailed {
		return false
	}
	return p.NoSplit || !r.durations.Known(p.ImportPath) || r.durations.MustKeepTogether(p.ImportPath)
}

// unlistedUnit is the work of a package that runs unlisted: one whole process.
func (r *runner) unlistedUnit(b gobuild.Binary) scheduler.Package {
	r.listMu.Lock()
	if r.unlisted == nil {
		r.unlisted = map[string]gobuild.Binary{}
	}
	r.unlisted[b.Package.ImportPath] = b
	r.listMu.Unlock()
	p := scheduler.Package{Path: b.Package.ImportPath, Whole: true, NoSplit: true}
	if len(r.durations.FailedTests(p.Path)) > 0 {
		p.First = 2
	}
	_, p.Startup = r.durations.Estimates(p.Path, nil)
	return p
}

// listLate gives a batch of a package that ran unlisted, whose process died, the names of
// the package's tests, so that those it did not get to run again in a new process. It
// reports whether it could list them.
func (r *runner) listLate(ctx context.Context, b *scheduler.Batch) bool {
	r.listMu.Lock()
	bin, ok := r.unlisted[b.Package]
	r.listMu.Unlock()
	if !ok || !b.Whole {
		return false
	}
	l, err := r.lists.get(ctx, bin, func() (gotest.List, error) { return listTests(ctx, bin, r.workerEnv("list")) })
	if err != nil || len(l.Runnable()) == 0 {
		return false
	}
	b.Whole, b.Tests = false, l.Runnable()
	return true
}

// listTests runs `bin -test.list .` in the package directory.
func listTests(ctx context.Context, b gobuild.Binary, env []string) (gotest.List, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.Command(b.Path, "-test.list", ".")
	cmd.Dir = b.Package.Dir
	cmd.Env = append(append(os.Environ(), env...), "PWD="+b.Package.Dir)
	out, err := output(ctx, cmd, false)
	if err != nil {
		return gotest.List{}, err
	}
	return gotest.ParseList(out), nil
}

// output runs cmd in a process group of its own (internal/child) and returns its stdout
// (and stderr, with both): when it ends, or ctx does, whatever it left running in its
// group is killed, so that a TestMain's helper process neither outlives the run nor holds
// the output open.
func output(ctx context.Context, cmd *exec.Cmd, both bool) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	if both {
		cmd.Stderr = &out
	}
	p, err := child.Start(cmd)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { p.Kill() })
	defer stop()
	err = p.Wait(func() { p.Kill() })
	if ctx.Err() != nil {
		return out.Bytes(), ctx.Err()
	}
	return out.Bytes(), err
}

// deselect drops the top-level names that the -skip pattern skips whole: go test does not
// start them at all, so they are neither run nor "not run".
func deselect(skip string, names []string) []string {
	if skip == "" {
		return names
	}
	var kept []string
	for _, n := range names {
		if !gotest.SkipsTopLevel(skip, n) {
			kept = append(kept, n)
		}
	}
	return kept
}

// selectTop keeps the names that the -run pattern selects at the top level.
func selectTop(run string, names []string) []string {
	if run == "" {
		return names
	}
	var sel []string
	for _, n := range names {
		if gotest.RunPattern(run, []string{n}) != "^$" {
			sel = append(sel, n)
		}
	}
	return sel
}

// listOnly runs every binary with -test.list=REGEXP in its package directory, on this
// machine, and writes what it prints as go test -list does: the names, then the package's
// ok (or FAIL, when the binary fails).
func (r *runner) listOnly(ctx context.Context, bins []gobuild.Binary) error {
	for _, b := range bins {
		start := time.Now()
		pkg := b.Package.ImportPath
		r.ledger.Emit(ledger.Scope{}, gotest.Event{Time: &start, Action: gotest.ActionStart, Package: pkg})
		cmd := exec.Command(b.Path, "-test.list="+r.cfg.List)
		cmd.Dir = b.Package.Dir
		cmd.Env = append(append(os.Environ(), r.testEnv("list")...), "PWD="+b.Package.Dir)
		out, err := output(ctx, cmd, true)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, line := range strings.SplitAfter(string(out), "\n") {
			if line != "" {
				now := time.Now()
				r.ledger.Emit(ledger.Scope{}, gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: pkg, Output: line})
			}
		}
		now := time.Now()
		el := roundMillis(now.Sub(start).Seconds())
		action, line := gotest.ActionPass, fmt.Sprintf("ok  \t%s\t%.3fs\n", pkg, el)
		if err != nil {
			action, line = gotest.ActionFail, fmt.Sprintf("FAIL\t%s\t%.3fs\n", pkg, el)
			r.ledger.Emit(ledger.Scope{}, gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: pkg, Output: err.Error() + "\n"})
		}
		r.ledger.Emit(ledger.Scope{}, gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: pkg, Output: line})
		r.ledger.Emit(ledger.Scope{}, gotest.Event{Time: &now, Action: action, Package: pkg, Elapsed: &el})
	}
	return nil
}

func roundMillis(s float64) float64 { return float64(int64(s*1000+0.5)) / 1000 }
