package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/godist/godist/gotest"
	"github.com/muesli/termenv"
)

// style renders text with a lipgloss style, or leaves it alone when styling is off: plain
// output must hold no escape codes at all.
type style struct {
	on bool
	s  lipgloss.Style
}

func (s style) render(text string) string {
	if !s.on || text == "" {
		return text
	}
	return s.s.Render(text)
}

type styles struct {
	pass, fail, skip, note, faint, header style
}

// newStyles builds the styles for out. The renderer gets a fixed 16-colour profile: the
// command already decided that out is a colour terminal, so nothing is probed here.
func newStyles(out io.Writer, color bool) styles {
	r := lipgloss.NewRenderer(out, termenv.WithProfile(termenv.ANSI))
	r.SetColorProfile(termenv.ANSI)
	r.SetHasDarkBackground(true)
	mk := func(s lipgloss.Style) style { return style{on: color, s: s} }
	return styles{
		pass:   mk(r.NewStyle().Foreground(lipgloss.Color("2"))),
		fail:   mk(r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)),
		skip:   mk(r.NewStyle().Foreground(lipgloss.Color("3"))),
		note:   mk(r.NewStyle().Foreground(lipgloss.Color("6"))),
		faint:  mk(r.NewStyle().Faint(true)),
		header: mk(r.NewStyle().Bold(true)),
	}
}

func formatFloatSeconds(s float64, precision int) string {
	return fmt.Sprintf("%.*fs", precision, s)
}

// packageLine is the line for a finished package: go test's on plain output, a styled
// one on a terminal.
func (r *Reporter) packageLine(res pkgResult) string {
	var suffix string
	if res.coverage != "" && res.failedBuild == "" && res.action != gotest.ActionSkip {
		suffix = "\t" + res.coverage
		if r.opts.TTY {
			suffix = " " + res.coverage
		}
	}
	if res.stopped != "" {
		// As the runner's own line says it.
		suffix = " [not run to the end: " + res.stopped + "]" + suffix
	}
	if r.opts.Each && res.worker != "" {
		suffix += " [" + res.worker + "]"
	}
	if res.cached && res.action == gotest.ActionPass {
		if !r.opts.TTY {
			return "ok  \t" + res.pkg + "\t(cached)" + suffix
		}
		return r.sty.pass.render("ok  ") + " " + res.pkg + " " + r.sty.faint.render("(cached)") + r.sty.faint.render(suffix)
	}
	if !r.opts.TTY {
		switch {
		case res.failedBuild != "":
			return "FAIL\t" + res.pkg + " [build failed]" + suffix
		case res.action == gotest.ActionSkip:
			return "?   \t" + res.pkg + "\t[no test files]" + suffix
		case res.action == gotest.ActionFail:
			return "FAIL\t" + res.pkg + "\t" + formatFloatSeconds(res.elapsed, 3) + suffix
		case res.noTests:
			return "ok  \t" + res.pkg + "\t" + formatFloatSeconds(res.elapsed, 3) + " [no tests to run]" + suffix
		default:
			return "ok  \t" + res.pkg + "\t" + formatFloatSeconds(res.elapsed, 3) + suffix
		}
	}
	suffix = r.sty.faint.render(suffix)
	switch {
	case res.failedBuild != "":
		return r.sty.fail.render("FAIL") + " " + res.pkg + " [build failed]" + suffix
	case res.action == gotest.ActionSkip:
		return r.sty.skip.render("?   ") + " " + res.pkg + " " + r.sty.faint.render("[no test files]") + suffix
	case res.action == gotest.ActionFail:
		return r.sty.fail.render("FAIL") + " " + res.pkg + " " + formatFloatSeconds(res.elapsed, 3) + suffix
	case res.noTests:
		return r.sty.pass.render("ok  ") + " " + res.pkg + " " + formatFloatSeconds(res.elapsed, 3) + " " + r.sty.faint.render("[no tests to run]") + suffix
	default:
		return r.sty.pass.render("ok  ") + " " + res.pkg + " " + formatFloatSeconds(res.elapsed, 3) + suffix
	}
}

// failLine is the line printed as a test fails, or (a.stopped set) as the run's stop
// cuts it short: that is not a failure, and says so.
func (r *Reporter) failLine(e gotest.Event, a *attempt) string {
	d := formatFloatSeconds(elapsedOf(e), 2)
	stopped := a != nil && a.stopped != ""
	if !r.opts.TTY {
		s := "--- FAIL: " + e.Test + " (" + d + ") " + e.Package
		if stopped {
			s = "--- STOPPED: " + e.Test + " (" + d + ") " + e.Package
		}
		return s + workerSuffix(e.Worker)
	}
	word := r.sty.fail.render("FAIL")
	if stopped {
		word = r.sty.skip.render("STOP")
	}
	return word + " " + e.Package + "." + e.Test + " (" + d + ")" + r.sty.faint.render(workerSuffix(e.Worker))
}

// frameInterval is how often the live view may be redrawn: about 10 Hz.
const frameInterval = 100 * time.Millisecond

// Escape sequences of the live view: erase the line the cursor is on (all of it: tmux
// then forgets that it wrapped there, which erasing to its end would not make it); erase
// from the cursor to the end of the screen.
const (
	eraseLine = "\x1b[2K"
	eraseDown = "\x1b[J"
)

// shownFrame is what the terminal shows of the live view.
type shownFrame struct {
	text   string // the frame's lines, joined
	widths []int  // the columns each line took
	width  int    // the terminal's width when it was drawn
}

// rowsAt is how many rows of a terminal now width columns wide the frame takes: a
// terminal that is narrower than when the frame was drawn wraps its longer lines again
// (tmux, VTE, iTerm2 do), one that is wider leaves them alone.
func (f shownFrame) rowsAt(width int) int {
	rows := 0
	for _, w := range f.widths {
		if width > 0 && width < f.width && w > width {
			rows += (w + width - 1) / width
		} else {
			rows++
		}
	}
	return rows
}

// tick redraws the live view every interval until stop is closed.
func (r *Reporter) tick(interval time.Duration) {
	defer close(r.tickerDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.mu.Lock()
			if !r.closed {
				r.drawLive(false)
			}
			r.mu.Unlock()
		}
	}
}

// size is the terminal's size now.
func (r *Reporter) size() (width, height int) {
	width, height = r.opts.Width, r.opts.Height
	if r.opts.Size != nil {
		if w, h := r.opts.Size(); w > 0 && h > 0 {
			width, height = w, h
		}
	}
	return width, height
}

// drawLive writes, in one write, the lines waiting to be printed and the live view below
// them, over the frame drawn before: the cursor goes back to that frame's first line,
// every line is erased before it is written, and what is left of the old frame below the
// new one is erased. With final set the frame is erased and not drawn again; the cursor
// is left at the start of an empty line. It writes nothing when nothing changed.
// Callers hold mu.
func (r *Reporter) drawLive(final bool) {
	width, height := r.size()
	var frame []string
	if !final {
		frame = r.live.frame(frameInput{
			now: r.opts.Now(), elapsed: r.opts.Now().Sub(r.start), width: width, height: height,
			passed: r.model.passed, failed: r.model.failed, skipped: r.model.skipped, sty: r.sty,
		})
	}
	text := strings.Join(frame, "\n")
	if len(r.pending) == 0 && (final && r.shown.widths == nil || !final && text == r.shown.text && width == r.shown.width) {
		return
	}
	var b strings.Builder
	b.WriteString("\r")
	if rows := r.shown.rowsAt(width); rows > 1 {
		fmt.Fprintf(&b, "\x1b[%dA", rows-1)
	}
	for _, l := range r.pending {
		for _, part := range strings.Split(ansi.Wrap(l, max(width-1, 1), ""), "\n") {
			b.WriteString(eraseLine + part + "\n")
		}
	}
	r.pending = r.pending[:0]
	widths := make([]int, len(frame))
	for i, l := range frame {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(eraseLine + l)
		widths[i] = ansi.StringWidth(l)
	}
	b.WriteString(eraseDown)
	io.WriteString(r.out, b.String())
	r.out.midLine = len(frame) > 0
	if final {
		widths = nil
	}
	r.shown = shownFrame{text: text, widths: widths, width: width}
}
