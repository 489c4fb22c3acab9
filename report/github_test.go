package report

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/godist/godist/gotest"
)

// workflowCommand is a workflow command as GitHub's runner reads one (ActionCommand
// TryParseV2): "::" name, a space and comma-separated key=value properties, "::", data.
type workflowCommand struct {
	name  string
	props map[string]string
	data  string
}

var (
	unescapeData     = strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%")
	unescapeProperty = strings.NewReplacer("%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%")
)

// parseWorkflowCommand reads line as the runner does; ok is false when the runner would
// not take it for a command.
func parseWorkflowCommand(line string) (workflowCommand, bool) {
	line = strings.TrimLeft(line, " \t")
	if !strings.HasPrefix(line, "::") {
		return workflowCommand{}, false
	}
	end := strings.Index(line[2:], "::")
	if end < 0 {
		return workflowCommand{}, false
	}
	info := line[2 : 2+end]
	c := workflowCommand{props: map[string]string{}, data: unescapeData.Replace(line[2+end+2:])}
	name, props, hasProps := strings.Cut(info, " ")
	c.name = name
	if hasProps {
		for _, p := range strings.Split(strings.TrimSpace(props), ",") {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" || v == "" {
				continue
			}
			c.props[k] = unescapeProperty.Replace(v)
		}
	}
	return c, true
}

func TestGitHubEscaping(t *testing.T) {
	for _, c := range []struct{ in, data, prop string }{
		{"plain", "plain", "plain"},
		{"100%", "100%25", "100%25"},
		{"a\nb", "a%0Ab", "a%0Ab"},
		{"a\r\nb", "a%0D%0Ab", "a%0D%0Ab"},
		{"key: value, more", "key: value, more", "key%3A value%2C more"},
		{"::error::x", "::error::x", "%3A%3Aerror%3A%3Ax"},
		{"%0A literal", "%250A literal", "%250A literal"},
		{"C:\\dir\\a,b.go", "C:\\dir\\a,b.go", "C%3A\\dir\\a%2Cb.go"},
		{"日本 ünï", "日本 ünï", "日本 ünï"},
		{"", "", ""},
	} {
		if got := escapeData(c.in); got != c.data {
			t.Errorf("escapeData(%q) = %q, want %q", c.in, got, c.data)
		}
		if got := escapeProperty(c.in); got != c.prop {
			t.Errorf("escapeProperty(%q) = %q, want %q", c.in, got, c.prop)
		}
	}
}

// TestGitHubAnnotationFormat pins the commands against GitHub's documented examples
// ("::error file=app.js,line=1::Missing semicolon", and file, line, col, title in that
// form).
func TestGitHubAnnotationFormat(t *testing.T) {
	for _, c := range []struct {
		a    githubAnnotation
		want string
	}{
		{githubAnnotation{Level: "error", File: "app.js", Line: 1, Message: "Missing semicolon"}, "::error file=app.js,line=1::Missing semicolon"},
		{githubAnnotation{Level: "notice", File: "app.js", Line: 1, Col: 5, Title: "T", Message: "m"}, "::notice file=app.js,line=1,col=5,title=T::m"},
		{githubAnnotation{Level: "warning", Title: "flaky: TestA", Message: "a\nb"}, "::warning title=flaky%3A TestA::a%0Ab"},
		{githubAnnotation{Message: "no level"}, "::error::no level"},
		{githubAnnotation{Level: "debug", Message: "x"}, "::error::x"},
		{githubAnnotation{File: "a,b/c:d.go", Line: 3, Title: "  TestX [gw1]  ", Message: "50% off: now, here\r\n"}, "::error file=a%2Cb/c%3Ad.go,line=3,title=TestX [gw1]::50%25 off: now, here%0D%0A"},
		{githubAnnotation{File: "x.go", Line: -1, Col: -2, Message: ""}, "::error file=x.go::"},
	} {
		got := c.a.String()
		if got != c.want {
			t.Errorf("%+v:\n got %s\nwant %s", c.a, got, c.want)
		}
		checkCommand(t, c.a, got)
	}
}

// checkCommand checks that line is one line the runner reads back as a.
func checkCommand(t *testing.T, a githubAnnotation, line string) {
	t.Helper()
	if strings.ContainsAny(line, "\r\n") {
		t.Fatalf("command spans lines: %q", line)
	}
	c, ok := parseWorkflowCommand(line)
	if !ok {
		t.Fatalf("not a workflow command: %q", line)
	}
	level := a.Level
	if level != "warning" && level != "notice" {
		level = "error"
	}
	if c.name != level {
		t.Fatalf("%q: command %q, want %q", line, c.name, level)
	}
	if c.data != a.Message {
		t.Fatalf("%q: message %q, want %q", line, c.data, a.Message)
	}
	if c.props["file"] != strings.TrimSpace(a.File) {
		t.Fatalf("%q: file %q, want %q", line, c.props["file"], a.File)
	}
	if title := strings.TrimSpace(a.Title); c.props["title"] != title {
		t.Fatalf("%q: title %q, want %q", line, c.props["title"], title)
	}
	wantLine := ""
	if a.Line > 0 {
		wantLine = strconv.Itoa(a.Line)
	}
	if c.props["line"] != wantLine {
		t.Fatalf("%q: line %q, want %q", line, c.props["line"], wantLine)
	}
	for k := range c.props {
		switch k {
		case "file", "line", "col", "title":
		default:
			t.Fatalf("%q: stray property %q", line, k)
		}
	}
}

func FuzzGitHubAnnotation(f *testing.F) {
	f.Add("TestA/sub", "pkg/a_test.go", "a_test.go:12: got 1\n\twant 2", 12, 0)
	f.Add("x,y:z%", "dir with space/a,b.go", "::error::injected\r\n::warning::", 1, 5)
	f.Add(" \u00a0", "", "%0A%25", 0, -1)
	f.Fuzz(func(t *testing.T, title, file, msg string, line, col int) {
		a := githubAnnotation{Level: "error", File: file, Line: line, Col: col, Title: title, Message: msg}
		checkCommand(t, a, a.String())
	})
}

// fixtureDirs are the fixture packages' directories where testdata/gotest-fixtures.jsonl
// was recorded (its panic traces name files there).
func fixtureDirs() map[string]string {
	dirs := map[string]string{}
	for _, p := range fixturePackages {
		dirs["github.com/godist/godist/fixtures/"+p] = "/work/main/fixtures/" + p
	}
	return dirs
}

func annotate(t *testing.T, script string, opts GitHubOptions) ([]githubAnnotation, string) {
	t.Helper()
	g := NewGitHubAnnotator(opts)
	for _, s := range loadScript(t, script) {
		if s.Op == "" {
			g.Event(s.event)
		}
	}
	var buf bytes.Buffer
	if err := g.Write(&buf); err != nil {
		t.Fatal(err)
	}
	as := g.annotations()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if buf.Len() == 0 {
		lines = nil
	}
	if len(lines) != len(as) {
		t.Fatalf("Write wrote %d lines for %d annotations", len(lines), len(as))
	}
	for i, a := range as {
		checkCommand(t, a, lines[i])
	}
	return as, buf.String()
}

func find(as []githubAnnotation, title string) *githubAnnotation {
	for i := range as {
		if as[i].Title == title {
			return &as[i]
		}
	}
	return nil
}

func TestGitHubFixtures(t *testing.T) {
	as, out := annotate(t, "gotest-fixtures.jsonl", GitHubOptions{Workspace: "/work/main", Dirs: fixtureDirs(), BuildDir: "/work/main/fixtures"})
	golden(t, "github-fixtures.golden", []byte(out))

	for _, c := range []struct {
		title, file string
		line, col   int
		msg         string // a part of the message
	}{
		{"TestError", "fixtures/fail/fail_test.go", 17, 0, "first error\nfail_test.go:16: second error"},
		{"TestFatal", "fixtures/fail/fail_test.go", 22, 0, "fail_test.go:22: fatal error"},
		{"TestPrintAndFail", "", 0, 0, "plain stdout line"},
		{"TestSubFails/bad", "fixtures/fail/fail_test.go", 35, 0, "sub failed"},
		{"TestPanic", "fixtures/panic/panic_test.go", 9, 0, "panic: boom"},
		{"TestExit", "fixtures/exit/exit_test.go", 11, 0, "no result: the test never finished"},
		{"TestA/fail/bad/worse", "fixtures/subtests/subtests_test.go", 27, 0, "failing three levels down"},
		{"ExampleGreet_wrong", "", 0, 0, "got:\nhello, moon\nwant:\nhello, sun"},
		{"build failed: github.com/godist/godist/fixtures/buildfail", "fixtures/buildfail/buildfail_test.go", 6, 14, "cannot use"},
	} {
		a := find(as, c.title)
		if a == nil {
			t.Errorf("no annotation titled %q", c.title)
			continue
		}
		if a.Level != "error" || a.File != c.file || a.Line != c.line || a.Col != c.col || !strings.Contains(a.Message, c.msg) {
			t.Errorf("%s: %+v\nwant file %s line %d col %d, message with %q", c.title, *a, c.file, c.line, c.col, c.msg)
		}
	}
	for _, title := range []string{"TestSubFails", "TestA", "TestA/fail", "TestA/fail/bad", "TestSkip", "TestBefore", "TestAdd"} {
		if a := find(as, title); a != nil {
			t.Errorf("annotation for %s, which did not fail by itself: %+v", title, *a)
		}
	}
	if n := strings.Count(out, "\n"); n != 9 {
		t.Errorf("%d annotations, want 9:\n%s", n, out)
	}
}

func TestGitHubReruns(t *testing.T) {
	dirs := map[string]string{"example.com/rerun": "/repo/rerun"}
	as, out := annotate(t, "junit-rerun.jsonl", GitHubOptions{Workspace: "/repo", Dirs: dirs})
	golden(t, "github-rerun.golden", []byte(out))
	flaky := find(as, "flaky: TestFlaky")
	if flaky == nil || flaky.Level != "warning" || flaky.File != "rerun/flaky_test.go" || flaky.Line != 27 ||
		!strings.HasPrefix(flaky.Message, "flaky: failed 1 of 2 attempts, then passed on gw2\nflaky_test.go:27:") {
		t.Errorf("TestFlaky: %+v", flaky)
	}
	broken := find(as, "TestBroken")
	if broken == nil || broken.Level != "error" || !strings.HasPrefix(broken.Message, "failed on all 3 attempts\nbroken_test.go:10: got 4, want 2") {
		t.Errorf("TestBroken: %+v", broken)
	}
	if a := find(as, "flaky: TestSubs"); a != nil {
		t.Errorf("TestSubs flaked through its subtest, which has the annotation: %+v", *a)
	}
	if a := find(as, "flaky: TestSubs/bad_input"); a == nil || a.Line != 14 {
		t.Errorf("TestSubs/bad_input: %+v", a)
	}
	if a := find(as, "flaky: TestLost"); a == nil || !strings.Contains(a.Message, "lost_test.go:7: working") {
		t.Errorf("TestLost: %+v", a)
	}
	if len(as) != 5 {
		t.Errorf("%d annotations, want 5 (TestFlaky, TestBroken, TestSubs/bad_input, TestCrash, TestLost):\n%s", len(as), out)
	}
}

func TestGitHubEachAndPackageErrors(t *testing.T) {
	as, _ := annotate(t, "each.jsonl", GitHubOptions{Each: true, Workspace: "/repo", Dirs: map[string]string{"example.com/flaky": "/repo/flaky"}})
	for _, w := range []string{"gw0", "gw1"} {
		a := find(as, "TestFlaky ["+w+"]")
		if a == nil || a.File != "flaky/flaky_test.go" || a.Line != 12 || !strings.Contains(a.Message, "GODIST_WORKER="+w) {
			t.Errorf("TestFlaky on %s: %+v", w, a)
		}
	}

	as, _ = annotate(t, "load.jsonl", GitHubOptions{Workspace: "/repo", BuildDir: "/repo", Dirs: map[string]string{"example.com/calc": "/repo/calc"}})
	if a := find(as, "example.com/setup (package)"); a == nil || !strings.Contains(a.Message, "setup failed: no database") {
		t.Errorf("package error: %+v", a)
	}
	if a := find(as, "build failed: example.com/broken"); a == nil || a.File != "broken/b_test.go" || a.Line != 3 || a.Col != 27 || a.Message != "undefined: undefined" {
		t.Errorf("build failure: %+v", a)
	}
	if a := find(as, "TestDiv"); a == nil || a.File != "calc/calc_test.go" || a.Line != 22 {
		t.Errorf("TestDiv: %+v", a)
	}
}

func failedTest(pkg, test string, output ...string) []gotest.Event {
	es := []gotest.Event{{Action: gotest.ActionRun, Package: pkg, Test: test}}
	for _, o := range output {
		es = append(es, gotest.Event{Action: gotest.ActionOutput, Package: pkg, Test: test, Output: o})
	}
	return append(es, gotest.Event{Action: gotest.ActionFail, Package: pkg, Test: test})
}

func annotationsOf(opts GitHubOptions, events []gotest.Event) []githubAnnotation {
	g := NewGitHubAnnotator(opts)
	for _, e := range events {
		g.Event(e)
	}
	return g.annotations()
}

func TestGitHubLocations(t *testing.T) {
	ws := filepath.FromSlash("/ws")
	dirs := map[string]string{"example.com/m/p": filepath.FromSlash("/ws/p")}
	for _, c := range []struct {
		name   string
		opts   GitHubOptions
		output []string
		file   string
		line   int
	}{
		{"trimpath panic frame", GitHubOptions{Workspace: ws, Dirs: dirs},
			[]string{"panic: x\n", "\n", "goroutine 7 [running]:\n", "example.com/m/p.TestA(0x0)\n", "\texample.com/m/p/a_test.go:9 +0x4d\n"}, "p/a_test.go", 9},
		{"frame in another package first", GitHubOptions{Workspace: ws, Dirs: dirs},
			[]string{"panic: x\n", "example.com/m/q.F()\n", "\t/ws/q/q.go:3 +0x1\n", "example.com/m/p.TestA(0x0)\n", "\t/ws/p/a_test.go:5 +0x1\n"}, "p/a_test.go", 5},
		{"no package dirs: a frame in the workspace", GitHubOptions{Workspace: ws},
			[]string{"panic: x\n", "\t/usr/local/go/src/testing/testing.go:1 +0x1\n", "\t/ws/p/a_test.go:5 +0x1\n"}, "p/a_test.go", 5},
		{"file outside the workspace", GitHubOptions{Workspace: filepath.FromSlash("/elsewhere"), Dirs: dirs},
			[]string{"    a_test.go:4: boom\n"}, "", 0},
		{"no workspace: absolute path", GitHubOptions{Dirs: dirs},
			[]string{"    a_test.go:4: boom\n"}, "/ws/p/a_test.go", 4},
		{"-test.fullpath", GitHubOptions{Workspace: ws, Dirs: dirs},
			[]string{"    /ws/p/sub dir/a_test.go:8: boom\n"}, "p/sub dir/a_test.go", 8},
		{"unknown package", GitHubOptions{Workspace: ws},
			[]string{"    a_test.go:4: boom\n"}, "", 0},
		{"multi-line message", GitHubOptions{Workspace: ws, Dirs: dirs},
			[]string{"    a_test.go:4: got:\n", "        1\n", "        want 2\n", "    a_test.go:7: \n", "        \tError Trace:\t/ws/p/a_test.go:7\n"}, "p/a_test.go", 7},
		{"panic with no frame of the package", GitHubOptions{Workspace: ws, Dirs: dirs},
			[]string{"    a_test.go:4: log\n", "panic: x\n", "\t/usr/local/go/src/x.go:1 +0x1\n"}, "", 0},
	} {
		as := annotationsOf(c.opts, failedTest("example.com/m/p", "TestA", c.output...))
		if len(as) != 1 {
			t.Errorf("%s: %d annotations", c.name, len(as))
			continue
		}
		if as[0].File != filepath.ToSlash(c.file) || as[0].Line != c.line {
			t.Errorf("%s: file %q line %d, want %q %d", c.name, as[0].File, as[0].Line, c.file, c.line)
		}
		checkCommand(t, as[0], as[0].String())
	}
}

func TestGitHubMessageCapped(t *testing.T) {
	var out []string
	for i := range 80 {
		out = append(out, fmt.Sprintf("    a_test.go:%d: line %d\n", i+1, i))
	}
	as := annotationsOf(GitHubOptions{MaxLines: 10}, failedTest("p", "TestA", out...))
	lines := strings.Split(as[0].Message, "\n")
	if len(lines) != 11 || lines[10] != "… 70 more lines in the log" || lines[0] != "a_test.go:1: line 0" {
		t.Errorf("capped message: %q", lines)
	}
}

// FuzzGitHubOutput feeds arbitrary test output through the annotator: every annotation is
// one line that the runner reads back as it was meant.
func FuzzGitHubOutput(f *testing.F) {
	f.Add("    a_test.go:12: got 1, want 2\n", "TestA/b,c")
	f.Add("panic: boom\n\ngoroutine 1 [running]:\n\t/ws/p/a_test.go:9 +0x4d\n", "Test::x")
	f.Add("::error file=x::y\r\n%0A\n    a_test.go:0: zero\n", "Test%25")
	f.Add("    /abs path/with,comma:colon.go:3: m\n", "T\nU")
	f.Fuzz(func(t *testing.T, output, test string) {
		if test == "" {
			return
		}
		opts := GitHubOptions{Workspace: "/ws", Dirs: map[string]string{"example.com/p": "/ws/p"}, BuildDir: "/ws"}
		events := failedTest("example.com/p", test, strings.SplitAfter(output, "\n")...)
		events = append(events,
			gotest.Event{Action: gotest.ActionBuildOutput, ImportPath: "example.com/q [example.com/q.test]", Output: output},
			gotest.Event{Action: gotest.ActionBuildFail, ImportPath: "example.com/q [example.com/q.test]"})
		for _, a := range annotationsOf(opts, events) {
			checkCommand(t, a, a.String())
			if a.Line < 0 || a.Col < 0 || (a.File == "" && a.Line != 0) {
				t.Fatalf("bad location: %+v", a)
			}
		}
	})
}

// TestGitHubMatchesGoTest annotates a live go test -json run of the fixtures: the files
// of t.Error lines, panic frames and compiler errors resolve in the repository.
func TestGitHubMatchesGoTest(t *testing.T) {
	events := goTestFixtures(t)
	root, err := filepath.Abs(filepath.Join("..", "fixtures"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, p := range fixturePackages {
		dirs["github.com/godist/godist/fixtures/"+p] = filepath.Join(root, filepath.FromSlash(p))
	}
	as := annotationsOf(GitHubOptions{Workspace: filepath.Dir(root), Dirs: dirs, BuildDir: root}, events)
	for _, c := range []struct {
		title, file string
		line        int
	}{
		{"TestFatal", "fixtures/fail/fail_test.go", 22},
		{"TestSubFails/bad", "fixtures/fail/fail_test.go", 35},
		{"TestPanic", "fixtures/panic/panic_test.go", 9},
		{"TestExit", "fixtures/exit/exit_test.go", 11},
		{"build failed: github.com/godist/godist/fixtures/buildfail", "fixtures/buildfail/buildfail_test.go", 6},
	} {
		a := find(as, c.title)
		if a == nil || a.File != c.file || a.Line != c.line {
			t.Errorf("%s: %+v, want %s:%d", c.title, a, c.file, c.line)
		}
	}
	for _, a := range as {
		checkCommand(t, a, a.String())
	}
	if len(as) != 9 {
		t.Errorf("%d annotations, want 9: %+v", len(as), as)
	}
}
