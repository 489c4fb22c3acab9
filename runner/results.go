package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
	"github.com/godist/godist/proto"
	"github.com/godist/godist/resultcache"
)

// The result cache (resultcache): a package that passed is recorded with what its tests
// read; a later run with the same binary and cacheable flags, whose inputs are unchanged,
// replays it as "ok  pkg  (cached)" instead of running it. What go test caches, godist
// caches: see cacheOff for what disables it.

// cacheableTestFlags are go test's cacheable flags (cmd/go's tryCacheWithID), as
// -test.NAME; coverprofile and outputdir are cacheable without being part of the key.
var cacheableTestFlags = map[string]bool{
	"benchtime": true, "cpu": true, "list": true, "parallel": true, "run": true, "short": true,
	"skip": true, "timeout": true, "failfast": true, "v": true, "fullpath": true,
}

// cacheOff says why this run's results are neither reused nor recorded, "" if they are.
func (r *runner) cacheOff() string {
	c := r.cfg
	switch {
	case c.ResultCache == "":
		return "no result cache"
	case c.Count > 0:
		return "-count"
	case c.Shuffle != "":
		return "-shuffle"
	case c.Bench != "":
		return "-bench"
	case c.List != "":
		return "-list"
	case c.ShardN > 0:
		return "--shard"
	case c.LastFailed:
		return "--lf"
	case len(c.TestArgs) > 0:
		return "arguments after --"
	case len(r.platforms()) > 1:
		return "gateways of several platforms"
	}
	for _, f := range c.TestFlags {
		name, _, _ := strings.Cut(strings.TrimPrefix(f, "-test."), "=")
		if !cacheableTestFlags[name] && name != "coverprofile" && name != "outputdir" {
			return "-" + name
		}
	}
	return ""
}

// cacheArgs are the flags that are part of a result's key, in a fixed order.
func (r *runner) cacheArgs() []string {
	c := r.cfg
	args := []string{"run=" + c.Run, "skip=" + c.Skip, "short=" + strconv.FormatBool(c.Short),
		"failfast=" + strconv.FormatBool(c.Failfast), "timeout=" + c.Timeout.String(),
		"cover=" + strconv.FormatBool(c.Cover)}
	for _, f := range c.TestFlags {
		name, _, _ := strings.Cut(strings.TrimPrefix(f, "-test."), "=")
		if cacheableTestFlags[name] {
			args = append(args, f)
		}
	}
	return args
}

// results is the run's use of the result cache.
type results struct {
	cache *resultcache.Cache
	mu    sync.Mutex
	keys  map[ledger.Scope]string
	logs  map[ledger.Scope][]procLog
	bad   map[ledger.Scope]bool // a process of it left no usable test log
	hits  map[ledger.Scope]bool
	valid map[string]*resultcache.Entry // by key: entries checked valid in this run
	saved int

	infoMu sync.Mutex
	infos  map[string]*proto.Info   // gateway id -> its Info, once up
	up     map[string]chan struct{} // closed when the gateway is up, or will not be
}

// procLog is one test process's log, with where it ran.
type procLog struct {
	ops   []resultcache.LogOp
	where resultcache.Where
	gw    string
}

func (r *runner) openResults() {
	if why := r.cacheOff(); why != "" {
		return
	}
	c, err := resultcache.Open(r.cfg.ResultCache)
	if err != nil {
		r.ledger.Note("godist: " + err.Error() + "; results are not cached")
		return
	}
	r.results = &results{cache: c, keys: map[ledger.Scope]string{}, logs: map[ledger.Scope][]procLog{},
		bad: map[ledger.Scope]bool{}, hits: map[ledger.Scope]bool{}, valid: map[string]*resultcache.Entry{}, infos: map[string]*proto.Info{}, up: map[string]chan struct{}{}}
	for _, g := range r.cfg.Gateways {
		r.results.up[g.ID] = make(chan struct{})
	}
}

// gatewayUp records gw's Info (nil: it did not start) for the env inputs of results
// recorded there.
func (r *runner) gatewayUp(id string, info *proto.Info) {
	rs := r.results
	if rs == nil {
		return
	}
	rs.infoMu.Lock()
	defer rs.infoMu.Unlock()
	ch := rs.up[id]
	if ch == nil {
		return
	}
	select {
	case <-ch:
		return // the first word stands
	default:
	}
	rs.infos[id] = info
	close(ch)
}

// remoteInfo waits for gateway id to be up and returns its Info (nil if it is not).
func (r *runner) remoteInfo(ctx context.Context, id string) *proto.Info {
	rs := r.results
	rs.infoMu.Lock()
	ch := rs.up[id]
	rs.infoMu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return nil
	}
	rs.infoMu.Lock()
	defer rs.infoMu.Unlock()
	return rs.infos[id]
}

// envOf gives the sums of the variables a test process on gateway id sees: the worker's
// environment (this machine's for a local gateway, the Info's of a remote one) with the
// variables godist sets for test processes over it.
func (r *runner) envOf(id string, remote *proto.Info) resultcache.Env {
	over := map[string]string{}
	for _, kv := range r.testEnv(id) {
		k, v, _ := strings.Cut(kv, "=")
		over[k] = v
	}
	return func(name string) string {
		if v, ok := over[name]; ok {
			return resultcache.EnvSum(v, true)
		}
		if remote != nil {
			if s, ok := remote.EnvSums[name]; ok {
				return s
			}
			return resultcache.EnvSum("", false)
		}
		v, ok := os.LookupEnv(name)
		return resultcache.EnvSum(v, ok)
	}
}

// resultKey is the key of pkg's result with the binary at bin, in scope s.
func (r *runner) resultKey(s ledger.Scope, bin string) (string, bool) {
	sum, err := binarySum(bin)
	if err != nil {
		return "", false
	}
	parts := append([]string{"pkg=" + s.Package, "bin=" + sum, "mode=" + strconv.Itoa(int(r.cfg.Mode))}, r.cacheArgs()...)
	if s.Worker != "" {
		// In each mode a result is a gateway's own.
		for _, g := range r.cfg.Gateways {
			if g.ID == s.Worker {
				parts = append(parts, "gateway="+g.ID+" "+g.Spec.Raw)
			}
		}
	}
	return resultcache.Key(parts...), true
}

// validEntry is the cache's entry under key for scope s if it is valid now, its events
// read; checked once a run (valid remembers it). An entry recorded on a remote gateway
// waits for that gateway's environment, unless wait is false (then it is no hit).
func (r *runner) validEntry(ctx context.Context, s ledger.Scope, key string, wait bool) (*resultcache.Entry, bool) {
	rs := r.results
	rs.mu.Lock()
	e, ok := rs.valid[key]
	rs.mu.Unlock()
	if ok {
		return e, true
	}
	e, ok = rs.cache.Get(key)
	if !ok || e.Package != s.Package || (e.Remote && !wait) {
		return nil, false
	}
	var info *proto.Info
	if e.Remote {
		if info = r.remoteInfo(ctx, e.Worker); info == nil {
			return nil, false
		}
	}
	if ok, _ := resultcache.Valid(e.Inputs, r.envOf(e.Worker, info)); !ok || e.LoadEvents() != nil {
		return nil, false
	}
	rs.mu.Lock()
	rs.valid[key] = e
	rs.mu.Unlock()
	return e, true
}

// cachedValid reports whether the cache has a valid result of b in every scope (ids:
// the gateways), without waiting for a remote gateway: beside go's build, so that a
// package it has is not run speculatively.
func (r *runner) cachedValid(b gobuild.Binary, ids []string) bool {
	for _, s := range r.scopesOf(b.Package.ImportPath, ids) {
		key, ok := r.resultKey(s, b.Path)
		if !ok {
			return false
		}
		if _, ok := r.validEntry(context.Background(), s, key, false); !ok {
			return false
		}
	}
	return true
}

// replayCached replays every scope of pkg from the cache, if all of them have a valid
// entry for binary b, and reports whether it did (the package then needs no run).
func (r *runner) replayCached(ctx context.Context, b gobuild.Binary, ids []string) bool {
	rs := r.results
	if rs == nil {
		return false
	}
	scopes := r.scopesOf(b.Package.ImportPath, ids)
	entries := make([]*resultcache.Entry, len(scopes))
	hit := true
	for i, s := range scopes {
		key, ok := r.resultKey(s, b.Path)
		if !ok {
			return false
		}
		rs.mu.Lock()
		rs.keys[s] = key // for recording, hit or not
		rs.mu.Unlock()
		if hit {
			entries[i], hit = r.validEntry(ctx, s, key, true)
		}
	}
	if !hit {
		return false
	}
	tests := 0
	for i, s := range scopes {
		e := entries[i]
		if err := r.restoreCover(s, e); err != nil {
			return false
		}
		r.ledger.Expect(s)
		rs.mu.Lock()
		rs.hits[s] = true
		rs.mu.Unlock()
		r.ledger.Replay(s, e.Worker, ledger.Record{Events: e.Events, Cover: e.Cover})
		for _, ev := range e.Events {
			if ev.Action == gotest.ActionRun && ev.Test != "" && !strings.Contains(ev.Test, "/") {
				tests++
			}
		}
	}
	r.totalMu.Lock()
	r.total += tests
	total := r.total
	r.totalMu.Unlock()
	r.ledger.SetTotal(total)
	return true
}

// addTestLog records the test log of one process of scope s on gateway gw (nil log: it
// left none that can be read, so the scope is not cached).
func (r *runner) addTestLog(s ledger.Scope, gw string, data []byte, dir, base string) {
	rs := r.results
	if rs == nil {
		return
	}
	ops, err := resultcache.ParseTestLog(data)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if err != nil {
		rs.bad[s] = true
		return
	}
	w := resultcache.Where{Dir: dir}
	if base != "" {
		w.Local = func(p string) (string, bool) {
			p = filepath.ToSlash(p)
			if !strings.HasPrefix(p, base+"/") {
				return "", false
			}
			return filepath.FromSlash(strings.TrimPrefix(p, base)), true
		}
	}
	rs.logs[s] = append(rs.logs[s], procLog{ops: ops, where: w, gw: gw})
}

// markUncacheable says scope s is not to be recorded (a process of it was lost).
func (r *runner) markUncacheable(s ledger.Scope) {
	if rs := r.results; rs != nil {
		rs.mu.Lock()
		rs.bad[s] = true
		rs.mu.Unlock()
	}
}

// scopeEnded is the ledger's Ended: a scope that passed, every process of which left its
// test log, and none of whose tests failed on any attempt (a flaky pass is not a result
// to reuse), is recorded.
func (r *runner) scopeEnded(s ledger.Scope, rec ledger.Record) {
	rs := r.results
	if rs == nil || !rec.Passed {
		return
	}
	rs.mu.Lock()
	key, logs, bad, hit := rs.keys[s], rs.logs[s], rs.bad[s], rs.hits[s]
	delete(rs.logs, s)
	rs.mu.Unlock()
	if key == "" {
		// It ran with the binary of a speculation, whose key was not asked for.
		key, _ = r.resultKey(s, r.binFor(r.platforms()[0], s.Package))
	}
	if key == "" || bad || hit || len(logs) == 0 {
		return
	}
	for _, e := range rec.Events {
		if e.Action == gotest.ActionFail {
			return
		}
	}
	worker, remote := logs[0].gw, r.remoteGW[logs[0].gw]
	for _, l := range logs[1:] {
		if r.remoteGW[l.gw] != remote || (remote && l.gw != worker) {
			return // read on different hosts: no one environment to check it against
		}
	}
	var info *proto.Info
	if remote {
		if info = r.remoteInfo(context.Background(), worker); info == nil {
			return
		}
	}
	ops := make([][]resultcache.LogOp, len(logs))
	where := make([]resultcache.Where, len(logs))
	for i, l := range logs {
		ops[i], where[i] = l.ops, l.where
	}
	inputs, err := resultcache.Inputs(ops, where, r.moduleRoot, r.envOf(worker, info))
	if err != nil {
		return
	}
	e := &resultcache.Entry{Package: s.Package, Worker: worker, Remote: remote, Inputs: inputs,
		Events: rec.Events, Cover: rec.Cover, Elapsed: rec.Elapsed}
	if dir := r.coverDir(s); dir != "" {
		e.CoverFiles = map[string][]byte{}
		ents, _ := os.ReadDir(dir)
		for _, f := range ents {
			if data, err := os.ReadFile(filepath.Join(dir, f.Name())); err == nil && f.Type().IsRegular() {
				e.CoverFiles[f.Name()] = data
			}
		}
	}
	if err := rs.cache.Put(key, e); err == nil {
		rs.mu.Lock()
		rs.saved++
		rs.mu.Unlock()
	}
}

// restoreCover puts a cached scope's coverage counters where -coverprofile merges them.
func (r *runner) restoreCover(s ledger.Scope, e *resultcache.Entry) error {
	dir := r.coverDir(s)
	if dir == "" {
		return nil
	}
	for name, data := range e.CoverFiles {
		if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
			return fmt.Errorf("result cache: bad coverage file name %q", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// noteResults tells the user how many packages came from the cache, and trims it.
func (r *runner) noteResults() {
	rs := r.results
	if rs == nil {
		return
	}
	rs.mu.Lock()
	hits := map[string]bool{}
	for s := range rs.hits {
		hits[s.Package] = true
	}
	saved := rs.saved
	rs.mu.Unlock()
	pkgs := map[string]bool{}
	for _, s := range r.ledger.Scopes() {
		pkgs[s.Package] = true
	}
	if len(pkgs) > 0 {
		r.ledger.Note(fmt.Sprintf("godist: %d of %d package(s) from the result cache, %d recorded (%s)", len(hits), len(pkgs), saved, rs.cache.Dir()))
	}
	max := r.cfg.CacheMax
	if max == 0 {
		max = resultcache.DefaultMax
	}
	if max > 0 && saved > 0 {
		// Only a Put grows the cache: a run that recorded nothing has nothing to trim, and
		// need not walk the whole directory (a cached run is the one that must be quick).
		rs.cache.Trim(max)
	}
}
