package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

// out is one output line of a test binary run with -test.v=test2json, as the runner
// passes it on: its worker, package and test ("" for the package's own).
type out struct{ worker, pkg, test, text string }

// playVerbose feeds the lines to a verbose Reporter; a line "ok" or "FAIL" with no test
// is the package's result (for its worker). It returns what the Reporter printed before
// its failures section.
func playVerbose(t *testing.T, each bool, lines []out) string {
	t.Helper()
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf, Verbose: true, Each: each, Now: fixedClock()})
	zero := 0.0
	for _, l := range lines {
		e := gotest.Event{Package: l.pkg, Test: l.test, Worker: l.worker}
		switch {
		case l.test == "" && l.text == "ok":
			e.Action, e.Elapsed = gotest.ActionPass, &zero
		case l.test == "" && l.text == "FAIL\t":
			e.Action, e.Elapsed = gotest.ActionFail, &zero
		default:
			e.Action, e.Output = gotest.ActionOutput, l.text+"\n"
		}
		r.Event(e)
	}
	r.Close(0)
	got, _, _ := strings.Cut(buf.String(), "\n=== Failed\n")
	got, _, _ = strings.Cut(got, "\n0 passed")
	return got
}

// The result lines of subtests, which a test binary in test2json mode prints as each
// subtest ends, come after their top-level test's, nested as go test -v nests them. The
// lines and the expected text are those of go test -json and go test -v (Go 1.26) on
//
//	func TestA(t *testing.T) {
//		t.Log("before")
//		t.Run("s1", func(t *testing.T) { t.Log("in s1"); t.Run("x/y", func(t *testing.T) { t.Log("xy") }) })
//		t.Log("between")
//		t.Run("s2", func(t *testing.T) { t.Error("bad") })
//		t.Log("after")
//	}
func TestVerboseNestsSubtestsAsGoTest(t *testing.T) {
	const p = "vt"
	got := playVerbose(t, false, []out{
		{"gw0", p, "TestA", "=== RUN   TestA"},
		{"gw0", p, "TestA", "    a_test.go:6: before"},
		{"gw0", p, "TestA/s1", "=== RUN   TestA/s1"},
		{"gw0", p, "TestA/s1", "    a_test.go:7: in s1"},
		{"gw0", p, "TestA/s1/x/y", "=== RUN   TestA/s1/x/y"},
		{"gw0", p, "TestA/s1/x/y", "    a_test.go:7: xy"},
		{"gw0", p, "TestA/s1/x/y", "--- PASS: TestA/s1/x/y (0.00s)"},
		{"gw0", p, "TestA/s1", "--- PASS: TestA/s1 (0.00s)"},
		{"gw0", p, "TestA", "    a_test.go:8: between"},
		{"gw0", p, "TestA/s2", "=== RUN   TestA/s2"},
		{"gw0", p, "TestA/s2", "    a_test.go:9: bad"},
		{"gw0", p, "TestA/s2", "--- FAIL: TestA/s2 (0.00s)"},
		{"gw0", p, "TestA", "    a_test.go:10: after"},
		{"gw0", p, "TestA", "--- FAIL: TestA (0.00s)"},
		{"gw0", p, "", "FAIL"},
		{"gw0", p, "", "FAIL\t"},
	})
	want := `=== RUN   TestA
    a_test.go:6: before
=== RUN   TestA/s1
    a_test.go:7: in s1
=== RUN   TestA/s1/x/y
    a_test.go:7: xy
=== NAME  TestA
    a_test.go:8: between
=== RUN   TestA/s2
    a_test.go:9: bad
=== NAME  TestA
    a_test.go:10: after
--- FAIL: TestA (0.00s)
    --- PASS: TestA/s1 (0.00s)
        --- PASS: TestA/s1/x/y (0.00s)
    --- FAIL: TestA/s2 (0.00s)
FAIL
FAIL	vt	0.000s
`
	if got != want {
		t.Errorf("got\n%s\nwant (go test -v's)\n%s", got, want)
	}
}

// A package split over two workers, its output interleaved with another package's, is
// printed together: one process's lines, then the other's, then its result line; the
// other package's lines wait for it.
func TestVerboseKeepsAPackageTogether(t *testing.T) {
	got := playVerbose(t, false, []out{
		{"gw0", "p", "TestP1", "=== RUN   TestP1"},
		{"gw1", "p", "TestP2", "=== RUN   TestP2"},
		{"gw0", "p", "TestP1", "    p1 says"},
		{"gw1", "p", "TestP2", "    p2 says"},
		{"gw1", "p", "TestP2", "--- PASS: TestP2 (0.00s)"},
		{"gw1", "q", "TestQ", "=== RUN   TestQ"},
		{"gw0", "p", "TestP1", "--- PASS: TestP1 (0.00s)"},
		{"gw1", "q", "TestQ", "    q says"},
		{"gw0", "p", "TestP3", "=== RUN   TestP3"},
		{"gw0", "p", "TestP3", "--- PASS: TestP3 (0.00s)"},
		{"gw1", "q", "TestQ", "--- PASS: TestQ (0.00s)"},
		{"gw0", "p", "", "PASS"},
		{"gw1", "q", "", "PASS"},
		{"gw0", "p", "", "ok"},
		{"gw1", "q", "", "ok"},
	})
	want := `=== RUN   TestP1
    p1 says
--- PASS: TestP1 (0.00s)
=== RUN   TestP3
--- PASS: TestP3 (0.00s)
=== RUN   TestP2
    p2 says
--- PASS: TestP2 (0.00s)
PASS
ok  	p	0.000s
=== RUN   TestQ
    q says
--- PASS: TestQ (0.00s)
PASS
ok  	q	0.000s
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// The package that waited becomes live once the one printed ends: what it holds comes
// out at once, and what follows as it comes.
func TestVerboseNextPackageGoesLive(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf, Verbose: true, Now: fixedClock()})
	ev := func(worker, pkg, test, text string) {
		r.Event(gotest.Event{Action: gotest.ActionOutput, Package: pkg, Test: test, Worker: worker, Output: text + "\n"})
	}
	zero := 0.0
	ev("gw0", "p", "TestP", "=== RUN   TestP")
	ev("gw1", "q", "TestQ", "=== RUN   TestQ")
	if strings.Contains(buf.String(), "TestQ") {
		t.Fatalf("q's line was printed while p's run was being printed:\n%s", buf.String())
	}
	ev("gw0", "p", "TestP", "--- PASS: TestP (0.00s)")
	r.Event(gotest.Event{Action: gotest.ActionPass, Package: "p", Worker: "gw0", Elapsed: &zero})
	if !strings.HasSuffix(buf.String(), "ok  \tp\t0.000s\n=== RUN   TestQ\n") {
		t.Fatalf("q's held line did not follow p's result:\n%s", buf.String())
	}
	ev("gw1", "q", "TestQ", "    now")
	if !strings.HasSuffix(buf.String(), "=== RUN   TestQ\n    now\n") {
		t.Fatalf("q's next line is not printed as it comes:\n%s", buf.String())
	}
	r.Close(time.Second)
}

// Subtests' result lines of a test that never reported its own (its process died) are
// printed at the package's end, nested, not lost.
func TestVerboseSubtestsOfAnUnfinishedTest(t *testing.T) {
	got := playVerbose(t, false, []out{
		{"gw0", "p", "TestA", "=== RUN   TestA"},
		{"gw0", "p", "TestA/s", "=== RUN   TestA/s"},
		{"gw0", "p", "TestA/s/t", "=== RUN   TestA/s/t"},
		{"gw0", "p", "TestA/s/t", "--- PASS: TestA/s/t (0.00s)"},
		{"gw0", "p", "TestA/s", "--- PASS: TestA/s (0.00s)"},
		{"gw0", "p", "", "FAIL"},
		{"gw0", "p", "", "FAIL\t"},
	})
	want := `=== RUN   TestA
=== RUN   TestA/s
=== RUN   TestA/s/t
    --- PASS: TestA/s (0.00s)
        --- PASS: TestA/s/t (0.00s)
FAIL
FAIL	p	0.000s
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// In each mode every worker's run of a package is a package run of its own: its output
// together, up to its result line; a run that ends while another is printed waits for it.
func TestVerboseEachModeRunsApart(t *testing.T) {
	got := playVerbose(t, true, []out{
		{"gw0", "p", "TestA", "=== RUN   TestA"},
		{"gw1", "p", "TestA", "=== RUN   TestA"},
		{"gw1", "p", "TestA", "--- PASS: TestA (0.00s)"},
		{"gw1", "p", "", "PASS"},
		{"gw1", "p", "", "ok"},
		{"gw0", "p", "TestA", "--- PASS: TestA (0.00s)"},
		{"gw0", "p", "", "PASS"},
		{"gw0", "p", "", "ok"},
	})
	want := `=== RUN   TestA
--- PASS: TestA (0.00s)
PASS
ok  	p	0.000s [gw0]
=== RUN   TestA
--- PASS: TestA (0.00s)
PASS
ok  	p	0.000s [gw1]
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
