// Package runner is one godist run: resolve the packages, build each test binary once,
// list its tests once, start the gateways, let the scheduler hand batches to their
// workers, turn what the test processes print into one `go test -json` stream, and settle
// every test and every package exactly once.
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/scheduler"
	"github.com/godist/godist/xspec"
)

// Exit statuses, as CONTRACT.md gives them.
const (
	ExitOK       = 0
	ExitFailed   = 1
	ExitUsage    = 2
	ExitNoWorker = 3
)

// UsageError is bad input from the user: exit status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// RunError is work that could not be run at all: exit status 3.
type RunError struct{ Err error }

func (e *RunError) Error() string { return e.Err.Error() }
func (e *RunError) Unwrap() error { return e.Err }

// Reporter receives the run as it happens. Calls come one at a time.
type Reporter interface {
	SetTotal(tests int)
	Event(e gotest.Event)
	WorkerState(id, state string)
	Note(msg string)
}

// Config of a run.
type Config struct {
	Dir      string   // module directory ("" = current)
	Patterns []string // package patterns (default ./...)
	Gateways []xspec.Gateway
	Mode     scheduler.Mode

	Tags         string
	Race         bool
	Cover        bool
	CoverProfile string // -coverprofile: the merged profile of every package

	// Flags for the test binaries, as go test takes them.
	Run, Skip, Shuffle string
	Count              int
	Short, Failfast    bool
	// MaxFail, if positive, stops the run once that many tests have failed for good: no new
	// test starts anywhere and running test processes are stopped (-x is 1).
	MaxFail int
	// RerunFails is how often a failed test is run again, on another worker where there is
	// one; a test that then passes is flaky, one that never passes fails the run.
	RerunFails int
	Timeout    time.Duration // 0: none; go test's default is 10m
	TestArgs   []string      // after --

	// BuildFlags are go build flags (-ldflags=..., -gcflags=..., -mod=..., -trimpath,
	// -covermode=..., -coverpkg=..., ...) passed to go list and go test -c as given.
	BuildFlags []string
	// TestFlags are further flags of the test binaries, in their -test.NAME=VALUE form
	// (-test.parallel=4, -test.cpu=1,2, -test.benchtime=1x, -test.benchmem, -test.fullpath,
	// ...), given to every test process before TestArgs.
	TestFlags []string
	// Bench is go test's -bench REGEXP: benchmarks matching it run after the tests of their
	// package, one benchmark process at a time on a host, as go test runs them.
	Bench string
	// List is go test's -list REGEXP: print the matching names of every package, run nothing.
	List string
	// Vet is go test's -vet setting ("" = go test's default, "off" = none).
	Vet string

	JSON     io.Writer // --jsonfile, nil for none
	Reporter Reporter
	// Sinks get every event too, in order, one call at a time (JUnit, annotations, ...).
	Sinks []func(gotest.Event)
	// Shard, if N > 0, runs only part I of N (1-based) of the tests, split by recorded
	// durations so that N jobs together run every test exactly once.
	ShardI, ShardN int
	// Dirs, if not nil, is filled with each package's source directory (for annotations).
	Dirs map[string]string
	// RsyncDirs are trees shipped to remote gateways besides the module; RsyncIgnore are
	// gitignore-style patterns left out of every tree shipped.
	RsyncDirs, RsyncIgnore []string
	DurationsFile          string // "" = the user cache
	Executable             string // the worker binary ("" = this one)
}

// Result of a run.
type Result struct {
	Status  int
	Passed  int
	Failed  int
	Skipped int
	NotRun  int
}

type runner struct {
	cfg     Config
	uid     string
	emitMu  sync.Mutex
	failed  bool // a test or package failed (guarded by emitMu)
	lost    bool // some work could not run (guarded by emitMu)
	jsonErr error

	durations *scheduler.Durations
	plan      *scheduler.Plan
	bins      map[string]map[string]string // platform -> package -> binary
	pkgs      map[string]*pkgState         // by scope key
	pkgInfo   map[string]gobuild.Package
	nworkers  int
	coverRoot string // "" unless -cover

	moduleRoot string                  // the module of the packages under test
	remoteMu   sync.Mutex              // guards remotes
	remotes    map[string]*remoteState // by host and working directory
	remoteGW   map[string]bool         // gateways that do not share the master's files

	// runCtx is what test processes run under; stop cancels it (--maxfail).
	runCtx    context.Context
	stop      context.CancelFunc
	stopMu    sync.Mutex
	failures  int  // tests failed for good, for --maxfail
	isStopped bool // --maxfail was reached

	shardDigest string                   // --shard: the digest of the split
	hostLocks   map[string]*sync.RWMutex // by host: test processes share it, benchmarks own it
	hostMu      sync.Mutex
	gorootBin   string          // $GOROOT/bin of the go command, first in a local test's PATH
	listed      map[string]int  // package -> top-level tests selected from its list
	deselected  map[string]bool // packages whose list -run and -skip select nothing from
	listMu      sync.Mutex
}

func (r *runner) deselect(pkg string) {
	r.listMu.Lock()
	defer r.listMu.Unlock()
	if r.deselected == nil {
		r.deselected = map[string]bool{}
	}
	r.deselected[pkg] = true
}

// pkgState tracks one package's run on one scope (the whole run in load mode, one gateway
// in each mode) until its single terminal event.
type pkgState struct {
	path     string
	worker   string // "" in load mode
	pending  int    // units not settled yet
	started  bool
	start    time.Time
	failed   bool
	done     bool
	procTime time.Duration // its test processes' run time, added up: its Elapsed
	stopped  string        // why it did not run to its end (-x, --maxfail, interrupt), if so
	noTests  bool          // a process of it said "no tests to run"
	sawTests bool          // a test of it ran
}

// Run runs the tests. Its error is a *UsageError, a *RunError, or another error of the
// toolchain; test failures are in Result.Status.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	r := &runner{cfg: cfg, pkgs: map[string]*pkgState{}, pkgInfo: map[string]gobuild.Package{}, bins: map[string]map[string]string{}}
	r.uid = newUID()
	r.runCtx, r.stop = context.WithCancel(ctx)
	defer r.stop()
	if len(cfg.Gateways) == 0 {
		return nil, &UsageError{errors.New("no gateways: give -n N or --tx SPEC")}
	}
	bopts := gobuild.Options{Dir: cfg.Dir, Tags: cfg.Tags, Race: cfg.Race, Cover: cfg.Cover, Flags: cfg.BuildFlags, Vet: cfg.Vet}
	pkgs, err := gobuild.Resolve(ctx, bopts, cfg.Patterns)
	if err != nil {
		var pe *gobuild.PatternError
		if errors.As(err, &pe) || errors.Is(err, gobuild.ErrNoPackages) {
			return nil, &UsageError{err}
		}
		return nil, err
	}
	r.remotes = map[string]*remoteState{}
	r.remoteGW = map[string]bool{}
	for _, g := range cfg.Gateways {
		r.remoteGW[g.ID] = isRemote(g, cfg.Gateways)
	}
	for _, p := range pkgs {
		if r.moduleRoot == "" {
			r.moduleRoot = p.ModuleDir
		}
		r.pkgInfo[p.ImportPath] = p
		if cfg.Dirs != nil {
			cfg.Dirs[p.ImportPath] = p.Dir
		}
	}
	if err := r.loadDurations(pkgs); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "godist-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if cfg.Cover {
		r.coverRoot = filepath.Join(tmp, "cover")
	}
	if r.moduleRoot == "" {
		r.moduleRoot, _ = filepath.Abs(cfg.Dir)
	}

	if root := gobuild.GOROOT(ctx, bopts); root != "" {
		r.gorootBin = filepath.Join(root, "bin")
	}
	// One build per platform the gateways need.
	platforms := r.platforms()
	built, err := r.build(ctx, bopts, pkgs, tmp)
	if err != nil {
		return nil, err
	}
	r.bins = built.bins
	runnable := built.runnable(pkgs, platforms)
	if cfg.Mode == scheduler.Each {
		// Each gateway runs what built for its platform; the others' failures are theirs.
		runnable = nil
		seen := map[string]bool{}
		for _, p := range pkgs {
			for _, pl := range platforms {
				if bin, ok := built.binOf[pl][p.ImportPath]; ok && !seen[p.ImportPath] {
					seen[p.ImportPath] = true
					runnable = append(runnable, bin)
				}
			}
		}
	}
	r.emitBuildEvents(built, platforms)
	if cfg.List != "" {
		// -list: what each binary lists, as go test -list prints it; nothing runs.
		if err := r.listOnly(ctx, runnable); err != nil {
			return nil, err
		}
		res := &Result{Status: ExitOK}
		if r.failed {
			res.Status = ExitFailed
		}
		return res, ctx.Err()
	}

	// List the tests of every binary, in parallel, on this machine.
	units, err := r.list(ctx, runnable, platforms[0])
	if err != nil {
		return nil, err
	}
	if cfg.ShardN > 0 {
		for i := range units {
			if units[i].Whole {
				units[i].Startup = max(units[i].Startup, r.durations.PackageEstimate(units[i].Path))
			}
		}
		r.shardDigest = scheduler.SplitDigest(units, cfg.ShardN)
		all := 0
		for _, u := range units {
			all += max(len(u.Tests), 1)
		}
		units = scheduler.Shard(units, cfg.ShardI, cfg.ShardN)
		mine := 0
		for _, u := range units {
			mine += max(len(u.Tests), 1)
		}
		r.note(fmt.Sprintf("godist: shard %d/%d of split %s: %d of %d test(s) in %d package(s)",
			cfg.ShardI, cfg.ShardN, r.shardDigest, mine, all, len(units)))
	}
	total := 0
	for _, u := range units {
		if !r.deselected[u.Path] {
			total += max(len(u.Tests), 1) // a Whole package counts as one unit
		}
	}
	gws := cfg.Gateways
	if cfg.Mode != scheduler.Each {
		most := total // never more workers than tests
		if cfg.Mode == scheduler.LoadPkg {
			most = len(units) // nor, when packages are not split, than packages
		}
		if len(gws) > most {
			gws = withHops(cfg.Gateways, max(most, 1))
		}
	}
	ids := make([]string, len(gws))
	for i, g := range gws {
		ids[i] = g.ID
	}
	r.nworkers = len(gws)
	if cfg.Mode == scheduler.Each {
		total *= len(gws)
	}
	if cfg.Reporter != nil {
		cfg.Reporter.SetTotal(total)
	}
	r.plan = scheduler.NewPlan(cfg.Mode, units, len(gws), ids)
	platformByID := map[string]string{}
	for _, g := range gws {
		platformByID[g.ID] = platformOf(g.Spec)
	}
	for _, u := range units {
		scopes := []string{""}
		if cfg.Mode == scheduler.Each {
			scopes = ids
		}
		pending := max(len(u.Tests), 1)
		if u.Bench {
			pending++ // the benchmark process
		}
		for _, w := range scopes {
			if w != "" && r.bins[platformByID[w]][u.Path] == "" {
				continue // it did not build for this gateway; the build reported it
			}
			r.pkgs[scopeKey(u.Path, w)] = &pkgState{path: u.Path, worker: w, pending: pending}
		}
	}

	if len(units) > 0 {
		r.drive(ctx, gws)
	}
	// Whatever is still unsettled could not be run: all gateways lost, or interrupted.
	r.settleLeftovers(ctx)
	if cfg.CoverProfile != "" && ctx.Err() == nil {
		if err := r.writeCoverProfile(ctx, cfg.CoverProfile); err != nil {
			return nil, fmt.Errorf("-coverprofile: %w", err)
		}
	}
	save := func() error { return r.durations.Save(r.durationsPath()) }
	if cfg.ShardN > 0 {
		// A shard job never changes what the other jobs split by.
		save = func() error { return r.durations.SaveShard(r.durationsPath(), cfg.ShardI, cfg.ShardN, r.shardDigest) }
	}
	if err := save(); err != nil && r.cfg.Reporter != nil {
		r.cfg.Reporter.Note("godist: could not save test durations: " + err.Error())
	}
	res := &Result{Status: ExitOK}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if r.failed {
		res.Status = ExitFailed
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if r.lost {
		return res, &RunError{errors.New("godist: no gateway could run the remaining tests")}
	}
	if r.jsonErr != nil {
		return res, fmt.Errorf("--jsonfile: %w", r.jsonErr)
	}
	return res, nil
}

// withHops keeps the first n gateways, and the gateways those reach others through.
func withHops(all []xspec.Gateway, n int) []xspec.Gateway {
	keep := map[string]bool{}
	byID := map[string]xspec.Gateway{}
	for _, g := range all {
		byID[g.ID] = g
	}
	var mark func(g xspec.Gateway)
	mark = func(g xspec.Gateway) {
		if keep[g.ID] {
			return
		}
		keep[g.ID] = true
		if hop, ok := byID[g.Spec.Via]; ok {
			mark(hop)
		}
	}
	for _, g := range all[:n] {
		mark(g)
	}
	var out []xspec.Gateway
	for _, g := range all {
		if keep[g.ID] {
			out = append(out, g)
		}
	}
	return out
}

func scopeKey(pkg, worker string) string { return pkg + "\x00" + worker }

func newUID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func hostPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// platformOf is the GOOS/GOARCH a gateway's tests must be built for.
func platformOf(s *xspec.Spec) string {
	goos, goarch := s.Platform()
	return goos + "/" + goarch
}

// platforms lists the platforms to build for, the host's first when any gateway uses it.
func (r *runner) platforms() []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range r.cfg.Gateways {
		p := platformOf(g.Spec)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i] == hostPlatform() && out[j] != hostPlatform() })
	return out
}

// binDir is where the test binaries of one platform are built: a directory kept between
// runs (in the user cache, per module, platform and build flags), because go test -c does
// not link again a binary that is already there and up to date — on a warm build cache
// that halves the time a build takes. Without a user cache, tmp.
func (r *runner) binDir(tmp, platform string, opts gobuild.Options) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(tmp, strings.ReplaceAll(platform, "/", "_"))
	}
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%v\x00%v\x00%q\x00%s", r.moduleRoot, platform, opts.Tags, opts.Race, opts.Cover, opts.Flags, opts.Vet)
	return filepath.Join(dir, "godist", "testbin", hashString(key))
}

func (r *runner) durationsPath() string {
	if r.cfg.DurationsFile != "" {
		return r.cfg.DurationsFile
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	abs, _ := filepath.Abs(r.cfg.Dir)
	if abs == "" {
		abs, _ = os.Getwd()
	}
	sum := hashString(abs)
	return filepath.Join(dir, "godist", "durations", sum+".json")
}

func (r *runner) loadDurations(pkgs []gobuild.Package) error {
	d, err := scheduler.LoadDurations(r.durationsPath())
	if err != nil {
		if r.cfg.DurationsFile != "" {
			return &UsageError{err}
		}
		d = scheduler.NewDurations()
	}
	r.durations = d
	return nil
}

// emit writes one event to the JSON stream and the reporter.
func (r *runner) emit(e gotest.Event) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.emitLocked(e)
}

func (r *runner) emitLocked(e gotest.Event) {
	// A package's end says whether it failed; a test that failed and then passed on a
	// re-run (flaky) does not fail the run.
	if (e.Action == gotest.ActionFail && e.Test == "") || e.Action == gotest.ActionBuildFail {
		r.failed = true
	}
	if r.cfg.JSON != nil && r.jsonErr == nil {
		b, err := json.Marshal(e)
		if err == nil {
			_, err = r.cfg.JSON.Write(append(b, '\n'))
		}
		r.jsonErr = err
	}
	if r.cfg.Reporter != nil {
		r.cfg.Reporter.Event(e)
	}
	for _, sink := range r.cfg.Sinks {
		sink(e)
	}
}

func (r *runner) note(msg string) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if r.cfg.Reporter != nil {
		r.cfg.Reporter.Note(msg)
	}
}

func (r *runner) workerState(id, state string) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if r.cfg.Reporter != nil {
		r.cfg.Reporter.WorkerState(id, state)
	}
}

// stopped reports whether --maxfail stopped the run.
func (r *runner) stopped() bool {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	return r.isStopped
}

// countFailures adds tests that failed for good and stops the run at --maxfail: no new
// batch starts, and running test processes are killed (within a second).
func (r *runner) countFailures(n int) {
	if n == 0 {
		return
	}
	r.stopMu.Lock()
	r.failures += n
	stop := r.cfg.MaxFail > 0 && r.failures >= r.cfg.MaxFail && !r.isStopped
	if stop {
		r.isStopped = true
	}
	r.stopMu.Unlock()
	if stop {
		r.note(fmt.Sprintf("godist: stopping after %d failed test(s) (--maxfail %d): no new test starts, running ones are stopped", r.failures, r.cfg.MaxFail))
		r.plan.Close()
		r.stop()
	}
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

// list asks each binary for its tests and makes the scheduler's packages.
func (r *runner) list(ctx context.Context, bins []gobuild.Binary, platform string) ([]scheduler.Package, error) {
	out := make([]scheduler.Package, len(bins))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, b := range bins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			l, err := listTests(ctx, b, r.workerEnv("list"))
			p := scheduler.Package{Path: b.Package.ImportPath}
			// A package that never ran is not split on guesses; nor one that asks not to be.
			p.NoSplit = b.Package.NoSplit || !r.durations.Known(p.Path)
			var sel []string
			if err == nil {
				sel = deselect(r.cfg.Skip, selectTop(r.cfg.Run, l.Runnable()))
				p.Bench = r.cfg.Bench != "" && len(selectTop(r.cfg.Bench, l.Benchmarks)) > 0
			} else if r.cfg.Bench != "" {
				p.Bench = true // the binary could not list: let it look for benchmarks itself
			}
			if err == nil && len(sel) == 0 {
				r.deselect(p.Path) // -run and -skip leave it nothing to run: not "not run"
			}
			if err != nil || len(sel) == 0 {
				// Run the package as go test would, in one process: it lists no tests we
				// may pick one by one, or it could not list them at all.
				p.Whole = true
				_, p.Startup = r.durations.Estimates(p.Path, nil)
				out[i] = p
				return
			}
			est, startup := r.durations.Estimates(p.Path, sel)
			for j, n := range sel {
				p.Tests = append(p.Tests, scheduler.Test{Name: n, Est: est[j]})
			}
			p.Startup = startup
			out[i] = p
		}()
	}
	wg.Wait()
	r.listed = map[string]int{}
	for _, p := range out {
		r.listed[p.Path] = len(p.Tests)
	}
	return out, ctx.Err()
}

// listTests runs `bin -test.list .` in the package directory.
func listTests(ctx context.Context, b gobuild.Binary, env []string) (gotest.List, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Path, "-test.list", ".")
	cmd.Dir = b.Package.Dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		return gotest.List{}, err
	}
	return gotest.ParseList(out), nil
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
		r.emit(gotest.Event{Time: &start, Action: gotest.ActionStart, Package: pkg})
		cmd := exec.CommandContext(ctx, b.Path, "-test.list="+r.cfg.List)
		cmd.Dir = b.Package.Dir
		cmd.Env = append(append(os.Environ(), r.testEnv("list")...), "PWD="+b.Package.Dir)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, line := range strings.SplitAfter(string(out), "\n") {
			if line != "" {
				now := time.Now()
				r.emit(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: pkg, Output: line})
			}
		}
		now := time.Now()
		el := roundMillis(now.Sub(start).Seconds())
		action, line := gotest.ActionPass, fmt.Sprintf("ok  \t%s\t%.3fs\n", pkg, el)
		if err != nil {
			action, line = gotest.ActionFail, fmt.Sprintf("FAIL\t%s\t%.3fs\n", pkg, el)
			r.emit(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: pkg, Output: err.Error() + "\n"})
		}
		r.emit(gotest.Event{Time: &now, Action: gotest.ActionOutput, Package: pkg, Output: line})
		r.emit(gotest.Event{Time: &now, Action: action, Package: pkg, Elapsed: &el})
	}
	return nil
}
