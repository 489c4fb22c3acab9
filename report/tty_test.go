package report

import (
	"bytes"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
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

// screen is what a terminal of unbounded height shows after out (its scrollback
// included): it interprets \r, \n, ESC[nA (cursor up), ESC[K and ESC[2K (erase the line
// from the cursor, or all of it), ESC[J (erase from the cursor to the end of the screen),
// and drops SGR styling, which is all the reporter sends. Any other escape sequence
// fails the test.
func screen(t *testing.T, out string) string {
	t.Helper()
	lines := [][]rune{nil}
	row, col := 0, 0
	for i := 0; i < len(out); i++ {
		switch c := out[i]; c {
		case '\r':
			col = 0
		case '\n':
			row++
			col = 0
			if row == len(lines) {
				lines = append(lines, nil)
			}
		case 0x1b:
			j := i + 2
			for j < len(out) && !(out[j] >= 0x40 && out[j] <= 0x7e) {
				j++
			}
			seq := out[i+1 : j+1]
			switch {
			case seq == "[2K":
				lines[row] = nil
			case seq == "[K":
				if col < len(lines[row]) {
					lines[row] = lines[row][:col]
				}
			case seq == "[J":
				if col < len(lines[row]) {
					lines[row] = lines[row][:col]
				}
				lines = lines[:row+1]
			case strings.HasSuffix(seq, "A") && strings.HasPrefix(seq, "["):
				n, err := strconv.Atoi(seq[1 : len(seq)-1])
				if err != nil {
					t.Fatalf("bad cursor movement %q", seq)
				}
				row = max(row-n, 0)
			case strings.HasSuffix(seq, "m") && strings.HasPrefix(seq, "["):
			default:
				t.Fatalf("unexpected escape sequence %q", seq)
			}
			i = j
		default:
			r, n := utf8.DecodeRuneInString(out[i:])
			i += n - 1
			for len(lines[row]) < col {
				lines[row] = append(lines[row], ' ')
			}
			if col < len(lines[row]) {
				lines[row][col] = r
			} else {
				lines[row] = append(lines[row], r)
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
				opts.Out, opts.TTY, opts.Now = &buf, true, time.Now
				r := newReporter(t, opts)
				time.Sleep(5 * time.Millisecond)
				play(r, steps, func() { time.Sleep(30 * time.Millisecond) })
				time.Sleep(time.Second) // the elapsed time ticks over on the live view
				r.Close(2500 * time.Millisecond)
				out := buf.String()
				golden(t, tc.name+".golden", []byte(out))
				scr := screen(t, out)
				golden(t, tc.name+"-screen.golden", []byte(scr))
				if !opts.Color && strings.Contains(ansiCursor.ReplaceAllString(out, ""), "\x1b") {
					t.Errorf("styling without Color:\n%q", out)
				}
				if l := frameLines(scr); len(l) > 0 {
					t.Errorf("the live view is still on the screen after Close: %q\n%s", l, scr)
				}
			})
		})
	}
}

// frameLine matches the lines of the live view: its progress line and gateway rows.
var frameLine = regexp.MustCompile(`^(godist [█░\d]|[█░]+ \d+%|gw\d+ .*\b(running|idle|starting|syncing|waiting|lost|done)\b)`)

// frameLines are the lines of scr that look like the live view's.
func frameLines(scr string) []string {
	var out []string
	for _, l := range strings.Split(scr, "\n") {
		if frameLine.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// ansiCursor matches the reporter's cursor movements and erasures (not its styling).
var ansiCursor = regexp.MustCompile(`\x1b\[(\d*A|2?K|J)`)

// countingWriter counts the writes it gets.
type countingWriter struct {
	syncBuffer
	mu     sync.Mutex
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	w.mu.Unlock()
	return w.syncBuffer.Write(p)
}

func (w *countingWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// The live view is redrawn on the ticker only, in one write a frame, at most once per
// interval, and only when what it shows changed; lines printed above it come with the
// next frame, in the same write.
func TestLiveViewThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out countingWriter
		r := newReporter(t, Options{Out: &out, TTY: true, Now: time.Now})
		r.WorkerState("gw0", "busy")
		for i := range 1000 {
			r.Event(gotest.Event{Action: gotest.ActionPass, Package: "p", Test: fmt.Sprintf("Test%04d", i), Worker: "gw0"})
			time.Sleep(time.Millisecond) // 1000 events over one second
		}
		synctest.Wait()
		if n := out.count(); n < 9 || n > 11 {
			t.Errorf("%d writes in 1s, want about 10 (one a frame)", n)
		}
		n := len(out.String())
		time.Sleep(850 * time.Millisecond) // nothing changes but less than a second passes
		if len(out.String()) != n {
			t.Errorf("redrawn with nothing new: %q", out.String()[n:])
		}
		writes := out.count()
		r.Event(gotest.Event{Action: gotest.ActionFail, Package: "p", Test: "TestZ", Worker: "gw0"})
		time.Sleep(frameInterval) // one tick, at 1.9s
		if got := out.count() - writes; got != 1 {
			t.Errorf("the FAIL line and the frame came in %d writes, want 1", got)
		}
		scr := screen(t, out.String())
		if want := "FAIL p.TestZ (0.00s) [gw0]\ngodist 1000 passed  1 failed  0 skipped  1s\ngw0 running 1s p"; !strings.HasSuffix(scr, want) {
			t.Errorf("screen ends\n%s\nwant\n%s", scr[max(len(scr)-len(want)-40, 0):], want)
		}
		r.Close(time.Second)
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
		time.Sleep(3 * frameInterval / 2)
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
	r := newReporter(t, Options{Out: &buf, TTY: true, Color: true})
	steps := loadScript(t, "load.jsonl")
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 3 {
			play(r, steps, nil)
			time.Sleep(frameInterval)
		}
	})
	wg.Go(func() {
		for i := range 200 {
			r.WorkerState("gw3", []string{"busy", "ready"}[i%2])
			r.Gateway(ledger.Gateway{ID: "gw3", Host: fmt.Sprint("host", i%3)})
			r.Planned(ledger.Planned{Scope: ledger.Scope{Package: "example.com/calc"}, Tests: map[string]time.Duration{"TestDiv": time.Second}})
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
