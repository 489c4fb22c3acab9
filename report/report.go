// Package report turns the scheduler's stream of gotest.Event into what people and CI read:
// live lines while tests run (on a terminal, below them a live view redrawn in place: see
// live.go), then the failed tests with their output, the build failures, and exactly one
// summary line.
//
// # Counting
//
// Passed, Failed and Skipped count tests the way gotestsum does: every test that reports a
// result counts, top-level tests and subtests alike (a test with two subtests that all pass
// counts 3 passed). Examples and fuzz seeds count as tests. In --dist each mode a test that
// runs on three workers counts three times. The total given to SetTotal counts top-level
// test units instead, because that is what the runner plans; NotRun is planned top-level
// units that never reported a result. A test that the
// run's stop (-x, --maxfail, an interrupt) cut short ends "fail" after a line starting
// with gotest.StoppedPrefix: it is not run, and counts in none of Passed, Failed and
// Skipped.
//
// A test running on a worker that is lost has no result there. In load mode the runner
// runs it again on another worker, and what that run comes to is the test's result: the
// lost run is neither not run nor unfinished, and a failure there counts once. In each
// mode the lost worker's run stays unfinished: the test did not run there.
//
// # Output
//
// Without a terminal (Options.TTY false) every line is plain text with no escape codes,
// shaped like go test's: one line per finished package
//
//	ok  	example.com/pkg	0.123s
//	FAIL	example.com/pkg	0.100s
//	?   	example.com/pkg	[no test files]
//	FAIL	example.com/pkg [build failed]
//
// and, as each test fails, "--- FAIL: TestX (0.00s) example.com/pkg [gw1]" (the package and
// worker follow the go test text, because tests of many packages and workers interleave),
// or "--- STOPPED: TestX ..." for a test the run's stop cut short; a package so cut short
// has "FAIL" with " [not run to the end: why]", as the runner's own line says.
// With Verbose, every output line of every test is printed as go test -v prints it, instead
// of the "--- FAIL" lines (which the output already holds): subtests' result lines nested
// under their top-level test's, and each package's output together, one process's after
// another's, up to its result line (see verboseView).
//
// On a terminal the same events become "FAIL pkg.TestX (0.12s) [gw1]" ("STOP" when cut
// short; a failure is followed by the first lines of its output) and "ok   pkg 0.500s"
// lines printed above the live view, styled with lipgloss when Options.Color is set.
//
// Close then prints the failures section (each failed test's output, kept apart per worker;
// packages that failed outside any test, such as a TestMain exit or a panic in init, with
// the package's output; tests that never finished; build failures with the build output) and
// one summary line, see Summary.String.
package report

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
)

// Options configure a Reporter. Out is required; the rest have usable zero values.
type Options struct {
	Out     io.Writer // terminal/stdout; written only by the Reporter's methods and its ticker
	TTY     bool      // the live view allowed (cmd decides: isatty && NO_COLOR unset && TERM != dumb)
	Color   bool      // styling allowed (false under NO_COLOR or not a TTY)
	Verbose bool      // -v: print every test's output as go test -v would (plain lines)
	// Format is "" for godist's own output, or a gotestsum format name (the
	// *UnknownFormatError New returns for any other lists them). A gotestsum format
	// replaces the live output (and the live view) but not the failures section and
	// summary line that Close prints. Verbose has no effect with a Format.
	Format string
	// Each is set in --dist each mode, where every test runs on every worker and every
	// package reports once per worker: package lines then name their worker.
	Each bool
	// Width and Height are the terminal's size in columns and lines (0: 80 and 24); the
	// live view fits in it. Size, if set, is asked for the size at every frame instead (the
	// terminal may be resized); a size it gives as 0 falls back to Width and Height.
	Width, Height int
	Size          func() (width, height int)
	// Now is the clock of the live view's times; nil means time.Now.
	Now func() time.Time
}

// Summary is what a run came to. Counting rules are in the package documentation.
type Summary struct {
	Passed, Failed, Skipped int
	// Packages is every package that reported a result or failed to build; FailedPackages
	// those that failed, build failures included.
	Packages, FailedPackages, BuildFailures int
	// NotRun is the planned top-level test units (SetTotal) that reported no result,
	// including tests that started but never finished and tests the run's stop cut
	// short. In load mode a test whose worker was lost while running it, and which then
	// ran on another worker to a result, is not one.
	NotRun int
	// PackageErrors counts packages that failed outside any test (TestMain or init exited or
	// panicked, a timeout hit between tests), build failures excluded.
	PackageErrors int
	// Flaky counts tests that failed and then passed on a re-run (--rerun-fails); their
	// failed attempts are not in Failed.
	Flaky   int
	Elapsed time.Duration
}

// String is the summary line, without styling or newline:
//
//	12 passed, 1 failed, 2 skipped in 3.45s
//	12 passed, 0 failed, 0 skipped in 3.45s, 3 not run, 1 build failure, 1 package error
//
// It always contains "N passed, N failed" literally; the optional parts come after the
// time so that "N skipped in" stays put as well.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d passed, %d failed, %d skipped in %s",
		s.Passed, s.Failed, s.Skipped, formatSeconds(s.Elapsed, 2))
	if s.Flaky > 0 {
		fmt.Fprintf(&b, ", %d flaky", s.Flaky)
	}
	if s.NotRun > 0 {
		fmt.Fprintf(&b, ", %d not run", s.NotRun)
	}
	if s.BuildFailures > 0 {
		fmt.Fprintf(&b, ", %s", plural(s.BuildFailures, "build failure"))
	}
	if s.PackageErrors > 0 {
		fmt.Fprintf(&b, ", %s", plural(s.PackageErrors, "package error"))
	}
	return b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// ErrNoOutput is returned by New when Options.Out is nil.
var ErrNoOutput = errors.New("report: Options.Out is nil")

// UnknownFormatError is returned by New for a Format it does not know.
type UnknownFormatError struct {
	Format   string
	Accepted []string // the formats New knows
}

func (e *UnknownFormatError) Error() string {
	return fmt.Sprintf("report: unknown format %q (accepted: %s)", e.Format, strings.Join(e.Accepted, ", "))
}

// Reporter renders one run. Its methods are safe for concurrent use, but Event must be
// given the stream in order (feed it from one goroutine). Close (or Abort) must be called
// once the stream ends: a Reporter owns a goroutine on a terminal (redrawing the status
// line) and with a Format (feeding gotestsum), and only Close and Abort stop it. After
// Close the other methods do nothing. Output goes to Options.Out only from the Reporter's
// methods and its goroutine, one write at a time.
type Reporter struct {
	opts  Options
	out   *errWriter
	sty   styles
	start time.Time

	closeOnce sync.Once
	summary   Summary

	// stop and tickerDone exist on a terminal without a Format: the ticker goroutine runs
	// until stop is closed, then closes tickerDone.
	stop       chan struct{}
	tickerDone chan struct{}

	mu      sync.Mutex // guards everything below and every write to out
	closed  bool
	model   *runModel
	verbose *verboseView // with Verbose and no Format
	total   int
	feed    *formatFeed // non-nil with a gotestsum Format
	wrote   bool        // a permanent line was written
	// On a terminal without a Format: the live view, the lines waiting to be printed
	// above it at its next frame, and what the terminal shows of it.
	live    *liveView
	pending []string
	shown   shownFrame
}

// New returns a Reporter writing to opts.Out. It fails with ErrNoOutput or an
// *UnknownFormatError. It starts the live view's ticker goroutine on a terminal (TTY set,
// no Format) and the gotestsum feed goroutine with a Format; Close stops either.
func New(opts Options) (*Reporter, error) {
	if opts.Out == nil {
		return nil, ErrNoOutput
	}
	if opts.Format != "" && !knownFormat(opts.Format) {
		return nil, &UnknownFormatError{Format: opts.Format, Accepted: formatNames()}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Width <= 0 {
		opts.Width = 80
	}
	if opts.Height <= 0 {
		opts.Height = 24
	}
	r := &Reporter{
		opts:  opts,
		out:   &errWriter{w: opts.Out},
		sty:   newStyles(opts.Out, opts.Color),
		start: opts.Now(),
		model: newModel(opts.Each),
	}
	if opts.Format != "" {
		var w io.Writer = r.out
		if !opts.Color {
			w = &ansiStripper{w: w}
		}
		r.feed = startFormatFeed(w, formatName(opts.Format, opts.TTY), opts.Each)
		return r, nil
	}
	if opts.Verbose {
		r.verbose = newVerboseView(opts.Each, r.line)
	}
	if opts.TTY {
		r.live = newLiveView(opts.Each)
		r.stop = make(chan struct{})
		r.tickerDone = make(chan struct{})
		go r.tick(frameInterval)
	}
	return r, nil
}

// SetTotal sets the number of top-level test units planned; it may grow as the run does.
func (r *Reporter) SetTotal(tests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total = tests
}

// WorkerState records a gateway's state ("starting", "syncing", "ready", "busy", "lost",
// "done", or any other word) for the live view.
func (r *Reporter) WorkerState(id string, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live != nil {
		r.live.setState(id, state, r.opts.Now())
	}
}

// Gateway records where a gateway runs, for the live view (ledger.GatewayObserver).
func (r *Reporter) Gateway(g ledger.Gateway) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live != nil {
		r.live.setHost(g.ID, g.Host)
	}
}

// Planned records a scope's planned work, for the live view's progress and ETA
// (ledger.PlanObserver).
func (r *Reporter) Planned(p ledger.Planned) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live != nil {
		r.live.planned(p)
	}
}

// Note prints a one-line notice from the runner, such as a crashed process being replaced.
func (r *Reporter) Note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	msg = strings.TrimRight(msg, "\n")
	if r.live != nil {
		for _, l := range strings.Split(msg, "\n") {
			r.line(r.sty.note.render(termLine(l)))
		}
		return
	}
	if r.opts.TTY && r.feed == nil {
		msg = r.sty.note.render(msg)
	}
	r.line(msg)
}

// Err returns the first error writing to Options.Out, or from the gotestsum formatter.
func (r *Reporter) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out.err != nil {
		return r.out.err
	}
	if r.feed != nil {
		return r.feed.error()
	}
	return nil
}

// Event takes the next event of the stream.
func (r *Reporter) Event(e gotest.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.feed != nil {
		r.feed.send(e)
	}
	res, a := r.model.event(e)
	if r.live != nil {
		r.live.event(e, r.opts.Now())
	}
	if r.feed != nil || e.Action == gotest.ActionBuildOutput || e.Action == gotest.ActionBuildFail {
		return
	}
	switch e.Action {
	case gotest.ActionOutput, gotest.ActionBench:
		// The reporter writes a package's result line itself.
		pkgLine := e.Test == "" && (e.Action == gotest.ActionBench || isResultLine(e.Output, e.Package))
		if r.verbose != nil && !pkgLine {
			if r.live != nil {
				e.Output = termText(e.Output) // a test's escape codes cannot move the cursor
			}
			r.verbose.output(e)
		}
	case gotest.ActionPass, gotest.ActionFail, gotest.ActionSkip:
		switch {
		case e.Test == "" && res != nil:
			if r.verbose != nil {
				r.verbose.end(e.Package, e.Worker, r.packageLine(*res))
			} else {
				r.line(r.packageLine(*res))
			}
		case e.Test != "" && e.Action == gotest.ActionFail && (r.opts.TTY || !r.opts.Verbose):
			r.line(r.failLine(e, a))
			if r.live != nil && !r.opts.Verbose && a != nil && a.stopped == "" {
				r.failExcerpt(a)
			}
		}
	}
}

// line writes one permanent line; on a terminal, above the live view at its next frame.
// Callers hold mu.
func (r *Reporter) line(s string) {
	r.wrote = true
	if r.live != nil {
		r.pending = append(r.pending, s)
		return
	}
	r.out.endLine()
	io.WriteString(r.out, s+"\n")
}

// excerptLines is how many lines of a failed test's output the live view prints under
// its FAIL line; the failures section at the end has all of it.
const excerptLines = 4

// failExcerpt prints the first lines of a failed test's output, each cut to the
// terminal's width, and how many more there are. Callers hold mu.
func (r *Reporter) failExcerpt(a *attempt) {
	text := a.text()
	if strings.TrimSpace(text) == "" {
		return
	}
	lines := strings.Split(text, "\n")
	width, _ := r.size()
	for i, l := range lines {
		if i == excerptLines && len(lines) > excerptLines+1 {
			r.pending = append(r.pending, r.sty.faint.render(fmt.Sprintf("    … %d more lines", len(lines)-i)))
			break
		}
		r.pending = append(r.pending, ansi.Truncate(termLine(l), max(width-1, 1), "…"))
	}
}

// Close stops the live view, prints the failures section and the summary line, and
// returns the Summary. elapsed is the run's wall time, as the caller measured it. Calling
// Close again returns the same Summary and prints nothing.
func (r *Reporter) Close(elapsed time.Duration) Summary {
	r.closeOnce.Do(func() { r.summary = r.finish(elapsed, true) })
	return r.summary
}

// Abort is Close for a run that could not be done (the caller reports why): it stops and
// erases the live view and prints nothing more. Close after Abort, or Abort after Close,
// does nothing.
func (r *Reporter) Abort() {
	r.closeOnce.Do(func() { r.summary = r.finish(0, false) })
}

func (r *Reporter) finish(elapsed time.Duration, print bool) Summary {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	if r.stop != nil {
		close(r.stop)
		<-r.tickerDone // the ticker takes mu, so wait for it unlocked
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.verbose != nil {
		r.verbose.close()
	}
	if r.live != nil {
		r.drawLive(true)
	}
	if r.feed != nil {
		r.feed.close()
		r.out.endLine()
	}
	s := r.model.summary(r.total)
	s.Elapsed = elapsed
	if !print {
		return s
	}
	if r.writeSections() {
		r.wrote = true
	}
	if r.wrote || r.feed != nil {
		io.WriteString(r.out, "\n")
	}
	line := s.String()
	switch {
	case s.Failed > 0 || s.FailedPackages > 0 || s.BuildFailures > 0:
		line = r.sty.fail.render(line)
	case s.NotRun > 0:
		line = r.sty.skip.render(line)
	default:
		line = r.sty.pass.render(line)
	}
	io.WriteString(r.out, line+"\n")
	return s
}

// writeSections prints the failures, unfinished tests and build failures; it reports
// whether it printed anything.
func (r *Reporter) writeSections() bool {
	m := r.model
	wrote := false
	section := func(title string) {
		io.WriteString(r.out, "\n"+r.sty.header.render("=== "+title)+"\n")
		wrote = true
	}

	entries := m.failureEntries()
	if len(entries) > 0 {
		section("Failed")
		for i, fe := range entries {
			if i > 0 {
				io.WriteString(r.out, "\n")
			}
			io.WriteString(r.out, r.sty.fail.render("=== FAIL:")+" "+fe.title+workerSuffix(fe.worker)+"\n")
			writeBlock(r.out, fe.lines)
		}
	}

	if flaky := m.flakyTests(); len(flaky) > 0 {
		section("Flaky")
		for _, f := range flaky {
			io.WriteString(r.out, r.sty.skip.render("=== FLAKY:")+" "+f.pkg+" "+f.name+" failed on "+strings.Join(f.failedOn, ", ")+", passed on "+f.worker+"\n")
		}
	}

	unfinished := m.unfinished()
	if len(unfinished) > 0 {
		section("Not finished")
		for i, ru := range unfinished {
			if i > 0 {
				io.WriteString(r.out, "\n")
			}
			io.WriteString(r.out, r.sty.skip.render("=== NO RESULT:")+" "+ru.key.pkg+" "+ru.key.name+workerSuffix(ru.key.worker)+"\n")
			writeBlock(r.out, ru.outputLines())
		}
	}

	builds := m.failedBuilds()
	if len(builds) > 0 {
		section("Build failed")
		for i, b := range builds {
			if i > 0 {
				io.WriteString(r.out, "\n")
			}
			io.WriteString(r.out, r.sty.fail.render("=== BUILD FAIL:")+" "+b.importPath+"\n")
			var lines []string
			for _, l := range b.output {
				if strings.TrimRight(l, "\n") == "# "+b.importPath {
					continue // the header above already says it
				}
				lines = append(lines, l)
			}
			writeBlock(r.out, lines)
		}
	}
	return wrote
}

// writeBlock writes output chunks, making sure the block ends with a newline.
func writeBlock(w io.Writer, chunks []string) {
	var b strings.Builder
	for _, c := range chunks {
		b.WriteString(c)
	}
	s := b.String()
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	io.WriteString(w, s)
}

func workerSuffix(worker string) string {
	if worker == "" {
		return ""
	}
	return " [" + worker + "]"
}

func elapsedOf(e gotest.Event) float64 {
	if e.Elapsed == nil {
		return 0
	}
	return *e.Elapsed
}

func formatSeconds(d time.Duration, precision int) string {
	return fmt.Sprintf("%.*fs", precision, d.Seconds())
}

// errWriter keeps the first write error and drops later writes. It also knows whether
// the output ends mid-line, which a gotestsum format (dots) may leave it.
type errWriter struct {
	w       io.Writer
	err     error
	midLine bool
}

func (w *errWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
	}
	if n > 0 {
		w.midLine = p[n-1] != '\n'
	}
	return n, err
}

// endLine ends a line a formatter left unfinished.
func (w *errWriter) endLine() {
	if w.midLine {
		io.WriteString(w, "\n")
	}
}

// testSrc is where an output line came from.
type testSrc struct{ pkg, test, worker string }

// srcKey names one stream of output lines: a worker's process running a package.
type srcKey struct{ worker, pkg string }

// lineBuffer joins output chunks into whole lines per source, so that lines of interleaved
// workers are never spliced together. Its cost is linear in the text added: each chunk is
// scanned once, and the pieces of an unfinished line are gathered in a strings.Builder
// rather than joined anew with every chunk (a test may print megabytes without a newline,
// which reach the reporter a kilobyte an event).
type lineBuffer struct {
	partial map[srcKey]*strings.Builder // the unfinished line of each source, never empty
}

// add appends s to k's pending text and returns the lines it completed, without newlines.
func (b *lineBuffer) add(k srcKey, s string) []string {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		if s != "" {
			b.pending(k).WriteString(s)
		}
		return nil
	}
	var lines []string
	if p := b.partial[k]; p != nil {
		p.WriteString(s[:i])
		lines = append(lines, p.String())
		delete(b.partial, k)
	} else {
		lines = append(lines, s[:i])
	}
	s = s[i+1:]
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, s[:i])
		s = s[i+1:]
	}
	if s != "" {
		b.pending(k).WriteString(s)
	}
	return lines
}

// pending returns k's unfinished line, starting one.
func (b *lineBuffer) pending(k srcKey) *strings.Builder {
	if b.partial == nil {
		b.partial = make(map[srcKey]*strings.Builder)
	}
	p := b.partial[k]
	if p == nil {
		p = new(strings.Builder)
		b.partial[k] = p
	}
	return p
}

// flush returns the pending partial lines of the matching sources, in a stable order.
func (b *lineBuffer) flush(match func(srcKey) bool) []string {
	var keys []srcKey
	for k := range b.partial {
		if match(k) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].pkg != keys[j].pkg {
			return keys[i].pkg < keys[j].pkg
		}
		return keys[i].worker < keys[j].worker
	})
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, b.partial[k].String())
		delete(b.partial, k)
	}
	return lines
}
