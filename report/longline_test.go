package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

// runnerChunk is the size of the pieces in which the worker reads a test process's
// output (worker.chunkSize); a line longer than that reaches the reporter in as many
// output events or more.
const runnerChunk = 32 << 10

// converterChunk is the size of the pieces in which gotest.Converter (on the master)
// passes on a line too long for its output buffer: what the reporter sees of a long line.
const converterChunk = 1 << 10

// feedLongLine gives r one test whose output is line (which has no newline) in pieces of
// chunk bytes, then the test's and the package's results.
func feedLongLine(r *Reporter, line string, chunk int) {
	r.Event(gotest.Event{Action: gotest.ActionRun, Package: "p", Test: "TestLong", Worker: "gw0"})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestLong", Output: "=== RUN   TestLong\n", Worker: "gw0"})
	for s := line; s != ""; {
		n := min(chunk, len(s))
		r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestLong", Output: s[:n], Worker: "gw0"})
		s = s[n:]
	}
	r.Event(gotest.Event{Action: gotest.ActionPass, Package: "p", Test: "TestLong", Worker: "gw0"})
	r.Event(gotest.Event{Action: gotest.ActionPass, Package: "p", Worker: "gw0"})
}

// longLine is n bytes of printable text with no newline, varied so that a piece out of
// place shows.
func longLine(n int) string {
	var b strings.Builder
	b.Grow(n + 16)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08x ", i)
	}
	return b.String()[:n]
}

// A test printing 16 MB without a newline, in the runner's 32 KiB pieces: with -v the
// line comes out whole, once, when the package ends, followed by the package line. (Its
// cost is BenchmarkVerboseLongLine's.)
func TestVerboseLongLine(t *testing.T) {
	line := longLine(16 << 20)
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf, Verbose: true})
	feedLongLine(r, line, runnerChunk)
	s := r.Close(time.Second)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	want := "=== RUN   TestLong\n" + line + "\nok  \tp\t0.000s\n\n1 passed, 0 failed, 0 skipped in 1.00s\n"
	if got := buf.String(); got != want {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("output of %d bytes differs from the %d expected at byte %d: got %q, want %q",
			len(got), len(want), i, got[i:min(i+40, len(got))], want[i:min(i+40, len(want))])
	}
	if s.Passed != 1 {
		t.Errorf("summary %+v", s)
	}
}

// A long line's pieces from two workers stay apart and each comes out whole.
func TestVerboseLongLinesInterleaved(t *testing.T) {
	a, b := longLine(1<<20), strings.ToUpper(longLine(1<<20))
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf, Verbose: true})
	for i := 0; i < len(a); i += runnerChunk {
		r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestA", Output: a[i:min(i+runnerChunk, len(a))], Worker: "gw0"})
		r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestB", Output: b[i:min(i+runnerChunk, len(b))], Worker: "gw1"})
	}
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestB", Output: "\nnext\n", Worker: "gw1"})
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestA", Output: "\n", Worker: "gw0"})
	r.Close(0)
	want := b + "\nnext\n=== NAME  TestA\n" + a + "\n\n0 passed, 0 failed, 0 skipped in 0.00s\n"
	if buf.String() != want {
		t.Errorf("interleaved long lines: got %d bytes, want %d", buf.Len(), len(want))
	}
}

// BenchmarkVerboseLongLine reports the verbose cost of one line without a newline, fed
// in the runner's 32 KiB pieces and in the converter's 1 KiB ones: linear when MB/s
// stays put as the line grows.
func BenchmarkVerboseLongLine(b *testing.B) {
	for _, chunk := range []int{runnerChunk, converterChunk} {
		for _, mb := range []int{1, 4, 16} {
			line := longLine(mb << 20)
			b.Run(fmt.Sprintf("chunk=%dKiB/%dMB", chunk>>10, mb), func(b *testing.B) {
				b.SetBytes(int64(len(line)))
				b.ReportAllocs()
				for b.Loop() {
					r, err := New(Options{Out: io.Discard, Verbose: true})
					if err != nil {
						b.Fatal(err)
					}
					feedLongLine(r, line, chunk)
					r.Close(0)
				}
			})
		}
	}
}
