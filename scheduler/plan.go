// Package scheduler decides which tests run where and when. The Plan does no I/O and reads
// no clock: its Next blocks (waiting for work that batches in flight may give back), but
// every decision it takes can be tested on its own; the runner drives it from one
// goroutine per worker. Durations, which this package also keeps, are read from and
// written to a file (LoadDurations, Save, SaveShard).
//
// Load mode hands out batches of one package's top-level tests (one process each, so a
// costly TestMain runs once per batch, not once per test). A batch aims at a share of the
// remaining estimated work that shrinks as the run goes on (guided self-scheduling: the
// remaining work over twice the number of workers, but never less than what it costs to
// start a process), longest tests first, so that early batches are large and the last ones
// small, and no worker idles at the end while another still holds a long queue. With two
// gateways or more it also learns each one's speed from what Ran reports, and keeps long
// tests, and tests whose estimate is a guess, for the fast ones (speed.go).
//
// Each mode gives every gateway its own copy of the work; a gateway runs each package as a
// single batch.
package scheduler

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// Test is one top-level test (or example, or fuzz target) of a package.
type Test struct {
	Name string
	Est  time.Duration // estimated duration
	// First puts the test ahead of longer ones: 2 for a test that failed in the previous
	// run, 1 for a test new to a package that ran before, 0 for the rest.
	First int
}

// Package is a package's work.
type Package struct {
	Path  string
	Tests []Test
	// Whole marks a package whose tests are not known one by one (its binary could not list
	// them, or the -run pattern selects none): it runs as one batch with no test selection.
	Whole bool
	// Startup is the estimated cost of starting one process of this package (TestMain).
	Startup time.Duration
	// NoSplit keeps every test of the package in one process: nothing is known of its
	// durations yet, it asks for it (//godist:nosplit), or the mode is LoadPkg.
	NoSplit bool
	// First is Test.First for the package as a whole: 2 if something of it failed in the
	// previous run (it goes ahead of the others even when it is not split).
	First int
	// Bench asks for one more process after all of the package's tests have ended: the
	// one that runs its benchmarks. The runner runs it alone on its host.
	Bench bool
}

// Batch is what one test process runs.
type Batch struct {
	Package string
	Tests   []string // nil for a Whole package
	Whole   bool
	Est     time.Duration
	Retry   bool // these tests are re-run after the process that held them crashed
	// Run, if set, is the exact -test.run pattern of a re-run of failed tests (--rerun-fails),
	// addressing the failed subtests; Attempt counts the re-runs (1 for the first); Avoid is
	// the gateway the test failed on, which gets the batch only when no other worker can.
	Run     string
	Attempt int
	Avoid   string
	// Bench marks the batch that runs the package's benchmarks (no tests).
	Bench bool
	// Gen is the generation of the package's work the batch belongs to (see Reset).
	Gen int

	guess   bool          // some of its tests had no recorded duration (Test.First 1)
	startup time.Duration // its package's estimated start-up (Ran)
}

// Mode of distribution.
type Mode int

const (
	// Load runs each test once, on some worker.
	Load Mode = iota
	// Each runs every test on every gateway.
	Each
	// LoadPkg runs each package in one process, as go test does, and spreads the packages
	// over the workers.
	LoadPkg
)

// SplitThreshold is the estimated work below which a package is not split over several
// processes: splitting it could shorten the run by little, costs process start-ups, and
// gives up the one thing go test guarantees a package — its tests run in order in one
// process — on which some suites depend without knowing it (github.com/google/uuid's
// TestVersion6 fails four times in ten without TestVersion1 before it).
const SplitThreshold = 500 * time.Millisecond

// MinBatch is the smallest batch, in estimated time, that load mode hands out while more
// work remains than that: below it, process start-up dominates.
const MinBatch = 20 * time.Millisecond

type queue struct {
	pkgs     map[string]*pkgQueue
	retries  []Batch // re-runs go first
	inFlight int
	active   map[string]bool // workers asking this queue for work
	// live are the packages that may have work to hand out, all of those that do: take
	// looks through them, not through every package of a long run, and drops those it
	// finds with nothing left (work comes back only as a new package, or a Whole
	// package's batch given back, which Return puts back here).
	live []*pkgQueue
	// nothingAt is the plan's ver when take last found no package work to hand out
	// (re-runs aside, which it always looks at): until the plan changes, none appears,
	// and the workers woken by one change do not each look through every package again.
	nothingAt uint64
	// lastTotal is the work left to hand out when take last looked (the share of the
	// next batch, and which tests are critical, are reckoned from it).
	lastTotal time.Duration
	// minPiece, if minPieceOK, is no more than the smallest recorded piece (with its
	// start-up) that a slow gateway might take (pkgQueue.fits): pieces only grow as tests
	// are handed out, and addQueue and Return, which bring new ones, clear minPieceOK.
	// A slow gateway for which even that does not fit the share asks no further.
	minPiece   time.Duration
	minPieceOK bool
	// short are the first packages of a fast gateway's order at the last look through
	// them all, best first, and shortRanks their ranks then; every other package ranked
	// below shortCut (if shortCutOK). See fromShortlist.
	short      []*pkgQueue
	shortRanks []rank
	shortCut   rank
	shortCutOK bool
	shortCrit  time.Duration // the critical length they were ranked by
	shortShape uint64        // Plan.shape then
	shortOK    bool
}

type pkgQueue struct {
	path    string
	tests   []Test // Test.First first, then longest first
	nFirst  int    // of tests, how many have a Test.First (they come first)
	whole   bool
	startup time.Duration
	work    time.Duration // left to hand out
	total   time.Duration // at the start
	stopped bool          // -failfast: no new batches
	noSplit bool
	bench   bool // the benchmark batch is still to come
	running int  // batches of the package in flight
	ended   bool // Finish reported it complete
	started bool // a batch of it was handed out
	gen     int  // Reset makes a new generation; older batches no longer count
	dropped bool // Drop: nothing of it runs, and it is never done
	held    bool // Hold: its work is being replaced; nothing of it is handed out
	first   int  // Package.First: of a whole package, whose tests are not listed
	live    bool // in queue.live
}

// firstLeft is how far ahead the package's next work goes (Test.First).
func (pq *pkgQueue) firstLeft() int {
	f := pq.first
	if !pq.whole && len(pq.tests) > 0 {
		f = max(f, pq.tests[0].First)
	}
	return f
}

// complete reports whether nothing of the package is left to hand out or in flight.
func (q *queue) complete(pq *pkgQueue) bool {
	if pq.running > 0 || hasRetry(q, pq.path) || pq.dropped || pq.held {
		return false
	}
	return pq.stopped || (len(pq.tests) == 0 && !pq.whole && !pq.bench)
}

// Plan hands out batches to workers. It is safe for concurrent use; Next blocks while the
// queue is empty but batches in flight may still give work back.
type Plan struct {
	mu      sync.Mutex
	cond    *sync.Cond
	mode    Mode
	workers int
	queues  map[string]*queue // by queue key: "" in load mode, the gateway id in each mode
	closed  bool
	noNew   bool // -failfast after a failure: no package starts that has not started
	open    bool // more packages may come (NewOpenPlan, until Seal)
	benches bool // some package has a benchmark batch
	// alive are the load mode's gateways that may still ask for work (started or still
	// starting): a re-run avoids its gateway while another of them may take it.
	alive map[string]bool
	// ver counts the changes of the plan: each wakes the waiting Nexts (wake), and
	// queue.nothingAt keeps the last at which take found nothing to hand out.
	ver uint64
	// shape counts the changes of the packages other than take's (which only takes work
	// away): an Add, Return, Reset, Hold, Drop, Stop or NoNewPackages. See fromShortlist.
	shape uint64
	// speeds, in load mode with two gateways or more, is what Ran taught the plan of
	// their speeds (speed.go); nil otherwise.
	speeds *speeds
}

// wake wakes every Next waiting, after a change of the plan that may give them work.
// Every change goes through it: it also makes take look at the packages again.
func (p *Plan) wake() {
	p.ver++
	p.cond.Broadcast()
}

// NewPlan makes a plan of pkgs. In Load mode workers is the number of workers sharing one
// queue, and the plan learns the speeds of gateways (if two or more) from Ran; in Each mode
// gateways names the gateways, each of which gets all of pkgs.
func NewPlan(mode Mode, pkgs []Package, workers int, gateways []string) *Plan {
	p := &Plan{mode: mode, workers: max(workers, 1), queues: map[string]*queue{}, ver: 1}
	p.cond = sync.NewCond(&p.mu)
	if mode != Each && len(gateways) > 0 {
		p.alive = map[string]bool{}
		for _, g := range gateways {
			p.alive[g] = true
		}
	}
	if mode == Load && len(gateways) > 1 {
		p.speeds = &speeds{by: map[string]*gwSpeed{}}
		for _, g := range gateways {
			p.speeds.by[g] = &gwSpeed{}
		}
	}
	keys := []string{""}
	if mode == Each {
		keys = gateways
	}
	for _, k := range keys {
		p.queues[k] = &queue{pkgs: map[string]*pkgQueue{}, active: map[string]bool{}}
	}
	p.addLocked(pkgs)
	return p
}

// OneHost tells the plan that its gateways run on one machine: their speeds are the same,
// and the plan learns none (no probe batches, no fast or slow gateways). It must be called
// before the first Next.
func (p *Plan) OneHost() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.speeds = nil
}

// NewOpenPlan makes a plan that starts empty: packages join it with Add as their binaries
// are built and listed, and its workers wait for more until Seal.
func NewOpenPlan(mode Mode, workers int, gateways []string) *Plan {
	p := NewPlan(mode, nil, workers, gateways)
	p.open = true
	return p
}

// Add puts packages into the plan (every gateway's queue in each mode). A path already
// in the plan is ignored.
func (p *Plan) Add(pkgs ...Package) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addLocked(pkgs)
	p.wake()
}

// AwaitWork waits until the plan has a package, or can get none (sealed, closed, ctx
// done), and reports whether it has one: a gateway that costs little to start waits for
// it when the run may well have nothing to run (all of it from the result cache).
func (p *Plan) AwaitWork(ctx context.Context) bool {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.wake()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for _, q := range p.queues {
			if len(q.pkgs) > 0 || len(q.retries) > 0 {
				return true
			}
		}
		if p.closed || !p.open || ctx.Err() != nil {
			return false
		}
		p.cond.Wait()
	}
}

// Seal says that no more packages come: once the queues are empty and nothing is in
// flight, Next returns ok=false.
func (p *Plan) Seal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open = false
	p.wake()
}

func (p *Plan) addLocked(pkgs []Package) {
	for _, q := range p.queues {
		for _, pk := range pkgs {
			if q.pkgs[pk.Path] == nil {
				p.addQueue(q, pk)
			}
		}
	}
}

func (p *Plan) addQueue(q *queue, pk Package) {
	pq := &pkgQueue{path: pk.Path, whole: pk.Whole, startup: pk.Startup, noSplit: pk.NoSplit || p.mode == LoadPkg, bench: pk.Bench}
	pq.tests = append([]Test(nil), pk.Tests...)
	sort.SliceStable(pq.tests, func(i, j int) bool {
		if a, b := pq.tests[i].First, pq.tests[j].First; a != b {
			return a > b
		}
		return pq.tests[i].Est > pq.tests[j].Est
	})
	for _, t := range pq.tests {
		pq.work += t.Est
		if t.First > 0 {
			pq.nFirst++
		}
	}
	pq.first = pk.First
	pq.total = pq.work
	q.pkgs[pk.Path] = pq
	p.shape++
	q.minPieceOK = false
	q.lastTotal += pq.work // until take looks again
	pq.live = true
	q.live = append(q.live, pq)
	p.benches = p.benches || pk.Bench
}

func (p *Plan) queueOf(gateway string) *queue {
	if p.mode == Each {
		return p.queues[gateway]
	}
	return p.queues[""]
}

// Next returns the next batch for a worker of gateway, blocking while there is none yet
// but some may come back from batches in flight. ok is false when the worker's work is done,
// the plan was closed, or ctx ended. Every batch Next returns must be given back with
// Finish (or Return).
func (p *Plan) Next(ctx context.Context, gateway string) (b Batch, ok bool) {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.wake()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if ctx.Err() != nil {
			return Batch{}, false
		}
		b, ok, done := p.nextLocked(gateway)
		if ok || done {
			return b, ok
		}
		p.cond.Wait()
	}
}

// TryNext is Next without the wait: it returns a batch (ok), or reports that the worker's
// work is done (done: Next would return ok=false), or neither, where Next would block until
// a batch in flight comes back, a package is added or the plan is sealed. It is for a
// caller that keeps its own clock: scheduler/sim drives the plan in virtual time with it,
// asking again after each Finish, Return, Leave, Add or Seal (where Next wakes up). Every
// batch it returns must be given back as Next's are.
func (p *Plan) TryNext(gateway string) (b Batch, ok, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nextLocked(gateway)
}

// nextLocked is one attempt of Next, with p.mu held.
func (p *Plan) nextLocked(gateway string) (b Batch, ok, done bool) {
	q := p.queueOf(gateway)
	if p.closed || q == nil {
		return Batch{}, false, true
	}
	q.active[gateway] = true
	if b, ok := p.take(q, gateway); ok {
		q.inFlight++
		p.ver++ // what is left changed (waking no one: it is less)
		return b, true, false
	}
	if q.inFlight == 0 && len(q.retries) == 0 && !p.open {
		delete(q.active, gateway)
		delete(p.alive, gateway)
		if p.speeds != nil {
			p.speeds.leave(p.speeds.by[gateway])
		}
		p.wake() // a re-run someone else avoided may now be ours to take
		return Batch{}, false, true
	}
	return Batch{}, false, false
}

func (p *Plan) take(q *queue, gateway string) (b Batch, ok bool) {
	fromWork := false // a batch of package work: q.lastTotal keeps what is left
	defer func() {
		if ok && fromWork {
			q.lastTotal -= b.Est
		}
	}()
	var g *gwSpeed
	cls, rel := fast, 1.0
	if p.speeds != nil {
		if g = p.speeds.by[gateway]; g != nil {
			cls, rel = g.class, p.speeds.rel(g)
			if cls == slow && p.speeds.fast == 0 {
				cls = fast // no one else to keep the long work for
			}
		}
	}
	share := max(q.lastTotal/(2*time.Duration(p.workers)), MinBatch)
	for i, b := range q.retries {
		// A re-run of a failed test goes to another worker where there is one, also one
		// still starting (in each mode a gateway has its own queue: no other can).
		if b.Avoid == gateway && p.mode != Each && p.othersFor(q, gateway) {
			continue
		}
		// The tests a lost or crashed process left go to a fast gateway, unless they fit
		// the share at this one's speed.
		if cls == slow && b.Retry && (b.guess || time.Duration(float64(b.Est+b.startup)*rel) > share) {
			continue
		}
		q.retries = append(q.retries[:i:i], q.retries[i+1:]...)
		if pq := q.pkgs[b.Package]; pq != nil {
			pq.running++
			b.Gen = pq.gen
		}
		return b, true
	}
	if q.nothingAt == p.ver {
		return Batch{}, false // looked since the last change: nothing
	}
	// A package's benchmarks run once all of its tests have ended, as in go test. (Only
	// with -bench: otherwise no batch pays for looking.)
	for _, pq := range p.benchPkgs(q) {
		if pq.bench && !pq.stopped && !pq.dropped && !pq.held && !pq.whole && len(pq.tests) == 0 && pq.running == 0 && !hasRetry(q, pq.path) && (pq.started || !p.noNew) {
			pq.bench = false
			pq.running++
			pq.started = true
			return Batch{Package: pq.path, Bench: true, Gen: pq.gen}, true
		}
	}
	if g != nil && g.nothingAt == p.ver {
		return Batch{}, false // looked since the last change: nothing it may take
	}
	fromWork = true
	if cls == slow && q.minPieceOK && time.Duration(float64(q.minPiece)*rel) > share {
		return Batch{}, false // nothing it may take: the share only shrinks
	}
	workers := time.Duration(p.workers)
	// A test longer than half the work left per worker is critical (speed.go).
	critLimit := max(q.lastTotal/workers/2, SplitThreshold)
	// best is the package a fast gateway takes: what failed last time first, then a
	// critical test, then new tests, then the package with the most work left (longest
	// processing time first). own is the one a probe, or a slow gateway, takes: of those
	// with a recorded piece that fits it, the one with the most work left.
	var best, own *pkgQueue
	var bestRank rank
	if cls == fast {
		best, bestRank = p.fromShortlist(q, critLimit)
	}
	if best == nil {
		var nothing bool
		best, bestRank, own, nothing = p.look(q, cls, rel, share, critLimit)
		if nothing {
			q.nothingAt = p.ver
			return Batch{}, false
		}
	}
	bestTier, total := bestRank.tier, q.lastTotal
	target := max(total/(2*workers), MinBatch)
	switch {
	case bestTier == 3:
		// What failed last time goes to whoever asks first, as before.
	case cls == unmeasured && own != nil:
		return p.fromTail(own, ProbeBatch-own.startup), true
	case cls == slow && own != nil:
		return p.fromTail(own, time.Duration(float64(target)/rel)-own.startup), true
	case cls == slow:
		g.nothingAt = p.ver // what is left is for the faster gateways
		return Batch{}, false
	}
	best.running++
	best.started = true
	if best.whole {
		best.whole = false
		return Batch{Package: best.path, Whole: true, Est: best.work, Gen: best.gen, guess: true, startup: best.startup}, true
	}
	b = Batch{Package: best.path, Gen: best.gen, startup: best.startup}
	if bestTier == 2 && p.splits(best) {
		// The critical test alone, at once.
		t := best.tests[best.nFirst]
		best.tests = append(best.tests[:best.nFirst], best.tests[best.nFirst+1:]...)
		b.Tests, b.Est = []string{t.Name}, t.Est
		best.work -= t.Est
		return b, true
	}
	n := len(best.tests)
	if p.splits(best) {
		// What failed last time (or is new) runs in batches of its own, at once: with -x,
		// a failure still there stops the run after a handful of tests. Those batches,
		// too, are no larger than the share: a package that gained many tests does not
		// run them all in one process.
		f := best.tests[0].First
		if f == 1 && p.speeds != nil {
			target = min(target, GuessBatch) // guesses: see GuessBatch
		}
		target = max(target, best.startup)
		var sum time.Duration
		n = 0
		for n < len(best.tests) && best.tests[n].First == f && (n == 0 || sum+best.tests[n].Est <= target) {
			sum += best.tests[n].Est
			n++
		}
	}
	for _, t := range best.tests[:n] {
		b.Tests = append(b.Tests, t.Name)
		b.Est += t.Est
		if t.First > 0 {
			best.nFirst--
		}
		if t.First == 1 {
			b.guess = true
		}
	}
	best.tests = best.tests[n:]
	best.work -= b.Est
	return b, true
}

// shortK is how many packages a look through them all keeps in queue.short.
const shortK = 16

// rank is where a package stands in a fast gateway's order (see take).
type rank struct {
	tier   int // 3 failed last time, 2 critical, 1 guesses, 0 the rest
	byHead bool
	whole  bool
	head   time.Duration // of a guess
	work   time.Duration
	path   string
}

// before reports whether a goes before b.
func (a rank) before(b rank) bool {
	if a.tier != b.tier {
		return a.tier > b.tier
	}
	if a.byHead && a.tier == 1 {
		// Guesses: a package that runs unlisted (nothing is known of it: it may be
		// long), then the one whose next guess is the longest (a long test is likelier
		// where the package's tests are long).
		if a.whole != b.whole {
			return a.whole
		}
		if a.head != b.head {
			return a.head > b.head
		}
	}
	if a.work != b.work {
		return a.work > b.work
	}
	return a.path < b.path
}

// rankOf is pq's rank, a test of at least critLimit being critical.
func (p *Plan) rankOf(pq *pkgQueue, critLimit time.Duration) rank {
	r := rank{byHead: p.speeds != nil, whole: pq.whole, work: pq.work, path: pq.path}
	switch f := pq.firstLeft(); {
	case f >= 2:
		r.tier = 3
	case p.speeds != nil && pq.critical(p.splits(pq), critLimit):
		r.tier = 2
	case f == 1 || (pq.whole && p.speeds != nil):
		r.tier = 1 // guesses: new tests, and packages that run unlisted
	}
	if !pq.whole && len(pq.tests) > 0 {
		r.head = pq.tests[0].Est
	}
	return r
}

// eligible reports whether pq has work that may be handed out now.
func (p *Plan) eligible(pq *pkgQueue) bool {
	return (len(pq.tests) > 0 || pq.whole) && !pq.stopped && !pq.dropped && !pq.held && (!p.noNew || pq.started)
}

// look goes through every package with work left (dropping those with none from
// q.live), sums their work into q.lastTotal, and returns the one a fast gateway takes
// first (best) and the one a gateway of class cls takes (own, for a probe or a slow
// gateway); nothing reports that no package has work to hand out. It keeps the first
// packages of a fast gateway's order in q.short.
func (p *Plan) look(q *queue, cls class, rel float64, share, critLimit time.Duration) (best *pkgQueue, bestRank rank, own *pkgQueue, nothing bool) {
	minPiece := time.Duration(1<<63 - 1)
	var total time.Duration
	short, ranks := q.short[:0], q.shortRanks[:0]
	var cut rank
	cutOK := false
	live := q.live[:0]
	for _, pq := range q.live {
		if len(pq.tests) == 0 && !pq.whole {
			pq.live = false // nothing left to hand out
			continue
		}
		live = append(live, pq)
		if !p.eligible(pq) {
			continue
		}
		total += pq.work
		r := p.rankOf(pq, critLimit)
		// Into the shortlist, best first; what falls out (or never gets in) is below cut.
		if len(short) < shortK || r.before(ranks[len(ranks)-1]) {
			if len(short) == shortK {
				if out := ranks[len(ranks)-1]; !cutOK || out.before(cut) {
					cut, cutOK = out, true
				}
				short, ranks = short[:len(short)-1], ranks[:len(ranks)-1]
			}
			i := len(short)
			for i > 0 && r.before(ranks[i-1]) {
				i--
			}
			short, ranks = slices.Insert(short, i, pq), slices.Insert(ranks, i, r)
		} else if !cutOK || r.before(cut) {
			cut, cutOK = r, true
		}
		if cls == fast {
			continue
		}
		piece, ok := pq.piece(p.splits(pq))
		if ok {
			minPiece = min(minPiece, piece)
		}
		if ok && pq.fits(piece, cls, rel, share) && (own == nil || pq.work > own.work || (pq.work == own.work && pq.path < own.path)) {
			own = pq
		}
	}
	if cls != fast {
		// (A fast gateway's look leaves an earlier minPiece as it was: still a bound.)
		q.minPiece, q.minPieceOK = minPiece, true
	}
	clear(q.live[len(live):])
	q.live = live
	q.lastTotal = total
	q.short, q.shortRanks, q.shortCut, q.shortCutOK = short, ranks, cut, cutOK
	q.shortCrit, q.shortShape, q.shortOK = critLimit, p.shape, true
	if len(short) == 0 {
		return nil, rank{}, nil, true
	}
	return short[0], ranks[0], own, false
}

// fromShortlist returns the package a fast gateway takes, from q.short without a look
// through every package, or nil if the shortlist cannot tell. Since the last look only
// take changed the packages (p.shape is the same), and it only takes work away, which
// never moves a package up the order while critLimit is the same: every package left out
// of the shortlist still ranks below its cut, and the best of the shortlist, ranked
// anew, is the best of all if it ranks above the cut. The order is that of the look's
// critLimit, until the critical length has fallen by a tenth.
func (p *Plan) fromShortlist(q *queue, critLimit time.Duration) (*pkgQueue, rank) {
	if !q.shortOK || q.shortShape != p.shape || critLimit < q.shortCrit-q.shortCrit/10 {
		return nil, rank{}
	}
	var best *pkgQueue
	var bestRank rank
	for _, pq := range q.short {
		if !p.eligible(pq) {
			continue
		}
		if r := p.rankOf(pq, q.shortCrit); best == nil || r.before(bestRank) {
			best, bestRank = pq, r
		}
	}
	if best == nil || (q.shortCutOK && !bestRank.before(q.shortCut)) {
		return nil, rank{}
	}
	return best, bestRank
}

// splits reports whether pq's tests are handed out in batches of the share, not all at
// once.
func (p *Plan) splits(pq *pkgQueue) bool {
	return p.mode == Load && pq.total >= SplitThreshold && !pq.noSplit
}

// critical reports whether pq holds a recorded test (all of its work, if it is not split)
// of at least limit.
func (pq *pkgQueue) critical(split bool, limit time.Duration) bool {
	if pq.whole {
		return false
	}
	if split {
		return pq.nFirst < len(pq.tests) && pq.tests[pq.nFirst].Est >= limit
	}
	return pq.nFirst == 0 && len(pq.tests) > 0 && pq.work >= limit
}

// piece is the smallest recorded piece of pq that a probe or a slow gateway may take,
// with its start-up: its shortest recorded test, or all of its work if it is not split
// and all of it is recorded. ok is false if it has none.
func (pq *pkgQueue) piece(split bool) (d time.Duration, ok bool) {
	switch {
	case pq.whole || len(pq.tests) == 0:
		return 0, false
	case split && pq.nFirst < len(pq.tests):
		return pq.tests[len(pq.tests)-1].Est + pq.startup, true
	case !split && pq.nFirst == 0:
		return pq.work + pq.startup, true
	}
	return 0, false
}

// fits reports whether a gateway of class c (unmeasured or slow, of relative speed rel)
// may take piece: no longer than a probe, or, at that speed, than the share.
func (pq *pkgQueue) fits(piece time.Duration, c class, rel float64, share time.Duration) bool {
	if c == unmeasured {
		return piece <= ProbeBatch
	}
	return time.Duration(float64(piece)*rel) <= share
}

// fromTail hands out pq's shortest recorded tests, up to limit of estimated work (one at
// least; all of its work if it is not split).
func (p *Plan) fromTail(pq *pkgQueue, limit time.Duration) Batch {
	pq.running++
	pq.started = true
	b := Batch{Package: pq.path, Gen: pq.gen, startup: pq.startup}
	k := len(pq.tests)
	if p.splits(pq) {
		for k > pq.nFirst && (k == len(pq.tests) || b.Est+pq.tests[k-1].Est <= limit) {
			k--
			b.Est += pq.tests[k].Est
		}
	} else {
		k = 0
		for _, t := range pq.tests {
			b.Est += t.Est
		}
	}
	for _, t := range pq.tests[k:] {
		b.Tests = append(b.Tests, t.Name)
	}
	pq.tests = pq.tests[:k]
	pq.work -= b.Est
	return b
}

// Finish gives a batch back. retry lists the tests of the batch that must run again in a
// new process (they shared a process that crashed before they ran); reruns are re-runs of
// failed tests. Both go to the front of the queue. done reports that the batch's package
// has now nothing left to run or in flight in gateway's queue: the caller settles it. It
// is true once per package and queue.
func (p *Plan) Finish(gateway string, b Batch, retry []string, reruns ...Batch) (done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queueOf(gateway)
	if q == nil {
		return false
	}
	q.inFlight--
	pq := q.pkgs[b.Package]
	p.wake()
	if pq != nil && b.Gen != pq.gen {
		pq.running-- // a batch of work that Reset replaced: what it leaves does not count
		if pq.ended || !q.complete(pq) {
			return false
		}
		pq.ended = true
		return true
	}
	if len(retry) > 0 {
		// Est is the batch's: at most that is left (only a slow gateway's choice uses it).
		q.retries = append(q.retries, Batch{Package: b.Package, Tests: retry, Retry: true, Gen: b.Gen,
			Est: b.Est, guess: b.guess || b.Whole, startup: b.startup})
	}
	for i := range reruns {
		reruns[i].Gen = b.Gen
	}
	q.retries = append(q.retries, reruns...)
	if pq == nil {
		return false
	}
	pq.running--
	if pq.ended || !q.complete(pq) {
		return false
	}
	pq.ended = true
	return true
}

func sortedPkgs(m map[string]*pkgQueue) []*pkgQueue {
	out := make([]*pkgQueue, 0, len(m))
	for _, pq := range m {
		out = append(out, pq)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// benchPkgs lists, sorted, the packages of q whose benchmark batch is still to come.
func (p *Plan) benchPkgs(q *queue) []*pkgQueue {
	if !p.benches {
		return nil
	}
	var out []*pkgQueue
	for _, pq := range q.pkgs {
		if pq.bench {
			out = append(out, pq)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// dropRetries takes pkg's batches out of q's re-runs.
func dropRetries(q *queue, pkg string) {
	kept := q.retries[:0]
	for _, r := range q.retries {
		if r.Package != pkg {
			kept = append(kept, r)
		}
	}
	q.retries = kept
}

func hasRetry(q *queue, pkg string) bool {
	for _, r := range q.retries {
		if r.Package == pkg {
			return true
		}
	}
	return false
}

// Reset replaces what is left of a package's work with pkg's (its binary was built anew
// and lists other tests): batches of the old work that are in flight still come back, but
// what they leave to do is dropped. The package is done once the new work is.
func (p *Plan) Reset(pkg Package) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shape++
	for _, q := range p.queues {
		old := q.pkgs[pkg.Path]
		if old == nil {
			// Not added yet: it comes as pkg, and a later Add of the old work is ignored.
			p.addQueue(q, pkg)
			q.pkgs[pkg.Path].gen = 1
			continue
		}
		delete(q.pkgs, pkg.Path)
		old.tests, old.whole = nil, false // replaced: take drops it from the live packages
		dropRetries(q, pkg.Path)
		p.addQueue(q, pkg)
		pq := q.pkgs[pkg.Path]
		pq.gen, pq.running, pq.started = old.gen+1, old.running, old.started
	}
	p.wake()
}

// Hold stops handing out a package's work until Reset replaces it (its binary was built
// anew; what it lists is not known yet). Batches of the held work that come back leave
// nothing, and the package is not done while held.
func (p *Plan) Hold(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shape++
	for _, q := range p.queues {
		if pq := q.pkgs[path]; pq != nil {
			pq.held = true
			pq.gen++
		} else {
			q.pkgs[path] = &pkgQueue{path: path, held: true, gen: 1, noSplit: p.mode == LoadPkg}
		}
		dropRetries(q, path)
	}
	p.wake()
}

// Drop takes a package out of the plan: nothing more of it is handed out, and it is never
// done (its binary did not build after all; the build reports it).
func (p *Plan) Drop(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shape++
	for _, q := range p.queues {
		if pq := q.pkgs[path]; pq != nil {
			pq.dropped = true
			pq.gen++
		}
		dropRetries(q, path)
	}
	p.wake()
}

// NoNewPackages stops packages that have not started from starting (-failfast after the
// first failure, as go test starts no new test binary then); those that started go on.
func (p *Plan) NoNewPackages() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shape++
	p.noNew = true
	p.wake()
}

// Return gives back a batch that did not run at all (its binary never reached the
// gateway's host): it will be handed out again, to any worker, as it was.
func (p *Plan) Return(gateway string, b Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shape++
	q := p.queueOf(gateway)
	if q == nil {
		return
	}
	q.inFlight--
	pq := q.pkgs[b.Package]
	if pq != nil {
		pq.running--
		if b.Gen != pq.gen {
			p.wake()
			return // replaced by Reset
		}
	}
	switch {
	case b.Bench && pq != nil:
		pq.bench = true
	case b.Whole && pq != nil:
		pq.whole = true
		q.minPieceOK = false
		if !pq.live {
			pq.live = true
			q.live = append(q.live, pq)
		}
	default:
		q.retries = append(q.retries, b)
	}
	p.wake()
}

// Stop drops the tests of pkg that have not been handed out yet (for -failfast) and
// returns how many were dropped.
func (p *Plan) Stop(gateway, pkg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shape++
	q := p.queueOf(gateway)
	if q == nil {
		return 0
	}
	pq := q.pkgs[pkg]
	if pq == nil || pq.stopped {
		return 0
	}
	pq.stopped = true
	n := len(pq.tests)
	if pq.bench {
		pq.bench = false
		n++ // the benchmark batch
	}
	for _, r := range q.retries {
		if r.Package == pkg {
			n += len(r.Tests)
		}
	}
	dropRetries(q, pkg)
	p.wake()
	return n
}

// Leave says that gateway asks for no more work (it was lost, or never started): re-runs
// it avoided are no longer kept from the others' reach on its account.
func (p *Plan) Leave(gateway string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if q := p.queueOf(gateway); q != nil {
		delete(q.active, gateway)
	}
	delete(p.alive, gateway)
	if p.speeds != nil {
		p.speeds.leave(p.speeds.by[gateway])
	}
	p.wake()
}

// othersFor reports whether a worker other than gateway may still take work of q.
func (p *Plan) othersFor(q *queue, gateway string) bool {
	if p.alive == nil {
		return len(q.active) > 1
	}
	for g := range p.alive {
		if g != gateway {
			return true
		}
	}
	return false
}

// Abandon gives up the queue of a gateway that was lost in Each mode, returning its
// packages that were not done (sorted), each with how many tests it still held; in Load
// mode the shared queue stays for the other workers and Abandon returns nothing.
func (p *Plan) Abandon(gateway string) []Left {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode != Each {
		return nil
	}
	q := p.queues[gateway]
	if q == nil {
		return nil
	}
	var left []Left
	for _, pq := range sortedPkgs(q.pkgs) {
		if pq.ended {
			continue
		}
		n := len(pq.tests)
		if pq.bench || pq.whole {
			n++
		}
		for _, r := range q.retries {
			if r.Package == pq.path {
				n += len(r.Tests)
			}
		}
		left = append(left, Left{Package: pq.path, Tests: n})
	}
	delete(p.queues, gateway)
	p.wake()
	return left
}

// Left is a package that an abandoned queue did not finish.
type Left struct {
	Package string
	Tests   int // not handed out yet
}

// Remaining counts the tests not yet handed out, over all queues.
func (p *Plan) Remaining() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, q := range p.queues {
		for _, pq := range q.pkgs {
			if !pq.stopped {
				n += len(pq.tests)
			}
		}
		for _, r := range q.retries {
			n += len(r.Tests)
		}
	}
	return n
}

// Close ends the plan: every blocked and later Next returns ok=false.
func (p *Plan) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.wake()
}
