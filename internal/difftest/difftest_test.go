package difftest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/internal/proc"
)

// stream builds a go test -json stream from "pkg test action" lines: test "-" is the
// package, action "run" a run event, "PASS"/"FAIL" the binary's final line, "build-fail"
// a build-fail event for pkg, "failedbuild" a package fail with FailedBuild set.
func stream(lines ...string) []byte {
	var b strings.Builder
	for _, l := range lines {
		f := strings.Fields(l)
		pkg, test, action := f[0], f[1], f[2]
		switch {
		case action == "build-fail":
			fmt.Fprintf(&b, `{"ImportPath":"%s [%s.test]","Action":"build-fail"}`+"\n", pkg, pkg)
		case action == "failedbuild":
			fmt.Fprintf(&b, `{"Action":"fail","Package":%q,"FailedBuild":"%s [%s.test]"}`+"\n", pkg, pkg, pkg)
		case action == "PASS" || action == "FAIL":
			fmt.Fprintf(&b, `{"Action":"output","Package":%q,"Output":"%s\n"}`+"\n", pkg, action)
		case test == "-":
			fmt.Fprintf(&b, `{"Action":%q,"Package":%q}`+"\n", action, pkg)
		default:
			fmt.Fprintf(&b, `{"Action":%q,"Package":%q,"Test":%q}`+"\n", action, pkg, test)
		}
	}
	return []byte(b.String())
}

func ok(data []byte, exit int) Stream { return Stream{Outcome: Parse(data), Exit: exit} }

func diffStrings(c *Comparison) []string {
	var out []string
	for _, d := range c.Diffs {
		out = append(out, d.String())
	}
	return out
}

func wantDiffs(t *testing.T, c *Comparison, want ...string) {
	t.Helper()
	got := diffStrings(c)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var passing = stream("p TestA run", "p TestA pass", "p TestA/sub run", "p TestA/sub pass", "p - PASS", "p - pass")

func TestSameStreamsNoDifference(t *testing.T) {
	c := Compare([]Stream{ok(passing, 0)}, []Stream{ok(passing, 0), ok(passing, 0)}, Options{})
	wantDiffs(t, c)
	if c.Tests != 2 || c.Packages != 1 {
		t.Errorf("counted %d tests, %d packages; want 2, 1", c.Tests, c.Packages)
	}
}

func TestTestOutcomeDiffers(t *testing.T) {
	got := stream("p TestA run", "p TestA pass", "p TestA/sub run", "p TestA/sub fail", "p - FAIL", "p - fail")
	c := Compare([]Stream{ok(passing, 0)}, []Stream{ok(passing, 0), ok(got, 1)}, Options{})
	wantDiffs(t, c,
		"exit exit status: go test 0, godist = go test (run 1), 1 (run 2)",
		"package p: go test pass, godist = go test (run 1), fail (run 2)",
		"test p TestA/sub: go test pass, godist = go test (run 1), fail (run 2)")
}

// go test leaves a test that was running when its process died without a terminal action:
// it counts as failed; godist must end it.
func TestCrashedTestCountsAsFailed(t *testing.T) {
	goTest := stream("p TestA run", "p TestA pass", "p TestCrash run", "p - fail")
	godist := stream("p TestA run", "p TestA pass", "p TestCrash run", "p TestCrash fail", "p TestAfter run", "p TestAfter pass", "p - fail")
	c := Compare([]Stream{ok(goTest, 1)}, []Stream{ok(godist, 1)}, Options{})
	wantDiffs(t, c)
	if len(c.Rerun) != 1 || c.Rerun[0] != (Key{"p", "TestAfter"}) {
		t.Errorf("re-run after the crash: %v, want [p TestAfter]", c.Rerun)
	}
	// The same extra test in a package that did not crash is a difference.
	goTest = stream("p TestA run", "p TestA pass", "p - PASS", "p - pass")
	godist = stream("p TestA run", "p TestA pass", "p TestB run", "p TestB pass", "p - pass")
	wantDiffs(t, Compare([]Stream{ok(goTest, 0)}, []Stream{ok(godist, 0)}, Options{}),
		"test p TestB: go test -, godist pass (run 1)")
}

func TestGodistMustEndEveryTestOnce(t *testing.T) {
	godist := stream("p TestA run", "p TestA pass", "p TestA pass", "p TestA/sub run", "p - pass", "p - pass")
	wantDiffs(t, Compare([]Stream{ok(passing, 0)}, []Stream{ok(godist, 0)}, Options{}),
		"terminal p TestA: go test 1, godist 2 [pass pass] (run 1)",
		"terminal p TestA/sub: go test 1, godist 0 (run, never ended) (run 1)",
		"terminal package p: go test 1, godist 2 [pass pass] (run 1)",
		"test p TestA/sub: go test pass, godist - (run 1)")
}

func TestFlakyTestsAreNotDifferences(t *testing.T) {
	second := stream("p TestA run", "p TestA pass", "p TestA/sub run", "p TestA/sub fail", "p - FAIL", "p - fail")
	godist := stream("p TestA run", "p TestA fail", "p TestA/sub run", "p TestA/sub fail", "p - FAIL", "p - fail")
	c := Compare([]Stream{ok(passing, 0), ok(second, 1)}, []Stream{ok(godist, 1)}, Options{})
	// TestA itself passed twice under go test: its failure under godist is a difference.
	wantDiffs(t, c, "test p TestA: go test pass, godist fail (run 1)")
	var flaky []string
	for _, f := range c.Flaky {
		flaky = append(flaky, f.String())
	}
	want := "p TestA/sub: go test pass, fail; godist fail\npackage p: go test pass, fail; godist fail"
	if strings.Join(flaky, "\n") != want {
		t.Errorf("flaky:\n%s\nwant:\n%s", strings.Join(flaky, "\n"), want)
	}
}

func TestLostPackageIsOneDifference(t *testing.T) {
	godist := stream("p - failedbuild")
	wantDiffs(t, Compare([]Stream{ok(passing, 0)}, []Stream{ok(godist, 1)}, Options{}),
		"exit exit status: go test 0, godist 1 (run 1)",
		`build FailedBuild of p: go test -, godist "p [p.test]" (run 1)`,
		"package p: go test pass, godist fail (run 1)",
		"test p (all 2 tests): go test 2 pass, godist - (run 1)")
}

func TestBuildFailures(t *testing.T) {
	goTest := stream("b x build-fail", "b - failedbuild", "q - failedbuild")
	godist := stream("b - failedbuild", "q x build-fail", "q - failedbuild", "r - skip")
	wantDiffs(t, Compare([]Stream{ok(goTest, 1)}, []Stream{ok(godist, 1)}, Options{}),
		"build b [b.test]: go test build-fail, godist - (run 1)",
		"build q [q.test]: go test -, godist build-fail (run 1)",
		"package r: go test -, godist skip (run 1)")
}

func TestIgnoredPackage(t *testing.T) {
	goTest := stream("p TestA run", "p TestA pass", "p - PASS", "p - pass", "f TestF run", "f TestF pass", "f - PASS", "f - pass")
	godist := stream("p TestA run", "p TestA pass", "p - pass", "f TestF run", "f TestF fail", "f - fail")
	c := Compare([]Stream{ok(goTest, 0)}, []Stream{ok(godist, 1)}, Options{Ignore: map[string]string{"f": "flaky by design"}})
	// The exit status is not known: only an ignored package failed.
	wantDiffs(t, c)
	if len(c.Ignored) != 1 || c.Ignored[0] != "f: flaky by design" {
		t.Errorf("ignored: %v", c.Ignored)
	}
}

func TestRunThatDidNotFinish(t *testing.T) {
	c := Compare([]Stream{ok(passing, 0)}, []Stream{{Err: errors.New("killed after 5m0s")}, ok(passing, 0)}, Options{})
	wantDiffs(t, c, "run godist run 1: go test finished, godist killed after 5m0s (run 1), = go test (run 2)")
}

func TestMalformedLines(t *testing.T) {
	o := Parse(append([]byte("not json\n"), passing...))
	if o.Malformed != 1 || o.FirstMalformed != "not json" || len(o.Tests) != 2 {
		t.Errorf("Parse: %d malformed (%q), %d tests", o.Malformed, o.FirstMalformed, len(o.Tests))
	}
	wantDiffs(t, Compare([]Stream{ok(passing, 0)}, []Stream{{Outcome: o}}, Options{}),
		`stream --jsonfile: go test JSON lines, godist 1 other lines, the first "not json" (run 1)`)
}

func TestLookup(t *testing.T) {
	if m, ok := Lookup("github.com/cespare/xxhash/v2"); !ok || m.Version == "" {
		t.Errorf("Lookup of a known path: %+v %v", m, ok)
	}
	if m, ok := Lookup("example.com/new@v1.2.3"); !ok || m.Name() != "example.com/new@v1.2.3" {
		t.Errorf("Lookup of a new path@version: %+v %v", m, ok)
	}
	if _, ok := Lookup("example.com/new"); ok {
		t.Error("Lookup of an unknown path without version found something")
	}
	seen := map[string]bool{}
	for _, m := range Modules {
		if m.Version == "" || seen[m.Path] {
			t.Errorf("Modules: %s listed twice or without version", m.Path)
		}
		seen[m.Path] = true
	}
}

// A fake godist, a shell script that writes a chosen stream, checks the whole of Check on a
// tiny local module: copies, both go test runs, both godist runs, the comparison.
func TestCheckLocalModule(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	mod := filepath.Join(dir, "mod")
	write(t, mod, "go.mod", "module example.com/m\n\ngo 1.21\n")
	write(t, mod, "m_test.go", "package m\n\nimport \"testing\"\n\nfunc TestA(t *testing.T) {}\n\nfunc TestB(t *testing.T) {}\n")
	// The fake godist reports TestA only, and checks it was called as the harness promises.
	fake := filepath.Join(dir, "godist")
	write(t, dir, "godist", `#!/bin/sh
[ "$1" = --jsonfile ] && [ "$3" = --durations ] && [ "$5" = -n ] && [ "$6" = 2 ] || { echo "bad args: $*" >&2; exit 2; }
[ -z "$GODIST_WORKER" ] || { echo "GODIST_WORKER leaked" >&2; exit 2; }
cat > "$2" <<'END'
{"Action":"start","Package":"example.com/m"}
{"Action":"run","Package":"example.com/m","Test":"TestA"}
{"Action":"pass","Package":"example.com/m","Test":"TestA"}
{"Action":"pass","Package":"example.com/m"}
END
`)
	if err := os.Chmod(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GODIST_WORKER", "gw9")
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := Check(context.Background(), Config{Godist: fake, WorkDir: work, RunTimeout: 2 * time.Minute}, Module{Dir: mod})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tests != 2 || len(res.GoTest) != 2 || len(res.Godist) != 2 {
		t.Fatalf("%d tests, %d go test runs, %d godist runs; want 2, 2, 2", res.Tests, len(res.GoTest), len(res.Godist))
	}
	for _, r := range res.Godist {
		if r.Err != nil || r.Exit != 0 {
			b, _ := os.ReadFile(r.Output)
			t.Fatalf("fake godist: exit %d, %v: %s", r.Exit, r.Err, b)
		}
	}
	wantDiffs(t, res.Comparison, "test example.com/m TestB: go test pass, godist - (run 1), - (run 2)")
	var table strings.Builder
	WriteTable(&table, []*Result{res}, []Failed{{Module: Module{Path: "x", Version: "v1"}, Err: errors.New("no")}})
	if !strings.Contains(table.String(), "| mod | 1 | 2 | 1 | 0 | 0 |") || !strings.Contains(table.String(), "| x@v1 | | | not checked: no |") {
		t.Errorf("table:\n%s", table.String())
	}
}

// A run that outlives RunTimeout is killed with its children, and says so; a run that
// ends leaves nothing of its process group behind.
func TestRunKillsItsGroup(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		timedOut     bool
	}{
		{"timeout", `sleep 60 & echo $! > "$0"; wait`, true},
		{"straggler", `sleep 60 & echo $! > "$0"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{RunTimeout: 500 * time.Millisecond}
			if !tc.timedOut {
				cfg.RunTimeout = time.Minute
			}
			pidFile := filepath.Join(dir, "pid")
			run := cfg.run(context.Background(), dir, os.Environ(), "", filepath.Join(dir, "out"), "sh", "-c", tc.script, pidFile)
			if got := run.Err != nil && strings.Contains(run.Err.Error(), "killed after"); got != tc.timedOut {
				t.Errorf("run error %v; timed out: %v, want %v", run.Err, got, tc.timedOut)
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			// SIGKILL has been sent; the child's end is only a matter of the kernel delivering it.
			for deadline := time.Now().Add(10 * time.Second); proc.Alive(pid); {
				if time.Now().After(deadline) {
					t.Fatalf("the run's child %d outlived the run", pid)
				}
				runtime.Gosched()
			}
		})
	}
}

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Subtests named after a pointer differ from run to run: they are not compared by name, and
// neither flaky nor differences; their parent is.
func TestVaryingSubtestNames(t *testing.T) {
	run := func(addr string, parent string) []byte {
		return stream("p TestP run", "p TestP/stable run", "p TestP/stable pass", "p TestP/at_"+addr+" run", "p TestP/at_"+addr+" pass", "p TestP "+parent, "p - pass")
	}
	c := Compare([]Stream{ok(run("0x1", "pass"), 0), ok(run("0x2", "pass"), 0)}, []Stream{ok(run("0x3", "fail"), 0)}, Options{})
	wantDiffs(t, c, "test p TestP: go test pass, godist fail (run 1)")
	if len(c.Flaky) != 0 || len(c.Varying) != 1 || c.Varying[0].String() != "p TestP: subtest names vary from run to run; 2 such names under go test, 1 under godist, not compared" {
		t.Errorf("flaky %v, varying %v", c.Flaky, c.Varying)
	}
}

// A test known to be flaky is not a difference, nor is its package's result or the exit
// status in a run where it differed.
func TestKnownFlakyTest(t *testing.T) {
	flaked := stream("p TestA run", "p TestA pass", "p TestA/sub run", "p TestA/sub fail", "p - FAIL", "p - fail")
	c := Compare([]Stream{ok(passing, 0)}, []Stream{ok(flaked, 1), ok(passing, 0)}, Options{Flaky: map[Key]string{{"p", "TestA/sub"}: "measured"}})
	wantDiffs(t, c)
	if len(c.Flaky) != 2 || c.Flaky[1].String() != "p TestA/sub: go test pass; godist fail, pass (known flaky: measured)" {
		t.Errorf("flaky: %v", c.Flaky)
	}
}
