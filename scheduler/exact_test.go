package scheduler

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A NoSplit package, and every package in LoadPkg mode, is one batch however long.
func TestNoSplitAndLoadPkgKeepAPackageTogether(t *testing.T) {
	long := tests(100, 50*time.Millisecond) // 5 s: far above SplitThreshold
	for _, c := range []struct {
		name string
		mode Mode
		pkg  Package
	}{
		{"NoSplit", Load, Package{Path: "p", Tests: long, NoSplit: true}},
		{"LoadPkg", LoadPkg, Package{Path: "p", Tests: long}},
	} {
		p := NewPlan(c.mode, []Package{c.pkg}, 4, nil)
		batches := drain(t, p, "gw0")
		if len(batches) != 1 || len(batches[0].Tests) != 100 {
			t.Errorf("%s: %d batches, want one of all 100 tests", c.name, len(batches))
		}
	}
	// Without NoSplit the same package is split: the tests above test something.
	if n := len(drain(t, NewPlan(Load, []Package{{Path: "p", Tests: long}}, 4, nil), "gw0")); n < 2 {
		t.Errorf("a long package was not split (%d batch): NoSplit proves nothing", n)
	}
}

// A package's benchmark batch comes once, after every batch of its tests has finished.
func TestBenchBatchAfterTheTests(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(100, 50*time.Millisecond), Bench: true}, {Path: "q", Tests: tests(2, time.Millisecond)}}, 4, nil)
	var held []Batch
	for {
		b, ok := p.Next(context.Background(), "gw0")
		if !ok {
			t.Fatal("plan ended before the benchmark batch")
		}
		if b.Bench {
			t.Fatalf("benchmark batch handed out while %d batches of tests are in flight", len(held))
		}
		held = append(held, b)
		if p.Remaining() == 0 {
			break
		}
	}
	// Finish all but one batch of p: still no benchmarks.
	var lastP *Batch
	for i := range held {
		if held[i].Package == "p" && lastP == nil {
			lastP = &held[i]
			continue
		}
		p.Finish("gw0", held[i], nil)
	}
	// What Next would hand out now, looked at without blocking.
	p.mu.Lock()
	b, ok := p.take(p.queueOf("gw0"), "gw0")
	p.mu.Unlock()
	if ok {
		t.Fatalf("got %+v while a batch of p's tests was still in flight", b)
	}
	p.Finish("gw0", *lastP, nil)
	b, ok = p.Next(context.Background(), "gw0")
	if !ok || !b.Bench || b.Package != "p" {
		t.Fatalf("after p's tests: %+v, want p's benchmark batch", b)
	}
	p.Finish("gw0", b, nil)
	if b, ok := p.Next(context.Background(), "gw0"); ok {
		t.Fatalf("a second benchmark batch or more work: %+v", b)
	}
}

// The digest changes with anything Shard splits by, and not with the order of packages.
func TestSplitDigest(t *testing.T) {
	a := []Package{{Path: "a", Tests: tests(3, time.Millisecond)}, {Path: "b", Whole: true}}
	b := []Package{a[1], a[0]}
	if SplitDigest(a, 3) != SplitDigest(b, 3) {
		t.Error("digest depends on package order")
	}
	if SplitDigest(a, 3) == SplitDigest(a, 4) {
		t.Error("digest ignores the number of parts")
	}
	c := []Package{{Path: "a", Tests: tests(3, 2*time.Millisecond)}, {Path: "b", Whole: true}}
	if SplitDigest(a, 3) == SplitDigest(c, 3) {
		t.Error("digest ignores estimates")
	}
}

// Shard jobs save on the side; the main file changes only once every part has run, so
// each job of a round reads the same input.
func TestSaveShardLeavesTheInputAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "d.json")
	seed := NewDurations()
	seed.Record("p", "TestOld", time.Second)
	if err := seed.Save(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	for i := 1; i <= 3; i++ {
		d, err := LoadDurations(path)
		if err != nil {
			t.Fatal(err)
		}
		d.Record("p", "TestPart"+string(rune('0'+i)), time.Duration(i)*time.Millisecond)
		d.RecordStartup("p", time.Millisecond)
		if err := d.SaveShard(path, i, 3, "abc"); err != nil {
			t.Fatal(err)
		}
		now, _ := os.ReadFile(path)
		if i < 3 && string(now) != string(before) {
			t.Fatalf("after part %d of 3 the file the others split by changed", i)
		}
	}
	d, err := LoadDurations(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"TestOld", "TestPart1", "TestPart2", "TestPart3"} {
		if _, ok := d.Tests["p"][n]; !ok {
			t.Errorf("after all parts, %s is not in the merged file", n)
		}
	}
	if side, _ := filepath.Glob(path + ".shard-*"); len(side) != 0 {
		t.Errorf("side files left: %v", side)
	}
}

// Next blocked on work that batches in flight may give back returns when its context ends.
func TestNextUnblock(t *testing.T) {
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(1, time.Millisecond)}}, 2, nil)
	b, _ := p.Next(context.Background(), "gw0") // in flight: gw1 must wait for it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() {
		_, ok := p.Next(ctx, "gw1")
		done <- ok
	}()
	cancel()
	if ok := <-done; ok {
		t.Fatal("Next handed out a batch after its context ended")
	}
	p.Finish("gw0", b, nil)
}

// A batch that never ran comes back as it was: a Whole package whole again, tests as a
// batch of their own; and the package is done only when it has run.
func TestReturnHandsTheBatchOutAgain(t *testing.T) {
	ctx := context.Background()
	p := NewPlan(Load, []Package{{Path: "w", Whole: true}, {Path: "p", Tests: tests(2, time.Millisecond)}}, 2, nil)
	first := map[string]Batch{}
	for range 2 {
		b, _ := p.Next(ctx, "gw0")
		first[b.Package] = b
	}
	p.Return("gw0", first["w"])
	p.Return("gw0", first["p"])
	again := map[string]Batch{}
	for range 2 {
		b, ok := p.Next(ctx, "gw1")
		if !ok {
			t.Fatal("returned batches were not handed out again")
		}
		again[b.Package] = b
	}
	if !again["w"].Whole || len(again["p"].Tests) != 2 {
		t.Fatalf("handed out again: %+v", again)
	}
	for _, b := range again {
		if !p.Finish("gw1", b, nil) {
			t.Errorf("%s not done after its batch ran", b.Package)
		}
	}
}

// A re-run avoids the gateway its test failed on while another gateway may still take it,
// also one that has not asked for work yet (still starting); once that one leaves, the
// re-run goes wherever it can.
func TestRerunWaitsForAWorkerStillStarting(t *testing.T) {
	ctx := context.Background()
	p := NewPlan(Load, []Package{{Path: "p", Tests: tests(1, time.Millisecond)}}, 2, []string{"gw0", "gw1"})
	b, _ := p.Next(ctx, "gw0")
	p.Finish("gw0", b, nil, Batch{Package: "p", Tests: b.Tests, Run: "^Test000$", Attempt: 1, Avoid: "gw0"})
	p.mu.Lock()
	_, ok := p.take(p.queueOf("gw0"), "gw0")
	p.mu.Unlock()
	if ok {
		t.Fatal("gw0 took the re-run of its own failure while gw1 was still starting")
	}
	r, ok := p.Next(ctx, "gw1")
	if !ok || r.Attempt != 1 {
		t.Fatalf("gw1 got %+v, %v; want the re-run", r, ok)
	}
	p.Finish("gw1", r, nil, Batch{Package: "p", Tests: b.Tests, Attempt: 2, Avoid: "gw1"})
	p.Leave("gw1") // lost: gw0 may now take the next attempt
	r, ok = p.Next(ctx, "gw0")
	if !ok || r.Attempt != 2 {
		t.Fatalf("gw0 got %+v, %v; want the second re-run once gw1 left", r, ok)
	}
	p.Finish("gw0", r, nil)
}

// Reset replaces a package's work: batches of the old work still come back but leave
// nothing behind, and the package is done once the new work is; Drop takes it out.
func TestResetAndDrop(t *testing.T) {
	ctx := context.Background()
	p := NewOpenPlan(Load, 1, []string{"gw0"})
	p.Add(Package{Path: "p", Tests: tests(2, time.Millisecond)}, Package{Path: "q", Tests: tests(1, time.Millisecond)})
	old, _ := p.Next(ctx, "gw0")
	if old.Package != "p" {
		old, _ = p.Next(ctx, "gw0")
	}
	p.Reset(Package{Path: "p", Tests: []Test{{Name: "TestNew", Est: time.Millisecond}}})
	if p.Finish("gw0", old, old.Tests) { // its retry is dropped: the old work is gone
		t.Fatal("the package was done after only its old batch came back")
	}
	p.Drop("q")
	p.Seal()
	var got []Batch
	for {
		b, ok := p.Next(ctx, "gw0")
		if !ok {
			break
		}
		got = append(got, b)
		done := p.Finish("gw0", b, nil)
		if b.Package == "p" && !done {
			t.Errorf("p not done after its new work ran")
		}
	}
	for _, b := range got {
		if b.Package == "q" || (b.Package == "p" && (len(b.Tests) != 1 || b.Tests[0] != "TestNew")) {
			t.Errorf("handed out %+v", b)
		}
	}
}
