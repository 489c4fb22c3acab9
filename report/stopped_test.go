package report

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

// testdata/stopped.jsonl is a -x run as the runner writes it: TestFail fails on gw0; the
// stop then cuts TestSlow and its subtest short on gw1 (a gotest.StoppedPrefix line, then
// "fail", innermost first), and the packages end with the same line: example.com/stop
// with its test cut short, example.com/idle between tests.

const stopWhy = "-x stopped the run after 1 failed test"

// The Reporter counts a stopped test as not run, never as failed: not in the failures
// section, not unfinished, not a package error; its live line and its package's line say
// it was stopped.
func TestStoppedReporter(t *testing.T) {
	out, s := runPlain(t, "stopped.jsonl", Options{})
	golden(t, "stopped-plain.golden", []byte(out))
	want := Summary{Passed: 1, Failed: 1, NotRun: 2, Packages: 2, FailedPackages: 2, Elapsed: 1234 * time.Millisecond}
	if s != want {
		t.Errorf("summary\n got %+v\nwant %+v", s, want)
	}
	for _, line := range []string{
		"--- FAIL: TestFail (0.01s) example.com/stop [gw0]\n",
		"--- STOPPED: TestSlow/wait (0.50s) example.com/stop [gw1]\n",
		"--- STOPPED: TestSlow (0.60s) example.com/stop [gw1]\n",
		"FAIL\texample.com/stop\t0.700s [not run to the end: " + stopWhy + "]\n",
		"FAIL\texample.com/idle\t0.100s [not run to the end: " + stopWhy + "]\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "--- FAIL: TestSlow") {
		t.Errorf("a stopped test's live line says FAIL:\n%s", out)
	}
	_, sections, _ := strings.Cut(out, "\n=== Failed\n")
	for _, unwanted := range []string{"TestSlow", "(package)", "=== Not finished"} {
		if strings.Contains(sections, unwanted) {
			t.Errorf("the stopped test or package shows as a failure or unfinished (%q):\n%s", unwanted, out)
		}
	}

	// On a terminal too.
	var buf syncBuffer
	r := newReporter(t, Options{Out: &buf, TTY: true, Width: 120}) // wide enough for whole lines
	play(r, loadScript(t, "stopped.jsonl"), nil)
	if s := r.Close(time.Second); s.Failed != 1 || s.NotRun != 2 {
		t.Errorf("terminal summary %+v", s)
	}
	scr := screen(t, buf.String())
	for _, line := range []string{
		"FAIL example.com/stop.TestFail (0.01s) [gw0]\n",
		"STOP example.com/stop.TestSlow (0.60s) [gw1]\n",
		"FAIL example.com/idle 0.100s [not run to the end: " + stopWhy + "]\n",
	} {
		if !strings.Contains(scr, line) {
			t.Errorf("terminal lacks %q:\n%s", line, scr)
		}
	}
}

// JUnit shows a stopped test as what it is: a failure "not run to the end: why", never
// skipped or passed; a package stopped between tests gets such a failure of its own.
func TestJUnitStopped(t *testing.T) {
	data := junitOf(t, "stopped.jsonl", JUnitOptions{})
	golden(t, "junit-stopped.xml", data)
	doc := parseJUnit(t, data)
	if doc.Tests != 5 || doc.Failures != 4 || doc.Errors != 0 || doc.Skipped != 0 {
		t.Errorf("totals tests=%d failures=%d errors=%d skipped=%d, want 5 4 0 0", doc.Tests, doc.Failures, doc.Errors, doc.Skipped)
	}
	stop := doc.suite(t, "example.com/stop")
	if c := stop.testcase(t, "TestFail"); c.Failure == nil || c.Failure.Message != "stop_test.go:9: boom" {
		t.Errorf("TestFail: %+v", c.Failure)
	}
	for _, name := range []string{"TestSlow", "TestSlow/wait"} {
		c := stop.testcase(t, name)
		if c.Failure == nil || c.Failure.Message != "not run to the end: "+stopWhy || c.Skipped != nil || c.Error != nil {
			t.Errorf("%s: %+v", name, c)
		} else if !strings.Contains(c.Failure.Text, "stop_test.go:14: working") && name == "TestSlow" {
			t.Errorf("%s: its output is lost: %q", name, c.Failure.Text)
		}
	}
	for _, c := range stop.Cases {
		if c.Name == "Failure" {
			t.Errorf("example.com/stop: its stopped tests explain its failure, yet it has a package failure: %+v", c)
		}
	}
	idle := doc.suite(t, "example.com/idle")
	if c := idle.testcase(t, "Failure"); c.Failure == nil || c.Failure.Message != "not run to the end: "+stopWhy || c.Error != nil {
		t.Errorf("example.com/idle, stopped between tests: %+v", c)
	}
	if c := idle.testcase(t, "TestDone"); c.Failure != nil || c.Skipped != nil {
		t.Errorf("TestDone passed: %+v", c)
	}
}

// The annotator leaves stopped tests and packages alone: they did not fail at a line.
func TestGitHubStopped(t *testing.T) {
	dirs := map[string]string{"example.com/stop": "/repo/stop", "example.com/idle": "/repo/idle"}
	as, out := annotate(t, "stopped.jsonl", GitHubOptions{Workspace: "/repo", Dirs: dirs})
	want := []githubAnnotation{{Level: "error", File: "stop/stop_test.go", Line: 9, Title: "TestFail", Message: "stop_test.go:9: boom"}}
	if !reflect.DeepEqual(workflowFields(as), want) {
		t.Errorf("annotations:\n%s\nwant only TestFail's: %+v", out, want)
	}
}

// A stopped run is not a finished one: the slowest list leaves it out.
func TestSlowestStopped(t *testing.T) {
	var events []gotest.Event
	for _, s := range loadScript(t, "stopped.jsonl") {
		if s.Op == "" {
			events = append(events, s.event)
		}
	}
	got := slowest(events, 10)
	want := []SlowTest{
		{"example.com/idle", "TestDone", "gw0", 30 * time.Millisecond},
		{"example.com/stop", "TestFail", "gw0", 10 * time.Millisecond},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("slowest %v, want %v", got, want)
	}
}

// A test that failed, then was stopped on its rerun: the failure is real and counts once;
// the stopped attempt is not run. JUnit's failure is the stop, the first attempt a
// rerunFailure; the annotation points at the real failure.
func TestStoppedRerun(t *testing.T) {
	const pkg = "example.com/x"
	why := "the run was interrupted"
	events := []gotest.Event{
		{Action: gotest.ActionRun, Package: pkg, Test: "TestX", Worker: "gw0"},
		{Action: gotest.ActionOutput, Package: pkg, Test: "TestX", Worker: "gw0", Output: "    x_test.go:3: port in use\n"},
		{Action: gotest.ActionFail, Package: pkg, Test: "TestX", Worker: "gw0"},
		{Action: gotest.ActionRun, Package: pkg, Test: "TestX", Worker: "gw1"},
		{Action: gotest.ActionOutput, Package: pkg, Test: "TestX", Worker: "gw1", Output: gotest.StoppedPrefix + why + "\n"},
		{Action: gotest.ActionFail, Package: pkg, Test: "TestX", Worker: "gw1"},
		{Action: gotest.ActionOutput, Package: pkg, Worker: "gw1", Output: gotest.StoppedPrefix + why + "\n"},
		{Action: gotest.ActionFail, Package: pkg, Worker: "gw1"},
	}

	var out bytes.Buffer
	r := newReporter(t, Options{Out: &out})
	r.SetTotal(1)
	for _, e := range events {
		r.Event(e)
	}
	if s := r.Close(0); s.Failed != 1 || s.NotRun != 0 || s.PackageErrors != 0 || s.Flaky != 0 {
		t.Errorf("summary %+v: want the one real failure, TestX counted once, no package error", s)
	}
	if !strings.Contains(out.String(), "=== FAIL: example.com/x TestX (0.00s) [gw0]\n    x_test.go:3: port in use\n") ||
		strings.Contains(out.String(), "TestX (0.00s) [gw1]") {
		t.Errorf("failures section:\n%s", out.String())
	}

	var buf bytes.Buffer
	if err := writeJUnit(&buf, events, JUnitOptions{}); err != nil {
		t.Fatal(err)
	}
	c := parseJUnit(t, buf.Bytes()).suite(t, pkg).testcase(t, "TestX")
	if c.Failure == nil || c.Failure.Message != "not run to the end: "+why || len(c.RerunFailures) != 1 ||
		c.RerunFailures[0].Message != "x_test.go:3: port in use" || len(c.FlakyFailures) != 0 {
		t.Errorf("TestX: %+v", c)
	}

	as := annotationsOf(GitHubOptions{Workspace: "/ws", Dirs: map[string]string{pkg: "/ws/x"}}, events)
	if len(as) != 1 || as[0].Level != "error" || as[0].File != "x/x_test.go" || as[0].Line != 3 || as[0].Message != "x_test.go:3: port in use" {
		t.Errorf("annotations %+v: want one error at the real failure", as)
	}
}

// A subtest cut short on the rerun does not hide its parent's real failure on the first
// attempt from the annotator, and JUnit still says the rerun was stopped.
func TestStoppedRerunSubtest(t *testing.T) {
	const pkg = "example.com/x"
	stop := gotest.StoppedPrefix + "the run was interrupted\n"
	events := []gotest.Event{
		{Action: gotest.ActionRun, Package: pkg, Test: "TestA", Worker: "gw0"},
		{Action: gotest.ActionOutput, Package: pkg, Test: "TestA", Worker: "gw0", Output: "    a_test.go:5: setup failed\n"},
		{Action: gotest.ActionFail, Package: pkg, Test: "TestA", Worker: "gw0"},
		{Action: gotest.ActionRun, Package: pkg, Test: "TestA", Worker: "gw1"},
		{Action: gotest.ActionRun, Package: pkg, Test: "TestA/y", Worker: "gw1"},
		{Action: gotest.ActionOutput, Package: pkg, Test: "TestA/y", Worker: "gw1", Output: stop},
		{Action: gotest.ActionFail, Package: pkg, Test: "TestA/y", Worker: "gw1"},
		{Action: gotest.ActionOutput, Package: pkg, Test: "TestA", Worker: "gw1", Output: stop},
		{Action: gotest.ActionFail, Package: pkg, Test: "TestA", Worker: "gw1"},
	}
	as := annotationsOf(GitHubOptions{Workspace: "/ws", Dirs: map[string]string{pkg: "/ws/x"}}, events)
	if len(as) != 1 || as[0].Title != "TestA" || as[0].File != "x/a_test.go" || as[0].Line != 5 {
		t.Errorf("annotations %+v: want one error at TestA's real failure", as)
	}
	var buf bytes.Buffer
	if err := writeJUnit(&buf, events, JUnitOptions{}); err != nil {
		t.Fatal(err)
	}
	s := parseJUnit(t, buf.Bytes()).suite(t, pkg)
	if c := s.testcase(t, "TestA"); c.Failure == nil || c.Failure.Message != "not run to the end: the run was interrupted" ||
		len(c.RerunFailures) != 1 || c.RerunFailures[0].Message != "a_test.go:5: setup failed" {
		t.Errorf("TestA: %+v", c)
	}
	if c := s.testcase(t, "TestA/y"); c.Failure == nil || c.Failure.Message != "not run to the end: the run was interrupted" {
		t.Errorf("TestA/y: %+v", c)
	}
}

// workflowFields are the annotations with only what their workflow commands carry.
func workflowFields(as []githubAnnotation) []githubAnnotation {
	out := make([]githubAnnotation, len(as))
	for i, a := range as {
		out[i] = githubAnnotation{Level: a.Level, File: a.File, Line: a.Line, Col: a.Col, Title: a.Title, Message: a.Message}
	}
	return out
}
