package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/sshdtest"
)

// cacheModule writes a module whose packages each depend on one kind of input: a reads a
// testdata file, b an environment variable, c a file of a package it imports (lib), d
// nothing, e fails, f is split over processes (recorded durations, t.Parallel-free).
func cacheModule(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module cache.example\n\ngo 1.21\n")
	writeTestFile(t, root, "a/a_test.go", `package a

import ("os"; "testing")

func TestReadsFile(t *testing.T) {
	b, err := os.ReadFile("testdata/in.txt")
	if err != nil { t.Fatal(err) }
	t.Logf("read %q", b)
}
func TestListsDir(t *testing.T) {
	if _, err := os.ReadDir("testdata"); err != nil { t.Fatal(err) }
}
`)
	writeTestFile(t, root, "a/testdata/in.txt", "one\n")
	writeTestFile(t, root, "b/b_test.go", `package b

import ("os"; "testing")

func TestReadsEnv(t *testing.T) { t.Log("GDVAR=" + os.Getenv("GODIST_CACHE_TEST_VAR")) }
`)
	writeTestFile(t, root, "lib/lib.go", "package lib\n\nfunc V() string { return \"one\" }\n")
	writeTestFile(t, root, "c/c_test.go", `package c

import ("testing"; "cache.example/lib")

func TestUsesLib(t *testing.T) { t.Log(lib.V()) }
`)
	writeTestFile(t, root, "d/d_test.go", `package d

import ("fmt"; "testing")

func TestPlain(t *testing.T) { t.Run("sub", func(t *testing.T) { t.Log("inside") }) }
func Example() {
	fmt.Println("hi")
	// Output: hi
}
`)
	writeTestFile(t, root, "e/e_test.go", `package e

import "testing"

func TestFails(t *testing.T) { t.Fatal("always") }
`)
	var f strings.Builder
	f.WriteString("package f\n\nimport (\"testing\"; \"time\")\n\n")
	for _, n := range []string{"A", "B", "C", "D", "E", "F"} {
		f.WriteString("func TestSlow" + n + "(t *testing.T) { time.Sleep(120 * time.Millisecond) }\n")
	}
	writeTestFile(t, root, "f/f_test.go", f.String())
	return root
}

// cacheRun is one godist run with the result cache in cache: the packages reported
// "(cached)", the outcome, and the stream.
type cacheRun struct {
	cached map[string]bool
	stream []byte
	code   int
	out    string
}

func runCached(t *testing.T, dir, cache, durations string, env []string, args ...string) cacheRun {
	t.Helper()
	jf := filepath.Join(t.TempDir(), "run.json")
	all := append([]string{"-n", "2", "--cache-dir", cache, "--durations", durations, "--jsonfile", jf}, args...)
	stdout, stderr, code := runCmdEnv(t, dir, append(env, "NO_COLOR=1"), godistBin, all...)
	data := mustRead(t, jf)
	return cacheRun{cached: cachedIn(t, data), stream: data, code: code, out: string(stdout) + string(stderr)}
}

// cachedIn lists the packages a stream reports "(cached)".
func cachedIn(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	cached := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e gotest.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		if e.Test == "" && e.Action == gotest.ActionOutput && strings.HasPrefix(e.Output, "ok  \t"+e.Package+"\t(cached)") {
			cached[e.Package] = true
		}
	}
	return cached
}

func cachedSet(pkgs ...string) map[string]bool {
	m := map[string]bool{}
	for _, p := range pkgs {
		m["cache.example/"+p] = true
	}
	return m
}

// The result cache end to end: what is reused, what is not, and what invalidates what.
func TestEndToEndResultCache(t *testing.T) {
	t.Parallel()
	root := cacheModule(t)
	cache := filepath.Join(t.TempDir(), "results")
	d := filepath.Join(t.TempDir(), "d.json")
	env := []string{"GODIST_CACHE_TEST_VAR=1"}
	check := func(step string, r cacheRun, want map[string]bool) {
		t.Helper()
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1 (package e fails)\n%s", step, r.code, r.out)
		}
		if !reflect.DeepEqual(r.cached, want) {
			t.Errorf("%s: cached packages %v, want %v\n%s", step, keys(r.cached), keys(want), r.out)
		}
	}
	first := runCached(t, root, cache, d, env, "./...")
	check("first run", first, cachedSet())
	second := runCached(t, root, cache, d, env, "./...")
	check("second run", second, cachedSet("a", "b", "c", "d", "f"))
	if !strings.Contains(second.out, "5 of 6 package(s) from the result cache") {
		t.Errorf("second run does not say how many packages came from the cache:\n%s", second.out)
	}
	// A replay is the recorded stream, apart from times and the "(cached)" end.
	for _, pkg := range []string{"a", "b", "c", "d", "f"} {
		p := "cache.example/" + pkg
		a, b := packageStream(t, first.stream, p), packageStream(t, second.stream, p)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: the cached run's events differ from the recorded run's:\nrecorded %q\n  cached %q", p, a, b)
		}
	}

	// touch without a change: still cached.
	in := filepath.Join(root, "a/testdata/in.txt")
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(in, later, later); err != nil {
		t.Fatal(err)
	}
	check("after touch", runCached(t, root, cache, d, env, "./..."), cachedSet("a", "b", "c", "d", "f"))
	// A testdata file's content: only a.
	writeTestFile(t, root, "a/testdata/in.txt", "two\n")
	check("after editing a's testdata", runCached(t, root, cache, d, env, "./..."), cachedSet("b", "c", "d", "f"))
	// A file added to a directory a lists: only a.
	writeTestFile(t, root, "a/testdata/new.txt", "new\n")
	check("after adding a file a lists", runCached(t, root, cache, d, env, "./..."), cachedSet("b", "c", "d", "f"))
	// An environment variable b reads: only b.
	check("after changing b's variable", runCached(t, root, cache, d, []string{"GODIST_CACHE_TEST_VAR=2"}, "./..."), cachedSet("a", "c", "d", "f"))
	// A source change in lib: only c, which imports it, is rebuilt and runs.
	writeTestFile(t, root, "lib/lib.go", "package lib\n\nfunc V() string { return \"two\" }\n") // a binary that differs
	check("after editing lib", runCached(t, root, cache, d, []string{"GODIST_CACHE_TEST_VAR=2"}, "./..."), cachedSet("a", "b", "d", "f"))
	// -count=1 runs everything and reuses nothing.
	check("-count=1", runCached(t, root, cache, d, env, "-count=1", "./..."), cachedSet())
	// A cacheable flag is part of the key: -run selects anew, then is cached with it.
	check("-run first", runCached(t, root, cache, d, env, "-run", "Test", "./..."), cachedSet())
	check("-run again", runCached(t, root, cache, d, env, "-run", "Test", "./..."), cachedSet("a", "b", "c", "d", "f"))
	// A non-cacheable flag disables it.
	check("-shuffle", runCached(t, root, cache, d, env, "-shuffle", "on", "./..."), cachedSet())
}

// packageStream is a package's events in a stream, without times, elapsed times, and the
// lines that end it (which a cached run writes as go test does: "(cached)").
func packageStream(t *testing.T, data []byte, pkg string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e gotest.Event
		json.Unmarshal(sc.Bytes(), &e)
		if e.Package != pkg || e.Action == gotest.ActionStart {
			continue
		}
		if e.Test == "" && (gotest.IsTerminal(e.Action) || e.Output == "PASS\n" || strings.HasPrefix(e.Output, "ok  \t")) {
			continue
		}
		e.Time, e.Elapsed, e.Worker = nil, nil, ""
		if strings.HasPrefix(e.Output, "--- ") {
			e.Output = e.Output[:strings.LastIndex(e.Output, " (")] // its time
		}
		b, _ := json.Marshal(e)
		out = append(out, string(b))
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// A fresh copy of the tree at the same place (new modification times on every file) still
// hits: inputs are compared by content.
func TestEndToEndResultCacheFreshCheckout(t *testing.T) {
	t.Parallel()
	root := cacheModule(t)
	cache := filepath.Join(t.TempDir(), "results")
	d := filepath.Join(t.TempDir(), "d.json")
	runCached(t, root, cache, d, nil, "./a", "./d")
	saved := filepath.Join(t.TempDir(), "saved")
	if err := os.Rename(root, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(root, os.DirFS(saved)); err != nil { // new files, new times
		t.Fatal(err)
	}
	r := runCached(t, root, cache, d, nil, "./a", "./d")
	if want := cachedSet("a", "d"); !reflect.DeepEqual(r.cached, want) {
		t.Errorf("fresh copy: cached %v, want %v\n%s", keys(r.cached), keys(want), r.out)
	}
}

// -coverprofile: a cached package's coverage is in the profile, as go test writes it.
func TestEndToEndResultCacheCoverProfile(t *testing.T) {
	t.Parallel()
	root := cacheModule(t)
	writeTestFile(t, root, "lib/lib_test.go", "package lib\n\nimport \"testing\"\n\nfunc TestV(t *testing.T) { t.Log(V()) }\n")
	cache := filepath.Join(t.TempDir(), "results")
	d := filepath.Join(t.TempDir(), "d.json")
	p1, p2 := filepath.Join(t.TempDir(), "c1.out"), filepath.Join(t.TempDir(), "c2.out")
	r1 := runCached(t, root, cache, d, nil, "-coverprofile", p1, "./lib")
	r2 := runCached(t, root, cache, d, nil, "-coverprofile", p2, "./lib")
	if r1.code != 0 || r2.code != 0 || !r2.cached["cache.example/lib"] || r1.cached["cache.example/lib"] {
		t.Fatalf("exit %d, %d; cached %v then %v\n%s\n%s", r1.code, r2.code, r1.cached, r2.cached, r1.out, r2.out)
	}
	a, b := mustRead(t, p1), mustRead(t, p2)
	if !bytes.Equal(a, b) || !bytes.Contains(a, []byte("lib.go")) {
		t.Errorf("coverage profiles differ or are empty:\n%s\n--\n%s", a, b)
	}
	if !strings.Contains(r2.out, "(cached)\tcoverage: 100.0% of statements") && !strings.Contains(r2.out, "(cached) coverage: 100.0% of statements") {
		t.Errorf("the cached line does not give the coverage:\n%s", r2.out)
	}
}

// A remote gateway's results are cached too, and its reads of the remote copy of the tree
// are checked against this machine's files.
func TestSSHResultCache(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	root := cacheModule(t)
	cache := filepath.Join(t.TempDir(), "results")
	d := filepath.Join(t.TempDir(), "d.json")
	env := append(sshEnv(t, s), "GODIST_CACHE_DIR=off")
	run := func() cacheRun {
		t.Helper()
		jf := filepath.Join(t.TempDir(), "run.json")
		stdout, stderr, code := runWithEnv(t, env, root, "--tx", "ssh="+s.Alias, "--cache-dir", cache, "--durations", d, "--jsonfile", jf, "./a", "./d")
		r := cacheRun{cached: cachedIn(t, mustRead(t, jf)), code: code, out: string(stdout) + string(stderr)}
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, r.out)
		}
		return r
	}
	if r := run(); len(r.cached) != 0 {
		t.Errorf("first run: cached %v", keys(r.cached))
	}
	if r := run(); !reflect.DeepEqual(r.cached, cachedSet("a", "d")) {
		t.Errorf("second run: cached %v, want a and d\n%s", keys(r.cached), r.out)
	}
	writeTestFile(t, root, "a/testdata/in.txt", "changed\n")
	if r := run(); !reflect.DeepEqual(r.cached, cachedSet("d")) {
		t.Errorf("after editing a's testdata: cached %v, want d only\n%s", keys(r.cached), r.out)
	}
}

// Failed first, and --lf: the previous run's failures start first; --lf runs only them,
// subtests precisely.
func TestEndToEndLastFailed(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTestFile(t, root, "go.mod", "module lf.example\n\ngo 1.21\n")
	var src strings.Builder
	src.WriteString("package a\n\nimport (\"os\"; \"testing\"; \"time\")\n\n")
	for _, n := range []string{"A", "B", "C", "D", "E", "F", "G", "H"} {
		src.WriteString("func TestSlow" + n + "(t *testing.T) { time.Sleep(150 * time.Millisecond) }\n")
	}
	src.WriteString(`func TestQuick(t *testing.T) {
	t.Run("good", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { if os.Getenv("LF_FIXED") == "" { t.Fatal("boom") } })
}
`)
	writeTestFile(t, root, "a/a_test.go", src.String())
	writeTestFile(t, root, "b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) {}\n")
	cache := filepath.Join(t.TempDir(), "results")
	d := filepath.Join(t.TempDir(), "d.json")
	if r := runCached(t, root, cache, d, nil, "./..."); r.code != 1 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.out)
	}
	// --lf: only TestQuick/bad (and its parent), nothing of b.
	r := runCached(t, root, cache, d, nil, "--lf", "./...")
	ran := ranTests(t, r.stream)
	if want := []string{"lf.example/a TestQuick", "lf.example/a TestQuick/bad"}; !reflect.DeepEqual(ran, want) {
		t.Errorf("--lf ran %v, want %v\n%s", ran, want, r.out)
	}
	// -x: the failure still there stops the run at once, after a handful of tests: the
	// failed test starts first. (The stream's order is not the start order: a process
	// run with the binary of the run before holds its output until go has checked it.)
	r = runCached(t, root, cache, d, nil, "-x", "./...")
	ran = ranTests(t, r.stream)
	if !slices.Contains(ran, "lf.example/a TestQuick/bad") || len(ran) > 7 {
		t.Errorf("-x ran %v: want TestQuick and a handful of tests in all (of 12)\n%s", ran, r.out)
	}
	// Fixed: --lf passes, and then there is nothing failed left, so --lf runs everything.
	if r := runCached(t, root, cache, d, []string{"LF_FIXED=1"}, "--lf", "./..."); r.code != 0 {
		t.Errorf("--lf after the fix: exit %d\n%s", r.code, r.out)
	}
	r = runCached(t, root, cache, d, []string{"LF_FIXED=1"}, "--lf", "-count=1", "./...")
	if n := len(ranTests(t, r.stream)); n != 12 || !strings.Contains(r.out, "no failures recorded") {
		t.Errorf("--lf with nothing failed ran %d tests, want all 12, and a note\n%s", n, r.out)
	}
}

// ranTests lists "pkg Test" for every test run event, in order.
func ranTests(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e gotest.Event
		if json.Unmarshal(line, &e) == nil && e.Action == gotest.ActionRun && e.Test != "" {
			out = append(out, e.Package+" "+e.Test)
		}
	}
	return out
}

// A package split over several processes is recorded, and reused, as one result.
func TestEndToEndResultCacheSplitPackage(t *testing.T) {
	t.Parallel()
	root := cacheModule(t)
	cache := filepath.Join(t.TempDir(), "results")
	d := filepath.Join(t.TempDir(), "d.json")
	// Durations first (-count=1 records nothing in the cache), so that f is split.
	if r := runCached(t, root, cache, d, nil, "-count=1", "./f"); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
	split := runCached(t, root, cache, d, nil, "./f")
	if n := processesOf(t, split.stream, "cache.example/f"); n < 2 {
		t.Fatalf("f ran in %d process(es); the test needs it split\n%s", n, split.out)
	}
	again := runCached(t, root, cache, d, nil, "./f")
	if !again.cached["cache.example/f"] {
		t.Fatalf("the split package was not reused\n%s", again.out)
	}
	if n := len(ranTests(t, again.stream)); n != 6 {
		t.Errorf("the cached result replays %d tests, want all 6 of its processes'", n)
	}
}

// processesOf counts the test processes of pkg in a stream: the workers its tests ran on,
// and the "=== RUN" of its first test in each.
func processesOf(t *testing.T, data []byte, pkg string) int {
	t.Helper()
	workers := map[string]bool{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e gotest.Event
		if json.Unmarshal(line, &e) == nil && e.Package == pkg && e.Action == gotest.ActionRun {
			workers[e.Worker] = true
		}
	}
	return len(workers)
}
