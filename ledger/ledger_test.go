package ledger

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

type record struct {
	mu     sync.Mutex
	events []gotest.Event
}

func (r *record) Event(e gotest.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}
func (r *record) WorkerState(string, string) {}
func (r *record) Note(string)                {}
func (r *record) SetTotal(int)               {}

func (r *record) terminal(pkg, test string) []string {
	var acts []string
	for _, e := range r.events {
		if e.Package == pkg && e.Test == test && gotest.IsTerminal(e.Action) {
			acts = append(acts, e.Action)
		}
	}
	return acts
}

func (r *record) output() string {
	var b strings.Builder
	for _, e := range r.events {
		b.WriteString(e.Output)
	}
	return b.String()
}

func fixed() time.Time { return time.Unix(1700000000, 0) }

func ev(action, pkg, test string) gotest.Event {
	return gotest.Event{Action: action, Package: pkg, Test: test, Worker: "gw0"}
}

func TestOneEndPerScope(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		do     func(l *Ledger, s Scope)
		want   string // terminal action of the package
		line   string // in its output
		failed bool
	}{
		{"passes", func(l *Ledger, s Scope) {}, "pass", "ok  \tp\t", false},
		{"a batch failed it", func(l *Ledger, s Scope) { l.Fail(s) }, "fail", "FAIL\tp\t", true},
		{"stopped", func(l *Ledger, s Scope) { l.Stop(s, "-x stopped the run after 1 failed test") }, "fail", "[not run to the end: -x stopped the run after 1 failed test]", true},
		{"no tests ran", func(l *Ledger, s Scope) { l.Process(s, time.Millisecond, true) }, "pass", "[no tests to run]", false},
		{"some ran", func(l *Ledger, s Scope) {
			l.Emit(s, ev("run", "p", "TestA"))
			l.Emit(s, ev("pass", "p", "TestA"))
			l.Process(s, time.Millisecond, true)
		}, "pass", "ok  \tp\t0.001s\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r record
			l := New(Options{Now: fixed}, &r)
			s := Scope{Package: "p"}
			l.Expect(s)
			c.do(l, s)
			l.End(ctx, s, "gw0")
			l.End(ctx, s, "gw1")           // a second end is dropped
			l.Emit(s, ev("fail", "p", "")) // and so is anything after the end
			l.Emit(s, ev("output", "p", ""))
			if got := r.terminal("p", ""); len(got) != 1 || got[0] != c.want {
				t.Errorf("package ends %v, want [%s]", got, c.want)
			}
			if !strings.Contains(r.output(), c.line) {
				t.Errorf("output %q lacks %q", r.output(), c.line)
			}
			if c.name == "some ran" && strings.Contains(r.output(), "no tests to run]") {
				t.Errorf("[no tests to run] for a package where a test ran")
			}
			if l.Failed() != c.failed {
				t.Errorf("Failed() = %v, want %v", l.Failed(), c.failed)
			}
			if c.name == "stopped" && !strings.Contains(r.output(), gotest.StoppedPrefix) {
				t.Errorf("a stopped package does not say so with %q", gotest.StoppedPrefix)
			}
			if n := len(l.Open()); n != 0 {
				t.Errorf("%d scopes still open after End", n)
			}
		})
	}
}

// A test ends once per run: a second terminal action without a run between is dropped,
// and a re-run may end again.
func TestOneEndPerTestRun(t *testing.T) {
	var r record
	l := New(Options{Now: fixed}, &r)
	s := Scope{Package: "p"}
	l.Expect(s)
	l.Emit(s, ev("run", "p", "TestA"))
	l.Emit(s, ev("fail", "p", "TestA"))
	l.Emit(s, ev("fail", "p", "TestA")) // dropped
	l.Emit(s, ev("pass", "p", "TestB")) // never ran: dropped
	l.Emit(s, ev("run", "p", "TestA"))  // a re-run
	l.Emit(s, ev("pass", "p", "TestA"))
	if got := r.terminal("p", "TestA"); strings.Join(got, ",") != "fail,pass" {
		t.Errorf("TestA ends %v, want [fail pass]", got)
	}
	if got := r.terminal("p", "TestB"); len(got) != 0 {
		t.Errorf("TestB ends %v, want nothing", got)
	}
	// The scope's start came first, once.
	if r.events[0].Action != "start" || r.events[0].Package != "p" {
		t.Errorf("first event %+v, want the package's start", r.events[0])
	}
	starts := 0
	for _, e := range r.events {
		if e.Action == "start" {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("%d start events, want 1", starts)
	}
}

func TestRunningInnermostFirst(t *testing.T) {
	l := New(Options{Now: fixed})
	s := Scope{Package: "p", Worker: "gw0"}
	l.Expect(s)
	for _, n := range []string{"TestA", "TestA/b", "TestA/b/c", "TestB"} {
		l.Emit(s, ev("run", "p", n))
	}
	l.Emit(s, ev("pass", "p", "TestB"))
	if got := strings.Join(l.Running(s), " "); got != "TestA/b/c TestA/b TestA" {
		t.Errorf("Running = %s", got)
	}
}

// Events of scopes the run does not settle (the build's) pass through as they are, and a
// build failure fails the run.
func TestBuildEventsPassThrough(t *testing.T) {
	var r record
	l := New(Options{Now: fixed}, &r)
	l.Emit(Scope{Package: "b"}, gotest.Event{Action: "build-fail", ImportPath: "b [b.test]"})
	l.Emit(Scope{Package: "b"}, gotest.Event{Action: "fail", Package: "b"})
	if len(r.events) != 2 || !l.Failed() {
		t.Errorf("events %v, failed %v", r.events, l.Failed())
	}
}

// Coverage is asked without the lock held: it may take long, and other scopes go on.
func TestCoverageOutsideTheLock(t *testing.T) {
	var r record
	var l *Ledger
	l = New(Options{Now: fixed, Coverage: func(ctx context.Context, s Scope) string {
		l.Output(Scope{Package: "q"}, "gw0", "other scope goes on\n") // would deadlock under the lock
		return "coverage: 50.0% of statements"
	}}, &r)
	l.Expect(Scope{Package: "p"})
	l.Expect(Scope{Package: "q"})
	l.End(context.Background(), Scope{Package: "p"}, "gw0")
	if !strings.Contains(r.output(), "ok  \tp\t0.000s\tcoverage: 50.0% of statements\n") {
		t.Errorf("output %q", r.output())
	}
}

// drawer is an observer that draws the run: it wants gateways and planned work.
type drawer struct {
	record
	gws  []Gateway
	plan []Planned
}

func (d *drawer) Gateway(g Gateway) { d.gws = append(d.gws, g) }
func (d *drawer) Planned(p Planned) { d.plan = append(d.plan, p) }

// Gateways and planned work go to the observers that want them, and only to those.
func TestGatewayAndPlanObservers(t *testing.T) {
	var d drawer
	var plain record
	l := New(Options{}, &plain, &d)
	l.Gateway(Gateway{ID: "gw0", Host: "local"})
	p := Planned{Scope: Scope{Package: "p"}, Tests: map[string]time.Duration{"TestA": time.Second}}
	l.Planned(p)
	if len(d.gws) != 1 || d.gws[0] != (Gateway{ID: "gw0", Host: "local"}) {
		t.Errorf("gateways %+v", d.gws)
	}
	if len(d.plan) != 1 || d.plan[0].Scope != p.Scope || d.plan[0].Tests["TestA"] != time.Second {
		t.Errorf("planned %+v", d.plan)
	}
	if len(plain.events) != 0 {
		t.Errorf("events %+v", plain.events)
	}
}
