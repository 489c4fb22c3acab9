package report

import (
	"io"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/godist/godist/gotest"
)

// githubAnnotation is one GitHub Actions workflow command that annotates a file:
//
//	::error file=pkg/a_test.go,line=12,title=TestA::a_test.go:12: got 1, want 2
//
// in the format GitHub documents under "Workflow commands for GitHub Actions".
type githubAnnotation struct {
	Level   string // "error", "warning" or "notice"; anything else is written as "error"
	File    string // relative to the repository root, with slashes; "" for none
	Line    int    // 0 for none
	Col     int    // 0 for none
	Title   string
	Message string

	// What the job summary lists it by; the workflow command leaves them out.
	kind   string   // "test", "package" or "build"
	pkg    string   // the package (import path)
	test   string   // the test's name, for a test
	worker string   // the worker of the attempt shown ("" if unknown)
	reason string   // one line saying why: the failing log line's message, the panic line, ...
	lines  []string // Message uncapped, one line an element (nil: Message's lines)
}

// String is the workflow command, always one line: properties are escaped as GitHub's
// runner unescapes them ("%" "\r" "\n" ":" "," become %25 %0D %0A %3A %2C), the message
// as data ("%" "\r" "\n" only). The runner trims white space around the properties, so
// File and Title are trimmed here, and left out when empty; Line and Col are left out when
// not positive.
func (a githubAnnotation) String() string {
	level := a.Level
	switch level {
	case "error", "warning", "notice":
	default:
		level = "error"
	}
	var props []string
	if file := strings.TrimSpace(a.File); file != "" {
		props = append(props, "file="+escapeProperty(file))
	}
	if a.Line > 0 {
		props = append(props, "line="+strconv.Itoa(a.Line))
	}
	if a.Col > 0 {
		props = append(props, "col="+strconv.Itoa(a.Col))
	}
	if title := strings.TrimSpace(a.Title); title != "" {
		props = append(props, "title="+escapeProperty(title))
	}
	s := "::" + level
	if len(props) > 0 {
		s += " " + strings.Join(props, ",")
	}
	return s + "::" + escapeData(a.Message)
}

var (
	dataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	propertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

// escapeData escapes a workflow command's message.
func escapeData(s string) string { return dataEscaper.Replace(s) }

// escapeProperty escapes a workflow command's property value.
func escapeProperty(s string) string { return propertyEscaper.Replace(s) }

// GitHubOptions tell a GitHubAnnotator where source files are. Its paths are of the machine
// that built the test binaries (the runner's).
type GitHubOptions struct {
	// Workspace is the repository root, $GITHUB_WORKSPACE: annotation paths are relative
	// to it, and a file outside it gives an annotation without a file. "" leaves paths as
	// they are resolved (absolute).
	Workspace string
	// Dirs maps each package's import path to its source directory. A t.Error line names
	// its file by base name only, in the package's directory; a panic names the files of
	// its stack frames as they were compiled.
	Dirs map[string]string
	// BuildDir is where `go test -c` ran: compiler errors name files relative to it.
	BuildDir string
	// Each is set in --dist each mode: titles then name the worker, as the same test
	// fails or passes on each.
	Each bool
	// MaxLines caps the output lines in one annotation's message; 0 means 50.
	MaxLines int
}

// GitHubAnnotator turns a run's events into annotations that point at the failing lines:
//
//   - a failed test (or one that never finished): an error at its panic (the first stack
//     frame in the test's package after "panic: ") or else at its last t.Log-style line
//     ("    file_test.go:123: message"; t.Fatal and t.Skip end a test, so its last logged
//     line is most often the failure), with the test's output as the message. A test
//     whose subtest failed is left to the subtest's annotation.
//   - a flaky test (failed, then passed on a rerun): a warning at its failure.
//   - a package that failed outside its tests: an error at its panic, if any.
//   - a build failure: an error at each compiler error.
//   - a test or package that the run's stop (-x, --maxfail, an interrupt) cut short: none,
//     as it did not fail anywhere. An attempt so cut short is left out of its test's
//     attempts: a test that failed and was then stopped on its rerun has the error of its
//     failure.
//
// Build failures come first (by import path), then the rest by package and worker, tests
// in the order they first ran. Tests are told apart, and reruns recognised, as by
// JUnitCollector.
//
// It also writes the run's GitHub Actions job summary (WriteJobSummary), for which it is
// an observer of the whole run: SetTotal and WorkerState as the ledger calls them, and
// TestProcess for each test process. Feed it the stream in order; it is safe for
// concurrent use.
type GitHubAnnotator struct {
	mu       sync.Mutex
	opts     GitHubOptions
	model    *runModel
	total    int                    // top-level test units planned (SetTotal)
	gateways map[string]*gatewayLog // for the job summary
}

// NewGitHubAnnotator returns an annotator with nothing seen yet.
func NewGitHubAnnotator(opts GitHubOptions) *GitHubAnnotator {
	if opts.MaxLines <= 0 {
		opts.MaxLines = 50
	}
	return &GitHubAnnotator{opts: opts, model: newModel(opts.Each)}
}

// Event takes the next event of the stream.
func (g *GitHubAnnotator) Event(e gotest.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.model.event(e)
}

// Write writes the annotations of the events so far, one workflow command a line, in
// the order described at GitHubAnnotator. GitHub shows at most 10 error and 10 warning
// annotations of a step (50 of a job) beside the code; the rest stay in the log.
func (g *GitHubAnnotator) Write(w io.Writer) error {
	var b strings.Builder
	for _, a := range g.annotations() {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// annotations lists the annotations of the events so far: build failures first (by
// import path), then by package and worker, tests in the order they first ran.
func (g *GitHubAnnotator) annotations() []githubAnnotation {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.annotationsLocked()
}

func (g *GitHubAnnotator) annotationsLocked() []githubAnnotation {
	var out []githubAnnotation
	var builds []string
	for ip, b := range g.model.builds {
		if b.failed {
			builds = append(builds, ip)
		}
	}
	sort.Strings(builds)
	for _, ip := range builds {
		out = append(out, g.buildAnnotations(ip, g.model.builds[ip])...)
	}
	for _, s := range g.model.sortedSuites() {
		for _, t := range s.order {
			if a, ok := g.testAnnotation(s, t); ok {
				out = append(out, a)
			}
		}
		if s.packageError() {
			out = append(out, g.packageAnnotation(s))
		}
	}
	return out
}

func (g *GitHubAnnotator) title(s *suiteLog, name string) string {
	if g.opts.Each && s.key.worker != "" {
		return name + " [" + s.key.worker + "]"
	}
	return name
}

func (g *GitHubAnnotator) testAnnotation(s *suiteLog, t *testLog) (githubAnnotation, bool) {
	// Attempts the run's stop cut short did not fail: they are left out.
	attempts := ranToTheEnd(t.attempts)
	if len(attempts) == 0 {
		return githubAnnotation{}, false
	}
	final := attempts[len(attempts)-1]
	// The failing attempt to show: the last one for a failure, the first failed one of a
	// flaky test.
	var shown *attempt
	level := "error"
	if final.failed() {
		shown = final
	} else {
		for _, a := range attempts {
			if a.failed() {
				shown = a
				break
			}
		}
		if shown == nil {
			return githubAnnotation{}, false
		}
		level = "warning"
	}
	if hasFailedSubtest(s, t, level == "error") {
		return githubAnnotation{}, false
	}

	lines := strings.Split(shown.text(), "\n")
	a := githubAnnotation{Level: level, Title: g.title(s, t.name), kind: "test", pkg: s.key.pkg, test: t.name, worker: shown.worker}
	if level == "warning" {
		a.Title = "flaky: " + a.Title
	}
	loc, ok := panicLoc(lines, func(file string) bool { return g.inPackage(s.key.pkg, file) })
	if !ok && panicLine(lines) < 0 {
		loc, ok = lastLogLine(lines)
	}
	if ok {
		a.File = g.resolve(s.key.pkg, loc.file)
		if a.File != "" {
			a.Line = loc.line
		}
	}
	a.reason = failureReason(lines, loc, ok)

	var head string
	switch {
	case level == "warning":
		head = flakyHead(attempts)
	case final.action == "":
		head = "no result: the test never finished" + onWorker(final.worker)
	case len(attempts) > 1:
		head = "failed on all " + strconv.Itoa(len(attempts)) + " attempts"
	}
	a.Message, a.lines = g.message(head, lines, "test failed"+onWorker(shown.worker))
	if a.reason == "" {
		a.reason = head
	}
	if a.reason == "" {
		a.reason = "test failed"
	}
	return a, true
}

// hasFailedSubtest reports whether a subtest of t failed (on its last attempt if final is
// set, else on any).
func hasFailedSubtest(s *suiteLog, t *testLog, final bool) bool {
	return failedSubtest(s, t, final) != ""
}

// ranToTheEnd lists the attempts the run's stop did not cut short.
func ranToTheEnd(as []*attempt) []*attempt {
	var out []*attempt
	for _, a := range as {
		if a.stopped == "" {
			out = append(out, a)
		}
	}
	return out
}

func onWorker(w string) string {
	if w == "" {
		return ""
	}
	return " on " + w
}

func flakyHead(as []*attempt) string {
	failed := 0
	for _, a := range as {
		if a.failed() {
			failed++
		}
	}
	last := as[len(as)-1]
	return "flaky: failed " + strconv.Itoa(failed) + " of " + strconv.Itoa(len(as)) + " attempts, then " + verb(last.action) + onWorker(last.worker)
}

func verb(action string) string {
	switch action {
	case gotest.ActionPass:
		return "passed"
	case gotest.ActionSkip:
		return "skipped"
	}
	return action
}

// message is head (if any), then the output lines, dedented and capped at MaxLines; def
// when there is no output. all is the same uncapped, one line an element.
func (g *GitHubAnnotator) message(head string, lines []string, def string) (msg string, all []string) {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	var body []string
	if len(lines) == 0 {
		body = []string{def}
	} else {
		body = dedent(lines)
	}
	// Annotations show no colours: ANSI sequences would be noise.
	for i, l := range body {
		body[i] = ansiCSI.ReplaceAllString(l, "")
	}
	if head != "" {
		all = append(all, ansiCSI.ReplaceAllString(head, ""))
	}
	all = append(all, body...)
	if n := len(body) - g.opts.MaxLines; n > 0 {
		body = append(body[:g.opts.MaxLines:g.opts.MaxLines], "… "+strconv.Itoa(n)+" more lines in the log")
	}
	if head != "" {
		body = append([]string{head}, body...)
	}
	return ansiCSI.ReplaceAllString(strings.Join(body, "\n"), ""), all
}

// ansiCSI matches an ANSI control sequence ("ESC [ params final").
var ansiCSI = regexp.MustCompile("\x1b\\[[0-?]*[ -/]*[@-~]")

// dedent removes the indentation all non-empty lines share (test2json's four spaces).
func dedent(lines []string) []string {
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if common < 0 || n < common {
			common = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) >= common && common > 0 {
			l = l[common:]
		}
		out[i] = l
	}
	return out
}

func (g *GitHubAnnotator) packageAnnotation(s *suiteLog) githubAnnotation {
	out := s.packageOutput()
	lines := strings.Split(out, "\n")
	a := githubAnnotation{Level: "error", Title: g.title(s, s.key.pkg+" (package)"), kind: "package", pkg: s.key.pkg, worker: s.key.worker}
	loc, ok := panicLoc(lines, func(file string) bool { return g.inPackage(s.key.pkg, file) })
	if ok {
		a.File = g.resolve(s.key.pkg, loc.file)
		if a.File != "" {
			a.Line = loc.line
		}
	}
	a.reason = loc.msg
	if a.reason == "" {
		a.reason = "failed outside its tests (TestMain, init, or a lost worker)"
	}
	a.Message, a.lines = g.message("package failed outside its tests (TestMain, init, or a lost worker)", lines, "(no output)")
	return a
}

func (g *GitHubAnnotator) buildAnnotations(importPath string, b *buildLog) []githubAnnotation {
	pkg := packageOfBuild(importPath)
	title := "build failed: " + pkg
	var out []githubAnnotation
	for _, loc := range buildErrors(b.output) {
		file := loc.file
		if !filepath.IsAbs(file) && g.opts.BuildDir != "" {
			file = filepath.Join(g.opts.BuildDir, file)
		}
		a := githubAnnotation{Level: "error", Title: title, Message: loc.msg, kind: "build", pkg: pkg, reason: loc.msg}
		if a.File = g.relative(file); a.File != "" {
			a.Line, a.Col = loc.line, loc.col
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		var lines []string
		for _, l := range strings.Split(strings.Join(b.output, ""), "\n") {
			if l != "" && !strings.HasPrefix(l, "# ") {
				lines = append(lines, l)
			}
		}
		reason := "build failed"
		if len(lines) > 0 {
			reason = lines[0]
		}
		a := githubAnnotation{Level: "error", Title: title, kind: "build", pkg: pkg, reason: reason}
		a.Message, a.lines = g.message("", lines, "(no output)")
		out = append(out, a)
	}
	return out
}

// inPackage reports whether a stack frame's file is a source file of pkg: in its
// directory, or, built with -trimpath, named by its import path.
func (g *GitHubAnnotator) inPackage(pkg, file string) bool {
	if path.Dir(filepath.ToSlash(file)) == pkg {
		return true
	}
	if !filepath.IsAbs(file) {
		return false
	}
	if dir, ok := g.opts.Dirs[pkg]; ok {
		return filepath.Dir(file) == filepath.Clean(dir)
	}
	// Not told where pkg is: any file of the repository will do.
	return g.opts.Workspace != "" && g.relative(file) != ""
}

// resolve maps a file named by pkg's test output to a path relative to the workspace, or
// "" when it cannot.
func (g *GitHubAnnotator) resolve(pkg, file string) string {
	switch {
	case filepath.IsAbs(file):
		return g.relative(file)
	case !strings.ContainsAny(file, `/\`):
		dir, ok := g.opts.Dirs[pkg]
		if !ok {
			return ""
		}
		return g.relative(filepath.Join(dir, file))
	default:
		// -trimpath: "import/path/file.go".
		if dir, ok := g.opts.Dirs[path.Dir(filepath.ToSlash(file))]; ok {
			return g.relative(filepath.Join(dir, path.Base(filepath.ToSlash(file))))
		}
		return ""
	}
}

// relative makes an absolute path relative to the workspace, with slashes; "" when it
// lies outside. A path that lies outside as written is tried again with symbolic links
// resolved, in it and in the workspace: go names files by the real directory when it does
// not run where the workspace's name leads (-C, or a workspace reached through a link).
func (g *GitHubAnnotator) relative(p string) string {
	if g.opts.Workspace == "" {
		return filepath.ToSlash(p)
	}
	if !filepath.IsAbs(p) {
		return ""
	}
	if rel, ok := within(g.opts.Workspace, p); ok {
		return rel
	}
	ws, err := filepath.EvalSymlinks(g.opts.Workspace)
	if err != nil {
		return ""
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		// A file that is gone: its directory, at least, may resolve.
		dir, derr := filepath.EvalSymlinks(filepath.Dir(p))
		if derr != nil {
			return ""
		}
		real = filepath.Join(dir, filepath.Base(p))
	}
	if rel, ok := within(ws, real); ok {
		return rel
	}
	return ""
}

// within is p relative to dir, with slashes, if p lies inside dir (and is not dir).
func within(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || rel == "." {
		return "", false
	}
	return filepath.ToSlash(rel), true
}
