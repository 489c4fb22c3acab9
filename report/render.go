package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
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

// statusInterval is how often the status line may be redrawn: about 10 Hz.
const statusInterval = 100 * time.Millisecond

// clearLine returns the cursor to the start of the line and erases the line.
const clearLine = "\r\x1b[2K"

// statusLine is what the terminal shows of the status line.
type statusLine struct {
	visible bool   // drawn and not yet cleared
	shown   string // the text drawn last
}

// tick redraws the status line every interval until stop is closed.
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
				r.drawStatus()
			}
			r.mu.Unlock()
		}
	}
}

// drawStatus draws the status line unless the terminal already shows the same text.
// Callers hold mu.
func (r *Reporter) drawStatus() {
	s := r.statusText()
	if r.status.visible && s == r.status.shown {
		return
	}
	io.WriteString(r.out, clearLine+s)
	r.status = statusLine{visible: true, shown: s}
}

// clearStatus erases the status line, if drawn, so that a permanent line can take its
// place; the ticker draws it again below. Callers hold mu.
func (r *Reporter) clearStatus() {
	if r.status.visible {
		io.WriteString(r.out, clearLine)
		r.out.midLine = false // the cursor is at the start of an empty line
		r.status = statusLine{}
	}
}

// statusText is the status line, e.g.
//
//	godist  3/4 busy | 120/500 tests | 2 failed | 12s
//
// cut to the terminal width; it is styled only when it fits whole.
func (r *Reporter) statusText() string {
	busy, other := 0, map[string]int{}
	for _, st := range r.workers {
		switch st {
		case "busy":
			busy++
		case "ready", "idle", "":
		default:
			other[st]++
		}
	}
	nworkers := max(r.opts.Workers, len(r.workers))
	workers := fmt.Sprintf("%d/%d busy", busy, nworkers)
	for _, st := range sortedKeys(other) {
		workers += fmt.Sprintf(", %d %s", other[st], st)
	}
	tests := fmt.Sprintf("%d tests", r.model.doneTop)
	if r.total > 0 {
		tests = fmt.Sprintf("%d/%d tests", r.model.doneTop, r.total)
	}
	failed := fmt.Sprintf("%d failed", r.model.failed)
	elapsed := r.opts.Now().Sub(r.start).Truncate(time.Second).String()

	parts := []string{workers, tests, failed, elapsed}
	if nworkers == 0 {
		parts = parts[1:]
	}
	plain := "godist  " + strings.Join(parts, " | ")
	if w := r.opts.Width - 1; len(plain) > w {
		return plain[:max(w, 0)]
	}
	if r.model.failed > 0 {
		parts[len(parts)-2] = r.sty.fail.render(failed)
	}
	parts[len(parts)-1] = r.sty.faint.render(elapsed)
	return r.sty.header.render("godist") + "  " + strings.Join(parts, " | ")
}
