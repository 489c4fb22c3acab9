package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// measured makes every gateway of p measured, gateway i at speed speed[i] (its batches took
// that times their estimate).
func measured(p *Plan, speed map[string]float64) {
	for g, f := range speed {
		p.Ran(g, Batch{Package: "warm-up", Tests: []string{"T"}, Est: time.Second}, time.Duration(f*float64(time.Second)))
	}
}

// long is a package with one 10 s test and twenty of 50 ms.
func long(path string) Package {
	ts := []Test{{Name: "TestLong", Est: 10 * time.Second}}
	for i := range 20 {
		ts = append(ts, Test{Name: fmt.Sprintf("TestShort%02d", i), Est: 50 * time.Millisecond})
	}
	return Package{Path: path, Tests: ts}
}

func try(t *testing.T, p *Plan, gw string) Batch {
	t.Helper()
	b, ok, _ := p.TryNext(gw)
	if !ok {
		t.Fatalf("%s got no batch", gw)
	}
	return b
}

func has(b Batch, name string) bool {
	for _, n := range b.Tests {
		if n == name {
			return true
		}
	}
	return false
}

// A gateway whose speed is not known yet gets a small batch of recorded tests first, not
// the long test: its host may turn out slow.
func TestUnmeasuredGatewayProbesFirst(t *testing.T) {
	p := NewPlan(Load, []Package{long("p")}, 2, []string{"a", "b"})
	b := try(t, p, "a")
	if has(b, "TestLong") || b.Est > ProbeBatch || len(b.Tests) == 0 {
		t.Fatalf("an unmeasured gateway got %v (%v); want short tests, at most %v", b.Tests, b.Est, ProbeBatch)
	}
	if b.Tests[0] != "TestShort19" && b.Tests[len(b.Tests)-1] != "TestShort19" {
		t.Errorf("probe %v: want the shortest tests, from the end", b.Tests)
	}
}

// Once speeds are known, a slow gateway gets the short tests and the long one is kept for
// a fast gateway, even when the slow one asks first.
func TestFastGatewayGetsTheLongTail(t *testing.T) {
	p := NewPlan(Load, nil, 2, []string{"fast", "slow"})
	measured(p, map[string]float64{"fast": 1, "slow": 2})
	p.Add(long("p"))
	s := try(t, p, "slow")
	if has(s, "TestLong") {
		t.Fatalf("the slow gateway got %v", s.Tests)
	}
	if s.Est*2 > 10*time.Second/4 {
		t.Errorf("the slow gateway's batch is %v of estimate, more than the share at its speed", s.Est)
	}
	f := try(t, p, "fast")
	if len(f.Tests) != 1 || f.Tests[0] != "TestLong" {
		t.Errorf("the fast gateway got %v, want TestLong alone", f.Tests)
	}
}

// A test longer than half the work per worker (critical) goes first, to a fast gateway,
// ahead of the package with the most work.
func TestCriticalTestGoesFirst(t *testing.T) {
	var many []Test
	for i := range 100 {
		many = append(many, Test{Name: fmt.Sprintf("Test%03d", i), Est: time.Second})
	}
	gws := []string{"a", "b", "c", "d"}
	p := NewPlan(Load, nil, len(gws), gws)
	measured(p, map[string]float64{"a": 1, "b": 1, "c": 1, "d": 1})
	p.Add(Package{Path: "many", Tests: many},
		Package{Path: "crit", Tests: []Test{{Name: "TestCrit", Est: 30 * time.Second}, {Name: "TestSmall", Est: time.Second}}})
	b := try(t, p, "a")
	if b.Package != "crit" || len(b.Tests) != 1 || b.Tests[0] != "TestCrit" {
		t.Errorf("first batch %s %v; want crit's TestCrit alone (30 s, over 130 s / 4 / 2)", b.Package, b.Tests)
	}
}

// New tests (guesses) go early, the package whose estimates are longest first, in batches
// of at most GuessBatch; a slow gateway gets recorded tests instead.
func TestGuessesGoEarlyInSmallBatches(t *testing.T) {
	newTests := func(n int, est time.Duration) []Test {
		var ts []Test
		for i := range n {
			ts = append(ts, Test{Name: fmt.Sprintf("TestNew%02d", i), Est: est, First: 1})
		}
		return ts
	}
	p := NewPlan(Load, nil, 3, []string{"a", "b", "slow"})
	measured(p, map[string]float64{"a": 1, "b": 1, "slow": 2})
	p.Add(Package{Path: "many-new", Tests: newTests(50, 100*time.Millisecond)},
		Package{Path: "long-new", Tests: newTests(10, 300*time.Millisecond)},
		Package{Path: "old", Tests: tests(100, time.Second)})
	b := try(t, p, "a")
	if b.Package != "long-new" || b.Est > GuessBatch || len(b.Tests) == 0 {
		t.Errorf("first batch %s %v (%v); want new tests of long-new, at most %v", b.Package, b.Tests, b.Est, GuessBatch)
	}
	s := try(t, p, "slow")
	if s.Package != "old" {
		t.Errorf("the slow gateway got %s %v; want recorded tests of old", s.Package, s.Tests)
	}
	for {
		b, ok, _ := p.TryNext("b")
		if !ok || b.Package == "old" {
			break
		}
		if b.Est > GuessBatch {
			t.Errorf("a batch of new tests of %v", b.Est)
		}
	}
}

// A slow gateway waits while a fast one may take the long work, and takes it once no fast
// gateway is left.
func TestSlowGatewayTakesTheRestWhenNoFastIsLeft(t *testing.T) {
	p := NewPlan(Load, nil, 2, []string{"fast", "slow"})
	measured(p, map[string]float64{"fast": 1, "slow": 2})
	p.Add(Package{Path: "p", Tests: []Test{{Name: "TestLong", Est: 10 * time.Second}, {Name: "TestLong2", Est: 10 * time.Second}}})
	f := try(t, p, "fast")
	if _, ok, done := p.TryNext("slow"); ok || done {
		t.Fatalf("the slow gateway got a 10 s test (ok %v, done %v) while the fast one may take it", ok, done)
	}
	p.Leave("fast")
	s := try(t, p, "slow")
	if len(s.Tests) != 1 {
		t.Errorf("the slow gateway got %v", s.Tests)
	}
	p.Finish("fast", f, nil)
	p.Finish("slow", s, nil)
	if _, ok, done := p.TryNext("slow"); ok || !done {
		t.Errorf("ok %v, done %v after every test ran; want done", ok, done)
	}
}

// What Ran learns from: batches whose tests all have records, not guesses.
func TestRanLearnsOnlyFromRecordedTests(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: []Test{{Name: "TestNew", Est: time.Second, First: 1}}}}, 2, []string{"a", "b"})
	measured(p, map[string]float64{"b": 1})
	b := try(t, p, "a") // the guess goes to it: nothing else is left
	p.Ran("a", b, 10*time.Second)
	if g := p.speeds.by["a"]; g.measured() {
		t.Errorf("a guess taught the plan a's speed: %v over %v", g.took, g.est)
	}
}

// The tests that a lost gateway's process did not get to go to a fast gateway, not to the
// slow one that asks first.
func TestRetryOfALongBatchSkipsASlowGateway(t *testing.T) {
	p := NewPlan(Load, nil, 3, []string{"fast", "slow", "lost"})
	measured(p, map[string]float64{"fast": 1, "slow": 2, "lost": 1})
	p.Add(long("p"))
	b := try(t, p, "lost")
	if !has(b, "TestLong") {
		t.Fatalf("the first fast gateway got %v", b.Tests)
	}
	p.Finish("lost", b, b.Tests) // lost before any of them ended
	p.Leave("lost")
	if s := try(t, p, "slow"); has(s, "TestLong") {
		t.Errorf("the slow gateway got the retry %v", s.Tests)
	}
	if f := try(t, p, "fast"); !f.Retry || !has(f, "TestLong") {
		t.Errorf("the fast gateway got %v (retry %v), want the retry of TestLong", f.Tests, f.Retry)
	}
}

// A fast gateway's take, from the shortlist of the last look, picks the package a look
// through every package would pick. Random sequences of the plan's changes; before each
// ask, whatever the shortlist answers must rank ahead of every package with work.
func TestShortlistPicksTheBest(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 16))
		gws := []string{"a", "b", "c"}
		p := NewOpenPlan(Load, len(gws), gws)
		measured(p, map[string]float64{"a": 1, "b": 1, "c": 1})
		var flying []Batch
		var fromShort int
		for step := range 300 {
			switch op := rng.IntN(10); {
			case op == 0 || step == 0:
				pk := Package{Path: fmt.Sprintf("p%d", step), Whole: rng.IntN(8) == 0}
				for i := range 1 + rng.IntN(30) {
					pk.Tests = append(pk.Tests, Test{Name: fmt.Sprintf("T%d", i), Est: time.Duration(rng.IntN(3000)) * time.Millisecond, First: rng.IntN(5) / 3})
				}
				if pk.Whole {
					pk.Tests = nil
				}
				p.Add(pk)
			case op == 1 && len(flying) > 0:
				p.Finish("a", flying[0], nil)
				flying = flying[1:]
			default:
				p.mu.Lock()
				q := p.queues[""]
				critLimit := max(q.lastTotal/time.Duration(p.workers)/2, SplitThreshold)
				if best, r := p.fromShortlist(q, critLimit); best != nil {
					fromShort++
					for _, pq := range sortedPkgs(q.pkgs) {
						if pq != best && p.eligible(pq) && p.rankOf(pq, q.shortCrit).before(r) {
							p.mu.Unlock()
							t.Fatalf("seed %d step %d: the shortlist gives %s (%+v), but %s ranks ahead (%+v)", seed, step, best.path, r, pq.path, p.rankOf(pq, q.shortCrit))
						}
					}
				}
				p.mu.Unlock()
				if b, ok, _ := p.TryNext("a"); ok {
					flying = append(flying, b)
				}
			}
		}
		if seed == 1 && fromShort == 0 {
			t.Error("the shortlist never answered")
		}
	}
}

// Gateways on one host learn no speeds: the first batch holds the longest test, as before
// speeds were learned, and no probe holds it back.
func TestOneHostPlanProbesNothing(t *testing.T) {
	p := NewPlan(Load, []Package{long("p")}, 2, []string{"a", "b"})
	p.OneHost()
	b := try(t, p, "a")
	if !has(b, "TestLong") {
		t.Errorf("the first batch on one host is %v (%v), want it to hold TestLong", b.Tests, b.Est)
	}
}
