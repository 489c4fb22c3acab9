package report

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// JobSummaryOptions shape a GitHub Actions job summary (GitHubAnnotator.WriteJobSummary).
type JobSummaryOptions struct {
	// Title heads the summary ("godist ./..."); "" is "godist".
	Title string
	// ServerURL, Repository and SHA make the links to failing lines,
	// ServerURL/Repository/blob/SHA/PATH#LLINE, as $GITHUB_SERVER_URL, $GITHUB_REPOSITORY
	// ("owner/name") and $GITHUB_SHA give them. With any of them empty or malformed,
	// locations are shown without links.
	ServerURL, Repository, SHA string
	// Elapsed is the run's wall time.
	Elapsed time.Duration
	// MaxFailures bounds the failures listed, and so the flaky tests (0: 50); a line says
	// how many more there are.
	MaxFailures int
	// MaxOutput bounds the failures whose output is shown (0: 10), each in at most
	// MaxOutputLines lines (0: 30).
	MaxOutput, MaxOutputLines int
	// Slowest is the number of slowest tests listed (0: 10).
	Slowest int
}

func (o *JobSummaryOptions) defaults() {
	if o.Title == "" {
		o.Title = "godist"
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 50
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = 10
	}
	if o.MaxOutputLines <= 0 {
		o.MaxOutputLines = 30
	}
	if o.Slowest <= 0 {
		o.Slowest = 10
	}
}

// Bounds of what one entry of the summary may take: GitHub takes at most 1 MiB of
// summary per step, and with these even MaxFailures entries of the longest names and
// MaxOutput outputs of the longest lines stay far below it.
const (
	mdNameRunes   = 200 // a test or package name
	mdReasonRunes = 300 // the one line saying why
	mdLineRunes   = 300 // a line of output
)

// gatewayLog is what the summary knows of one gateway: its test processes and whether it
// was lost.
type gatewayLog struct {
	spans []span
	lost  bool
}

type span struct{ start, end time.Time }

// SetTotal takes the number of top-level test units planned, for the "not run" count.
func (g *GitHubAnnotator) SetTotal(tests int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total = tests
}

// WorkerState takes a gateway's state: every gateway named gets a row in the summary's
// gateway table; a "lost" one is marked so.
func (g *GitHubAnnotator) WorkerState(id, state string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gw := g.gateway(id)
	gw.lost = gw.lost || state == "lost"
}

// Note takes one of godist's own lines; the annotator has no use for them (flaky tests
// are read from the events).
func (g *GitHubAnnotator) Note(string) {}

// TestProcess takes one test process that ran on worker from start to end.
func (g *GitHubAnnotator) TestProcess(worker string, start, end time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gw := g.gateway(worker)
	gw.spans = append(gw.spans, span{start, end})
}

func (g *GitHubAnnotator) gateway(id string) *gatewayLog {
	if g.gateways == nil {
		g.gateways = map[string]*gatewayLog{}
	}
	gw := g.gateways[id]
	if gw == nil {
		gw = &gatewayLog{}
		g.gateways[id] = gw
	}
	return gw
}

// WriteJobSummary writes the run so far as the Markdown of a GitHub Actions job summary
// (what a step appends to $GITHUB_STEP_SUMMARY):
//
//   - a heading with the summary line, and a table of the totals: passed, failed, skipped,
//     not run, flaky, build failures, package errors, packages, time (counted as the
//     Reporter's Summary counts them);
//   - the failures (the annotations of level error, in their order): each test, package
//     or build with a link to its failing line and why it failed, at most MaxFailures of
//     them and then a line saying how many more; the output of the first MaxOutput of
//     them in a collapsed section;
//   - the flaky tests, each with the workers it failed and passed on and a link to where
//     it failed;
//   - the Slowest slowest runs of top-level tests, with their workers;
//   - each gateway's test processes and busy time (the union of its processes' spans),
//     also as a share of Elapsed.
//
// Sections with nothing to show are left out. Everything taken from the run is escaped:
// no test name or output line can make a link, a tag or a table cell of its own.
func (g *GitHubAnnotator) WriteJobSummary(w io.Writer, opts JobSummaryOptions) error {
	opts.defaults()
	g.mu.Lock()
	md := g.jobSummaryLocked(opts)
	g.mu.Unlock()
	_, err := io.WriteString(w, md)
	return err
}

func (g *GitHubAnnotator) jobSummaryLocked(opts JobSummaryOptions) string {
	var b strings.Builder
	sum := g.model.summary(g.total)
	sum.Elapsed = opts.Elapsed
	icon := "✅"
	switch {
	case sum.Failed > 0 || sum.FailedPackages > 0 || sum.BuildFailures > 0:
		icon = "❌"
	case sum.NotRun > 0:
		icon = "⚠️"
	}
	fmt.Fprintf(&b, "## %s %s: %s\n\n", icon, mdText(opts.Title, mdNameRunes), mdText(sum.String(), 0))
	b.WriteString("| Passed | Failed | Skipped | Not run | Flaky | Build failures | Package errors | Packages | Time |\n")
	b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d | %d | %s |\n\n", sum.Passed, sum.Failed, sum.Skipped, sum.NotRun,
		sum.Flaky, sum.BuildFailures, sum.PackageErrors, sum.Packages, formatSeconds(sum.Elapsed, 2))

	links := newBlobLinks(opts)
	var failures, warnings []githubAnnotation
	for _, a := range g.annotationsLocked() {
		if a.Level == "warning" {
			warnings = append(warnings, a)
		} else {
			failures = append(failures, a)
		}
	}
	entries := groupBuildErrors(failures)
	if len(entries) > 0 {
		fmt.Fprintf(&b, "### Failures (%d)\n\n", len(entries))
		for i, e := range entries {
			if i == opts.MaxFailures {
				fmt.Fprintf(&b, "- … and %s: see the job's log\n", plural(len(entries)-i, "more failure"))
				break
			}
			b.WriteString("- " + e.line(links) + "\n")
		}
		b.WriteString("\n")
		shown := entries[:min(len(entries), opts.MaxOutput)]
		title := "Output of the failure"
		if len(shown) > 1 {
			title = "Output of the first " + strconv.Itoa(len(shown)) + " failures"
		}
		b.WriteString("<details><summary>" + title + "</summary>\n\n")
		for _, e := range shown {
			b.WriteString(e.heading() + "\n\n")
			lines := e.output()
			if n := len(lines) - opts.MaxOutputLines; n > 0 {
				lines = append(lines[:opts.MaxOutputLines:opts.MaxOutputLines], "… "+plural(n, "more line")+" in the log")
			}
			b.WriteString(mdFence(lines, mdLineRunes) + "\n")
		}
		b.WriteString("</details>\n\n")
	}

	if flaky := g.model.flakyTests(); len(flaky) > 0 {
		fmt.Fprintf(&b, "### Flaky tests (%d)\n\n", len(flaky))
		for i, f := range flaky {
			if i == opts.MaxFailures {
				fmt.Fprintf(&b, "- … and %s: see the job's log\n", plural(len(flaky)-i, "more flaky test"))
				break
			}
			line := mdCode(f.name, mdNameRunes) + " in " + mdCode(f.pkg, mdNameRunes) + ": failed on " +
				mdText(strings.Join(f.failedOn, ", "), mdNameRunes) + ", then passed on " + mdText(f.worker, mdNameRunes)
			if a := flakyAnnotation(warnings, f); a != nil && a.File != "" {
				line += ", failing at " + links.location(a.File, a.Line, a.Col)
			}
			b.WriteString("- ⚠️ " + line + "\n")
		}
		b.WriteString("\n")
	}

	if slow := g.model.slowest(opts.Slowest); len(slow) > 0 {
		fmt.Fprintf(&b, "### Slowest tests\n\n| Time | Test | Package | Gateway |\n| ---: | --- | --- | --- |\n")
		for _, t := range slow {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", formatSeconds(t.Elapsed, 2), mdCellCode(t.Test, mdNameRunes),
				mdCellCode(t.Package, mdNameRunes), mdText(t.Worker, mdNameRunes))
		}
		b.WriteString("\n")
	}

	if len(g.gateways) > 0 {
		b.WriteString("### Gateways\n\n| Gateway | Test processes | Busy | Busy share of the run |\n| --- | ---: | ---: | ---: |\n")
		ids := sortedKeys(g.gateways)
		sort.SliceStable(ids, func(i, j int) bool { return naturalLess(ids[i], ids[j]) })
		for _, id := range ids {
			gw := g.gateways[id]
			busy := busyTime(gw.spans)
			share := "–"
			if opts.Elapsed > 0 {
				share = strconv.Itoa(int(100*busy.Seconds()/opts.Elapsed.Seconds()+0.5)) + "%"
			}
			name := mdCellCode(id, mdNameRunes)
			if gw.lost {
				name += " (lost)"
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", name, len(gw.spans), formatSeconds(busy, 2), share)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// summaryEntry is one failure of the summary: an annotation, or a build failure's
// annotations (one per compiler error) together.
type summaryEntry struct {
	a    githubAnnotation
	more []githubAnnotation // a build failure's other compiler errors
}

// groupBuildErrors puts the compiler errors of one build failure into one entry.
func groupBuildErrors(as []githubAnnotation) []summaryEntry {
	var out []summaryEntry
	builds := map[string]int{}
	for _, a := range as {
		if a.kind == "build" {
			if i, ok := builds[a.pkg]; ok {
				out[i].more = append(out[i].more, a)
				continue
			}
			builds[a.pkg] = len(out)
		}
		out = append(out, summaryEntry{a: a})
	}
	return out
}

// what names the failure: the test and its package, the package, or the build.
func (e summaryEntry) what() string {
	switch e.a.kind {
	case "build":
		return "build of " + mdCode(e.a.pkg, mdNameRunes)
	case "package":
		return mdCode(e.a.pkg, mdNameRunes) + " outside its tests"
	}
	return mdCode(e.a.test, mdNameRunes) + " in " + mdCode(e.a.pkg, mdNameRunes)
}

func (e summaryEntry) line(links blobLinks) string {
	s := "❌ " + e.what()
	if e.a.worker != "" {
		s += " on " + mdText(e.a.worker, mdNameRunes)
	}
	if e.a.File != "" {
		s += " at " + links.location(e.a.File, e.a.Line, e.a.Col)
	}
	if e.a.reason != "" {
		s += ": " + mdText(e.a.reason, mdReasonRunes)
	}
	if len(e.more) > 0 {
		s += " " + mdText("(and "+plural(len(e.more), "more error")+")", 0)
	}
	return s
}

func (e summaryEntry) heading() string {
	s := "**" + e.what() + "**"
	if e.a.worker != "" {
		s += " on " + mdText(e.a.worker, mdNameRunes)
	}
	return s
}

// output is what the summary shows of the failure: the annotation's message, or a build
// failure's compiler errors, one a line.
func (e summaryEntry) output() []string {
	if e.a.kind != "build" || len(e.more) == 0 && e.a.File == "" {
		if e.a.lines != nil {
			return e.a.lines
		}
		return strings.Split(e.a.Message, "\n")
	}
	var lines []string
	for _, a := range append([]githubAnnotation{e.a}, e.more...) {
		at := a.File
		if a.Line > 0 {
			at += ":" + strconv.Itoa(a.Line)
			if a.Col > 0 {
				at += ":" + strconv.Itoa(a.Col)
			}
		}
		if at != "" {
			at += ": "
		}
		lines = append(lines, at+a.Message)
	}
	return lines
}

// flakyAnnotation finds the warning of a flaky test: its own, or one of its subtests'.
func flakyAnnotation(warnings []githubAnnotation, f flakyTest) *githubAnnotation {
	for i, a := range warnings {
		if a.pkg == f.pkg && (a.test == f.name || strings.HasPrefix(a.test, f.name+"/")) {
			return &warnings[i]
		}
	}
	return nil
}

// blobLinks makes links to lines of the repository's files at the run's commit.
type blobLinks struct {
	base string // ServerURL/owner/name/blob/SHA, escaped; "" for no links
}

func newBlobLinks(o JobSummaryOptions) blobLinks {
	u, err := url.Parse(strings.TrimRight(o.ServerURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return blobLinks{}
	}
	owner, name, ok := strings.Cut(o.Repository, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") || o.SHA == "" {
		return blobLinks{}
	}
	base := u.String() + "/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/blob/" + url.PathEscape(o.SHA)
	if strings.ContainsAny(base, "<>\n\r\t ") {
		return blobLinks{}
	}
	return blobLinks{base: base}
}

// url is the link to line of file (relative to the repository root, with slashes), or "".
func (l blobLinks) url(file string, line int) string {
	if l.base == "" || file == "" {
		return ""
	}
	segs := strings.Split(file, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u := l.base + "/" + strings.Join(segs, "/")
	if line > 0 {
		u += "#L" + strconv.Itoa(line)
	}
	return u
}

// location is file:line[:col] as code, linked to the line when there are links.
func (l blobLinks) location(file string, line, col int) string {
	text := file
	if line > 0 {
		text += ":" + strconv.Itoa(line)
		if col > 0 {
			text += ":" + strconv.Itoa(col)
		}
	}
	code := mdCode(text, 0)
	u := l.url(file, line)
	if u == "" {
		return code
	}
	return "[" + code + "](<" + u + ">)"
}

// busyTime is the time covered by at least one of spans.
func busyTime(spans []span) time.Duration {
	ss := append([]span(nil), spans...)
	sort.Slice(ss, func(i, j int) bool { return ss[i].start.Before(ss[j].start) })
	var total time.Duration
	var cur span
	have := false
	for _, s := range ss {
		switch {
		case s.end.Before(s.start):
		case !have:
			cur, have = s, true
		case !s.start.After(cur.end):
			if s.end.After(cur.end) {
				cur.end = s.end
			}
		default:
			total += cur.end.Sub(cur.start)
			cur = s
		}
	}
	if have {
		total += cur.end.Sub(cur.start)
	}
	return total
}

// naturalLess orders gateway ids as people count them: gw2 before gw10.
func naturalLess(a, b string) bool {
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	if pa != pb || na < 0 || nb < 0 {
		return a < b
	}
	return na < nb
}

// splitNumber splits s into a prefix and a trailing decimal number (-1 if none).
func splitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || len(s)-i > 9 {
		return s, -1
	}
	n, _ := strconv.Atoi(s[i:])
	return s[:i], n
}
