package gotest

// The harness of the differential tests: it builds the test binaries of the fixtures module
// once, runs them the way godist's workers do while recording their output, and replays
// recorded output to `go test -json` by passing this test binary as go test's -exec program.
// The replay gives go test exactly the bytes the Converter sees, so the two event streams must
// be identical, not merely alike.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// replayEnv names the directory of recordings when this binary runs as go test's -exec
// program; the recording to play is chosen by the working directory go test gives it, the
// package directory.
const replayEnv = "GODIST_GOTEST_REPLAY"

const fixturesModule = "github.com/godist/godist/fixtures"

var tmpRoot string // removed after all tests

func TestMain(m *testing.M) {
	if dir := os.Getenv(replayEnv); dir != "" {
		os.Exit(replay(dir))
	}
	var err error
	tmpRoot, err = os.MkdirTemp("", "gotest-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// chunk is one write of a recorded binary, as the reader of its output got it. Where a
// chunk ends matters: go test -json, like the Converter, shows the name of a benchmark in its
// own event when the result comes in a later read. On replay each chunk is one read of go
// test's (see replay).
type chunk struct {
	Data []byte
}

// maxReplayChunk is the largest chunk that go test reads in one piece: exec.Cmd copies a
// child's output to a writer with io.Copy, whose buffer is 32 KiB. Recordings for replay are
// cut to this size (splitChunks), so that go test and the Converter see the same reads.
const maxReplayChunk = 32 << 10

// recording is the merged stdout and stderr of one run of a test binary, and how it ended.
type recording struct {
	Chunks  []chunk
	Exit    int // exit status, if Signal is 0
	Signal  int // signal that killed the binary, or 0
	Elapsed time.Duration
}

func (r *recording) bytes() []byte {
	var b []byte
	for _, c := range r.Chunks {
		b = append(b, c.Data...)
	}
	return b
}

// exitError returns what waiting for the recorded binary returns.
func (r *recording) exitError(t testing.TB) error {
	if r.Exit == 0 && r.Signal == 0 {
		return nil
	}
	// Make a real *exec.ExitError, by running a process that ends the same way.
	var cmd *exec.Cmd
	if r.Signal != 0 {
		cmd = exec.Command("/bin/sh", "-c", fmt.Sprintf("kill -%d $$", r.Signal))
	} else {
		cmd = exec.Command("/bin/sh", "-c", fmt.Sprintf("exit %d", r.Exit))
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("making exit error: %v", err)
	}
	return err
}

// replay plays the recording for the working directory and ends like the recorded binary.
//
// Each chunk is one write into a pipe that holds it whole, and the next write waits until go
// test has read everything in the pipe (waitDrained): go test then gets every chunk in one
// read of its own, whatever the load on the machine, as feed gives it to the Converter in one
// Write.
func replay(dir string) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		return 99
	}
	b, err := os.ReadFile(filepath.Join(dir, recordingFile(wd)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		return 99
	}
	var r recording
	if err := json.Unmarshal(b, &r); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		return 99
	}
	if err := ensurePipeBuffer(os.Stdout, maxReplayChunk); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		return 99
	}
	for _, c := range r.Chunks {
		if len(c.Data) > maxReplayChunk {
			fmt.Fprintf(os.Stderr, "replay: chunk of %d bytes, more than go test reads at once\n", len(c.Data))
			return 99
		}
		if _, err := os.Stdout.Write(c.Data); err != nil {
			fmt.Fprintln(os.Stderr, "replay:", err)
			return 99
		}
		if err := waitDrained(os.Stdout, time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "replay:", err)
			return 99
		}
	}
	if r.Signal != 0 {
		syscall.Kill(os.Getpid(), syscall.Signal(r.Signal))
		for {
			time.Sleep(time.Hour) // until the signal ends the process
		}
	}
	return r.Exit
}

// splitChunks returns the chunks of r cut to at most maxReplayChunk bytes each.
func (r *recording) splitChunks() []chunk {
	var out []chunk
	for _, c := range r.Chunks {
		d := c.Data
		for len(d) > maxReplayChunk {
			out = append(out, chunk{Data: d[:maxReplayChunk]})
			d = d[maxReplayChunk:]
		}
		out = append(out, chunk{Data: d})
	}
	return out
}

func recordingFile(pkgDir string) string {
	return strings.NewReplacer("/", "_", `\`, "_", ":", "_").Replace(filepath.Clean(pkgDir)) + ".json"
}

// fixturesDir returns the absolute path of the fixtures module.
func fixturesDir(t testing.TB) string {
	dir, err := filepath.Abs("../fixtures")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// goCommand returns a go command run in the fixtures module, in an environment without
// godist's variables.
func goCommand(t testing.TB, args ...string) *exec.Cmd {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = fixturesDir(t)
	cmd.Env = append(cleanEnv(), "GOWORK=off")
	return cmd
}

func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GODIST_") || strings.HasPrefix(kv, replayEnv+"=")
	})
}

// The fixture packages with test files that build, and their binaries' names.
var fixturePackages = []string{
	"pass", "fail", "skip", "skip/all", "subtests", "parallel", "examples", "fuzz", "fuzzfail",
	"testmain", "files", "panic", "panic/goroutine", "exit", "exit/zero", "hang", "onlyx", "slow",
	"env", "flaky",
	"samename1/util", "samename2/util", "attrs", "bench",
}

func binaryName(pkg string) string { return strings.ReplaceAll(pkg, "/", "_") + ".test" }

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// fixtureBinary returns the path of the test binary of fixture package pkg, building all of
// them the first time.
func fixtureBinary(t testing.TB, pkg string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir = filepath.Join(tmpRoot, "bin")
		// go test -c -o DIR/ names binaries after the last path element; build the packages
		// whose names collide one at a time.
		var many []string
		base := map[string]int{}
		for _, p := range fixturePackages {
			base[filepath.Base(p)]++
		}
		for _, p := range fixturePackages {
			if base[filepath.Base(p)] == 1 {
				many = append(many, "./"+p)
			}
		}
		if buildErr = buildInto(t, binDir+"/", many...); buildErr != nil {
			return
		}
		for _, p := range fixturePackages {
			if base[filepath.Base(p)] == 1 {
				if err := os.Rename(filepath.Join(binDir, filepath.Base(p)+".test"), filepath.Join(binDir, binaryName(p))); err != nil {
					buildErr = err
					return
				}
			} else if buildErr = buildInto(t, filepath.Join(binDir, binaryName(p)), "./"+p); buildErr != nil {
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, binaryName(pkg))
}

func buildInto(t testing.TB, out string, pkgs ...string) error {
	cmd := goCommand(t, append([]string{"test", "-c", "-o", out}, pkgs...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go test -c: %v\n%s", err, b)
	}
	return nil
}

// chunkRecorder records the writes of a running binary and passes them on.
type chunkRecorder struct {
	mu     sync.Mutex
	chunks []chunk
	w      io.Writer
}

func (r *chunkRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chunks = append(r.chunks, chunk{Data: bytes.Clone(p)})
	return r.w.Write(p)
}

// runBinary runs the test binary of fixture pkg as a godist worker does: in the package
// directory, with go test's flags and -test.v=test2json, stdout and stderr merged, feeding a
// Converter as the output comes. It returns the recording and the Converter's events.
func runBinary(t testing.TB, pkg string, timeout string, flags ...string) (*recording, []Event) {
	t.Helper()
	var events []Event
	conv := NewConverter(fixturesModule+"/"+pkg, func(e Event) { events = append(events, e) }, nil)
	rec := &chunkRecorder{w: conv}
	args := append([]string{"-test.paniconexit0", "-test.timeout=" + timeout, "-test.v=test2json"}, flags...)
	cmd := exec.Command(fixtureBinary(t, pkg), args...)
	cmd.Dir = filepath.Join(fixturesDir(t), pkg)
	cmd.Env = append(cleanEnv(), "PWD="+cmd.Dir)
	cmd.Stdout = rec
	cmd.Stderr = rec
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s: %v", pkg, err)
	}
	conv.Exited(err, elapsed)

	r := &recording{Chunks: rec.chunks, Elapsed: elapsed}
	if ee != nil {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Signal = int(ws.Signal())
		} else {
			r.Exit = ee.ExitCode()
		}
	}
	return r, events
}

// feed runs a recording through a new Converter, chunk by chunk.
func feed(t testing.TB, pkg string, r *recording, cover bool) ([]Event, *Converter) {
	var events []Event
	conv := NewConverter(pkg, func(e Event) { events = append(events, e) }, nil)
	conv.SetCover(cover)
	for _, c := range r.Chunks {
		conv.Write(c.Data)
	}
	conv.Exited(r.exitError(t), r.Elapsed)
	return events, conv
}

// parseEvents decodes a go test -json stream into events per package, in order.
func parseEvents(t testing.TB, out []byte) map[string][]Event {
	t.Helper()
	m := map[string][]Event{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var e Event
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("decoding go test -json output: %v\n%s", err, out)
		}
		m[e.Package] = append(m[e.Package], e)
	}
	return m
}

// goTestJSON runs go test -json with flags on packages (relative to the fixtures module), in
// an environment with extra added, and returns the events per package.
func goTestJSON(t testing.TB, extra []string, flags []string, pkgs ...string) map[string][]Event {
	t.Helper()
	args := append([]string{"test", "-json", "-count=1"}, flags...)
	for _, p := range pkgs {
		args = append(args, "./"+p)
	}
	cmd := goCommand(t, args...)
	cmd.Env = append(cmd.Env, extra...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("go %v: %v\n%s", args, err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Logf("go %v stderr:\n%s", args, stderr.Bytes())
	}
	return parseEvents(t, out)
}

// cmpEvent is an event as the differential tests compare it.
type cmpEvent struct {
	Action, Package, Test, Output, FailedBuild, Key, Value, Path string
	Elapsed                                                      string
}

var timeInFinalLine = regexp.MustCompile(`^(ok  \t|FAIL\t)(\S+)\t[0-9]+\.[0-9]{3}s`)

// exact returns the events as the replay tests compare them: all but Time, the package's
// final Elapsed, and the run time in the final ok/FAIL line, which go test measures itself.
func exact(events []Event) []cmpEvent {
	var out []cmpEvent
	for i, e := range events {
		c := cmpEvent{
			Action: e.Action, Package: e.Package, Test: e.Test, FailedBuild: e.FailedBuild,
			Key: e.Key, Value: e.Value, Path: e.Path,
			Output: timeInFinalLine.ReplaceAllString(e.Output, "${1}${2}\tT"),
		}
		switch {
		case e.Elapsed == nil:
		case i == len(events)-1:
			// The package's final event, which carries the current test's name if the
			// binary exited 0 without its final PASS.
			c.Elapsed = "final"
		default:
			c.Elapsed = fmt.Sprint(*e.Elapsed)
		}
		out = append(out, c)
	}
	return out
}

// Output that differs between runs of the same binary.
var runVariance = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\([0-9.]+(ns|µs|ms|s|m[0-9.]*s|h[0-9m.]*s)?\)`), "(T)"}, // (0.01s), TestHang (2s)
	{regexp.MustCompile(`\t[0-9]+\.[0-9]{3}s`), "\tT"},                           // ok/FAIL line
	{regexp.MustCompile(`0x[0-9a-f]+`), "0xX"},                                   // addresses
	{regexp.MustCompile(`goroutine [0-9]+`), "goroutine N"},
	{regexp.MustCompile(`\s*[0-9]+(\.[0-9]+)? ns/op`), " N ns/op"},
	{regexp.MustCompile(`(?m)^(Benchmark\S*)\s+\t\s*[0-9]+`), "$1 N"},
}

// alike returns the events as the live tests compare them, with what varies between runs
// masked: times, addresses, goroutine numbers.
//
// A benchmark's result line is one output event or two (name, then result), depending on
// whether the reader of the pipe saw the binary pause after the name: go test -json is not
// reproducible there either, so such halves are joined.
func alike(events []Event) []cmpEvent {
	var out []cmpEvent
	for i := 0; i < len(events); i++ {
		e := events[i]
		if e.Action == ActionOutput && strings.HasPrefix(e.Output, "Benchmark") && !strings.HasSuffix(e.Output, "\n") &&
			i+1 < len(events) && events[i+1].Action == ActionOutput && events[i+1].Test == e.Test {
			e.Output += events[i+1].Output
			i++
		}
		o := e.Output
		for _, v := range runVariance {
			o = v.re.ReplaceAllString(o, v.repl)
		}
		c := cmpEvent{
			Action: e.Action, Package: e.Package, Test: e.Test, Output: o, FailedBuild: e.FailedBuild,
			Key: e.Key, Value: e.Value, Path: e.Path,
		}
		if e.Elapsed != nil {
			c.Elapsed = "set"
		}
		out = append(out, c)
	}
	return out
}

// byTest groups events by test, keeping their order within each test: the order between
// parallel tests varies from run to run.
func byTest(events []cmpEvent) map[string][]cmpEvent {
	m := map[string][]cmpEvent{}
	for _, e := range events {
		m[e.Test] = append(m[e.Test], e)
	}
	return m
}

// diffEvents reports the first difference between two event lists.
func diffEvents(t testing.TB, what string, got, want []cmpEvent) {
	t.Helper()
	if len(want) == 0 {
		t.Errorf("%s: no events to compare with", what)
	}
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w *cmpEvent
		if i < len(got) {
			g = &got[i]
		}
		if i < len(want) {
			w = &want[i]
		}
		if g == nil || w == nil || *g != *w {
			t.Errorf("%s: event %d differs (got %d events, go test -json %d)\n got:  %s\n want: %s\ncontext (go test -json):\n%s",
				what, i, len(got), len(want), show(g), show(w), context(want, i))
			return
		}
	}
}

func show(c *cmpEvent) string {
	if c == nil {
		return "(none)"
	}
	b, _ := json.Marshal(c)
	return string(b)
}

func context(events []cmpEvent, i int) string {
	var b strings.Builder
	for j := max(0, i-4); j < min(len(events), i+3); j++ {
		fmt.Fprintf(&b, "  %d %s\n", j, show(&events[j]))
	}
	return b.String()
}
