package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

// Exactness on the cases that real suites taught us (issue 9): each test reproduces one,
// against go test where go test can say what is right.

func readEvents(t *testing.T, file string) []gotest.Event {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var evs []gotest.Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e gotest.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not an event: %q", sc.Text())
		}
		evs = append(evs, e)
	}
	return evs
}

// A test that runs testing.RunTests itself prints failing inner tests in a binary that
// exits 0: the package is ok, as go test says, and the run passes.
func TestEndToEndNestedRunTestsPackageOK(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	want := goTestJSON(t, dir, "./nested")
	got, output, code := godistJSON(t, dir, "-n", "2", "./nested")
	compareOutcomes(t, want, got, nil)
	if code != 0 {
		t.Errorf("exit status %d, want 0 as go test's\n%s", code, output)
	}
	if a := got.tests["github.com/godist/godist/fixtures/nested TestInnerFails"]; len(a) != 1 || a[0] != "fail" {
		t.Errorf("the inner failing test: %v, want it reported as go test reports it (fail)", a)
	}
}

// Test processes see PWD = the package directory and $GOROOT/bin first in PATH.
func TestEndToEndPWDAndPATH(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	got, output, code := godistJSON(t, dir, "-n", "2", "./pwd")
	if code != 0 {
		t.Errorf("exit status %d, want 0\n%s", code, output)
	}
	for _, n := range []string{"TestPWD", "TestGOROOTBinFirstInPATH"} {
		if a := got.tests["github.com/godist/godist/fixtures/pwd "+n]; len(a) != 1 || a[0] != "pass" {
			t.Errorf("%s: %v\n%s", n, a, output)
		}
	}
}

// Benchmarks run as go test runs them: after their package's tests, never beside another
// test process of the host, with go test's result lines (-benchmem, -cpu 1,2).
func TestEndToEndBenchmarks(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	stdout, stderr, code := runCmd(t, dir, godistBin, "-n", "2", "--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"),
		"-bench", ".", "-benchmem", "-benchtime", "50x", "-cpu", "1,2", "./bench", "./benchalone/...")
	if code != 0 {
		t.Fatalf("exit status %d, want 0\n%s%s", code, stdout, stderr)
	}
	evs := readEvents(t, jf)
	var out strings.Builder
	testsEnded := map[string]int{} // package -> index of its last test's terminal event
	benchStart := map[string]int{}
	for i, e := range evs {
		out.WriteString(e.Output)
		if e.Test == "" {
			if gotest.IsTerminal(e.Action) && e.Action != "pass" {
				t.Errorf("package %s: %s", e.Package, e.Action)
			}
			continue
		}
		if strings.HasPrefix(e.Test, "Benchmark") {
			if e.Action == "run" {
				if _, ok := benchStart[e.Package]; !ok {
					benchStart[e.Package] = i
				}
			}
			if e.Action == "fail" {
				t.Errorf("%s %s failed", e.Package, e.Test)
			}
		} else if gotest.IsTerminal(e.Action) {
			testsEnded[e.Package] = i
		}
	}
	for _, pkg := range []string{"github.com/godist/godist/fixtures/bench", "github.com/godist/godist/fixtures/benchalone"} {
		s, ok := benchStart[pkg]
		if !ok {
			t.Errorf("%s: no benchmark ran", pkg)
			continue
		}
		if s < testsEnded[pkg] {
			t.Errorf("%s: a benchmark started before the package's tests had ended", pkg)
		}
	}
	for _, re := range []string{`(?m)^BenchmarkSum\s+\t\s*50\t.* ns/op\t.* B/op\t.* allocs/op$`, `(?m)^BenchmarkSum-2\s+\t\s*50\t.* ns/op`, `(?m)^BenchmarkAlone-2\s`} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("no result line matching %s in:\n%s", re, out.String())
		}
	}
}

// -x stops the run: the package still running is not ok and its running test is not
// passed or skipped; the summary counts it as not run, and the stop's count is what failed.
func TestEndToEndStopIsNeverOK(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	env := append(os.Environ(), "NO_COLOR=1", "GODIST_FIXTURE_SLOW=1")
	stdout, stderr, code := runWithEnv(t, env, dir, "-x", "-n", "2", "--jsonfile", jf,
		"--durations", filepath.Join(t.TempDir(), "d.json"), "./stopslow/slow", "./stopslow/fast")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	got := parseStream(t, mustRead(t, jf), false)
	if a := got.pkgs["github.com/godist/godist/fixtures/stopslow/slow"]; len(a) != 1 || a[0] != "fail" {
		t.Errorf("the stopped package: %v, want one fail (never ok)\n%s", a, stdout)
	}
	if a := got.tests["github.com/godist/godist/fixtures/stopslow/slow TestSlow"]; len(a) > 1 || (len(a) == 1 && a[0] != "fail") {
		t.Errorf("the stopped test: %v, want fail or nothing", a)
	}
	if !bytes.Contains(mustRead(t, jf), []byte(gotest.StoppedPrefix)) {
		t.Errorf("the JSON does not say what was stopped")
	}
	all := string(stdout) + string(stderr)
	if !strings.Contains(all, " 1 failed") || !strings.Contains(all, "not run") {
		t.Errorf("summary must count the one failure and the stopped test apart:\n%s", all)
	}
	if !strings.Contains(all, "stopping after 1 failed test") {
		t.Errorf("the stop message does not give the count that failed:\n%s", all)
	}
}

// -skip deselects: the skipped tests are not counted as not run.
func TestEndToEndSkipIsNotNotRun(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	stdout, _, code := runCmd(t, dir, godistBin, "-n", "2", "--durations", filepath.Join(t.TempDir(), "d.json"), "-skip", "TestSum", "./bench", "./pass")
	if code != 0 || strings.Contains(string(stdout), "not run") {
		t.Errorf("exit %d; a -skip'ed test counted as not run:\n%s", code, stdout)
	}
}

// --shard 1/3 … 3/3 run one after another with one durations file run every test once,
// agree on their split, and report build failures and no-test packages once.
func TestEndToEndShardsOneAfterAnother(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	durations := filepath.Join(t.TempDir(), "d.json")
	args := []string{"./pass", "./subtests", "./skip", "./slow", "./samename1/...", "./samename2/...", "./fuzz", "./buildfail", "./notests"}
	want := goTestJSON(t, dir, args...)
	for round := range 2 { // the second round splits by what the first one measured
		seen := map[string]int{}
		pkgSeen := map[string]int{}
		digests := map[string]bool{}
		for i := 1; i <= 3; i++ {
			jf := filepath.Join(t.TempDir(), "run.json")
			stdout, _, _ := runCmd(t, dir, godistBin, append([]string{"-n", "2", "--shard", fmt.Sprintf("%d/3", i), "--durations", durations, "--jsonfile", jf}, args...)...)
			m := regexp.MustCompile(`shard \d/3 of split ([0-9a-f]+)`).FindSubmatch(stdout)
			if m == nil {
				t.Fatalf("shard %d/3 printed no split digest:\n%s", i, stdout)
			}
			digests[string(m[1])] = true
			o := parseStream(t, mustRead(t, jf), false)
			for k, acts := range o.tests {
				if !strings.Contains(strings.SplitN(k, " ", 2)[1], "/") {
					seen[k] += len(acts)
				}
			}
			for k, acts := range o.pkgs {
				if k == "github.com/godist/godist/fixtures/buildfail" || k == "github.com/godist/godist/fixtures/notests" {
					pkgSeen[k] += len(acts)
				}
			}
		}
		if len(digests) != 1 {
			t.Errorf("round %d: the shards split differently: digests %v", round, digests)
		}
		for k := range want.tests {
			if !strings.Contains(strings.SplitN(k, " ", 2)[1], "/") && seen[k] != 1 {
				t.Errorf("round %d: %s ran %d times over the 3 shards, want exactly once", round, k, seen[k])
			}
		}
		for _, p := range []string{"github.com/godist/godist/fixtures/buildfail", "github.com/godist/godist/fixtures/notests"} {
			if pkgSeen[p] != 1 {
				t.Errorf("round %d: %s reported by %d shards, want exactly one", round, p, pkgSeen[p])
			}
		}
	}
}

// In each mode every event carries its Worker, build failures and no-test packages
// included: each gateway's slice is a whole go test run.
func TestEndToEndEachModeEveryEventHasItsWorker(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	runCmd(t, dir, godistBin, "--dist", "each", "--tx", "2*popen", "--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"),
		"./pass", "./buildfail", "./notests")
	evs := readEvents(t, jf)
	want := goTestJSON(t, dir, "./pass", "./buildfail", "./notests")
	for _, e := range evs {
		if e.Worker == "" {
			t.Errorf("event without Worker: %+v", e)
		}
	}
	got := parseStream(t, mustRead(t, jf), true)
	for _, w := range []string{"gw0", "gw1"} {
		for pkg, acts := range want.pkgs {
			if g := got.pkgs[pkg+" @"+w]; len(g) != 1 || g[0] != acts[0] {
				t.Errorf("package %s on %s: %v, want [%s]", pkg, w, g, acts[0])
			}
		}
		for b := range want.builds {
			found := false
			for _, e := range evs {
				if e.Action == gotest.ActionBuildFail && e.ImportPath == b && e.Worker == w {
					found = true
				}
			}
			if !found {
				t.Errorf("build failure %s missing from %s's slice", b, w)
			}
		}
	}
}

// Tests that share a file in the package directory are not split over processes on the
// first run (no durations yet), nor on the next.
func TestEndToEndPackageNotSplitOnGuesses(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	d := filepath.Join(t.TempDir(), "d.json")
	for run := range 2 {
		jf := filepath.Join(t.TempDir(), "run.json")
		stdout, _, code := runCmd(t, dir, godistBin, "-n", "2", "--durations", d, "--jsonfile", jf, "./sharedfile", "./slow")
		if code != 0 {
			t.Errorf("run %d: exit %d\n%s", run, code, stdout)
		}
		workers := map[string]bool{}
		for _, e := range readEvents(t, jf) {
			if e.Package == "github.com/godist/godist/fixtures/sharedfile" && e.Action == "run" {
				workers[e.Worker] = true
			}
		}
		if len(workers) != 1 {
			t.Errorf("run %d: sharedfile's tests ran on %v; want one process", run, workers)
		}
	}
}

// A module whose path ends in a major version keeps its root package, also beside a
// package of the same name.
func TestEndToEndMajorVersionModule(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	pass := "\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n"
	writeTestFile(t, root, "go.mod", "module example.com/foo/v2\n\ngo 1.21\n")
	writeTestFile(t, root, "foo.go", "package foo\n")
	writeTestFile(t, root, "foo_test.go", "package foo\n"+pass)
	writeTestFile(t, root, "internal/foo/foo_test.go", "package foo\n"+pass)
	want := goTestJSON(t, root, "./...")
	got, output, code := godistJSON(t, root, "-n", "2", "./...")
	if code != 0 {
		t.Errorf("exit %d\n%s", code, output)
	}
	compareOutcomes(t, want, got, nil)
	if len(got.tests) != 2 {
		t.Errorf("tests %v, want both packages' TestOK", got.tests)
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Ctrl-C: the test that was running and its package end fail, saying they were stopped;
// nothing that did not end is reported pass, ok or skip.
func TestEndToEndInterruptIsNeverOK(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	cmd := exec.Command(godistBin, "-n", "1", "-timeout", "1m", "--durations", filepath.Join(t.TempDir(), "d.json"), "--jsonfile", jf, "./hang")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for TestHang to start: the JSON file says so.
	deadline := time.Now().Add(time.Minute)
	for !bytes.Contains(readIfAny(jf), []byte(`"Action":"run","Package":"github.com/godist/godist/fixtures/hang","Test":"TestHang"`)) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("TestHang never started:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for a condition, not timing it
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	got := parseStream(t, mustRead(t, jf), false)
	if a := got.tests["github.com/godist/godist/fixtures/hang TestHang"]; len(a) != 1 || a[0] != "fail" {
		t.Errorf("the interrupted test: %v, want one fail", a)
	}
	if a := got.pkgs["github.com/godist/godist/fixtures/hang"]; len(a) != 1 || a[0] != "fail" {
		t.Errorf("the interrupted package: %v, want one fail (never ok)", a)
	}
	if !bytes.Contains(mustRead(t, jf), []byte(gotest.StoppedPrefix+"the run was interrupted")) {
		t.Errorf("the JSON does not say the run was interrupted")
	}
	if !strings.Contains(out.String(), "not run") || strings.Contains(out.String(), " 1 failed") {
		t.Errorf("the summary must count the interrupted test as not run, not failed:\n%s", out.String())
	}
}

func readIfAny(f string) []byte {
	b, _ := os.ReadFile(f)
	return b
}

// --dist loadpkg keeps every package in one process, as go test does, and spreads the
// packages over the workers.
func TestEndToEndLoadPkg(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	// (Not ./sharedfile: its tests write into its directory, and TestEndToEndPackageNot
	// SplitOnGuesses runs it meanwhile.)
	args := []string{"./pass", "./subtests", "./slow", "./parallel"}
	want := goTestJSON(t, dir, args...)
	d := filepath.Join(t.TempDir(), "d.json")
	// A first run records durations by which load mode would split slow/.
	runCmd(t, dir, godistBin, append([]string{"-n", "2", "--durations", d}, args...)...)
	jf := filepath.Join(t.TempDir(), "run.json")
	runCmd(t, dir, godistBin, append([]string{"-n", "2", "--dist", "loadpkg", "--durations", d, "--jsonfile", jf}, args...)...)
	got := parseStream(t, mustRead(t, jf), false)
	compareOutcomes(t, want, got, nil)
	byPkg := map[string]map[string]bool{}
	all := map[string]bool{}
	for _, e := range readEvents(t, jf) {
		if e.Action == "run" {
			if byPkg[e.Package] == nil {
				byPkg[e.Package] = map[string]bool{}
			}
			byPkg[e.Package][e.Worker] = true
			all[e.Worker] = true
		}
	}
	for p, ws := range byPkg {
		if len(ws) != 1 {
			t.Errorf("%s ran on %v: loadpkg keeps a package on one worker", p, ws)
		}
	}
	if len(all) != 2 {
		t.Errorf("packages ran on %v, want them spread over both workers", all)
	}
}

// A build that fails for no package in particular (-race on linux/386) is bad usage with
// go's reason and the gateways it concerns, before any test runs; a gateway that cannot
// start says why in one line.
func TestEndToEndErrorsNameTheirCause(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-race", "--tx", "popen", "--tx", "popen//goarch=386", "./pass"}, 2, "building the tests for linux/386 (gw1): -race is not supported on linux/386"},
		{[]string{"--tx", "popen//chdir=/nonexistent-godist-dir", "./pass"}, 3, "chdir /nonexistent-godist-dir: no such file or directory"},
	} {
		stdout, stderr, code := runCmd(t, dir, godistBin, append([]string{"--durations", filepath.Join(t.TempDir(), "d.json")}, c.args...)...)
		if code != c.code || !strings.Contains(string(stderr)+string(stdout), c.want) {
			t.Errorf("godist %v: exit %d, want %d saying %q:\n%s%s", c.args, code, c.code, c.want, stdout, stderr)
		}
		if strings.Contains(string(stdout), "passed") && c.code == 2 {
			t.Errorf("godist %v ran tests before refusing", c.args)
		}
	}
}

// Two runs of one module at once share its binary cache without breaking each other: one
// rebuilding a package (here with another -tags, which the cache keys apart, and then the
// same flags) never pulls a binary from under the other.
func TestEndToEndConcurrentRunsShareTheBinaryCache(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	args := []string{"./pass", "./subtests", "./skip", "./slow"}
	want := goTestJSON(t, dir, args...)
	type result struct {
		o    outcome
		out  []byte
		code int
	}
	results := make(chan result, 4)
	for range 4 {
		go func() {
			o, out, code := godistJSONWith(t, godistRaceBin, dir, append([]string{"-n", "2"}, args...)...)
			results <- result{o, out, code}
		}()
	}
	for range 4 {
		r := <-results
		compareOutcomes(t, want, r.o, nil)
		if r.code != 1 {
			t.Errorf("exit %d, want 1 (subtests fails)\n%s", r.code, r.out)
		}
	}
}

// A test whose output is an exact multiple of 1 MiB without a final newline glues its
// "--- PASS" to that output, so test2json never ends it; the process still ran to its end
// (exit 0 after PASS): the test passed and so does its package, as go test says.
func TestEndToEndMiBOutputWithoutNewline(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module mib.example\n\ngo 1.21\n")
	writeTestFile(t, root, "m_test.go", `package mib

import (
	"os"
	"strings"
	"testing"
)

func TestMiB(t *testing.T)    { os.Stdout.WriteString(strings.Repeat("x", 1<<20)) }
func TestTwoMiB(t *testing.T) { os.Stdout.WriteString(strings.Repeat("y", 2<<20)) }
func TestAfter(t *testing.T)  {}
`)
	want := goTestJSON(t, root, "./...")
	got, output, code := godistJSON(t, root, "-n", "1", "./...")
	if code != 0 {
		t.Errorf("exit %d, want 0 as go test's\n%s", code, output)
	}
	if a := got.pkgs["mib.example"]; len(a) != 1 || a[0] != "pass" || want.pkgs["mib.example"][0] != "pass" {
		t.Errorf("package: godist %v, go test %v; want pass", a, want.pkgs["mib.example"])
	}
	for _, n := range []string{"TestMiB", "TestTwoMiB", "TestAfter"} {
		if a := got.tests["mib.example "+n]; len(a) != 1 || a[0] != "pass" {
			t.Errorf("%s: %v, want [pass]", n, a)
		}
	}
}

// A package whose test runs testing.RunTests itself is not split once it has durations
// enough to be: split, its batches' -test.run would filter the nested tests away.
func TestEndToEndNestedRunTestsNeverSplit(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module nest.example\n\ngo 1.21\n")
	writeTestFile(t, root, "n_test.go", `package nest

import (
	"regexp"
	"testing"
	"time"
)

func TestNested(t *testing.T) {
	testing.RunTests(func(pat, s string) (bool, error) { return regexp.MatchString(pat, s) },
		[]testing.InternalTest{{Name: "TestInner", F: func(t *testing.T) {}}})
}
func TestSlow1(t *testing.T) { time.Sleep(400 * time.Millisecond) }
func TestSlow2(t *testing.T) { time.Sleep(400 * time.Millisecond) }
`)
	want := goTestJSON(t, root, "./...")
	d := filepath.Join(t.TempDir(), "d.json")
	for run := range 3 {
		jf := filepath.Join(t.TempDir(), "run.json")
		stdout, _, code := runCmd(t, root, godistBin, "-n", "2", "--durations", d, "--jsonfile", jf, "./...")
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, code, stdout)
		}
		compareOutcomes(t, want, parseStream(t, mustRead(t, jf), false), nil)
	}
}

// A warm run starts with the binaries of the run before while go checks them: when go
// links a package anew, nothing of the old binary's run is reported, only the new one's.
func TestEndToEndSpeculationNeverReportsAStaleBinary(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module spec.example\n\ngo 1.21\n")
	writeTestFile(t, root, "a/a_test.go", "package a\n\nimport \"testing\"\n\nfunc TestOld(t *testing.T) {}\n")
	writeTestFile(t, root, "b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestSame(t *testing.T) {}\n")
	d := filepath.Join(t.TempDir(), "d.json")
	if _, _, code := runCmd(t, root, godistBin, "-n", "2", "--durations", d, "./..."); code != 0 {
		t.Fatalf("first run: exit %d", code)
	}
	// a changes: its test is renamed and now fails; b does not.
	writeTestFile(t, root, "a/a_test.go", "package a\n\nimport \"testing\"\n\nfunc TestNew(t *testing.T) { t.Fatal(\"new\") }\n")
	want := goTestJSON(t, root, "./...")
	jf := filepath.Join(t.TempDir(), "run.json")
	_, _, code := runCmd(t, root, godistBin, "-n", "2", "--durations", d, "--jsonfile", jf, "./...")
	if code != 1 {
		t.Errorf("exit %d, want 1 (TestNew fails)", code)
	}
	got := parseStream(t, mustRead(t, jf), false)
	compareOutcomes(t, want, got, nil)
	if _, ok := got.tests["spec.example/a TestOld"]; ok {
		t.Error("TestOld, of the old binary, was reported")
	}
	// And a package that no longer builds reports its build failure, not the old run.
	writeTestFile(t, root, "b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestSame(t *testing.T) { undefined() }\n")
	jf = filepath.Join(t.TempDir(), "run.json")
	runCmd(t, root, godistBin, "-n", "2", "--durations", d, "--jsonfile", jf, "./...")
	got = parseStream(t, mustRead(t, jf), false)
	if a := got.tests["spec.example/b TestSame"]; len(a) != 0 {
		t.Errorf("TestSame of the old binary reported %v; the package no longer builds", a)
	}
	if a := got.pkgs["spec.example/b"]; len(a) != 1 || a[0] != "fail" {
		t.Errorf("package b: %v, want one fail (build failed)", a)
	}
}

// A run starts from the packages the last run resolved, while go list checks them: when
// they changed (a package added, one removed, a test file added), the run is the one go
// list's packages make, and nothing of the abandoned start is reported.
func TestEndToEndPackagesChangeBetweenRuns(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module change.example\n\ngo 1.21\n")
	writeTestFile(t, root, "a/a_test.go", "package a\n\nimport \"testing\"\n\nfunc TestA(t *testing.T) {}\n")
	writeTestFile(t, root, "gone/g_test.go", "package gone\n\nimport \"testing\"\n\nfunc TestGone(t *testing.T) {}\n")
	d := filepath.Join(t.TempDir(), "d.json")
	runs := func() outcome {
		t.Helper()
		jf := filepath.Join(t.TempDir(), "run.json")
		stdout, _, code := runCmd(t, root, godistBin, "-n", "2", "--durations", d, "--jsonfile", jf, "./...")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stdout)
		}
		data := mustRead(t, jf)
		starts := map[string]int{}
		for _, line := range bytes.Split(data, []byte("\n")) {
			var e gotest.Event
			if json.Unmarshal(line, &e) == nil && e.Action == gotest.ActionStart {
				starts[e.Package]++
			}
		}
		for p, n := range starts {
			if n != 1 {
				t.Errorf("package %s started %d times in one run", p, n)
			}
		}
		return parseStream(t, data, false)
	}
	runs()
	os.RemoveAll(filepath.Join(root, "gone"))
	writeTestFile(t, root, "b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) {}\n")
	writeTestFile(t, root, "a/more_test.go", "package a\n\nimport \"testing\"\n\nfunc TestMore(t *testing.T) {}\n")
	compareOutcomes(t, goTestJSON(t, root, "./..."), runs(), nil)
}
