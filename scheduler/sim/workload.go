package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Config is a scenario: the suite, the hosts and what goes wrong.
type Config struct {
	Workers, Hosts, Tests int
	Seed                  uint64

	// Test durations: log-normal (Dist "lognormal") with median Median, the log of a test's
	// duration the sum of a package effect (standard deviation PkgSigma) and the test's own
	// (Sigma); or Pareto (Dist "pareto") with shape Alpha and median Median, scaled by the
	// same package effect.
	Dist            string
	Median          time.Duration
	Sigma, PkgSigma float64
	Alpha           float64
	// Package sizes: log-normal, median PkgMedian tests, log standard deviation PkgSize,
	// 1 to MaxPkg tests.
	PkgMedian int
	PkgSize   float64
	MaxPkg    int
	// Startup is the median cost of starting one test process (log-normal, sigma 1).
	Startup time.Duration
	// HostStart and HostSync are the medians of a host's start-up and of its sync (tree and
	// binaries; log-normal, sigma 0.5): its workers ask for work after both.
	HostStart, HostSync time.Duration
	// Noise is the log standard deviation of a recorded duration around the true one.
	Noise float64
	// Unknown is the fraction of the tests with no recorded duration: tests drawn at random
	// (UnknownBy "test": new tests of packages that ran before, and the few packages all of
	// whose tests were drawn), or whole packages (UnknownBy "package": packages that never ran).
	Unknown   float64
	UnknownBy string
	// Stragglers is the fraction of the hosts slower by the factor Slowdown.
	Stragglers, Slowdown float64
	// Lost workers die mid-run, at a time drawn uniformly in the first 80% of their share
	// of the work after they came up.
	Lost int
}

// DefaultConfig is the scenario of issue 14.
func DefaultConfig() Config {
	return Config{
		Workers: 1000, Hosts: 100, Tests: 100000, Seed: 1,
		Dist: "lognormal", Median: 100 * time.Millisecond, Sigma: 1.0, PkgSigma: 0.7, Alpha: 2,
		PkgMedian: 15, PkgSize: 1.3, MaxPkg: 5000,
		Startup:   20 * time.Millisecond,
		HostStart: time.Second, HostSync: 2 * time.Second,
		Noise:   0.1,
		Unknown: 0.2, UnknownBy: "test",
		Stragglers: 0.1, Slowdown: 2,
		Lost: 5,
	}
}

// Validate reports a scenario that cannot run.
func (c Config) Validate() error {
	switch {
	case c.Workers < 1 || c.Hosts < 1 || c.Tests < 1:
		return fmt.Errorf("sim: -workers, -hosts and -tests must be at least 1")
	case c.Hosts > c.Workers:
		return fmt.Errorf("sim: %d hosts for %d workers: every host runs a worker at least", c.Hosts, c.Workers)
	case c.Dist != "lognormal" && c.Dist != "pareto":
		return fmt.Errorf("sim: -dist %q: want lognormal or pareto", c.Dist)
	case c.Dist == "pareto" && c.Alpha <= 1:
		return fmt.Errorf("sim: -alpha %v: a Pareto shape of 1 or less has no mean", c.Alpha)
	case c.Unknown < 0 || c.Unknown > 1 || c.Stragglers < 0 || c.Stragglers > 1:
		return fmt.Errorf("sim: -unknown and -stragglers are fractions, 0 to 1")
	case c.UnknownBy != "test" && c.UnknownBy != "package":
		return fmt.Errorf("sim: -unknown-by %q: want test or package", c.UnknownBy)
	case c.Slowdown < 1:
		return fmt.Errorf("sim: -slowdown %v: a straggler is slower, 1 or more", c.Slowdown)
	case c.Lost < 0 || c.Lost >= c.Workers:
		return fmt.Errorf("sim: -lost %d: from 0 to one less than the workers", c.Lost)
	case c.Median <= 0 || c.PkgMedian < 1 || c.MaxPkg < 1:
		return fmt.Errorf("sim: -median and -pkg-median must be positive")
	}
	return nil
}

// Workload is what a simulation runs: the packages with their tests' true and recorded
// durations, and the workers.
type Workload struct {
	Pkgs    []Pkg
	Workers []Worker
}

// Pkg is a package of the suite.
type Pkg struct {
	Path    string
	Startup time.Duration // what starting one of its test processes costs
	// RecordedStartup is the start-up cost in the durations store of the previous run
	// (recorded only for a package with a known test).
	RecordedStartup time.Duration
	Tests           []Test // in the order the binary runs them
}

// Test is a top-level test.
type Test struct {
	Name     string
	Dur      time.Duration // how long it takes, on a host of speed 1
	Known    bool          // the previous run recorded it
	Recorded time.Duration // what it recorded
}

// Worker is one worker process on a host.
type Worker struct {
	ID    string
	Host  int
	Ready time.Duration // it asks for its first batch then (host start-up and sync)
	Slow  float64       // its host's time factor, 1 or more
	Dies  time.Duration // it is lost then (0: never)
}

// Generate draws the workload of c, the same for the same c.
func Generate(c Config) Workload {
	rng := rand.New(rand.NewPCG(c.Seed, 0x676f64697374)) // "godist"
	logn := func(median time.Duration, sigma float64) time.Duration {
		return time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
	}
	var w Workload
	// Packages of realistic sizes: many small ones, a few large.
	for left := c.Tests; left > 0; {
		n := int(math.Round(float64(c.PkgMedian) * math.Exp(c.PkgSize*rng.NormFloat64())))
		n = min(max(n, 1), c.MaxPkg, left)
		left -= n
		p := Pkg{Path: fmt.Sprintf("example.com/m/p%04d", len(w.Pkgs))}
		p.Startup = min(logn(c.Startup, 1), 2*time.Second)
		p.RecordedStartup = noisy(rng, p.Startup, c.Noise)
		effect := math.Exp(c.PkgSigma * rng.NormFloat64())
		for i := range n {
			var d time.Duration
			if c.Dist == "pareto" {
				xm := float64(c.Median) / math.Pow(2, 1/c.Alpha)
				d = time.Duration(effect * xm / math.Pow(1-rng.Float64(), 1/c.Alpha))
			} else {
				d = time.Duration(effect * float64(c.Median) * math.Exp(c.Sigma*rng.NormFloat64()))
			}
			d = max(d, time.Microsecond)
			p.Tests = append(p.Tests, Test{Name: fmt.Sprintf("Test%04d", i), Dur: d, Known: true, Recorded: noisy(rng, d, c.Noise)})
		}
		w.Pkgs = append(w.Pkgs, p)
	}
	// Tests with no recorded duration.
	want := int(math.Round(c.Unknown * float64(c.Tests)))
	if c.UnknownBy == "package" {
		for _, i := range rng.Perm(len(w.Pkgs)) {
			if want <= 0 {
				break
			}
			for j := range w.Pkgs[i].Tests {
				w.Pkgs[i].Tests[j].Known, w.Pkgs[i].Tests[j].Recorded = false, 0
			}
			want -= len(w.Pkgs[i].Tests)
		}
	} else {
		type ref struct{ p, t int }
		var all []ref
		for i, p := range w.Pkgs {
			for j := range p.Tests {
				all = append(all, ref{i, j})
			}
		}
		for _, k := range rng.Perm(len(all))[:want] {
			t := &w.Pkgs[all[k].p].Tests[all[k].t]
			t.Known, t.Recorded = false, 0
		}
	}
	// Hosts: start-up and sync delays, stragglers.
	ready := make([]time.Duration, c.Hosts)
	slow := make([]float64, c.Hosts)
	for h := range c.Hosts {
		ready[h] = logn(c.HostStart, 0.5) + logn(c.HostSync, 0.5)
		slow[h] = 1
	}
	for _, h := range rng.Perm(c.Hosts)[:int(math.Round(c.Stragglers*float64(c.Hosts)))] {
		slow[h] = c.Slowdown
	}
	var sum time.Duration
	for _, p := range w.Pkgs {
		for _, t := range p.Tests {
			sum += t.Dur
		}
	}
	share := sum / time.Duration(c.Workers)
	for i := range c.Workers {
		h := i % c.Hosts
		w.Workers = append(w.Workers, Worker{ID: fmt.Sprintf("gw%d", i), Host: h, Ready: ready[h], Slow: slow[h]})
	}
	for _, i := range rng.Perm(c.Workers)[:c.Lost] {
		wk := &w.Workers[i]
		wk.Dies = wk.Ready + time.Duration(rng.Float64()*0.8*float64(share)*wk.Slow) + 1
	}
	return w
}

// noisy is d as another run measured it: off by a log-normal factor of sigma noise.
func noisy(rng *rand.Rand, d time.Duration, noise float64) time.Duration {
	return max(time.Duration(float64(d)*math.Exp(noise*rng.NormFloat64())), time.Microsecond)
}
