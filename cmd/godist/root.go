package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
	"github.com/godist/godist/report"
	"github.com/godist/godist/runner"
	"github.com/godist/godist/scheduler"
	"github.com/godist/godist/timeline"
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
	bench, list, vet, outputdir            string
	artifacts, json                        bool
	// pass are the go test and go build flags that go to the test binaries or the build
	// as they are (goFlags' toTest and toBuild), in command-line order.
	pass []flagValue

	durations                    string
	exitFirst                    bool
	maxfail, rerunFails, slowest int
	junitfile, shard             string
	timeline                     string
	keepalive                    string
	rsyncDirs, rsyncIgnore       []string
	cacheDir, cacheMax           string
	lastFailed, watch            bool
	version                      bool
	postRun                      commandFlag
	postRunArgv                  []string // postRun, split (config)
}

const rootLong = `godist runs the tests of a Go module distributed over gateways: local worker
processes (-n), and hosts named by --tx specs. It builds each test binary once, hands
batches of tests to the workers, and reports the same results as go test -json.
Packages are named as go test names them; with none given, ./... (every package of the
module in the current directory, or in -C DIR).

Flags of go test are taken as go test takes them (-name, -name=value, -name value, one
dash or two, before or after the packages; see go help testflag and go help build):
  tests:  -run -skip -count -short -timeout -failfast -v -shuffle -bench -benchtime
          -benchmem -cpu -parallel -list -fullpath -outputdir -artifacts
          -blockprofilerate -memprofilerate -mutexprofilefraction (also as -test.NAME)
  go test: -json (only the JSON stream on stdout; godist's notes go to stderr) -vet
  build:  -race -tags -cover -covermode -coverpkg -coverprofile -a -asan -msan -asmflags
          -gcflags -ldflags -gccgoflags -buildmode -buildvcs -compiler -installsuffix
          -linkshared -mod -modcacherw -modfile -overlay -pgo -pkgdir -toolexec -trimpath
Refused, each with what to do instead: -cpuprofile -memprofile -blockprofile
-mutexprofile -trace (a package's tests run in several processes; pass -test.NAME after
--), -fuzz -fuzztime -fuzzminimizetime (use go test -fuzz), -c -o -exec -work -p -i.
godist's -n is its number of workers and -x stops at the first failure: they are not go
build's -n and -x. With -C DIR, go test's file flags (-coverprofile, -outputdir, -modfile,
-overlay, -pgo) are read in DIR, as go test -C reads them; --jsonfile and --junitfile are
not. Any other flag is refused: flags after -- (or -args) go to every test binary as
they are.

Exit status:
  0  every test passed
  1  a test failed, a package did not build, or a test process crashed
  2  bad usage or a bad spec (checked before any test runs)
  3  the work could not be run (no gateway came up, or all were lost), or
     --post-run-command failed

Environment:
  NO_COLOR                    plain output, no colours, on a terminal too (TERM=dumb too)
  GITHUB_ACTIONS=true         ::error annotations at the failing lines (GITHUB_WORKSPACE:
                              the paths they are relative to)
  GITHUB_STEP_SUMMARY=FILE    with GITHUB_ACTIONS, the job summary is appended to FILE
                              (linked with GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_SHA)
  GODIST_CACHE_DIR            the result cache's directory (off: no result cache)
  GODIST_TRACE=1              each phase of a run, timed, on stderr
  GODIST_CPUPROFILE=FILE      CPU profiles of the master (FILE) and the workers (FILE.PID)
  GODIST_WORKER_<GOOS>_<GOARCH>=FILE
                              the static godist binary to ship to hosts of that platform,
                              e.g. GODIST_WORKER_LINUX_ARM64 (else one is built with the
                              local Go toolchain)
  SSH_AUTH_SOCK               the ssh-agent that ssh= and socket= gateways use
  DOCKER_HOST, DOCKER_CONTEXT the docker engine that docker= gateways start containers on
                              (read by the docker client, which godist runs from PATH)
  GODIST_REQUIRE_SSHD=1       godist's own tests: fail, not skip, where sshd, docker or
                              tmux is missing
Set by godist in every test process:
  GODIST_WORKER               the worker's id: gw0, gw1, ...
  GODIST_WORKER_COUNT         the number of workers asked for (-n and --tx)
  GODIST_TESTRUNUID           one value for the whole run
Set by godist for --post-run-command (see CONTRACT.md):
  TESTS_TOTAL, TESTS_PASSED, TESTS_FAILED, TESTS_SKIPPED, TESTS_ERRORS,
  TESTS_BUILD_FAILURES, TESTS_NOT_RUN, TESTS_FLAKY
                              the run's counts, as the summary line counts them
  GODIST_ELAPSED              the run's time (2.450s)
  GODIST_EXIT_STATUS          what godist exits with if the command succeeds
  GODIST_JSONFILE             the absolute path of --jsonfile ("" without it)
  GODIST_JUNITFILE            the absolute path of --junitfile ("" without it)`

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	var o rootOptions
	cmd := &cobra.Command{
		Use:   "godist [flags] [packages] [-- flags for the test binaries]",
		Short: "Run a Go module's tests distributed over local and remote workers",
		Long:  rootLong,
		Example: `  godist ./...                      all packages, on every CPU
  godist -n 8 -run TestFoo ./pkg/...
  godist -json -count 1 ./... | jq
  godist --dist each --tx popen --tx popen//goarch=386 ./...
  godist --jsonfile run.json ./... -- -custom-flag=1`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.version {
				fmt.Fprintln(stdout, versionLine())
				return nil
			}
			pkgs, testArgs := args, []string(nil)
			if i := cmd.ArgsLenAtDash(); i >= 0 {
				pkgs, testArgs = args[:i], args[i:]
			}
			if o.watch {
				return watch(cmd.Context(), &o, pkgs, testArgs, cmd.InOrStdin(), stdout, stderr)
			}
			return runTests(cmd.Context(), &o, pkgs, testArgs, stdout, stderr, runOverrides{})
		},
	}
	cmd.SetFlagErrorFunc(wrapFlagError)
	addRootFlags(cmd.Flags(), &o)
	cmd.AddCommand(newWorkerCommand(), newPingCommand(stdout), newServeCommand(stderr), newRsyncCommand(stdout), newCacheCommand(stdout))
	return cmd
}

// addRootFlags registers the flags of a test run: godist's and the go test flags of
// goFlags that godist takes.
func addRootFlags(f *pflag.FlagSet, o *rootOptions) {
	f.StringVarP(&o.dir, "chdir", "C", "", "run in directory `DIR` (its Go module); go test's file flags are read there")
	f.StringVarP(&o.n, "numprocesses", "n", "", "`N` local workers, or auto (the CPUs this process may use); default auto when no --tx is given")
	f.StringArrayVar(&o.tx, "tx", nil, "a gateway `SPEC` ([N*]TYPE[//KEY=VALUE]...), repeatable")
	f.StringVar(&o.dist, "dist", "load", "distribution `MODE`: load (each test once), loadpkg (each package in one process, as go test) or each (every test on every gateway)")
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
	f.StringVar(&o.bench, "bench", "", "run benchmarks matching `REGEXP` after the tests, one benchmark process at a time on a host")
	f.StringVar(&o.list, "list", "", "list the tests, benchmarks, fuzz tests and examples matching `REGEXP`; run nothing")
	f.StringVar(&o.vet, "vet", "", "go vet `CHECKS` while building: off, all, or a comma-separated list (default: go test's)")
	f.BoolVar(&o.json, "json", false, "write the run to stdout as go test -json does (with a Worker field), and nothing else")
	f.StringVar(&o.outputdir, "outputdir", "", "`DIR` for test artifacts (-artifacts), on the host that runs the test")
	f.BoolVar(&o.artifacts, "artifacts", false, "keep the t.ArtifactDir of each test in -outputdir")
	addPassFlags(f, &o.pass)
	f.BoolVarP(&o.exitFirst, "exitfirst", "x", false, "stop at the first failed test (--maxfail 1)")
	f.IntVar(&o.maxfail, "maxfail", 0, "stop once `N` tests have failed: no new test starts, running ones are stopped")
	f.IntVar(&o.rerunFails, "rerun-fails", 0, "run a failed test again up to `N` times, on another worker where there is one")
	f.StringVar(&o.junitfile, "junitfile", "", "write JUnit XML to `FILE` (suites per package, and per gateway in each mode)")
	f.StringVar(&o.timeline, "timeline", "", "write the run as a Gantt chart to `FILE.html` (self-contained: gateways, test processes, tests, critical path, idle time)")
	f.IntVar(&o.slowest, "slowest", 0, "print the `N` slowest tests, with the worker each ran on")
	f.StringVar(&o.shard, "shard", "", "run only part `I/N` (1-based) of the tests, balanced by recorded durations (see --durations)")
	f.StringArrayVar(&o.rsyncDirs, "rsyncdir", nil, "also ship `DIR` to gateways that do not share this machine's files, repeatable")
	f.StringArrayVar(&o.rsyncIgnore, "rsyncignore", nil, "leave `PATTERN` (gitignore syntax) out of what is shipped, repeatable")
	f.StringVar(&o.keepalive, "keepalive", gateway.DefaultKeepalive.String(), "lose a gateway, and move its work, once nothing has come from its worker for `DURATION` (a dead or frozen link or worker; at least 1s)")
	f.StringVar(&o.durations, "durations", "", "read and update recorded test durations in `FILE` (default: the user cache)")
	f.StringVar(&o.cacheDir, "cache-dir", "", "keep passed packages' results in `DIR` and reuse them while nothing they read changed (default: $GODIST_CACHE_DIR, else the user cache); off: no result cache")
	f.StringVar(&o.cacheMax, "cache-max", "", "trim the result cache to `SIZE` after the run (e.g. 500M, 2G; default 1G; 0: no trim)")
	f.BoolVar(&o.lastFailed, "lf", false, "run only the tests that failed in the previous run (all of them when none did)")
	f.BoolVar(&o.watch, "watch", false, "run, then run again what a change affects, on every change in the module's files; keys: r run all, f run failed, q quit")
	f.Var(&o.postRun, "post-run-command", "run `CMD` after the run, with its totals in its environment (TESTS_TOTAL, TESTS_FAILED, TESTS_SKIPPED, TESTS_ERRORS, ...; see CONTRACT.md)")
	f.BoolVar(&o.version, "version", false, "print godist's release and the Go version that built it, and exit")
	f.SetInterspersed(true)
}

// configFromArgs is the run a command line asks for, without running anything: the
// runner.Config as far as flags decide it (no output files, reporter or sinks).
func configFromArgs(args []string) (runner.Config, *rootOptions, error) {
	var o rootOptions
	f := pflag.NewFlagSet("godist", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	addRootFlags(f, &o)
	norm, err := goStyleArgs(f, args)
	if err != nil {
		return runner.Config{}, nil, err
	}
	if err := f.Parse(norm); err != nil {
		return runner.Config{}, nil, &flagError{err}
	}
	pkgs, testArgs := f.Args(), []string(nil)
	if i := f.ArgsLenAtDash(); i >= 0 {
		pkgs, testArgs = pkgs[:i], pkgs[i:]
	}
	cfg, err := o.config(pkgs, testArgs)
	return cfg, &o, err
}

// config checks the options and maps them onto a runner.Config: everything but the
// outputs (JSON, Reporter, Sinks, Dirs). Errors are usage errors.
func (o *rootOptions) config(pkgs, testArgs []string) (runner.Config, error) {
	cfg := runner.Config{
		Dir: o.dir, Patterns: pkgs, Mode: scheduler.Load,
		Tags: o.tags, Race: o.race, Cover: o.cover,
		Run: o.run, Skip: o.skip, Shuffle: o.shuffle, Count: o.count, Short: o.short,
		Failfast: o.failfast, Timeout: o.timeout, TestArgs: testArgs,
		Bench: o.bench, List: o.list, Vet: o.vet,
		DurationsFile: o.durations, RsyncDirs: o.rsyncDirs, RsyncIgnore: o.rsyncIgnore,
		BuildShim: buildShim,
	}
	if d, err := time.ParseDuration(o.keepalive); err != nil || d < time.Second {
		return cfg, usagef("--keepalive %s: expected a duration of at least 1s, such as 3s or 15s (the default)", printable(o.keepalive))
	} else {
		cfg.Keepalive = d
	}
	for _, f := range []string{o.jsonfile, o.junitfile, o.coverprofile, o.durations, o.timeline} {
		if f != "" {
			cfg.OwnFiles = append(cfg.OwnFiles, absIn(o.dir, f))
		}
	}
	switch o.dist {
	case "load":
	case "loadpkg":
		cfg.Mode = scheduler.LoadPkg
	case "each":
		cfg.Mode = scheduler.Each
	default:
		return cfg, usagef("--dist %q: unknown mode (accepted: load, loadpkg, each)", o.dist)
	}
	if o.dir != "" {
		if err := isDir(o.dir); err != nil {
			return cfg, usagef("-C %s: %v", printable(o.dir), err)
		}
	}
	if o.coverprofile != "" {
		cfg.Cover = true
		cfg.CoverProfile = absIn(o.dir, o.coverprofile)
	}
	covermode := ""
	for _, p := range o.pass {
		g := goFlags[p.name]
		form := "-" + p.name
		if g.to == toTest {
			form = "-test." + p.name
		}
		switch b, err := strconv.ParseBool(p.value); {
		case g.bool && g.check == nil && err == nil && b:
		case g.bool && g.check == nil && err == nil:
			form += "=false"
		default:
			form += "=" + p.value
		}
		if g.to == toTest {
			cfg.TestFlags = append(cfg.TestFlags, form)
		} else {
			cfg.BuildFlags = append(cfg.BuildFlags, form)
		}
		switch p.name {
		case "covermode":
			covermode = p.value
			cfg.Cover = true
		case "coverpkg":
			cfg.Cover = true
		}
	}
	if covermode != "" && covermode != "atomic" && o.race {
		return cfg, usagef("-covermode %s: -race needs -covermode atomic, as go test does", covermode)
	}
	if o.outputdir != "" || o.artifacts {
		dir := absIn(o.dir, o.outputdir)
		if err := isDir(dir); err != nil {
			return cfg, usagef("-outputdir %s: %v", printable(o.outputdir), err)
		}
		cfg.TestFlags = append(cfg.TestFlags, "-test.outputdir="+dir)
		if o.artifacts {
			cfg.TestFlags = append(cfg.TestFlags, "-test.artifacts")
		}
	}
	if o.exitFirst {
		if o.maxfail > 1 {
			return cfg, usagef("-x and --maxfail %d disagree: -x is --maxfail 1", o.maxfail)
		}
		o.maxfail = 1
	}
	cfg.MaxFail = o.maxfail
	cfg.RerunFails = o.rerunFails
	cfg.LastFailed = o.lastFailed
	switch cfg.ResultCache = o.cacheDir; cfg.ResultCache {
	case "":
		cfg.ResultCache = defaultCacheDir()
	case "off":
		cfg.ResultCache = "" // as GODIST_CACHE_DIR=off
	}
	if o.cacheMax != "" {
		n, err := parseSize(o.cacheMax)
		if err != nil {
			return cfg, usagef("--cache-max %s: %v", printable(o.cacheMax), err)
		}
		cfg.CacheMax = n
		if n == 0 {
			cfg.CacheMax = -1
		}
	}
	if o.shard != "" {
		var err error
		if cfg.ShardI, cfg.ShardN, err = scheduler.ParseShard(o.shard); err != nil {
			return cfg, usagef("--shard %q: expected I/N, whole numbers with 1 <= I <= N (such as 1/4, or $CI_NODE_INDEX/$CI_NODE_TOTAL)", o.shard)
		}
	}
	if o.json && o.format != "" {
		return cfg, usagef("-json and --format %s: -json writes only the JSON stream to stdout", o.format)
	}
	if o.postRun.set {
		argv, err := parsePostRunCommand(o.postRun.value)
		if err != nil {
			return cfg, usagef("--post-run-command %s: %v", strconv.Quote(o.postRun.value), err)
		}
		o.postRunArgv = argv
	}
	gws, err := gatewaysOf(o.n, o.tx)
	if err != nil {
		return cfg, err
	}
	cfg.Gateways = gws
	return cfg, nil
}

// isDir is nil if path is a directory, or what it is instead.
func isDir(path string) error {
	fi, err := os.Stat(path)
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	if err == nil && !fi.IsDir() {
		return errors.New("not a directory")
	}
	return err
}

// absIn is path made absolute, relative to dir (-C) if it is relative, as go test -C
// reads its file flags.
func absIn(dir, path string) string {
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// runOverrides are what a run of --watch changes of the command line's run.
type runOverrides struct {
	session    *runner.Session // gateways kept up between runs
	lastFailed bool            // the f key: only what failed
	fresh      bool            // the r key: everything runs, nothing from the result cache
}

func runTests(ctx context.Context, o *rootOptions, pkgs, testArgs []string, stdout, stderr io.Writer, ov runOverrides) error {
	cfg, err := o.config(pkgs, testArgs)
	if err != nil {
		return err
	}
	cfg.Session = ov.session
	cfg.LastFailed = cfg.LastFailed || ov.lastFailed
	if ov.fresh {
		cfg.ResultCache = ""
	}
	each := cfg.Mode == scheduler.Each
	// Output files are created before the run, so a bad path is bad usage, not a
	// surprise after the tests ran (go test -coverprofile creates its file first too).
	if cfg.CoverProfile != "" {
		f, err := createOutput("-coverprofile", cfg.CoverProfile)
		if err != nil {
			return err
		}
		f.Close()
	}
	var jsonOut []io.Writer
	if o.json {
		jsonOut = append(jsonOut, stdout)
	}
	var jsonFile *os.File
	if o.jsonfile != "" {
		if jsonFile, err = createOutput("--jsonfile", o.jsonfile); err != nil {
			return err
		}
		defer jsonFile.Close()
		jsonOut = append(jsonOut, jsonFile)
	}
	var jsonObs *ledger.JSON
	switch len(jsonOut) {
	case 1:
		jsonObs = ledger.NewJSON(jsonOut[0])
	case 2:
		jsonObs = ledger.NewJSON(io.MultiWriter(jsonOut...))
	}
	if jsonObs != nil {
		cfg.Observers = append(cfg.Observers, jsonObs)
	}
	var junitOut *os.File
	if o.junitfile != "" {
		if junitOut, err = createOutput("--junitfile", o.junitfile); err != nil {
			return err
		}
		defer junitOut.Close()
	}
	var tl *timeline.Recorder
	var tlOut *os.File
	if o.timeline != "" {
		if tlOut, err = createOutput("--timeline", o.timeline); err != nil {
			return err
		}
		defer tlOut.Close()
		ids := make([]string, len(cfg.Gateways))
		for i, g := range cfg.Gateways {
			ids[i] = g.ID
		}
		// The page names the packages, not the command line: specs may hold env:NAME=VALUE.
		title := strings.Join(cfg.Patterns, " ")
		if title == "" {
			title = "./..."
		}
		tl = timeline.New(timeline.Options{Gateways: ids, Title: title})
		cfg.Observers = append(cfg.Observers, tl)
	}
	// With -json, stdout is the JSON stream alone, as with go test -json: the terminal
	// view is off, godist's notes and its other outputs go to stderr.
	out := stdout
	var rep *report.Reporter
	if o.json {
		out = stderr
		cfg.Observers = append(cfg.Observers, notesTo{stderr})
	} else {
		tty := isTerminal(stdout) && os.Getenv("TERM") != "dumb"
		color := tty && os.Getenv("NO_COLOR") == ""
		if rep, err = report.New(report.Options{Out: stdout, TTY: tty && color, Color: color, Verbose: o.verbose,
			Format: o.format, Each: each, Size: terminalSize(stdout), Now: time.Now}); err != nil {
			var ufe *report.UnknownFormatError
			if errors.As(err, &ufe) {
				return usagef("--format %q: unknown format (accepted: %s)", ufe.Format, strings.Join(ufe.Accepted, ", "))
			}
			return usagef("--format %s: %v", o.format, err)
		}
		cfg.Observers = append(cfg.Observers, rep)
	}
	var junit *report.JUnitCollector
	if o.junitfile != "" {
		junit = report.NewJUnitCollector(report.JUnitOptions{Each: each})
		cfg.Observers = append(cfg.Observers, ledger.Events(junit.Event))
	}
	var slow report.SlowestTracker
	if o.slowest > 0 {
		cfg.Observers = append(cfg.Observers, ledger.Events(slow.Event))
	}
	dirs := packageDirs{}
	var gh *report.GitHubAnnotator
	var stepSummary *os.File
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		gh = report.NewGitHubAnnotator(report.GitHubOptions{Workspace: githubWorkspace(), Dirs: dirs, BuildDir: absIn(o.dir, ""), Each: each})
		cfg.Observers = append(cfg.Observers, dirs, githubObserver{gh})
		stepSummary = openStepSummary(stderr)
		if stepSummary != nil {
			defer stepSummary.Close()
		}
	}
	var tally *report.Tally
	if o.postRunArgv != nil {
		tally = new(report.Tally)
		cfg.Observers = append(cfg.Observers, tally)
	}
	start := time.Now()
	res, err := runner.Run(ctx, cfg)
	elapsed := time.Since(start)
	if junit != nil && res != nil {
		werr := junit.Write(junitOut)
		if cerr := junitOut.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil && err == nil {
			err = fmt.Errorf("--junitfile: %w", werr)
		}
	}
	if tl != nil && res != nil {
		werr := tl.Write(tlOut)
		if cerr := tlOut.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil && err == nil {
			err = fmt.Errorf("--timeline: %w", werr)
		}
	}
	if gh != nil && res != nil {
		gh.Write(out)
		if stepSummary != nil {
			writeStepSummary(stepSummary, gh, o, pkgs, elapsed, stderr)
		}
	}
	if o.slowest > 0 && res != nil {
		report.WriteSlowest(out, slow.Slowest(o.slowest))
	}
	if err == nil && jsonObs != nil && jsonObs.Err() != nil {
		err = fmt.Errorf("--jsonfile: %w", jsonObs.Err())
	}
	if res == nil {
		if rep != nil {
			rep.Abort()
		}
		return err
	}
	if rep != nil {
		rep.Close(elapsed)
	}
	if err == nil && jsonFile != nil {
		// Complete before the post-run command reads it.
		if cerr := jsonFile.Close(); cerr != nil {
			err = fmt.Errorf("--jsonfile: %w", cerr)
		}
	}
	if err != nil {
		return err
	}
	if o.postRunArgv != nil {
		env := postRunEnv(tally.Summary(elapsed), res.Status, absPathOrEmpty(o.jsonfile), absPathOrEmpty(o.junitfile))
		if perr := runPostRunCommand(ctx, o.postRunArgv, env, out, stderr); perr != nil {
			return perr
		}
	}
	return statusOf(res.Status)
}

// githubWorkspace is the repository root that annotation paths and the job summary's
// links are relative to: $GITHUB_WORKSPACE, else the working directory; absolute.
func githubWorkspace() string {
	return absIn(os.Getenv("GITHUB_WORKSPACE"), "")
}

// githubObserver is the GitHub annotator as the ledger sees it: an Observer that is also
// told of each test process, for the job summary's gateway table.
type githubObserver struct{ *report.GitHubAnnotator }

func (g githubObserver) Process(p ledger.Process) { g.TestProcess(p.Worker, p.Start, p.End) }

// openStepSummary opens $GITHUB_STEP_SUMMARY to append the job summary to, or says in one
// line why it cannot and returns nil: the summary is left out, the run goes on.
func openStepSummary(stderr io.Writer) *os.File {
	path := os.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "godist: GITHUB_STEP_SUMMARY: %v: no job summary is written\n", err)
		return nil
	}
	return f
}

// writeStepSummary appends the run's job summary to f; failing, it says so in one line
// (the run's exit status stays what the tests make it).
func writeStepSummary(f *os.File, gh *report.GitHubAnnotator, o *rootOptions, pkgs []string, elapsed time.Duration, stderr io.Writer) {
	title := "godist"
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	title += " " + strings.Join(pkgs, " ")
	if o.dir != "" {
		title += " in " + o.dir
	}
	if o.shard != "" {
		title += ", shard " + o.shard
	}
	slowest := o.slowest
	if slowest == 0 {
		slowest = 10
	}
	err := gh.WriteJobSummary(f, report.JobSummaryOptions{
		Title:     title,
		ServerURL: os.Getenv("GITHUB_SERVER_URL"), Repository: os.Getenv("GITHUB_REPOSITORY"), SHA: os.Getenv("GITHUB_SHA"),
		Elapsed: elapsed, Slowest: slowest,
	})
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "godist: GITHUB_STEP_SUMMARY: %v: the job summary is incomplete\n", err)
	}
}

// absPathOrEmpty is path made absolute, "" for "".
func absPathOrEmpty(path string) string {
	if path == "" {
		return ""
	}
	return absIn("", path)
}

// packageDirs is filled with each package's directory before the run's first event (the
// GitHub annotator reads it).
type packageDirs map[string]string

func (d packageDirs) PackageDirs(dirs map[string]string) {
	for k, v := range dirs {
		d[k] = v
	}
}
func (packageDirs) Event(gotest.Event)         {}
func (packageDirs) WorkerState(string, string) {}
func (packageDirs) Note(string)                {}
func (packageDirs) SetTotal(int)               {}

// notesTo is the Reporter of a -json run: the events are the JSON stream on stdout, and
// only godist's notes are written, one a line, to w (stderr).
type notesTo struct{ w io.Writer }

func (notesTo) SetTotal(int)               {}
func (notesTo) Event(gotest.Event)         {}
func (notesTo) WorkerState(string, string) {}
func (n notesTo) Note(msg string)          { fmt.Fprintln(n.w, oneLine(msg)) }

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
			return nil, specError(err)
		}
		specs = append(specs, s)
	}
	gws, err := xspec.Expand(specs)
	if err != nil {
		return nil, specError(err)
	}
	return gws, nil
}

// specError is a bad --tx spec in godist's words: the spec, quoted, and what is wrong in it
// and expected (xspec.Error's message, without its package's prefix).
func specError(err error) error {
	var xe *xspec.Error
	if errors.As(err, &xe) {
		return usagef("--tx %q: %s", xe.Spec, xe.Msg)
	}
	return usagef("--tx: %v", err)
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

// terminalSize reads the size of terminal w, for the live view to read at every frame (it
// follows a resize); nil when w is not a terminal.
func terminalSize(w io.Writer) func() (int, int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	fd := int(f.Fd())
	return func() (int, int) {
		width, height, err := term.GetSize(fd)
		if err != nil {
			return 0, 0
		}
		return width, height
	}
}
