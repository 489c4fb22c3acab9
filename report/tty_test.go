package report

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/godist/godist/gotest"
)

// syncBuffer is a bytes.Buffer safe for the ticker goroutine and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// screen is what a terminal shows after out: it interprets \r, \n, ESC[2K (erase line)
// and drops SGR styling, which is all the reporter sends.
func screen(out string) string {
	lines := [][]rune{nil}
	col := 0
	for i := 0; i < len(out); i++ {
		cur := len(lines) - 1
		switch c := out[i]; c {
		case '\r':
			col = 0
		case '\n':
			lines = append(lines, nil)
			col = 0
		case 0x1b:
			j := i + 2
			for j < len(out) && !(out[j] >= 0x40 && out[j] <= 0x7e) {
				j++
			}
			if out[i+1:j+1] == "[2K" {
				lines[cur] = nil
			}
			i = j
		default:
			r := []rune(out[i:])[0]
			i += len(string(r)) - 1
			for len(lines[cur]) < col {
				lines[cur] = append(lines[cur], ' ')
			}
			if col < len(lines[cur]) {
				lines[cur][col] = r
			} else {
				lines[cur] = append(lines[cur], r)
			}
			col++
		}
	}
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(string(l))
	}
	return b.String()
}

// The TTY run happens in a synctest bubble: time is fake, so the ticker's redraws land at
// the same points of the script every time. Steps are 30ms apart starting at 5ms, so they
// never coincide with a 100ms tick.
func TestGoldenTTY(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		opts   Options
	}{
		{"load-tty", "load.jsonl", Options{Color: true}},
		{"load-tty-nocolor", "load.jsonl", Options{}},
		{"load-tty-verbose", "load.jsonl", Options{Color: true, Verbose: true}},
		{"each-tty", "each.jsonl", Options{Color: true, Each: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := loadScript(t, tc.script)
			synctest.Test(t, func(t *testing.T) {
				var buf syncBuffer
				opts := tc.opts
				opts.Out, opts.TTY, opts.Workers, opts.Now = &buf, true, 2, time.Now
				r := newReporter(t, opts)
				time.Sleep(5 * time.Millisecond)
				play(r, steps, func() { time.Sleep(30 * time.Millisecond) })
				time.Sleep(time.Second) // the elapsed time ticks over on the status line
				r.Close(2500 * time.Millisecond)
				out := buf.String()
				golden(t, tc.name+".golden", []byte(out))
				golden(t, tc.name+"-screen.golden", []byte(screen(out)))
				if !opts.Color && strings.Contains(strings.ReplaceAll(out, clearLine, ""), "\x1b") {
					t.Errorf("styling without Color:\n%q", out)
				}
			})
		})
	}
}

// The status line is redrawn on the ticker only, at most once per interval, and only when
// its text changed; permanent lines are printed at once.
func TestStatusLineThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		r := newReporter(t, Options{Out: &buf, TTY: true, Workers: 1, Now: time.Now})
		r.SetTotal(1000)
		r.WorkerState("gw0", "busy")
		for i := range 1000 {
			r.Event(gotest.Event{Action: gotest.ActionPass, Package: "p", Test: fmt.Sprintf("Test%04d", i), Worker: "gw0"})
			time.Sleep(time.Millisecond) // 1000 events over one second
		}
		synctest.Wait()
		draws := strings.Count(buf.String(), clearLine+"godist")
		if draws < 9 || draws > 11 {
			t.Errorf("%d status draws in 1s, want about 10", draws)
		}
		n := len(buf.String())
		time.Sleep(900 * time.Millisecond) // nothing changes but less than a second passes
		if len(buf.String()) != n {
			t.Errorf("status redrawn with nothing new: %q", buf.String()[n:])
		}
		r.Event(gotest.Event{Action: gotest.ActionFail, Package: "p", Test: "TestZ", Worker: "gw0"})
		if !strings.HasSuffix(buf.String(), clearLine+"FAIL p.TestZ (0.00s) [gw0]\n") {
			t.Errorf("fail line not printed at once: %q", buf.String()[n:])
		}
		time.Sleep(statusInterval + time.Millisecond)
		if got := screen(buf.String()); !strings.HasSuffix(got, "godist  1/1 busy | 1001/1000 tests | 1 failed | 2s") {
			t.Errorf("status line %q", got[strings.LastIndexByte(got, '\n')+1:])
		}
		r.Close(time.Second)
	})
}

func TestStatusLineFitsWidth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		r := newReporter(t, Options{Out: &buf, TTY: true, Color: true, Workers: 16, Width: 30, Now: time.Now})
		r.SetTotal(123456)
		r.WorkerState("gw0", "lost")
		time.Sleep(statusInterval + time.Millisecond)
		out := buf.String()
		if want := clearLine + "godist  0/16 busy, 1 lost | 0"; out != want {
			t.Errorf("status %q, want %q", out, want)
		}
		r.Close(0)
	})
}

// Close stops the ticker goroutine before it returns.
func TestCloseStopsTicker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newReporter(t, Options{Out: new(syncBuffer), TTY: true, Now: time.Now})
		time.Sleep(time.Second)
		r.Close(time.Second)
		select {
		case <-r.tickerDone:
		default:
			t.Fatal("ticker goroutine still running after Close")
		}
		// synctest.Test also fails if any goroutine of the bubble outlives this function.
	})

	// The same without the bubble, counting goroutines, for the gotestsum feed as well.
	for _, opts := range []Options{{TTY: true}, {Format: "testname"}} {
		before := runtime.NumGoroutine()
		opts.Out = new(syncBuffer)
		r := newReporter(t, opts)
		r.Event(gotest.Event{Action: gotest.ActionRun, Package: "p", Test: "TestA"})
		time.Sleep(3 * statusInterval / 2)
		r.Close(0)
		// A goroutine that has signalled its end may take a moment to be gone.
		after := runtime.NumGoroutine()
		for deadline := time.Now().Add(time.Second); after > before && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
			after = runtime.NumGoroutine()
		}
		if after > before {
			t.Errorf("%+v: %d goroutines before New, %d after Close", opts, before, after)
		}
	}
}

// Every method may be called while the ticker redraws; run with -race.
func TestConcurrentUse(t *testing.T) {
	var buf syncBuffer
	r := newReporter(t, Options{Out: &buf, TTY: true, Color: true, Workers: 4})
	steps := loadScript(t, "load.jsonl")
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 3 {
			play(r, steps, nil)
			time.Sleep(statusInterval)
		}
	})
	wg.Go(func() {
		for i := range 200 {
			r.WorkerState("gw3", []string{"busy", "ready"}[i%2])
			r.SetTotal(i)
			if i%50 == 0 {
				r.Note("note")
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	s := r.Close(time.Second)
	if s.Failed != 9 {
		t.Errorf("Failed = %d, want 9", s.Failed)
	}
	r.Close(time.Second)
}
