package gotest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrExited is returned by Write after Exited.
var ErrExited = errors.New("gotest: write after Exited")

// Sizes of the two line buffers of a Converter. They are those of go test -json, because they
// decide where long lines are split into several output events:
//   - a framing line ("=== RUN", "--- PASS" ...) is recognised only if it fits in the input
//     buffer; a longer line is passed on as plain output, piece by piece;
//   - an output line longer than the output buffer becomes several output events, split at
//     UTF-8 boundaries.
const (
	inputBufferSize  = 4096
	outputBufferSize = 1024
)

// frameMarker (^V) starts each framing line a test binary writes under -test.v=test2json.
const frameMarker = 0x16

// Lines the binary or go test write that the converter reacts to.
var (
	updatePrefixes = []string{ // "=== ACTION" lines: an event, then the line as output
		"=== RUN   ",
		"=== PAUSE ",
		"=== CONT  ",
		"=== NAME  ",
		"=== PASS  ",
		"=== FAIL  ",
		"=== SKIP  ",
		"=== ATTR  ",
		"=== ARTIFACTS ",
	}
	reportPrefixes = []string{ // "--- ACTION: Name (1.23s)": held until the nesting unwinds
		"--- PASS: ",
		"--- FAIL: ",
		"--- SKIP: ",
		"--- BENCH: ",
	}
	// Markers go test looks for in the whole output of a passing binary, for its "ok" line.
	noTestsToRun           = "\ntesting: warning: no tests to run\n"
	noFuzzTestsToFuzz      = "\ntesting: warning: no fuzz tests to fuzz\n"
	tooManyFuzzTestsToFuzz = "\ntesting: warning: -fuzz matches more than one fuzz test, won't fuzz\n"
	coverageMarker         = "coverage: "
)

// Converter turns the output of one test binary run with -test.v=test2json into the Events
// that `go test -json` writes for the same output: the events of cmd/test2json, plus the
// final "ok"/"FAIL" line and package result that go test adds once the binary has exited.
//
// Feed it the binary's stdout and stderr merged into one stream (go test gives the binary the
// same pipe for both), in any chunking, then call Exited once. Where go test -json itself
// depends on chunking (a benchmark result line is split where the binary paused after its
// name), the Converter depends on it the same way.
//
// A Converter is safe for concurrent use. It calls emit synchronously, from within Write and
// Exited, with an internal lock held: emit must not call the Converter.
type Converter struct {
	mu   sync.Mutex
	pkg  string
	emit func(Event)
	now  func() time.Time

	in  lineSplitter // raw input, into lines for handleLine
	out lineSplitter // output text, into output events

	testName   string  // test that output is attributed to
	reports    []Event // pending --- PASS/FAIL/SKIP reports, outermost first
	result     string  // package result so far: "", pass, fail or skip
	needMarker bool    // framing lines must start with ^V: the binary ran with -test.v=test2json

	// What go test learns from the binary's raw output.
	outLen    int64
	lastByte  byte
	scan      outputScanner // markers and coverage go test looks for
	cover     bool
	finishing bool // emitting the final package events
	exited    bool

	results map[string]string
	running []string
}

// NewConverter returns a Converter for the test binary of package pkg (an import path). It
// emits the "start" event at once. Each event's Time is now(); now defaults to time.Now.
func NewConverter(pkg string, emit func(Event), now func() time.Time) *Converter {
	if now == nil {
		now = time.Now
	}
	c := &Converter{
		pkg:     pkg,
		emit:    emit,
		now:     now,
		results: make(map[string]string),
	}
	c.in = lineSplitter{buf: make([]byte, 0, inputBufferSize), whole: c.handleLine, piece: c.out.write}
	c.out = lineSplitter{buf: make([]byte, 0, outputBufferSize), whole: c.writeOutput, piece: c.writeOutput}
	c.send(Event{Action: ActionStart})
	return c
}

// SetCover tells the Converter that the binary was built with -cover, so that like go test
// it copies "coverage: ..." from the binary's output into the final "ok" line. Call it before
// Exited.
func (c *Converter) SetCover(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cover = on
}

// Write feeds output of the test binary to the Converter. It never fails before Exited and
// always consumes all of p; after Exited it returns ErrExited.
func (c *Converter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited {
		return 0, ErrExited
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.outLen += int64(len(p))
	c.lastByte = p[len(p)-1]
	c.scan.write(p)
	c.in.write(p)
	return len(p), nil
}

// Exited ends the stream. exitErr is the error of waiting for the binary (nil if it exited
// with status 0) and elapsed its run time. Like go test, Exited writes the "ok  \tpkg\t0.123s"
// line for a nil exitErr, and otherwise the error (when the binary printed nothing, or did not
// exit normally) and a "FAIL\tpkg\t0.123s" line; then it flushes any partial line and emits
// the package's final pass, fail or skip event, with Elapsed set to elapsed rounded to the
// millisecond.
//
// The binary counts as having exited normally only if exitErr is or wraps an error with an
// `Exited() bool` method that reports true, as *exec.ExitError does: a remote runner should
// rebuild such an error, with the Error text of the original ("exit status 2", "signal:
// killed"). To reproduce go test's "*** Test killed" line, Write it before calling Exited.
// Calls after the first are ignored.
func (c *Converter) Exited(exitErr error, elapsed time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited {
		return
	}
	secs := fmt.Sprintf("%.3fs", elapsed.Seconds())
	var trailer []byte
	endLine := func() {
		if c.outLen > 0 && c.lastByte != '\n' {
			trailer = append(trailer, '\n')
		}
	}
	if exitErr == nil {
		norun := ""
		switch {
		case c.scan.noTests:
			norun = " [no tests to run]"
		case c.scan.noFuzz:
			norun = " [no fuzz tests to fuzz]"
		case c.scan.tooManyFuzz:
			// go test writes this one without a separating space.
			norun = "[-fuzz matches more than one fuzz test, won't fuzz]"
		}
		coverage := ""
		if c.cover && c.scan.coverage != nil {
			coverage = "\tcoverage: " + string(c.scan.coverage)
		}
		endLine()
		trailer = fmt.Appendf(trailer, "ok  \t%s\t%s%s%s\n", c.pkg, secs, coverage, norun)
	} else {
		var ee interface{ Exited() bool }
		if !errors.As(exitErr, &ee) || !ee.Exited() || c.outLen == 0 {
			trailer = fmt.Appendf(trailer, "%s\n", exitErr)
		} else {
			endLine()
		}
		trailer = fmt.Appendf(trailer, "%cFAIL\t%s\t%s\n", frameMarker, c.pkg, secs)
	}
	c.in.write(trailer)

	if exitErr != nil {
		c.result = ActionFail
	} else if c.result != ActionSkip {
		c.result = ActionPass
	}
	c.exited = true
	c.in.flush()
	c.out.flush()
	e := Event{Action: c.result, Elapsed: seconds(elapsed.Round(time.Millisecond))}
	c.finishing = true
	c.send(e)
}

// Results returns, for each test that has ended so far (top-level tests, subtests as
// "TestA/sub", examples, fuzz targets and their seeds), its last terminal action: pass, fail
// or skip. The package's own final event does not count, even when go test attributes it to
// a test (see Running).
func (c *Converter) Results() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.results)
}

// Running returns the tests that have started (a "run" event) but not ended, in the order
// they started; a parent test comes before its subtests. After Exited these are the tests go
// test -json leaves without a result: the test that was running when the binary panicked
// outside the test's goroutine, called os.Exit, or timed out, its parents, any paused or
// running parallel tests, and every benchmark (benchmarks have no terminal event even when
// they succeed).
func (c *Converter) Running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.running...)
}

// handleLine handles one whole input line, or the part of one that ends where a framing
// marker starts the next. It writes the line to c.out, before or after the events it makes.
func (c *Converter) handleLine(line []byte) {
	if len(line) == 0 {
		return
	}
	framed := line[0] == frameMarker
	if !framed && c.needMarker {
		c.out.write(line)
		return
	}
	if framed {
		c.out.flush()
		line = line[1:]
	}
	body := line // without its \n or \r\n
	if n := len(body); n > 0 && body[n-1] == '\n' {
		body = body[:n-1]
		if n := len(body); n > 0 && body[n-1] == '\r' {
			body = body[:n-1]
		}
	}
	if string(body) == "=== NAME" {
		// An "=== NAME  " line for no test, whose trailing spaces were lost.
		line = []byte("=== NAME  \n")
		body = line[:len(line)-1]
	}

	// The binary's final PASS or FAIL, or go test's "FAIL\tpkg\t1.23s".
	if s := string(body); s == "PASS" || s == "FAIL" || strings.HasPrefix(s, "FAIL\t") {
		c.flushReports(0)
		c.testName = ""
		c.needMarker = framed
		c.out.write(line)
		if s == "PASS" {
			c.result = ActionPass
		} else {
			c.result = ActionFail
		}
		return
	}
	// go test's line for a package without test files.
	if bytes.HasPrefix(line, []byte("?   \t")) && bytes.HasSuffix(body, []byte("\t[no test files]")) && len(c.reports) == 0 {
		c.result = ActionSkip
	}

	orig := line
	depth := 0
	isUpdate := hasAnyPrefix(line, updatePrefixes)
	isReport := false
	if !isUpdate {
		for bytes.HasPrefix(line, []byte("    ")) {
			line = line[4:]
			depth++
		}
		isReport = hasAnyPrefix(line, reportPrefixes)
	}
	if !isUpdate && !isReport {
		// Plain output. Its indentation says which pending report's test wrote it; deeper
		// indentation than that is the test's own, so keep the current test.
		if depth > 0 && depth <= len(c.reports) {
			c.testName = c.reports[depth-1].Test
		}
		c.out.write(orig)
		return
	}

	// "=== ACTION  Name ..." or "--- ACTION: Name (1.23s)".
	action, name, _ := strings.Cut(string(line[len("=== "):]), " ")
	action = strings.ToLower(strings.TrimSuffix(action, ":"))
	name = strings.TrimSpace(name)
	e := Event{Action: action}

	if isReport {
		if i := strings.Index(name, " ("); i >= 0 {
			if strings.HasSuffix(name, "s)") {
				if secs, err := strconv.ParseFloat(name[i+2:len(name)-2], 64); err == nil {
					e.Elapsed = &secs
				}
			}
			name = name[:i]
		}
		if depth > len(c.reports) {
			// Nested deeper than any pending report: not a report after all.
			c.out.write(orig)
			return
		}
		c.needMarker = framed
		c.flushReports(depth)
		e.Test = name
		c.testName = name
		c.reports = append(c.reports, e)
		c.out.write(orig)
		return
	}

	switch action {
	case "artifacts":
		name, e.Path, _ = strings.Cut(name, " ")
	case "attr":
		var kv string
		name, kv, _ = strings.Cut(name, " ")
		e.Key, e.Value, _ = strings.Cut(kv, " ")
	}
	c.needMarker = framed
	c.flushReports(0)
	c.testName = name
	switch action {
	case "name":
		// Only says whose output follows; the line itself is not shown.
	case ActionPause:
		// The line first, so the paused test does not seem to write after pausing.
		c.out.write(orig)
		c.send(e)
	default:
		c.send(e)
		c.out.write(orig)
	}
}

// flushReports emits the pending reports nested at depth or deeper, innermost first.
func (c *Converter) flushReports(depth int) {
	c.testName = ""
	for len(c.reports) > depth {
		e := c.reports[len(c.reports)-1]
		c.reports = c.reports[:len(c.reports)-1]
		c.send(e)
	}
}

// writeOutput emits one output event.
func (c *Converter) writeOutput(p []byte) {
	c.send(Event{Action: ActionOutput, Output: string(p)})
}

// send completes e and emits it.
func (c *Converter) send(e Event) {
	t := c.now()
	e.Time = &t
	e.Package = c.pkg
	if e.Test == "" {
		e.Test = c.testName
	}
	// go test -json writes strings through encoding/json, which turns each byte of invalid
	// UTF-8 into U+FFFD: make the events what a reader of that stream decodes.
	e.Test = validUTF8(e.Test)
	e.Output = validUTF8(e.Output)
	e.Key = validUTF8(e.Key)
	e.Value = validUTF8(e.Value)
	e.Path = validUTF8(e.Path)
	if !c.finishing && e.Test != "" {
		c.track(e.Action, e.Test)
	}
	if c.emit != nil {
		c.emit(e)
	}
}

// track keeps Results and Running up to date.
func (c *Converter) track(action, test string) {
	switch action {
	case ActionRun:
		c.removeRunning(test) // run again, as with -count
		c.running = append(c.running, test)
	case ActionPass, ActionFail, ActionSkip:
		c.results[test] = action
		c.removeRunning(test)
	}
}

func (c *Converter) removeRunning(test string) {
	for i, name := range c.running {
		if name == test {
			c.running = append(c.running[:i], c.running[i+1:]...)
			return
		}
	}
}

func hasAnyPrefix(b []byte, prefixes []string) bool {
	for _, p := range prefixes {
		if bytes.HasPrefix(b, []byte(p)) {
			return true
		}
	}
	return false
}

func seconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

// validUTF8 replaces each byte of s that is not part of valid UTF-8 with U+FFFD, as
// encoding/json does.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// A lineSplitter cuts a byte stream into lines for whole, using a fixed buffer. A line that
// does not fit in the buffer goes to piece in parts, split at UTF-8 boundaries; the last part
// includes the newline. A line also ends just before a framing marker that does not start it.
// A line that starts with a benchmark name and a tab is passed to piece up to the tab at once,
// so that the name of a running benchmark shows before its result.
type lineSplitter struct {
	buf    []byte
	inLong bool // in the middle of a line passed on in pieces
	whole  func([]byte)
	piece  func([]byte)
}

func (l *lineSplitter) write(p []byte) {
	for len(p) > 0 {
		n := copy(l.buf[len(l.buf):cap(l.buf)], p)
		l.buf = l.buf[:len(l.buf)+n]
		p = p[n:]

		start := 0
		for start < len(l.buf) {
			rest := l.buf[start:]
			end, width := lineEnd(rest)
			if end < 0 {
				if !l.inLong {
					if tab := bytes.IndexByte(rest, '\t'); tab >= 0 && isBenchmarkName(bytes.TrimRight(rest[:tab], " ")) {
						l.piece(rest[:tab+1])
						l.inLong = true
						start += tab + 1
					}
				}
				break
			}
			stop := end + width
			if l.inLong {
				l.piece(rest[:stop])
				l.inLong = false
			} else {
				l.whole(rest[:stop])
			}
			start += stop
		}

		if start == 0 && len(l.buf) == cap(l.buf) {
			// The buffer holds part of a line too long for it: pass it on.
			cut := utf8Boundary(l.buf)
			l.piece(l.buf[:cut])
			l.buf = l.buf[:copy(l.buf, l.buf[cut:])]
			l.inLong = true
		}
		if start > 0 {
			l.buf = l.buf[:copy(l.buf, l.buf[start:])]
		}
	}
}

// flush passes on what is left: the start of a line that never ended.
func (l *lineSplitter) flush() {
	if len(l.buf) > 0 {
		l.piece(l.buf)
		l.buf = l.buf[:0]
	}
}

// lineEnd returns the length of the line at the start of b without its end, and the width of
// the end: 1 for a newline, 0 for a framing marker that begins the next line. end is -1 if b
// holds no complete line.
func lineEnd(b []byte) (end, width int) {
	for i, c := range b {
		switch {
		case c == '\n':
			return i, 1
		case c == frameMarker && i > 0:
			return i, 0
		}
	}
	return -1, 0
}

// isBenchmarkName reports whether b could be the name of a benchmark at the start of its
// result line: "Benchmark" not followed by a lower-case letter.
func isBenchmarkName(b []byte) bool {
	rest, ok := bytes.CutPrefix(b, []byte("Benchmark"))
	if !ok {
		return false
	}
	if len(rest) == 0 {
		return true
	}
	r, _ := utf8.DecodeRune(rest)
	return !unicode.IsLower(r)
}

// utf8Boundary returns the largest n <= len(b) such that b[:n] does not end inside a UTF-8
// sequence that the bytes after it could complete.
func utf8Boundary(b []byte) int {
	for back := 1; back < utf8.UTFMax && back <= len(b); back++ {
		c := b[len(b)-back]
		if c&0xc0 == 0x80 {
			continue // continuation byte: look further back for the lead byte
		}
		need := 1
		switch {
		case c&0xe0 == 0xc0:
			need = 2
		case c&0xf0 == 0xe0:
			need = 3
		case c&0xf8 == 0xf0:
			need = 4
		}
		if need > back {
			return len(b) - back
		}
		break
	}
	return len(b)
}

// outputScanner finds in a stream what go test looks for in a binary's whole output.
type outputScanner struct {
	tail        []byte // the last bytes seen, to find markers across writes
	noTests     bool
	noFuzz      bool
	tooManyFuzz bool

	// go test takes the coverage from the first match of the regexp `coverage: (.*)\n`.
	covMatched int    // bytes of "coverage: " matched so far
	covLine    []byte // the rest of the line after the first "coverage: "
	covInLine  bool   // capturing covLine
	coverage   []byte // covLine once its newline came; nil until then
}

func (s *outputScanner) write(p []byte) {
	if s.tail == nil {
		// A marker may also open the output, without its leading newline.
		s.tail = []byte{'\n'}
	}
	window := append(s.tail, p...)
	s.noTests = s.noTests || bytes.Contains(window, []byte(noTestsToRun))
	s.noFuzz = s.noFuzz || bytes.Contains(window, []byte(noFuzzTestsToFuzz))
	s.tooManyFuzz = s.tooManyFuzz || bytes.Contains(window, []byte(tooManyFuzzTestsToFuzz))
	if keep := len(tooManyFuzzTestsToFuzz); len(window) > keep {
		window = window[len(window)-keep:]
	}
	s.tail = append(s.tail[:0], window...)

	for _, b := range p {
		if s.coverage != nil {
			return
		}
		switch {
		case s.covInLine && b == '\n':
			s.coverage = append([]byte{}, s.covLine...)
		case s.covInLine:
			s.covLine = append(s.covLine, b)
		case b == coverageMarker[s.covMatched]:
			if s.covMatched++; s.covMatched == len(coverageMarker) {
				s.covInLine = true
			}
		case b == coverageMarker[0]: // the marker overlaps itself only in its first byte
			s.covMatched = 1
		default:
			s.covMatched = 0
		}
	}
}
