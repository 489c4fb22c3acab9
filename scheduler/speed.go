package scheduler

import (
	"slices"
	"time"
)

// What the plan learns of its gateways' speeds, and how it hands out work by them (load
// mode, with two gateways or more named to NewPlan or NewOpenPlan; Ran tells it).
//
// A gateway's speed is the time its test processes took over what the plan estimated for
// them (their tests' recorded durations and one start-up), summed over its batches whose
// tests all had a recorded duration; its relative speed is that over the median of the
// gateways measured. The plan then:
//   - gives a gateway it has not measured yet a small batch first (ProbeBatch: the
//     shortest recorded tests of a package), so that a long test does not start on a host
//     that turns out slow;
//   - gives a gateway slower than SlowFactor times the median only recorded tests that fit
//     in the share at its speed, the shortest of a package first, in batches of the share
//     divided by its speed, while a gateway that is not slow may still take the rest: the
//     long tests and the tests with no record (whose true time may be many times the
//     guess) are kept for the others;
//   - gives a fast gateway a test longer than half the remaining work per worker (a
//     critical test) before anything but what failed last time: it is the one that sets
//     the makespan if it starts late;
//   - then guesses: the new tests of the packages whose tests are longest first, in
//     batches of at most GuessBatch, and the packages that run unlisted (never ran);
//     neither goes to a slow gateway, nor to one not yet measured.

// ProbeBatch is the estimated size of the first batch of a gateway whose speed the plan
// does not know yet.
const ProbeBatch = 250 * time.Millisecond

// GuessBatch is the largest batch, in estimated time, of new tests (Test.First 1) that
// the plan hands out while it learns speeds: a new test is estimated by its package's
// median, and with heavy tails its true time may be many times that. Small batches, at
// the start, find a long one early, and no batch-mate waits behind it.
const GuessBatch = 400 * time.Millisecond

// SlowFactor is how much slower than the median of the measured gateways a gateway must be
// for the plan to keep long and unknown work from it.
const SlowFactor = 1.5

// minPeers is how many gateways (all of them, if fewer) the plan measures before it
// tells fast from slow.
const minPeers = 32

// minMeasured is how much estimated work a gateway must have run for its speed to count.
const minMeasured = 100 * time.Millisecond

// class is how the plan hands work to a gateway.
type class int

const (
	unmeasured class = iota // its speed is not known yet: a probe first
	fast                    // anything, critical work first
	slow                    // only recorded work that fits, the shortest first
)

// gwSpeed is what the plan learned of one gateway.
type gwSpeed struct {
	est, took time.Duration // sums over its batches of recorded tests
	class     class
	gone      bool // it left, or was told it is done
	// nothingAt is the plan's ver at which this gateway last found nothing it may take,
	// while others might have (see queue.nothingAt).
	nothingAt uint64
}

func (g *gwSpeed) measured() bool { return g.est >= minMeasured }

func (g *gwSpeed) speed() float64 { return float64(g.took) / float64(g.est) }

// speeds is the plan's knowledge of its gateways' speeds.
type speeds struct {
	by      map[string]*gwSpeed
	median  float64 // of the measured gateways' speeds
	fast    int     // measured gateways not slow, not gone
	changes int     // measurements since the median was computed
	buf     []float64
}

// rel is gateway g's speed relative to the median (1 while unmeasured).
func (s *speeds) rel(g *gwSpeed) float64 {
	if g == nil || !g.measured() || s.median <= 0 {
		return 1
	}
	return g.speed() / s.median
}

// classify recomputes the median and every gateway's class.
func (s *speeds) classify() {
	s.buf = s.buf[:0]
	for _, g := range s.by {
		if g.measured() {
			s.buf = append(s.buf, g.speed())
		}
	}
	s.median = 0
	if len(s.buf) > 0 {
		slices.Sort(s.buf)
		s.median = s.buf[(len(s.buf)-1)/2] // the lower: of two, the faster
	}
	s.fast = 0
	for _, g := range s.by {
		g.class = unmeasured
		if len(s.buf) >= s.enough() {
			s.setClass(g)
		}
	}
	s.changes = 0
}

// enough is how many gateways must be measured before the plan tells fast from slow: the
// first measured may all share one host, which may be a slow one.
func (s *speeds) enough() int { return min(len(s.by), minPeers) }

func (s *speeds) setClass(g *gwSpeed) {
	was := g.class
	switch {
	case !g.measured():
		g.class = unmeasured
	case s.rel(g) > SlowFactor:
		g.class = slow
	default:
		g.class = fast
	}
	if was == fast && !g.gone && g.class != fast {
		s.fast--
	} else if g.class == fast && !g.gone && was != fast {
		s.fast++
	}
}

// leave marks g as asking for no more work.
func (s *speeds) leave(g *gwSpeed) {
	if g == nil || g.gone {
		return
	}
	if g.class == fast {
		s.fast--
	}
	g.gone = true
}

// Ran tells the plan how long the test process of batch b, which gateway ran to its end,
// took (its start-up included). The plan learns the gateway's speed from the batches whose
// tests all had a recorded duration, and hands out work by it (see ProbeBatch, SlowFactor).
// Call it before the batch's Finish; a batch that crashed, was lost or never ran is not
// reported.
func (p *Plan) Ran(gateway string, b Batch, elapsed time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.speeds == nil {
		return
	}
	g := p.speeds.by[gateway]
	if g == nil || b.guess || b.Whole || b.Bench || b.Retry || b.Attempt > 0 || b.Est <= 0 || elapsed <= 0 {
		return
	}
	g.est += b.Est + b.startup
	g.took += elapsed
	p.speeds.changes++
	// The median moves little once many are measured: recomputed at once for the first
	// measurements, then every 32 (it costs a sort of the gateways).
	if n := len(p.speeds.buf); n < 2*minPeers || p.speeds.changes >= 32 {
		p.speeds.classify()
	} else {
		p.speeds.setClass(g)
	}
}
