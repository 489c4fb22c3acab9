package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image/color"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/chromiumtest"
)

// runCounts are the top-level test runs of a package on a worker, by outcome.
type runCounts struct{ Runs, Pass, Fail, Skip, Cut int }

// timelineDoc is what a --timeline page holds, read with an HTML parser.
type timelineDoc struct {
	lanes    []string
	startups map[string]int // start-up phases per lane
	procs    []timelineProc
}

type timelineProc struct {
	worker, pkg, exit string
	start, end        float64
	counts            runCounts
	marks             int // tests in its marks (data-n), which must be all of them
}

func parseTimeline(t *testing.T, b []byte) timelineDoc {
	t.Helper()
	root, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the timeline is not HTML: %v", err)
	}
	doc := timelineDoc{startups: map[string]int{}}
	attr := func(n *html.Node, key string) string {
		for _, a := range n.Attr {
			if a.Key == key {
				return a.Val
			}
		}
		return ""
	}
	number := func(n *html.Node, key string) float64 {
		v, err := strconv.ParseFloat(attr(n, key), 64)
		if err != nil {
			t.Fatalf("<%s class=%q> %s=%q: %v", n.Data, attr(n, "class"), key, attr(n, key), err)
		}
		return v
	}
	var walk func(n *html.Node, lane string, proc *timelineProc)
	walk = func(n *html.Node, lane string, proc *timelineProc) {
		if n.Type == html.ElementNode {
			classes := strings.Fields(attr(n, "class"))
			has := func(c string) bool {
				for _, x := range classes {
					if x == c {
						return true
					}
				}
				return false
			}
			switch {
			case n.Data == "g" && has("lane"):
				lane = attr(n, "data-worker")
				doc.lanes = append(doc.lanes, lane)
			case n.Data == "g" && has("p"):
				doc.procs = append(doc.procs, timelineProc{worker: attr(n, "data-worker"), pkg: attr(n, "data-package"), exit: attr(n, "data-exit"),
					start: number(n, "data-start"), end: number(n, "data-end"),
					counts: runCounts{Runs: int(number(n, "data-tests")), Pass: int(number(n, "data-pass")), Fail: int(number(n, "data-fail")),
						Skip: int(number(n, "data-skip")), Cut: int(number(n, "data-cut"))}})
				if doc.procs[len(doc.procs)-1].worker != lane {
					t.Errorf("a process of %s is drawn on lane %s", attr(n, "data-worker"), lane)
				}
				proc = &doc.procs[len(doc.procs)-1]
			case n.Data == "rect" && has("starting"):
				doc.startups[lane]++
			case n.Data == "rect" && has("t"):
				if proc == nil {
					t.Errorf("a test mark outside a process bar on lane %s", lane)
				} else {
					proc.marks += int(number(n, "data-n"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, lane, proc)
		}
	}
	walk(root, "", nil)
	return doc
}

// jsonRuns is what a --jsonfile says ran where: top-level test runs per "worker pkg", by
// how they ended (a run without an end there, or ended by the run's stop, is cut short).
func jsonRuns(t *testing.T, b []byte) (map[string]runCounts, map[string]bool) {
	t.Helper()
	out := map[string]runCounts{}
	workers := map[string]bool{}
	stopped := map[string]bool{}
	open := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e gotest.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("--jsonfile line %q: %v", sc.Text(), err)
		}
		if e.Worker != "" {
			workers[e.Worker] = true
		}
		if e.Test == "" || strings.Contains(e.Test, "/") {
			continue
		}
		k := e.Worker + " " + e.Package
		test := k + " " + e.Test
		c := out[k]
		switch {
		case e.Action == gotest.ActionRun:
			c.Runs++
			open[test]++
		case e.Action == gotest.ActionOutput && strings.HasPrefix(e.Output, gotest.StoppedPrefix):
			stopped[test] = true
		case gotest.IsTerminal(e.Action) && open[test] > 0:
			open[test]--
			switch {
			case stopped[test]:
				c.Cut++
				delete(stopped, test)
			case e.Action == gotest.ActionPass:
				c.Pass++
			case e.Action == gotest.ActionFail:
				c.Fail++
			default:
				c.Skip++
			}
		}
		out[k] = c
	}
	for test, n := range open {
		f := strings.Fields(test)
		k := f[0] + " " + f[1]
		c := out[k]
		c.Cut += n
		out[k] = c
	}
	return out, workers
}

// --timeline draws every gateway of a real run and every test process, each with the
// tests that the run's --jsonfile says ran there, counted by outcome; the page opens in
// headless Chromium without a JavaScript error or a fetch, and looks like a chart.
func TestEndToEndTimeline(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	tmp := t.TempDir()
	page, jf := filepath.Join(tmp, "timeline.html"), filepath.Join(tmp, "run.json")
	_, stderr, code := runCmd(t, dir, godistBin, "-n", "3", "--durations", filepath.Join(tmp, "d.json"),
		"--timeline", page, "--jsonfile", jf,
		"./pass", "./fail", "./skip", "./panic", "./exit", "./parallel", "./subtests", "./slow")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (fixtures fail); stderr:\n%s", code, stderr)
	}
	b, j := mustRead(t, page), mustRead(t, jf)
	doc := checkTimeline(t, b, j, "gw0 gw1 gw2")
	crashed := 0
	for _, p := range doc.procs {
		if strings.HasSuffix(p.pkg, "/fixtures/panic") && p.exit != "ok" {
			crashed++
		}
	}
	if crashed == 0 {
		t.Errorf("no process of the panic fixture with an exit other than ok")
	}
	if len(doc.procs) < 8 {
		t.Errorf("%d processes for 8 packages (and a crash)", len(doc.procs))
	}

	// In a browser.
	ctx := context.Background()
	dom := chromiumtest.DumpDOM(ctx, t, page, "g.p rect")
	if dom.Errors != 0 {
		t.Errorf("%d JavaScript errors, the last: %s", dom.Errors, dom.LastError)
	}
	if dom.Resources != 0 {
		t.Errorf("the page fetched %d resources", dom.Resources)
	}
	samePkg := 0
	for _, p := range doc.procs {
		if p.pkg == doc.procs[0].pkg {
			samePkg++
		}
	}
	if dom.Hovered != samePkg {
		t.Errorf("the pointer on the first process lit %d processes, want the %d of its package", dom.Hovered, samePkg)
	}
	png := chromiumtest.ArtifactPath(t, "timeline-e2e.png")
	chromiumtest.Screenshot(ctx, t, page, png, 1800, 700)
	for _, c := range []struct {
		name string
		rgb  color.RGBA
	}{{"pass", color.RGBA{0x3f, 0x9c, 0x4f, 0}}, {"fail", color.RGBA{0xd9, 0x3b, 0x35, 0}}} {
		if n := chromiumtest.CountColor(t, png, c.rgb, 6); n < 20 {
			t.Errorf("the screenshot has %d pixels of the %s colour", n, c.name)
		}
	}
}

// checkTimeline checks a --timeline page against the --jsonfile of its run: the lanes are
// the gateways, each with its start-up; every process's marks hold all its tests; a lane's
// processes do not overlap; and per worker and package, the processes hold the test runs
// the stream has, by outcome.
func checkTimeline(t *testing.T, page, jsonfile []byte, lanes string) timelineDoc {
	t.Helper()
	doc := parseTimeline(t, page)
	want, workers := jsonRuns(t, jsonfile)

	if strings.Join(doc.lanes, " ") != lanes {
		t.Errorf("lanes %v, want %s", doc.lanes, lanes)
	}
	for w := range workers {
		if doc.startups[w] != 1 {
			t.Errorf("%s ran tests; its lane has %d start-up phases, want 1", w, doc.startups[w])
		}
	}
	got := map[string]runCounts{}
	ends := map[string]float64{}
	for _, p := range doc.procs {
		if p.marks != p.counts.Runs {
			t.Errorf("process of %s on %s: marks hold %d tests, its bar says %d", p.pkg, p.worker, p.marks, p.counts.Runs)
		}
		if p.end < p.start {
			t.Errorf("process of %s on %s ends (%v) before it starts (%v)", p.pkg, p.worker, p.end, p.start)
		}
		// A gateway runs one process at a time.
		if p.start < ends[p.worker] {
			t.Errorf("process of %s on %s starts at %vms, before the lane's previous one ended (%vms)", p.pkg, p.worker, p.start, ends[p.worker])
		}
		ends[p.worker] = p.end
		k := p.worker + " " + p.pkg
		c := got[k]
		c.Runs += p.counts.Runs
		c.Pass += p.counts.Pass
		c.Fail += p.counts.Fail
		c.Skip += p.counts.Skip
		c.Cut += p.counts.Cut
		got[k] = c
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: the timeline has %+v, the --jsonfile %+v", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: a process in the timeline, no test of it in the --jsonfile", k)
		}
	}
	return doc
}

// In each mode every gateway runs every package: a process of each on every lane.
func TestEndToEndTimelineEach(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	tmp := t.TempDir()
	page, jf := filepath.Join(tmp, "timeline.html"), filepath.Join(tmp, "run.json")
	_, stderr, code := runCmd(t, dir, godistBin, "--dist", "each", "--tx", "popen", "--tx", "2*popen//id=w", "--durations", filepath.Join(tmp, "d.json"),
		"--timeline", page, "--jsonfile", jf, "./pass", "./skip", "./fail")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (./fail fails); stderr:\n%s", code, stderr)
	}
	b, j := mustRead(t, page), mustRead(t, jf)
	doc := checkTimeline(t, b, j, "gw0 w-0 w-1")
	seen := map[string]bool{}
	for _, p := range doc.procs {
		seen[p.worker+" "+p.pkg] = true
	}
	if len(seen) != 9 {
		t.Errorf("processes of %d gateway-package pairs, want 3 x 3: %v", len(seen), seen)
	}
}

// A gateway that gets the tree shipped (exec=sh: no shared files) has its sync drawn as a
// phase of its own, after its start-up.
func TestEndToEndTimelineSync(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	tmp := t.TempDir()
	page, jf := filepath.Join(tmp, "timeline.html"), filepath.Join(tmp, "run.json")
	env := append(os.Environ(), "NO_COLOR=1", "XDG_CACHE_HOME="+t.TempDir())
	_, stderr, code := runWithEnv(t, env, dir, "--tx", "exec=sh", "--durations", filepath.Join(tmp, "d.json"),
		"--timeline", page, "--jsonfile", jf, "./pass", "./files")
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}
	b, j := mustRead(t, page), mustRead(t, jf)
	checkTimeline(t, b, j, "gw0")
	root, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// The lane's phases, in the order drawn: start-up, then sync, each with a width.
	var phases []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "rect" {
			class, width := "", 0.0
			for _, a := range n.Attr {
				switch a.Key {
				case "class":
					class = a.Val
				case "width":
					width, _ = strconv.ParseFloat(a.Val, 64)
				}
			}
			if (class == "starting" || class == "syncing") && width > 0 {
				phases = append(phases, class)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	if strings.Join(phases, " ") != "starting syncing" {
		t.Errorf("phases drawn on gw0: %v, want starting syncing", phases)
	}
}
