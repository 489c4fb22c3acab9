package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/ledger"
	"github.com/godist/godist/scheduler"
	"github.com/godist/godist/xspec"
)

func hashString(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// restartPolicy decides what happens to a gateway whose worker was lost: a local worker
// (popen, not via a hop) is started again, up to maxRestarts times, its tests having gone
// back to the queue; any other is abandoned, since whatever killed it would likely do it
// again. Nothing is restarted once the run is over or stopped.
type restartPolicy struct{ maxRestarts int }

func (p restartPolicy) restart(spec *xspec.Spec, restarts int, runOver bool) bool {
	return !runOver && spec.Type == xspec.TypePopen && spec.Via == "" && restarts < p.maxRestarts
}

// maxRestarts is how often a lost local worker is started again.
const maxRestarts = 3

// drive starts the gateways concurrently and runs one worker loop per gateway until the
// plan is done. A gateway that fails to start or is lost gives its work back.
func (r *runner) drive(ctx context.Context, gws []xspec.Gateway) {
	sess := r.cfg.Session
	var group *gateway.Group
	if sess != nil {
		group = sess.group
	} else {
		group = gateway.NewGroup(gateway.Options{Executable: r.cfg.Executable, Keepalive: r.cfg.Keepalive})
		defer group.Terminate(5 * time.Second)
	}
	start := func(ctx context.Context, g xspec.Gateway) (*gateway.Gateway, error) {
		if gw := sess.take(g.ID); gw != nil {
			return gw, nil // up since an earlier run of the session
		}
		var gw *gateway.Gateway
		var err error
		if r.cfg.Start != nil {
			gw, err = r.cfg.Start(ctx, g, r.workerEnv(g.ID))
		} else {
			gw, err = group.StartWith(ctx, g.ID, g.Spec, r.workerEnv(g.ID))
		}
		if err == nil {
			sess.keep(g.ID, gw)
		}
		return gw, err
	}
	// A gateway of a session stays up after the run, unless it was lost. A hop (a gateway
	// others are opened through, via=) whose own work is done stays up until every worker
	// loop has ended: closing it would cut off the gateways relayed through it, which may
	// still be running theirs (in each mode, every gateway has the whole plan).
	hops := map[string]bool{}
	for _, g := range gws {
		if g.Spec.Via != "" {
			hops[g.Spec.Via] = true
		}
	}
	var hopsMu sync.Mutex
	var idleHops []*gateway.Gateway
	done := func(id string, gw *gateway.Gateway, lost bool) {
		if sess == nil && !lost && hops[id] {
			hopsMu.Lock()
			idleHops = append(idleHops, gw)
			hopsMu.Unlock()
			return
		}
		if sess == nil || lost {
			sess.drop(id)
			gw.Close()
		}
	}
	// In load modes, once a worker finds the plan done, nothing is left for a gateway
	// still starting: its start (and sync) is cancelled rather than waited for.
	startCtx, cancelStarts := context.WithCancel(ctx)
	defer cancelStarts()
	policy := restartPolicy{maxRestarts: maxRestarts}
	for _, g := range gws {
		r.ledger.Gateway(ledger.Gateway{ID: g.ID, Host: specHost(g, r.cfg.Gateways)})
	}
	up := func(g xspec.Gateway, gw *gateway.Gateway) {
		// A local worker stays "local"; any other says where it landed.
		if gw.Info.Hostname != "" && (g.Spec.Type != xspec.TypePopen || g.Spec.Via != "") {
			r.ledger.Gateway(ledger.Gateway{ID: g.ID, Host: gw.Info.Hostname})
		}
	}
	var wg sync.WaitGroup
	for _, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.gatewayUp(g.ID, nil) // if it never comes up
			if r.results != nil && !r.remoteGW[g.ID] && !r.plan.AwaitWork(startCtx) {
				// Everything came from the result cache: a local worker is not worth starting.
				r.plan.Leave(g.ID)
				return
			}
			r.ledger.WorkerState(g.ID, "starting")
			tracef("start %s", g.ID)
			gw, err := start(startCtx, g)
			tracef("started %s", g.ID)
			if err == nil {
				r.gatewayUp(g.ID, &gw.Info)
				up(g, gw)
			}
			if err != nil && ctx.Err() == nil && startCtx.Err() != nil {
				r.ledger.Note("godist: " + g.ID + " (" + g.Spec.Raw + ") was not up when every test had run elsewhere; its start was cancelled")
				r.plan.Leave(g.ID)
				r.ledger.WorkerState(g.ID, "done")
				return
			}
			if err != nil {
				r.startFailed(ctx, g.ID, err)
				return
			}
			if r.remoteGW[g.ID] {
				r.ledger.WorkerState(g.ID, "syncing")
				if _, err := r.deploy.Tree(ctx, gw); err != nil {
					done(g.ID, gw, true)
					r.startFailed(ctx, g.ID, err)
					return
				}
			}
			r.ready(ctx)
			r.ledger.WorkerState(g.ID, "ready")
			for restarts := 0; ; restarts++ {
				lost := r.workLoop(ctx, gw, platformOf(g.Spec))
				done(g.ID, gw, lost)
				if !lost {
					if r.cfg.Mode != scheduler.Each {
						cancelStarts()
					}
					return
				}
				if !policy.restart(g.Spec, restarts, ctx.Err() != nil || r.stopReason(ctx) != "") {
					r.abandon(ctx, g.ID)
					return
				}
				if gw, err = start(ctx, g); err != nil {
					r.ledger.Note("godist: restarting " + g.ID + ": " + err.Error())
					r.abandon(ctx, g.ID)
					return
				}
				up(g, gw)
				r.ledger.Note("godist: " + g.ID + " started again")
				r.ledger.WorkerState(g.ID, "ready")
			}
		}()
	}
	wg.Wait()
	for _, gw := range idleHops {
		gw.Close()
	}
}

// oneHostPlan tells the plan when every gateway names one host (-n N, N*ssh=h): the
// speeds it would learn to tell fast hosts from slow ones are all the same there, and its
// probe batches would only hold the longest tests back.
func (r *runner) oneHostPlan() {
	hosts := map[string]bool{}
	for _, g := range r.cfg.Gateways {
		hosts[specHost(g, r.cfg.Gateways)] = true
	}
	if len(hosts) <= 1 {
		r.plan.OneHost()
	}
}

// specHost is the host gateway g's spec names, for the live view until its worker says
// its hostname: "local" for popen, the host of ssh= and socket= (as given: an alias of
// ~/.ssh/config stays one), the command of exec=, and for a gateway opened via another,
// that one's.
func specHost(g xspec.Gateway, all []xspec.Gateway) string {
	for hops := 0; g.Spec.Via != "" && hops < len(all); hops++ {
		found := false
		for _, h := range all {
			if h.ID == g.Spec.Via {
				g, found = h, true
				break
			}
		}
		if !found {
			break
		}
	}
	switch g.Spec.Type {
	case xspec.TypePopen:
		return "local"
	case xspec.TypeSSH, xspec.TypeSocket:
		if g.Spec.Host != "" {
			return g.Spec.Host
		}
	}
	return g.Spec.Target
}

// startFailure is a gateway that did not come up (it did not start, or its tree could
// not be shipped), while no gateway had.
type startFailure struct {
	id  string
	err error
}

// startFailed gives up gateway id, which did not come up. Once another gateway is ready it
// is said (a note) and abandoned at once; until then both wait: if none ever comes up, the
// run could not be run at all, and its error says why, alone (see unstarted).
func (r *runner) startFailed(ctx context.Context, id string, err error) {
	r.upMu.Lock()
	if !r.anyReady {
		r.unstartedErrs = append(r.unstartedErrs, startFailure{id, err})
		r.upMu.Unlock()
		r.ledger.WorkerState(id, "lost")
		r.plan.Leave(id)
		return
	}
	r.upMu.Unlock()
	r.ledger.Note("godist: " + err.Error())
	r.abandon(ctx, id)
}

// ready records that a gateway is ready for work, and says what failed to start before.
func (r *runner) ready(ctx context.Context) {
	r.upMu.Lock()
	r.anyReady = true
	r.upMu.Unlock()
	r.sayUnstarted(ctx)
}

// sayUnstarted notes the gateways that did not come up before one did, and abandons them.
func (r *runner) sayUnstarted(ctx context.Context) {
	r.upMu.Lock()
	failed := r.unstartedErrs
	r.unstartedErrs = nil
	r.upMu.Unlock()
	for _, f := range failed {
		r.ledger.Note("godist: " + f.err.Error())
		r.abandonScopes(ctx, f.id)
	}
}

// unstarted is the error of a run that had work for its gateways and none of which came
// up, each gateway's why in one line; nil if one came up, or none was started (every
// result came from the cache). With no work left (every package settled without a
// gateway: from the cache, a build failure) the gateways that failed are only noted. It
// is called once the gateways are done.
func (r *runner) unstarted(ctx context.Context) error {
	r.upMu.Lock()
	failed, up := r.unstartedErrs, r.anyReady
	r.upMu.Unlock()
	switch {
	case up || len(failed) == 0:
		return nil
	case len(r.ledger.Open()) == 0:
		r.sayUnstarted(ctx) // nothing needed them
		return nil
	case len(failed) == 1:
		return &RunError{fmt.Errorf("godist: %w", failed[0].err)}
	}
	whys := make([]string, len(failed))
	for i, f := range failed {
		whys[i] = oneLine(f.err.Error())
	}
	return &RunError{fmt.Errorf("godist: no gateway came up: %s", strings.Join(whys, "; "))}
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// abandon gives up a gateway for good: it asks for no more work, and in each mode its
// packages, which cannot go elsewhere, end failed, saying how much did not run there.
func (r *runner) abandon(ctx context.Context, id string) {
	r.ledger.WorkerState(id, "lost")
	r.plan.Leave(id)
	r.abandonScopes(ctx, id)
}

// abandonScopes ends, in each mode, the packages of gateway id, which left the plan: they
// fail, saying how much did not run there.
func (r *runner) abandonScopes(ctx context.Context, id string) {
	if r.cfg.Mode != scheduler.Each {
		return
	}
	left := r.plan.Abandon(id)
	if len(left) > 0 {
		r.lost.Store(true)
	}
	for _, l := range left {
		s := ledger.Scope{Package: l.Package, Worker: id}
		if !r.ledger.Has(s) {
			continue
		}
		r.ledger.Output(s, id, fmt.Sprintf("godist: gateway %s was lost; %d test(s) of this package did not run there\n", id, l.Tests))
		r.ledger.Fail(s)
		r.ledger.End(ctx, s, id)
	}
}

// workLoop runs batches on one gateway until the plan has none left for it (false) or the
// gateway is lost (true; the batch it held went back to the queue).
func (r *runner) workLoop(ctx context.Context, gw *gateway.Gateway, platform string) bool {
	for {
		b, ok := r.plan.Next(ctx, gw.ID)
		if !ok {
			r.ledger.WorkerState(gw.ID, "done")
			return false
		}
		s := r.scopeOf(b.Package, gw.ID)
		if ctx.Err() != nil {
			r.finish(ctx, gw.ID, s, b, nil)
			return false
		}
		r.ledger.WorkerState(gw.ID, "busy")
		out := r.runBatch(ctx, gw, platform, b)
		if out.discard {
			r.plan.Return(gw.ID, b) // of replaced (or dropped) work: it leaves nothing
			r.ledger.WorkerState(gw.ID, "ready")
			continue
		}
		if out.lost != nil {
			// The gateway is gone: the batch's unsettled tests go back to the others.
			if out.unrun {
				r.plan.Return(gw.ID, b)
			} else {
				r.finish(ctx, gw.ID, s, b, out.retry)
			}
			r.plan.Leave(gw.ID)
			r.ledger.WorkerState(gw.ID, "lost")
			if ctx.Err() == nil {
				r.ledger.Note(fmt.Sprintf("godist: gateway %s lost: %v", gw.ID, out.lost))
			}
			return true
		}
		if out.elapsed > 0 {
			r.plan.Ran(gw.ID, b, out.elapsed) // its gateway's speed, before Finish wakes the others
		}
		r.finish(ctx, gw.ID, s, b, out.retry, out.reruns...)
		r.ledger.WorkerState(gw.ID, "ready")
	}
}

// finish gives a batch back to the plan, and ends its package's scope once the plan has
// nothing more of it.
func (r *runner) finish(ctx context.Context, gwID string, s ledger.Scope, b scheduler.Batch, retry []string, reruns ...scheduler.Batch) {
	if r.plan.Finish(gwID, b, retry, reruns...) {
		r.ledger.End(ctx, s, gwID)
	}
}

// scopeOf is where a package's result on gateway id is settled.
func (r *runner) scopeOf(pkg, id string) ledger.Scope {
	if r.cfg.Mode == scheduler.Each {
		return ledger.Scope{Package: pkg, Worker: id}
	}
	return ledger.Scope{Package: pkg}
}

// settleLeftovers ends the scopes that never finished: the run was stopped or interrupted,
// or every gateway was lost.
func (r *runner) settleLeftovers(ctx context.Context) {
	open := r.ledger.Open()
	stop := r.stopReason(ctx)
	for _, s := range open {
		if stop == "" && !(r.failedFast.Load() && !r.ledger.Started(s)) {
			r.lost.Store(true)
		}
	}
	for _, s := range open {
		if r.failedFast.Load() && !r.ledger.Started(s) {
			// -failfast: as go test, nothing of a package that never started.
			r.ledger.Drop(s)
			continue
		}
		why := "no gateway was left to run them"
		if stop != "" {
			why = stop
			r.ledger.Stop(s, stop)
		} else {
			r.ledger.Fail(s)
		}
		r.ledger.Output(s, s.Worker, fmt.Sprintf("godist: some tests of this package did not run: %s\n", why))
		r.ledger.End(ctx, s, s.Worker)
	}
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

// Session keeps gateways up from one run to the next (godist --watch): a run with
// Config.Session takes the session's live gateways, starts those it lacks, and leaves them
// up at its end (a lost one is closed, and started anew by the next run). Close ends them
// all. A nil *Session is no session.
type Session struct {
	group *gateway.Group
	mu    sync.Mutex
	live  map[string]*gateway.Gateway
}

// NewSession makes a session whose gateways start workers from executable ("" = this
// program) and whose ssh= and socket= links are lost after keepalive of silence (0 =
// gateway.DefaultKeepalive).
func NewSession(executable string, keepalive time.Duration) *Session {
	return &Session{group: gateway.NewGroup(gateway.Options{Executable: executable, Keepalive: keepalive}), live: map[string]*gateway.Gateway{}}
}

// take returns gateway id's live worker, if it has one.
func (s *Session) take(id string) *gateway.Gateway {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	gw := s.live[id]
	if gw == nil {
		return nil
	}
	select {
	case <-gw.Done():
		delete(s.live, id) // it ended between runs
		gw.Close()
		return nil
	default:
		return gw
	}
}

func (s *Session) keep(id string, gw *gateway.Gateway) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live[id] = gw
}

func (s *Session) drop(id string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, id)
}

// Close ends every gateway of the session, giving each worker a few seconds to exit.
func (s *Session) Close() error {
	return s.group.Terminate(5 * time.Second)
}
