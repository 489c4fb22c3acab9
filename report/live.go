package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
	"gotest.tools/gotestsum/testjson"
)

// The live view on a terminal: a frame of lines at the bottom of the screen, redrawn in
// place, below the lines that stay (failures as they happen, with the first lines of their
// output; package results; notes). Its first line is the progress: a bar and an ETA made
// from the estimated work left, and the counts of passed, failed and skipped tests
// (subtests included). Then one row per gateway (its id, host, state, for how long, and
// the package and test it runs), or, when that many rows would not leave room, one row
// per host (how many of its workers are in each state, and what the longest-running one
// runs). Every line is cut to the terminal's width; the frame is never taller than the
// terminal, whose size is read at each frame.

// liveView is what the live view knows of the run besides the model: the gateways and
// what each runs, and the work planned with its estimates. Its owner guards it.
type liveView struct {
	each bool
	gws  map[string]*gwLive
	next int // the order of the next gateway first heard of

	work      map[ledger.Scope]*scopeWork
	workStart time.Time // when the first gateway went busy
}

// gwLive is one gateway as the view shows it.
type gwLive struct {
	id, host string
	order    int
	state    string
	since    time.Time            // when it entered its state
	pkg      string               // the package of its last event, while busy
	tests    map[string]time.Time // tests running on it (subtests too), since
}

// scopeWork is the planned work of a scope and how much of it is done.
type scopeWork struct {
	tests   map[string]time.Duration // planned top-level tests; nil for a package run whole
	total   time.Duration            // their estimates together (a whole package's estimate)
	done    map[string]time.Duration // credit of each top-level test that ended
	doneSum time.Duration
	running map[runKey]time.Time // top-level tests running in it, since
	ended   bool
	// expected: the package is to run, not yet built (ledger.Planned.Expected).
	expected bool
}

type runKey struct{ worker, test string }

func newLiveView(each bool) *liveView {
	return &liveView{each: each, gws: map[string]*gwLive{}, work: map[ledger.Scope]*scopeWork{}}
}

func (v *liveView) gateway(id string) *gwLive {
	g := v.gws[id]
	if g == nil {
		g = &gwLive{id: id, order: v.next, tests: map[string]time.Time{}}
		v.next++
		v.gws[id] = g
	}
	return g
}

func (v *liveView) setHost(id, host string) { v.gateway(id).host = host }

func (v *liveView) setState(id, state string, now time.Time) {
	g := v.gateway(id)
	if g.state != state {
		g.state, g.since = state, now
	}
	if state == "busy" {
		if v.workStart.IsZero() {
			v.workStart = now
		}
		return
	}
	// Not running a process: nothing of it runs on it any more.
	clear(g.tests)
	g.pkg = ""
	for _, w := range v.work {
		for k := range w.running {
			if k.worker == id {
				delete(w.running, k)
			}
		}
	}
}

func (v *liveView) planned(p ledger.Planned) {
	if p.Gone {
		delete(v.work, p.Scope)
		return
	}
	w := v.work[p.Scope]
	if w == nil {
		w = &scopeWork{done: map[string]time.Duration{}, running: map[runKey]time.Time{}}
		v.work[p.Scope] = w
	}
	w.tests, w.total, w.expected = p.Tests, p.Whole, p.Expected
	if p.Tests != nil {
		w.total = 0
		for _, d := range p.Tests {
			w.total += d
		}
	}
}

func (v *liveView) scope(pkg, worker string) *scopeWork {
	if !v.each {
		worker = ""
	}
	return v.work[ledger.Scope{Package: pkg, Worker: worker}]
}

// event follows a test or package event: what runs where, and the work done.
func (v *liveView) event(e gotest.Event, now time.Time) {
	if e.Worker == "" && e.Package != "" && e.Test == "" && gotest.IsTerminal(e.Action) {
		// A package the build settled (it did not build) or whose result came whole: the
		// work expected of it, in every scope, is done.
		for s, w := range v.work {
			if s.Package == e.Package && w.expected {
				w.ended = true
			}
		}
	}
	if e.Worker == "" || e.Package == "" {
		return
	}
	g := v.gateway(e.Worker)
	w := v.scope(e.Package, e.Worker)
	if g.state == "busy" && (e.Test != "" || e.Action == gotest.ActionStart) {
		g.pkg = e.Package // not from a package's end: the ledger names the last worker
	}
	top := e.Test != "" && !testjson.TestName(e.Test).IsSubTest()
	switch {
	case e.Test == "" && gotest.IsTerminal(e.Action):
		if w != nil {
			w.ended = true
			clear(w.running)
		}
	case e.Test == "":
	case e.Action == gotest.ActionRun:
		if g.state == "busy" {
			g.tests[e.Test] = now
		}
		if top && w != nil {
			w.running[runKey{e.Worker, e.Test}] = now
		}
	case gotest.IsTerminal(e.Action):
		delete(g.tests, e.Test)
		if !top {
			return
		}
		for name := range g.tests {
			if strings.HasPrefix(name, e.Test+"/") {
				delete(g.tests, name)
			}
		}
		if w == nil {
			return
		}
		delete(w.running, runKey{e.Worker, e.Test})
		credit, planned := w.tests[e.Test]
		if !planned {
			credit = time.Duration(elapsedOf(e) * float64(time.Second))
		}
		if old := w.done[e.Test]; credit > old {
			w.doneSum += credit - old
			w.done[e.Test] = credit
		}
	}
}

// progress is the work planned and the work done (with what runs counted as far as it
// got), as estimated. A scope with no estimate (a package that never ran, run whole)
// weighs what the others weigh on average, and counts as done only once it has ended;
// known is false when no scope has an estimate.
func (v *liveView) progress(now time.Time) (total, done time.Duration, known bool) {
	var knownSum time.Duration
	nknown := 0
	for _, w := range v.work {
		if w.total > 0 {
			knownSum += w.total
			nknown++
		}
	}
	fallback := time.Second // nothing recorded: every package weighs alike
	if nknown > 0 {
		fallback = knownSum / time.Duration(nknown)
	}
	for _, w := range v.work {
		t := w.total
		switch {
		case w.ended && t <= 0:
			done += fallback
		case w.ended:
			done += t
		case t > 0:
			done += w.credit(now)
		}
		if t <= 0 {
			t = fallback
		}
		total += t
	}
	return total, done, nknown > 0
}

// credit is the estimated work done of a scope that has not ended.
func (w *scopeWork) credit(now time.Time) time.Duration {
	d := w.doneSum
	for k, since := range w.running {
		ran := now.Sub(since)
		if est, ok := w.tests[k.test]; ok {
			ran = min(ran, est)
		}
		d += ran
	}
	// Not done before it ends, however wrong its estimates.
	return min(d, w.total*99/100)
}

// eta is the time left at the rate the work has been done so far; ok is false while that
// rate cannot be known yet, or nothing is known of the work.
func (v *liveView) eta(now time.Time, total, done time.Duration, known bool) (left time.Duration, ok bool) {
	if done >= total && total > 0 {
		return 0, true
	}
	ran := now.Sub(v.workStart)
	if !known || v.workStart.IsZero() || done <= 0 || ran < time.Second {
		return 0, false
	}
	rate := float64(done) / float64(ran)
	left = time.Duration(float64(total-done) / rate)
	// Nor sooner than the running test with the most of its estimate left ends.
	for _, w := range v.work {
		for k, since := range w.running {
			if est, ok := w.tests[k.test]; ok {
				left = max(left, est-now.Sub(since))
			}
		}
	}
	return left, true
}

// frameInput is what a frame is drawn from.
type frameInput struct {
	now                     time.Time
	elapsed                 time.Duration
	width, height           int
	passed, failed, skipped int
	sty                     styles
}

const (
	// maxGatewayRows is the most gateways shown one to a row; more are shown per host.
	maxGatewayRows = 32
	// keepHistory is how many lines of the terminal the frame leaves to the lines above it
	// (the failures as they stream in) before it groups gateways per host.
	keepHistory = 4
)

// frame is the live view's lines, styled, each at most in.width-1 columns wide, at most
// in.height-1 of them.
func (v *liveView) frame(in frameInput) []string {
	w := in.width - 1
	lines := []string{v.progressLine(in, w)}
	rows := in.height - 2 // what may follow the progress line
	if rows <= 0 || len(v.gws) == 0 {
		return lines
	}
	gws := v.sortedGateways()
	if len(gws) <= maxGatewayRows && len(gws) <= in.height-1-keepHistory {
		return append(lines, v.gatewayRows(gws, in, w)...)
	}
	return append(lines, v.hostRows(gws, in, w, rows)...)
}

func (v *liveView) sortedGateways() []*gwLive {
	gws := make([]*gwLive, 0, len(v.gws))
	for _, g := range v.gws {
		gws = append(gws, g)
	}
	sort.Slice(gws, func(i, j int) bool { return gws[i].order < gws[j].order })
	return gws
}

// stateWord is how a gateway's state shows.
func stateWord(state string) string {
	switch state {
	case "busy":
		return "running"
	case "ready":
		return "idle"
	case "":
		return "waiting"
	}
	return state
}

// states in the order their counts show on a host's row.
var hostStates = []string{"running", "idle", "starting", "syncing", "waiting", "lost", "done"}

// doing is what gateway g runs and for how long: its longest-running top-level test (its
// deepest running subtest, if any), or its package while no test runs; or how long it has
// been in its state.
func (g *gwLive) doing(now time.Time) (pkg, test string, more int, d time.Duration) {
	d = now.Sub(g.since)
	if g.state != "busy" {
		return "", "", 0, d
	}
	var top string
	var topSince time.Time
	for name, since := range g.tests {
		if testjson.TestName(name).IsSubTest() {
			continue
		}
		if top == "" || since.Before(topSince) || since.Equal(topSince) && name < top {
			top, topSince = name, since
		}
		more++
	}
	if top == "" {
		return g.pkg, "", 0, d
	}
	test = top
	for name := range g.tests {
		if strings.HasPrefix(name, top+"/") && (len(name) > len(test) || len(name) == len(test) && name < test) {
			test = name
		}
	}
	return g.pkg, test, more - 1, now.Sub(topSince)
}

// task is "pkg Test" in width columns: the package's last element when its whole path
// does not fit, then the test alone, then that cut.
func task(pkg, test string, more, width int) string {
	if width <= 0 {
		return ""
	}
	suffix := ""
	if more > 0 {
		suffix = fmt.Sprintf(" +%d", more)
	}
	short := pkg[strings.LastIndexByte(pkg, '/')+1:]
	candidates := []string{pkg + " " + test, short + " " + test}
	if test != "" {
		candidates = append(candidates, test)
	}
	for _, c := range candidates {
		if c = strings.TrimSpace(c + suffix); ansi.StringWidth(c) <= width {
			return c
		}
	}
	return ansi.Truncate(strings.TrimSpace(candidates[1]+suffix), width, "…")
}

func (v *liveView) gatewayRows(gws []*gwLive, in frameInput, w int) []string {
	type row struct {
		pkg, test, state, dur string
		more                  int
	}
	rows := make([]row, len(gws))
	idW, hostW, stateW, durW := 0, 0, 0, 0
	for i, g := range gws {
		pkg, test, more, d := g.doing(in.now)
		rows[i] = row{pkg, test, stateWord(g.state), shortDuration(d), more}
		idW = max(idW, ansi.StringWidth(g.id))
		hostW = max(hostW, ansi.StringWidth(g.host))
		stateW = max(stateW, len(rows[i].state))
		durW = max(durW, len(rows[i].dur))
	}
	fixed := idW + 1 + stateW + 1 + durW + 1
	if room := (w - fixed) / 3; room >= 3 {
		hostW = min(hostW, 24, room)
	} else {
		hostW = 0 // too narrow: what runs matters more
	}
	out := make([]string, 0, len(gws))
	for i, g := range gws {
		r := rows[i]
		var b strings.Builder
		b.WriteString(pad(g.id, idW) + " ")
		if hostW > 0 {
			b.WriteString(in.sty.faint.render(pad(ansi.Truncate(g.host, hostW, "…"), hostW)) + " ")
		}
		st := in.sty.faint
		switch r.state {
		case "running":
			st = in.sty.pass
		case "lost":
			st = in.sty.fail
		case "starting", "syncing":
			st = in.sty.note
		}
		b.WriteString(st.render(pad(r.state, stateW)) + " ")
		b.WriteString(padLeft(r.dur, durW) + " ")
		used := fixed
		if hostW > 0 {
			used += hostW + 1
		}
		b.WriteString(task(r.pkg, r.test, r.more, w-used))
		out = append(out, ansi.Truncate(strings.TrimRight(b.String(), " "), w, ""))
	}
	return out
}

// hostRows are the gateways grouped per host, in the order of each host's first gateway:
// its name, how many of its workers are in each state, and what the longest-running
// busy one runs. At most rows of them; the last says how many hosts did not fit.
func (v *liveView) hostRows(gws []*gwLive, in frameInput, w, rows int) []string {
	type host struct {
		name   string
		counts map[string]int
		n      int
		// the longest-running busy gateway's work
		pkg, test, gw string
		more          int
		d             time.Duration
		busy          bool
	}
	var hosts []*host
	byName := map[string]*host{}
	for _, g := range gws {
		h := byName[g.host]
		if h == nil {
			h = &host{name: g.host, counts: map[string]int{}}
			byName[g.host] = h
			hosts = append(hosts, h)
		}
		h.n++
		h.counts[stateWord(g.state)]++
		pkg, test, more, d := g.doing(in.now)
		if g.state == "busy" && (!h.busy || d > h.d) {
			h.busy, h.pkg, h.test, h.more, h.d, h.gw = true, pkg, test, more, d, g.id
		}
	}
	cut := 0
	if len(hosts) > rows {
		cut = len(hosts) - (rows - 1)
		hosts = hosts[:rows-1]
	}
	// The counts in words, or where that leaves too little room, in short: 12 run 4 idle.
	countsOf := func(h *host, short bool) string {
		var parts []string
		for _, s := range hostStates {
			if n := h.counts[s]; n > 0 {
				if short && s == "running" {
					s = "run"
				}
				parts = append(parts, fmt.Sprintf("%d %s", n, s))
			}
		}
		return strings.Join(parts, " ")
	}
	nameW, countW, durW := 0, 0, 0
	counts := make([]string, len(hosts))
	for _, short := range []bool{false, true} {
		nameW, countW, durW = 0, 0, 0
		for i, h := range hosts {
			nameW = max(nameW, ansi.StringWidth(h.name))
			if h.busy {
				durW = max(durW, len(shortDuration(h.d)))
			}
			counts[i] = countsOf(h, short)
			countW = max(countW, len(counts[i]))
		}
		if w-countW-durW >= 50 {
			break
		}
	}
	nameW = min(nameW, 24, max(5, (w-countW-durW-2)/3))
	var out []string
	for i, h := range hosts {
		var b strings.Builder
		b.WriteString(pad(ansi.Truncate(h.name, nameW, "…"), nameW) + " ")
		b.WriteString(pad(counts[i], countW))
		if room := w - (nameW + 1 + countW + 1 + durW + 1); h.busy && room > 0 {
			b.WriteString(" " + padLeft(shortDuration(h.d), durW) + " ")
			gw := " [" + h.gw + "]"
			if room-len(gw) < 16 {
				gw = "" // what runs matters more than where
			}
			b.WriteString(task(h.pkg, h.test, h.more, room-len(gw)) + in.sty.faint.render(gw))
		}
		out = append(out, ansi.Truncate(strings.TrimRight(b.String(), " "), w, ""))
	}
	if cut > 0 {
		out = append(out, ansi.Truncate(in.sty.faint.render(fmt.Sprintf("… %d more hosts", cut)), w, ""))
	}
	return out
}

// progressLine is the bar, the share of the estimated work done, the ETA, the counts and
// the time elapsed, as much of it as fits in w columns.
func (v *liveView) progressLine(in frameInput, w int) string {
	total, done, known := v.progress(in.now)
	frac := 0.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	pct := fmt.Sprintf("%d%%", int(math.Floor(frac*100)))
	eta := "ETA -"
	if left, ok := v.eta(in.now, total, done, known); ok {
		eta = "ETA " + shortDuration(left)
	}
	if total == 0 {
		pct, eta = "", ""
	}
	sty := in.sty
	n := func(count int, word, short string, st style, long bool) string {
		text := strconv.Itoa(count) + " " + short
		if long {
			text = strconv.Itoa(count) + " " + word
		}
		if count == 0 {
			return text
		}
		return st.render(text)
	}
	elapsed := sty.faint.render(shortDuration(in.elapsed))
	variant := func(long bool, sep string, parts ...bool) string {
		var fields []string
		add := func(ok bool, s string) {
			if ok && s != "" {
				fields = append(fields, s)
			}
		}
		add(true, pct)
		add(parts[0], eta)
		add(true, n(in.passed, "passed", "ok", sty.pass, long))
		add(true, n(in.failed, "failed", "fail", sty.fail, long))
		add(parts[1], n(in.skipped, "skipped", "skip", sty.skip, long))
		add(parts[2], elapsed)
		return strings.Join(fields, sep)
	}
	tails := []string{
		variant(true, "  ", true, true, true),
		variant(true, " ", true, true, true),
		variant(false, " ", true, true, true),
		variant(false, " ", true, false, true),
		variant(false, " ", true, false, false),
		variant(false, " ", false, false, false),
	}
	const minBar, maxBar = 8, 40
	for _, tail := range tails {
		for _, prefix := range []string{sty.header.render("godist") + " ", ""} {
			room := w - ansi.StringWidth(prefix) - ansi.StringWidth(tail) - 1
			if total == 0 {
				if room+1 >= 0 {
					return prefix + tail
				}
				continue
			}
			if room >= minBar {
				return prefix + bar(frac, min(room, maxBar), sty) + " " + tail
			}
		}
	}
	return ansi.Truncate(tails[len(tails)-1], max(w, 0), "…")
}

func bar(frac float64, width int, sty styles) string {
	filled := int(math.Round(frac * float64(width)))
	return sty.pass.render(strings.Repeat("█", filled)) + sty.faint.render(strings.Repeat("░", width-filled))
}

// shortDuration is d in at most 5 columns: 7s, 1m08s, 2h05m.
func shortDuration(d time.Duration) string {
	s := int(max(d, 0) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
}

func pad(s string, w int) string {
	if n := ansi.StringWidth(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

func padLeft(s string, w int) string {
	if n := ansi.StringWidth(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

// termLine makes a line of text printable on the terminal as one line of the view: no
// escape sequences or control characters but the styling added here, tabs expanded.
func termLine(s string) string {
	s = ansi.Strip(s)
	var b strings.Builder
	col := 0
	for _, r := range s {
		switch {
		case r == '\t':
			n := 8 - col%8
			b.WriteString(strings.Repeat(" ", n))
			col += n
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		default:
			b.WriteRune(r)
			col += ansi.StringWidth(string(r))
		}
	}
	return b.String()
}

// termText is termLine for each line of s; its newlines stay.
func termText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = termLine(l)
	}
	return strings.Join(lines, "\n")
}
