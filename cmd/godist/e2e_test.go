package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/filesum"
)

// godistBin is the godist binary built once for the end-to-end tests; godistRaceBin is
// the same built with -race, which the tests of the master's concurrency run (its workers
// are race-built too: a popen worker is the binary itself). A race it detects makes it
// exit 66 and print "DATA RACE", which those tests check.
var godistBin, godistRaceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "godist-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	godistBin = filepath.Join(dir, "godist")
	// Static, as the README builds it: the worker it ships needs no libc.
	build := exec.Command("go", "build", "-o", godistBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building godist: %v\n%s", err, out)
		os.Exit(1)
	}
	godistRaceBin = filepath.Join(dir, "godist-race")
	build = exec.Command("go", "build", "-race", "-o", godistRaceBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building godist -race: %v\n%s", err, out)
		os.Exit(1)
	}
	// The tests run their packages: the result cache is off unless a test turns it on
	// (--cache-dir), so that no test finds what another recorded.
	os.Setenv("GODIST_CACHE_DIR", "off")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func fixturesDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("../../fixtures")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// outcome of one stream: the terminal actions of each test and package.
type outcome struct {
	tests    map[string][]string // "pkg TestName" -> terminal actions in order
	pkgs     map[string][]string // pkg (+ " @gw" in each mode) -> terminal actions
	started  map[string]bool     // tests that had a run event
	workers  map[string]bool
	builds   map[string]bool // ImportPath of build-fail events
	failedBy map[string]string
}

func parseStream(t *testing.T, data []byte, perWorker bool) outcome {
	t.Helper()
	o := outcome{tests: map[string][]string{}, pkgs: map[string][]string{}, started: map[string]bool{},
		workers: map[string]bool{}, builds: map[string]bool{}, failedBy: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e gotest.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line is not a go test -json event: %q: %v", sc.Text(), err)
		}
		if e.Worker != "" {
			o.workers[e.Worker] = true
		}
		if e.Action == gotest.ActionBuildFail {
			o.builds[e.ImportPath] = true
		}
		key := e.Package
		if perWorker {
			key += " @" + e.Worker
		}
		if e.Test != "" {
			key += " " + e.Test
		}
		if e.Action == gotest.ActionRun {
			o.started[key] = true
		}
		if !gotest.IsTerminal(e.Action) {
			continue
		}
		if e.Test == "" {
			o.pkgs[key] = append(o.pkgs[key], e.Action)
			if e.FailedBuild != "" {
				o.failedBy[key] = e.FailedBuild
			}
		} else {
			o.tests[key] = append(o.tests[key], e.Action)
		}
	}
	return o
}

func runCmd(t *testing.T, dir string, name string, args ...string) ([]byte, []byte, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return stdout.Bytes(), stderr.Bytes(), code
}

// goTestJSON runs go test -json on the fixture packages.
func goTestJSON(t *testing.T, dir string, args ...string) outcome {
	t.Helper()
	out, _, _ := runCmd(t, dir, "go", append([]string{"test", "-json"}, args...)...)
	o := parseStream(t, out, false)
	// go test leaves a test that was running when its process died without a terminal
	// action; godist fails it. That is the outcome to compare with.
	for k := range o.started {
		if len(o.tests[k]) == 0 {
			o.tests[k] = []string{gotest.ActionFail}
		}
	}
	return o
}

func godistJSON(t *testing.T, dir string, args ...string) (outcome, []byte, int) {
	t.Helper()
	return godistJSONWith(t, godistBin, dir, args...)
}

// godistJSONWith runs bin (godistBin, or godistRaceBin, whose data races fail the test).
func godistJSONWith(t *testing.T, bin, dir string, args ...string) (outcome, []byte, int) {
	t.Helper()
	jf := filepath.Join(t.TempDir(), "run.json")
	stdout, stderr, code := runCmd(t, dir, bin, append([]string{"--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json")}, args...)...)
	if bytes.Contains(stderr, []byte("DATA RACE")) || bytes.Contains(stdout, []byte("DATA RACE")) {
		t.Errorf("the race detector found a data race in godist:\n%s%s", stdout, stderr)
	}
	data, err := os.ReadFile(jf)
	if err != nil {
		t.Fatalf("no --jsonfile: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	return parseStream(t, data, false), append(stdout, stderr...), code
}

// crashPackages are fixtures whose test process dies mid-run under go test, so go test
// never reports the tests after the crash; godist runs those in a new process.
var crashPackages = map[string]bool{
	"github.com/godist/godist/fixtures/panic": true,
	"github.com/godist/godist/fixtures/exit":  true,
	"github.com/godist/godist/fixtures/hang":  true,
	// A panic in another goroutine, and os.Exit(0) under -test.paniconexit0.
	"github.com/godist/godist/fixtures/panic/goroutine": true,
	"github.com/godist/godist/fixtures/exit/zero":       true,
}

func TestEndToEndSameResultsAsGoTest(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	args := []string{"-timeout", "3s", "./..."}
	want := goTestJSON(t, dir, args...)
	// The race-built godist: this run exercises the master's concurrency most.
	got, output, code := godistJSONWith(t, godistRaceBin, dir, append([]string{"-n", "3"}, args...)...)
	if code != 1 {
		t.Errorf("exit status %d, want 1 (fixtures fail)\n%s", code, output)
	}
	compareOutcomes(t, want, got, map[string]bool{"github.com/godist/godist/fixtures/flaky": true})
	if len(got.workers) < 2 {
		t.Errorf("events came from workers %v; want the work spread over several", got.workers)
	}
}

func compareOutcomes(t *testing.T, want, got outcome, ignore map[string]bool) {
	t.Helper()
	for k, acts := range got.tests {
		if len(acts) != 1 {
			t.Errorf("%s: %d terminal actions %v, want exactly one", k, len(acts), acts)
		}
	}
	for k, acts := range got.pkgs {
		if len(acts) != 1 {
			t.Errorf("package %s: %d terminal actions %v, want exactly one", k, len(acts), acts)
		}
	}
	var keys []string
	for k := range want.tests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		pkg, _, _ := strings.Cut(k, " ")
		if ignore[pkg] {
			continue
		}
		w, g := want.tests[k], got.tests[k]
		if len(g) == 0 {
			t.Errorf("%s: go test says %v, godist reports nothing", k, w)
			continue
		}
		if w[len(w)-1] != g[len(g)-1] {
			t.Errorf("%s: go test says %s, godist says %s", k, w[len(w)-1], g[len(g)-1])
		}
	}
	for k := range got.tests {
		pkg, _, _ := strings.Cut(k, " ")
		if _, ok := want.tests[k]; !ok && !crashPackages[pkg] && !ignore[pkg] {
			t.Errorf("%s: godist reports %v, go test does not report it", k, got.tests[k])
		}
	}
	for k, w := range want.pkgs {
		if ignore[k] {
			continue
		}
		g := got.pkgs[k]
		if len(g) == 0 {
			t.Errorf("package %s: go test says %v, godist reports nothing", k, w)
			continue
		}
		if w[0] != g[0] {
			t.Errorf("package %s: go test says %s, godist says %s", k, w[0], g[0])
		}
	}
	for k := range got.pkgs {
		if _, ok := want.pkgs[k]; !ok {
			t.Errorf("package %s: godist reports it, go test does not", k)
		}
	}
	for b := range want.builds {
		if !got.builds[b] {
			t.Errorf("build failure %s: reported by go test, not by godist", b)
		}
	}
}

// A crashing test costs only itself: the tests that shared its process run again.
func TestEndToEndCrashCostsOnlyTheCrashingTest(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	// -n 1 puts every test of a package in one process, so each crash strands the rest.
	got, output, code := godistJSON(t, dir, "-n", "1", "-timeout", "2s", "./panic", "./exit", "./hang")
	if code != 1 {
		t.Errorf("exit status %d, want 1\n%s", code, output)
	}
	const fx = "github.com/godist/godist/fixtures/"
	want := map[string]string{
		fx + "panic TestBefore": "pass", fx + "panic TestPanic": "fail", fx + "panic TestAfter": "pass",
		fx + "panic TestAfterWithSub": "pass", fx + "panic TestAfterWithSub/sub": "pass",
		fx + "exit TestBefore": "pass", fx + "exit TestExit": "fail", fx + "exit TestAfter": "pass",
		fx + "hang TestBefore": "pass", fx + "hang TestHang": "fail", fx + "hang TestAfter": "pass",
	}
	for k, w := range want {
		g := got.tests[k]
		if len(g) != 1 || g[0] != w {
			t.Errorf("%s: got %v, want exactly [%s]", k, g, w)
		}
	}
	for _, p := range []string{"panic", "exit", "hang"} {
		if g := got.pkgs[fx+p]; len(g) != 1 || g[0] != "fail" {
			t.Errorf("package %s: got %v, want [fail]", p, g)
		}
	}
}

// go test's flags select the same tests under godist as under go test.
func TestEndToEndGoTestFlags(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	cases := [][]string{
		{"-run", "TestA/sub|TestY/[ac]", "./subtests"},
		{"-run", "X/a|Y/b", "./subtests"},
		{"-skip", "TestA/fail|TestB", "./subtests"},
		{"-run", "TestNothingMatches", "./subtests", "./pass"},
		{"-count", "1", "-short", "-shuffle", "on", "./pass", "./parallel"},
		{"-run", "Example", "./examples"},
		{"-run", "Fuzz", "./fuzz", "./fuzzfail"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			want := goTestJSON(t, dir, args...)
			got, output, _ := godistJSON(t, dir, append([]string{"-n", "2"}, args...)...)
			compareOutcomes(t, want, got, nil)
			if t.Failed() {
				t.Logf("godist said:\n%s", output)
			}
		})
	}
}

// -failfast on one worker stops where go test -p 1 stops: after fail's first failure no
// new package starts, and nothing is reported of those that did not. (go test's own -p
// runs packages in parallel, so which of them started before the failure varies; -p 1
// makes the oracle deterministic. With several workers, tests that started before the
// first failure was known still finish, as in pytest-xdist.)
func TestEndToEndFailfast(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	want := goTestJSON(t, dir, "-p", "1", "-failfast", "./fail", "./pass")
	got, output, _ := godistJSON(t, dir, "-n", "1", "-failfast", "./fail", "./pass")
	compareOutcomes(t, want, got, nil)
	if t.Failed() {
		t.Logf("godist said:\n%s", output)
	}
}

// In each mode every test runs on every gateway, and each gateway's package gets its own
// result.
func TestEndToEndEachMode(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	_, _, code := runCmd(t, dir, godistRaceBin, "--dist", "each", "--tx", "2*popen", "--tx", "popen//id=third",
		"--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"), "./pass", "./subtests", "./buildfail")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, true)
	want := goTestJSON(t, dir, "./pass", "./subtests", "./buildfail")
	for _, w := range []string{"gw0", "gw1", "third"} {
		for k, acts := range want.tests {
			pkg, test, _ := strings.Cut(k, " ")
			g := got.tests[pkg+" @"+w+" "+test]
			if len(g) != 1 || g[0] != acts[0] {
				t.Errorf("%s on %s: got %v, want [%s]", k, w, g, acts[0])
			}
		}
		for _, p := range []string{"pass", "subtests"} {
			if g := got.pkgs["github.com/godist/godist/fixtures/"+p+" @"+w]; len(g) != 1 {
				t.Errorf("package %s on %s: %v, want one result", p, w, g)
			}
		}
	}
	// Each gateway's slice is a whole go test run: the build failure is in every one.
	for _, w := range []string{"gw0", "gw1", "third"} {
		if g := got.pkgs["github.com/godist/godist/fixtures/buildfail @"+w]; len(g) != 1 || g[0] != "fail" {
			t.Errorf("build failure on %s reported %v, want once", w, g)
		}
	}
}

// Tests see GODIST_WORKER, GODIST_WORKER_COUNT and GODIST_TESTRUNUID.
func TestEndToEndWorkerEnvironment(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	runCmd(t, dir, godistBin, "--dist", "each", "-n", "2", "--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"), "./env")
	data, _ := os.ReadFile(jf)
	var uids []string
	for _, w := range []string{"gw0", "gw1"} {
		if !bytes.Contains(data, []byte(`GODIST_WORKER=\"`+w+`\"`)) {
			t.Errorf("no test saw GODIST_WORKER=%s", w)
		}
	}
	if !bytes.Contains(data, []byte(`GODIST_WORKER_COUNT=\"2\"`)) {
		t.Error("tests did not see GODIST_WORKER_COUNT=2")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, `GODIST_TESTRUNUID=\"`); i >= 0 {
			rest := line[i+len(`GODIST_TESTRUNUID=\"`):]
			uids = append(uids, rest[:strings.Index(rest, `\"`)])
		}
	}
	if len(uids) != 2 || uids[0] == "" || uids[0] != uids[1] {
		t.Errorf("GODIST_TESTRUNUID seen as %q, want one non-empty value for the run", uids)
	}
}

// popen//goarch=386 builds the tests for 386 and runs them there.
func TestEndToEndCrossArch386(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	args := []string{"-run", "TestA|TestB|TestPass", "./pass", "./subtests"}
	want := goTestJSON(t, dir, args...)
	jf := filepath.Join(t.TempDir(), "run.json")
	runCmd(t, dir, godistBin, append([]string{"--tx", "popen//goarch=386", "--tx", "popen", "--dist", "each",
		"--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json")}, args...)...)
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, true)
	for k, acts := range want.tests {
		pkg, test, _ := strings.Cut(k, " ")
		for _, w := range []string{"gw0", "gw1"} {
			if g := got.tests[pkg+" @"+w+" "+test]; len(g) != 1 || g[0] != acts[0] {
				t.Errorf("%s on %s: %v, want [%s]", k, w, g, acts[0])
			}
		}
	}
	// The 386 gateway really ran 386 binaries.
	if !bytes.Contains(data, []byte(`"Worker":"gw0"`)) {
		t.Fatal("no events from the 386 gateway")
	}
}

// --rerun-fails: a flaky test passes on another worker and does not fail the run; every
// attempt is in --jsonfile; a failing subtest is re-run alone, however odd its name.
func TestEndToEndRerunFails(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	stdout, stderr, code := runCmd(t, dir, godistRaceBin, "--tx", "popen", "--tx", "popen", "--rerun-fails", "2", "--jsonfile", jf,
		"--durations", filepath.Join(t.TempDir(), "d.json"), "./flaky")
	if code != 0 {
		t.Errorf("exit status %d, want 0 (the flaky test passed on a re-run)\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(string(stdout), "1 flaky") {
		t.Errorf("summary does not report the flaky test:\n%s", stdout)
	}
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, false)
	acts := got.tests["github.com/godist/godist/fixtures/flaky TestFlaky"]
	if len(acts) < 2 || acts[0] != "fail" || acts[len(acts)-1] != "pass" {
		t.Errorf("TestFlaky attempts %v, want failures then a pass", acts)
	}
	workers := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, `"Test":"TestFlaky"`) && strings.Contains(line, `"Action":"run"`) {
			var e struct{ Worker string }
			json.Unmarshal([]byte(line), &e)
			workers[e.Worker] = true
		}
	}
	if len(workers) < 2 {
		t.Errorf("TestFlaky ran on %v; a re-run goes to another worker", workers)
	}

	// A test that never passes fails the run; the re-run runs only the failed subtest.
	jf2 := filepath.Join(t.TempDir(), "run2.json")
	_, _, code = runCmd(t, dir, godistBin, "-n", "2", "--rerun-fails", "1", "--jsonfile", jf2,
		"--durations", filepath.Join(t.TempDir(), "d.json"), "-run", "TestA", "./subtests")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	data, _ = os.ReadFile(jf2)
	got = parseStream(t, data, false)
	const sub = "github.com/godist/godist/fixtures/subtests TestA/fail/bad/worse"
	if a := got.tests[sub]; len(a) != 2 || a[0] != "fail" || a[1] != "fail" {
		t.Errorf("%s: %v, want two failed attempts", sub, a)
	}
	if a := got.tests["github.com/godist/godist/fixtures/subtests TestA/sub"]; len(a) != 1 {
		t.Errorf("TestA/sub ran %d times; the re-run must address only the failed subtest", len(a))
	}
}

// -x: once a test failed, no new test starts and running processes are stopped; the
// summary says how many tests did not run.
func TestEndToEndMaxfail(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	start := time.Now()
	stdout, _, code := runCmd(t, dir, godistBin, "-x", "-n", "2", "-timeout", "5m", "--jsonfile", jf,
		"--durations", filepath.Join(t.TempDir(), "d.json"), "./hang", "./fail")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if time.Since(start) > 60*time.Second {
		t.Fatalf("-x did not stop the hanging test process (took %v)", time.Since(start))
	}
	if !strings.Contains(string(stdout), "not run") {
		t.Errorf("summary does not say how many tests did not run:\n%s", stdout)
	}
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, false)
	for k, acts := range got.tests {
		if len(acts) != 1 {
			t.Errorf("%s: %v, want one terminal action", k, acts)
		}
	}
	for k, acts := range got.pkgs {
		if len(acts) != 1 {
			t.Errorf("package %s: %v, want one terminal action", k, acts)
		}
	}
}

// --shard I/N: N jobs together run every test exactly once.
func TestEndToEndShardsCoverEveryTestOnce(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	// The jobs of one pipeline all read the same durations file (as restored from a CI cache);
	// each job updates its own copy.
	seed := filepath.Join(t.TempDir(), "seed.json")
	args := []string{"./pass", "./subtests", "./skip", "./slow", "./samename1/...", "./samename2/...", "./fuzz"}
	runCmd(t, dir, godistBin, append([]string{"-n", "2", "--durations", seed}, args...)...)
	seedData, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	want := goTestJSON(t, dir, args...)
	seen := map[string]int{}
	for i := 1; i <= 3; i++ {
		jf := filepath.Join(t.TempDir(), "run.json")
		durations := filepath.Join(t.TempDir(), "d.json")
		os.WriteFile(durations, seedData, 0o644)
		runCmd(t, dir, godistBin, append([]string{"-n", "2", "--shard", fmt.Sprintf("%d/3", i), "--durations", durations, "--jsonfile", jf}, args...)...)
		data, _ := os.ReadFile(jf)
		for k, acts := range parseStream(t, data, false).tests {
			if !strings.Contains(strings.SplitN(k, " ", 2)[1], "/") {
				seen[k] += len(acts)
			}
		}
	}
	for k := range want.tests {
		if strings.Contains(strings.SplitN(k, " ", 2)[1], "/") {
			continue
		}
		if seen[k] != 1 {
			t.Errorf("%s ran %d times over the 3 shards, want exactly once", k, seen[k])
		}
	}
}

// --junitfile, --slowest and GitHub annotations come out of one run.
func TestEndToEndCIOutputs(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	junit := filepath.Join(t.TempDir(), "junit.xml")
	cmd := exec.Command(godistBin, "-n", "2", "--junitfile", junit, "--slowest", "2", "--durations", filepath.Join(t.TempDir(), "d.json"), "./fail", "./slow")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "GITHUB_ACTIONS=true", "GITHUB_WORKSPACE="+filepath.Dir(dir), "GITHUB_STEP_SUMMARY=")
	out, _ := cmd.CombinedOutput()
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatalf("junit XML does not parse: %v", err)
	}
	found := false
	for _, s := range suites.Suites {
		if s.Name == "github.com/godist/godist/fixtures/fail" && s.Failures > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("no failing suite for the fail package in:\n%s", b)
	}
	if !strings.Contains(string(out), "::error file=fixtures/fail/fail_test.go,line=") {
		t.Errorf("no GitHub annotation pointing at the failing line:\n%s", out)
	}
	if !strings.Contains(string(out), "TestSlow") || !strings.Contains(string(out), "[gw") {
		t.Errorf("--slowest did not list slow tests with their worker:\n%s", out)
	}
}

// Test binaries are kept between runs (go test -c then skips an up-to-date link); a package
// that stops building must not run its old binary.
func TestEndToEndNoStaleBinaryAfterBreakage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) { writeTestFile(t, dir, name, body) }
	write("go.mod", "module stale.example\n\ngo 1.26\n")
	write("lib/lib.go", "package lib\n\nfunc V() int { return 1 }\n")
	write("a/a_test.go", "package a\n\nimport (\n\t\"testing\"\n\n\t\"stale.example/lib\"\n)\n\nfunc TestA(t *testing.T) { _ = lib.V() }\n")
	write("b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) {}\n")
	d := filepath.Join(t.TempDir(), "d.json")
	if _, _, code := runCmd(t, dir, godistBin, "-n", "2", "--durations", d, "./..."); code != 0 {
		t.Fatalf("first run: exit %d", code)
	}
	// Break the library a depends on, and b's own test file.
	write("lib/lib.go", "package lib\n\nfunc V() int { return undefined }\n")
	write("b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) { undefined() }\n")
	jf := filepath.Join(t.TempDir(), "run.json")
	_, _, code := runCmd(t, dir, godistBin, "-n", "2", "--durations", d, "--jsonfile", jf, "./...")
	if code != 1 {
		t.Errorf("exit %d after breaking the build, want 1", code)
	}
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, false)
	for _, p := range []string{"stale.example/a", "stale.example/b"} {
		if acts := got.pkgs[p]; len(acts) != 1 || acts[0] != "fail" {
			t.Errorf("package %s: %v, want one fail", p, acts)
		}
	}
	for k := range got.tests {
		t.Errorf("%s ran: an old binary of a package that no longer builds", k)
	}
}

// writeTestFile writes body to root/name, making its directories.
func writeTestFile(t *testing.T, root, name, body string) {
	t.Helper()
	path := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A package of its own that stops building loses its old binary; the up-to-date binaries
// beside it stay (no relink), and a run that speculated on them stands, once: a test with a
// side effect is not run twice.
func TestEndToEndOneBrokenPackageLeavesTheOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) { writeTestFile(t, dir, name, body) }
	write("go.mod", "module broken1.example\n\ngo 1.26\n")
	write("a/a_test.go", `package a

import ("os"; "path/filepath"; "testing")

func TestCountsItsRuns(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(os.Getenv("RUNS_DIR"), "runs"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil { t.Fatal(err) }
	f.WriteString("x")
	f.Close()
}
`)
	write("b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) {}\n")
	d := filepath.Join(t.TempDir(), "d.json")
	runs := t.TempDir()
	env := []string{"RUNS_DIR=" + runs, "NO_COLOR=1"}
	if _, _, code := runCmdEnv(t, dir, env, godistBin, "-n", "2", "--durations", d, "./..."); code != 0 {
		t.Fatalf("first run: exit %d", code)
	}
	os.Remove(filepath.Join(runs, "runs"))
	write("b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) { undefined() }\n")
	jf := filepath.Join(t.TempDir(), "run.json")
	if _, _, code := runCmdEnv(t, dir, env, godistBin, "-n", "2", "--durations", d, "--jsonfile", jf, "./..."); code != 1 {
		t.Errorf("exit %d with b broken, want 1", code)
	}
	got := parseStream(t, mustRead(t, jf), false)
	if acts := got.pkgs["broken1.example/b"]; len(acts) != 1 || acts[0] != "fail" {
		t.Errorf("package b: %v, want one fail (its build)", acts)
	}
	if acts := got.pkgs["broken1.example/a"]; len(acts) != 1 || acts[0] != "pass" {
		t.Errorf("package a: %v, want one pass", acts)
	}
	if n := len(mustRead(t, filepath.Join(runs, "runs"))); n != 1 {
		t.Errorf("a's test ran %d times in the run, want once", n)
	}
}

// Packages without test files are built as go test builds them: one that does not build
// fails the run ("FAIL p [build failed]", exit 1), one that builds is "no test files" —
// on a first run, whose go test -c starts beside go list, and on the run after it.
func TestEndToEndUntestedPackagesBuildAsGoTest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) { writeTestFile(t, dir, name, body) }
	write("go.mod", "module untested.example\n\ngo 1.26\n")
	write("plain/plain.go", "package plain\n")
	write("bad/bad.go", "package bad\n\nvar x int = \"no\"\n")
	write("ok/ok_test.go", "package ok\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n")
	cmd := exec.Command("go", "test", "-count=1", "-json", "./...")
	cmd.Dir = dir
	goOut, _ := cmd.Output()
	want := parseStream(t, goOut, false)
	env := ownUserCache(t)
	for _, run := range []string{"first", "second"} {
		jf := filepath.Join(t.TempDir(), "run.json")
		stdout, _, code := runCmdEnv(t, dir, env, godistBin, "-n", "2", "--jsonfile", jf, "./...")
		if code != 1 {
			t.Errorf("%s run: exit %d, want 1 (bad does not build)", run, code)
		}
		if !strings.Contains(string(stdout), "FAIL\tuntested.example/bad [build failed]") {
			t.Errorf("%s run: no FAIL line for bad:\n%s", run, stdout)
		}
		got := parseStream(t, mustRead(t, jf), false)
		for _, p := range []string{"untested.example/plain", "untested.example/bad", "untested.example/ok"} {
			if strings.Join(got.pkgs[p], ",") != strings.Join(want.pkgs[p], ",") {
				t.Errorf("%s run: package %s: %v, go test %v", run, p, got.pkgs[p], want.pkgs[p])
			}
		}
	}
}

// ownUserCache is the environment of a godist with a user cache of its own (no resolve
// record, no kept binaries, no up-to-date record) and go's build cache as it is.
func ownUserCache(t *testing.T) []string {
	t.Helper()
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	return []string{"XDG_CACHE_HOME=" + t.TempDir(), "GOCACHE=" + strings.TrimSpace(string(gocache))}
}

// settle waits until everything under dir is older than treesnap trusts (100 ms): a run
// vouches for a tree only when no change is that recent. It waits on the clock, not on
// anything the run does.
func settle(t *testing.T, dir string) {
	t.Helper()
	newest := time.Time{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			if fi, err := os.Lstat(path); err == nil {
				if ct, ok := filesum.ChangeTime(fi); ok && ct.After(newest) {
					newest = ct
				}
			}
		}
		return nil
	})
	time.Sleep(time.Until(newest.Add(200 * time.Millisecond)))
}

// A run of a tree that has not changed since a build that succeeded runs its binaries
// without go list or go test -c, with go test's results (a package without tests still
// says so), also with its --jsonfile inside the tree and a test that writes a file beside
// it (neither is a source); a file rewritten with its old size
// and modification time is seen, and the run builds and fails as go test would. In a
// workspace (a go.work above the module) the tree alone cannot tell, and go always runs.
func TestEndToEndUnchangedTreeNeedsNoGo(t *testing.T) {
	t.Parallel()
	for _, workspace := range []bool{false, true} {
		top := t.TempDir()
		dir := top
		if workspace {
			dir = filepath.Join(top, "m")
			writeTestFile(t, top, "go.work", "go 1.26\n\nuse ./m\n")
		}
		write := func(name, body string) { writeTestFile(t, dir, name, body) }
		write("go.mod", "module fresh.example\n\ngo 1.26\n")
		write("a/a.go", "package a\n\nconst X = 1\n")
		// The test writes into the tree (an output beside it): not a source, no change.
		write("a/a_test.go", "package a\n\nimport (\n\t\"os\"\n\t\"testing\"\n)\n\nfunc TestX(t *testing.T) {\n\tos.WriteFile(\"out.txt\", []byte(\"x\"), 0o644)\n\tif X != 1 {\n\t\tt.Fatal(X)\n\t}\n}\n")
		write("plain/plain.go", "package plain\n")
		env := append(ownUserCache(t), "GODIST_TRACE=1", "NO_COLOR=1")
		settle(t, top)
		const fast = "binaries up to date (tree unchanged)"
		jf := filepath.Join(dir, "out.json")
		for i, wantFast := range []bool{false, !workspace, !workspace} {
			stdout, stderr, code := runCmdEnv(t, dir, env, godistBin, "-n", "2", "--jsonfile", jf, "./...")
			if code != 0 {
				t.Fatalf("workspace %v, run %d: exit %d\n%s%s", workspace, i+1, code, stdout, stderr)
			}
			if got := strings.Contains(string(stderr), fast); got != wantFast {
				t.Errorf("workspace %v, run %d: without go %v, want %v", workspace, i+1, got, wantFast)
			}
			for _, line := range []string{"?   \tfresh.example/plain\t[no test files]", "ok  \tfresh.example/a\t"} {
				if !strings.Contains(string(stdout), line) {
					t.Errorf("workspace %v, run %d: no line %q in\n%s", workspace, i+1, line, stdout)
				}
			}
		}
		a := filepath.Join(dir, "a", "a.go")
		fi, _ := os.Stat(a)
		write("a/a.go", "package a\n\nconst X = 2\n")
		os.Chtimes(a, fi.ModTime(), fi.ModTime())
		settle(t, top)
		stdout, stderr, code := runCmdEnv(t, dir, env, godistBin, "-n", "2", "./...")
		if code != 1 || strings.Contains(string(stderr), fast) || !strings.Contains(string(stdout), "FAIL\tfresh.example/a") {
			t.Errorf("workspace %v, a.go rewritten, same size and mtime: exit %d, want 1 from a new build\n%s%s", workspace, code, stdout, stderr)
		}
	}
}

// Where a package embeds files, every file of the tree counts: an embedded file rewritten
// with its old size and modification time is seen, and the run fails as go test does.
func TestEndToEndUnchangedTreeWithEmbeddedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) { writeTestFile(t, dir, name, body) }
	write("go.mod", "module embed.example\n\ngo 1.26\n")
	write("e/data.txt", "one")
	write("e/e.go", "package e\n\nimport _ \"embed\"\n\n//go:embed data.txt\nvar Data string\n")
	write("e/e_test.go", "package e\n\nimport \"testing\"\n\nfunc TestData(t *testing.T) {\n\tif Data != \"one\" {\n\t\tt.Fatal(Data)\n\t}\n}\n")
	env := append(ownUserCache(t), "GODIST_TRACE=1", "NO_COLOR=1")
	settle(t, dir)
	const fast = "binaries up to date (tree unchanged)"
	for i, wantFast := range []bool{false, true} {
		stdout, stderr, code := runCmdEnv(t, dir, env, godistBin, "-n", "2", "./...")
		if code != 0 || strings.Contains(string(stderr), fast) != wantFast {
			t.Fatalf("run %d: exit %d, without go %v (want %v)\n%s%s", i+1, code, !wantFast, wantFast, stdout, stderr)
		}
	}
	data := filepath.Join(dir, "e", "data.txt")
	fi, _ := os.Stat(data)
	write("e/data.txt", "two")
	os.Chtimes(data, fi.ModTime(), fi.ModTime())
	settle(t, dir)
	stdout, stderr, code := runCmdEnv(t, dir, env, godistBin, "-n", "2", "./...")
	if code != 1 || strings.Contains(string(stderr), fast) || !strings.Contains(string(stdout), "FAIL\tembed.example/e") {
		t.Errorf("embedded file rewritten, same size and mtime: exit %d, want 1 from a new build\n%s%s", code, stdout, stderr)
	}
}
