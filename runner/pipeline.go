package runner

import (
	"context"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/gotest"
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
	r.nworkers = len(gws)
	r.plan = scheduler.NewOpenPlan(cfg.Mode, len(gws), ids)
	driveDone := make(chan struct{})
	go func() {
		defer close(driveDone)
		r.drive(ctx, gws)
	}()

	opts := bopts
	if pl != hostPlatform() {
		goos, goarch, _ := strings.Cut(pl, "/")
		opts.Env = []string{"GOOS=" + goos, "GOARCH=" + goarch}
	}
	var listing sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	opts.Ready = func(b gobuild.Binary) {
		r.setBin(pl, b.Package.ImportPath, b.Path)
		listing.Add(1)
		go func() {
			defer listing.Done()
			sem <- struct{}{}
			u := r.listOne(ctx, b)
			<-sem
			r.addUnit(u, ids)
		}()
	}
	keep := r.binDir(tmp, pl, bopts)
	_, err := r.buildLocked(ctx, opts, r.buildOrder(pkgs), keep, r.ownBinDir(tmp, keep), func(e gotest.Event) {
		r.emitBuildEvent(e)
	})
	defer r.cleanRuns(keep)
	listing.Wait()
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
	sort.SliceStable(out, func(i, j int) bool { return est[out[i].ImportPath] > est[out[j].ImportPath] })
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
	scopes := []ledger.Scope{{Package: u.Path}}
	if r.cfg.Mode == scheduler.Each {
		scopes = scopes[:0]
		for _, w := range ids {
			scopes = append(scopes, ledger.Scope{Package: u.Path, Worker: w})
		}
	}
	for _, s := range scopes {
		r.ledger.Expect(s)
	}
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
