package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// step is one line of a testdata/*.jsonl script: a gotest.Event, or (with Op set) a call
// of SetTotal ("total"), WorkerState ("state") or Note ("note").
type step struct {
	Op    string `json:"op"`
	N     int    `json:"n"`
	ID    string `json:"id"`
	State string `json:"state"`
	Msg   string `json:"msg"`
	event gotest.Event
}

func loadScript(t *testing.T, name string) []step {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var s step
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Op == "" {
			if err := json.Unmarshal(sc.Bytes(), &s.event); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		steps = append(steps, s)
	}
	return steps
}

// play applies the steps to r, calling between (if set) before each one.
func play(r *Reporter, steps []step, between func()) {
	for _, s := range steps {
		if between != nil {
			between()
		}
		switch s.Op {
		case "total":
			r.SetTotal(s.N)
		case "state":
			r.WorkerState(s.ID, s.State)
		case "note":
			r.Note(s.Msg)
		default:
			r.Event(s.event)
		}
	}
}

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

func fixedClock() func() time.Time {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time { return t0 }
}

func newReporter(t *testing.T, opts Options) *Reporter {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runPlain replays a script without a terminal and returns the output and summary.
func runPlain(t *testing.T, script string, opts Options) (string, Summary) {
	t.Helper()
	var buf bytes.Buffer
	opts.Out = &buf
	opts.Now = fixedClock()
	r := newReporter(t, opts)
	play(r, loadScript(t, script), nil)
	s := r.Close(1234 * time.Millisecond)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), s
}

func TestGoldenPlain(t *testing.T) {
	for _, tc := range []struct {
		golden, script string
		opts           Options
	}{
		{"load-plain.golden", "load.jsonl", Options{}},
		{"load-verbose.golden", "load.jsonl", Options{Verbose: true}},
		{"each-plain.golden", "each.jsonl", Options{Each: true}},
		{"each-verbose.golden", "each.jsonl", Options{Each: true, Verbose: true}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, _ := runPlain(t, tc.script, tc.opts)
			if strings.Contains(out, "\x1b") {
				t.Errorf("plain output holds an escape code:\n%q", out)
			}
			golden(t, tc.golden, []byte(out))
		})
	}
}

func TestSummaryCounts(t *testing.T) {
	_, s := runPlain(t, "load.jsonl", Options{})
	want := Summary{
		Passed: 3, Failed: 3, Skipped: 2, // TestAdd TestTable/pos TestA; TestDiv TestTable/neg TestTable; TestTable/zero TestSkip
		Packages: 5, FailedPackages: 3, BuildFailures: 1, // broken calc util empty setup; broken calc setup
		NotRun: 2, PackageErrors: 1, Elapsed: 1234 * time.Millisecond,
	}
	if s != want {
		t.Errorf("summary\n got %+v\nwant %+v", s, want)
	}

	_, s = runPlain(t, "each.jsonl", Options{Each: true})
	want = Summary{Passed: 2, Failed: 2, Packages: 1, FailedPackages: 1, Elapsed: 1234 * time.Millisecond}
	if s != want {
		t.Errorf("each summary\n got %+v\nwant %+v", s, want)
	}
}

func TestSummaryString(t *testing.T) {
	for _, tc := range []struct {
		s    Summary
		want string
	}{
		{Summary{Passed: 12, Elapsed: 1234 * time.Millisecond}, "12 passed, 0 failed, 0 skipped in 1.23s"},
		{Summary{Passed: 1, Failed: 2, Skipped: 3, NotRun: 4, Elapsed: time.Second}, "1 passed, 2 failed, 3 skipped in 1.00s, 4 not run"},
		{Summary{BuildFailures: 1, PackageErrors: 2}, "0 passed, 0 failed, 0 skipped in 0.00s, 1 build failure, 2 package errors"},
		{Summary{BuildFailures: 2, PackageErrors: 1}, "0 passed, 0 failed, 0 skipped in 0.00s, 2 build failures, 1 package error"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.s, got, tc.want)
		}
	}
}

// The summary is the last line, and it is the only line with "passed, ".
func TestOneSummaryLine(t *testing.T) {
	for _, script := range []string{"load.jsonl", "each.jsonl"} {
		out, s := runPlain(t, script, Options{})
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if last := lines[len(lines)-1]; last != s.String() {
			t.Errorf("%s: last line %q, want %q", script, last, s.String())
		}
		if n := strings.Count(out, " passed, "); n != 1 {
			t.Errorf("%s: %d summary lines", script, n)
		}
	}
}

func TestPlainLiveLines(t *testing.T) {
	out, _ := runPlain(t, "load.jsonl", Options{})
	for _, want := range []string{
		"ok  \texample.com/util\t0.301s\n",
		"FAIL\texample.com/calc\t0.512s\n",
		"?   \texample.com/empty\t[no test files]\n",
		"FAIL\texample.com/broken [build failed]\n",
		"FAIL\texample.com/setup\t0.004s\n",
		"--- FAIL: TestDiv (0.12s) example.com/calc [gw1]\n",
		"--- FAIL: TestTable/neg (0.00s) example.com/calc [gw0]\n",
		"godist: gw1: test process for example.com/util exited",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Without -v, test output shows only in the failures section.
	if strings.Count(out, "dividing by zero") != 1 {
		t.Errorf("TestDiv's output should appear once, in the failures section:\n%s", out)
	}
}

func TestFailuresSection(t *testing.T) {
	out, _ := runPlain(t, "load.jsonl", Options{})
	_, section, ok := strings.Cut(out, "\n=== Failed\n")
	if !ok {
		t.Fatalf("no failures section:\n%s", out)
	}
	for _, want := range []string{
		"=== FAIL: example.com/calc TestDiv (0.12s) [gw1]\n    calc_test.go:21: dividing by zero\n    calc_test.go:22: want error, got nil\n",
		// a failed subtest: its output and result line stay, passed and skipped siblings go
		"=== FAIL: example.com/calc TestTable (0.03s) [gw0]\n    calc_test.go:40: abs(-1) = -1, want 1\n--- FAIL: TestTable/neg (0.00s)\n",
		// a package that failed outside its tests, with its output
		"=== FAIL: example.com/setup (package) [gw1]\nsetup failed: no database\nFAIL\n",
		"=== BUILD FAIL: example.com/broken [example.com/broken.test]\nbroken/b_test.go:3:27: undefined: undefined\n",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("failures section lacks %q:\n%s", want, section)
		}
	}
	for _, unwanted := range []string{"=== RUN", "not yet", "example.com/util (package)", "example.com/calc (package)"} {
		if strings.Contains(section, unwanted) {
			t.Errorf("failures section holds %q:\n%s", unwanted, section)
		}
	}
}

// In each mode one test runs on several workers at once; their output stays apart.
func TestEachKeepsWorkersApart(t *testing.T) {
	out, _ := runPlain(t, "each.jsonl", Options{Each: true})
	for _, want := range []string{
		"=== FAIL: example.com/flaky TestFlaky (0.06s) [gw0]\n    flaky_test.go:12: GODIST_WORKER=gw0: port 8080 in use\n\n",
		"=== FAIL: example.com/flaky TestFlaky (0.05s) [gw1]\n    flaky_test.go:12: GODIST_WORKER=gw1: port 8080 in use\n\n",
		"FAIL\texample.com/flaky\t0.090s [gw0]\n",
		"FAIL\texample.com/flaky\t0.081s [gw1]\n",
	} {
		if strings.Count(out, want) != 1 {
			t.Errorf("output should hold %q once:\n%s", want, out)
		}
	}
	if strings.Count(out, "port 8080 in use") != 2 {
		t.Errorf("output mixes the workers' lines:\n%s", out)
	}
}

// Output that arrives after its test failed joins the failure; after a pass it is dropped.
func TestLateOutput(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf})
	for _, e := range []gotest.Event{
		{Action: gotest.ActionRun, Package: "p", Test: "TestA"},
		{Action: gotest.ActionFail, Package: "p", Test: "TestA"},
		{Action: gotest.ActionOutput, Package: "p", Test: "TestA", Output: "panic: late\n"},
		{Action: gotest.ActionRun, Package: "p", Test: "TestB"},
		{Action: gotest.ActionPass, Package: "p", Test: "TestB"},
		{Action: gotest.ActionOutput, Package: "p", Test: "TestB", Output: "late chatter\n"},
	} {
		r.Event(e)
	}
	s := r.Close(0)
	if !strings.Contains(buf.String(), "=== FAIL: p TestA (0.00s)\npanic: late\n") || strings.Contains(buf.String(), "chatter") {
		t.Errorf("output:\n%s", buf.String())
	}
	if s.NotRun != 0 {
		t.Errorf("NotRun = %d", s.NotRun)
	}
}

func TestPackageFailureWithoutOutput(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf})
	el := 0.1
	r.Event(gotest.Event{Action: gotest.ActionStart, Package: "p", Worker: "gw0"})
	r.Event(gotest.Event{Action: gotest.ActionFail, Package: "p", Elapsed: &el, Worker: "gw0"})
	s := r.Close(time.Second)
	if s.PackageErrors != 1 || s.FailedPackages != 1 {
		t.Errorf("summary %+v", s)
	}
	if !strings.Contains(buf.String(), "=== FAIL: p (package) [gw0]\n(no output)\n") {
		t.Errorf("output:\n%s", buf.String())
	}
}

// A timeout panic lands in package output while a test had already failed: both show.
func TestPackageOutputBesideFailedTest(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf})
	r.Event(gotest.Event{Action: gotest.ActionRun, Package: "p", Test: "TestA", Worker: "gw0"})
	r.Event(gotest.Event{Action: gotest.ActionFail, Package: "p", Test: "TestA", Worker: "gw0"})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Output: "panic: test timed out after 1s\n", Worker: "gw1"})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Output: "FAIL\n", Worker: "gw0"})
	r.Event(gotest.Event{Action: gotest.ActionFail, Package: "p", Worker: "gw0"})
	r.Close(time.Second)
	out := buf.String()
	if !strings.Contains(out, "=== FAIL: p TestA (0.00s) [gw0]\n") || !strings.Contains(out, "=== FAIL: p (package) [gw1]\npanic: test timed out") {
		t.Errorf("output:\n%s", out)
	}
	if strings.Contains(out, "(package) [gw0]") {
		t.Errorf("gw0's package output said nothing new:\n%s", out)
	}
}

func TestUnfinishedTest(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf})
	r.SetTotal(1)
	r.Event(gotest.Event{Action: gotest.ActionRun, Package: "p", Test: "TestHang", Worker: "gw2"})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestHang", Output: "=== RUN   TestHang\n", Worker: "gw2"})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestHang", Output: "    waiting for ever", Worker: "gw2"})
	s := r.Close(time.Second)
	if s.NotRun != 1 {
		t.Errorf("NotRun = %d, want 1", s.NotRun)
	}
	if !strings.Contains(buf.String(), "=== Not finished\n=== NO RESULT: p TestHang [gw2]\n    waiting for ever\n") {
		t.Errorf("output:\n%s", buf.String())
	}
	if !strings.HasSuffix(buf.String(), "\n0 passed, 0 failed, 0 skipped in 1.00s, 1 not run\n") {
		t.Errorf("output:\n%s", buf.String())
	}
}

func TestNoTestsToRun(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf})
	el := 0.002
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Output: "testing: warning: no tests to run\n"})
	r.Event(gotest.Event{Action: gotest.ActionPass, Package: "p", Elapsed: &el})
	r.Close(0)
	if want := "ok  \tp\t0.002s [no tests to run]\n"; !strings.HasPrefix(buf.String(), want) {
		t.Errorf("got %q, want prefix %q", buf.String(), want)
	}
}

// Verbose output is whole lines per worker: a partial line waits for its end and is never
// spliced with another worker's line.
func TestVerboseJoinsPartialLines(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf, Verbose: true})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestA", Output: "hello ", Worker: "gw0"})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestB", Output: "other\n", Worker: "gw1"})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestA", Output: "world\nand ", Worker: "gw0"})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "q", Test: "TestC", Output: "unfinished", Worker: "gw0"})
	r.Event(gotest.Event{Action: gotest.ActionPass, Package: "p", Worker: "gw0"})
	r.Close(0)
	want := "other\n=== NAME  TestA\nhello world\nand \nok  \tp\t0.000s\nunfinished\n\n0 passed, 0 failed, 0 skipped in 0.00s\n"
	if buf.String() != want {
		t.Errorf("got\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestUnknownFormat(t *testing.T) {
	_, err := New(Options{Out: new(bytes.Buffer), Format: "fancy"})
	var ufe *UnknownFormatError
	if !errors.As(err, &ufe) || ufe.Format != "fancy" {
		t.Fatalf("err = %v, want *UnknownFormatError", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, `report: unknown format "fancy" (accepted: `) {
		t.Errorf("message %q", msg)
	}
	for _, name := range []string{"dots", "pkgname", "testname", "standard-verbose", "standard-quiet", "github-actions"} {
		if !strings.Contains(msg, name) {
			t.Errorf("message %q does not list %s", msg, name)
		}
		if _, err := New(Options{Out: new(bytes.Buffer), Format: name}); err != nil {
			t.Errorf("format %s: %v", name, err)
		}
	}
}

func TestNilOut(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrNoOutput) {
		t.Errorf("err = %v, want ErrNoOutput", err)
	}
}

func TestCloseTwiceAndAbort(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf})
	r.Event(gotest.Event{Action: gotest.ActionPass, Package: "p", Test: "TestA"})
	s1 := r.Close(time.Second)
	n := buf.Len()
	s2 := r.Close(2 * time.Second)
	r.Abort()
	r.Event(gotest.Event{Action: gotest.ActionFail, Package: "p", Test: "TestB"})
	r.Note("late")
	if s1 != s2 || buf.Len() != n {
		t.Errorf("second Close changed things: %+v %+v\n%s", s1, s2, buf.String())
	}

	buf.Reset()
	r = newReporter(t, Options{Out: &buf})
	r.Event(gotest.Event{Action: gotest.ActionFail, Package: "p", Test: "TestA"})
	r.Abort()
	r.Close(time.Second)
	if strings.Contains(buf.String(), "passed") || strings.Contains(buf.String(), "===") {
		t.Errorf("Abort printed the summary:\n%s", buf.String())
	}
}

type failWriter struct{ n int }

var errBroken = errors.New("broken pipe")

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errBroken
}

func TestWriteErrorKept(t *testing.T) {
	w := &failWriter{}
	r := newReporter(t, Options{Out: w})
	r.Note("one")
	r.Note("two")
	r.Close(0)
	if !errors.Is(r.Err(), errBroken) {
		t.Errorf("Err = %v", r.Err())
	}
	if w.n != 1 {
		t.Errorf("%d writes after the first failed", w.n-1)
	}
}

// A test that fails and then passes on a re-run is flaky, not failed.
func TestFlakyAfterRerun(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf})
	r.SetTotal(2)
	for _, e := range []gotest.Event{
		{Action: "run", Package: "p", Test: "TestF", Worker: "gw0"},
		{Action: "run", Package: "p", Test: "TestF/sub", Worker: "gw0"},
		{Action: "fail", Package: "p", Test: "TestF/sub", Worker: "gw0"},
		{Action: "fail", Package: "p", Test: "TestF", Worker: "gw0"},
		{Action: "run", Package: "p", Test: "TestG", Worker: "gw0"},
		{Action: "fail", Package: "p", Test: "TestG", Worker: "gw0"},
		{Action: "run", Package: "p", Test: "TestF", Worker: "gw1"},
		{Action: "run", Package: "p", Test: "TestF/sub", Worker: "gw1"},
		{Action: "pass", Package: "p", Test: "TestF/sub", Worker: "gw1"},
		{Action: "pass", Package: "p", Test: "TestF", Worker: "gw1"},
		{Action: "run", Package: "p", Test: "TestG", Worker: "gw1"},
		{Action: "fail", Package: "p", Test: "TestG", Worker: "gw1"},
		{Action: "fail", Package: "p", Worker: "gw1"},
	} {
		r.Event(e)
	}
	s := r.Close(time.Second)
	if s.Failed != 2 || s.Flaky != 1 || s.NotRun != 0 {
		t.Fatalf("summary %+v: want TestG's 2 failed attempts, TestF flaky, nothing not run", s)
	}
	out := buf.String()
	if !strings.Contains(out, "=== FLAKY: p TestF failed on gw0, passed on gw1") || strings.Contains(out, "=== FAIL: p TestF ") {
		t.Errorf("flaky test not listed as flaky (or still as failed):\n%s", out)
	}
	if !strings.Contains(out, "1 flaky") {
		t.Errorf("summary line without the flaky count:\n%s", out)
	}
}
