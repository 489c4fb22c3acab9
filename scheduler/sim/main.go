// Command sim runs godist's scheduler at scale in virtual time: the real scheduler.Plan
// hands out batches of a simulated suite (by default 100,000 tests with heavy-tailed
// durations) to simulated workers (1000 on 100 hosts, with start-up and sync delays,
// stragglers and lost workers), and a discrete-event loop advances the clock; nothing
// sleeps. It prints one line of key=value figures:
//
//	makespan_ratio  the simulated makespan over a lower bound of it (Result.LB)
//	plain_ratio     the makespan over max(Σt/N, t_max + start-up), ignoring the hosts
//	scheduler_cpu_s process CPU time inside the scheduler package's calls (plan_cpu_s,
//	                the Plan's; durations_cpu_s, the Durations' estimates and records)
//	peak_mem_mb     the peak heap (bytes of heap objects, garbage not yet collected too,
//	                sampled after every event); peak_live_mb, the most live after a GC
//
// and more (see run). The same flags and seed give the same figures, but the CPU and
// memory ones. Usage:
//
//	go run ./scheduler/sim [-workers 1000] [-hosts 100] [-tests 100000] [-unknown 0.2] ...
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	c := DefaultConfig()
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Workers, "workers", c.Workers, "workers")
	fs.IntVar(&c.Hosts, "hosts", c.Hosts, "hosts the workers are spread over")
	fs.IntVar(&c.Tests, "tests", c.Tests, "tests")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the random scenario")
	fs.StringVar(&c.Dist, "dist", c.Dist, "test durations: lognormal or pareto")
	fs.DurationVar(&c.Median, "median", c.Median, "median test duration")
	fs.Float64Var(&c.Sigma, "sigma", c.Sigma, "lognormal: log standard deviation of a test's duration within its package")
	fs.Float64Var(&c.PkgSigma, "pkg-sigma", c.PkgSigma, "log standard deviation of a package's effect on its tests' durations")
	fs.Float64Var(&c.Alpha, "alpha", c.Alpha, "pareto: shape")
	fs.IntVar(&c.PkgMedian, "pkg-median", c.PkgMedian, "median tests per package (log-normal)")
	fs.Float64Var(&c.PkgSize, "pkg-size-sigma", c.PkgSize, "log standard deviation of the tests per package")
	fs.IntVar(&c.MaxPkg, "max-pkg", c.MaxPkg, "most tests in one package")
	fs.DurationVar(&c.Startup, "startup", c.Startup, "median cost of starting a test process (log-normal, sigma 1)")
	fs.DurationVar(&c.HostStart, "host-start", c.HostStart, "median host start-up (log-normal, sigma 0.5)")
	fs.DurationVar(&c.HostSync, "host-sync", c.HostSync, "median host sync of tree and binaries (log-normal, sigma 0.5)")
	fs.Float64Var(&c.Noise, "noise", c.Noise, "log standard deviation of a recorded duration around the true one")
	fs.Float64Var(&c.Unknown, "unknown", c.Unknown, "fraction of the tests with no recorded duration")
	fs.StringVar(&c.UnknownBy, "unknown-by", c.UnknownBy, "test: unknown tests drawn one by one; package: whole packages that never ran")
	fs.Float64Var(&c.Stragglers, "stragglers", c.Stragglers, "fraction of slow hosts")
	fs.Float64Var(&c.Slowdown, "slowdown", c.Slowdown, "time factor of a slow host")
	fs.IntVar(&c.Lost, "lost", c.Lost, "workers lost mid-run")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole simulation to `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sim: unexpected arguments %q", fs.Args())
	}
	if err := c.Validate(); err != nil {
		return err
	}
	w := Generate(c)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, err := Run(w)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, r.Line())
	return nil
}

// Line is the result as one line of key=value pairs.
func (r *Result) Line() string {
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	return fmt.Sprintf("makespan_ratio=%.4f scheduler_cpu_s=%.3f peak_mem_mb=%.1f"+
		" peak_live_mb=%.1f sched_mem_mb=%.1f plain_ratio=%.4f policy_ratio=%.4f makespan_s=%.3f lb_s=%.3f lb=%s sum_t_s=%.1f t_max_s=%.3f t_max_end_s=%.3f t_max_slow=%g last_start_s=%.3f longest_batch_s=%.3f whole_max_s=%.3f"+
		" plan_cpu_s=%.3f durations_cpu_s=%.3f sched_wall_s=%.3f sched_calls=%d"+
		" pkgs=%d tests=%d unknown=%d whole_pkgs=%d batches=%d retried=%d",
		ratio(int64(r.Makespan), int64(r.LB)), (r.PlanCPU + r.DurCPU).Seconds(), float64(r.PeakHeap)/(1<<20),
		float64(r.PeakLive)/(1<<20), float64(r.SchedMem)/(1<<20), ratio(int64(r.Makespan), int64(r.PlainLB)), ratio(int64(r.Makespan), int64(r.PolicyLB)), r.Makespan.Seconds(), r.LB.Seconds(), r.LBKind,
		r.TotalWork.Seconds(), r.LongestDur.Seconds(), r.LongestEnd.Seconds(), r.LongestSlow, r.LastStart.Seconds(), r.LongestBatch.Seconds(), r.WholeMax.Seconds(),
		r.PlanCPU.Seconds(), r.DurCPU.Seconds(), r.SchedWall.Seconds(), r.Calls,
		r.Pkgs, r.Tests, r.Unknown, r.WholePkgs, r.Batches, r.Retried)
}
