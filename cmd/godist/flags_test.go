package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/sshdtest"
)

// godist --version says the release, the Go version that built it and its platform, on
// one line, and runs nothing.
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"--version", "-version"} {
		stdout, stderr, code := runCmd(t, t.TempDir(), godistBin, flag)
		if code != 0 || len(stderr) != 0 {
			t.Fatalf("%s: exit %d, stderr %s", flag, code, stderr)
		}
		// The test binary and godistBin are built by the same go command.
		want := regexp.MustCompile(`^godist dev( \([0-9a-f]+(, modified)?\))? ` + regexp.QuoteMeta(runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) + `\n$`)
		if !want.Match(stdout) {
			t.Errorf("%s printed %q, want a line matching %s", flag, stdout, want)
		}
	}
}

// godist --help gives the default package pattern, every exit status CONTRACT.md gives,
// and every environment variable it names.
func TestHelpGivesPatternStatusesEnvironment(t *testing.T) {
	t.Parallel()
	stdout, _, code := runCmd(t, t.TempDir(), godistBin, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := string(stdout)
	if !strings.Contains(help, "with none given, ./...") {
		t.Errorf("--help does not give the default package pattern ./...:\n%s", help)
	}
	contract := string(mustRead(t, "../../CONTRACT.md"))
	_, statuses, ok := strings.Cut(contract, "- Exit status: ")
	if !ok {
		t.Fatal("CONTRACT.md gives no exit statuses")
	}
	statuses, _, _ = strings.Cut(statuses, "\n\n")
	for _, m := range regexp.MustCompile(`(?:^|; )(\d) `).FindAllStringSubmatch(statuses, -1) {
		if !regexp.MustCompile(`(?m)^  ` + m[1] + `  \S`).MatchString(help) {
			t.Errorf("--help gives no line for exit status %s (CONTRACT.md: %q)", m[1], statuses)
		}
	}
	vars := map[string]bool{"NO_COLOR": true, "GITHUB_ACTIONS": true}
	for _, v := range regexp.MustCompile(`GODIST_[A-Z_]+`).FindAllString(contract, -1) {
		vars[v] = true
	}
	for _, v := range []string{"GODIST_CACHE_DIR", "GODIST_TRACE", "GODIST_CPUPROFILE", "GODIST_WORKER", "GODIST_WORKER_COUNT", "GODIST_TESTRUNUID"} {
		if !vars[v] {
			t.Errorf("CONTRACT.md does not name %s", v)
		}
	}
	for v := range vars {
		if !regexp.MustCompile(`(?m)^  ` + v + `\b`).MatchString(help) {
			t.Errorf("--help does not list %s", v)
		}
	}
}

// envSeen is what the fixture env test logged for a variable: its value in each run.
func envSeen(t *testing.T, jsonfile, name string) []string {
	t.Helper()
	re := regexp.MustCompile(name + `="([^"]*)" set=`)
	var seen []string
	for _, e := range events(t, mustRead(t, jsonfile)) {
		if m := re.FindStringSubmatch(e.Output); m != nil {
			seen = append(seen, m[1])
		}
	}
	return seen
}

func events(t *testing.T, data []byte) []gotest.Event {
	t.Helper()
	var es []gotest.Event
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var e gotest.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		es = append(es, e)
	}
	return es
}

// GODIST_WORKER_COUNT is the number of workers asked for, -n and --tx together, as
// pytest-xdist's PYTEST_XDIST_WORKER_COUNT: also when godist starts fewer (one test,
// three workers asked for).
func TestWorkerCountIsWhatWasAsked(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "3", "--shard", "1/1"}, "3"},
		{[]string{"-n", "1", "--tx", "2*popen"}, "3"},
		{[]string{"--tx", "popen", "--tx", "popen"}, "2"},
	} {
		jf := filepath.Join(t.TempDir(), "run.json")
		args := append(c.args, "--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"), "./env")
		stdout, _, code := runCmd(t, dir, godistBin, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", c.args, code, stdout)
		}
		if seen := envSeen(t, jf, "GODIST_WORKER_COUNT"); len(seen) != 1 || seen[0] != c.want {
			t.Errorf("%v: tests saw GODIST_WORKER_COUNT %q, want %q", c.args, seen, c.want)
		}
	}
}

// The note of a --rerun-fails re-run names the worker that runs it (the one the test's
// next run event has) and the one it failed on, which differ.
func TestRerunNoteNamesTheWorkerThatRunsIt(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	stdout, stderr, code := runCmd(t, dir, godistBin, "--tx", "popen", "--tx", "popen", "--rerun-fails", "2",
		"--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"), "./flaky")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	var ranOn []string // the worker of each run of TestFlaky, in order
	for _, e := range events(t, mustRead(t, jf)) {
		if e.Test == "TestFlaky" && e.Action == gotest.ActionRun {
			ranOn = append(ranOn, e.Worker)
		}
	}
	note := regexp.MustCompile(`godist: (gw\d): running failed test TestFlaky of \S+/flaky again \(attempt (\d) of 3; it failed on (gw\d)\)`)
	notes := note.FindAllStringSubmatch(string(stdout), -1)
	if len(notes) == 0 || len(notes) != len(ranOn)-1 {
		t.Fatalf("%d re-run notes for %d runs (%v):\n%s", len(notes), len(ranOn), ranOn, stdout)
	}
	for _, n := range notes {
		attempt, _ := strconv.Atoi(n[2])
		runs, failed := n[1], n[3]
		if runs != ranOn[attempt-1] || failed != ranOn[attempt-2] || runs == failed {
			t.Errorf("note %q: attempt %d ran on %s after failing on %s", n[0], attempt, ranOn[attempt-1], ranOn[attempt-2])
		}
	}
}

// normalizeTimes replaces the times of result lines, which differ from run to run.
func normalizeTimes(s string) string {
	s = regexp.MustCompile(`\(\d+\.\d+s\)`).ReplaceAllString(s, "(T)")
	return regexp.MustCompile(`\t\d+\.\d+s`).ReplaceAllString(s, "\tT")
}

// blockOf is the lines of out from the first "=== RUN" up to pkg's result line.
func blockOf(t *testing.T, out, pkg string) string {
	t.Helper()
	start := strings.Index(out, "=== RUN")
	end := regexp.MustCompile(`(?m)^(ok  |FAIL)\t` + regexp.QuoteMeta(pkg) + `\t.*\n`).FindStringIndex(out)
	if start < 0 || end == nil || end[1] < start {
		t.Fatalf("no output of %s from its first === RUN to its result line:\n%s", pkg, out)
	}
	return out[start:end[1]]
}

// -v prints what go test -v prints: subtests' results nested under their test's, and no
// "=== NAME" line go test would not print.
func TestVerboseIsGoTestV(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	for _, pkg := range []string{"subtests", "nested"} {
		goOut, _, _ := runCmd(t, dir, "go", "test", "-v", "-count=1", "./"+pkg)
		out, stderr, _ := runCmd(t, dir, godistBin, "-v", "-n", "2", "--durations", filepath.Join(t.TempDir(), "d.json"), "./"+pkg)
		path := "github.com/godist/godist/fixtures/" + pkg
		want, got := normalizeTimes(blockOf(t, string(goOut), path)), normalizeTimes(blockOf(t, string(out), path))
		if got != want {
			t.Errorf("%s: godist -v differs from go test -v\n--- godist -v:\n%s\n--- go test -v:\n%s\n%s", pkg, got, want, stderr)
		}
	}
}

// A package split over two workers has its -v output together: each test's lines from
// its "=== RUN" to its result (its subtest's nested below), the package's lines up to its
// result line, and the other package's lines before or after, never between. --slowest
// lists the split package's tests and leaves out the other's, which take 0.00s.
func TestVerboseKeepsASplitPackageTogether(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module split.example\n\ngo 1.21\n")
	var split, other strings.Builder
	split.WriteString("package split\n\nimport (\"testing\"; \"time\")\n\n")
	other.WriteString("package other\n\nimport \"testing\"\n\n")
	for i := range 6 {
		fmt.Fprintf(&split, "func TestSplit%d(t *testing.T) {\n\tt.Log(\"TestSplit%d says\")\n\ttime.Sleep(150 * time.Millisecond)\n\tt.Run(\"sub\", func(t *testing.T) { t.Log(\"TestSplit%d/sub says\") })\n}\n", i, i, i)
		fmt.Fprintf(&other, "func TestOther%d(t *testing.T) { t.Log(\"TestOther%d says\") }\n", i, i)
	}
	writeTestFile(t, root, "split/split_test.go", split.String())
	writeTestFile(t, root, "other/other_test.go", other.String())
	d := filepath.Join(t.TempDir(), "d.json")
	// The first run records the durations by which the second splits the package.
	if out, _, code := runCmd(t, root, godistBin, "-n", "2", "--durations", d, "./..."); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	jf := filepath.Join(t.TempDir(), "run.json")
	out, stderr, code := runCmd(t, root, godistBin, "-v", "-n", "2", "--durations", d, "--jsonfile", jf, "--slowest", "20", "./...")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	workers := map[string]bool{}
	for _, e := range events(t, mustRead(t, jf)) {
		if e.Package == "split.example/split" && e.Action == gotest.ActionRun {
			workers[e.Worker] = true
		}
	}
	if len(workers) < 2 {
		t.Fatalf("split ran on %d worker(s); the test needs it split", len(workers))
	}
	text, slowest, _ := strings.Cut(string(out), "=== Slowest")
	lines := strings.Split(text, "\n")
	// Which package each line is of, runs of one label merged.
	var labels []string
	label := func(l string) string {
		switch {
		case strings.Contains(l, "TestSplit"):
			return "split"
		case strings.Contains(l, "TestOther"):
			return "other"
		case strings.HasPrefix(l, "ok  \tsplit.example/split\t"):
			return "split end"
		case strings.HasPrefix(l, "ok  \tsplit.example/other\t"):
			return "other end"
		}
		return ""
	}
	for _, l := range lines {
		if lb := label(l); lb != "" && (len(labels) == 0 || labels[len(labels)-1] != lb) {
			labels = append(labels, lb)
		}
	}
	if !slices.Equal(labels, []string{"split", "split end", "other", "other end"}) && !slices.Equal(labels, []string{"other", "other end", "split", "split end"}) {
		t.Errorf("the packages' output is interleaved: %q\n%s", labels, out)
	}
	for i := range 6 {
		name := fmt.Sprintf("TestSplit%d", i)
		run := slices.Index(lines, "=== RUN   "+name)
		end := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "--- PASS: "+name+" (") })
		if run < 0 || end < run || end+1 >= len(lines) {
			t.Fatalf("%s: no === RUN line, or no result after it:\n%s", name, out)
		}
		for _, l := range lines[run+1 : end] {
			if strings.HasPrefix(l, "=== RUN ") && !strings.HasPrefix(l, "=== RUN   "+name+"/") {
				t.Errorf("%s: %q comes between its run and its result:\n%s", name, l, out)
			}
		}
		if want := "    --- PASS: " + name + "/sub ("; !strings.HasPrefix(lines[end+1], want) {
			t.Errorf("%s: its result is followed by %q, want its subtest's, nested: %q", name, lines[end+1], want)
		}
	}
	if n := strings.Count(slowest, "TestSplit"); n != 6 || strings.Contains(slowest, "TestOther") {
		t.Errorf("--slowest lists %d of the 6 split tests, or a 0.00s test:\n%s", n, slowest)
	}
}

// A gateway that cannot start gives one error on stderr, exit status 3, and no package is
// reported as if it had run: no FAIL line on stdout, no package result in --jsonfile.
func TestGatewayThatCannotStart(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tx := range [][]string{
		{"--tx", "popen//chdir=" + missing},
		{"--tx", "popen//chdir=" + missing, "--tx", "popen//chdir=" + missing + "2"},
		{"--dist", "each", "--tx", "popen//chdir=" + missing},
	} {
		two := slices.Contains(tx, "popen//chdir="+missing+"2")
		jf := filepath.Join(t.TempDir(), "run.json")
		args := append(append([]string{}, tx...), "--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"), "./pass", "./fail")
		stdout, stderr, code := runCmd(t, dir, godistBin, args...)
		if code != 3 {
			t.Errorf("%v: exit %d, want 3", tx, code)
		}
		lines := strings.Split(strings.TrimRight(string(stderr), "\n"), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "godist: ") || !strings.Contains(lines[0], "gw0 (popen//chdir="+missing+")") || !strings.Contains(lines[0], "no such file or directory") {
			t.Errorf("%v: stderr is not one line naming the gateway and why:\n%s", tx, stderr)
		}
		if two && !strings.Contains(lines[0], "gw1 (popen//chdir="+missing+"2)") {
			t.Errorf("%v: the error does not name the second gateway: %s", tx, stderr)
		}
		if strings.Contains(string(stdout), "FAIL") || strings.Contains(string(stdout), "0.000s") {
			t.Errorf("%v: stdout reports packages that never ran:\n%s", tx, stdout)
		}
		for _, e := range events(t, mustRead(t, jf)) {
			if e.Test == "" && gotest.IsTerminal(e.Action) {
				t.Errorf("%v: --jsonfile has a result for %s, which never ran", tx, e.Package)
			}
		}
	}
}

// ping says what a gateway's worker runs as; when the spec asks for another platform
// (ssh=HOST//goarch=386: the tests are built for 386, the worker is the host's), both.
func TestSSHPingSaysTheRealPlatform(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	env := sshEnv(t, s)
	res, out, code := pingJSON(t, env, "ssh="+s.Alias+"//goarch=386", "ssh="+s.Alias)
	if code != 0 || len(res) != 2 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	host := runtime.GOOS + "/" + runtime.GOARCH // the sshd is this machine
	if got := res[0].GOOS + "/" + res[0].GOARCH; got != host || res[0].AskedGOOS+"/"+res[0].AskedGOARCH != runtime.GOOS+"/386" {
		t.Errorf("goarch=386: worker %s, asked %s/%s; want the worker as %s, and linux/386 asked", got, res[0].AskedGOOS, res[0].AskedGOARCH, host)
	}
	if res[1].AskedGOOS != "" || res[1].AskedGOARCH != "" {
		t.Errorf("no goarch=: asked %s/%s, want nothing", res[1].AskedGOOS, res[1].AskedGOARCH)
	}
	text, _, code := runWithEnv(t, env, t.TempDir(), "ping", "--tx", "ssh="+s.Alias+"//goarch=386")
	if want := "\t" + host + " (tests built for " + runtime.GOOS + "/386) host="; code != 0 || !strings.Contains(string(text), want) {
		t.Errorf("ping says %q (exit %d), want it to hold %q", text, code, want)
	}
}
