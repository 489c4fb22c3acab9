package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/mdtest"
)

// The job summary is checked as GitHub shows it: rendered by a CommonMark parser with
// GitHub's extensions (goldmark with GFM: tables, autolinks), raw HTML let through as
// GitHub lets <details> through, and the HTML read back into a tree.

// renderSummary renders md as GitHub would and parses the HTML.
func renderSummary(t testing.TB, md string) (*mdtest.Node, string) {
	t.Helper()
	doc, page, err := mdtest.Render(md)
	if err != nil {
		t.Fatalf("the rendered summary does not parse: %v\n%s", err, page)
	}
	return doc, page
}

// sectionRows are the rows of the table of a section, nil if there is no such section.
func sectionRows(doc *mdtest.Node, title string) [][]string {
	return doc.Section("h3", title).TableRows()
}

const testBase = "https://github.example/o/r/blob/0123abc"

var testLinks = JobSummaryOptions{ServerURL: "https://github.example/", Repository: "o/r", SHA: "0123abc", Elapsed: 10 * time.Second}

// summaryOf plays a testdata script into an annotator, with a test process per top-level
// run of a test (start and end from its events) and the script's worker states.
func summaryOf(t *testing.T, script string, opts GitHubOptions, sopts JobSummaryOptions) string {
	t.Helper()
	g := NewGitHubAnnotator(opts)
	for _, s := range loadScript(t, script) {
		switch s.Op {
		case "total":
			g.SetTotal(s.N)
		case "state":
			g.WorkerState(s.ID, s.State)
		case "note":
			g.Note(s.Msg)
		default:
			g.Event(s.event)
		}
	}
	var buf bytes.Buffer
	if err := g.WriteJobSummary(&buf, sopts); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// failureItems are the <li> of a section.
func failureItems(t *testing.T, doc *mdtest.Node, title string) []*mdtest.Node {
	t.Helper()
	sec := doc.Section("h3", title)
	if sec == nil {
		t.Fatalf("no section %q", title)
	}
	return sec.Items()
}

// itemOf finds the item that names test (as code) in pkg.
func itemOf(items []*mdtest.Node, test, pkg string) *mdtest.Node {
	for _, li := range items {
		codes := li.All("code")
		if len(codes) >= 2 && codes[0].TextContent() == test && codes[1].TextContent() == pkg {
			return li
		}
	}
	return nil
}

// checkLink checks that li links to path at line, with path:line as the link's text.
func checkLink(t *testing.T, li *mdtest.Node, path string, line int, text string) {
	t.Helper()
	as := li.All("a")
	want := fmt.Sprintf("%s/%s#L%d", testBase, path, line)
	for _, a := range as {
		if a.Attrs["href"] == want {
			if got := a.TextContent(); got != text {
				t.Errorf("link to %s reads %q, want %q", want, got, text)
			}
			return
		}
	}
	var got []string
	for _, a := range as {
		got = append(got, a.Attrs["href"])
	}
	t.Errorf("%q: no link to %s (links: %q)", li.TextContent(), want, got)
}

func TestJobSummaryFixtures(t *testing.T) {
	md := summaryOf(t, "gotest-fixtures.jsonl", GitHubOptions{Workspace: "/work/main", Dirs: fixtureDirs(), BuildDir: "/work/main/fixtures"}, testLinks)
	golden(t, "summary-fixtures.md", []byte(md))
	doc, page := renderSummary(t, md)

	h2 := doc.All("h2")
	if len(h2) != 1 || !strings.Contains(h2[0].TextContent(), "64 passed, 11 failed, 8 skipped in 10.00s") {
		t.Errorf("heading: %q", doc.TextContent())
	}
	rows := doc.TableRows()
	wantRows := [][]string{
		{"Passed", "Failed", "Skipped", "Not run", "Flaky", "Build failures", "Package errors", "Packages", "Time"},
		{"64", "11", "8", "1", "0", "1", "1", "11", "10.00s"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(wantRows) {
		t.Errorf("totals table:\n got %q\nwant %q", rows, wantRows)
	}

	items := failureItems(t, doc, "Failures")
	const mod = "github.com/godist/godist/fixtures/"
	for _, c := range []struct {
		test, pkg, path string
		line            int
		text, reason    string
	}{
		{"TestFatal", mod + "fail", "fixtures/fail/fail_test.go", 22, "fixtures/fail/fail_test.go:22", "fatal error"},
		{"TestError", mod + "fail", "fixtures/fail/fail_test.go", 17, "fixtures/fail/fail_test.go:17", "still running after t.Error"},
		{"TestSubFails/bad", mod + "fail", "fixtures/fail/fail_test.go", 35, "fixtures/fail/fail_test.go:35", "sub failed"},
		{"TestPanic", mod + "panic", "fixtures/panic/panic_test.go", 9, "fixtures/panic/panic_test.go:9", "panic: boom"},
		{"TestExit", mod + "exit", "fixtures/exit/exit_test.go", 11, "fixtures/exit/exit_test.go:11", "about to exit"},
		{"TestA/fail/bad/worse", mod + "subtests", "fixtures/subtests/subtests_test.go", 27, "fixtures/subtests/subtests_test.go:27", "failing three levels down"},
	} {
		li := itemOf(items, c.test, c.pkg)
		if li == nil {
			t.Errorf("no failure item for %s in %s", c.test, c.pkg)
			continue
		}
		checkLink(t, li, c.path, c.line, c.text)
		if !strings.Contains(li.TextContent(), c.reason) {
			t.Errorf("%s: %q does not say %q", c.test, li.TextContent(), c.reason)
		}
	}
	// A failure with no line has no link, and a parent whose subtest failed no item.
	if li := itemOf(items, "TestPrintAndFail", mod+"fail"); li == nil || len(li.All("a")) != 0 {
		t.Errorf("TestPrintAndFail: %v", li)
	}
	if li := itemOf(items, "TestSubFails", mod+"fail"); li != nil {
		t.Errorf("TestSubFails is listed, but its subtest failed: %q", li.TextContent())
	}
	var build *mdtest.Node
	for _, li := range items {
		if strings.HasPrefix(li.TextContent(), "❌ build of "+mod+"buildfail") {
			build = li
		}
	}
	if build == nil {
		t.Fatalf("no build failure item in %d items", len(items))
	}
	checkLink(t, build, "fixtures/buildfail/buildfail_test.go", 6, "fixtures/buildfail/buildfail_test.go:6:14")
	if len(items) != 9 {
		t.Errorf("%d failure items, want 9", len(items))
	}

	details := doc.All("details")
	if len(details) != 1 || !strings.Contains(details[0].TextContent(), "fail_test.go:22: fatal error") ||
		!strings.Contains(details[0].TextContent(), "panic: boom") {
		t.Errorf("no output of the failures in a <details>:\n%s", page)
	}
	// Every run of the fixtures' stream took 0.00s: no one's slowest (the table's rows are
	// TestJobSummaryFlakyAndGateways's).
	if doc.Section("h3", "Flaky") != nil || doc.Section("h3", "Gateways") != nil || doc.Section("h3", "Slowest tests") != nil {
		t.Errorf("sections with nothing to show:\n%s", page)
	}
}

func TestJobSummaryFlakyAndGateways(t *testing.T) {
	g := NewGitHubAnnotator(GitHubOptions{Workspace: "/repo", Dirs: map[string]string{"example.com/rerun": "/repo/rerun"}})
	for _, s := range loadScript(t, "junit-rerun.jsonl") {
		if s.Op == "" {
			g.Event(s.event)
		}
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	for _, id := range []string{"gw10", "gw2", "gw1", "gw3"} {
		g.WorkerState(id, "ready")
	}
	g.WorkerState("gw3", "lost")
	// gw1: two processes overlapping by a second, and one later: 4s + 1s busy.
	g.TestProcess("gw1", at(0), at(3))
	g.TestProcess("gw1", at(2), at(4))
	g.TestProcess("gw1", at(6), at(7))
	g.TestProcess("gw2", at(0), at(2.5))
	g.TestProcess("gw10", at(1), at(1.5))
	var buf bytes.Buffer
	opts := testLinks
	if err := g.WriteJobSummary(&buf, opts); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary-rerun.md", buf.Bytes())
	doc, page := renderSummary(t, buf.String())

	flaky := failureItems(t, doc, "Flaky tests")
	if li := itemOf(flaky, "TestFlaky", "example.com/rerun"); li == nil {
		t.Errorf("TestFlaky not listed as flaky:\n%s", page)
	} else {
		checkLink(t, li, "rerun/flaky_test.go", 27, "rerun/flaky_test.go:27")
		if !strings.Contains(li.TextContent(), "failed on gw1, then passed on gw2") {
			t.Errorf("TestFlaky: %q", li.TextContent())
		}
	}
	// Flaky through a subtest: linked at the subtest's failure.
	if li := itemOf(flaky, "TestSubs", "example.com/rerun"); li == nil {
		t.Errorf("TestSubs not listed as flaky:\n%s", page)
	} else {
		checkLink(t, li, "rerun/subs_test.go", 14, "rerun/subs_test.go:14")
	}
	if failures := failureItems(t, doc, "Failures"); len(failures) != 1 || itemOf(failures, "TestBroken", "example.com/rerun") == nil {
		t.Errorf("failures: want only TestBroken:\n%s", page)
	}

	rows := sectionRows(doc, "Gateways")
	want := [][]string{
		{"Gateway", "Test processes", "Busy", "Busy share of the run"},
		{"gw1", "3", "5.00s", "50%"},
		{"gw2", "1", "2.50s", "25%"},
		{"gw3 (lost)", "0", "0.00s", "0%"},
		{"gw10", "1", "0.50s", "5%"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("gateways:\n got %q\nwant %q", rows, want)
	}
}

// failingEvents is a run of n failing tests of one package, each with lines lines of
// output of width characters.
func failingEvents(pkg string, n, lines, width int) []gotest.Event {
	var es []gotest.Event
	for i := range n {
		var out []string
		for j := range lines {
			out = append(out, fmt.Sprintf("    a_test.go:%d: %s\n", j+1, strings.Repeat("x", width)))
		}
		es = append(es, failedTest(pkg, fmt.Sprintf("Test%03d", i), out...)...)
	}
	return es
}

func TestJobSummaryBounded(t *testing.T) {
	g := NewGitHubAnnotator(GitHubOptions{Workspace: "/ws", Dirs: map[string]string{"example.com/p": "/ws/p"}})
	for _, e := range failingEvents("example.com/p", 130, 200, 5000) {
		g.Event(e)
	}
	var buf bytes.Buffer
	if err := g.WriteJobSummary(&buf, testLinks); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 512<<10 {
		t.Errorf("summary of %d bytes: GitHub takes 1 MiB a step, and it should stay far below", buf.Len())
	}
	doc, _ := renderSummary(t, buf.String())
	items := failureItems(t, doc, "Failures")
	if len(items) != 51 || items[50].TextContent() != "… and 80 more failures: see the job's log" {
		t.Fatalf("%d items, the last %q; want 50 and a line for 80 more", len(items), items[len(items)-1].TextContent())
	}
	checkLink(t, items[0], "p/a_test.go", 200, "p/a_test.go:200")
	pres := doc.All("details")[0].All("pre")
	if len(pres) != 10 {
		t.Errorf("output of %d failures, want the first 10", len(pres))
	}
	lines := strings.Split(strings.TrimSuffix(pres[0].TextContent(), "\n"), "\n")
	if len(lines) != 31 || lines[30] != "… 170 more lines in the log" || len([]rune(lines[0])) != mdLineRunes {
		t.Errorf("output block: %d lines, first of %d runes, last %q", len(lines), len([]rune(lines[0])), lines[len(lines)-1])
	}
}

// hostile is a test name with everything Markdown and HTML would take for their own.
const hostile = "TestX/<script>alert(1)</script>|`a`*b*_c_[d](http://evil.example)<!--x-->"

func TestJobSummaryEscaping(t *testing.T) {
	g := NewGitHubAnnotator(GitHubOptions{Workspace: "/ws", Dirs: map[string]string{"example.com/p": "/ws/p"}})
	out := []string{
		"    a_test.go:7: <b>bold</b> | http://evil.example/x ``` *em* [l](http://evil.example) &amp;\n",
		"```\n", "</details>\n", "<script>x</script>\n", "\x1b[31mred\x1b[0m \x00nul\n",
	}
	// The hostile name is a subtest's (top-level tests are Go identifiers); its parent,
	// and a top-level name with a pipe and backticks nonetheless, go to the slowest table.
	events := []gotest.Event{{Action: gotest.ActionRun, Package: "example.com/p", Test: "TestX"}}
	events = append(events, failedTest("example.com/p", hostile, out...)...)
	events = append(events, gotest.Event{Action: gotest.ActionFail, Package: "example.com/p", Test: "TestX", Elapsed: ptr(1.5)},
		gotest.Event{Action: gotest.ActionRun, Package: "example.com/p", Test: "TestY|`z`"},
		gotest.Event{Action: gotest.ActionPass, Package: "example.com/p", Test: "TestY|`z`", Elapsed: ptr(0.5)})
	for _, e := range events {
		g.Event(e)
	}
	g.WorkerState("gw|0", "ready")
	var buf bytes.Buffer
	if err := g.WriteJobSummary(&buf, testLinks); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	doc, page := renderSummary(t, md)
	for _, tag := range []string{"script", "b", "em", "del", "img"} {
		if n := doc.All(tag); len(n) > 0 {
			t.Errorf("<%s> in the rendered summary: test text made markup\n%s", tag, page)
		}
	}
	if n := len(doc.All("strong")); n != 1 {
		t.Errorf("%d <strong>, want the one heading the failure's output\n%s", n, page)
	}
	if strings.Contains(page, "<!--") {
		t.Errorf("an HTML comment in the rendered summary:\n%s", page)
	}
	for _, a := range doc.All("a") {
		if !strings.HasPrefix(a.Attrs["href"], testBase+"/") {
			t.Errorf("a link to %q: test text made a link\n%s", a.Attrs["href"], page)
		}
	}
	if ds := doc.All("details"); len(ds) != 1 || !strings.Contains(ds[0].TextContent(), "</details>") ||
		!strings.Contains(ds[0].TextContent(), "<script>x</script>") {
		t.Errorf("the output did not stay inside its <details> as text:\n%s", page)
	}
	items := failureItems(t, doc, "Failures")
	if len(items) != 1 || itemOf(items, hostile, "example.com/p") == nil {
		t.Errorf("the failure does not name %q as code:\n%s", hostile, page)
	} else {
		checkLink(t, items[0], "p/a_test.go", 7, "p/a_test.go:7")
		if !strings.Contains(items[0].TextContent(), "<b>bold</b> | http://evil.example/x ``` *em*") {
			t.Errorf("the reason is not shown as it was written: %q", items[0].TextContent())
		}
	}
	if rows := sectionRows(doc, "Slowest tests"); len(rows) != 3 || len(rows[2]) != 4 || rows[2][1] != "TestY|`z`" {
		t.Errorf("slowest table rows %q: a pipe split a cell", rows)
	}
	if rows := sectionRows(doc, "Gateways"); len(rows) != 2 || len(rows[1]) != 4 || rows[1][0] != "gw|0" {
		t.Errorf("gateway rows %q", rows)
	}
}

func ptr[T any](v T) *T { return &v }

func TestJobSummaryLinksNeedAllParts(t *testing.T) {
	events := failedTest("example.com/p", "TestA", "    a_test.go:3: boom\n")
	for _, o := range []JobSummaryOptions{
		{ServerURL: "https://github.com", Repository: "o/r"},
		{ServerURL: "https://github.com", SHA: "abc"},
		{Repository: "o/r", SHA: "abc"},
		{ServerURL: "github.com", Repository: "o/r", SHA: "abc"},
		{ServerURL: "https://github.com", Repository: "o/r/x", SHA: "abc"},
		{ServerURL: "javascript:alert(1)", Repository: "o/r", SHA: "abc"},
	} {
		g := NewGitHubAnnotator(GitHubOptions{Workspace: "/ws", Dirs: map[string]string{"example.com/p": "/ws/p"}})
		for _, e := range events {
			g.Event(e)
		}
		var buf bytes.Buffer
		g.WriteJobSummary(&buf, o)
		doc, page := renderSummary(t, buf.String())
		if as := doc.All("a"); len(as) != 0 {
			t.Errorf("%+v: a link without all of server, repository and commit:\n%s", o, page)
		}
		if !strings.Contains(doc.TextContent(), "p/a_test.go:3") {
			t.Errorf("%+v: the location is not shown:\n%s", o, page)
		}
	}
}

// Paths are escaped in links: GitHub finds the file whatever its name holds.
func TestJobSummaryLinkEscaping(t *testing.T) {
	dir := filepath.FromSlash("/ws/sub dir/p#1")
	g := NewGitHubAnnotator(GitHubOptions{Workspace: filepath.FromSlash("/ws"), Dirs: map[string]string{"example.com/p": dir}})
	for _, e := range failedTest("example.com/p", "TestA", "    a (1)_test.go:3: boom\n") {
		g.Event(e)
	}
	var buf bytes.Buffer
	g.WriteJobSummary(&buf, testLinks)
	doc, page := renderSummary(t, buf.String())
	as := doc.All("a")
	want := testBase + "/sub%20dir/p%231/a%20%281%29_test.go#L3"
	if len(as) != 1 || as[0].Attrs["href"] != want || as[0].TextContent() != "sub dir/p#1/a (1)_test.go:3" {
		t.Errorf("link: want %s\n%s", want, page)
	}
}

func TestBusyTime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := func(a, b int) span {
		return span{t0.Add(time.Duration(a) * time.Second), t0.Add(time.Duration(b) * time.Second)}
	}
	for _, c := range []struct {
		spans []span
		want  time.Duration
	}{
		{nil, 0},
		{[]span{s(0, 2)}, 2 * time.Second},
		{[]span{s(5, 6), s(0, 2), s(1, 3)}, 4 * time.Second},
		{[]span{s(0, 10), s(2, 3), s(4, 5)}, 10 * time.Second},
		{[]span{s(0, 1), s(1, 2)}, 2 * time.Second},
		{[]span{s(3, 1), s(0, 1)}, 1 * time.Second}, // an end before its start is left out
	} {
		if got := busyTime(c.spans); got != c.want {
			t.Errorf("busyTime(%v) = %v, want %v", c.spans, got, c.want)
		}
	}
}

// A workspace reached through a symbolic link: go names the files by their real
// directory (it does when it runs elsewhere, -C), and the annotation still finds them.
func TestGitHubSymlinkedWorkspace(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real")
	if err := os.MkdirAll(filepath.Join(real, "sub", "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "sub", "p", "a_test.go"), []byte("package p\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	for _, c := range []struct{ name, ws, dir string }{
		{"workspace through a link, files by their real path", link, filepath.Join(real, "sub", "p")},
		{"workspace by its real path, files through the link", real, filepath.Join(link, "sub", "p")},
		{"both the same", link, filepath.Join(link, "sub", "p")},
	} {
		as := annotationsOf(GitHubOptions{Workspace: c.ws, Dirs: map[string]string{"example.com/p": c.dir}},
			failedTest("example.com/p", "TestA", "    a_test.go:4: boom\n"))
		if len(as) != 1 || as[0].File != "sub/p/a_test.go" || as[0].Line != 4 {
			t.Errorf("%s: %+v, want sub/p/a_test.go:4", c.name, as)
		}
	}
	// Outside the workspace, through links or not: no file.
	as := annotationsOf(GitHubOptions{Workspace: filepath.Join(real, "sub", "q"), Dirs: map[string]string{"example.com/p": filepath.Join(link, "sub", "p")}},
		failedTest("example.com/p", "TestA", "    a_test.go:4: boom\n"))
	if len(as) != 1 || as[0].File != "" {
		t.Errorf("outside the workspace: %+v", as)
	}
}

// FuzzMarkdownText: what mdText and mdCode make of any text renders as that text, on one
// line, with no markup of its own.
func FuzzMarkdownText(f *testing.F) {
	for _, s := range []string{"plain", "a|b", "`x`", "``", " lead", "trail ", "<b>x</b>", "*a* _b_ [c](d) ![e](f)", "http://x.example www.y.example", "&amp; &#65;", "line\nbreak", "\\", "# h", "- li", "1. x", "\x00\x1b[31m", "日本語"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := oneLineOf(s, 0)
		for _, c := range []struct {
			name string
			md   string
			want string
		}{
			{"mdText", "x " + mdText(s, 0) + " y", "x " + want + " y"},
			{"mdCode", "x " + mdCode(s, 0) + " y", "x " + want + " y"},
			{"cell mdCellCode", "| a | b |\n| --- | --- |\n| " + mdCellCode(s, 0) + " | z |", want},
			{"cell mdText", "| a | b |\n| --- | --- |\n| " + mdText(s, 0) + " | z |", want},
		} {
			if want == "" {
				continue
			}
			doc, out, err := mdtest.Render(c.md)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if strings.HasPrefix(c.name, "cell ") {
				rows := doc.TableRows()
				if len(rows) != 2 || len(rows[1]) != 2 {
					t.Fatalf("%s(%q): rows %q\n%s", c.name, s, rows, out)
				}
				got = rows[1][0]
				if strings.TrimSpace(want) != got {
					t.Fatalf("%s(%q): cell %q, want %q\n%s", c.name, s, got, want, c.md)
				}
				continue
			}
			ps := doc.All("p")
			if len(ps) != 1 {
				t.Fatalf("%s(%q): %d paragraphs\n%s", c.name, s, len(ps), out)
			}
			for _, tag := range []string{"a", "em", "strong", "del", "img", "b", "script"} {
				if len(ps[0].All(tag)) > 0 {
					t.Fatalf("%s(%q) made <%s>:\n%s", c.name, s, tag, out)
				}
			}
			got = ps[0].TextContent()
			if got != c.want {
				t.Fatalf("%s(%q) renders as %q, want %q\n%s", c.name, s, got, c.want, c.md)
			}
		}
	})
}
