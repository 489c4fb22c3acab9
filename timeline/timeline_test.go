package timeline

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The Recorder gives each process the top-level test runs its worker streamed for its
// package, and says how each ended.
func TestRecorderRuns(t *testing.T) {
	s := newSynth("gw0", "gw1")
	s.state(0, "gw0", "ready")
	s.test("gw0", "ex/a", "TestPass", 10, 20, "pass")
	s.test("gw0", "ex/a", "TestPass/sub", 11, 12, "fail") // a subtest: its parent's
	// A parallel test: paused at once, running from its cont.
	s.event(21, "gw0", "ex/a", "TestPar", "run", "")
	s.event(21, "gw0", "ex/a", "TestPar", "pause", "")
	s.event(30, "gw0", "ex/a", "TestPar", "cont", "")
	s.event(40, "gw0", "ex/a", "TestPar", "skip", "")
	// -count 2: the same test twice in one process.
	s.test("gw0", "ex/a", "TestTwice", 41, 42, "pass")
	s.test("gw0", "ex/a", "TestTwice", 43, 44, "fail")
	// Cut short by the run's stop: it ends fail after godist's line.
	s.event(45, "gw0", "ex/a", "TestStopped", "run", "")
	s.event(46, "gw0", "ex/a", "TestStopped", "output", gotest.StoppedPrefix+"-x stopped the run\n")
	s.event(46, "gw0", "ex/a", "TestStopped", "fail", "")
	// Still running when its process ended.
	s.event(47, "gw0", "ex/a", "TestRunning", "run", "")
	// Another package on another worker at the same time is not this process's.
	s.test("gw1", "ex/a", "TestElsewhere", 15, 16, "pass")
	// A terminal action without a run (the ledger drops those; so does the Recorder).
	s.event(48, "gw0", "ex/a", "TestNever", "pass", "")
	s.proc("gw0", "ex/a", 5, 50, "signal: killed", "TestPass", "TestPar", "TestTwice", "TestStopped", "TestRunning")
	// A package from the result cache: replayed, not run.
	s.test("gw0", "ex/cached", "TestOld", 60, 60, "pass")
	s.event(60, "gw0", "ex/cached", "", "output", "ok  \tex/cached\t(cached)\n")
	s.proc("gw1", "ex/a", 14, 17, "ok", "TestElsewhere")

	run := s.rec.Snapshot()
	if len(run.Lanes) != 2 || run.Lanes[0].ID != "gw0" || run.Lanes[1].ID != "gw1" {
		t.Fatalf("lanes %+v, want gw0 and gw1", run.Lanes)
	}
	if run.Cached != 1 {
		t.Errorf("cached %d, want 1", run.Cached)
	}
	procs := run.Lanes[0].Procs
	if len(procs) != 1 {
		t.Fatalf("gw0 has %d processes, want 1", len(procs))
	}
	type got struct {
		name, outcome string
		from, to      float64
	}
	want := []got{
		{"TestPass", Pass, 10, 20}, {"TestPar", Skip, 30, 40}, {"TestTwice", Pass, 41, 42}, {"TestTwice", Fail, 43, 44},
		{"TestStopped", Cut, 45, 46}, {"TestRunning", Cut, 47, 50},
	}
	runs := procs[0].Runs
	if len(runs) != len(want) {
		t.Fatalf("runs %d, want %d: %+v", len(runs), len(want), runs)
	}
	for i, w := range want {
		r := runs[i]
		if r.Name != w.name || r.Outcome != w.outcome || !r.Start.Equal(at(w.from)) || !r.End.Equal(at(w.to)) {
			t.Errorf("run %d: %s %s %v..%v, want %+v", i, r.Name, r.Outcome, r.Start.Sub(t0), r.End.Sub(t0), w)
		}
	}
	if other := run.Lanes[1].Procs; len(other) != 1 || len(other[0].Runs) != 1 || other[0].Runs[0].Name != "TestElsewhere" {
		t.Errorf("gw1's process: %+v", other)
	}
	if !run.End.Equal(at(60)) {
		t.Errorf("end %v, want the last time seen, 60ms", run.End.Sub(t0))
	}
}

// Processes are told at their end; a lane keeps them in the order they started.
func TestRecorderOrdersProcesses(t *testing.T) {
	r := New(Options{})
	for _, p := range []struct{ from, to float64 }{{0, 50}, {60, 70}, {10, 80}} {
		r.Process(ledger.Process{Worker: "gw0", Package: "ex/a", Start: at(p.from), End: at(p.to), Exit: "ok"})
	}
	procs := r.Snapshot().Lanes[0].Procs
	for i, want := range []float64{0, 10, 60} {
		if !procs[i].Start.Equal(at(want)) {
			t.Errorf("process %d starts at %v, want %vms", i, procs[i].Start.Sub(t0), want)
		}
	}
}

// Tests narrower than a pixel are drawn per pixel column, neighbours of one colour in one
// mark; every test is in exactly one mark; a failure among them keeps a mark of its own,
// and its tooltip names it.
func TestLayoutAggregates(t *testing.T) {
	s := newSynth("gw0")
	s.state(0, "gw0", "ready")
	var names []string
	tm := 10.0
	for i := 0; i < 20000; i++ {
		name := "TestTiny" + strconv.Itoa(i)
		action := "pass"
		if i == 12345 {
			name, action = "TestTheOneThatFails", "fail"
		}
		s.test("gw0", "ex/a", name, tm, tm+0.01, action)
		names = append(names, name)
		tm += 0.01
	}
	s.test("gw0", "ex/a", "TestWide", tm, tm+500, "pass")
	s.proc("gw0", "ex/a", 5, tm+510, "ok", append(names, "TestWide")...)
	pg := layout(s.rec.Snapshot())
	marks := pg.Lanes[0].Procs[0].Marks
	n, fails, wide := 0, 0, 0
	for _, m := range marks {
		n += m.N
		if strings.Contains(m.Class, Fail) {
			fails++
			if !strings.Contains(m.Title, "TestTheOneThatFails") {
				t.Errorf("the failing mark's tooltip does not name the test: %q", m.Title)
			}
		}
		if m.N == 1 && strings.HasPrefix(m.Title, "TestWide: pass") {
			wide++
		}
	}
	if n != 20001 {
		t.Errorf("marks hold %d tests, want 20001", n)
	}
	if fails != 1 || wide != 1 {
		t.Errorf("%d failing marks and %d marks of TestWide, want 1 each", fails, wide)
	}
	if len(marks) > 6 {
		t.Errorf("%d marks for 20001 tests in a few pixels and one wide test; want at most 6 (pass, fail, pass, wide)", len(marks))
	}
}

// The page names nothing outside itself, and what it quotes of the run is escaped.
func TestPageSelfContainedAndEscaped(t *testing.T) {
	s := threeLanes()
	s.test("gw1", `ex/<script>alert("x")</script>`, `Test<b>&"'`, 1210, 1220, "fail")
	s.proc("gw1", `ex/<script>alert("x")</script>`, 1205, 1230, "exit status 1")
	var b bytes.Buffer
	if err := s.rec.Write(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"http:", "https:", "src=", "href=", "@import", "<link", "<img", "<iframe", `alert("x")`, "<b>&"} {
		if strings.Contains(page, bad) {
			t.Errorf("page has %q", bad)
		}
	}
	for _, m := range regexp.MustCompile(`url\([^)]*\)`).FindAllString(page, -1) {
		if m != "url(#hatch)" {
			t.Errorf("page has %s: only references inside the page are allowed", m)
		}
	}
	if n := strings.Count(page, "<script>"); n != 1 {
		t.Errorf("%d scripts, want the one inline script", n)
	}
	if !strings.Contains(page, `data-package="ex/&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"`) {
		t.Errorf("the hostile package name is not in the page, escaped")
	}
}

// The page of a small run, as it is rendered: run with -update after a deliberate change
// and look at the result in a browser before committing it.
func TestPageGolden(t *testing.T) {
	s := threeLanes()
	s.event(910, "gw0", "ex/q", "TestCut", "run", "")
	s.proc("gw0", "ex/q", 905, 960, "lost")
	var b bytes.Buffer
	if err := s.rec.Write(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "small.html")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -run TestPageGolden -update writes it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("the page differs from %s (go test -run TestPageGolden -update rewrites it); got:\n%s", golden, b.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	err := threeLanes().rec.Write(failingWriter{})
	if err == nil || !strings.HasPrefix(err.Error(), "timeline: ") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Write to a failing writer: %v, want timeline: ... disk full", err)
	}
}

// A long gateway id is cut short on its lane's label, whole in its data and tooltip.
func TestLongGatewayID(t *testing.T) {
	id := "build-host-17.example.com"
	s := newSynth(id)
	s.state(0, id, "ready")
	s.test(id, "ex/a", "TestA", 1, 2, "pass")
	s.proc(id, "ex/a", 0, 3, "ok")
	var b bytes.Buffer
	if err := s.rec.Write(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if !strings.Contains(page, ">build-host…") || !strings.Contains(page, `data-worker="build-host-17.example.com"`) ||
		!strings.Contains(page, "<title>build-host-17.example.com: 1 test process") {
		t.Errorf("the lane of %s is not labelled build-host… with its id in its data and tooltip:\n%s", id, page[strings.Index(page, "<g class=\"lane\""):][:400])
	}
}
