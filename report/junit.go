package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/godist/godist/gotest"
	"github.com/jstemmer/go-junit-report/v2/junit"
)

// JUnitOptions configure a JUnitCollector. The zero value is usable.
type JUnitOptions struct {
	// Each is set in --dist each mode: every package has a testsuite per worker, and every
	// testcase name ends in " [worker]".
	Each bool
	// Name is the <testsuites> name attribute (gotestsum's --junitfile-project-name); may
	// be empty.
	Name string
	// Hostname is every <testsuite>'s hostname attribute; may be empty.
	Hostname string
}

// JUnitCollector turns a run's events into a JUnit XML report that GitLab, Jenkins and
// CircleCI read. It writes with the types of github.com/jstemmer/go-junit-report/v2/junit
// and follows go-junit-report's choices where it has them:
//
//   - one <testsuite> per package (per package and worker in each mode, named
//     "pkg [worker]", with a "worker" property; in load mode a "workers" property lists the
//     workers that ran the package's tests), in package order, with the package-level
//     output (TestMain prints, panics outside tests) as <system-out> and
//     "coverage.statements.pct" when the package reported coverage;
//   - one <testcase> per test, subtests included, in the order they first appeared:
//     classname is the package import path, name the test name, time the seconds of its
//     last attempt; a passed test's output is its <system-out>, a failed one's is the text
//     of <failure>, a skipped one's the text of <skipped>, each without test2json's
//     framing lines. The message is the panic line or the test's last log line
//     ("file_test.go:12: message", where t.Fatal and t.Skip stop a test), else "Failed" or
//     "Skipped". In load mode each testcase has a "worker" property naming where it ran.
//   - a test that started and never finished is an <error message="No test result found">;
//   - a build failure is a testcase "[build failed]" with an <error message="Build error">
//     holding the compiler's output;
//   - a package that failed with no failed or unfinished test (TestMain or init exited or
//     panicked, a worker lost between tests) is a testcase "Failure" with an
//     <error message="Runtime error"> holding the package's output;
//   - a test that the run's stop (-x, --maxfail, an interrupt) cut short (its output holds
//     a gotest.StoppedPrefix line) is a <failure message="not run to the end: why">: it
//     neither passed nor was skipped, and the run did not let it end. A package so cut
//     short between tests is a testcase "Failure" with such a failure.
//
// Reruns (--rerun-fails) follow Maven Surefire, whose elements Jenkins (junit and Flaky
// Test Handler plugins) reads and other consumers ignore, so that a flaky test is never a
// failure: a test is known by package and name (and worker in each mode) and its runs are
// attempts. Its result is that of its last attempt. When that passed (or skipped), each
// earlier failed attempt is a <flakyFailure> (<flakyError> if it never finished) with the
// attempt's output as <stackTrace>, and the testcase counts as passed; when it failed, its
// last attempt is the <failure> (or <error>) and each earlier failed attempt a
// <rerunFailure> (<rerunError>), and it counts as one failure. A testcase with several
// attempts has an "attempts" property listing them ("fail on gw1 (0.05s), pass on gw2
// (0.01s)"). In load mode a run lost with its worker and run again on another is such an
// earlier attempt ("no result on gw1"): the testcase is what the later run came to.
//
// Feed it the stream in order. It is safe for concurrent use.
type JUnitCollector struct {
	mu    sync.Mutex
	opts  JUnitOptions
	model *runModel
}

// NewJUnitCollector returns an empty collector.
func NewJUnitCollector(opts JUnitOptions) *JUnitCollector {
	return &JUnitCollector{opts: opts, model: newModel(opts.Each)}
}

// Event takes the next event of the stream.
func (c *JUnitCollector) Event(e gotest.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.model.event(e)
}

// Write writes the report of the events so far: an XML header, then <testsuites>. It can
// be called more than once (say, after a run that was interrupted).
func (c *JUnitCollector) Write(w io.Writer) error {
	c.mu.Lock()
	doc := c.report()
	c.mu.Unlock()
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "\t")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// The junit package has no place for Surefire's rerun elements or testcase properties, so
// its types are embedded in these, which add them. encoding/xml lets the outer fields hide
// the embedded ones of the same name; the hidden lists stay empty.
type xmlSuites struct {
	junit.Testsuites
	Suites []xmlSuite `xml:"testsuite,omitempty"`
}

type xmlSuite struct {
	junit.Testsuite
	Testcases []xmlCase     `xml:"testcase,omitempty"`
	SystemOut *junit.Output `xml:"system-out,omitempty"`
}

type xmlCase struct {
	junit.Testcase
	Properties    *[]junit.Property `xml:"properties>property,omitempty"`
	FlakyFailures []xmlRerun        `xml:"flakyFailure,omitempty"`
	FlakyErrors   []xmlRerun        `xml:"flakyError,omitempty"`
	RerunFailures []xmlRerun        `xml:"rerunFailure,omitempty"`
	RerunErrors   []xmlRerun        `xml:"rerunError,omitempty"`
	SystemOut     *junit.Output     `xml:"system-out,omitempty"`
}

// xmlRerun is Surefire's flakyFailure/flakyError/rerunFailure/rerunError.
type xmlRerun struct {
	Message    string        `xml:"message,attr"`
	Type       string        `xml:"type,attr,omitempty"`
	StackTrace *junit.Output `xml:"stackTrace,omitempty"`
}

const (
	msgFailed     = "Failed"
	msgSkipped    = "Skipped"
	msgNoResult   = "No test result found"
	msgBuildError = "Build error"
	msgRunError   = "Runtime error"
	msgStopped    = "not run to the end: " // and why
)

func (c *JUnitCollector) report() xmlSuites {
	var doc xmlSuites
	doc.Name = c.opts.Name
	var total float64
	builds := map[string]bool{} // failed builds a suite reports
	for _, s := range c.model.sortedSuites() {
		suite := c.suite(s)
		if fb := s.failedBuild(); fb != "" {
			builds[fb] = true
		}
		total += s.elapsed()
		doc.addSuite(suite)
	}
	// A failed build that no package result names (a runner may stop at the build) is a
	// suite of its own.
	var orphans []string
	for ip, b := range c.model.builds {
		if b.failed && !builds[ip] {
			orphans = append(orphans, ip)
		}
	}
	sort.Strings(orphans)
	for _, ip := range orphans {
		pkg := packageOfBuild(ip)
		suite := xmlSuite{Testsuite: junit.Testsuite{Name: pkg, Hostname: c.opts.Hostname, Time: formatJUnitSeconds(0)}}
		suite.add(buildErrorCase(pkg, c.model.builds[ip]))
		doc.addSuite(suite)
	}
	doc.Time = formatJUnitSeconds(total)
	return doc
}

func (d *xmlSuites) addSuite(s xmlSuite) {
	s.ID = len(d.Suites)
	d.Testsuites.AddSuite(s.Testsuite)
	d.Testsuites.Suites = nil
	d.Suites = append(d.Suites, s)
}

// add appends a testcase and counts it as junit.Testsuite.AddTestcase does.
func (s *xmlSuite) add(tc xmlCase) {
	s.Testsuite.AddTestcase(tc.Testcase)
	s.Testsuite.Testcases = nil
	s.Testcases = append(s.Testcases, tc)
}

func (c *JUnitCollector) suite(s *suiteLog) xmlSuite {
	name := s.key.pkg
	if c.opts.Each && s.key.worker != "" {
		name += " [" + s.key.worker + "]"
	}
	suite := xmlSuite{Testsuite: junit.Testsuite{Name: name, Hostname: c.opts.Hostname}}
	if !s.first.IsZero() {
		suite.SetTimestamp(s.first.UTC())
	}
	if c.opts.Each && s.key.worker != "" {
		suite.AddProperty("worker", s.key.worker)
	} else if ws := s.workers(); len(ws) > 0 {
		suite.AddProperty("workers", strings.Join(ws, ","))
	}
	if cov := s.coverage(); cov != "" {
		suite.AddProperty("coverage.statements.pct", cov)
	}
	pkgErr, stopped := s.packageFailure()
	if out := s.packageOutput(); out != "" && !pkgErr {
		suite.SystemOut = &junit.Output{Data: xmlSafe(out)}
	}
	for _, t := range s.order {
		if len(t.attempts) > 0 {
			suite.add(c.testcase(s, t))
		}
	}
	if fb := s.failedBuild(); fb != "" {
		suite.add(buildErrorCase(s.key.pkg, c.model.build(fb)))
	}
	switch {
	case pkgErr:
		// The package's output goes here rather than to its system-out, as go-junit-report
		// does.
		out := s.packageOutput()
		if out == "" {
			out = "(no output)"
		}
		suite.add(xmlCase{Testcase: junit.Testcase{
			Classname: s.key.pkg, Name: "Failure", Time: formatJUnitSeconds(0),
			Error: &junit.Result{Message: msgRunError, Data: xmlSafe(out)},
		}})
	case stopped != "":
		// Cut short between tests: not run to the end, which is no error of the package
		// and no pass either.
		suite.add(xmlCase{Testcase: junit.Testcase{
			Classname: s.key.pkg, Name: "Failure", Time: formatJUnitSeconds(0),
			Failure: &junit.Result{Message: xmlSafe(msgStopped + stopped)},
		}})
	}
	suite.Time = formatJUnitSeconds(s.elapsed())
	return suite
}

func buildErrorCase(pkg string, b *buildLog) xmlCase {
	var lines []string
	for _, l := range strings.Split(strings.Join(b.output, ""), "\n") {
		if l != "" && !strings.HasPrefix(l, "# ") {
			lines = append(lines, l)
		}
	}
	return xmlCase{Testcase: junit.Testcase{
		Classname: pkg, Name: "[build failed]", Time: formatJUnitSeconds(0),
		Error: &junit.Result{Message: msgBuildError, Data: xmlSafe(strings.Join(lines, "\n"))},
	}}
}

func (c *JUnitCollector) testcase(s *suiteLog, t *testLog) xmlCase {
	name := t.name
	if c.opts.Each && s.key.worker != "" {
		name += " [" + s.key.worker + "]"
	}
	final := t.final()
	tc := xmlCase{Testcase: junit.Testcase{Classname: s.key.pkg, Name: name, Time: formatJUnitSeconds(final.elapsed)}}
	var props []junit.Property
	if !c.opts.Each && final.worker != "" {
		props = append(props, junit.Property{Name: "worker", Value: final.worker})
	}
	if len(t.attempts) > 1 {
		props = append(props, junit.Property{Name: "attempts", Value: attemptsSummary(t.attempts)})
	}
	if len(props) > 0 {
		tc.Properties = &props
	}

	text := xmlSafe(final.text())
	lines := strings.Split(final.text(), "\n")
	switch final.action {
	case gotest.ActionPass:
		if text != "" {
			tc.SystemOut = &junit.Output{Data: text}
		}
	case gotest.ActionSkip:
		tc.Skipped = &junit.Result{Message: xmlSafe(skipMessage(lines)), Data: text}
	case gotest.ActionFail:
		tc.Failure = &junit.Result{Message: xmlSafe(attemptMessage(s, t, final, true)), Data: text}
	default:
		tc.Error = &junit.Result{Message: msgNoResult, Data: text}
	}

	earlier := t.attempts[:len(t.attempts)-1]
	passed := final.action == gotest.ActionPass || final.action == gotest.ActionSkip
	for _, a := range earlier {
		if !a.failed() {
			continue
		}
		r := xmlRerun{Message: xmlSafe(attemptMessage(s, t, a, false))}
		if out := a.text(); out != "" {
			r.StackTrace = &junit.Output{Data: xmlSafe(out)}
		}
		switch {
		case passed && a.action == "":
			tc.FlakyErrors = append(tc.FlakyErrors, r)
		case passed:
			tc.FlakyFailures = append(tc.FlakyFailures, r)
		case a.action == "":
			tc.RerunErrors = append(tc.RerunErrors, r)
		default:
			tc.RerunFailures = append(tc.RerunFailures, r)
		}
	}
	return tc
}

// attemptMessage is the message of a failed attempt a of t: "No test result found" when it
// never finished; "not run to the end: why" when the run's stop cut it short; else the
// panic or last log line, or the subtest that failed (on the last attempt if final is
// set, else on any), or "Failed".
func attemptMessage(s *suiteLog, t *testLog, a *attempt, final bool) string {
	switch {
	case a.action == "":
		return msgNoResult
	case a.stopped != "":
		return msgStopped + a.stopped
	}
	msg := failureMessage(strings.Split(a.text(), "\n"), msgFailed)
	if msg == msgFailed {
		if sub := failedSubtest(s, t, final); sub != "" {
			msg = "subtest " + sub + " failed"
		}
	}
	return msg
}

// skipMessage is the reason t.Skip gave, or "Skipped".
func skipMessage(lines []string) string {
	if loc, ok := lastLogLine(lines); ok && loc.msg != "" {
		msg, _, _ := strings.Cut(loc.msg, "\n")
		return msg
	}
	return msgSkipped
}

// failedSubtest names the shallowest subtest of t that failed: on its last attempt if
// final is set, else on any attempt. Attempts the run's stop cut short did not fail.
func failedSubtest(s *suiteLog, t *testLog, final bool) string {
	best, depth := "", 0
	for _, o := range s.order {
		rest, ok := strings.CutPrefix(o.name, t.name+"/")
		as := ranToTheEnd(o.attempts)
		if !ok || len(as) == 0 {
			continue
		}
		failed := as[len(as)-1].failed()
		if !final {
			failed = false
			for _, a := range as {
				failed = failed || a.failed()
			}
		}
		if failed && (best == "" || strings.Count(rest, "/") < depth) {
			best, depth = o.name, strings.Count(rest, "/")
		}
	}
	return best
}

func attemptsSummary(as []*attempt) string {
	parts := make([]string, len(as))
	for i, a := range as {
		action := a.action
		if action == "" {
			action = "no result"
		}
		p := action
		if a.worker != "" {
			p += " on " + a.worker
		}
		parts[i] = p + " (" + formatJUnitSeconds(a.elapsed) + "s)"
	}
	return strings.Join(parts, ", ")
}

func formatJUnitSeconds(s float64) string { return fmt.Sprintf("%.3f", s) }

// xmlSafe replaces what XML 1.0 cannot hold (control characters such as the ESC of ANSI
// colours, invalid UTF-8) with U+FFFD, as go-junit-report does: encoding/xml writes
// character data as is, and a consumer rejects the whole file over one such byte.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == 0x09 || r == 0x0A || r == 0x0D ||
			r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF {
			return r
		}
		return '\uFFFD'
	}, s)
}
