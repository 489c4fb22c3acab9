package report

import (
	"encoding/json"
	"errors"
	"io"
	"sort"
	"unicode/utf8"

	"github.com/godist/godist/gotest"
	"gotest.tools/gotestsum/testjson"
)

// formats are the gotestsum format names testjson.NewEventFormatter knows (v1.13).
var formats = map[string]bool{
	"dots": true, "dots-v1": true, "dots-v2": true,
	"pkgname": true, "short": true,
	"pkgname-and-test-fails": true, "short-with-failures": true,
	"testname": true, "short-verbose": true,
	"testdox": true, "gotestdox": true,
	"github-actions": true, "github-action": true,
	"standard-verbose": true, "standard-quiet": true, "standard-json": true,
	"debug": true, "none": true,
}

// formatNames returns the accepted Options.Format names, sorted. "" (godist's own output) is
// accepted too and not listed.
func formatNames() []string {
	names := make([]string, 0, len(formats))
	for name := range formats {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func knownFormat(name string) bool { return formats[name] }

// formatName maps a format to the one to use: dots-v2 redraws a block of lines in place and
// measures os.Stdout, so off a terminal it becomes dots-v1.
func formatName(name string, tty bool) string {
	if name == "dots-v2" && !tty {
		return "dots-v1"
	}
	return name
}

// errFeedClosed is what a write to a stopped formatter feed fails with.
var errFeedClosed = errors.New("report: formatter stopped")

// maxChunk bounds the output carried by one event fed to testjson, whose scanner refuses
// lines over 64 KiB; JSON escaping can grow text sixfold.
const maxChunk = 8 << 10

// formatFeed drives a gotestsum formatter. testjson builds its Execution only while
// scanning a stream of JSON lines, and ends every test still running when the stream ends,
// so one scan runs for the whole run in a goroutine fed through a pipe. Each send waits
// until the formatter has handled the event, so the formatter writes only while the
// Reporter's caller is inside send or close: output stays in order and never races.
type formatFeed struct {
	pw   *io.PipeWriter
	ack  chan struct{} // one receive per event handled
	done chan struct{} // closed when the scan goroutine has returned
	each bool
	err  error // the scan's error; read after done is closed
}

func startFormatFeed(out io.Writer, format string, each bool) *formatFeed {
	pr, pw := io.Pipe()
	f := &formatFeed{pw: pw, ack: make(chan struct{}), done: make(chan struct{}), each: each}
	h := &feedHandler{f: testjson.NewEventFormatter(out, format, testjson.FormatOptions{}), ack: f.ack}
	go func() {
		defer close(f.done)
		_, err := testjson.ScanTestOutput(testjson.ScanConfig{Stdout: pr, Handler: h})
		f.err = err
		pr.CloseWithError(errFeedClosed) // later sends fail at once
	}()
	return f
}

// send feeds one event and waits until the formatter has handled it.
func (f *formatFeed) send(e gotest.Event) {
	if f.each && e.Worker != "" && e.Package != "" {
		// testjson keys running tests by package and name; in each mode the same test runs
		// on several workers at once, so every worker gets a package of its own.
		e.Package += " [" + e.Worker + "]"
	}
	for _, c := range chunks(e.Output) {
		e.Output = c
		line, err := json.Marshal(e)
		if err != nil {
			continue // an Event always marshals
		}
		if _, err := f.pw.Write(append(line, '\n')); err != nil {
			return
		}
		select {
		case <-f.ack:
		case <-f.done:
			return
		}
	}
}

// close ends the stream, lets the formatter handle the results testjson makes up for
// tests still running, and waits for the scan goroutine.
func (f *formatFeed) close() {
	f.pw.Close()
	for {
		select {
		case <-f.ack:
		case <-f.done:
			return
		}
	}
}

// error returns the scan's error once it stopped early, else nil.
func (f *formatFeed) error() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// chunks splits s into pieces of at most maxChunk bytes, on rune boundaries; "" is one
// piece.
func chunks(s string) []string {
	if len(s) <= maxChunk {
		return []string{s}
	}
	var cs []string
	for len(s) > maxChunk {
		n := maxChunk
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		if n == 0 {
			n = maxChunk
		}
		cs = append(cs, s[:n])
		s = s[n:]
	}
	if s != "" {
		cs = append(cs, s)
	}
	return cs
}

type feedHandler struct {
	f   testjson.EventFormatter
	ack chan<- struct{}
}

func (h *feedHandler) Event(e testjson.TestEvent, exec *testjson.Execution) error {
	err := h.f.Format(e, exec)
	h.ack <- struct{}{}
	return err
}

func (h *feedHandler) Err(string) error { return nil }

// ansiStripper drops ANSI escape sequences (CSI "ESC [ ... final" and two-byte "ESC x")
// from what it writes; gotestsum's formatters colour by their own terminal check, and
// without Options.Color no escape code may reach the output.
type ansiStripper struct {
	w     io.Writer
	state int // 0 text, 1 after ESC, 2 inside CSI
}

func (s *ansiStripper) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p))
	for _, b := range p {
		switch s.state {
		case 0:
			if b == 0x1b {
				s.state = 1
				continue
			}
			out = append(out, b)
		case 1:
			if b == '[' {
				s.state = 2
			} else {
				s.state = 0
			}
		case 2:
			if b >= 0x40 && b <= 0x7e {
				s.state = 0
			}
		}
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
