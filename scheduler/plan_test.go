package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func tests(n int, est time.Duration) []Test {
	var ts []Test
	for i := 0; i < n; i++ {
		ts = append(ts, Test{Name: fmt.Sprintf("Test%03d", i), Est: est})
	}
	return ts
}

// drain takes every batch of a load plan with w workers in turn and returns them.
func drain(t *testing.T, p *Plan, gateway string) []Batch {
	t.Helper()
	var out []Batch
	for {
		b, ok := p.Next(context.Background(), gateway)
		if !ok {
			return out
		}
		out = append(out, b)
		p.Finish(gateway, b, nil)
	}
}

func TestLoadBatchesShrinkAndCoverEveryTestOnce(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(400, 25*time.Millisecond)}}, 8, nil)
	batches := drain(t, p, "gw0")
	seen := map[string]int{}
	for _, b := range batches {
		for _, n := range b.Tests {
			seen[n]++
		}
	}
	if len(seen) != 400 {
		t.Fatalf("batches cover %d tests, want 400", len(seen))
	}
	for n, c := range seen {
		if c != 1 {
			t.Fatalf("%s handed out %d times", n, c)
		}
	}
	first, last := len(batches[0].Tests), len(batches[len(batches)-1].Tests)
	if first != 25 { // 10s / (2*8) = 625ms = 25 tests
		t.Errorf("first batch has %d tests, want 25", first)
	}
	if last >= first {
		t.Errorf("batches did not shrink: first %d, last %d", first, last)
	}
	if len(batches) > 120 {
		t.Errorf("%d batches for 400 tests on 8 workers: too many processes", len(batches))
	}
	for _, b := range batches {
		if b.Est < MinBatch && len(b.Tests) > 1 {
			t.Errorf("batch of %d tests below the minimum: %v", len(b.Tests), b.Est)
		}
	}
}

func TestLoadTinyTestsStayInOneBatch(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(2000, 0)}}, 2, nil)
	batches := drain(t, p, "gw0")
	if len(batches) != 1 || len(batches[0].Tests) != 2000 {
		t.Fatalf("got %d batches; want all 2000 tests that cost nothing in one process", len(batches))
	}
}

func TestLoadLongestFirstAndPackagesWithMostWorkFirst(t *testing.T) {
	p := NewPlan(Load, []Package{
		{Path: "small", Tests: tests(2, time.Second)},
		{Path: "big", Tests: []Test{{Name: "TestShort", Est: time.Millisecond}, {Name: "TestLong", Est: 10 * time.Second}}},
	}, 4, nil)
	b, _ := p.Next(context.Background(), "gw0")
	if b.Package != "big" || b.Tests[0] != "TestLong" {
		t.Fatalf("first batch %+v, want big's TestLong first", b)
	}
}

func TestRetryGoesFirst(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(10, time.Second)}}, 2, nil)
	b, _ := p.Next(context.Background(), "gw0")
	p.Finish("gw0", b, []string{b.Tests[len(b.Tests)-1]})
	r, _ := p.Next(context.Background(), "gw1")
	if !r.Retry || len(r.Tests) != 1 || r.Tests[0] != b.Tests[len(b.Tests)-1] {
		t.Fatalf("after a crash the next batch is %+v, want the retry", r)
	}
}

func TestNextWaitsForInFlightRetries(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(1, time.Second)}}, 2, nil)
	b, _ := p.Next(context.Background(), "gw0")
	got := make(chan Batch)
	go func() {
		r, ok := p.Next(context.Background(), "gw1") // queue empty, but gw0's batch may come back
		if !ok {
			close(got)
			return
		}
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("Next returned while a batch in flight could still give work back")
	case <-time.After(50 * time.Millisecond):
	}
	p.Finish("gw0", b, b.Tests)
	r, ok := <-got
	if !ok || r.Tests[0] != b.Tests[0] {
		t.Fatalf("waiting worker got %+v, %v; want the retried test", r, ok)
	}
	p.Finish("gw1", r, nil)
	if _, ok := p.Next(context.Background(), "gw1"); ok {
		t.Fatal("plan should be done")
	}
}

func TestCloseUnblocksNext(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(1, time.Second)}}, 2, nil)
	p.Next(context.Background(), "gw0")
	done := make(chan bool)
	go func() { _, ok := p.Next(context.Background(), "gw1"); done <- ok }()
	time.Sleep(10 * time.Millisecond)
	p.Close()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("Next after Close returned a batch")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
}

func TestEachGivesEveryGatewayEverything(t *testing.T) {
	pkgs := []Package{{Path: "a", Tests: tests(5, time.Second)}, {Path: "b", Whole: true}}
	p := NewPlan(Each, pkgs, 1, []string{"gw0", "gw1"})
	var mu sync.Mutex
	got := map[string][]string{}
	var wg sync.WaitGroup
	for _, g := range []string{"gw0", "gw1"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range drain(t, p, g) {
				mu.Lock()
				if b.Whole {
					got[g] = append(got[g], b.Package+":whole")
				}
				for _, n := range b.Tests {
					got[g] = append(got[g], b.Package+":"+n)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, g := range []string{"gw0", "gw1"} {
		sort.Strings(got[g])
		if len(got[g]) != 6 {
			t.Errorf("%s ran %v, want 5 tests of a and package b", g, got[g])
		}
	}
}

func TestStopDropsQueuedTestsOfPackage(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(100, time.Second)}, {Path: "q", Tests: tests(1, time.Second)}}, 4, nil)
	b, _ := p.Next(context.Background(), "gw0")
	n := p.Stop("gw0", "p")
	if n != 100-len(b.Tests) {
		t.Fatalf("Stop dropped %d, want %d", n, 100-len(b.Tests))
	}
	p.Finish("gw0", b, nil)
	rest := drain(t, p, "gw0")
	if len(rest) != 1 || rest[0].Package != "q" {
		t.Fatalf("after Stop got %+v, want only q", rest)
	}
}

func TestDurationsEstimates(t *testing.T) {
	d := NewDurations()
	d.Record("p", "TestA", time.Second)
	d.Record("p", "TestB", 3*time.Second)
	d.Record("p", "TestC", 2*time.Second)
	est, _ := d.Estimates("p", []string{"TestA", "TestNew"})
	if est[0] != time.Second || est[1] != 2*time.Second {
		t.Fatalf("estimates %v, want [1s 2s] (recorded, then the package median)", est)
	}
	est, _ = d.Estimates("other", []string{"TestX"})
	if est[0] != 2*time.Second {
		t.Fatalf("unknown package estimate %v, want the global median 2s", est)
	}
	path := t.TempDir() + "/d.json"
	if err := d.Save(path); err != nil {
		t.Fatal(err)
	}
	d2, err := LoadDurations(path)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := d2.Estimates("p", []string{"TestB"}); e[0] != 3*time.Second {
		t.Fatalf("after a round trip TestB is %v", e[0])
	}
	if _, err := LoadDurations(t.TempDir() + "/missing.json"); err != nil {
		t.Fatalf("a missing file is an empty store, got %v", err)
	}
}

func TestSmallPackageStaysInOneProcess(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "small", Tests: tests(40, 10*time.Millisecond)}, {Path: "big", Tests: tests(400, 25*time.Millisecond)}}, 4, nil)
	var small, big int
	for _, b := range drain(t, p, "gw0") {
		if b.Package == "small" {
			small++
			if len(b.Tests) != 40 {
				t.Errorf("small package split: batch of %d", len(b.Tests))
			}
		} else {
			big++
		}
	}
	if small != 1 || big < 4 {
		t.Fatalf("small in %d batches (want 1), big in %d (want several)", small, big)
	}
}

func TestRerunGoesToAnotherWorker(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(2, time.Second)}}, 2, nil)
	b0, _ := p.Next(context.Background(), "gw0")
	b1, _ := p.Next(context.Background(), "gw1")
	p.Finish("gw0", b0, nil, Batch{Package: "p", Tests: b0.Tests, Run: "^x$", Attempt: 1, Avoid: "gw0"})
	got := make(chan Batch, 1)
	go func() {
		b, ok := p.Next(context.Background(), "gw0") // must not take its own re-run while gw1 is around
		if ok {
			got <- b
		}
		close(got)
	}()
	time.Sleep(30 * time.Millisecond)
	p.Finish("gw1", b1, nil)
	r, ok := p.Next(context.Background(), "gw1")
	if !ok || r.Avoid != "gw0" || r.Run != "^x$" {
		t.Fatalf("gw1 got %+v, %v; want gw0's re-run", r, ok)
	}
	p.Finish("gw1", r, nil)
	if b, ok := <-got; ok {
		t.Fatalf("gw0 took %+v", b)
	}
}

func TestRerunStaysWhenNoOtherWorker(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(1, time.Second)}}, 1, nil)
	b, _ := p.Next(context.Background(), "gw0")
	p.Finish("gw0", b, nil, Batch{Package: "p", Tests: b.Tests, Attempt: 1, Avoid: "gw0"})
	r, ok := p.Next(context.Background(), "gw0")
	if !ok || r.Attempt != 1 {
		t.Fatalf("the only worker did not get its re-run: %+v %v", r, ok)
	}
}

// TryNext answers at once what Next would do: a batch, done, or neither where Next would
// block (the plan is open, or a batch in flight may give work back).
func TestTryNextNeverWaits(t *testing.T) {
	p := NewOpenPlan(Load, 2, []string{"gw0", "gw1"})
	if _, ok, done := p.TryNext("gw0"); ok || done {
		t.Fatalf("empty open plan: ok=%v done=%v, want neither (more may be added)", ok, done)
	}
	p.Add(Package{Path: "p", Tests: tests(1, time.Second)})
	b, ok, done := p.TryNext("gw0")
	if !ok || done || len(b.Tests) != 1 {
		t.Fatalf("after Add: %+v ok=%v done=%v, want the package's test", b, ok, done)
	}
	p.Seal()
	if _, ok, done := p.TryNext("gw1"); ok || done {
		t.Fatalf("sealed, a batch in flight: ok=%v done=%v, want neither (it may come back)", ok, done)
	}
	p.Finish("gw0", b, b.Tests) // its process crashed before the test ran
	r, ok, done := p.TryNext("gw1")
	if !ok || done || !r.Retry || len(r.Tests) != 1 || r.Tests[0] != b.Tests[0] {
		t.Fatalf("after the crash: %+v ok=%v done=%v, want the retry", r, ok, done)
	}
	if !p.Finish("gw1", r, nil) {
		t.Fatal("the package is not done after its retry finished")
	}
	if _, ok, done := p.TryNext("gw1"); ok || !done {
		t.Fatalf("all run: ok=%v done=%v, want done", ok, done)
	}
	if _, ok := p.Next(context.Background(), "gw0"); ok {
		t.Fatal("Next disagrees with TryNext: it handed out a batch of a finished plan")
	}
	q := NewPlan(Load, []Package{{Path: "p", Tests: tests(1, time.Second)}}, 1, nil)
	q.Close()
	if _, ok, done := q.TryNext("gw0"); ok || !done {
		t.Fatalf("closed plan: ok=%v done=%v, want done", ok, done)
	}
}

// New (and failed) tests go first, in batches of their own, none larger than the share:
// a package that gained many tests does not run them all in one process.
func TestFirstTestsGoFirstInBatchesOfTheShare(t *testing.T) {
	ts := tests(200, 100*time.Millisecond) // 20 s recorded
	for i := range 100 {
		ts = append(ts, Test{Name: fmt.Sprintf("TestNew%03d", i), Est: 100 * time.Millisecond, First: 1}) // 10 s new
	}
	p := NewPlan(Load, []Package{{Path: "p", Tests: ts}}, 4, nil)
	batches := drain(t, p, "gw0")
	if n := len(batches[0].Tests); n != 37 { // 30 s / (2*4) = 3.75 s: 37 tests
		t.Errorf("the first batch has %d tests, want 37", n)
	}
	seen, old := 0, false
	for i, b := range batches {
		news := 0
		for _, n := range b.Tests {
			if strings.HasPrefix(n, "TestNew") {
				news++
			}
		}
		switch {
		case news > 0 && news < len(b.Tests):
			t.Errorf("batch %d mixes new tests with the others: %v", i, b.Tests)
		case news > 0 && old:
			t.Errorf("batch %d of new tests comes after the others started", i)
		case news == 0:
			old = true
		}
		seen += len(b.Tests)
	}
	if seen != 300 {
		t.Errorf("%d tests handed out, want 300", seen)
	}
}

// Estimates takes a median (a sort of every record, for a package that never ran) only
// for a test with no record: the runner asks for the start-up cost of each package that
// runs unlisted, and of each listed package whose tests are all recorded.
func TestDurationsEstimatesSortOnlyWhenNeeded(t *testing.T) {
	d := NewDurations()
	for i := range 1000 {
		d.Record(fmt.Sprintf("p%d", i%10), fmt.Sprintf("Test%d", i), time.Duration(i)*time.Millisecond)
	}
	d.RecordStartup("p1", 5*time.Millisecond)
	if n := testing.AllocsPerRun(10, func() { d.Estimates("never-ran", nil) }); n > 0 {
		t.Errorf("the start-up of a package that never ran: %v allocations, want none (no median needed)", n)
	}
	if n := testing.AllocsPerRun(10, func() { d.Estimates("p1", []string{"Test1", "Test11"}) }); n > 1 {
		t.Errorf("estimates of recorded tests: %v allocations, want 1 (no median needed)", n)
	}
	if est, startup := d.Estimates("p1", []string{"Test1", "TestNew"}); est[0] != time.Millisecond || est[1] != 501*time.Millisecond || startup != 5*time.Millisecond {
		t.Errorf("estimates %v, start-up %v; want [1ms 501ms] (recorded, the package's median) and 5ms", est, startup)
	}
}
