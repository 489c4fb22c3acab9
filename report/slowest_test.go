package report

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

func ev(action, pkg, test, worker string, elapsed float64) gotest.Event {
	return gotest.Event{Action: action, Package: pkg, Test: test, Worker: worker, Elapsed: &elapsed}
}

// slowest returns the n slowest top-level test runs of events; see SlowestTracker.
func slowest(events []gotest.Event, n int) []SlowTest {
	var s SlowestTracker
	for _, e := range events {
		s.Event(e)
	}
	return s.Slowest(n)
}

func TestSlowest(t *testing.T) {
	events := []gotest.Event{
		ev(gotest.ActionRun, "p", "TestA", "gw1", 0),
		ev(gotest.ActionPass, "p", "TestA/sub", "gw1", 9), // subtests are in their parent's time
		ev(gotest.ActionPass, "p", "TestA", "gw1", 1.5),
		ev(gotest.ActionSkip, "p", "TestSkip", "gw1", 7), // skipped: not a slow test
		ev(gotest.ActionFail, "q", "TestB", "gw2", 2),
		ev(gotest.ActionPass, "q", "TestB", "gw1", 0.25), // a rerun: a run of its own
		ev(gotest.ActionPass, "p", "TestC", "gw2", 1.5),  // ties: by package, then test
		ev(gotest.ActionPass, "a", "TestZ", "", 1.5),
		ev(gotest.ActionPass, "p", "", "gw1", 30),                        // the package's own result
		{Action: gotest.ActionPass, Package: "p", Test: "TestNoElapsed"}, // 0s: left out
		ev(gotest.ActionPass, "p", "TestZero", "gw1", 0),                 // so is a 0.00s run
		ev(gotest.ActionPass, "p", "Test4ms", "gw1", 0.004),              // printed 0.00s
		ev(gotest.ActionPass, "p", "Test5ms", "gw1", 0.005),              // printed 0.01s
	}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	want := []SlowTest{
		{"q", "TestB", "gw2", ms(2)},
		{"a", "TestZ", "", ms(1.5)},
		{"p", "TestA", "gw1", ms(1.5)},
		{"p", "TestC", "gw2", ms(1.5)},
		{"q", "TestB", "gw1", ms(0.25)},
		{"p", "Test5ms", "gw1", ms(0.005)},
	}
	if got := slowest(events, 100); !reflect.DeepEqual(got, want) {
		t.Errorf("Slowest(all):\n got %v\nwant %v", got, want)
	}
	if got := slowest(events, 2); !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("Slowest(2): %v", got)
	}
	if got := slowest(events, 0); got != nil {
		t.Errorf("Slowest(0) = %v", got)
	}
	if got := slowest(nil, 3); len(got) != 0 {
		t.Errorf("Slowest(nil) = %v", got)
	}
}

func TestSlowestGolden(t *testing.T) {
	for _, c := range []struct {
		script, golden string
		n              int
	}{
		{"load.jsonl", "slowest-load.golden", 3},
		{"each.jsonl", "slowest-each.golden", 10},
		{"junit-rerun.jsonl", "slowest-rerun.golden", 1},
	} {
		var s SlowestTracker
		for _, st := range loadScript(t, c.script) {
			if st.Op == "" {
				s.Event(st.event)
			}
		}
		var buf bytes.Buffer
		if err := WriteSlowest(&buf, s.Slowest(c.n)); err != nil {
			t.Fatal(err)
		}
		golden(t, c.golden, buf.Bytes())
	}
}

func TestWriteSlowestEmptyAndErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSlowest(&buf, nil); err != nil || buf.Len() != 0 {
		t.Errorf("no tests: %q, %v", buf.String(), err)
	}
	err := WriteSlowest(&limitWriter{n: 3}, []SlowTest{{Package: "p", Test: "TestA", Elapsed: time.Second}})
	if !errors.Is(err, errDiskFull) {
		t.Errorf("write error: %v", err)
	}
}
