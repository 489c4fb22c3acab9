package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/report"
	"github.com/godist/godist/runner"
	"github.com/godist/godist/scheduler"
	"github.com/godist/godist/xspec"
)

type rootOptions struct {
	dir      string
	n        string
	tx       []string
	dist     string
	jsonfile string
	format   string

	run, skip, shuffle, tags, coverprofile string
	count                                  int
	short, failfast, race, cover, verbose  bool
	timeout                                time.Duration
	durations                              string
	exitFirst                              bool
	maxfail, rerunFails, slowest           int
	junitfile, shard                       string
	rsyncDirs, rsyncIgnore                 []string
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	var o rootOptions
	cmd := &cobra.Command{
		Use:   "godist [flags] [packages] [-- flags for the test binaries]",
		Short: "Run a Go module's tests distributed over local and remote workers",
		Long: `godist runs the tests of a Go module distributed over gateways: local worker
processes (-n), and hosts named by --tx specs. It builds each test binary once, hands
batches of tests to the workers, and reports the same results as go test -json.

Flags of go test are taken as go test takes them, with one dash or two:
-run -skip -count -short -timeout -failfast -v -race -tags -shuffle -cover -coverprofile.`,
		Example: `  godist ./...                      all packages, on every CPU
  godist -n 8 -run TestFoo ./pkg/... 
  godist --dist each --tx popen --tx popen//goarch=386 ./...
  godist --jsonfile run.json ./... -- -custom-flag=1`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTests(cmd, o, args, stdout, stderr)
		},
	}
	cmd.SetFlagErrorFunc(wrapFlagError)
	f := cmd.Flags()
	f.StringVarP(&o.dir, "chdir", "C", "", "run in directory `DIR` (its Go module)")
	f.StringVarP(&o.n, "numprocesses", "n", "", "`N` local workers, or auto (the CPUs this process may use); default auto when no --tx is given")
	f.StringArrayVar(&o.tx, "tx", nil, "a gateway `SPEC` ([N*]TYPE[//KEY=VALUE]...), repeatable")
	f.StringVar(&o.dist, "dist", "load", "distribution `MODE`: load (each test once) or each (every test on every gateway)")
	f.StringVar(&o.jsonfile, "jsonfile", "", "write the run as go test -json does, with a Worker field, to `FILE`")
	f.StringVar(&o.format, "format", "", "output `FORMAT` (default: live view on a terminal, plain lines elsewhere)")
	f.StringVar(&o.run, "run", "", "run only tests matching `REGEXP`, as go test -run")
	f.StringVar(&o.skip, "skip", "", "skip tests matching `REGEXP`, as go test -skip")
	f.IntVar(&o.count, "count", 0, "run each test `N` times")
	f.BoolVar(&o.short, "short", false, "tell long-running tests to shorten their run time")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "panic a test process after `D`, as go test -timeout (0 disables)")
	f.BoolVar(&o.failfast, "failfast", false, "do not start new tests of a package after its first failure")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "print every test's output, as go test -v")
	f.BoolVar(&o.race, "race", false, "build with the race detector")
	f.StringVar(&o.tags, "tags", "", "build `TAGS`, as go test -tags")
	f.StringVar(&o.shuffle, "shuffle", "", "randomize test order in each process: off, on, or a seed `N`")
	f.BoolVar(&o.cover, "cover", false, "enable coverage analysis")
	f.StringVar(&o.coverprofile, "coverprofile", "", "write a coverage profile to `FILE` (implies -cover)")
	f.BoolVarP(&o.exitFirst, "exitfirst", "x", false, "stop at the first failed test (--maxfail 1)")
	f.IntVar(&o.maxfail, "maxfail", 0, "stop once `N` tests have failed: no new test starts, running ones are stopped")
	f.IntVar(&o.rerunFails, "rerun-fails", 0, "run a failed test again up to `N` times, on another worker where there is one")
	f.StringVar(&o.junitfile, "junitfile", "", "write JUnit XML to `FILE` (suites per package, and per gateway in each mode)")
	f.IntVar(&o.slowest, "slowest", 0, "print the `N` slowest tests, with the worker each ran on")
	f.StringVar(&o.shard, "shard", "", "run only part `I/N` (1-based) of the tests, balanced by recorded durations (see --durations)")
	f.StringArrayVar(&o.rsyncDirs, "rsyncdir", nil, "also ship `DIR` to gateways that do not share this machine's files, repeatable")
	f.StringArrayVar(&o.rsyncIgnore, "rsyncignore", nil, "leave `PATTERN` (gitignore syntax) out of what is shipped, repeatable")
	f.StringVar(&o.durations, "durations", "", "read and update recorded test durations in `FILE` (default: the user cache)")
	f.SetInterspersed(true)

	cmd.AddCommand(newWorkerCommand(), newPingCommand(stdout), newServeCommand(stderr), newRsyncCommand(stdout))
	return cmd
}

func runTests(cmd *cobra.Command, o rootOptions, args []string, stdout, stderr io.Writer) error {
	var pkgs, testArgs []string
	if i := cmd.ArgsLenAtDash(); i >= 0 {
		pkgs, testArgs = args[:i], args[i:]
	} else {
		pkgs = args
	}
	mode := scheduler.Load
	switch o.dist {
	case "load":
	case "each":
		mode = scheduler.Each
	default:
		return usagef("--dist %q: unknown mode (accepted: load, each)", o.dist)
	}
	if o.coverprofile != "" {
		o.cover = true
	}
	if o.count < 0 {
		return usagef("-count %d: expected a count of 1 or more", o.count)
	}
	if o.shuffle != "" && o.shuffle != "on" && o.shuffle != "off" {
		var seed int64
		if _, err := fmt.Sscanf(o.shuffle, "%d", &seed); err != nil {
			return usagef("-shuffle %q: expected off, on, or an integer seed", o.shuffle)
		}
	}
	if o.exitFirst {
		if o.maxfail > 1 {
			return usagef("-x and --maxfail %d disagree: -x is --maxfail 1", o.maxfail)
		}
		o.maxfail = 1
	}
	if o.maxfail < 0 {
		return usagef("--maxfail %d: expected a number of failures of 1 or more", o.maxfail)
	}
	if o.rerunFails < 0 || o.rerunFails > 100 {
		return usagef("--rerun-fails %d: expected a number of re-runs from 0 to 100", o.rerunFails)
	}
	if o.timeout < 0 {
		return usagef("-timeout %v: expected a duration of 0 or more", o.timeout)
	}
	var shardI, shardN int
	if o.shard != "" {
		var err error
		if shardI, shardN, err = scheduler.ParseShard(o.shard); err != nil {
			return usagef("--shard: %v", err)
		}
	}
	if o.slowest < 0 {
		return usagef("--slowest %d: expected a number of tests of 0 or more", o.slowest)
	}
	gws, err := gatewaysOf(o.n, o.tx)
	if err != nil {
		return err
	}
	// Output files are created before the run, so a bad path is bad usage, not a
	// surprise after the tests ran.
	var json io.Writer
	if o.jsonfile != "" {
		f, err := createOutput("--jsonfile", o.jsonfile)
		if err != nil {
			return err
		}
		defer f.Close()
		json = f
	}
	var junitOut *os.File
	if o.junitfile != "" {
		if junitOut, err = createOutput("--junitfile", o.junitfile); err != nil {
			return err
		}
		defer junitOut.Close()
	}
	tty := isTerminal(stdout) && os.Getenv("TERM") != "dumb"
	color := tty && os.Getenv("NO_COLOR") == ""
	rep, err := report.New(report.Options{Out: stdout, TTY: tty && color, Color: color, Verbose: o.verbose,
		Format: o.format, Workers: len(gws), Each: mode == scheduler.Each, Now: time.Now})
	if err != nil {
		return usagef("%v", err)
	}
	var sinks []func(gotest.Event)
	var junit *report.JUnitCollector
	if o.junitfile != "" {
		junit = report.NewJUnitCollector(report.JUnitOptions{Each: mode == scheduler.Each})
		sinks = append(sinks, junit.Event)
	}
	var slow report.SlowestTracker
	if o.slowest > 0 {
		sinks = append(sinks, slow.Event)
	}
	dirs := map[string]string{}
	var gh *report.GitHubAnnotator
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		ws := os.Getenv("GITHUB_WORKSPACE")
		if ws == "" {
			ws, _ = os.Getwd()
		}
		buildDir := o.dir
		if buildDir == "" {
			buildDir, _ = os.Getwd()
		}
		gh = report.NewGitHubAnnotator(report.GitHubOptions{Workspace: ws, Dirs: dirs, BuildDir: buildDir, Each: mode == scheduler.Each})
		sinks = append(sinks, gh.Event)
	}
	start := time.Now()
	res, err := runner.Run(cmd.Context(), runner.Config{
		Dir: o.dir, Patterns: pkgs, Gateways: gws, Mode: mode,
		Tags: o.tags, Race: o.race, Cover: o.cover, CoverProfile: o.coverprofile,
		Run: o.run, Skip: o.skip, Shuffle: o.shuffle, Count: o.count, Short: o.short,
		Failfast: o.failfast, Timeout: o.timeout, TestArgs: testArgs,
		MaxFail: o.maxfail, RerunFails: o.rerunFails,
		JSON: json, Reporter: rep, DurationsFile: o.durations,
		Sinks: sinks, ShardI: shardI, ShardN: shardN, Dirs: dirs,
		RsyncDirs: o.rsyncDirs, RsyncIgnore: o.rsyncIgnore,
	})
	if junit != nil && res != nil {
		werr := junit.Write(junitOut)
		if cerr := junitOut.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil && err == nil {
			err = fmt.Errorf("--junitfile: %w", werr)
		}
	}
	if gh != nil && res != nil {
		gh.Write(stdout)
	}
	if o.slowest > 0 && res != nil {
		report.WriteSlowest(stdout, slow.Slowest(o.slowest))
	}
	if res == nil {
		rep.Abort()
		return err
	}
	rep.Close(time.Since(start))
	if err != nil {
		return err
	}
	return statusOf(res.Status)
}

// createOutput creates an output file named by flag; failing is bad usage.
func createOutput(flag, path string) (*os.File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, usagef("%s: %v", flag, err)
	}
	return f, nil
}

func statusOf(s int) error {
	if s == 0 {
		return nil
	}
	return &statusError{s}
}

// gatewaysOf turns -n and --tx into gateways: -n N is N popen gateways, first.
func gatewaysOf(n string, tx []string) ([]xspec.Gateway, error) {
	if n == "" && len(tx) == 0 {
		n = "auto"
	}
	count, err := parseN(n, availableCPUs())
	if err != nil {
		return nil, err
	}
	var specs []*xspec.Spec
	if count > 0 {
		s, err := xspec.Parse(fmt.Sprintf("%d*popen", count))
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	for _, t := range tx {
		s, err := xspec.Parse(t)
		if err != nil {
			return nil, usagef("--tx: %v", err)
		}
		specs = append(specs, s)
	}
	gws, err := xspec.Expand(specs)
	if err != nil {
		return nil, usagef("--tx: %v", err)
	}
	return gws, nil
}

// availableCPUs is the number of CPUs this process may use: the scheduler affinity mask,
// capped by a cgroup CPU quota.
func availableCPUs() int {
	n := runtime.NumCPU() // honours the affinity mask
	if q := cgroupQuota(); q > 0 && q < n {
		n = q
	}
	return max(n, 1)
}

// cgroupQuota reads cgroup v2's cpu.max (or v1's cfs quota) and rounds the quota up.
func cgroupQuota() int {
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		var quota, period int64
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			fmt.Sscan(f[0], &quota)
			fmt.Sscan(f[1], &period)
			if quota > 0 && period > 0 {
				return int((quota + period - 1) / period)
			}
		}
		return 0
	}
	var quota, period int64
	qb, err1 := os.ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
	pb, err2 := os.ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
	if err1 == nil && err2 == nil {
		fmt.Sscan(strings.TrimSpace(string(qb)), &quota)
		fmt.Sscan(strings.TrimSpace(string(pb)), &period)
		if quota > 0 && period > 0 {
			return int((quota + period - 1) / period)
		}
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
