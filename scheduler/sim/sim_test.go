package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func short(seed uint64, unknownBy string) Config {
	c := DefaultConfig()
	c.Workers, c.Hosts, c.Tests, c.Lost, c.Seed, c.UnknownBy = 50, 5, 5000, 3, seed, unknownBy
	return c
}

// Every test runs to its end exactly once, also those of the batches lost workers held,
// and no makespan beats its lower bounds.
func TestShortScenarioInvariants(t *testing.T) {
	retried := 0
	for _, by := range []string{"test", "package"} {
		for seed := uint64(1); seed <= 3; seed++ {
			c := short(seed, by)
			w := Generate(c)
			r, err := Run(w)
			if err != nil {
				t.Fatalf("seed %d, unknown by %s: %v", seed, by, err)
			}
			for i, p := range w.Pkgs {
				for j, tt := range p.Tests {
					if n := r.Runs[i][j]; n != 1 {
						t.Errorf("seed %d, by %s: %s.%s ran %d times, want once", seed, by, p.Path, tt.Name, n)
					}
				}
			}
			if r.Tests != c.Tests {
				t.Errorf("seed %d: %d tests generated, want %d", seed, r.Tests, c.Tests)
			}
			if want := int(float64(c.Tests) * c.Unknown); by == "test" && r.Unknown != want {
				t.Errorf("seed %d: %d tests unknown, want %d", seed, r.Unknown, want)
			}
			if r.Makespan < r.LB || r.Makespan < r.PlainLB || r.Makespan < r.PolicyLB || r.LB <= 0 {
				t.Errorf("seed %d, by %s: makespan %v, lower bounds %v, %v and %v", seed, by, r.Makespan, r.LB, r.PlainLB, r.PolicyLB)
			}
			retried += r.Retried
		}
	}
	if retried == 0 {
		t.Error("no lost worker held a batch: the retry path was not exercised")
	}
}

// The same seed gives the same run.
func TestDeterministic(t *testing.T) {
	a, err := Run(Generate(short(7, "test")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(Generate(short(7, "test")))
	if err != nil {
		t.Fatal(err)
	}
	if a.Makespan != b.Makespan || a.Batches != b.Batches || a.Retried != b.Retried || a.LastStart != b.LastStart {
		t.Errorf("two runs of seed 7 differ: %v/%d/%d/%v and %v/%d/%d/%v",
			a.Makespan, a.Batches, a.Retried, a.LastStart, b.Makespan, b.Batches, b.Retried, b.LastStart)
	}
}

// pkgs makes n packages of one known test each, of duration d (start-up startup).
func pkgs(n int, d, startup time.Duration) []Pkg {
	var out []Pkg
	for i := range n {
		out = append(out, Pkg{Path: fmt.Sprintf("p%d", i), Startup: startup, RecordedStartup: startup,
			Tests: []Test{{Name: "TestA", Dur: d, Known: true, Recorded: d}}})
	}
	return out
}

func workers(n int, slow float64) []Worker {
	var out []Worker
	for i := range n {
		out = append(out, Worker{ID: fmt.Sprintf("gw%d", i), Host: i, Slow: slow})
	}
	return out
}

// Scenarios whose makespan is known exactly.
func TestTrivialScenarios(t *testing.T) {
	four := []Pkg{{Path: "p", Tests: []Test{
		{Name: "T0", Dur: time.Second, Known: true, Recorded: time.Second},
		{Name: "T1", Dur: time.Second, Known: true, Recorded: time.Second},
		{Name: "T2", Dur: time.Second, Known: true, Recorded: time.Second},
		{Name: "T3", Dur: time.Second, Known: true, Recorded: time.Second},
	}}}
	lossy := workers(2, 1)
	lossy[0].Dies = 500 * time.Millisecond // in the middle of its first test
	for _, tc := range []struct {
		name        string
		w           Workload
		makespan    time.Duration
		ratio       float64
		retried     int
		lbKind      string
		plainRatio  float64
		wantBatches int
	}{
		// As many one-test packages as workers: each runs one, all at once.
		{"one each", Workload{pkgs(8, 300*time.Millisecond, 0), workers(8, 1)}, 300 * time.Millisecond, 1, 0, "area", 1, 8},
		// One worker: everything in a row, one process per package (each under SplitThreshold).
		{"one worker", Workload{pkgs(5, 100*time.Millisecond, 10*time.Millisecond), workers(1, 1)}, 550 * time.Millisecond, 1, 0, "area", 550.0 / 500, 5},
		// Three equal packages on two workers: one of them runs two.
		{"three on two", Workload{pkgs(3, time.Second, 0), workers(2, 1)}, 2 * time.Second, 4.0 / 3, 0, "area", 4.0 / 3, 3},
		// A host twice as slow: twice the time, and the bound knows it.
		{"slow host", Workload{pkgs(1, time.Second, 0), workers(1, 2)}, 2 * time.Second, 1, 0, "area", 2, 1},
		// gw0 is lost half-way through its first test: that test runs again on gw1, which
		// then runs the four one after another (batches of 1 s: 4 s over 2×2 workers).
		{"lost", Workload{four, lossy}, 4 * time.Second, 4 / 3.5, 1, "area", 2, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Run(tc.w)
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(r.Makespan) / float64(r.LB)
			plain := float64(r.Makespan) / float64(r.PlainLB)
			if r.Makespan != tc.makespan || !near(ratio, tc.ratio) || !near(plain, tc.plainRatio) || r.LBKind != tc.lbKind {
				t.Errorf("makespan %v (ratio %.4f, plain %.4f, bound %s); want %v (%.4f, %.4f, %s)",
					r.Makespan, ratio, plain, r.LBKind, tc.makespan, tc.ratio, tc.plainRatio, tc.lbKind)
			}
			if r.Retried != tc.retried || r.Batches != tc.wantBatches {
				t.Errorf("%d retried in %d batches, want %d in %d", r.Retried, r.Batches, tc.retried, tc.wantBatches)
			}
			for i := range r.Runs {
				for j, n := range r.Runs[i] {
					if n != 1 {
						t.Errorf("%s.%s ran %d times", tc.w.Pkgs[i].Path, tc.w.Pkgs[i].Tests[j].Name, n)
					}
				}
			}
		})
	}
}

// A package that never ran runs whole, in one process, as runner/list.go has it: on two
// workers its four tests of 1 s take 4 s, twice the lower bound, and all of the bound of the
// policy.
func TestNeverRanPackageRunsWhole(t *testing.T) {
	p := Pkg{Path: "new"}
	for i := range 4 {
		p.Tests = append(p.Tests, Test{Name: fmt.Sprintf("T%d", i), Dur: time.Second})
	}
	r, err := Run(Workload{[]Pkg{p}, workers(2, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Makespan != 4*time.Second || r.LB != 2*time.Second || r.PolicyLB != 4*time.Second || r.WholePkgs != 1 || r.Batches != 1 {
		t.Errorf("makespan %v, bound %v, the policy's %v, %d whole packages in %d batches; want 4s, 2s, 4s, 1 in 1",
			r.Makespan, r.LB, r.PolicyLB, r.WholePkgs, r.Batches)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// The command prints the figures the issue asks for, on one line.
func TestCommandLine(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run([]string{"-workers", "20", "-hosts", "4", "-tests", "500", "-lost", "1"}, &out, &errs); err != nil {
		t.Fatalf("%v (%s)", err, errs.String())
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 {
		t.Fatalf("want one line, got %q", line)
	}
	for _, key := range []string{"makespan_ratio=", "scheduler_cpu_s=", "peak_mem_mb=", "retried="} {
		if !strings.Contains(line, key) {
			t.Errorf("no %s in %q", key, line)
		}
	}
	if !strings.HasPrefix(line, "makespan_ratio=") {
		t.Errorf("the line starts %q", line[:min(len(line), 20)])
	}
	if err := run([]string{"-lost", "1000"}, &out, &errs); err == nil {
		t.Error("-lost as many as the workers was accepted")
	}
}
