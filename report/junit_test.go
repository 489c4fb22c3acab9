package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

// The shape of a JUnit report as a consumer reads it, independent of the writer's types.
type parsedSuites struct {
	XMLName  xml.Name      `xml:"testsuites"`
	Tests    int           `xml:"tests,attr"`
	Failures int           `xml:"failures,attr"`
	Errors   int           `xml:"errors,attr"`
	Skipped  int           `xml:"skipped,attr"`
	Suites   []parsedSuite `xml:"testsuite"`
}

type parsedSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Time       string           `xml:"time,attr"`
	Properties []parsedProperty `xml:"properties>property"`
	Cases      []parsedCase     `xml:"testcase"`
	SystemOut  *string          `xml:"system-out"`
}

type parsedProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type parsedResult struct {
	Message    string `xml:"message,attr"`
	Text       string `xml:",chardata"`
	StackTrace string `xml:"stackTrace"`
}

type parsedCase struct {
	Name          string           `xml:"name,attr"`
	Classname     string           `xml:"classname,attr"`
	Time          string           `xml:"time,attr"`
	Failure       *parsedResult    `xml:"failure"`
	Error         *parsedResult    `xml:"error"`
	Skipped       *parsedResult    `xml:"skipped"`
	FlakyFailures []parsedResult   `xml:"flakyFailure"`
	FlakyErrors   []parsedResult   `xml:"flakyError"`
	RerunFailures []parsedResult   `xml:"rerunFailure"`
	RerunErrors   []parsedResult   `xml:"rerunError"`
	Properties    []parsedProperty `xml:"properties>property"`
	SystemOut     *string          `xml:"system-out"`
}

func (c parsedCase) prop(name string) string {
	for _, p := range c.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// parseJUnit decodes a report and checks that it is consistent: every count attribute
// agrees with the elements, times are seconds, every testcase has a name and classname.
func parseJUnit(t *testing.T, data []byte) parsedSuites {
	t.Helper()
	if !bytes.HasPrefix(data, []byte(xml.Header)) {
		t.Errorf("report does not start with the XML header")
	}
	var doc parsedSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("report does not parse: %v", err)
	}
	var tests, failures, errs, skipped int
	for _, s := range doc.Suites {
		var f, e, sk int
		for _, c := range s.Cases {
			if c.Name == "" || c.Classname == "" {
				t.Errorf("suite %s: testcase without name or classname: %+v", s.Name, c)
			}
			if _, err := strconv.ParseFloat(c.Time, 64); err != nil {
				t.Errorf("suite %s: testcase %s: time %q", s.Name, c.Name, c.Time)
			}
			n := 0
			if c.Failure != nil {
				f++
				n++
			}
			if c.Error != nil {
				e++
				n++
			}
			if c.Skipped != nil {
				sk++
				n++
			}
			if n > 1 {
				t.Errorf("suite %s: testcase %s has %d results", s.Name, c.Name, n)
			}
		}
		if s.Tests != len(s.Cases) || s.Failures != f || s.Errors != e || s.Skipped != sk {
			t.Errorf("suite %s: attributes tests=%d failures=%d errors=%d skipped=%d, elements %d %d %d %d",
				s.Name, s.Tests, s.Failures, s.Errors, s.Skipped, len(s.Cases), f, e, sk)
		}
		if _, err := strconv.ParseFloat(s.Time, 64); err != nil {
			t.Errorf("suite %s: time %q", s.Name, s.Time)
		}
		tests, failures, errs, skipped = tests+s.Tests, failures+s.Failures, errs+s.Errors, skipped+s.Skipped
	}
	if doc.Tests != tests || doc.Failures != failures || doc.Errors != errs || doc.Skipped != skipped {
		t.Errorf("testsuites totals %d/%d/%d/%d, suites add up to %d/%d/%d/%d",
			doc.Tests, doc.Failures, doc.Errors, doc.Skipped, tests, failures, errs, skipped)
	}
	return doc
}

func (d parsedSuites) suite(t *testing.T, name string) parsedSuite {
	t.Helper()
	for _, s := range d.Suites {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no testsuite %q", name)
	return parsedSuite{}
}

func (s parsedSuite) testcase(t *testing.T, name string) parsedCase {
	t.Helper()
	for _, c := range s.Cases {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("suite %s: no testcase %q", s.Name, name)
	return parsedCase{}
}

// writeJUnit writes the JUnit report of events.
func writeJUnit(w io.Writer, events []gotest.Event, opts JUnitOptions) error {
	c := NewJUnitCollector(opts)
	for _, e := range events {
		c.Event(e)
	}
	return c.Write(w)
}

func junitOf(t *testing.T, script string, opts JUnitOptions) []byte {
	t.Helper()
	c := NewJUnitCollector(opts)
	for _, s := range loadScript(t, script) {
		if s.Op == "" {
			c.Event(s.event)
		}
	}
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestJUnitGolden(t *testing.T) {
	for _, c := range []struct {
		script, golden string
		opts           JUnitOptions
	}{
		{"load.jsonl", "junit-load.xml", JUnitOptions{Hostname: "ci-runner"}},
		{"each.jsonl", "junit-each.xml", JUnitOptions{Each: true}},
		{"junit-rerun.jsonl", "junit-rerun.xml", JUnitOptions{Name: "rerun"}},
		{"gotest-fixtures.jsonl", "junit-fixtures.xml", JUnitOptions{}},
	} {
		t.Run(c.golden, func(t *testing.T) {
			got := junitOf(t, c.script, c.opts)
			parseJUnit(t, got)
			golden(t, c.golden, got)
		})
	}
}

func TestJUnitLoad(t *testing.T) {
	doc := parseJUnit(t, junitOf(t, "load.jsonl", JUnitOptions{}))
	calc := doc.suite(t, "example.com/calc")
	div := calc.testcase(t, "TestDiv")
	if div.Classname != "example.com/calc" || div.Time != "0.120" || div.prop("worker") != "gw1" {
		t.Errorf("TestDiv: %+v", div)
	}
	if div.Failure == nil || div.Failure.Message != "calc_test.go:22: want error, got nil" ||
		!strings.Contains(div.Failure.Text, "calc_test.go:21: dividing by zero") {
		t.Errorf("TestDiv failure: %+v", div.Failure)
	}
	if tab := calc.testcase(t, "TestTable"); tab.Failure == nil || tab.Failure.Message != "subtest TestTable/neg failed" {
		t.Errorf("TestTable: %+v", tab.Failure)
	}
	if z := calc.testcase(t, "TestTable/zero"); z.Skipped == nil || z.Skipped.Message != "not yet" {
		t.Errorf("TestTable/zero: %+v", z.Skipped)
	}
	broken := doc.suite(t, "example.com/broken").testcase(t, "[build failed]")
	if broken.Error == nil || broken.Error.Message != "Build error" || broken.Error.Text != "broken/b_test.go:3:27: undefined: undefined" {
		t.Errorf("build failure: %+v", broken.Error)
	}
	setup := doc.suite(t, "example.com/setup")
	if f := setup.testcase(t, "Failure"); f.Error == nil || f.Error.Message != "Runtime error" || !strings.Contains(f.Error.Text, "no database") {
		t.Errorf("package error: %+v", f.Error)
	}
	if setup.SystemOut != nil {
		t.Errorf("the package error's output is repeated as system-out: %q", *setup.SystemOut)
	}
}

func TestJUnitEach(t *testing.T) {
	doc := parseJUnit(t, junitOf(t, "each.jsonl", JUnitOptions{Each: true}))
	for _, w := range []string{"gw0", "gw1"} {
		s := doc.suite(t, "example.com/flaky ["+w+"]")
		if len(s.Properties) == 0 || s.Properties[0] != (parsedProperty{"worker", w}) {
			t.Errorf("suite of %s: properties %v", w, s.Properties)
		}
		c := s.testcase(t, "TestFlaky ["+w+"]")
		if c.Classname != "example.com/flaky" || c.Failure == nil || !strings.Contains(c.Failure.Text, "GODIST_WORKER="+w) {
			t.Errorf("TestFlaky on %s: %+v", w, c)
		}
		if c.Failure != nil && strings.Contains(c.Failure.Text, "GODIST_WORKER="+map[string]string{"gw0": "gw1", "gw1": "gw0"}[w]) {
			t.Errorf("TestFlaky on %s holds the other worker's output: %q", w, c.Failure.Text)
		}
		if len(c.RerunFailures) != 0 {
			t.Errorf("each mode: the other worker's run is taken for a rerun: %+v", c)
		}
	}
}

// TestJUnitReruns: a test that passes on a later attempt is passed with Surefire's
// flakyFailure; one that never passes is one failure with rerunFailure.
func TestJUnitReruns(t *testing.T) {
	doc := parseJUnit(t, junitOf(t, "junit-rerun.jsonl", JUnitOptions{}))
	s := doc.suite(t, "example.com/rerun")
	if s.Failures != 1 || s.Errors != 0 || s.Tests != 7 {
		t.Errorf("suite counts tests=%d failures=%d errors=%d; want 7, 1, 0 (only TestBroken fails)", s.Tests, s.Failures, s.Errors)
	}

	flaky := s.testcase(t, "TestFlaky")
	if flaky.Failure != nil || len(flaky.FlakyFailures) != 1 || flaky.prop("worker") != "gw2" {
		t.Errorf("TestFlaky: %+v", flaky)
	} else if ff := flaky.FlakyFailures[0]; ff.Message != `flaky_test.go:27: first attempt on worker "gw1": failing` || !strings.Contains(ff.StackTrace, "first attempt") {
		t.Errorf("TestFlaky flakyFailure: %+v", ff)
	}
	if got := flaky.prop("attempts"); got != "fail on gw1 (0.010s), pass on gw2 (0.020s)" {
		t.Errorf("TestFlaky attempts property: %q", got)
	}
	if flaky.Time != "0.020" {
		t.Errorf("TestFlaky time %s, want the last attempt's 0.020", flaky.Time)
	}

	broken := s.testcase(t, "TestBroken")
	if broken.Failure == nil || broken.Failure.Message != "broken_test.go:10: got 4, want 2" || len(broken.RerunFailures) != 2 || len(broken.FlakyFailures) != 0 {
		t.Errorf("TestBroken: %+v", broken)
	} else if broken.RerunFailures[0].Message != "broken_test.go:10: got 1, want 2" || broken.RerunFailures[1].Message != "broken_test.go:10: got 3, want 2" {
		t.Errorf("TestBroken reruns: %+v", broken.RerunFailures)
	}

	for _, name := range []string{"TestSubs", "TestSubs/bad_input", "TestCrash"} {
		if c := s.testcase(t, name); c.Failure != nil || len(c.FlakyFailures) != 1 {
			t.Errorf("%s: want passed with one flakyFailure: %+v", name, c)
		}
	}
	if ok := s.testcase(t, "TestSubs/ok"); ok.Failure != nil || len(ok.FlakyFailures) != 0 || ok.prop("attempts") != "" {
		t.Errorf("TestSubs/ok ran once and passed: %+v", ok)
	}
	bad := s.testcase(t, "TestSubs/bad_input")
	if st := bad.FlakyFailures[0].StackTrace; !strings.Contains(st, "\uFFFD[31mred\uFFFD[0m <&> ]]> end") {
		t.Errorf("TestSubs/bad_input output not kept safely: %q", st)
	}
	crash := s.testcase(t, "TestCrash")
	if !strings.Contains(crash.FlakyFailures[0].StackTrace, "test process exit status 2 on gw2") {
		t.Errorf("TestCrash: the runner's note is lost: %+v", crash.FlakyFailures)
	}
	lost := s.testcase(t, "TestLost")
	if lost.Error != nil || len(lost.FlakyErrors) != 1 || lost.FlakyErrors[0].Message != "No test result found" {
		t.Errorf("TestLost: %+v", lost)
	}
	for _, c := range s.Cases {
		if c.Name == "Failure" {
			t.Errorf("the package failure is explained by failed attempts, yet reported as a package error")
		}
	}
}

func TestJUnitOrphanBuildFailure(t *testing.T) {
	var buf bytes.Buffer
	err := writeJUnit(&buf, []gotest.Event{
		{Action: gotest.ActionBuildOutput, ImportPath: "example.com/x [example.com/x.test]", Output: "# example.com/x [example.com/x.test]\n"},
		{Action: gotest.ActionBuildOutput, ImportPath: "example.com/x [example.com/x.test]", Output: "x/x_test.go:1:1: expected 'package', found 'EOF'\n"},
		{Action: gotest.ActionBuildFail, ImportPath: "example.com/x [example.com/x.test]"},
	}, JUnitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc := parseJUnit(t, buf.Bytes())
	c := doc.suite(t, "example.com/x").testcase(t, "[build failed]")
	if c.Error == nil || !strings.Contains(c.Error.Text, "expected 'package'") {
		t.Errorf("build failure: %+v", c)
	}
}

func TestJUnitEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := writeJUnit(&buf, nil, JUnitOptions{}); err != nil {
		t.Fatal(err)
	}
	if doc := parseJUnit(t, buf.Bytes()); len(doc.Suites) != 0 {
		t.Errorf("suites in an empty report: %+v", doc.Suites)
	}
}

// limitWriter fails once more than n bytes were written.
type limitWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errDiskFull
	}
	return len(p), nil
}

func TestJUnitWriteError(t *testing.T) {
	steps := loadScript(t, "load.jsonl")
	var events []gotest.Event
	for _, s := range steps {
		if s.Op == "" {
			events = append(events, s.event)
		}
	}
	for _, n := range []int{0, 10, 500} {
		if err := writeJUnit(&limitWriter{n: n}, events, JUnitOptions{}); !errors.Is(err, errDiskFull) {
			t.Errorf("writer failing after %d bytes: Write returned %v", n, err)
		}
	}
}

func TestXMLSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttext\r\n": "plain\ttext\r\n",
		"\x1b[31mred":     "\uFFFD[31mred",
		"nul\x00":         "nul\uFFFD",
		"bad \xff utf8":   "bad \uFFFD utf8",
		"ünï 日本 😀":        "ünï 日本 😀",
		"\uFFFE":          "\uFFFD",
	} {
		if got := xmlSafe(in); got != want {
			t.Errorf("xmlSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// fixturePackages are the fixture packages run through real go test -json.
var fixturePackages = []string{"pass", "fail", "skip", "skip/all", "subtests", "buildfail", "examples", "panic", "exit", "testmain", "notests"}

// goTestCounts is what a go test -json stream says of one package, counted the way a JUnit
// report must count it: each test (subtests too) once; a test with a run and no result
// is an error, as is a build failure and a package that failed with no failed test.
type goTestCounts struct{ Tests, Failures, Errors, Skipped int }

func countGoTest(events []gotest.Event) map[string]goTestCounts {
	type st struct{ result string }
	tests := map[string]map[string]*st{}
	pkgFailed := map[string]bool{}
	build := map[string]bool{}
	for _, e := range events {
		if e.Package == "" {
			continue
		}
		if tests[e.Package] == nil {
			tests[e.Package] = map[string]*st{}
		}
		if e.Test == "" {
			if e.Action == gotest.ActionFail {
				pkgFailed[e.Package] = true
				if e.FailedBuild != "" {
					build[e.Package] = true
				}
			}
			continue
		}
		s := tests[e.Package][e.Test]
		if s == nil {
			s = &st{}
			tests[e.Package][e.Test] = s
		}
		if gotest.IsTerminal(e.Action) {
			s.result = e.Action
		}
	}
	out := map[string]goTestCounts{}
	for pkg, ts := range tests {
		var c goTestCounts
		explained := false
		for _, s := range ts {
			c.Tests++
			switch s.result {
			case gotest.ActionFail:
				c.Failures++
				explained = true
			case gotest.ActionSkip:
				c.Skipped++
			case "":
				c.Errors++
				explained = true
			}
		}
		if build[pkg] {
			c.Tests++
			c.Errors++
		} else if pkgFailed[pkg] && !explained {
			c.Tests++
			c.Errors++
		}
		out[pkg] = c
	}
	return out
}

var goTestRun struct {
	once   sync.Once
	events []gotest.Event
	err    error
}

// goTestFixtures runs fixturePackages once with real go test -json (in ../fixtures) and
// returns its events.
func goTestFixtures(t *testing.T) []gotest.Event {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the fixture packages")
	}
	r := &goTestRun
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		args := []string{"test", "-json", "-timeout", "5s"}
		for _, p := range fixturePackages {
			args = append(args, "./"+p)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = filepath.Join("..", "fixtures")
		cmd.Env = append(cmd.Environ(), "GOWORK=off")
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			r.err = fmt.Errorf("go test: %v", err)
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e gotest.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				r.err = fmt.Errorf("go test -json line %q: %v", sc.Text(), err)
				return
			}
			r.events = append(r.events, e)
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.events
}

// TestJUnitMatchesGoTest runs the fixtures with real go test -json, feeds the stream to
// the collector, and checks that every package's counts and test names in the report are
// what go test reported.
func TestJUnitMatchesGoTest(t *testing.T) {
	events := goTestFixtures(t)

	var buf bytes.Buffer
	if err := writeJUnit(&buf, events, JUnitOptions{}); err != nil {
		t.Fatal(err)
	}
	doc := parseJUnit(t, buf.Bytes())
	want := countGoTest(events)
	const mod = "github.com/godist/godist/fixtures/"

	// What the fixtures README says go test reports, pinned so that both counts cannot
	// drift together.
	pinned := map[string]goTestCounts{
		"pass":      {Tests: 4},
		"fail":      {Tests: 8, Failures: 5},
		"skip":      {Tests: 7, Skipped: 4},
		"buildfail": {Tests: 1, Errors: 1},
		"examples":  {Tests: 5, Failures: 1},
		"panic":     {Tests: 2, Failures: 1},
		"exit":      {Tests: 2, Errors: 1},
		"notests":   {},
	}
	for p, c := range pinned {
		if got := want[mod+p]; got != c {
			t.Errorf("go test -json counts for %s: %+v, the fixtures README says %+v", p, got, c)
		}
	}

	seen := map[string]bool{}
	for _, s := range doc.Suites {
		seen[s.Name] = true
		got := goTestCounts{s.Tests, s.Failures, s.Errors, s.Skipped}
		if got != want[s.Name] {
			t.Errorf("%s: JUnit tests=%d failures=%d errors=%d skipped=%d, go test -json %+v", s.Name, got.Tests, got.Failures, got.Errors, got.Skipped, want[s.Name])
		}
		var names, wantNames []string
		for _, c := range s.Cases {
			if c.Classname != s.Name {
				t.Errorf("%s: testcase %s has classname %s", s.Name, c.Name, c.Classname)
			}
			if c.Name != "[build failed]" && c.Name != "Failure" {
				names = append(names, c.Name)
			}
		}
		for _, e := range events {
			if e.Package == s.Name && e.Test != "" && !contains(wantNames, e.Test) {
				wantNames = append(wantNames, e.Test)
			}
		}
		sort.Strings(names)
		sort.Strings(wantNames)
		if !reflect.DeepEqual(names, wantNames) && len(names)+len(wantNames) > 0 {
			t.Errorf("%s: testcases %v, go test ran %v", s.Name, names, wantNames)
		}
	}
	for pkg := range want {
		if !seen[pkg] {
			t.Errorf("no testsuite for %s", pkg)
		}
	}

	// A few texts that CI shows.
	fail := doc.suite(t, mod+"fail")
	if c := fail.testcase(t, "TestFatal"); c.Failure == nil || c.Failure.Message != "fail_test.go:22: fatal error" {
		t.Errorf("TestFatal: %+v", c.Failure)
	}
	if c := fail.testcase(t, "TestPrintAndFail"); c.Failure == nil || !strings.Contains(c.Failure.Text, "plain stdout line\nplain stderr line\nstdout without newline") || strings.Contains(c.Failure.Text, "--- FAIL") {
		t.Errorf("TestPrintAndFail: %+v", c.Failure)
	}
	if c := doc.suite(t, mod+"skip").testcase(t, "TestSkip"); c.Skipped == nil || c.Skipped.Message != "skipped with a reason" {
		t.Errorf("TestSkip: %+v", c.Skipped)
	}
	if c := doc.suite(t, mod+"panic").testcase(t, "TestPanic"); c.Failure == nil || !strings.HasPrefix(c.Failure.Message, "panic: boom") {
		t.Errorf("TestPanic: %+v", c.Failure)
	}
	if c := doc.suite(t, mod+"buildfail").testcase(t, "[build failed]"); c.Error == nil || !strings.Contains(c.Error.Text, "buildfail_test.go:6:14: cannot use") {
		t.Errorf("buildfail: %+v", c.Error)
	}
	if c := doc.suite(t, mod+"exit").testcase(t, "TestExit"); c.Error == nil || c.Error.Message != "No test result found" || !strings.Contains(c.Error.Text, "about to exit") {
		t.Errorf("TestExit: %+v", c.Error)
	}
	if s := doc.suite(t, mod+"testmain"); s.SystemOut == nil || !strings.Contains(*s.SystemOut, "TestMain") {
		t.Errorf("testmain: TestMain's prints are not the suite's system-out: %v", s.SystemOut)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestJUnitEachRerunSameWorker: in each mode a test's attempts are those on its worker;
// a rerun there makes it flaky on that worker only.
func TestJUnitEachRerunSameWorker(t *testing.T) {
	const pkg = "example.com/e"
	var events []gotest.Event
	add := func(w, action string, out ...string) {
		events = append(events, gotest.Event{Action: gotest.ActionRun, Package: pkg, Test: "TestX", Worker: w})
		for _, o := range out {
			events = append(events, gotest.Event{Action: gotest.ActionOutput, Package: pkg, Test: "TestX", Worker: w, Output: o})
		}
		events = append(events, gotest.Event{Action: action, Package: pkg, Test: "TestX", Worker: w})
	}
	add("gw1", gotest.ActionFail, "    x_test.go:3: port in use\n")
	add("gw2", gotest.ActionPass)
	add("gw1", gotest.ActionPass)
	var buf bytes.Buffer
	if err := writeJUnit(&buf, events, JUnitOptions{Each: true}); err != nil {
		t.Fatal(err)
	}
	doc := parseJUnit(t, buf.Bytes())
	gw1 := doc.suite(t, pkg+" [gw1]").testcase(t, "TestX [gw1]")
	if gw1.Failure != nil || len(gw1.FlakyFailures) != 1 || gw1.FlakyFailures[0].Message != "x_test.go:3: port in use" {
		t.Errorf("gw1: %+v", gw1)
	}
	gw2 := doc.suite(t, pkg+" [gw2]").testcase(t, "TestX [gw2]")
	if gw2.Failure != nil || len(gw2.FlakyFailures) != 0 || gw2.prop("attempts") != "" {
		t.Errorf("gw2: %+v", gw2)
	}
	if doc.Failures != 0 || doc.Tests != 2 {
		t.Errorf("totals: tests=%d failures=%d, want 2, 0", doc.Tests, doc.Failures)
	}
}

// TestJUnitConcurrentUse: events and writes from several goroutines (go test -race).
func TestJUnitConcurrentUse(t *testing.T) {
	c := NewJUnitCollector(JUnitOptions{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkg := "example.com/p" + strconv.Itoa(g)
			for i := range 50 {
				name := "Test" + strconv.Itoa(i)
				c.Event(gotest.Event{Action: gotest.ActionRun, Package: pkg, Test: name})
				c.Event(gotest.Event{Action: gotest.ActionPass, Package: pkg, Test: name})
				if i%10 == 0 {
					c.Write(io.Discard)
				}
			}
		}()
	}
	wg.Wait()
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if doc := parseJUnit(t, buf.Bytes()); doc.Tests != 200 {
		t.Errorf("%d tests, want 200", doc.Tests)
	}
}
