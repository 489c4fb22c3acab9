package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

// The testdata/lost-*.jsonl scripts are runs as the runner writes them when a gateway is
// lost (issue 10): gw0's batch of example.com/lost passes TestB, then is running TestA and
// its subtest TestA/sub when gw0 is lost. The runner writes no end for what gw0 was
// running (the tests' fate there is unknown), notes "godist: gateway gw0 lost: ...", and
// sets gw0's state to lost.
//
//   - lost-load.jsonl (load mode): TestA goes back to the queue; gw1 runs it, and it
//     passes; the package's end (written once, by gw1) is ok.
//   - lost-load-fail.jsonl: the same, but TestA fails on gw1 (its subtest passes).
//   - lost-each.jsonl (each mode): gw0 is not restarted, so it is abandoned: its scope of
//     the package ends FAIL with a line saying how many tests did not run there; gw1
//     runs both tests, which pass.

// In load mode a test whose gateway was lost and that then passed on another is passed:
// not unfinished, not "not run", and the package is ok.
func TestLostGatewayLoadRerunPasses(t *testing.T) {
	out, s := runPlain(t, "lost-load.jsonl", Options{})
	golden(t, "lost-load-plain.golden", []byte(out))
	want := Summary{Passed: 3, Packages: 1, Elapsed: 1234 * time.Millisecond}
	if s != want {
		t.Errorf("summary\n got %+v\nwant %+v", s, want)
	}
	if !strings.HasSuffix(out, "\n\n3 passed, 0 failed, 0 skipped in 1.23s\n") {
		t.Errorf("summary line: want 3 passed and nothing not run:\n%s", out)
	}
	for _, unwanted := range []string{"=== Not finished", "NO RESULT", "not run", "=== Failed", "FAIL"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output holds %q:\n%s", unwanted, out)
		}
	}
	for _, line := range []string{
		"godist: gateway gw0 lost: channel: connection reset by peer\n",
		"ok  \texample.com/lost\t0.400s\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}

	// On a terminal too.
	var buf syncBuffer
	r := newReporter(t, Options{Out: &buf, TTY: true, Now: fixedClock()})
	play(r, loadScript(t, "lost-load.jsonl"), nil)
	if s := r.Close(time.Second); s.NotRun != 0 || s.Failed != 0 || s.Passed != 3 {
		t.Errorf("terminal summary %+v", s)
	}
	if scr := screen(t, buf.String()); strings.Contains(scr, "NO RESULT") || strings.Contains(scr, "not run") {
		t.Errorf("terminal shows the lost run as not finished:\n%s", scr)
	}
}

// JUnit: the test is what its run on gw1 came to (passed, worker gw1); the lost run is a
// flakyError, as TestLost of junit-rerun.jsonl is, and no testcase is an error.
func TestLostGatewayLoadRerunPassesJUnit(t *testing.T) {
	data := junitOf(t, "lost-load.jsonl", JUnitOptions{})
	golden(t, "junit-lost-load.xml", data)
	doc := parseJUnit(t, data)
	if doc.Tests != 3 || doc.Failures != 0 || doc.Errors != 0 || doc.Skipped != 0 {
		t.Errorf("totals tests=%d failures=%d errors=%d skipped=%d, want 3 0 0 0", doc.Tests, doc.Failures, doc.Errors, doc.Skipped)
	}
	s := doc.suite(t, "example.com/lost")
	for _, name := range []string{"TestA", "TestA/sub"} {
		c := s.testcase(t, name)
		if c.Failure != nil || c.Error != nil || c.Skipped != nil || c.prop("worker") != "gw1" ||
			len(c.FlakyErrors) != 1 || len(c.FlakyFailures) != 0 || len(c.RerunErrors) != 0 {
			t.Errorf("%s: want passed on gw1, the lost run a flakyError: %+v", name, c)
		}
	}
	if c := s.testcase(t, "TestA"); c.prop("attempts") != "no result on gw0 (0.000s), pass on gw1 (0.200s)" {
		t.Errorf("TestA attempts property %q", c.prop("attempts"))
	}
	for _, c := range s.Cases {
		if c.Name == "Failure" {
			t.Errorf("a package failure in a package that passed: %+v", c)
		}
	}
}

// In load mode a test whose gateway was lost and that then failed on another fails once:
// one failure in the summary and the failures section (gw1's), nothing unfinished or not
// run, no package error; in JUnit one failed testcase, the lost run a rerunError.
func TestLostGatewayLoadRerunFails(t *testing.T) {
	out, s := runPlain(t, "lost-load-fail.jsonl", Options{})
	golden(t, "lost-load-fail-plain.golden", []byte(out))
	want := Summary{Passed: 2, Failed: 1, Packages: 1, FailedPackages: 1, Elapsed: 1234 * time.Millisecond}
	if s != want {
		t.Errorf("summary\n got %+v\nwant %+v", s, want)
	}
	if !strings.HasSuffix(out, "\n\n2 passed, 1 failed, 0 skipped in 1.23s\n") {
		t.Errorf("summary line:\n%s", out)
	}
	_, sections, _ := strings.Cut(out, "\n=== Failed\n")
	if n := strings.Count(sections, "=== FAIL: "); n != 1 ||
		!strings.Contains(sections, "=== FAIL: example.com/lost TestA (0.20s) [gw1]\n") ||
		!strings.Contains(sections, "a_test.go:20: after sub: got 3, want 2\n") {
		t.Errorf("failures section: want TestA's one failure, on gw1 (%d entries):\n%s", n, out)
	}
	for _, unwanted := range []string{"=== Not finished", "NO RESULT", "not run", "(package)", "[gw0]"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output holds %q:\n%s", unwanted, out)
		}
	}
	if n := strings.Count(out, "--- FAIL: TestA "); n != 1 {
		t.Errorf("%d live FAIL lines for TestA, want 1:\n%s", n, out)
	}

	data := junitOf(t, "lost-load-fail.jsonl", JUnitOptions{})
	golden(t, "junit-lost-load-fail.xml", data)
	doc := parseJUnit(t, data)
	if doc.Tests != 3 || doc.Failures != 1 || doc.Errors != 0 {
		t.Errorf("totals tests=%d failures=%d errors=%d, want 3 1 0", doc.Tests, doc.Failures, doc.Errors)
	}
	ts := doc.suite(t, "example.com/lost")
	c := ts.testcase(t, "TestA")
	if c.Failure == nil || c.Failure.Message != "a_test.go:20: after sub: got 3, want 2" || c.Error != nil ||
		c.prop("worker") != "gw1" || len(c.RerunErrors) != 1 || len(c.RerunFailures) != 0 || len(c.FlakyErrors) != 0 {
		t.Errorf("TestA: want one failure, on gw1, the lost run a rerunError: %+v", c)
	}
	if sub := ts.testcase(t, "TestA/sub"); sub.Failure != nil || sub.Error != nil {
		t.Errorf("TestA/sub passed on gw1: %+v", sub)
	}
	for _, c := range ts.Cases {
		if c.Name == "Failure" {
			t.Errorf("TestA's failure explains the package's, yet it has a package failure: %+v", c)
		}
	}
}

// In each mode every worker runs every test: TestA did not run on the lost gw0, so there
// it is unfinished and not run, though it passed on gw1.
func TestLostGatewayEach(t *testing.T) {
	out, s := runPlain(t, "lost-each.jsonl", Options{Each: true})
	golden(t, "lost-each-plain.golden", []byte(out))
	if s.Passed != 4 || s.Failed != 0 || s.NotRun != 1 || s.Packages != 1 || s.FailedPackages != 1 {
		t.Errorf("summary %+v: want TestB on both workers and TestA on gw1 passed, TestA on gw0 not run", s)
	}
	if !strings.Contains(out, "\n=== Not finished\n=== NO RESULT: example.com/lost TestA [gw0]\n    a_test.go:12: waiting on gw0\n") {
		t.Errorf("TestA on gw0 is not listed as unfinished:\n%s", out)
	}
	if strings.Contains(out, "TestA [gw1]") {
		t.Errorf("TestA on gw1 passed, yet is listed:\n%s", out)
	}
	if !strings.Contains(out, "\n4 passed, 0 failed, 0 skipped in 1.23s, 1 not run") {
		t.Errorf("summary line:\n%s", out)
	}

	data := junitOf(t, "lost-each.jsonl", JUnitOptions{Each: true})
	golden(t, "junit-lost-each.xml", data)
	doc := parseJUnit(t, data)
	gw0 := doc.suite(t, "example.com/lost [gw0]")
	for _, name := range []string{"TestA [gw0]", "TestA/sub [gw0]"} {
		if c := gw0.testcase(t, name); c.Error == nil || c.Error.Message != "No test result found" {
			t.Errorf("%s: want no result: %+v", name, c)
		}
	}
	gw1 := doc.suite(t, "example.com/lost [gw1]")
	for _, name := range []string{"TestA [gw1]", "TestA/sub [gw1]", "TestB [gw1]"} {
		if c := gw1.testcase(t, name); c.Error != nil || c.Failure != nil || len(c.FlakyErrors) != 0 || c.prop("attempts") != "" {
			t.Errorf("%s: want one passing run: %+v", name, c)
		}
	}
}

// lostEvents runs TestA on each of workers in turn: every one but the last is lost
// running it (its Note is the runner's); the last ends it with action, or leaves it
// unfinished too if action is "".
func lostEvents(r *Reporter, action string, workers ...string) {
	const pkg = "example.com/lost"
	for i, w := range workers {
		r.Event(gotest.Event{Action: gotest.ActionRun, Package: pkg, Test: "TestA", Worker: w})
		r.Event(gotest.Event{Action: gotest.ActionOutput, Package: pkg, Test: "TestA", Worker: w, Output: "=== RUN   TestA\n"})
		r.Event(gotest.Event{Action: gotest.ActionOutput, Package: pkg, Test: "TestA", Worker: w, Output: "    a_test.go:7: working on " + w + "\n"})
		if i < len(workers)-1 || action == "" {
			r.Note("godist: gateway " + w + " lost: EOF")
			r.WorkerState(w, "lost")
			continue
		}
		r.Event(gotest.Event{Action: action, Package: pkg, Test: "TestA", Worker: w})
		r.Event(gotest.Event{Action: action, Package: pkg, Worker: w})
	}
}

// Lost twice, then passed on a third gateway: nothing unfinished. Lost on two gateways
// and never finished: both runs are listed, and the test is one not run.
func TestLostGatewayTwice(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf})
	r.SetTotal(1)
	lostEvents(r, gotest.ActionPass, "gw0", "gw1", "gw2")
	if s := r.Close(time.Second); s.Passed != 1 || s.NotRun != 0 || s.Failed != 0 {
		t.Errorf("summary %+v: want TestA passed, nothing not run", s)
	}
	if out := buf.String(); strings.Contains(out, "NO RESULT") || !strings.HasSuffix(out, "\n1 passed, 0 failed, 0 skipped in 1.00s\n") {
		t.Errorf("output:\n%s", out)
	}

	for _, total := range []int{0, 1} {
		buf.Reset()
		r = newReporter(t, Options{Out: &buf})
		r.SetTotal(total)
		lostEvents(r, "", "gw0", "gw1")
		if s := r.Close(time.Second); s.NotRun != 1 {
			t.Errorf("total %d: NotRun %d, want 1 (one test, unfinished on two gateways)", total, s.NotRun)
		}
		out := buf.String()
		if !strings.Contains(out, "=== NO RESULT: example.com/lost TestA [gw0]\n    a_test.go:7: working on gw0\n\n=== NO RESULT: example.com/lost TestA [gw1]\n    a_test.go:7: working on gw1\n") ||
			!strings.HasSuffix(out, "\n0 passed, 0 failed, 0 skipped in 1.00s, 1 not run\n") {
			t.Errorf("total %d: output:\n%s", total, out)
		}
	}
}

// A later result supersedes only runs that started before it: a run of the test that
// starts after its result, and is lost, is unfinished (and with -count or reruns, the
// run before it has its own result).
func TestLostGatewayAfterResult(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf})
	const pkg = "p"
	for _, e := range []gotest.Event{
		{Action: gotest.ActionRun, Package: pkg, Test: "TestA", Worker: "gw1"},
		{Action: gotest.ActionFail, Package: pkg, Test: "TestA", Worker: "gw1"},
		{Action: gotest.ActionRun, Package: pkg, Test: "TestA", Worker: "gw0"},
	} {
		r.Event(e)
	}
	r.Note("godist: gateway gw0 lost: EOF")
	r.Event(gotest.Event{Action: gotest.ActionFail, Package: pkg, Worker: "gw1"})
	if s := r.Close(time.Second); s.Failed != 1 || s.NotRun != 1 {
		t.Errorf("summary %+v: want TestA's failure, and its rerun on gw0 not run", s)
	}
	if !strings.Contains(buf.String(), "=== NO RESULT: p TestA [gw0]\n") {
		t.Errorf("the rerun lost on gw0 is not listed:\n%s", buf.String())
	}
}

// junit-rerun.jsonl's TestLost (no result on gw1, then passed on gw2) is, for the
// Reporter too, a test that passed: not unfinished, not flaky.
func TestLostGatewayRerunScript(t *testing.T) {
	out, s := runPlain(t, "junit-rerun.jsonl", Options{})
	if s.NotRun != 0 || strings.Contains(out, "NO RESULT") || strings.Contains(out, "TestLost") {
		t.Errorf("TestLost is shown as not run (summary %+v):\n%s", s, out)
	}
}
