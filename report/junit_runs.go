package report

import (
	"sort"
	"strings"
	"time"

	"github.com/godist/godist/gotest"
	"gotest.tools/gotestsum/testjson"
)

// runLog is what the JUnit and GitHub Actions writers keep of a run: every attempt of
// every test with its own output, package results and output, and build failures. A test
// is known by its package and name, and in --dist each mode also by its worker (there every
// worker runs every test). Several runs of one test are attempts, in the order they
// started: --rerun-fails runs a failed test again, on another worker where it can. It is
// not safe for concurrent use.
type runLog struct {
	each   bool
	seq    int
	suites map[suiteKey]*suiteLog
	builds map[string]*buildLog // by ImportPath, "pkg [pkg.test]"
}

// suiteKey names a package's results: worker is set only in each mode.
type suiteKey struct{ pkg, worker string }

type suiteLog struct {
	key     suiteKey
	seq     int
	first   time.Time // the time of its first event, if events carry times
	tests   map[string]*testLog
	order   []*testLog      // by first appearance
	output  []chunk         // package-level output
	results []pkgTerminal   // the package's pass/fail/skip events
	workers map[string]bool // workers that ran its tests
}

type chunk struct{ worker, text string }

type pkgTerminal struct {
	action      string
	elapsed     float64
	failedBuild string
}

type testLog struct {
	name     string
	attempts []*attempt
}

// attempt is one run of a test on one worker.
type attempt struct {
	worker  string
	action  string // pass, fail or skip; "" while it has no result
	elapsed float64
	output  []string // its own output, framing lines dropped
}

type buildLog struct {
	importPath string
	output     []string
	failed     bool
}

func newRunLog(each bool) *runLog {
	return &runLog{each: each, suites: map[suiteKey]*suiteLog{}, builds: map[string]*buildLog{}}
}

func (l *runLog) suite(pkg, worker string, at *time.Time) *suiteLog {
	if !l.each {
		worker = ""
	}
	k := suiteKey{pkg, worker}
	s := l.suites[k]
	if s == nil {
		l.seq++
		s = &suiteLog{key: k, seq: l.seq, tests: map[string]*testLog{}, workers: map[string]bool{}}
		l.suites[k] = s
	}
	if s.first.IsZero() && at != nil {
		s.first = *at
	}
	return s
}

func (l *runLog) build(importPath string) *buildLog {
	b := l.builds[importPath]
	if b == nil {
		b = &buildLog{importPath: importPath}
		l.builds[importPath] = b
	}
	return b
}

// event takes the next event of the stream.
func (l *runLog) event(e gotest.Event) {
	switch {
	case e.Action == gotest.ActionBuildOutput:
		b := l.build(e.ImportPath)
		b.output = append(b.output, e.Output)
		return
	case e.Action == gotest.ActionBuildFail:
		l.build(e.ImportPath).failed = true
		return
	case e.Package == "":
		return
	}
	s := l.suite(e.Package, e.Worker, e.Time)
	if e.Test == "" {
		switch e.Action {
		case gotest.ActionOutput:
			s.output = append(s.output, chunk{e.Worker, e.Output})
		case gotest.ActionPass, gotest.ActionFail, gotest.ActionSkip:
			s.results = append(s.results, pkgTerminal{e.Action, elapsedOf(e), e.FailedBuild})
			if e.FailedBuild != "" {
				l.build(e.FailedBuild).failed = true
			}
		}
		return
	}
	t := s.tests[e.Test]
	if t == nil {
		t = &testLog{name: e.Test}
		s.tests[e.Test] = t
		s.order = append(s.order, t)
	}
	if e.Worker != "" {
		s.workers[e.Worker] = true
	}
	last := t.last()
	switch e.Action {
	case gotest.ActionRun:
		t.attempts = append(t.attempts, &attempt{worker: e.Worker})
	case gotest.ActionOutput, gotest.ActionBench:
		if last == nil {
			last = &attempt{worker: e.Worker}
			t.attempts = append(t.attempts, last)
		}
		if !isTestFraming(e.Output, e.Test) {
			last.output = append(last.output, e.Output)
		}
	case gotest.ActionPass, gotest.ActionFail, gotest.ActionSkip:
		if last == nil || last.action != "" {
			// A result with no run of its own (go test gives a package's pass to the test
			// last running when the binary exits 0 early).
			last = &attempt{worker: e.Worker}
			t.attempts = append(t.attempts, last)
		}
		last.action = e.Action
		last.elapsed = elapsedOf(e)
	}
}

func (t *testLog) last() *attempt {
	if len(t.attempts) == 0 {
		return nil
	}
	return t.attempts[len(t.attempts)-1]
}

// final is the test's result: that of its last attempt ("" when it has none).
func (t *testLog) final() *attempt { return t.last() }

// failed reports whether an attempt failed or never finished.
func (a *attempt) failed() bool { return a.action == gotest.ActionFail || a.action == "" }

// text is the attempt's output as one string, without a trailing newline.
func (a *attempt) text() string {
	return strings.TrimRight(strings.Join(a.output, ""), "\n")
}

// sortedSuites lists the suites by package, then worker.
func (l *runLog) sortedSuites() []*suiteLog {
	ss := make([]*suiteLog, 0, len(l.suites))
	for _, s := range l.suites {
		ss = append(ss, s)
	}
	sort.Slice(ss, func(i, j int) bool {
		if ss[i].key.pkg != ss[j].key.pkg {
			return ss[i].key.pkg < ss[j].key.pkg
		}
		return ss[i].key.worker < ss[j].key.worker
	})
	return ss
}

// failedBuild is the build failure a suite's package reports, if any.
func (s *suiteLog) failedBuild() string {
	for _, r := range s.results {
		if r.failedBuild != "" {
			return r.failedBuild
		}
	}
	return ""
}

// packageError reports whether the package failed for no failed or unfinished test of its
// own: a TestMain or init that exited or panicked, or a process lost between tests. A
// test that failed on one attempt and passed on another explains a package failure as
// well (the package result may be that of the first attempt's process).
func (s *suiteLog) packageError() bool {
	failed := false
	for _, r := range s.results {
		if r.action == gotest.ActionFail && r.failedBuild == "" {
			failed = true
		}
	}
	if !failed {
		return false
	}
	for _, t := range s.order {
		for _, a := range t.attempts {
			if a.failed() {
				return false
			}
		}
	}
	return true
}

// elapsed is the package's time: that of its results (godist writes one per package and
// worker), or else that of its top-level tests' final attempts.
func (s *suiteLog) elapsed() float64 {
	var sum float64
	for _, r := range s.results {
		sum += r.elapsed
	}
	if sum > 0 {
		return sum
	}
	for _, t := range s.order {
		if !testjson.TestName(t.name).IsSubTest() && t.final() != nil {
			sum += t.final().elapsed
		}
	}
	return sum
}

// packageOutput is the package-level output worth keeping, each worker's lines together
// (workers in the order they first wrote): result lines and framing go.
func (s *suiteLog) packageOutput() string {
	var workers []string
	byWorker := map[string][]string{}
	for _, c := range s.output {
		if _, ok := byWorker[c.worker]; !ok {
			workers = append(workers, c.worker)
		}
		byWorker[c.worker] = append(byWorker[c.worker], c.text)
	}
	var b strings.Builder
	for _, w := range workers {
		for _, line := range byWorker[w] {
			if isQuietPackageLine(line, s.key.pkg) && !strings.HasPrefix(line, "coverage: ") {
				continue
			}
			b.WriteString(line)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// coverage is the statement coverage the package reported ("coverage: 75.0% of
// statements"), as a number string, or "".
func (s *suiteLog) coverage() string {
	for _, c := range s.output {
		rest, ok := strings.CutPrefix(c.text, "coverage: ")
		if !ok {
			continue
		}
		if pct, _, ok := strings.Cut(rest, "% of statements"); ok {
			return pct
		}
	}
	return ""
}

// isTestFraming reports whether an output chunk of test is one of test2json's framing
// lines or the test's own result line, which the JUnit and annotation text leave out.
func isTestFraming(out, test string) bool {
	l := strings.TrimLeft(out, " ")
	for _, p := range []string{"=== RUN ", "=== PAUSE ", "=== CONT ", "=== NAME "} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	for _, p := range []string{"--- PASS: ", "--- FAIL: ", "--- SKIP: "} {
		if strings.HasPrefix(l, p+test+" (") {
			return true
		}
	}
	return false
}
