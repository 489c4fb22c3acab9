package gotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// liveCase is a run of a fixture package's test binary, compared with go test -json.
type liveCase struct {
	name      string
	pkg       string
	timeout   string   // -timeout; go test's default if empty
	goFlags   []string // flags to go test
	binFlags  []string // the same flags as go test passes them to the binary
	unordered bool     // parallel tests: compare each test's events, not their interleaving
}

func (c liveCase) testTimeout() string {
	if c.timeout == "" {
		return "10m0s"
	}
	return c.timeout
}

func (c liveCase) goTestFlags() []string {
	if c.timeout == "" {
		return c.goFlags
	}
	return append([]string{"-timeout=" + c.timeout}, c.goFlags...)
}

var liveCases = func() []liveCase {
	var cs []liveCase
	for _, p := range fixturePackages {
		c := liveCase{name: p, pkg: p, unordered: p == "parallel"}
		if p == "hang" {
			c.timeout = "2s"
		}
		cs = append(cs, c)
	}
	return append(cs,
		liveCase{name: "bench-run", pkg: "bench",
			goFlags: []string{"-bench=.", "-benchtime=1x"}, binFlags: []string{"-test.bench=.", "-test.benchtime=1x"}},
		liveCase{name: "pass-no-tests-to-run", pkg: "pass",
			goFlags: []string{"-run=NoSuchTest"}, binFlags: []string{"-test.run=NoSuchTest"}},
		liveCase{name: "pass-count-2", pkg: "pass",
			goFlags: []string{"-count=2"}, binFlags: []string{"-test.count=2"}},
		liveCase{name: "subtests-run-sub", pkg: "subtests",
			goFlags: []string{"-run=TestA/sub"}, binFlags: []string{"-test.run=TestA/sub"}},
		liveCase{name: "panic-after-only", pkg: "panic",
			goFlags: []string{"-run=TestAfter"}, binFlags: []string{"-test.run=TestAfter"}},
		liveCase{name: "fail-failfast", pkg: "fail",
			goFlags: []string{"-failfast"}, binFlags: []string{"-test.failfast"}},
		liveCase{name: "examples-only", pkg: "examples",
			goFlags: []string{"-run=Example"}, binFlags: []string{"-test.run=Example"}},
	)
}()

// liveRun is what a worker-style run of a live case gave.
type liveRun struct {
	rec    *recording
	events []Event
}

var (
	liveOnce sync.Once
	liveRuns map[string]liveRun
)

// runLiveCases runs every live case's binary once, two at a time.
func runLiveCases(t *testing.T) map[string]liveRun {
	if testing.Short() {
		t.Skip("runs the fixtures' test binaries")
	}
	for _, c := range liveCases {
		fixtureBinary(t, c.pkg) // build before starting goroutines
	}
	liveOnce.Do(func() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 2)
		liveRuns = map[string]liveRun{}
		for _, c := range liveCases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				rec, events := runBinary(t, c.pkg, c.testTimeout(), c.binFlags...)
				mu.Lock()
				liveRuns[c.name] = liveRun{rec, events}
				mu.Unlock()
			}()
		}
		wg.Wait()
	})
	if len(liveRuns) != len(liveCases) {
		t.Fatal("live runs failed in an earlier test")
	}
	return liveRuns
}

// TestConverterLive runs each fixture package as a godist worker would, through a Converter,
// and compares the events with those of go test -json on the same package, masking only what
// varies between two runs of a binary.
func TestConverterLive(t *testing.T) {
	runs := runLiveCases(t)

	// One go test run for the cases that share flags.
	type group struct {
		flags []string
		cases []liveCase
	}
	var groups []*group
	for _, c := range liveCases {
		i := slices.IndexFunc(groups, func(g *group) bool { return slices.Equal(g.flags, c.goTestFlags()) })
		if i < 0 {
			groups = append(groups, &group{flags: c.goTestFlags()})
			i = len(groups) - 1
		}
		groups[i].cases = append(groups[i].cases, c)
	}
	for _, g := range groups {
		var pkgs []string
		for _, c := range g.cases {
			pkgs = append(pkgs, c.pkg)
		}
		t.Run(strings.Join(append([]string{"go", "test"}, g.flags...), " "), func(t *testing.T) {
			t.Parallel()
			compareLive(t, runs, g.cases, goTestJSON(t, nil, g.flags, pkgs...))
		})
	}
}

// compareLive compares each case's events with those go test -json wrote for its package.
func compareLive(t *testing.T, runs map[string]liveRun, cases []liveCase, want map[string][]Event) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := alike(runs[c.name].events)
			w := alike(want[fixturesModule+"/"+c.pkg])
			if !c.unordered {
				diffEvents(t, c.name, got, w)
				return
			}
			gt, wt := byTest(got), byTest(w)
			for name := range wt {
				diffEvents(t, fmt.Sprintf("%s test %q", c.name, name), gt[name], wt[name])
			}
			for name := range gt {
				if _, ok := wt[name]; !ok {
					t.Errorf("%s: events for test %q that go test -json does not have", c.name, name)
				}
			}
		})
	}
}

// TestPackageOnlyEvents compares NoTestFiles and BuildFailed with go test -json.
func TestPackageOnlyEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	want := goTestJSON(t, nil, nil, "notests", "buildfail")
	pkg := fixturesModule + "/notests"
	diffEvents(t, "notests", alike(NoTestFiles(pkg, nil)), alike(want[pkg]))

	pkg = fixturesModule + "/buildfail"
	var failedBuild string
	for _, e := range want[""] {
		if e.Action == ActionBuildFail {
			failedBuild = e.ImportPath
		}
	}
	if failedBuild == "" {
		t.Fatalf("no build-fail event from go test -json: %+v", want[""])
	}
	diffEvents(t, "buildfail", alike(BuildFailed(pkg, failedBuild, nil)), alike(want[pkg]))
}

// replayCase is a recording to give both go test -json (through -exec) and a Converter.
type replayCase struct {
	name  string
	pkg   string // fixture package whose directory go test runs it in; "" for any
	rec   *recording
	cover bool // build with -cover
}

const mark = "\x16"

// synth makes a recording of the given writes; "{{pkg}}" in them becomes the package path.
func synth(exit int, writes ...string) *recording {
	r := &recording{Exit: exit, Elapsed: 12 * time.Millisecond}
	for _, w := range writes {
		r.Chunks = append(r.Chunks, chunk{Data: []byte(w)})
	}
	return r
}

func killed(sig syscall.Signal, writes ...string) *recording {
	r := synth(0, writes...)
	r.Signal = int(sig)
	return r
}

// syntheticCases are outputs no fixture prints, for the corners of the conversion.
var syntheticCases = []replayCase{
	{name: "long-output-line", rec: synth(0,
		mark+"=== RUN   TestLong\n", "    "+strings.Repeat("x", 5000)+"\n", strings.Repeat("y", 9000),
		"z\n", mark+"--- PASS: TestLong (0.00s)\n", mark+"PASS\n")},
	{name: "long-utf8-lines", rec: synth(0,
		mark+"=== RUN   TestUTF8\n",
		strings.Repeat("a", 1022)+"日本語"+strings.Repeat("é", 600)+"\n",
		strings.Repeat("b", 4094)+"日本語ünï"+strings.Repeat("€", 3000)+"\n",
		strings.Repeat("c", 1023)+"\xe6\x97"+strings.Repeat("d", 2000)+"\n",
		mark+"--- PASS: TestUTF8 (0.00s)\n", mark+"PASS\n")},
	{name: "invalid-utf8", rec: synth(1,
		mark+"=== RUN   TestBad\xff\n", "    out \xfe\xff bytes \xe6\x97\n",
		mark+"=== ATTR  TestBad\xff k\xff v\xc3\n",
		mark+"--- FAIL: TestBad\xff (0.00s)\n", mark+"FAIL\n")},
	{name: "partial-last-line-exit-0", rec: synth(0, mark+"=== RUN   TestA\n", "no newline")},
	{name: "partial-last-line-exit-1", rec: synth(1, mark+"=== RUN   TestA\n", "no newline")},
	{name: "no-output-exit-0", rec: synth(0)},
	{name: "no-output-exit-1", rec: synth(1)},
	{name: "no-output-exit-2", rec: synth(2)},
	{name: "killed-partial-line", rec: killed(syscall.SIGKILL, mark+"=== RUN   TestKilled\n", "half a line")},
	{name: "killed-no-output", rec: killed(syscall.SIGKILL)},
	{name: "killed-after-pass", rec: killed(syscall.SIGTERM, mark+"PASS\n")},
	{name: "exit-0-without-pass", rec: synth(0, mark+"=== RUN   TestX\n", "    x_test.go:1: hi\n")},
	{name: "exit-0-pending-report", rec: synth(0,
		mark+"=== RUN   TestX\n", mark+"--- PASS: TestX (0.00s)\n")},
	{name: "no-tests-to-run-first", rec: synth(0, "testing: warning: no tests to run\n", mark+"PASS\n")},
	{name: "no-tests-to-run-split", rec: synth(0,
		"TestMain says hi\ntesting: warn", "ing: no tests to run\n", mark+"PASS\n")},
	{name: "no-tests-to-run-failed", rec: synth(1, "testing: warning: no tests to run\n", mark+"FAIL\n")},
	{name: "no-fuzz-tests", rec: synth(0, "x\ntesting: warning: no fuzz tests to fuzz\n", mark+"PASS\n")},
	{name: "too-many-fuzz", rec: synth(0,
		"testing: warning: -fuzz matches more than one fuzz test, won't fuzz\n", mark+"PASS\n")},
	{name: "name-without-spaces", rec: synth(0,
		mark+"=== RUN   TestA\n", "from A\n", mark+"=== NAME\n", "from nobody\n",
		mark+"=== NAME  TestA\n", "from A again\n", mark+"--- PASS: TestA (0.00s)\n", mark+"PASS\n")},
	{name: "report-too-deep", rec: synth(0,
		mark+"=== RUN   TestA\n", mark+"    --- PASS: TestA/x (0.00s)\n",
		mark+"--- PASS: TestA (0.00s)\n", mark+"        --- SKIP: TestA/y/z (0.00s)\n", mark+"PASS\n")},
	{name: "unmarked-verbose", rec: synth(1,
		"=== RUN   TestA\n", "=== RUN   TestA/b\n", "    a_test.go:5: in b\n", "=== RUN   TestA/c\n",
		"--- FAIL: TestA (0.00s)\n", "    --- PASS: TestA/b (0.00s)\n", "        b_test.go:1: deeper log\n",
		"    --- FAIL: TestA/c (0.00s)\n", "        a_test.go:9: c failed\n", "    top-level log\n",
		"            too deep\n", "FAIL\n")},
	{name: "marked-then-unmarked", rec: synth(0,
		mark+"=== RUN   TestA\n", "--- FAIL: TestA (0.00s)\n", "=== RUN   TestFake\n", "PASS\n",
		mark+"--- PASS: TestA (0.00s)\n", mark+"PASS\n")},
	{name: "crlf", rec: synth(0,
		mark+"=== RUN   TestA\r\n", "log\r\n", mark+"--- PASS: TestA (0.00s)\r\n", mark+"PASS\r\n")},
	{name: "no-test-files-line", rec: synth(0, "?   \t{{pkg}}\t[no test files]\n")},
	{name: "no-test-files-line-exit-1", rec: synth(1, "?   \t{{pkg}}\t[no test files]\n")},
	{name: "benchmark-split", rec: synth(0,
		mark+"=== RUN   BenchmarkX\n", "BenchmarkX\n", "BenchmarkX-2   \t", "       1\t       100.0 ns/op\n",
		mark+"=== NAME  \n", "Benchmarkx \tlower case\n", "BenchmarkY\t", "more\tand more\n", mark+"PASS\n")},
	{name: "benchmark-split-long", rec: synth(0,
		"Benchmark"+strings.Repeat("Z", 5000)+"-2 \t", "1\t2 ns/op\n", mark+"PASS\n")},
	{name: "marker-mid-line", rec: synth(0,
		"abc", mark+"=== RUN   TestY\n", "def"+mark+"--- PASS: TestY (0.00s)\n",
		"ghi"+mark+"jkl\n", mark+"PASS\n")},
	{name: "attr-artifacts", rec: synth(0,
		mark+"=== RUN   TestA\n", mark+"=== ATTR  TestA k v with spaces\n",
		mark+"=== ARTIFACTS TestA /tmp/dir with space\n", mark+"=== ATTR  TestA onlykey\n",
		mark+"=== ATTR  TestA\n", mark+"--- PASS: TestA (0.00s)\n", mark+"PASS\n")},
	{name: "bench-report", rec: synth(0,
		mark+"--- BENCH: BenchmarkX-2 (1.50s)\n", "    x_test.go:3: log\n",
		mark+"    --- BENCH: BenchmarkX/y-2\n", "        x_test.go:4: sub log\n", mark+"PASS\n")},
	{name: "long-framing-line", rec: synth(0,
		mark+"=== RUN   Test"+strings.Repeat("A", 5000)+"\n", "log\n",
		mark+"--- PASS: Test"+strings.Repeat("A", 5000)+" (0.00s)\n", mark+"PASS\n")},
	{name: "pause-cont", rec: synth(1,
		mark+"=== RUN   TestP\n", mark+"=== PAUSE TestP\n", mark+"=== RUN   TestQ\n",
		mark+"--- PASS: TestQ (0.00s)\n", mark+"=== CONT  TestP\n", "    p.go:1: log\n",
		mark+"=== PASS  TestR\n", mark+"=== FAIL  TestS\n", mark+"=== SKIP  TestT\n",
		mark+"--- FAIL: TestP (0.01s)\n", mark+"FAIL\n")},
	{name: "fail-tab-midstream", rec: synth(0,
		mark+"=== RUN   TestA\n", mark+"--- PASS: TestA (0.00s)\n", "FAIL\tsomething\n", "after\n",
		mark+"PASS\n")},
	{name: "odd-elapsed", rec: synth(0,
		mark+"=== RUN   TestA\n", mark+"--- PASS: TestA (abc s)\n", mark+"--- PASS: TestB (1e3s)\n",
		mark+"--- SKIP: TestC (2.5s) extra\n", mark+"--- FAIL: TestD (s)\n", mark+"--- PASS: TestE(1s)\n",
		mark+"PASS\n")},
	{name: "empty-and-marker-lines", rec: synth(0,
		"\n\n", mark+"\n", mark+mark+mark+"\n", mark, "\n", mark+"=== RUN   \n", "x\n", mark+"PASS\n")},
	{name: "nested-reports", rec: synth(1,
		mark+"=== RUN   TestA\n", mark+"=== RUN   TestA/b\n", mark+"=== RUN   TestA/b/c\n",
		mark+"--- FAIL: TestA (0.00s)\n", mark+"    --- FAIL: TestA/b (0.00s)\n",
		mark+"        --- FAIL: TestA/b/c (0.00s)\n", "            c.go:1: err\n",
		mark+"    --- SKIP: TestA/d (0.00s)\n", mark+"FAIL\n")},
	{name: "many-lines", rec: synth(0, func() string {
		var b strings.Builder
		b.WriteString(mark + "=== RUN   TestMany\n")
		for i := range 3000 {
			fmt.Fprintf(&b, "    many_test.go:%d: line %d\n", i, i)
		}
		return b.String()
	}(), mark+"--- PASS: TestMany (0.00s)\n", mark+"PASS\n")},
	{name: "pass-then-fail", rec: synth(1, mark+"PASS\n", "FAIL\n")},
	{name: "cover", cover: true, rec: synth(0,
		mark+"=== RUN   TestA\n", mark+"--- PASS: TestA (0.00s)\n", mark+"PASS\n",
		"cover", "age: 42.5% of statements\n", "coverage: 1% second\n")},
	{name: "cover-no-newline", cover: true, rec: synth(0, mark+"PASS\n", "coverage: 42.5% of statements")},
	{name: "cover-failed", cover: true, rec: synth(1, mark+"FAIL\n", "coverage: 42.5% of statements\n")},
}

// TestConverterReplay gives go test -json the exact output of each live run and synthetic case,
// by way of -exec, and requires the Converter's events to be identical but for times.
func TestConverterReplay(t *testing.T) {
	if !canWaitDrained {
		t.Skip("the replay needs to know when go test has read its output")
	}
	runs := runLiveCases(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := slices.Clone(syntheticCases)
	for seed := range len(fixturePackages) {
		cases = append(cases, replayCase{name: fmt.Sprintf("random-%d", seed), rec: randomRecording(uint64(seed))})
	}
	for _, c := range liveCases {
		cases = append(cases, replayCase{name: "live/" + c.name, pkg: c.pkg, rec: runs[c.name].rec})
	}

	// Rounds of one go test run each, with each package at most once in a round.
	type round struct {
		cover bool
		cases map[string]replayCase // by package
	}
	var rounds []*round
	// Cases bound to a package first; the others fill the gaps.
	bound := slices.DeleteFunc(slices.Clone(cases), func(c replayCase) bool { return c.pkg == "" })
	free := slices.DeleteFunc(cases, func(c replayCase) bool { return c.pkg != "" })
	for _, c := range append(bound, free...) {
		placed := false
		for _, r := range rounds {
			if r.cover != c.cover {
				continue
			}
			pkg := c.pkg
			if pkg == "" {
				for _, p := range fixturePackages {
					if _, used := r.cases[p]; !used {
						pkg = p
						break
					}
				}
			}
			if _, used := r.cases[pkg]; pkg != "" && !used {
				c.pkg = pkg
				r.cases[pkg] = c
				placed = true
				break
			}
		}
		if !placed {
			r := &round{cover: c.cover, cases: map[string]replayCase{}}
			if c.pkg == "" {
				c.pkg = fixturePackages[0]
			}
			r.cases[c.pkg] = c
			rounds = append(rounds, r)
		}
	}

	for i, r := range rounds {
		t.Run(fmt.Sprintf("round%d", i), func(t *testing.T) {
			t.Parallel()
			replayRound(t, self, r.cover, r.cases)
		})
	}
}

// replayRound replays one recording per package to one go test -json run, and compares.
func replayRound(t *testing.T, self string, cover bool, cases map[string]replayCase) {
	dir := t.TempDir()
	var pkgs []string
	for pkg, c := range cases {
		pkgs = append(pkgs, pkg)
		rec := *c.rec
		rec.Chunks = slices.Clone(rec.Chunks)
		for j := range rec.Chunks {
			rec.Chunks[j].Data = bytes.ReplaceAll(rec.Chunks[j].Data, []byte("{{pkg}}"), []byte(fixturesModule+"/"+pkg))
		}
		rec.Chunks = rec.splitChunks() // go test reads at most maxReplayChunk bytes at once
		cases[pkg] = replayCase{name: c.name, pkg: pkg, rec: &rec, cover: c.cover}
		b, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, recordingFile(filepath.Join(fixturesDir(t), pkg))), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(pkgs)
	flags := []string{"-vet=off", "-exec=" + self}
	if cover {
		flags = append(flags, "-cover")
	}
	want := goTestJSON(t, []string{replayEnv + "=" + dir}, flags, pkgs...)
	for _, pkg := range pkgs {
		c := cases[pkg]
		t.Run(c.name, func(t *testing.T) {
			ip := fixturesModule + "/" + pkg
			got, _ := feed(t, ip, c.rec, c.cover)
			diffEvents(t, c.name, exact(got), exact(want[ip]))
		})
	}
}

// randomRecording strings together framing lines, output and line fragments at random.
func randomRecording(seed uint64) *recording {
	rnd := rand.New(rand.NewPCG(seed, 42))
	names := []string{"TestA", "TestA/b", "TestA/b/c", "TestB", "TestA/b#01"}
	name := func() string { return names[rnd.IntN(len(names))] }
	indent := func() string { return strings.Repeat("    ", rnd.IntN(3)) }
	tokens := []func() string{
		func() string { return mark + "=== RUN   " + name() + "\n" },
		func() string { return mark + "=== PAUSE " + name() + "\n" },
		func() string { return mark + "=== CONT  " + name() + "\n" },
		func() string { return mark + "=== NAME  " + name() + "\n" },
		func() string { return mark + "=== NAME\n" },
		func() string { return mark + "=== ATTR  " + name() + " k v w\n" },
		func() string { return mark + indent() + "--- PASS: " + name() + " (0.01s)\n" },
		func() string { return mark + indent() + "--- FAIL: " + name() + " (1.50s)\n" },
		func() string { return mark + indent() + "--- SKIP: " + name() + " (0.00s)\n" },
		func() string { return indent() + "--- FAIL: " + name() + " (0.00s)\n" },
		func() string { return indent() + "x_test.go:1: log\n" },
		func() string { return "plain\n" },
		func() string { return "partial " },
		func() string { return mark + "PASS\n" },
		func() string { return mark + "FAIL\n" },
		func() string { return "FAIL\tx\t0.1s\n" },
		func() string { return "\xff\xfe日本\n" },
		func() string { return "BenchmarkX-2   \t" },
		func() string { return "       1\t       2.0 ns/op\n" },
		func() string { return "\r\n" },
		func() string { return strings.Repeat("x", 700+rnd.IntN(900)) },
		func() string { return "testing: warning: no tests to run\n" },
		func() string { return mark },
	}
	var writes []string
	for range 5 + rnd.IntN(30) {
		writes = append(writes, tokens[rnd.IntN(len(tokens))]())
	}
	// Join some writes, so that lines also end inside a write.
	for i := 0; i+1 < len(writes); i++ {
		if rnd.IntN(3) == 0 {
			writes[i] += writes[i+1]
			writes = slices.Delete(writes, i+1, i+2)
		}
	}
	switch rnd.IntN(4) {
	case 0:
		return synth(0, writes...)
	case 1:
		return synth(1, writes...)
	case 2:
		return synth(2, writes...)
	default:
		return killed(syscall.SIGKILL, writes...)
	}
}

// TestConverterChunking feeds each recording in one write, and byte by byte, and in writes
// split at random: without benchmark lines, the events must not depend on the chunking.
func TestConverterChunking(t *testing.T) {
	var recs []replayCase
	recs = append(recs, syntheticCases...)
	if !testing.Short() {
		runs := runLiveCases(t)
		for _, c := range liveCases {
			recs = append(recs, replayCase{name: "live/" + c.name, rec: runs[c.name].rec})
		}
	}
	for _, c := range recs {
		data := c.rec.bytes()
		if bytes.Contains(data, []byte("Benchmark")) {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			exitErr := c.rec.exitError(t)
			run := func(split func([]byte) [][]byte) []cmpEvent {
				var events []Event
				conv := NewConverter("p", func(e Event) { events = append(events, e) }, nil)
				for _, p := range split(data) {
					conv.Write(p)
				}
				conv.Exited(exitErr, time.Second)
				return exact(events)
			}
			whole := run(func(b []byte) [][]byte { return [][]byte{b} })
			bytewise := run(func(b []byte) [][]byte {
				var ps [][]byte
				for i := range b {
					ps = append(ps, b[i:i+1])
				}
				return ps
			})
			diffEvents(t, "byte by byte", bytewise, whole)
			for seed := range 5 {
				split := run(func(b []byte) [][]byte {
					var ps [][]byte
					n := uint32(seed*7919 + 1)
					for len(b) > 0 {
						n = n*1664525 + 1013904223
						k := min(len(b), 1+int(n>>20)%5000)
						ps = append(ps, b[:k])
						b = b[k:]
					}
					return ps
				})
				diffEvents(t, fmt.Sprintf("split %d", seed), split, whole)
			}
		})
	}
}

// exitStatus is an exit error as a remote runner rebuilds it.
type exitStatus struct {
	code   int
	signal string
}

func (e exitStatus) Error() string {
	if e.signal != "" {
		return "signal: " + e.signal
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e exitStatus) Exited() bool { return e.signal == "" }

// TestConverterResults checks Results and Running, and the final events, on the fixtures
// whose binaries die in a test.
func TestConverterResults(t *testing.T) {
	runs := runLiveCases(t)
	tests := []struct {
		name    string
		running []string
		results map[string]string
	}{
		{"exit", []string{"TestExit"}, map[string]string{"TestBefore": ActionPass}},
		{"panic", nil, map[string]string{"TestBefore": ActionPass, "TestPanic": ActionFail}},
		{"hang", []string{"TestHang"}, map[string]string{"TestBefore": ActionPass}},
		{"panic/goroutine", []string{"TestPanicInGoroutine"}, map[string]string{"TestBefore": ActionPass}},
		{"exit/zero", nil, map[string]string{"TestBefore": ActionPass, "TestExitZero": ActionFail}},
		{"subtests-run-sub", nil, map[string]string{
			"TestA": ActionPass, "TestA/sub": ActionPass, "TestA/sub/deeper": ActionPass,
			"TestA/sub/deeper/deepest": ActionPass, "TestA/sub#01": ActionPass,
			"TestAlpha": ActionPass, "TestAlpha/sub": ActionPass, // -run is not anchored
		}},
		{"fuzzfail", nil, map[string]string{
			"FuzzSeeds": ActionFail, "FuzzSeeds/seed#0": ActionPass, "FuzzSeeds/seed#1": ActionFail,
			"FuzzSeeds/seed#2": ActionPass, "TestAfterFuzz": ActionPass,
		}},
		{"bench-run", []string{"BenchmarkSum", "BenchmarkSub", "BenchmarkSub/small"},
			map[string]string{"TestSum": ActionPass}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, conv := feed(t, "p", runs[tt.name].rec, false)
			if got := conv.Running(); !slices.Equal(got, tt.running) {
				t.Errorf("Running() = %q, want %q", got, tt.running)
			}
			if got := conv.Results(); !mapsEqual(got, tt.results) {
				t.Errorf("Results() = %v, want %v", got, tt.results)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestConverterExitError checks that an exit error rebuilt by a remote runner gives the same
// events as the *exec.ExitError it stands for, and that Write after Exited fails.
func TestConverterExitError(t *testing.T) {
	for _, tc := range []struct {
		rec    *recording
		remote error
	}{
		{synth(3, mark+"=== RUN   TestExit\n"), exitStatus{code: 3}},
		{synth(1), exitStatus{code: 1}},
		{killed(syscall.SIGKILL, "partial"), exitStatus{signal: "killed"}},
	} {
		local, _ := feed(t, "p", tc.rec, false)
		var remote []Event
		conv := NewConverter("p", func(e Event) { remote = append(remote, e) }, nil)
		for _, c := range tc.rec.Chunks {
			conv.Write(c.Data)
		}
		conv.Exited(tc.remote, tc.rec.Elapsed)
		diffEvents(t, tc.remote.Error(), exact(remote), exact(local))
		if n, err := conv.Write([]byte("late\n")); n != 0 || err != ErrExited {
			t.Errorf("Write after Exited = %d, %v; want 0, ErrExited", n, err)
		}
		conv.Exited(nil, 0) // ignored
		if len(remote) != len(local) {
			t.Errorf("second Exited emitted events")
		}
	}
}

// FuzzConverter feeds arbitrary bytes, in arbitrary chunks, and checks that every event is
// valid and that without benchmark lines the chunking does not matter.
func FuzzConverter(f *testing.F) {
	// Inputs are kept small: minimising a large one, with small writes each scanning the
	// buffered line again, as test2json does, takes the fuzzer minutes.
	const maxInput = 8 << 10
	for _, c := range syntheticCases {
		if b := c.rec.bytes(); len(b) <= maxInput {
			f.Add(b, []byte{7, 1, 200}, uint8(c.rec.Exit))
		}
	}
	f.Add([]byte(mark+"=== RUN   TestL\n"+strings.Repeat("é", 2100)+"\n"), []byte{255, 3}, uint8(1))
	f.Add([]byte(mark+"=== RUN   TestA\n"+mark+"--- PASS: TestA (0.00s)\n"), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, data, cuts []byte, exit uint8) {
		if len(data) > maxInput {
			return
		}
		var exitErr error
		switch exit % 4 {
		case 1:
			exitErr = exitStatus{code: int(exit)}
		case 2:
			exitErr = exitStatus{signal: "killed"}
		case 3:
			exitErr = fmt.Errorf("fork/exec: no such file")
		}
		run := func(chunked bool) ([]Event, *Converter) {
			var events []Event
			conv := NewConverter("example.com/p", func(e Event) { events = append(events, e) }, nil)
			rest := data
			for i := 0; chunked && len(rest) > 0 && i < len(cuts); i++ {
				n := min(len(rest), int(cuts[i]))
				conv.Write(rest[:n])
				rest = rest[n:]
			}
			conv.Write(rest)
			conv.Exited(exitErr, 1500*time.Millisecond)
			return events, conv
		}
		events, conv := run(true)
		checkEvents(t, events, conv)
		if !bytes.Contains(data, []byte("Benchmark")) {
			whole, _ := run(false)
			diffEvents(t, "chunked vs whole", exact(events), exact(whole))
		}
	})
}

var knownActions = []string{
	ActionStart, ActionRun, ActionPause, ActionCont, ActionPass, ActionFail, ActionSkip,
	ActionOutput, ActionBench, ActionAttr, ActionArtifacts,
}

func checkEvents(t *testing.T, events []Event, conv *Converter) {
	t.Helper()
	if len(events) < 2 {
		t.Fatalf("%d events, want at least start and a result", len(events))
	}
	if events[0].Action != ActionStart || events[0].Test != "" {
		t.Errorf("first event %+v, want a package start", events[0])
	}
	last := events[len(events)-1]
	if !IsTerminal(last.Action) || last.Elapsed == nil {
		t.Errorf("last event %+v, want a package result with Elapsed", last)
	}
	for i, e := range events {
		if !slices.Contains(knownActions, e.Action) {
			t.Errorf("event %d: unknown action %q", i, e.Action)
		}
		if e.Action == ActionStart && i > 0 {
			t.Errorf("event %d: second start", i)
		}
		if e.Package != "example.com/p" || e.Time == nil || e.ImportPath != "" || e.FailedBuild != "" || e.Worker != "" {
			t.Errorf("event %d: bad fields %+v", i, e)
		}
		for _, s := range []string{e.Test, e.Output, e.Key, e.Value, e.Path} {
			if !utf8.ValidString(s) {
				t.Errorf("event %d: invalid UTF-8 in %+v", i, e)
			}
		}
		if (e.Action == ActionOutput) != (e.Output != "") {
			t.Errorf("event %d: output %q with action %q", i, e.Output, e.Action)
		}
		if e.Elapsed != nil && !IsTerminal(e.Action) && e.Action != ActionBench {
			t.Errorf("event %d: Elapsed on %q", i, e.Action)
		}
		if (e.Key != "" || e.Value != "") && e.Action != ActionAttr {
			t.Errorf("event %d: Key/Value on %q", i, e.Action)
		}
		if e.Path != "" && e.Action != ActionArtifacts {
			t.Errorf("event %d: Path on %q", i, e.Action)
		}
		if utf8.RuneCountInString(e.Output) > outputBufferSize {
			t.Errorf("event %d: output of %d bytes", i, len(e.Output))
		}
	}
	running := conv.Running()
	seen := map[string]bool{}
	for _, name := range running {
		if seen[name] || name == "" {
			t.Errorf("Running() = %q: duplicate or empty", running)
		}
		seen[name] = true
	}
	for name, action := range conv.Results() {
		if !IsTerminal(action) || name == "" {
			t.Errorf("Results()[%q] = %q", name, action)
		}
	}
}
