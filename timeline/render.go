package timeline

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Geometry of the chart, in CSS pixels.
const (
	plotW    = 1100.0 // the time axis
	labelW   = 90.0   // gateway ids, left of it
	axisH    = 30.0   // tick labels, above the lanes
	padR     = 14.0
	chartH   = 900.0 // the lanes together, within laneMin and laneMax each
	laneMin  = 10.0
	laneMax  = 28.0
	maxRows  = 3   // sub-rows of parallel tests in a process bar
	minMark  = 3.0 // a test narrower than this is drawn with its neighbours, per pixel column
	maxNames = 5   // names of tests listed in an aggregate's tooltip, per kind
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

// Write writes the timeline page of run to w: one HTML file that needs nothing else.
func Write(w io.Writer, run Run) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	err := pageTmpl.Execute(bw, layout(run))
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return nil
}

// The page's model: every number already laid out and formatted.
type page struct {
	Title, Started, Duration string
	W, H                     string
	Bottom                   string
	Ticks                    []tick
	Lanes                    []laneView
	Counts                   []count
	Procs, Cached            int
	A                        analysis
	Span, Bound, Work        string
	Efficiency               string
	Ready                    int
	Steps                    []stepView
	CritLast                 string
	Longest                  string
	LongestProc              string
	Idle                     []idleRow
	Empty                    bool
}

type tick struct{ X, Label string }

type count struct {
	Class, Label string
	N            int
}

type laneView struct {
	ID, Label, What, Y, H, TextY string
	Crit, Band                   bool
	Phases                       []rectView
	Procs                        []procView
	Marks                        []rectView // lost markers
}

type rectView struct {
	Class, X, Y, W, H, Title string
	N                        int // tests in a test mark
}

type procView struct {
	Worker, Package, Exit, Start, End string
	N, Pass, Fail, Skip, Cut          int
	Class, Title                      string
	X, Y, W, H                        string
	Marks                             []rectView
}

type stepView struct {
	Class, From, Dur, What string
}

type idleRow struct {
	ID, Ready, Startup, Sync, Busy, Idle, Tail, Util string
	UtilW, What                                      string
	Crit, Lost                                       bool
}

// scale maps times to x.
type scale struct {
	origin time.Time
	pxPerS float64
}

func (s scale) x(t time.Time) float64 { return labelW + t.Sub(s.origin).Seconds()*s.pxPerS }

func layout(run Run) page {
	a := analyze(run)
	total := run.End.Sub(run.Origin)
	sc := scale{origin: run.Origin, pxPerS: plotW / math.Max(total.Seconds(), 1e-3)}
	n := max(len(run.Lanes), 1)
	laneH := math.Max(laneMin, math.Min(laneMax, math.Floor(chartH/float64(n))))
	pg := page{
		Title:    run.Title,
		Started:  run.Origin.Format("2006-01-02 15:04:05 MST"),
		Duration: fmtDur(total),
		W:        num(labelW + plotW + padR),
		H:        num(axisH + laneH*float64(len(run.Lanes)) + 6),
		Bottom:   num(axisH + laneH*float64(len(run.Lanes))),
		Procs:    a.Procs,
		Cached:   run.Cached,
		A:        a,
		Work:     fmtDur(a.Work),
		Span:     fmtDur(a.Span),
		Bound:    fmtDur(a.Bound),
		Empty:    a.Procs == 0,
	}
	for _, o := range []struct{ class, label string }{{Pass, "passed"}, {Fail, "failed"}, {Skip, "skipped"}, {Cut, "cut short"}} {
		pg.Counts = append(pg.Counts, count{o.class, o.label, a.Tests[o.class]})
	}
	if a.Span > 0 {
		pg.Efficiency = fmt.Sprintf("%.0f%%", 100*a.Bound.Seconds()/a.Span.Seconds())
	}
	for _, st := range a.Lanes {
		if !st.Ready.IsZero() {
			pg.Ready++
		}
	}
	step := niceStep(total.Seconds() / 10)
	for s := 0.0; s <= total.Seconds()+1e-9; s += step {
		pg.Ticks = append(pg.Ticks, tick{X: num(labelW + s*sc.pxPerS), Label: fmtOffset(s, step)})
	}
	for i, l := range run.Lanes {
		st := a.Lanes[i]
		y := axisH + laneH*float64(i)
		lv := laneView{ID: l.ID, Label: shorten(l.ID, 11), Y: num(y), H: num(laneH), TextY: num(y + laneH/2 + 4), Crit: l.ID == a.CriticalLane, Band: i%2 == 1}
		// Idle is a line under the lane's processes, where it was up.
		for _, u := range st.up {
			x0, x1 := sc.x(u.from), sc.x(u.to)
			lv.Phases = append(lv.Phases, rectView{Class: phaseIdle, X: num(x0), Y: num(y + laneH/2 - 1), W: num(math.Max(x1-x0, 0.5)), H: "2",
				Title: fmt.Sprintf("%s up %s → %s, idle %s (%s of it after its last process)", l.ID, fmtAt(run, u.from), fmtAt(run, u.to), fmtDur(st.Idle), fmtDur(st.Tail))})
		}
		for _, ph := range st.phases {
			if ph.kind == phaseIdle {
				continue
			}
			x0, x1 := sc.x(ph.from), sc.x(ph.to)
			what := "start-up"
			if ph.kind == phaseSync {
				what = "sync (tree shipped)"
			}
			lv.Phases = append(lv.Phases, rectView{Class: ph.kind, X: num(x0), Y: num(y + 2), W: num(math.Max(x1-x0, 0.5)), H: num(laneH - 4),
				Title: fmt.Sprintf("%s %s %s\n%s → %s", l.ID, what, fmtDur(ph.dur()), fmtAt(run, ph.from), fmtAt(run, ph.to))})
		}
		for _, s := range l.States {
			if s.State == "lost" {
				lv.Marks = append(lv.Marks, rectView{Class: "lost", X: num(sc.x(s.At) - 1), Y: num(y), W: "2", H: num(laneH),
					Title: fmt.Sprintf("%s lost at %s", l.ID, fmtAt(run, s.At))})
			}
		}
		for _, p := range l.Procs {
			lv.Procs = append(lv.Procs, procOf(run, sc, p, y, laneH, l.ID == a.CriticalLane))
		}
		row := idleRow{ID: st.ID, Startup: fmtDur(st.Startup), Sync: fmtDur(st.Sync), Busy: fmtDur(st.Busy),
			Idle: fmtDur(st.Idle), Tail: fmtDur(st.Tail), Crit: lv.Crit, Lost: st.Lost, Ready: "never", UtilW: "0",
			What: fmt.Sprintf("%s: %s, %s", st.ID, plural(st.Procs, "test process"), plural(st.Tests, "test run"))}
		lv.What = row.What
		if lv.Crit {
			lv.What += "; the run's tests ended here (the critical path)"
		}
		if !st.Ready.IsZero() {
			row.Ready = fmtAt(run, st.Ready)
		}
		if up := st.Busy + st.Idle; up > 0 {
			u := st.Busy.Seconds() / up.Seconds()
			row.Util = fmt.Sprintf("%.0f%%", 100*u)
			row.UtilW = num(60 * u)
		}
		pg.Lanes = append(pg.Lanes, lv)
		pg.Idle = append(pg.Idle, row)
	}
	pixel := time.Duration(float64(total) / plotW)
	for _, s := range a.Critical {
		if s.Kind == phaseIdle && s.dur() < pixel {
			continue // not to be seen on the chart either
		}
		v := stepView{Class: s.Kind, From: fmtAt(run, s.from), Dur: fmtDur(s.dur())}
		switch s.Kind {
		case phaseStart:
			v.What = "start-up of the gateway"
		case phaseSync:
			v.What = "sync: the tree shipped"
		case phaseIdle:
			v.What = "idle: no test process (waiting for a binary, or for work)"
		default:
			v.Class = "process"
			v.What = fmt.Sprintf("%s, %s", s.Package, plural(s.Tests, "test"))
			if s.Exit != "ok" {
				v.What += " (" + s.Exit + ")"
			}
		}
		pg.Steps = append(pg.Steps, v)
	}
	if n := len(a.Critical); n > 0 {
		last := a.Critical[n-1]
		pg.CritLast = fmt.Sprintf("%s, at %s", last.Package, fmtAt(run, last.to))
	}
	if p := a.Longest; p != nil {
		pg.Longest = fmt.Sprintf("%s: %s of process time in %s on %s, %s → %s", p.Package, fmtDur(p.Work),
			plural(p.Procs, "process"), plural(p.Lanes, "lane"), fmtAt(run, p.First), fmtAt(run, p.Last))
	}
	if p := a.LongestProc; p != nil {
		pg.LongestProc = fmt.Sprintf("%s on %s, %s (%s → %s)", p.Package, p.Worker, fmtDur(p.End.Sub(p.Start)), fmtAt(run, p.Start), fmtAt(run, p.End))
	}
	return pg
}

// procOf lays out one process bar and the tests in it.
func procOf(run Run, sc scale, p *Proc, y, laneH float64, crit bool) procView {
	x0, x1 := sc.x(p.Start), sc.x(p.End)
	v := procView{Worker: p.Worker, Package: p.Package, Exit: p.Exit, N: len(p.Runs),
		Start: ms(run, p.Start), End: ms(run, p.End),
		X: num(x0), Y: num(y + 1), W: num(math.Max(x1-x0, 1)), H: num(laneH - 2), Class: "pb"}
	switch {
	case p.Exit == "lost":
		v.Class += " plost"
	case p.Exit != "ok":
		v.Class += " pfail"
	}
	if crit {
		v.Class += " crit"
	}
	counts := map[string]int{}
	for _, t := range p.Runs {
		counts[t.Outcome]++
	}
	v.Pass, v.Fail, v.Skip, v.Cut = counts[Pass], counts[Fail], counts[Skip], counts[Cut]
	what := plural(len(p.Runs), "test")
	switch {
	case p.Bench:
		what = "benchmarks, " + what
	case p.Tests == nil:
		what = "the whole package, " + what
	}
	v.Title = fmt.Sprintf("%s\n%s, %s → %s (%s)\n%s%s\nexit: %s", p.Package, p.Worker, fmtAt(run, p.Start), fmtAt(run, p.End),
		fmtDur(p.End.Sub(p.Start)), what, countsText(counts), p.Exit)

	// Tests in up to maxRows rows (parallel tests overlap), each row's tests in pixel
	// columns where they are too narrow to draw alone.
	runs := append([]*Test(nil), p.Runs...)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
	var rowEnd []time.Time
	rowOf := make([]int, len(runs))
	for i, t := range runs {
		r := -1
		for j, e := range rowEnd {
			if !e.After(t.Start) {
				r = j
				break
			}
		}
		if r < 0 && len(rowEnd) < maxRows {
			r = len(rowEnd)
			rowEnd = append(rowEnd, time.Time{})
		}
		if r < 0 {
			r = 0
			for j, e := range rowEnd {
				if e.Before(rowEnd[r]) {
					r = j
				}
			}
		}
		rowOf[i] = r
		if t.End.After(rowEnd[r]) {
			rowEnd[r] = t.End
		}
	}
	rows := max(len(rowEnd), 1)
	innerY, innerH := y+3, laneH-6
	rowH := innerH / float64(rows)
	for r := 0; r < rows; r++ {
		ry := innerY + rowH*float64(r)
		var cols []column
		for i, t := range runs {
			if rowOf[i] != r {
				continue
			}
			from, to := clampTime(t.Start, p.Start, p.End), clampTime(t.End, p.Start, p.End)
			tx0, tx1 := sc.x(from), sc.x(to)
			if tx1-tx0 >= minMark {
				v.Marks = append(v.Marks, rectView{Class: "t " + t.Outcome, X: num(tx0), Y: num(ry), W: num(tx1 - tx0), H: num(rowH), N: 1,
					Title: fmt.Sprintf("%s: %s, %s\n%s → %s", t.Name, t.Outcome, fmtDur(testDur(t)), fmtAt(run, from), fmtAt(run, to))})
				continue
			}
			// It joins the column of the pixel it starts in, if one covers it.
			c := int(math.Floor(tx0))
			if n := len(cols); n == 0 || c > cols[n-1].last {
				cols = append(cols, column{col: c, last: c, from: from})
			}
			cols[len(cols)-1].add(t, to, max(c, int(math.Ceil(tx1))-1))
		}
		for _, c := range mergeColumns(cols) {
			v.Marks = append(v.Marks, rectView{Class: "t " + c.worst() + " agg", X: num(float64(c.col)), Y: num(ry), W: num(float64(c.last - c.col + 1)), H: num(rowH),
				N: c.n, Title: c.title(run)})
		}
	}
	return v
}

// column is tests of a row too narrow to draw alone, that cover pixel columns col to last.
type column struct {
	col, last int
	n         int
	counts    [4]int // by outcomeRank
	from, to  time.Time
	names     [4][]string // a few names per outcome
	longest   []*Test     // the longest few
}

// outcomeRank orders outcomes by how much they matter: an aggregate is coloured by its
// worst.
func outcomeRank(o string) int {
	switch o {
	case Fail:
		return 3
	case Cut:
		return 2
	case Skip:
		return 1
	}
	return 0
}

var outcomeByRank = [4]string{Pass, Skip, Cut, Fail}

func (c *column) add(t *Test, to time.Time, lastPx int) {
	c.n++
	c.last = max(c.last, lastPx)
	k := outcomeRank(t.Outcome)
	c.counts[k]++
	if len(c.names[k]) < maxNames {
		c.names[k] = append(c.names[k], t.Name)
	}
	if to.After(c.to) {
		c.to = to
	}
	c.longest = append(c.longest, t)
	sort.SliceStable(c.longest, func(i, j int) bool { return testDur(c.longest[i]) > testDur(c.longest[j]) })
	if len(c.longest) > 3 {
		c.longest = c.longest[:3]
	}
}

func (c *column) worst() string {
	for k := 3; k > 0; k-- {
		if c.counts[k] > 0 {
			return outcomeByRank[k]
		}
	}
	return Pass
}

// merge takes d, the next column, into c.
func (c *column) merge(d column) {
	c.last = d.last
	c.n += d.n
	if d.to.After(c.to) {
		c.to = d.to
	}
	for k := range c.counts {
		c.counts[k] += d.counts[k]
		for _, name := range d.names[k] {
			if len(c.names[k]) < maxNames {
				c.names[k] = append(c.names[k], name)
			}
		}
	}
	c.longest = append(c.longest, d.longest...)
	sort.SliceStable(c.longest, func(i, j int) bool { return testDur(c.longest[i]) > testDur(c.longest[j]) })
	if len(c.longest) > 3 {
		c.longest = c.longest[:3]
	}
}

// mergeColumns joins neighbouring columns of the same colour into one mark.
func mergeColumns(cols []column) []column {
	var out []column
	for _, c := range cols {
		if n := len(out); n > 0 && c.col <= out[n-1].last+1 && c.worst() == out[n-1].worst() {
			out[n-1].merge(c)
			continue
		}
		out = append(out, c)
	}
	return out
}

func (c *column) title(run Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s → %s:", plural(c.n, "test"), fmtAt(run, c.from), fmtAt(run, c.to))
	sep := " "
	for k := 0; k < 4; k++ {
		if c.counts[k] > 0 {
			fmt.Fprintf(&b, "%s%d %s", sep, c.counts[k], outcomeByRank[k])
			sep = ", "
		}
	}
	for k := 3; k > 0; k-- {
		if c.counts[k] == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s: %s", outcomeByRank[k], strings.Join(c.names[k], ", "))
		if more := c.counts[k] - len(c.names[k]); more > 0 {
			fmt.Fprintf(&b, " and %d more", more)
		}
	}
	if c.n > 1 {
		b.WriteString("\nlongest:")
		for i, t := range c.longest {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s %s", t.Name, fmtDur(testDur(t)))
		}
	} else if len(c.longest) == 1 {
		fmt.Fprintf(&b, "\n%s %s", c.longest[0].Name, fmtDur(testDur(c.longest[0])))
	}
	return b.String()
}

// testDur is how long a test took: as its binary said, else as the stream saw it.
func testDur(t *Test) time.Duration {
	if t.Elapsed > 0 {
		return time.Duration(t.Elapsed * float64(time.Second))
	}
	return max(t.End.Sub(t.Start), 0)
}

func countsText(c map[string]int) string {
	var parts []string
	for _, o := range []string{Pass, Fail, Skip, Cut} {
		if c[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[o], o))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

func clampTime(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		return lo
	}
	if t.After(hi) {
		return hi
	}
	return t
}

// num formats a coordinate: one decimal, without a trailing ".0".
func num(f float64) string {
	s := strconv.FormatFloat(math.Round(f*10)/10, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

// ms is t's offset from the run's origin in milliseconds, for data attributes.
func ms(run Run, t time.Time) string {
	return strconv.FormatFloat(float64(t.Sub(run.Origin).Microseconds())/1000, 'f', -1, 64)
}

func fmtAt(run Run, t time.Time) string {
	return fmtSeconds(t.Sub(run.Origin).Seconds())
}

func fmtSeconds(s float64) string {
	if s < 100 {
		return strconv.FormatFloat(s, 'f', 3, 64) + " s"
	}
	m := int(s) / 60
	return fmt.Sprintf("%dm%04.1fs", m, s-float64(60*m))
}

// fmtDur is a duration for people: 0.4 ms, 12 ms, 1.23 s, 2m05.0s.
func fmtDur(d time.Duration) string {
	s := d.Seconds()
	switch {
	case d <= 0:
		return "0 s"
	case s < 0.01:
		return strconv.FormatFloat(s*1000, 'f', 1, 64) + " ms"
	case s < 1:
		return strconv.FormatFloat(s*1000, 'f', 0, 64) + " ms"
	case s < 100:
		return strconv.FormatFloat(s, 'f', 2, 64) + " s"
	}
	m := int(s) / 60
	return fmt.Sprintf("%dm%04.1fs", m, s-float64(60*m))
}

// fmtOffset labels a tick at s seconds of a step.
func fmtOffset(s, step float64) string {
	if s >= 120 && step >= 1 {
		m := int(s+0.5) / 60
		return fmt.Sprintf("%dm%02ds", m, int(s+0.5)-60*m)
	}
	decimals := 0
	for d := step; d < 0.999 && decimals < 4; d *= 10 {
		decimals++
	}
	return strconv.FormatFloat(s, 'f', decimals, 64) + "s"
}

// niceStep is the tick step nearest to want of 1, 2 or 5 times a power of ten.
func niceStep(want float64) float64 {
	if want <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(want)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= want {
			return m * p
		}
	}
	return 10 * p
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "s") {
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// shorten cuts s to n runes, ending it with an ellipsis if it was longer.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
