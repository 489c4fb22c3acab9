package report

import (
	"sort"
	"strings"

	"github.com/godist/godist/gotest"
	"gotest.tools/gotestsum/testjson"
)

// tally is what the reporter knows of a run: counts, results and the output worth keeping.
// Tests are keyed by (package, top-level test, worker): the same test may run on several
// workers at once (--dist each), and their output must stay apart. It is not safe for
// concurrent use; the Reporter guards it.
type tally struct {
	passed, failed, skipped int
	doneTop                 int // top-level tests with a result

	seq      int                  // orders roots by when they started
	running  map[rootKey]*rootRun // top-level tests without a result yet
	failures []*rootRun           // top-level tests that failed
	failedBy map[rootKey]*rootRun // the last failed run of each key, for late output

	pkgs   map[string]*pkgState
	builds map[string]*buildState // by ImportPath, "pkg [pkg.test]"

	// Attempts of one test (--rerun-fails): keyed by package and test, and by worker in
	// each mode. A test that fails and then passes is flaky: its failed attempts leave the
	// failure counts and the failures section for the flaky list.
	each     bool
	attempts map[string]*attempts
	flaky    []flakyTest
}

type attempts struct {
	failed []*rootRun // failed attempts not yet redeemed by a pass
}

// flakyTest is a test that failed, then passed on a later attempt.
type flakyTest struct {
	pkg, name, worker string // worker of the passing attempt
	failedOn          []string
}

type rootKey struct{ pkg, name, worker string }

// rootRun is one run of a top-level test on one worker, with its subtests.
type rootRun struct {
	pkg, name, worker string
	seq               int
	elapsed           float64
	lines             []outLine
	subResult         map[string]string // subtest name -> action
	subFailed         bool
	started           bool            // a run event was seen; only started tests can be unfinished
	failures          int             // failures (its own and its subtests') counted in tally.failed
	stopped           map[string]bool // tests the run's stop cut short (gotest.StoppedPrefix)
}

type outLine struct{ test, text string }

type pkgState struct {
	name        string
	results     []pkgResult
	output      map[string][]string // package-level output by worker
	failedTests map[string]int      // failed tests (any level) by worker
	tests       int                 // tests with a result
	noTestsRun  bool                // "testing: warning: no tests to run" was seen
	coverage    map[string]string   // "coverage: N% of statements" by worker
	stopped     map[string]bool     // workers on which the run's stop cut it short
}

type pkgResult struct {
	pkg, worker, action string
	elapsed             float64
	failedBuild         string
	noTests             bool   // passed, ran no test, and said so
	coverage            string // "coverage: N% of statements", if reported
}

type buildState struct {
	importPath string
	output     []string
	failed     bool
}

func newTallyFor(each bool) *tally {
	t := newTally()
	t.each = each
	return t
}

func newTally() *tally {
	return &tally{
		running:  make(map[rootKey]*rootRun),
		failedBy: make(map[rootKey]*rootRun),
		pkgs:     make(map[string]*pkgState),
		builds:   make(map[string]*buildState),
		attempts: make(map[string]*attempts),
	}
}

func (t *tally) pkg(name string) *pkgState {
	p := t.pkgs[name]
	if p == nil {
		p = &pkgState{name: name, output: make(map[string][]string), failedTests: make(map[string]int)}
		t.pkgs[name] = p
	}
	return p
}

func (t *tally) build(importPath string) *buildState {
	b := t.builds[importPath]
	if b == nil {
		b = &buildState{importPath: importPath}
		t.builds[importPath] = b
	}
	return b
}

func (t *tally) buildOutput(importPath, output string) {
	b := t.build(importPath)
	b.output = append(b.output, output)
}

func (t *tally) buildFail(importPath string) {
	t.build(importPath).failed = true
}

func (t *tally) packageOutput(pkg, worker, output string) {
	p := t.pkg(pkg)
	p.output[worker] = append(p.output[worker], output)
	if output == "testing: warning: no tests to run\n" {
		p.noTestsRun = true
	}
	if strings.HasPrefix(output, gotest.StoppedPrefix) {
		if p.stopped == nil {
			p.stopped = map[string]bool{}
		}
		p.stopped[worker] = true
	}
	if strings.HasPrefix(output, "coverage: ") && strings.HasSuffix(output, " of statements\n") {
		if p.coverage == nil {
			p.coverage = map[string]string{}
		}
		p.coverage[worker] = strings.TrimSuffix(output, "\n")
	}
}

func (t *tally) packageResult(pkg, worker, action string, elapsed float64, failedBuild string) pkgResult {
	p := t.pkg(pkg)
	res := pkgResult{pkg: pkg, worker: worker, action: action, elapsed: elapsed, failedBuild: failedBuild}
	res.noTests = action == gotest.ActionPass && p.tests == 0 && p.noTestsRun
	res.coverage = p.coverage[worker]
	if failedBuild != "" {
		t.build(failedBuild).failed = true
	}
	p.results = append(p.results, res)
	return res
}

// root returns the running root of test on worker, starting one if there is none.
func (t *tally) root(pkg, test, worker string) *rootRun {
	name, _ := testjson.TestName(test).Split()
	k := rootKey{pkg, name, worker}
	r := t.running[k]
	if r == nil {
		t.seq++
		r = &rootRun{pkg: pkg, name: name, worker: worker, seq: t.seq}
		t.running[k] = r
	}
	return r
}

func (t *tally) run(pkg, test, worker string) {
	t.pkg(pkg)
	if !testjson.TestName(test).IsSubTest() {
		// A new run of a top-level test; a previous run on this worker without a result
		// is superseded.
		delete(t.running, rootKey{pkg, test, worker})
	}
	t.root(pkg, test, worker).started = true
}

// testOutput keeps output for the test's running root. Output that arrives after its root
// failed joins that failure; after a pass it starts a root that, having no run event,
// is dropped at the end unless a result comes.
func (t *tally) testOutput(pkg, test, worker, output string) {
	name, _ := testjson.TestName(test).Split()
	k := rootKey{pkg, name, worker}
	r := t.running[k]
	if r == nil && t.failedBy[k] != nil {
		r = t.failedBy[k]
	}
	if r == nil {
		r = t.root(pkg, test, worker)
	}
	if strings.HasPrefix(output, gotest.StoppedPrefix) {
		if r.stopped == nil {
			r.stopped = map[string]bool{}
		}
		r.stopped[test] = true
	}
	r.lines = append(r.lines, outLine{test: test, text: output})
}

func (t *tally) testResult(pkg, test, worker, action string, elapsed float64) {
	p := t.pkg(pkg)
	root, _ := testjson.TestName(test).Split()
	if r := t.running[rootKey{pkg, root, worker}]; r != nil && r.stopped[test] {
		// Cut short by the run's stop: not run, neither failed nor done.
		if !testjson.TestName(test).IsSubTest() {
			delete(t.running, rootKey{pkg, test, worker})
		}
		return
	}
	p.tests++
	switch action {
	case gotest.ActionPass:
		t.passed++
	case gotest.ActionFail:
		t.failed++
		p.failedTests[worker]++
	case gotest.ActionSkip:
		t.skipped++
	}

	r := t.root(pkg, test, worker)
	if action == gotest.ActionFail {
		r.failures++
	}
	if testjson.TestName(test).IsSubTest() {
		if r.subResult == nil {
			r.subResult = make(map[string]string)
		}
		r.subResult[test] = action
		if action == gotest.ActionFail {
			r.subFailed = true
		}
		return
	}
	delete(t.running, rootKey{pkg, test, worker})
	ak := pkg + "\x00" + test
	if t.each {
		ak += "\x00" + worker
	}
	a := t.attempts[ak]
	if a == nil {
		a = &attempts{}
		t.attempts[ak] = a
		t.doneTop++ // a test counts once towards the plan, however often it runs
	}
	switch action {
	case gotest.ActionFail:
		r.elapsed = elapsed
		t.failures = append(t.failures, r)
		t.failedBy[rootKey{pkg, test, worker}] = r
		a.failed = append(a.failed, r)
	case gotest.ActionPass:
		if len(a.failed) > 0 {
			f := flakyTest{pkg: pkg, name: test, worker: worker}
			for _, fr := range a.failed {
				t.failed -= fr.failures
				p.failedTests[fr.worker] -= fr.failures
				f.failedOn = append(f.failedOn, fr.worker)
				t.dropFailure(fr)
			}
			a.failed = nil
			t.flaky = append(t.flaky, f)
		}
	}
	// Passed and skipped roots are dropped with their output.
}

// dropFailure takes a failed run out of the failures section.
func (t *tally) dropFailure(r *rootRun) {
	for i, f := range t.failures {
		if f == r {
			t.failures = append(t.failures[:i], t.failures[i+1:]...)
			return
		}
	}
}

// outputLines is the output worth showing for a failed or unfinished root: the framing
// lines go, and when a subtest failed, so does the output of subtests that passed or
// were skipped (gotestsum shows it the same way).
func (r *rootRun) outputLines() []string {
	lines := make([]string, 0, len(r.lines))
	for _, l := range r.lines {
		if isFraming(l.text, r.name) {
			continue
		}
		if r.subFailed && l.test != r.name {
			if res := r.subResult[l.test]; res == gotest.ActionPass || res == gotest.ActionSkip {
				continue
			}
		}
		lines = append(lines, l.text)
	}
	return lines
}

// isFraming reports whether line is one of test2json's markers or root's own result line.
func isFraming(line, root string) bool {
	for _, p := range []string{"=== RUN ", "=== PAUSE ", "=== CONT ", "=== NAME ", "--- FAIL: " + root + " ", "--- PASS: " + root + " ", "--- SKIP: " + root + " "} {
		if strings.HasPrefix(line, p) {
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
// result: framing a test binary or go test prints in every run.
func isQuietPackageLine(line, pkg string) bool {
	switch strings.TrimRight(line, "\n") {
	case "PASS", "FAIL", "testing: warning: no tests to run", "":
		return true
	}
	return isResultLine(line, pkg) ||
		strings.HasPrefix(line, "exit status ") ||
		strings.HasPrefix(line, "coverage: ") ||
		strings.HasPrefix(line, "-test.shuffle ")
}

// failureEntry is one item of the failures section.
type failureEntry struct {
	pkg, title, worker string
	lines              []string
}

// failureEntries lists failed top-level tests and packages that failed outside a test,
// by package, then in the order the tests started; a package's own entry follows its tests.
func (t *tally) failureEntries(each bool) []failureEntry {
	var entries []failureEntry
	fails := append([]*rootRun(nil), t.failures...)
	sort.SliceStable(fails, func(i, j int) bool {
		if fails[i].pkg != fails[j].pkg {
			return fails[i].pkg < fails[j].pkg
		}
		return fails[i].seq < fails[j].seq
	})
	byPkg := make(map[string][]failureEntry)
	for _, r := range fails {
		byPkg[r.pkg] = append(byPkg[r.pkg], failureEntry{
			pkg:    r.pkg,
			title:  r.pkg + " " + r.name + " (" + formatFloatSeconds(r.elapsed, 2) + ")",
			worker: r.worker,
			lines:  r.outputLines(),
		})
	}
	for _, pe := range t.packageErrors(each) {
		byPkg[pe.pkg] = append(byPkg[pe.pkg], pe)
	}
	for _, name := range sortedKeys(byPkg) {
		entries = append(entries, byPkg[name]...)
	}
	return entries
}

// packageErrors lists the packages that failed outside their tests: those that failed
// with no failed test (TestMain, init, os.Exit), and those whose package-level output says
// more than the result (a panic or a timeout between tests).
func (t *tally) packageErrors(each bool) []failureEntry {
	var entries []failureEntry
	for _, name := range sortedKeys(t.pkgs) {
		p := t.pkgs[name]
		seen := make(map[string]bool)
		for _, res := range p.results {
			if res.action != gotest.ActionFail || res.failedBuild != "" || p.stopped[res.worker] {
				continue
			}
			// In each mode a result belongs to its worker; otherwise the package's batches
			// may have run anywhere, so every worker's package output is looked at.
			workers := []string{res.worker}
			failedTests := p.failedTests[res.worker]
			if !each {
				workers = sortedKeys(p.output)
				failedTests = 0
				for _, n := range p.failedTests {
					failedTests += n
				}
			}
			var news []string
			for _, w := range workers {
				if !seen[w] && hasNews(p.output[w], name) {
					news = append(news, w)
				}
			}
			if len(news) == 0 && failedTests == 0 && !seen[res.worker] {
				news = []string{res.worker}
			}
			for _, w := range news {
				seen[w] = true
				entries = append(entries, failureEntry{pkg: name, title: name + " (package)", worker: w, lines: outputOrNone(p.output[w], name)})
			}
		}
	}
	return entries
}

func hasNews(lines []string, pkg string) bool {
	for _, l := range lines {
		if !isQuietPackageLine(l, pkg) {
			return true
		}
	}
	return false
}

// outputOrNone is a package's output without its result line.
func outputOrNone(lines []string, pkg string) []string {
	var out []string
	for _, l := range lines {
		if !isResultLine(l, pkg) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return []string{"(no output)\n"}
	}
	return out
}

// unfinished lists top-level tests that started and never reported a result.
func (t *tally) unfinished() []*rootRun {
	var rs []*rootRun
	for _, r := range t.running {
		if r.started {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].pkg != rs[j].pkg {
			return rs[i].pkg < rs[j].pkg
		}
		return rs[i].seq < rs[j].seq
	})
	return rs
}

// failedBuilds lists the builds that failed, by import path.
func (t *tally) failedBuilds() []*buildState {
	var bs []*buildState
	for _, k := range sortedKeys(t.builds) {
		if b := t.builds[k]; b.failed {
			bs = append(bs, b)
		}
	}
	return bs
}

// summary counts the run; total is the planned top-level units (0 if unknown).
func (t *tally) summary(total int, each bool) Summary {
	s := Summary{Passed: t.passed, Failed: t.failed, Skipped: t.skipped, Flaky: len(t.flaky)}
	pkgs := make(map[string]bool)    // package -> failed
	errPkgs := make(map[string]bool) // packages failed outside a test
	for name, p := range t.pkgs {
		for _, res := range p.results {
			pkgs[name] = pkgs[name] || res.action == gotest.ActionFail
		}
	}
	for _, pe := range t.packageErrors(each) {
		errPkgs[pe.pkg] = true
	}
	for _, b := range t.failedBuilds() {
		s.BuildFailures++
		pkgs[packageOfBuild(b.importPath)] = true
	}
	s.Packages = len(pkgs)
	for _, failed := range pkgs {
		if failed {
			s.FailedPackages++
		}
	}
	s.PackageErrors = len(errPkgs)
	s.NotRun = max(total-t.doneTop, len(t.unfinished()), 0)
	return s
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
