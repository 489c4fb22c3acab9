package report

import (
	"sort"
	"strings"

	"github.com/godist/godist/gotest"
)

// The Reporter's views of the runModel: the failures section and the summary.

// failureEntry is one item of the failures section.
type failureEntry struct {
	pkg, title, worker string
	lines              []string
}

// failureEntries lists failed top-level test runs (not redeemed by a later pass, not cut
// short by the run's stop) and packages that failed outside a test, by package, then in
// the order the tests started; a package's own entries follow its tests.
func (m *runModel) failureEntries() []failureEntry {
	var entries []failureEntry
	errs := m.packageErrors()
	for _, name := range sortedKeys(m.pkgs) {
		for _, r := range m.pkgs[name].roots {
			if top := r.top(); top != nil && top.action == gotest.ActionFail && top.stopped == "" && !r.redeemed {
				entries = append(entries, failureEntry{
					pkg:    name,
					title:  name + " " + r.key.name + " (" + formatFloatSeconds(top.elapsed, 2) + ")",
					worker: r.key.worker,
					lines:  r.outputLines(),
				})
			}
		}
		for _, pe := range errs {
			if pe.pkg == name {
				entries = append(entries, pe)
			}
		}
	}
	return entries
}

// outputLines is the output worth showing for a failed or unfinished root: the framing
// lines go, and when a subtest failed, so does the output of subtests that passed or
// were skipped (gotestsum shows it the same way).
func (r *rootRun) outputLines() []string {
	lines := make([]string, 0, len(r.lines))
	for _, l := range r.lines {
		if isFraming(l.text, r.key.name) {
			continue
		}
		if r.subFailed && l.test != r.key.name {
			if a := r.attempts[l.test]; a != nil && (a.action == gotest.ActionPass || a.action == gotest.ActionSkip) {
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

// packageErrors lists the packages that failed outside their tests: those that failed
// with no failed test (TestMain, init, os.Exit), and those whose package-level output says
// more than the result (a panic or a timeout between tests). A package the run's stop cut
// short is not one.
func (m *runModel) packageErrors() []failureEntry {
	var entries []failureEntry
	for _, name := range sortedKeys(m.pkgs) {
		p := m.pkgs[name]
		output := map[string][]string{} // by worker
		for _, c := range p.output {
			output[c.worker] = append(output[c.worker], c.text)
		}
		failedTests := map[string]int{} // counted failures not redeemed, by worker
		for _, r := range p.roots {
			if !r.redeemed {
				failedTests[r.key.worker] += r.failures
			}
		}
		seen := make(map[string]bool)
		for _, res := range p.results {
			if res.action != gotest.ActionFail || res.failedBuild != "" || p.stopped[res.worker] != "" {
				continue
			}
			// In each mode a result belongs to its worker; otherwise the package's batches
			// may have run anywhere, so every worker's package output is looked at.
			workers := []string{res.worker}
			failed := failedTests[res.worker]
			if !m.each {
				workers = sortedKeys(output)
				failed = 0
				for _, n := range failedTests {
					failed += n
				}
			}
			var news []string
			for _, w := range workers {
				if !seen[w] && hasNews(output[w], name) {
					news = append(news, w)
				}
			}
			if len(news) == 0 && failed == 0 && !seen[res.worker] {
				news = []string{res.worker}
			}
			for _, w := range news {
				seen[w] = true
				entries = append(entries, failureEntry{pkg: name, title: name + " (package)", worker: w, lines: outputOrNone(output[w], name)})
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

// unfinished lists top-level test runs that started and never reported a result, nor
// (in load mode) were superseded by a later run of the test that did.
func (m *runModel) unfinished() []*rootRun {
	var rs []*rootRun
	for _, r := range m.running {
		if r.started {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].key.pkg != rs[j].key.pkg {
			return rs[i].key.pkg < rs[j].key.pkg
		}
		return rs[i].seq < rs[j].seq
	})
	return rs
}

// failedBuilds lists the builds that failed, by import path.
func (m *runModel) failedBuilds() []*buildLog {
	var bs []*buildLog
	for _, k := range sortedKeys(m.builds) {
		if b := m.builds[k]; b.failed {
			bs = append(bs, b)
		}
	}
	return bs
}

// flakyTest is a test that failed, then passed on a later attempt.
type flakyTest struct {
	pkg, name, worker string // worker of the passing attempt
	failedOn          []string
}

// flakyTests lists the flaky tests in the order their passing attempts came.
func (m *runModel) flakyTests() []flakyTest {
	fs := make([]flakyTest, 0, len(m.flaky))
	for _, a := range m.flaky {
		f := flakyTest{pkg: a.root.key.pkg, name: a.test.name, worker: a.worker}
		for _, r := range a.redeemed {
			f.failedOn = append(f.failedOn, r.worker)
		}
		fs = append(fs, f)
	}
	return fs
}

// summary counts the run; total is the planned top-level units (0 if unknown).
func (m *runModel) summary(total int) Summary {
	s := Summary{Passed: m.passed, Failed: m.failed, Skipped: m.skipped, Flaky: len(m.flaky)}
	pkgs := make(map[string]bool)    // package -> failed
	errPkgs := make(map[string]bool) // packages failed outside a test
	for name, p := range m.pkgs {
		for _, res := range p.results {
			pkgs[name] = pkgs[name] || res.action == gotest.ActionFail
		}
	}
	for _, pe := range m.packageErrors() {
		errPkgs[pe.pkg] = true
	}
	for _, b := range m.failedBuilds() {
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
	// A test unfinished on several workers (in load mode, each lost while running it) is
	// one test not run.
	notDone := make(map[rootKey]bool)
	for _, r := range m.unfinished() {
		k := r.key
		if !m.each {
			k.worker = ""
		}
		notDone[k] = true
	}
	s.NotRun = max(total-m.doneTop, len(notDone), 0)
	return s
}
