package runner

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
	"github.com/godist/godist/scheduler"
)

// builds is what building for every platform the gateways need left: the binaries, and
// the events of the packages the build settled (build failures, packages without test
// files), per platform, to be written once the run knows who reports them.
type builds struct {
	bins    map[string]map[string]string         // platform -> package -> binary
	events  map[string][]gotest.Event            // platform -> build events, in go's order
	settled map[string]map[string]bool           // platform -> packages the build settled
	binOf   map[string]map[string]gobuild.Binary // platform -> package -> binary
	kept    []string                             // the binary directories kept between runs
}

// build builds the test binaries of pkgs for every platform of the gateways. A go test -c
// that fails without naming a package (a toolchain or flag problem) ends the run with go's
// message and the gateways it concerns.
func (r *runner) build(ctx context.Context, bopts gobuild.Options, pkgs []gobuild.Package, tmp string) (*builds, error) {
	b := &builds{bins: map[string]map[string]string{}, events: map[string][]gotest.Event{},
		settled: map[string]map[string]bool{}, binOf: map[string]map[string]gobuild.Binary{}}
	for _, pl := range r.platforms() {
		opts := platformOptions(bopts, pl)
		var evs []gotest.Event
		keep := r.binDir(tmp, pl, bopts)
		res, err := r.buildLocked(ctx, opts, pkgs, keep, r.ownBinDir(tmp, keep), func(e gotest.Event) { evs = append(evs, e) })
		if err != nil {
			return nil, buildErr(err, pl, r.gatewaysOn(pl))
		}
		m := map[string]string{}
		bm := map[string]gobuild.Binary{}
		for _, bin := range res.Binaries {
			m[bin.Package.ImportPath] = bin.Path
			bm[bin.Package.ImportPath] = bin
		}
		b.bins[pl], b.binOf[pl], b.events[pl], b.settled[pl] = m, bm, evs, res.Reported
		b.kept = append(b.kept, keep)
	}
	return b, nil
}

// buildLocked builds into the binary directory kept between runs (where go test -c skips
// an up-to-date link) while holding its lock, so that concurrent runs of one module do not
// build over each other, and links each binary into this run's own directory: a later
// run's build replaces the kept files (go renames a new binary into place), never the
// ones this run executes. opts.Ready, if set, gets each binary as soon as it is linked
// there, with its own path.
func (r *runner) buildLocked(ctx context.Context, opts gobuild.Options, pkgs []gobuild.Package, keep, own string, emit func(gotest.Event)) (*gobuild.Result, error) {
	var unlock func()
	if e := r.takeEarly(keep); e != nil {
		unlock, opts.Early = e.unlock, e.b // its go command runs, holding the lock
	} else {
		var err error
		if unlock, err = lockDir(keep); err != nil {
			return nil, fmt.Errorf("test binary cache: %w", err)
		}
	}
	defer unlock()
	var mu sync.Mutex
	owned := map[string]string{} // kept path -> own path
	link := func(b gobuild.Binary) (gobuild.Binary, error) {
		if keep == own {
			return b, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if p, ok := owned[b.Path]; ok {
			b.Path = p
			return b, nil
		}
		rel, err := filepath.Rel(keep, b.Path)
		if err != nil {
			return b, err
		}
		dst := filepath.Join(own, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return b, err
		}
		if err := linkOrCopy(b.Path, dst); err != nil {
			return b, fmt.Errorf("test binary cache: %w", err)
		}
		owned[b.Path] = dst
		b.Path = dst
		return b, nil
	}
	if ready := opts.Ready; ready != nil {
		opts.Ready = func(b gobuild.Binary) {
			b, err := link(b)
			if err != nil {
				r.ledger.Note("godist: " + err.Error())
				return // it is not among the binaries: the run reports it did not build
			}
			ready(b)
		}
	}
	if bins, ok := r.tree.fresh(keep); ok {
		// The tree is as the last build left it, and so are its binaries: no go command.
		tracef("binaries up to date (tree unchanged)")
		res := &gobuild.Result{Reported: map[string]bool{}}
		for _, p := range pkgs {
			if !p.HasTests {
				for _, e := range gotest.NoTestFiles(p.ImportPath, time.Now) {
					emit(e)
				}
				res.Reported[p.ImportPath] = true
			}
		}
		if opts.Ready != nil {
			for _, b := range bins {
				opts.Ready(b) // linked into this run's directory by the wrapper above
			}
		}
		res.Binaries = bins
		return r.ownBinaries(res, link)
	}
	r.tree.forget() // the binaries it names are about to change
	failed := false
	res, err := gobuild.Build(ctx, opts, pkgs, keep, func(e gotest.Event) {
		if e.Action == gotest.ActionBuildFail || e.Action == gotest.ActionFail {
			failed = true
		}
		emit(e)
	})
	if err != nil {
		return res, err
	}
	if !failed && r.check.confirmed() {
		r.tree.save(keep, r.resolved, res.Binaries)
	}
	return r.ownBinaries(res, link)
}

// ownBinaries puts in res the binaries' own paths (link's).
func (r *runner) ownBinaries(res *gobuild.Result, link func(gobuild.Binary) (gobuild.Binary, error)) (*gobuild.Result, error) {
	var err error
	bins := res.Binaries[:0]
	for _, b := range res.Binaries {
		if b, err = link(b); err != nil {
			return nil, err
		}
		bins = append(bins, b)
	}
	res.Binaries = bins
	return res, nil
}

// ownBinDir is where this run links the binaries kept in keep: beside the kept
// directories (so that a hard link works), under runs/<run id>/, which the run removes
// when it ends; or in tmp when the binaries are kept there already.
func (r *runner) ownBinDir(tmp, keep string) string {
	if strings.HasPrefix(keep, tmp) {
		return keep
	}
	return filepath.Join(r.runsDir(keep), r.uid, filepath.Base(keep))
}

// runsDir is the directory of the runs' own binary directories, beside the kept ones.
func (r *runner) runsDir(keep string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(keep)), "testbin-runs")
}

// cleanRuns removes this run's own binary directories, and those of runs that ended a day
// ago or more without removing theirs (killed); both are godist's own.
func (r *runner) cleanRuns(keep string) {
	dir := r.runsDir(keep)
	os.RemoveAll(filepath.Join(dir, r.uid))
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && e.IsDir() && time.Since(info.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// linkOrCopy makes dst the file src is: a hard link, or a copy across file systems.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// buildErr is what a failed build of platform pl (for gateways ids) ends the run with:
// a go test -c that failed without naming a package (flags, a platform without -race) is
// bad usage with go's message, found before any test runs.
func buildErr(err error, pl string, ids []string) error {
	var be *gobuild.BuildError
	if errors.As(err, &be) {
		return &UsageError{fmt.Errorf("building the tests for %s (%s): %s", pl, strings.Join(ids, ", "), be.Msg)}
	}
	return err
}

// gatewaysOn lists the ids of the gateways of platform pl.
func (r *runner) gatewaysOn(pl string) []string {
	var ids []string
	for _, g := range r.cfg.Gateways {
		if platformOf(g.Spec) == pl {
			ids = append(ids, g.ID)
		}
	}
	return ids
}

// runnable returns the binaries that load mode runs: those of the first platform whose
// package built on every platform. A package that failed to build on one of them is
// settled by that platform's build failure (it could not run on every gateway).
func (b *builds) runnable(pkgs []gobuild.Package, platforms []string) []gobuild.Binary {
	var out []gobuild.Binary
	for _, p := range pkgs {
		bin, ok := b.binOf[platforms[0]][p.ImportPath]
		if !ok {
			continue
		}
		everywhere := true
		for _, pl := range platforms[1:] {
			if _, ok := b.binOf[pl][p.ImportPath]; !ok {
				everywhere = false
			}
		}
		if everywhere {
			out = append(out, bin)
		}
	}
	return out
}

// anywhere returns, for each mode, a binary of every package that built on some platform:
// each gateway runs what built for its own (the others' failures are theirs to report).
func (b *builds) anywhere(pkgs []gobuild.Package, platforms []string) []gobuild.Binary {
	var out []gobuild.Binary
	for _, p := range pkgs {
		for _, pl := range platforms {
			if bin, ok := b.binOf[pl][p.ImportPath]; ok {
				out = append(out, bin)
				break
			}
		}
	}
	return out
}

// loadEvents are the build events load mode writes: the first platform's, and for a
// package that built there but failed on another platform, that platform's.
func (b *builds) loadEvents(platforms []string) []gotest.Event {
	evs := append([]gotest.Event(nil), b.events[platforms[0]]...)
	done := map[string]bool{}
	for p := range b.settled[platforms[0]] {
		done[p] = true
	}
	for _, pl := range platforms[1:] {
		var took []string
		for _, e := range b.events[pl] {
			p := gobuild.EventPackage(e)
			if done[p] || !b.settled[pl][p] {
				continue
			}
			evs = append(evs, e)
			took = append(took, p)
		}
		for _, p := range took {
			done[p] = true
		}
	}
	return evs
}

// emitBuildEvents writes what the build settled: in load mode once; in each mode once per
// gateway, from the build of its platform and carrying its id, so that each gateway's
// slice of the stream is a whole go test run; with --shard, only for the packages this
// shard reports (each such package is reported by exactly one shard).
func (r *runner) emitBuildEvents(b *builds, platforms []string) {
	keep := func(e gotest.Event) bool {
		return r.cfg.ShardN == 0 || shardOwner(gobuild.EventPackage(e), r.cfg.ShardN) == r.cfg.ShardI
	}
	if r.cfg.Mode != scheduler.Each {
		for _, e := range b.loadEvents(platforms) {
			if keep(e) {
				r.ledger.Emit(ledger.Scope{}, e)
			}
		}
		return
	}
	for _, g := range r.cfg.Gateways {
		for _, e := range b.events[platformOf(g.Spec)] {
			if keep(e) {
				e.Worker = g.ID
				r.ledger.Emit(ledger.Scope{}, e)
			}
		}
	}
}

// shardOwner is the shard (1..n) that reports a package the build settled.
func shardOwner(pkg string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(pkg))
	return int(h.Sum32()%uint32(n)) + 1
}
