package difftest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/godist/godist/internal/child"
)

// Config of a check.
type Config struct {
	// Godist is the godist binary (go build -o X ./cmd/godist). Required.
	Godist string
	// WorkDir is where the module's copies, the streams and the caches of the runs go; it
	// must exist. Required.
	WorkDir string
	// Workers is godist's -n (default 2).
	Workers int
	// GoTestRuns is how often go test runs (default 2; two runs tell flaky tests apart).
	GoTestRuns int
	// GodistRuns is how often godist runs (default 2): the first with a fresh durations
	// file in a fresh copy, the others with the durations the first recorded.
	GodistRuns int
	// RunTimeout bounds each go test and godist run (default 5m); a run that takes longer
	// is killed, with its process group.
	RunTimeout time.Duration
	// Progress, if not nil, gets a line as each run starts and ends.
	Progress io.Writer
}

// Run is what one go test or godist run did.
type Run struct {
	Command string        // as a shell would show it
	Wall    time.Duration // from start to exit, building included
	Exit    int
	Err     error  // it did not finish: timed out, or wrote no stream
	Stream  string // its go test -json stream (a file in WorkDir)
	Output  string // its stdout and stderr (a file in WorkDir; for go test, stderr)
}

// Result of checking one module.
type Result struct {
	Module Module
	*Comparison
	GoTest []Run
	Godist []Run
	// Load is the 1-minute load average before the first run and after the last ("" where
	// it cannot be read): the wall times mean little on a busy machine.
	Load [2]string
}

// Differences is the number of distinct differences.
func (r *Result) Differences() int { return len(r.Diffs) }

// DefaultTestTimeout is the -timeout given to both sides when a module's Flags name none:
// a hanging test then fails with go test's own report before RunTimeout kills the run.
const DefaultTestTimeout = 3 * time.Minute

func (c Config) withDefaults() (Config, error) {
	if c.Godist == "" {
		return c, errors.New("difftest: no godist binary given")
	}
	if c.WorkDir == "" {
		return c, errors.New("difftest: no work directory given")
	}
	abs, err := filepath.Abs(c.Godist)
	if err != nil {
		return c, fmt.Errorf("difftest: %w", err)
	}
	c.Godist = abs
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.GoTestRuns <= 0 {
		c.GoTestRuns = 2
	}
	if c.GodistRuns <= 0 {
		c.GodistRuns = 2
	}
	if c.RunTimeout <= 0 {
		c.RunTimeout = 5 * time.Minute
	}
	return c, nil
}

// Check runs m's tests under go test and godist and compares them. Its error means the
// check could not be made (the module could not be fetched, go test did not finish); what
// godist does wrong, including a godist run that never ends, is in the Result.
func Check(ctx context.Context, cfg Config, m Module) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	res := &Result{Module: m}
	res.Load[0] = loadAverage()
	defer func() { res.Load[1] = loadAverage() }()
	src := filepath.Join(cfg.WorkDir, "src")
	if err := Prepare(ctx, m, src); err != nil {
		return nil, err
	}
	env, err := runEnv(ctx, cfg.WorkDir)
	if err != nil {
		return nil, err
	}
	flags := append([]string{"-count=1"}, m.Flags...)
	if !hasFlag(m.Flags, "timeout") {
		flags = append(flags, "-timeout", DefaultTestTimeout.String())
	}
	pkgs := m.Packages
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}

	// go test, twice in one copy; godist in another, fresh one.
	goDir, err := copyTree(src, filepath.Join(cfg.WorkDir, "gotest"))
	if err != nil {
		return nil, err
	}
	var goStreams []Stream
	for i := 1; i <= cfg.GoTestRuns; i++ {
		stream := filepath.Join(cfg.WorkDir, fmt.Sprintf("gotest-%d.json", i))
		args := append(append([]string{"test", "-json"}, flags...), pkgs...)
		run := cfg.run(ctx, goDir, env, stream, filepath.Join(cfg.WorkDir, fmt.Sprintf("gotest-%d.stderr", i)), "go", args...)
		if run.Err != nil {
			return nil, fmt.Errorf("difftest: %s: go test run %d: %v (see %s)", m.Name(), i, run.Err, run.Output)
		}
		s, err := readStream(run)
		if err != nil {
			return nil, err
		}
		res.GoTest = append(res.GoTest, run)
		goStreams = append(goStreams, s)
	}
	gdDir, err := copyTree(src, filepath.Join(cfg.WorkDir, "godist"))
	if err != nil {
		return nil, err
	}
	durations := filepath.Join(cfg.WorkDir, "durations.json")
	var gdStreams []Stream
	for i := 1; i <= cfg.GodistRuns; i++ {
		stream := filepath.Join(cfg.WorkDir, fmt.Sprintf("godist-%d.json", i))
		args := append([]string{"--jsonfile", stream, "--durations", durations, "-n", fmt.Sprint(cfg.Workers)}, flags...)
		args = append(args, pkgs...)
		run := cfg.run(ctx, gdDir, env, "", filepath.Join(cfg.WorkDir, fmt.Sprintf("godist-%d.out", i)), cfg.Godist, args...)
		run.Stream = stream
		s := Stream{Exit: run.Exit, Err: run.Err}
		if run.Err == nil {
			if s, err = readStream(run); err != nil {
				run.Err = fmt.Errorf("no --jsonfile: %v", err)
				s = Stream{Exit: run.Exit, Err: run.Err}
			}
		}
		res.Godist = append(res.Godist, run)
		gdStreams = append(gdStreams, s)
	}
	res.Comparison = Compare(goStreams, gdStreams, Options{Ignore: m.Ignore, Flaky: m.Flaky})
	return res, ctx.Err()
}

// loadAverage is the 1-minute load average, "" where /proc/loadavg cannot be read.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return firstWord(string(b))
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func readStream(run Run) (Stream, error) {
	data, err := os.ReadFile(run.Stream)
	if err != nil {
		return Stream{}, fmt.Errorf("difftest: reading the stream of %s: %w", run.Command, err)
	}
	return Stream{Outcome: Parse(data), Exit: run.Exit}, nil
}

// hasFlag reports whether flags set go test's flag name (-name, --name, with or without =).
func hasFlag(flags []string, name string) bool {
	for _, f := range flags {
		f = strings.TrimLeft(f, "-")
		if f == name || strings.HasPrefix(f, name+"=") {
			return true
		}
	}
	return false
}

// runEnv is the environment of every run: this process's, less godist's worker variables
// (the harness may itself run under godist), with the user cache (godist's test binaries,
// durations) in workDir and the go build cache where it is.
func runEnv(ctx context.Context, workDir string) ([]string, error) {
	gocache, err := goEnv(ctx, "GOCACHE")
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODIST_") {
			env = append(env, kv)
		}
	}
	cache := filepath.Join(workDir, "cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("difftest: %w", err)
	}
	// GODIST_CACHE_DIR=off: godist runs its tests, as go test -count=1 does (the result
	// cache would replay the second run).
	return append(env, "NO_COLOR=1", "GOCACHE="+gocache, "XDG_CACHE_HOME="+cache, "GODIST_CACHE_DIR=off"), nil
}

func goEnv(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("difftest: go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// run runs one command in dir, its stdout to stdoutFile (or, if "", with its stderr to
// outFile), under cfg.RunTimeout.
func (c Config) run(ctx context.Context, dir string, env []string, stdoutFile, outFile string, name string, args ...string) Run {
	run := Run{Command: shellQuote(append([]string{filepath.Base(name)}, args...)), Stream: stdoutFile, Output: outFile}
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "difftest: %s$ %s\n", dir, run.Command)
	}
	out, err := os.Create(outFile)
	if err != nil {
		run.Err = err
		return run
	}
	defer out.Close()
	stdout := out
	if stdoutFile != "" {
		if stdout, err = os.Create(stdoutFile); err != nil {
			run.Err = err
			return run
		}
		defer stdout.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, c.RunTimeout)
	defer cancel()
	cmd := exec.Command(name, args...)
	// As a shell started in dir would: PWD is dir.
	cmd.Dir, cmd.Env = dir, append(slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "PWD=") }), "PWD="+dir)
	cmd.Stdout, cmd.Stderr = stdout, out
	start := time.Now()
	// A process group of its own: a timeout kills go test's test binaries and godist's
	// workers with it, and so does whatever the run left behind when it exits.
	p, err := child.Start(cmd)
	if err != nil {
		run.Err = err
		return run
	}
	stop := context.AfterFunc(ctx, func() { p.Kill() })
	err = p.Wait(func() { p.Kill() })
	stop()
	run.Wall = time.Since(start)
	var ee *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		run.Err = fmt.Errorf("killed after %v: %w", c.RunTimeout, ctx.Err())
	case ctx.Err() != nil:
		run.Err = fmt.Errorf("stopped: %w", ctx.Err())
	case errors.As(err, &ee):
		run.Exit = ee.ExitCode()
	case err != nil:
		run.Err = err
	}
	if c.Progress != nil {
		status := fmt.Sprintf("exit %d", run.Exit)
		if run.Err != nil {
			status = run.Err.Error()
		}
		fmt.Fprintf(c.Progress, "difftest: %s in %.1fs\n", status, run.Wall.Seconds())
	}
	return run
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$*?[]|&;<>()`") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// Prepare makes dst a writable copy of m that is its own main module: a local module is
// copied; a public one is downloaded through the module proxy (go mod download), copied,
// given a go.mod if it has none, and tidied (its test dependencies resolved).
func Prepare(ctx context.Context, m Module, dst string) error {
	if m.Dir != "" {
		_, err := copyTree(m.Dir, dst)
		return err
	}
	if m.Path == "" || m.Version == "" {
		return fmt.Errorf("difftest: module %q: need a path and a version", m.Name())
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// Outside any module, so that no go.mod or go.sum is touched.
	neutral, err := os.MkdirTemp("", "difftest-download-")
	if err != nil {
		return fmt.Errorf("difftest: %w", err)
	}
	defer os.RemoveAll(neutral)
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", m.Name())
	cmd.Dir = neutral
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return fmt.Errorf("difftest: go mod download %s: %s", m.Name(), firstLine(info.Error))
	}
	if err != nil || info.Dir == "" {
		return fmt.Errorf("difftest: go mod download %s: %v %s (the module proxy must be reachable)", m.Name(), err, firstLine(string(out)))
	}
	if _, err := copyTree(info.Dir, dst); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dst, "go.mod")); errors.Is(err, os.ErrNotExist) {
		// As cmd/go treats a module without go.mod: go 1.16 semantics.
		if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte("module "+m.Path+"\n\ngo 1.16\n"), 0o644); err != nil {
			return fmt.Errorf("difftest: %w", err)
		}
	}
	tidy := exec.CommandContext(ctx, "go", "mod", "tidy")
	tidy.Dir = dst
	var stderr bytes.Buffer
	tidy.Stderr = &stderr
	if err := tidy.Run(); err != nil {
		return fmt.Errorf("difftest: go mod tidy in a copy of %s: %v: %s", m.Name(), err, lastLine(stderr.String()))
	}
	return nil
}

// copyTree copies src to dst (which must not exist) with writable files and directories.
func copyTree(src, dst string) (string, error) {
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return "", fmt.Errorf("difftest: copying %s: %w", src, err)
	}
	err := filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, info.Mode().Perm()|0o600|dirBits(d))
	})
	if err != nil {
		return "", fmt.Errorf("difftest: copying %s: %w", src, err)
	}
	return dst, nil
}

func dirBits(d os.DirEntry) os.FileMode {
	if d.IsDir() {
		return 0o700
	}
	return 0
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
