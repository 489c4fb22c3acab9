package report

import (
	"sort"
	"strings"
	"time"

	"github.com/godist/godist/gotest"
	"gotest.tools/gotestsum/testjson"
)

// runModel is what this package knows of a run. It is built from the event stream, one
// call of event per event, and it is the only place that interprets the stream: the
// Reporter's live lines, live view, failures section and summary, the JUnit report, the
// GitHub annotations and the slowest tests are all read from it. Its rules:
//
//   - A test is known by package and name, and in --dist each mode also by worker (there
//     every worker runs every test). Each run of a test is an attempt, in the order the
//     runs started: --rerun-fails and -count run a test again.
//   - A root run is one run of a top-level test on one worker, with its subtests; their
//     output is kept in order across them. A test event goes to the running root of its
//     top-level test on its worker, or starts one: a run event of a top-level test always
//     does, superseding one still running there. Output that comes after the root ended
//     (late output) goes to the latest root of the test on the worker.
//   - A result counts towards passed, failed and skipped unless the run's stop cut the
//     test short: the attempt's output holds a line starting with gotest.StoppedPrefix, and
//     its "fail" means not run to the end. A top-level test counts once towards the plan
//     however often it runs.
//   - A top-level attempt that passes redeems the earlier failed attempts of its test: the
//     test is flaky, and their failures (their subtests' included) no longer count.
//   - In load mode a test's result is the same wherever it runs, so a top-level run that
//     reaches a result (on any worker) supersedes the runs of its test that started
//     before it on other workers and are still running: the runner runs a test again
//     elsewhere when the worker running it was lost, and that worker's run never ends.
//     A superseded run is not unfinished; it stays an attempt of its test, with no
//     result. In each mode every worker runs every test: a lost worker's unfinished run
//     is what that worker came to, and stays unfinished.
//
// It is not safe for concurrent use; its owner guards it.
type runModel struct {
	each       bool
	dropOutput bool // keep no output text (for readers that need none)

	pkgs   map[string]*pkgLog
	suites map[suiteKey]*suiteLog
	builds map[string]*buildLog // by ImportPath, "pkg [pkg.test]"

	seq     int                  // orders root runs by when they started
	running map[rootKey]*rootRun // root runs without a result yet
	latest  map[rootKey]*rootRun // the latest root run of each key, for late output

	// Kept as the events come, for the live view.
	passed, failed, skipped int        // results counted; failed less redeemed failures
	doneTop                 int        // top-level tests with a counted result
	flaky                   []*attempt // passing attempts that redeemed failures, in order
}

// pkgLog is a package's own events (not its tests'), its root runs, and what they say.
type pkgLog struct {
	name       string
	output     []chunk           // package-level output, in order
	results    []*pkgResult      // its pass, fail and skip events
	roots      []*rootRun        // every root run of its tests, in the order they started
	tests      int               // test results counted, for "no tests to run"
	noTestsRun bool              // "testing: warning: no tests to run" was seen
	coverage   map[string]string // "coverage: N% of statements" by worker
	stopped    map[string]string // why the run's stop cut it short, by worker
	cached     map[string]bool   // its result came from the result cache, by worker
}

type chunk struct{ worker, text string }

// pkgResult is one pass, fail or skip event of a package.
type pkgResult struct {
	pkg, worker, action string
	elapsed             float64
	failedBuild         string
	noTests             bool   // passed, ran no test, and said so
	coverage            string // "coverage: N% of statements", if reported
	stopped             string // why the run's stop cut it short, if it did
	cached              bool   // from the result cache: "(cached)" for its time
}

type buildLog struct {
	importPath string
	output     []string
	failed     bool
}

// suiteKey names a package's tests as JUnit and GitHub see them: worker is set only in
// each mode.
type suiteKey struct{ pkg, worker string }

// suiteLog is the tests of a suiteKey, and the time of its first event; its package's
// events are read from the model.
type suiteLog struct {
	m     *runModel
	key   suiteKey
	first time.Time // the time of its first event, if events carry times
	tests map[string]*testLog
	order []*testLog // by first appearance
}

// testLog is a test (top-level or subtest) and its attempts.
type testLog struct {
	name     string
	attempts []*attempt
	counted  bool // a result of it was counted (top-level tests: towards the plan)
}

// attempt is one run of a test on one worker.
type attempt struct {
	test    *testLog
	root    *rootRun
	worker  string
	action  string // pass, fail or skip; "" while it has no result
	elapsed float64
	output  []string // its own output events, as they came
	stopped string   // why the run's stop cut it short, if it did
	// redeemed lists, for a passing top-level attempt, the failed attempts it redeemed.
	redeemed []*attempt
}

type rootKey struct{ pkg, name, worker string }

// rootRun is one run of a top-level test on one worker, with its subtests.
type rootRun struct {
	key       rootKey
	seq       int
	started   bool // a run event was seen; only started roots can be unfinished
	lines     []outLine
	attempts  map[string]*attempt // the attempt of each test (itself, its subtests) in it
	failures  int                 // results of it and its subtests counted as failed
	subFailed bool                // a subtest's counted result was a failure
	redeemed  bool                // a later pass redeemed its failures
}

type outLine struct{ test, text string }

func newModel(each bool) *runModel {
	return &runModel{
		each:    each,
		pkgs:    make(map[string]*pkgLog),
		suites:  make(map[suiteKey]*suiteLog),
		builds:  make(map[string]*buildLog),
		running: make(map[rootKey]*rootRun),
		latest:  make(map[rootKey]*rootRun),
	}
}

func (m *runModel) pkg(name string) *pkgLog {
	p := m.pkgs[name]
	if p == nil {
		p = &pkgLog{name: name, coverage: map[string]string{}, stopped: map[string]string{}}
		m.pkgs[name] = p
	}
	return p
}

func (m *runModel) build(importPath string) *buildLog {
	b := m.builds[importPath]
	if b == nil {
		b = &buildLog{importPath: importPath}
		m.builds[importPath] = b
	}
	return b
}

func (m *runModel) suite(pkg, worker string, at *time.Time) *suiteLog {
	if !m.each {
		worker = ""
	}
	k := suiteKey{pkg, worker}
	s := m.suites[k]
	if s == nil {
		s = &suiteLog{m: m, key: k, tests: map[string]*testLog{}}
		m.suites[k] = s
	}
	if s.first.IsZero() && at != nil {
		s.first = *at
	}
	return s
}

// event takes the next event of the stream. It returns what the event settled, for the
// live view: the package result it recorded, or the attempt a test event went to.
func (m *runModel) event(e gotest.Event) (*pkgResult, *attempt) {
	switch {
	case e.Action == gotest.ActionBuildOutput:
		b := m.build(e.ImportPath)
		b.output = append(b.output, e.Output)
		return nil, nil
	case e.Action == gotest.ActionBuildFail:
		m.build(e.ImportPath).failed = true
		return nil, nil
	case e.Package == "":
		return nil, nil
	}
	p := m.pkg(e.Package)
	s := m.suite(e.Package, e.Worker, e.Time)
	if e.Test == "" {
		return m.packageEvent(p, e), nil
	}
	t := s.tests[e.Test]
	if t == nil {
		t = &testLog{name: e.Test}
		s.tests[e.Test] = t
		s.order = append(s.order, t)
	}
	switch e.Action {
	case gotest.ActionRun:
		return nil, m.run(p, t, e.Worker)
	case gotest.ActionOutput, gotest.ActionBench:
		return nil, m.output(p, t, e.Worker, e.Output)
	case gotest.ActionPass, gotest.ActionFail, gotest.ActionSkip:
		return nil, m.result(p, t, e.Worker, e.Action, elapsedOf(e))
	}
	return nil, nil
}

func (m *runModel) packageEvent(p *pkgLog, e gotest.Event) *pkgResult {
	switch e.Action {
	case gotest.ActionOutput:
		if !m.dropOutput {
			p.output = append(p.output, chunk{e.Worker, e.Output})
		}
		switch {
		case e.Output == "testing: warning: no tests to run\n":
			p.noTestsRun = true
		case strings.HasPrefix(e.Output, gotest.StoppedPrefix):
			p.stopped[e.Worker] = stopReason(e.Output)
		case strings.HasPrefix(e.Output, "coverage: ") && strings.HasSuffix(e.Output, " of statements\n"):
			p.coverage[e.Worker] = strings.TrimSuffix(e.Output, "\n")
		case strings.HasPrefix(e.Output, "ok  \t"+p.name+"\t(cached)"):
			if p.cached == nil {
				p.cached = map[string]bool{}
			}
			p.cached[e.Worker] = true
		}
	case gotest.ActionPass, gotest.ActionFail, gotest.ActionSkip:
		res := &pkgResult{pkg: p.name, worker: e.Worker, action: e.Action, elapsed: elapsedOf(e), failedBuild: e.FailedBuild,
			coverage: p.coverage[e.Worker], cached: p.cached[e.Worker]}
		res.noTests = e.Action == gotest.ActionPass && p.tests == 0 && p.noTestsRun
		if e.Action == gotest.ActionFail {
			res.stopped = p.stopped[e.Worker]
		}
		if e.FailedBuild != "" {
			m.build(e.FailedBuild).failed = true
		}
		p.results = append(p.results, res)
		return res
	}
	return nil
}

// stopReason is why a gotest.StoppedPrefix line says the run stopped.
func stopReason(line string) string {
	return strings.TrimSuffix(strings.TrimPrefix(line, gotest.StoppedPrefix), "\n")
}

// root returns the running root of test on worker, starting one if there is none.
func (m *runModel) root(p *pkgLog, test, worker string) *rootRun {
	name, _ := testjson.TestName(test).Split()
	k := rootKey{p.name, name, worker}
	r := m.running[k]
	if r == nil {
		m.seq++
		r = &rootRun{key: k, seq: m.seq, attempts: map[string]*attempt{}}
		m.running[k] = r
		m.latest[k] = r
		p.roots = append(p.roots, r)
	}
	return r
}

func (m *runModel) newAttempt(t *testLog, r *rootRun, worker string) *attempt {
	a := &attempt{test: t, root: r, worker: worker}
	t.attempts = append(t.attempts, a)
	r.attempts[t.name] = a
	return a
}

func (m *runModel) run(p *pkgLog, t *testLog, worker string) *attempt {
	if !testjson.TestName(t.name).IsSubTest() {
		// A new run of a top-level test; one still running on this worker is superseded.
		delete(m.running, rootKey{p.name, t.name, worker})
	}
	r := m.root(p, t.name, worker)
	r.started = true
	return m.newAttempt(t, r, worker)
}

// output keeps output for the test's running root, or else the latest one (late output
// after a result), or else a root of its own that, having no run event, is not
// unfinished at the end.
func (m *runModel) output(p *pkgLog, t *testLog, worker, text string) *attempt {
	name, _ := testjson.TestName(t.name).Split()
	k := rootKey{p.name, name, worker}
	r := m.running[k]
	if r == nil {
		r = m.latest[k]
	}
	if r == nil {
		r = m.root(p, t.name, worker)
	}
	a := r.attempts[t.name]
	if a == nil {
		a = m.newAttempt(t, r, worker)
	}
	if strings.HasPrefix(text, gotest.StoppedPrefix) {
		a.stopped = stopReason(text)
	}
	if !m.dropOutput {
		r.lines = append(r.lines, outLine{test: t.name, text: text})
		a.output = append(a.output, text)
	}
	return a
}

func (m *runModel) result(p *pkgLog, t *testLog, worker, action string, elapsed float64) *attempt {
	top := !testjson.TestName(t.name).IsSubTest()
	r := m.root(p, t.name, worker)
	a := r.attempts[t.name]
	if a == nil || a.action != "" {
		// A result with no run of its own (go test gives a package's pass to the test
		// last running when the binary exits 0 early).
		a = m.newAttempt(t, r, worker)
	}
	a.action, a.elapsed = action, elapsed
	if top {
		delete(m.running, r.key)
		if !m.each {
			m.supersede(t, r)
		}
	}
	if a.stopped != "" {
		return a // not run to the end: neither failed nor done
	}

	p.tests++
	switch action {
	case gotest.ActionPass:
		m.passed++
	case gotest.ActionFail:
		m.failed++
		r.failures++
		if !top {
			r.subFailed = true
		}
	case gotest.ActionSkip:
		m.skipped++
	}
	if !top {
		return a
	}
	if !t.counted {
		t.counted = true
		m.doneTop++ // once towards the plan, however often it runs
	}
	if action == gotest.ActionPass {
		for _, f := range t.attempts {
			if f.action == gotest.ActionFail && f.stopped == "" && !f.root.redeemed {
				f.root.redeemed = true
				m.failed -= f.root.failures
				a.redeemed = append(a.redeemed, f)
			}
		}
		if len(a.redeemed) > 0 {
			m.flaky = append(m.flaky, a)
		}
	}
	return a
}

// supersede ends, in load mode, the runs of top-level test t that started on other
// workers before r and are still running: r has the test's result (see runModel).
func (m *runModel) supersede(t *testLog, r *rootRun) {
	for _, a := range t.attempts {
		o := a.root
		if o.started && o.key.worker != r.key.worker && o.seq < r.seq && m.running[o.key] == o {
			delete(m.running, o.key)
		}
	}
}

// last returns the test's last attempt, nil if none.
func (t *testLog) last() *attempt {
	if len(t.attempts) == 0 {
		return nil
	}
	return t.attempts[len(t.attempts)-1]
}

// final is the test's result: that of its last attempt ("" when it has none).
func (t *testLog) final() *attempt { return t.last() }

// failed reports whether an attempt failed, was cut short, or never finished.
func (a *attempt) failed() bool { return a.action == gotest.ActionFail || a.action == "" }

// text is the attempt's output as one string, without test2json's framing lines and
// without a trailing newline.
func (a *attempt) text() string {
	var b strings.Builder
	for _, o := range a.output {
		if !isTestFraming(o, a.test.name) {
			b.WriteString(o)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// top is the root's own attempt, nil if only its subtests had events.
func (r *rootRun) top() *attempt { return r.attempts[r.key.name] }

// sortedSuites lists the suites by package, then worker.
func (m *runModel) sortedSuites() []*suiteLog {
	ss := make([]*suiteLog, 0, len(m.suites))
	for _, s := range m.suites {
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

// mine reports whether an event of worker belongs to the suite: in each mode a suite is
// one worker's.
func (s *suiteLog) mine(worker string) bool {
	return !s.m.each || worker == s.key.worker
}

// results are the suite's package results.
func (s *suiteLog) results() []*pkgResult {
	var rs []*pkgResult
	for _, r := range s.m.pkg(s.key.pkg).results {
		if s.mine(r.worker) {
			rs = append(rs, r)
		}
	}
	return rs
}

// workers lists the workers that ran the suite's tests.
func (s *suiteLog) workers() []string {
	seen := map[string]bool{}
	for _, t := range s.order {
		for _, a := range t.attempts {
			if a.worker != "" {
				seen[a.worker] = true
			}
		}
	}
	return sortedKeys(seen)
}

// failedBuild is the build failure a suite's package reports, if any.
func (s *suiteLog) failedBuild() string {
	for _, r := range s.results() {
		if r.failedBuild != "" {
			return r.failedBuild
		}
	}
	return ""
}

// packageFailure tells why a suite's package failed when no failed, unfinished or
// stopped test of its own explains it: a package error (TestMain or init exited or
// panicked, a process lost between tests), or the run's stop, which cut it short between
// tests (stopped is then why). A test that failed on one attempt and passed on another
// explains a package failure as well (the package result may be that of the first
// attempt's process).
func (s *suiteLog) packageFailure() (pkgErr bool, stopped string) {
	for _, r := range s.results() {
		switch {
		case r.action != gotest.ActionFail || r.failedBuild != "":
		case r.stopped != "":
			stopped = r.stopped
		default:
			pkgErr = true
		}
	}
	if !pkgErr && stopped == "" {
		return false, ""
	}
	for _, t := range s.order {
		for _, a := range t.attempts {
			if a.failed() {
				return false, ""
			}
		}
	}
	if pkgErr {
		return true, ""
	}
	return false, stopped
}

// packageError reports whether the suite's package failed outside its tests, and not
// because the run stopped; see packageFailure.
func (s *suiteLog) packageError() bool {
	pkgErr, _ := s.packageFailure()
	return pkgErr
}

// elapsed is the package's time: that of its results (godist writes one per package and
// worker), or else that of its top-level tests' final attempts.
func (s *suiteLog) elapsed() float64 {
	var sum float64
	for _, r := range s.results() {
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
	for _, c := range s.m.pkg(s.key.pkg).output {
		if !s.mine(c.worker) {
			continue
		}
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

// coverage is the statement coverage the suite's package reported ("coverage: 75.0% of
// statements"), as a number string, or "".
func (s *suiteLog) coverage() string {
	for _, c := range s.m.pkg(s.key.pkg).output {
		if !s.mine(c.worker) {
			continue
		}
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

// isResultLine reports whether a package-level output line is go test's result line for
// pkg, which the reporter writes itself.
func isResultLine(line, pkg string) bool {
	return strings.HasPrefix(line, "ok  \t"+pkg) ||
		strings.HasPrefix(line, "FAIL\t"+pkg) ||
		strings.HasPrefix(line, "?   \t"+pkg)
}

// isQuietPackageLine reports whether a package-level output line says nothing beyond the
// result: framing a test binary or go test prints in every run, and the line saying that
// the run's stop cut the package short (its result line says so too).
func isQuietPackageLine(line, pkg string) bool {
	switch strings.TrimRight(line, "\n") {
	case "PASS", "FAIL", "testing: warning: no tests to run", "":
		return true
	}
	return isResultLine(line, pkg) ||
		strings.HasPrefix(line, gotest.StoppedPrefix) ||
		strings.HasPrefix(line, "exit status ") ||
		strings.HasPrefix(line, "coverage: ") ||
		strings.HasPrefix(line, "-test.shuffle ")
}

// packageOfBuild is the package of a build's import path: "pkg [pkg.test]" -> "pkg".
func packageOfBuild(importPath string) string {
	if i := strings.Index(importPath, " ["); i >= 0 {
		return importPath[:i]
	}
	return importPath
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
