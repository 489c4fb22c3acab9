package runner

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/filesum"
	"github.com/godist/godist/ledger"
	"github.com/godist/godist/scheduler"
)

// pipeline runs the tests of pkgs on gateways of one platform as go test does, one stage
// overlapping the next: the gateways start (and ship the tree) while the binaries build; a
// package is listed as soon as its binary is linked, and its tests start at once, while
// other packages still build. With durations recorded, the longest packages build first;
// otherwise go's own order stands.
func (r *runner) pipeline(ctx context.Context, bopts gobuild.Options, pkgs []gobuild.Package, tmp, pl string) error {
	cfg := r.cfg
	gws := cfg.Gateways
	ids := make([]string, len(gws))
	for i, g := range gws {
		ids[i] = g.ID
	}
	r.plan = scheduler.NewOpenPlan(cfg.Mode, len(gws), ids)
	r.oneHostPlan()
	driveDone := make(chan struct{})
	go func() {
		defer close(driveDone)
		r.drive(ctx, gws)
	}()

	opts := platformOptions(bopts, pl)
	var listing sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	keep := r.binDir(tmp, pl, bopts)
	own := r.ownBinDir(tmp, keep)
	defer r.cleanRuns(keep)
	var spec map[string]*speculation
	if r.canSpeculate() && own != keep && (r.tree == nil || r.tree.rec == nil) {
		// What an earlier run left runs now, while go checks it (held back until it has).
		spec = r.speculate(ctx, pkgs, keep, own+".spec", pl, ids, &listing, sem)
	}
	// Binaries that are there at once (the tree is unchanged) join the plan in the build's
	// order, as go test would start them (-p 1 -failfast stops where go test stops);
	// others join as they are linked and listed.
	var order *readyOrder
	if r.tree != nil && r.tree.rec != nil {
		order = &readyOrder{}
	}
	// Until a package is linked and planned, the live view weighs it as expected work: a
	// first run's bar is not at 100 % once its first small packages have passed.
	for _, p := range pkgs {
		if p.HasTests && spec[p.ImportPath] == nil {
			for _, s := range r.scopesOf(p.ImportPath, ids) {
				r.ledger.Planned(ledger.Planned{Scope: s, Whole: r.durations.PackageEstimate(p.ImportPath), Expected: true})
			}
		}
	}
	opts.Ready = func(b gobuild.Binary) {
		if !r.check.confirmed() {
			return // the packages changed: this run is abandoned, nothing of it counts
		}
		pkg := b.Package.ImportPath
		tracef("linked %s", pkg)
		sp := spec[pkg]
		if sp != nil {
			<-sp.checked
			if sp.cached {
				sp.resolve(true)
				sp = nil // never planned: this binary's result is looked up as any other
			}
		}
		if sp != nil {
			if sp.sameAs(b.Path) {
				sp.resolve(true) // up to date: what ran with it stands
				return
			}
			r.plan.Hold(pkg)  // nothing more of the old work starts
			sp.resolve(false) // linked anew: it runs again, from the new binary's list
		}
		r.setBin(pl, pkg, b.Path)
		listing.Add(1)
		turn := order.ticket()
		go func() {
			defer listing.Done()
			defer order.done(turn)
			if sp == nil && r.replayCached(ctx, b, ids) {
				return // passed before, and nothing it read has changed
			}
			if sp == nil && r.runsUnlisted(b.Package) {
				// One process, as go test runs it: no list before it (a TestMain's set-up
				// would run twice); listed only if its process dies.
				order.wait(turn)
				r.addUnit(r.unlistedUnit(b), ids)
				return
			}
			sem <- struct{}{}
			u := r.listOne(ctx, b)
			<-sem
			tracef("listed %s", pkg)
			order.wait(turn)
			if sp != nil {
				r.replanUnit(u, ids)
				return
			}
			r.addUnit(u, ids)
		}()
	}
	tracef("build")
	_, err := r.buildLocked(ctx, opts, r.buildOrder(pkgs), keep, own, func(e gotest.Event) {
		if r.check.confirmed() {
			r.emitBuildEvent(e)
		}
	})
	tracef("built")
	listing.Wait()
	tracef("listed all")
	for _, sp := range spec {
		if done, _ := sp.resolved(); !done && !sp.cached {
			// go did not build it (it fails now, and the build said so): out of the run.
			sp.resolve(false)
			r.dropUnit(sp.pkg, ids)
		}
	}
	if err != nil {
		// Nothing more can build: stop what runs, and say why.
		r.plan.Close()
		r.stop()
		<-driveDone
		return buildErr(err, pl, r.gatewaysOn(pl))
	}
	r.plan.Seal()
	<-driveDone
	return nil
}

// buildOrder puts the packages whose recorded durations are longest first (go builds the
// packages named first first), the others after them in go list's order.
func (r *runner) buildOrder(pkgs []gobuild.Package) []gobuild.Package {
	out := append([]gobuild.Package(nil), pkgs...)
	est := map[string]int64{}
	for _, p := range out {
		est[p.ImportPath] = int64(r.durations.PackageEstimate(p.ImportPath))
	}
	failed := map[string]bool{}
	for _, p := range r.durations.FailedPackages() {
		failed[p] = true
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := failed[out[i].ImportPath], failed[out[j].ImportPath]; a != b {
			return a // what failed last time builds (and runs) first
		}
		return est[out[i].ImportPath] > est[out[j].ImportPath]
	})
	return out
}

// emitBuildEvent writes one event of a single platform's build as it comes: once in load
// mode, once per gateway (with its id) in each mode.
func (r *runner) emitBuildEvent(e gotest.Event) {
	if r.cfg.Mode != scheduler.Each {
		r.ledger.Emit(ledger.Scope{}, e)
		return
	}
	for _, g := range r.cfg.Gateways {
		e.Worker = g.ID
		r.ledger.Emit(ledger.Scope{}, e)
	}
}

// addUnit puts a listed package into the run: its scopes into the ledger, its tests into
// the reporters' total, and its work into the plan.
func (r *runner) addUnit(u scheduler.Package, ids []string) {
	scopes := r.scopesOf(u.Path, ids)
	for _, s := range scopes {
		r.ledger.Expect(s)
	}
	r.tellPlanned(u, scopes)
	r.totalMu.Lock()
	if !r.isDeselected(u.Path) {
		r.total += max(len(u.Tests), 1) * len(scopes)
	}
	total := r.total
	r.totalMu.Unlock()
	r.ledger.SetTotal(total)
	r.plan.Add(u)
}

// setBin records the binary of pkg for platform pl.
func (r *runner) setBin(pl, pkg, path string) {
	r.binsMu.Lock()
	defer r.binsMu.Unlock()
	if r.bins[pl] == nil {
		r.bins[pl] = map[string]string{}
	}
	r.bins[pl][pkg] = path
}

// binFor is the binary of pkg for platform pl, "" if there is none.
func (r *runner) binFor(pl, pkg string) string {
	r.binsMu.Lock()
	defer r.binsMu.Unlock()
	return r.bins[pl][pkg]
}

func (r *runner) isDeselected(pkg string) bool {
	r.listMu.Lock()
	defer r.listMu.Unlock()
	return r.deselected[pkg]
}

// speculation is a package run with the binary an earlier run left, before go says
// whether it is still up to date: its processes' output is held back until it does. If go
// links it anew, what ran is thrown away and the package runs again from the new binary's
// list; if go cannot build it any more, the package leaves the plan (the build says why).
type speculation struct {
	pkg    string
	path   string // the run's own link of the earlier binary
	done   chan struct{}
	ok     bool // set before done is closed: the binary was up to date
	once   sync.Once
	broken bool // its sum could not be taken: it never counts as up to date
	// checked is closed once it is known whether the result cache has the earlier
	// binary's result (cached): such a package does not run at all, speculatively or not.
	checked chan struct{}
	cached  bool
}

func (sp *speculation) resolve(ok bool) {
	sp.once.Do(func() {
		sp.ok = ok
		close(sp.done)
	})
}

// sameAs reports whether path, the binary go left, is the one the speculation runs: the
// same content (binarySum: a Go binary's build ID names its content), whether go found it
// up to date or linked it anew to the same bytes (go test -exec links every binary its
// test cache does not vouch for, gobuild/shim.go).
func (sp *speculation) sameAs(path string) bool {
	if sp.broken {
		return false
	}
	a, err1 := binarySum(path)
	b, err2 := binarySum(sp.path)
	return err1 == nil && err2 == nil && a == b
}

// resolved reports whether go has said, and what.
func (sp *speculation) resolved() (done, ok bool) {
	select {
	case <-sp.done:
		return true, sp.ok
	default:
		return false, false
	}
}

// fileID tells a file from the one that replaces it (go renames a new binary into place).
type fileID struct {
	ino  uint64
	size int64
}

func idOf(path string) (fileID, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, false
	}
	return fileID{ino: filesum.Inode(fi), size: fi.Size()}, true
}

// canSpeculate says whether packages may run with their earlier binaries: not with
// -cover (the counters of processes thrown away would count), and only on gateways that
// share this machine's files (nothing is shipped that may be thrown away).
func (r *runner) canSpeculate() bool {
	if r.coverRoot != "" {
		return false
	}
	for _, remote := range r.remoteGW {
		if remote {
			return false
		}
	}
	return true
}

// speculate puts into the plan, at once, every package of pkgs whose binary an earlier
// run left in keep, linked into this run's own directory spec, while go checks them.
func (r *runner) speculate(ctx context.Context, pkgs []gobuild.Package, keep, specDir, pl string, ids []string, listing *sync.WaitGroup, sem chan struct{}) map[string]*speculation {
	out := map[string]*speculation{}
	var bins []gobuild.Binary
	paths := gobuild.BinaryPaths(pkgs, keep)
	for _, p := range pkgs {
		kept, ok := paths[p.ImportPath]
		if !ok {
			continue
		}
		id, ok := idOf(kept)
		if !ok {
			continue
		}
		rel, err := filepath.Rel(keep, kept)
		if err != nil {
			continue
		}
		own := filepath.Join(specDir, rel)
		if os.MkdirAll(filepath.Dir(own), 0o755) != nil || linkOrCopy(kept, own) != nil {
			continue
		}
		if oid, ok := idOf(own); !ok || oid.ino != id.ino {
			continue // it changed meanwhile, or is a copy: no speculation on it
		}
		out[p.ImportPath] = &speculation{pkg: p.ImportPath, path: own, done: make(chan struct{}), checked: make(chan struct{})}
		bins = append(bins, gobuild.Binary{Package: p, Path: own})
	}
	// Each binary's sum, before go may touch the files (sameAs compares with it).
	var hashing sync.WaitGroup
	for _, b := range bins {
		hashing.Add(1)
		go func() {
			defer hashing.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := binarySum(b.Path); err != nil {
				out[b.Package.ImportPath].broken = true
			}
		}()
	}
	hashing.Wait()
	// Known as speculative before any of its batches can run.
	r.specMu.Lock()
	r.spec = out
	r.specMu.Unlock()
	for _, b := range bins {
		sp := out[b.Package.ImportPath]
		listing.Add(1)
		go func() {
			defer listing.Done()
			// Beside go's check, not before it: what the result cache has never runs. (Not
			// under sem: the build waits for this answer, not for other packages' lists.)
			sp.cached = r.results != nil && !sp.broken && r.cachedValid(b, ids)
			close(sp.checked)
			if sp.cached {
				return
			}
			r.setBin(pl, b.Package.ImportPath, b.Path)
			sem <- struct{}{}
			u := r.listOne(ctx, b)
			<-sem
			r.addUnit(u, ids)
		}()
	}
	return out
}

// speculationOf is the speculation of pkg, if it was run with an earlier binary.
func (r *runner) speculationOf(pkg string) *speculation {
	r.specMu.Lock()
	defer r.specMu.Unlock()
	return r.spec[pkg]
}

// replanUnit replaces a speculated package's work with what its new binary lists.
func (r *runner) replanUnit(u scheduler.Package, ids []string) {
	r.plan.Reset(u)
	r.tellPlanned(u, r.scopesOf(u.Path, ids))
}

// scopesOf lists the scopes of pkg: one in load mode, one per gateway of ids in each mode.
func (r *runner) scopesOf(pkg string, ids []string) []ledger.Scope {
	if r.cfg.Mode != scheduler.Each {
		return []ledger.Scope{{Package: pkg}}
	}
	scopes := make([]ledger.Scope, 0, len(ids))
	for _, w := range ids {
		scopes = append(scopes, ledger.Scope{Package: pkg, Worker: w})
	}
	return scopes
}

// tellPlanned tells the observers that draw the run the work of u in each of its scopes,
// with the estimates it is planned by.
func (r *runner) tellPlanned(u scheduler.Package, scopes []ledger.Scope) {
	var p ledger.Planned
	if u.Whole {
		p.Whole = max(r.durations.PackageEstimate(u.Path), u.Startup)
	} else {
		p.Tests = make(map[string]time.Duration, len(u.Tests))
		for _, t := range u.Tests {
			p.Tests[t.Name] = t.Est
		}
	}
	for _, s := range scopes {
		p.Scope = s
		r.ledger.Planned(p)
	}
}

// dropUnit takes a speculated package out of the run: it did not build after all.
func (r *runner) dropUnit(pkg string, ids []string) {
	r.plan.Drop(pkg)
	for _, s := range r.scopesOf(pkg, ids) {
		r.ledger.Drop(s)
		r.ledger.Planned(ledger.Planned{Scope: s, Gone: true})
	}
}

// readyOrder lets goroutines act in the order of their tickets; a nil readyOrder imposes
// none.
type readyOrder struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int // tickets given
	next int // the ticket whose turn it is
}

func (o *readyOrder) ticket() int {
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	return o.n - 1
}

// wait returns once every earlier ticket is done.
func (o *readyOrder) wait(t int) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cond == nil {
		o.cond = sync.NewCond(&o.mu)
	}
	for o.next < t {
		o.cond.Wait()
	}
}

// done ends ticket t's turn (once its own has come).
func (o *readyOrder) done(t int) {
	if o == nil {
		return
	}
	o.wait(t)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next = t + 1
	o.cond.Broadcast()
}
