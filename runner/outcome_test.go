package runner

import (
	"reflect"
	"testing"

	"github.com/godist/godist/scheduler"
	"github.com/godist/godist/xspec"
)

// st builds test states from "name=state" pairs, in order.
func st(pairs ...string) map[string]*testState {
	m := map[string]*testState{}
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i]] = &testState{state: pairs[i+1], order: i / 2}
	}
	return m
}

func TestJudge(t *testing.T) {
	batch := scheduler.Batch{Package: "p", Tests: []string{"TestA", "TestB", "TestC"}}
	for _, c := range []struct {
		name   string
		b      scheduler.Batch
		end    processEnd
		states map[string]*testState
		rerun  bool
		want   verdict
	}{
		{"all passed", batch, processEnd{ExitOK: true, Completed: true},
			st("TestA", "pass", "TestB", "pass", "TestC", "skip"), false, verdict{}},
		{"a test failed", batch, processEnd{Completed: true},
			st("TestA", "pass", "TestB", "fail", "TestC", "pass"), false, verdict{FinalFails: 1, Failed: true}},
		{"a failed test runs again", batch, processEnd{Completed: true},
			st("TestA", "pass", "TestB", "fail", "TestB/x", "fail", "TestB/y", "pass", "TestC", "pass"), true,
			verdict{Reruns: []scheduler.Batch{{Package: "p", Tests: []string{"TestB"}, Run: "^TestB$/^x$", Attempt: 1, Avoid: "gw0"}}}},
		{"exit 0 with a nested RunTests failure: the package is ok", batch, processEnd{ExitOK: true, Completed: true},
			st("TestA", "pass", "TestInner", "fail", "TestB", "pass", "TestC", "pass"), true, verdict{}},
		{"exit 1 with an inner failure only counts the batch's own tests", batch, processEnd{Completed: true},
			st("TestA", "pass", "TestInner", "fail", "TestB", "fail", "TestC", "pass"), false, verdict{FinalFails: 1, Failed: true}},
		{"TestMain failed: no test failed, the package did", batch, processEnd{Completed: true},
			st("TestA", "pass", "TestB", "pass", "TestC", "pass"), false, verdict{Failed: true}},
		{"a crash: the running test fails, the rest run again", batch, processEnd{},
			st("TestA", "pass", "TestB", "run"), false,
			verdict{Crashed: []string{"TestB"}, Retry: []string{"TestC"}, FinalFails: 1, Failed: true}},
		{"a crash in a subtest fails it and its parent, innermost first", batch, processEnd{},
			st("TestA", "run", "TestA/sub", "run", "TestB", "pause"), false,
			verdict{Crashed: []string{"TestA/sub", "TestA"}, Retry: []string{"TestB", "TestC"}, FinalFails: 1, Failed: true}},
		{"a crash before any test: nothing to retry, the package failed", batch, processEnd{},
			st(), false, verdict{Failed: true}},
		{"benchmarks end without a result: they passed", scheduler.Batch{Package: "p", Bench: true}, processEnd{ExitOK: true, Completed: true},
			st("BenchmarkX", "run", "BenchmarkY", "run", "BenchmarkY/sub", "run"), true,
			verdict{Passed: []string{"BenchmarkY/sub", "BenchmarkX", "BenchmarkY"}}},
		{"a failed benchmark is not re-run", scheduler.Batch{Package: "p", Bench: true}, processEnd{Completed: true},
			st("BenchmarkX", "fail"), true, verdict{FinalFails: 1, Failed: true}},
		{"-failfast: the process chose to stop, nothing is retried", batch, processEnd{Completed: true},
			st("TestA", "fail"), false, verdict{FinalFails: 1, Failed: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := judge(c.b, c.end, c.states, c.rerun, "gw0")
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("judge:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestRestartPolicy(t *testing.T) {
	p := restartPolicy{maxRestarts: 3}
	popen := mustSpec(t, "popen")
	ssh := mustSpec(t, "ssh=example")
	via := mustSpec(t, "popen//via=gw0")
	for _, c := range []struct {
		name     string
		spec     any
		restarts int
		over     bool
		want     bool
	}{
		{"local worker", popen, 0, false, true},
		{"local worker, restarted enough", popen, 3, false, false},
		{"run over", popen, 0, true, false},
		{"remote", ssh, 0, false, false},
		{"via a hop", via, 0, false, false},
	} {
		if got := p.restart(specOf(c.spec), c.restarts, c.over); got != c.want {
			t.Errorf("%s: restart = %v, want %v", c.name, got, c.want)
		}
	}
}

func mustSpec(t *testing.T, s string) *xspec.Spec {
	t.Helper()
	sp, err := xspec.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func specOf(v any) *xspec.Spec { return v.(*xspec.Spec) }
