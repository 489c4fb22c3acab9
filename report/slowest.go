package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/godist/godist/gotest"
	"gotest.tools/gotestsum/testjson"
)

// SlowTest is one finished run (pass or fail) of a top-level test.
type SlowTest struct {
	Package string
	Test    string
	Worker  string // the gateway it ran on; "" when the stream does not say
	Elapsed time.Duration
}

// SlowestTracker keeps the runs of top-level tests of a stream, for --slowest N. Subtests
// are left out (their time is part of their parent's), and so are skipped tests, runs
// the run's stop cut short (they did not finish) and runs that took 0s as go test prints
// times (under 5 ms: "0.00s"), which are no one's slowest. A test run several times
// (--dist each, --rerun-fails, -count) is there once per run, each with its worker. The
// zero value is ready to use; it is safe for concurrent use.
type SlowestTracker struct {
	mu    sync.Mutex
	model *runModel // without output, which it does not need
}

// Event takes the next event of the stream.
func (s *SlowestTracker) Event(e gotest.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.model == nil {
		s.model = newModel(false)
		s.model.dropOutput = true
	}
	s.model.event(e)
}

// Slowest returns the n slowest runs, slowest first; ties go by package, test and worker.
// n <= 0 returns nil.
func (s *SlowestTracker) Slowest(n int) []SlowTest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.model == nil {
		return nil
	}
	return s.model.slowest(n)
}

// slowest returns the n slowest finished runs of top-level tests, as
// SlowestTracker.Slowest describes them.
func (m *runModel) slowest(n int) []SlowTest {
	if n <= 0 {
		return nil
	}
	var runs []SlowTest
	for _, st := range m.suites {
		for _, t := range st.order {
			if testjson.TestName(t.name).IsSubTest() {
				continue
			}
			for _, a := range t.attempts {
				el := time.Duration(a.elapsed * float64(time.Second))
				if (a.action == gotest.ActionPass || a.action == gotest.ActionFail) && a.stopped == "" && el.Round(10*time.Millisecond) > 0 {
					runs = append(runs, SlowTest{Package: st.key.pkg, Test: t.name, Worker: a.worker, Elapsed: el})
				}
			}
		}
	}
	sort.Slice(runs, func(i, j int) bool {
		a, b := runs[i], runs[j]
		switch {
		case a.Elapsed != b.Elapsed:
			return a.Elapsed > b.Elapsed
		case a.Package != b.Package:
			return a.Package < b.Package
		case a.Test != b.Test:
			return a.Test < b.Test
		}
		return a.Worker < b.Worker
	})
	return runs[:min(n, len(runs))]
}

// WriteSlowest writes tests as the --slowest section, one aligned line a test with the
// worker it ran on:
//
//	=== Slowest 2 tests
//	  1.50s  example.com/slow  TestBig    [gw2]
//	  0.35s  example.com/slow  TestSmall  [gw1]
//
// It writes nothing for no tests.
func WriteSlowest(w io.Writer, tests []SlowTest) error {
	if len(tests) == 0 {
		return nil
	}
	var b strings.Builder
	title := "=== Slowest test"
	if len(tests) > 1 {
		title = fmt.Sprintf("=== Slowest %d tests", len(tests))
	}
	b.WriteString(title + "\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, t := range tests {
		worker := ""
		if t.Worker != "" {
			worker = "[" + t.Worker + "]"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", formatSeconds(t.Elapsed, 2), t.Package, t.Test, worker)
	}
	tw.Flush()
	// tabwriter pads the last cell when it is empty; lines end with no spaces.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}
