package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// take remembers that it found nothing to hand out until the plan changes, and looks only
// at the packages that may have work: neither hides work. Random sequences of every change
// the plan takes; whenever a worker is told to wait (or that it is done), no package may
// have work to hand out (unless it is a slow gateway and a fast one is left, speed.go), and
// asking again with the memos forgotten (the shortlist's and minPiece too) gives the same
// answer.
func TestMemoAndLivePackagesHideNoWork(t *testing.T) {
	keptForFast := 0 // asks of a slow gateway told to wait while a fast one may take the work
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 14))
		gws := []string{"gw0", "gw1", "gw2"}
		p := NewOpenPlan(Load, len(gws), gws)
		type held struct {
			gw string
			b  Batch
		}
		var flying []held
		var paths []string
		newPkg := func(path string) Package {
			pk := Package{Path: path, Bench: rng.IntN(4) == 0, First: rng.IntN(3) / 2}
			if rng.IntN(5) == 0 {
				pk.Whole = true
				return pk
			}
			for i := range 1 + rng.IntN(6) {
				pk.Tests = append(pk.Tests, Test{Name: fmt.Sprintf("T%d", i), Est: time.Duration(rng.IntN(400)) * time.Millisecond, First: rng.IntN(4) / 3})
			}
			return pk
		}
		pick := func() string { return paths[rng.IntN(len(paths))] }
		var log []string
		for step := range 80 {
			op := rng.IntN(14)
			switch {
			case op == 0 || len(paths) == 0:
				path := fmt.Sprintf("p%d", len(paths))
				paths = append(paths, path)
				p.Add(newPkg(path))
				log = append(log, "Add "+path)
			case op == 1 && len(flying) > 0:
				k := rng.IntN(len(flying))
				f := flying[k]
				flying = append(flying[:k], flying[k+1:]...)
				var retry []string
				if len(f.b.Tests) > 0 && rng.IntN(2) == 0 {
					retry = f.b.Tests[:1+rng.IntN(len(f.b.Tests))]
				}
				p.Finish(f.gw, f.b, retry)
				log = append(log, fmt.Sprintf("Finish %s %s %v retry %v", f.gw, f.b.Package, f.b.Tests, retry))
			case op == 2 && len(flying) > 0:
				k := rng.IntN(len(flying))
				f := flying[k]
				flying = append(flying[:k], flying[k+1:]...)
				p.Return(f.gw, f.b)
				log = append(log, "Return "+f.b.Package)
			case op == 3:
				path := pick()
				p.Hold(path)
				log = append(log, "Hold "+path)
			case op == 4:
				path := pick()
				p.Reset(newPkg(path))
				log = append(log, "Reset "+path)
			case op == 5 && rng.IntN(3) == 0:
				path := pick()
				p.Drop(path)
				log = append(log, "Drop "+path)
			case op == 6:
				path := pick()
				p.Stop("", path)
				log = append(log, "Stop "+path)
			case op == 7 && rng.IntN(5) == 0:
				p.NoNewPackages()
				log = append(log, "NoNewPackages")
			case op == 8 && step > 40:
				p.Seal()
				log = append(log, "Seal")
			case op == 9 && rng.IntN(2) == 0:
				gw := gws[rng.IntN(len(gws))]
				f := []float64{1, 1, 3}[rng.IntN(3)]
				p.Ran(gw, Batch{Package: "warm-up", Tests: []string{"T"}, Est: 200 * time.Millisecond}, time.Duration(f*float64(200*time.Millisecond)))
				log = append(log, fmt.Sprintf("Ran %s ×%v", gw, f))
			default:
				gw := gws[rng.IntN(len(gws))]
				b, ok, done := p.TryNext(gw)
				log = append(log, fmt.Sprintf("TryNext %s: %s %v ok=%v done=%v", gw, b.Package, b.Tests, ok, done))
				if ok {
					p.mu.Lock()
					pq := p.queues[""].pkgs[b.Package]
					p.mu.Unlock()
					if pq == nil || pq.gen != b.Gen || pq.dropped {
						t.Fatalf("seed %d: after\n%s\n%s got a batch of work that was replaced or dropped", seed, fmt.Sprint(log), gw)
					}
					flying = append(flying, held{gw, b})
					continue
				}
				p.mu.Lock()
				slowWithFast := p.speeds.by[gw].class == slow && p.speeds.fast > 0
				p.mu.Unlock()
				if pkg := handable(p); pkg != "" && slowWithFast {
					keptForFast++
				} else if pkg != "" {
					t.Fatalf("seed %d: after\n%s\n%s was told ok=%v done=%v, but %s has work to hand out", seed, fmt.Sprint(log), gw, ok, done, pkg)
				}
				p.mu.Lock()
				p.ver++ // forget the memos
				p.queues[""].minPieceOK, p.queues[""].shortOK = false, false
				p.mu.Unlock()
				b2, ok2, done2 := p.TryNext(gw)
				if ok2 || done2 != done {
					t.Fatalf("seed %d: after\n%s\n%s was told ok=%v done=%v; with the memo forgotten, %s %v ok=%v done=%v",
						seed, fmt.Sprint(log), gw, ok, done, b2.Package, b2.Tests, ok2, done2)
				}
			}
		}
	}
	if keptForFast == 0 {
		t.Error("no slow gateway was ever told to wait: the speeds were not exercised")
	}
}

// handable names a package of p's load queue that take could hand work of out, looking at
// every package (neither the memo nor the live list).
func handable(p *Plan) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queues[""]
	for _, pq := range sortedPkgs(q.pkgs) {
		if pq.stopped || pq.dropped || pq.held || (p.noNew && !pq.started) {
			continue
		}
		if len(pq.tests) > 0 || pq.whole {
			return pq.path
		}
		if pq.bench && len(pq.tests) == 0 && pq.running == 0 && !hasRetry(q, pq.path) {
			return pq.path + " (benchmarks)"
		}
	}
	return ""
}

// With nothing left to hand out and many workers waiting, each one woken by a change asks
// again: only the first looks through the packages.
func BenchmarkTryNextNothingLeft(b *testing.B) {
	var pkgs []Package
	for i := range 3000 {
		pkgs = append(pkgs, Package{Path: fmt.Sprintf("p%04d", i), Tests: tests(1, time.Millisecond)})
	}
	p := NewPlan(Load, pkgs, 1000, nil)
	var flying []Batch
	for {
		bt, ok, _ := p.TryNext("gw0")
		if !ok {
			break
		}
		flying = append(flying, bt)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 && len(flying) > 1 {
			p.Finish("gw0", flying[0], nil) // a change: the next ask looks again
			flying = flying[1:]
		}
		p.TryNext(fmt.Sprint("gw", i%1000))
	}
}
