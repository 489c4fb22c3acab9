// Package runner is one godist run: resolve the packages, build each test binary once,
// list its tests once, start the gateways, let the scheduler hand batches to their
// workers, turn what the test processes print into one `go test -json` stream, and settle
// every test and every package exactly once.
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godist/godist/deploy"
	"github.com/godist/godist/gateway"
	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/ledger"
	"github.com/godist/godist/scheduler"
	"github.com/godist/godist/xspec"
)

// Exit statuses, as CONTRACT.md (at the repository root) gives them.
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

// PackageDirs is what an observer implements that wants each package's source directory
// (the GitHub annotator, to place a failure at its line): it is called once, before the
// first event, with import path -> directory.
type PackageDirs interface {
	PackageDirs(dirs map[string]string)
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

	// Observers watch the run, each getting every event in order, one call at a time:
	// the terminal view, --jsonfile (NewJSON), JUnit, annotations, ... An observer that
	// also implements PackageDirs gets the packages' directories first.
	Observers []ledger.Observer
	// Shard, if N > 0, runs only part I of N (1-based) of the tests, split by recorded
	// durations so that N jobs together run every test exactly once.
	ShardI, ShardN int
	// RsyncDirs are trees shipped to remote gateways besides the module; RsyncIgnore are
	// gitignore-style patterns left out of every tree shipped.
	RsyncDirs, RsyncIgnore []string
	DurationsFile          string // "" = the user cache
	// OwnFiles are the files the caller writes of the run (--jsonfile, JUnit, --timeline):
	// in the module's tree they are not inputs of its build.
	OwnFiles []string
	// ResultCache is the result cache's directory ("" = none: nothing is reused or
	// recorded); CacheMax the size it is trimmed to after the run (0: resultcache's
	// default, negative: no trim).
	ResultCache string
	CacheMax    int64
	// LastFailed (--lf) runs only the tests that failed in the previous run.
	LastFailed bool
	// Session, if set, keeps the gateways up after the run, for the next one.
	Session    *Session
	Executable string // the worker binary ("" = this one)
	// BuildShim, if set, is the godist binary, for go test -exec to run as the shim of a
	// first build (gobuild.Options.Shim).
	BuildShim string
	// Keepalive is how long a gateway's worker or link may send nothing before the
	// gateway counts as lost and its work moves (0 = gateway.DefaultKeepalive). A
	// Session's gateways keep the bound the session was made with.
	Keepalive time.Duration
	// Start, if set, starts the worker of gateway g (with env for its test processes)
	// instead of gateway.Group: tests run the runner against in-process workers with it.
	Start func(ctx context.Context, g xspec.Gateway, env []string) (*gateway.Gateway, error)
}

// Result of a run.
type Result struct {
	// Status is ExitOK or ExitFailed (a package failed or did not build).
	Status int
}

type runner struct {
	cfg        Config
	uid        string
	ledger     *ledger.Ledger
	lost       atomic.Bool // some work could not run: no gateway was left for it
	lostEnded  endedSubtests
	failedFast atomic.Bool // -failfast and a test failed: no new package starts
	// upMu guards anyReady, whether a gateway came up (ready for work), and
	// unstartedErrs, the gateways that did not come up before one did.
	upMu          sync.Mutex
	anyReady      bool
	unstartedErrs []startFailure

	durations  *scheduler.Durations
	plan       *scheduler.Plan
	bins       map[string]map[string]string // platform -> package -> binary
	pkgInfo    map[string]gobuild.Package
	nworkers   int    // the gateways asked for (-n and --tx): GODIST_WORKER_COUNT
	coverRoot  string // "" unless -cover
	moduleRoot string // the module of the packages under test
	remoteGW   map[string]bool
	deploy     *deploy.Deployer

	// runCtx is what test processes run under; stop cancels it (-x, --maxfail).
	runCtx    context.Context
	stop      context.CancelFunc
	stopMu    sync.Mutex
	failures  int  // tests failed for good, for --maxfail
	isStopped bool // --maxfail was reached

	shardDigest string                   // --shard: the digest of the split
	hostMu      sync.Mutex               // guards hostLocks
	hostLocks   map[string]*sync.RWMutex // by host: test processes share it, benchmarks own it
	gorootBin   string                   // $GOROOT/bin of the go command, first in a local test's PATH

	lists       listCache
	specMu      sync.Mutex
	spec        map[string]*speculation // packages running with an earlier run's binary
	binsMu      sync.Mutex              // guards bins while the pipeline fills it
	totalMu     sync.Mutex              // guards total
	total       int                     // test units planned so far
	listMu      sync.Mutex
	listed      map[string]int             // package -> top-level tests selected from its list
	listedNames map[string]map[string]bool // package -> what its binary lists
	deselected  map[string]bool            // packages whose list -run and -skip select nothing from
	unlisted    map[string]gobuild.Binary  // packages run whole before (or without) a list
	results     *results                   // the result cache, nil when off
	check       *resolveCheck              // go list's answer, when the run started from a record
	early       *earlyBuild                // go test -c on the patterns, started beside go list
	tree        *upToDate                  // the module tree before go ran, and its record
	resolved    []gobuild.Package          // what the patterns resolved to, in go list's order
	stopStale   context.CancelFunc         // stops a run whose record go list disagrees with
	lastFailed  map[string]string          // --lf: package -> its -run pattern
}

func (r *runner) deselect(pkg string) {
	r.listMu.Lock()
	defer r.listMu.Unlock()
	if r.deselected == nil {
		r.deselected = map[string]bool{}
	}
	r.deselected[pkg] = true
}

// Run runs the tests. Its error is a *UsageError, a *RunError, or another error of the
// toolchain; test failures are in Result.Status. The Result is nil when nothing could be
// run (a usage error; no gateway came up: a *RunError that says why).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	res, err := run(ctx, cfg, true)
	if errors.Is(err, errStaleResolve) {
		// It started from the last run's packages, and they changed: nothing of it was
		// written; run from what go list says.
		res, err = run(ctx, cfg, false)
	}
	return res, err
}

func run(ctx context.Context, cfg Config, fromRecord bool) (*Result, error) {
	if len(cfg.Gateways) == 0 {
		return nil, &UsageError{errors.New("no gateways: give -n N or --tx SPEC")}
	}
	r := &runner{cfg: cfg, uid: newUID(), nworkers: len(cfg.Gateways), pkgInfo: map[string]gobuild.Package{}, bins: map[string]map[string]string{}, remoteGW: map[string]bool{}}
	r.runCtx, r.stop = context.WithCancel(ctx)
	defer r.stop()
	obs := append([]ledger.Observer{&failures{r: r, stopped: map[string]bool{}, failed: map[string]bool{}}}, cfg.Observers...)
	r.ledger = ledger.New(ledger.Options{Coverage: r.coverage, Ended: r.scopeEnded}, obs...)

	// Resolve.
	bopts := gobuild.Options{Dir: cfg.Dir, Tags: cfg.Tags, Race: cfg.Race, Cover: cfg.Cover, Flags: cfg.BuildFlags, Vet: cfg.Vet, Shim: cfg.BuildShim}
	goroot := make(chan string, 1) // asked meanwhile: a go command costs its start-up
	go func(ctx context.Context) { goroot <- gobuild.GOROOT(ctx, bopts) }(ctx)
	tracef("resolve")
	key := resolveKey(cfg, bopts)
	var pkgs []gobuild.Package
	if err := r.loadDurations(); err != nil {
		return nil, err
	}
	var guess *guessedBinDir
	if fromRecord {
		guess = r.guessBinDir(bopts)
		r.tree = r.takeTree(key, bopts, guess)
		tracef("tree walked")
	}
	var err error
	if r.tree != nil && r.tree.rec != nil {
		// Nothing changed since a build that succeeded: its packages and binaries stand.
		pkgs = r.tree.rec.Packages
		tracef("tree unchanged since the last build")
	} else if rec := r.loadResolveRecord(key); fromRecord && rec != nil && r.canStartFromRecord() {
		// go list beside the build; the build's first word waits for its answer.
		var bctx context.Context
		bctx, r.stopStale = context.WithCancel(ctx)
		defer r.stopStale()
		r.check = &resolveCheck{ch: make(chan resolved, 1), started: rec, abandon: r.stopStale}
		go func(ctx context.Context) {
			p, err := gobuild.Resolve(ctx, bopts, cfg.Patterns)
			tracef("resolved %d packages (go list)", len(p))
			if err == nil {
				r.saveResolveRecord(key, p)
			}
			r.check.ch <- resolved{p, err}
			r.check.confirmed() // at once: a stale start stops now, not at go's first word
		}(ctx)
		pkgs, ctx = rec, bctx
	} else {
		if rec == nil {
			r.startEarly(ctx, bopts, guess)
			defer r.abandonEarly()
		}
		pkgs, err = gobuild.Resolve(ctx, bopts, cfg.Patterns)
		if err == nil {
			r.saveResolveRecord(key, pkgs)
		}
	}
	tracef("resolved %d packages", len(pkgs))
	r.resolved = pkgs
	if err != nil {
		var pe *gobuild.PatternError
		if errors.As(err, &pe) || errors.Is(err, gobuild.ErrNoPackages) {
			return nil, &UsageError{err}
		}
		return nil, err
	}
	for _, g := range cfg.Gateways {
		r.remoteGW[g.ID] = deploy.IsRemote(g, cfg.Gateways)
	}
	dirs := map[string]string{}
	for _, p := range pkgs {
		if r.moduleRoot == "" {
			r.moduleRoot = p.ModuleDir
		}
		r.pkgInfo[p.ImportPath] = p
		dirs[p.ImportPath] = p.Dir
	}
	for _, o := range cfg.Observers {
		if pd, ok := o.(PackageDirs); ok {
			pd.PackageDirs(dirs)
		}
	}
	if cfg.LastFailed {
		pkgs = r.onlyLastFailed(pkgs)
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
	r.deploy = deploy.New(deploy.Options{ModuleRoot: r.moduleRoot, Trees: cfg.RsyncDirs, Ignore: cfg.RsyncIgnore, Note: r.ledger.Note})
	if dir, err := os.UserCacheDir(); err == nil {
		r.lists = listCache{dir: filepath.Join(dir, "godist", "lists")}
	}
	r.openResults()
	if root := <-goroot; root != "" {
		r.gorootBin = filepath.Join(root, "bin")
	}

	platforms := r.platforms()
	if len(platforms) == 1 && cfg.ShardN == 0 && cfg.List == "" {
		// Build, list and run at once.
		err := r.pipeline(ctx, bopts, pkgs, tmp, platforms[0])
		if !r.check.confirmed() {
			return nil, errStaleResolve
		}
		if err != nil {
			return nil, err
		}
		return r.conclude(ctx)
	}

	// Build, one build per platform the gateways need; then list, plan and run.
	built, err := r.build(ctx, bopts, pkgs, tmp)
	if err != nil {
		return nil, err
	}
	r.bins = built.bins
	defer func() {
		for _, k := range built.kept {
			r.cleanRuns(k)
		}
	}()
	runnable := built.runnable(pkgs, platforms)
	if cfg.Mode == scheduler.Each {
		runnable = built.anywhere(pkgs, platforms)
	}
	r.emitBuildEvents(built, platforms)
	if cfg.List != "" {
		// -list: what each binary lists, as go test -list prints it; nothing runs.
		if err := r.listOnly(ctx, runnable); err != nil {
			return nil, err
		}
		return r.result(ctx, nil)
	}

	// List the tests of every binary, in parallel, on this machine, and plan.
	units, err := r.list(ctx, runnable)
	if err != nil {
		return nil, err
	}
	if cfg.ShardN > 0 {
		units = r.shard(units)
	}
	gws := r.plan_(units)

	// Run.
	if len(units) > 0 {
		r.drive(ctx, gws)
	}
	return r.conclude(ctx)
}

// conclude settles what is left after the gateways are done, writes the coverage profile and
// the durations, and makes the result.
func (r *runner) conclude(ctx context.Context) (*Result, error) {
	cfg := r.cfg
	if err := r.unstarted(ctx); err != nil && ctx.Err() == nil {
		// No gateway came up: nothing could run, and no package is reported as if it had
		// (CONTRACT.md: exit status 3); the error says why, once.
		for _, s := range r.ledger.Open() {
			r.ledger.Drop(s)
		}
		return nil, err
	}
	// Whatever is still open could not be run: all gateways lost, stopped, or interrupted.
	r.settleLeftovers(ctx)
	var coverErr error
	if cfg.CoverProfile != "" && ctx.Err() == nil {
		if err := r.writeCoverProfile(ctx, cfg.CoverProfile); err != nil {
			coverErr = fmt.Errorf("-coverprofile: %w", err)
		}
	}
	save := func() error { return r.durations.Save(r.durationsPath()) }
	if cfg.ShardN > 0 {
		// A shard job never changes what the other jobs split by.
		save = func() error { return r.durations.SaveShard(r.durationsPath(), cfg.ShardI, cfg.ShardN, r.shardDigest) }
	}
	tracef("settled")
	if err := save(); err != nil {
		r.ledger.Note("godist: could not save test durations: " + err.Error())
	}
	tracef("durations saved")
	r.noteResults()
	tracef("end")
	return r.result(ctx, coverErr)
}

func (r *runner) result(ctx context.Context, err error) (*Result, error) {
	res := &Result{Status: ExitOK}
	if r.ledger.Failed() {
		res.Status = ExitFailed
	}
	switch {
	case ctx.Err() != nil:
		return res, ctx.Err()
	case r.lost.Load():
		return res, &RunError{errors.New("godist: no gateway could run the remaining tests")}
	}
	return res, err
}

// shard keeps this job's part of units and says which split it used.
func (r *runner) shard(units []scheduler.Package) []scheduler.Package {
	for i := range units {
		if units[i].Whole {
			units[i].Startup = max(units[i].Startup, r.durations.PackageEstimate(units[i].Path))
		}
	}
	r.shardDigest = scheduler.SplitDigest(units, r.cfg.ShardN)
	all := countUnits(units)
	units = scheduler.Shard(units, r.cfg.ShardI, r.cfg.ShardN)
	r.ledger.Note(fmt.Sprintf("godist: shard %d/%d of split %s: %d of %d test(s) in %d package(s)",
		r.cfg.ShardI, r.cfg.ShardN, r.shardDigest, countUnits(units), all, len(units)))
	return units
}

func countUnits(units []scheduler.Package) int {
	n := 0
	for _, u := range units {
		n += max(len(u.Tests), 1)
	}
	return n
}

// plan_ makes the plan of units and the ledger's scopes, and returns the gateways to start.
func (r *runner) plan_(units []scheduler.Package) []xspec.Gateway {
	cfg := r.cfg
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
	platformByID := map[string]string{}
	for i, g := range gws {
		ids[i] = g.ID
		platformByID[g.ID] = platformOf(g.Spec)
	}
	if cfg.Mode == scheduler.Each {
		total *= len(gws)
	}
	r.ledger.SetTotal(total)
	r.plan = scheduler.NewPlan(cfg.Mode, units, len(gws), ids)
	r.oneHostPlan()
	for _, u := range units {
		if cfg.Mode != scheduler.Each {
			r.ledger.Expect(ledger.Scope{Package: u.Path})
			r.tellPlanned(u, []ledger.Scope{{Package: u.Path}})
			continue
		}
		for _, w := range ids {
			if r.bins[platformByID[w]][u.Path] != "" { // else the build reported it for w
				r.ledger.Expect(ledger.Scope{Package: u.Path, Worker: w})
				r.tellPlanned(u, []ledger.Scope{{Package: u.Path, Worker: w}})
			}
		}
	}
	return gws
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
	return binDirOf(r.moduleRoot, tmp, platform, opts)
}

// binDirOf is binDir for the module at root.
func binDirOf(root, tmp, platform string, opts gobuild.Options) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(tmp, strings.ReplaceAll(platform, "/", "_"))
	}
	// Binaries go test -exec links (gobuild/shim.go) are not the bytes go test -c links for
	// the same package: a directory holds one kind, or each build would link the other's
	// again.
	shim := gobuild.BuildsWithShim(platformOptions(opts, platform))
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%v\x00%v\x00%q\x00%s\x00%v", root, platform, opts.Tags, opts.Race, opts.Cover, opts.Flags, opts.Vet, shim)
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

func (r *runner) loadDurations() error {
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

// countFailures adds tests that failed for good and stops the run at --maxfail: no new
// batch starts, and running test processes are killed (within a second).
func (r *runner) countFailures(n int) {
	if n == 0 {
		return
	}
	if r.cfg.Failfast && !r.failedFast.Swap(true) {
		// As go test -failfast: no test binary starts after the first failure.
		r.plan.NoNewPackages()
	}
	r.stopMu.Lock()
	r.failures += n
	stop := r.cfg.MaxFail > 0 && r.failures >= r.cfg.MaxFail && !r.isStopped
	if stop {
		r.isStopped = true
	}
	r.stopMu.Unlock()
	if stop {
		r.ledger.Note(fmt.Sprintf("godist: stopping after %d failed test(s) (--maxfail %d): no new test starts, running ones are stopped", r.failures, r.cfg.MaxFail))
		r.plan.Close()
		r.stop()
	}
}
