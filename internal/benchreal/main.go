// Command benchreal is bench/realworld.sh's helper (issue 11, "How it is checked"): it times
// `go test -count=1 ./...` and godist's first and second runs side by side on public modules
// fetched, pinned, through the module proxy, and prints one markdown table.
//
//	benchreal -godist BIN [-runs N] [-work DIR] [-timeout D] [-profile K] [module@version ...]
//
// For each module and each of N rounds it makes a fresh copy of the module (a new directory:
// godist's binary cache, keyed on the module root, and a fresh XDG_CACHE_HOME and
// --durations file are empty), warms go's build and vet caches for that directory with one
// `go test -count=1 ./...` whose time is discarded (go keys a package's compile on its
// directory), then times, in that copy:
//
//	go test -count=1 ./...
//	godist --durations FRESH.json ./...   (first run)
//	godist --durations FRESH.json ./...   (second run, same copy and durations file)
//
// and reports the medians. A round's godist result matches go test's when the exit status,
// every package's ok/FAIL/no-test-files line and the pass/fail/skip counts agree.
//
// With -profile K, the K modules whose first godist run is slowest relative to go test are
// timed phase by phase from outside in one more fresh, warmed copy: go list, go test -c of
// every package (in groups, as godist builds them), `-test.list .` of every binary, and
// every binary run whole (as go test runs it), each with as many at once as there are CPUs;
// and, apart, go test -c linking as go test links the binaries it runs (no DWARF: -s -w).
//
// Every command runs under -timeout in a process group of its own (internal/child; the group
// is killed with it). The only
// network use is `go mod download` and `go mod tidy` of each module through the module
// proxy; every timed run has GOPROXY=off and GOTOOLCHAIN=local. Exit status: 0 the table was
// made, 1 a module could not be measured (the others still are), 2 bad usage.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/difftest"
)

// module is one suite of the benchmark.
type module struct {
	name  string // path@version, pinned
	shape string
}

// modules are the default suites, versions as pinned in internal/difftest/modules.go. Each
// passes offline as root on the 2-core machine.
var modules = []module{
	{"github.com/pelletier/go-toml/v2@v2.4.3", "many small packages"},
	{"github.com/google/go-cmp@v0.7.0", "many small packages"},
	{"go.uber.org/zap@v1.28.0", "many packages, goleak TestMain"},
	{"github.com/cespare/xxhash/v2@v2.3.0", "heavy TestMain (dynamic/ builds a Go plugin)"},
	{"github.com/spf13/afero@v1.15.0", "TestMain reading testdata, t.Parallel"},
	{"github.com/golang-jwt/jwt/v5@v5.3.1", "one dominant package"},
	{"github.com/BurntSushi/toml@v1.6.0", "one dominant package, ~1200 subtests"},
	{"github.com/fxamacker/cbor/v2@v2.10.0", "one dominant package, ~5800 tests and subtests"},
	{"gopkg.in/yaml.v3@v3.0.1", "one package, one gocheck Test runs the suite"},
	{"github.com/go-viper/mapstructure/v2@v2.5.0", "t.Parallel-heavy, one package"},
	{"github.com/go-chi/chi/v5@v5.5.0", "t.Parallel, loopback HTTP with sleeps"},
}

// run is one timed command.
type run struct {
	wall   time.Duration
	exit   int
	out    string // stdout and stderr, in a file
	killed bool   // timed out or interrupted
}

// round is one fresh copy's three timed runs.
type round struct {
	goTest, gd1, gd2 run
	match            string // "" when godist's results matched go test's in both runs
}

// result is one module's figures.
type result struct {
	mod                  module
	pkgs, pkgsWithTests  int
	top, sub             int // top-level tests and subtests, from the warm-up's go test -json
	passed, failed, skip int // every test, subtests included
	rounds               []round
	load                 [2]string
	src                  string // the prepared module, copied for every round
	err                  error
}

func (r *result) medians() (goTest, gd1, gd2 time.Duration) {
	var a, b, c []time.Duration
	for _, rd := range r.rounds {
		a, b, c = append(a, rd.goTest.wall), append(b, rd.gd1.wall), append(c, rd.gd2.wall)
	}
	return median(a), median(b), median(c)
}

func (r *result) ratio1() float64 {
	g, d, _ := r.medians()
	return float64(d) / float64(g)
}

type bench struct {
	godist  string
	work    string
	timeout time.Duration
	gocache string
	log     io.Writer
}

func main() { os.Exit(mainErr()) }

func mainErr() int {
	fs := flag.NewFlagSet("benchreal", flag.ContinueOnError)
	godist := fs.String("godist", "", "the godist binary (go build -o BIN ./cmd/godist; required)")
	runs := fs.Int("runs", 3, "rounds per module: each a fresh copy timed with go test, godist's first and second run")
	work := fs.String("work", "", "keep every copy and output under this directory (default: a temporary one, removed)")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on every command")
	profile := fs.Int("profile", 2, "time the phases of the K modules whose first godist run is worst relative to go test")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: benchreal -godist BIN [flags] [module@version ...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *godist == "" || *runs < 1 || *timeout <= 0 || *profile < 0 {
		fs.Usage()
		return 2
	}
	mods := modules
	if fs.NArg() > 0 {
		mods = nil
		for _, n := range fs.Args() {
			m, ok := lookup(n)
			if !ok {
				fmt.Fprintf(os.Stderr, "benchreal: %q: give path@version\n", n)
				return 2
			}
			mods = append(mods, m)
		}
	}
	bin, err := filepath.Abs(*godist)
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreal: -godist:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := *work
	if root == "" {
		if root, err = os.MkdirTemp("", "benchreal-"); err != nil {
			fmt.Fprintln(os.Stderr, "benchreal:", err)
			return 1
		}
		defer os.RemoveAll(root)
	} else if err := os.MkdirAll(root, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "benchreal:", err)
		return 1
	}
	if root, err = filepath.Abs(root); err != nil {
		fmt.Fprintln(os.Stderr, "benchreal:", err)
		return 1
	}
	b := &bench{godist: bin, work: root, timeout: *timeout, log: os.Stderr}
	if b.gocache, err = goEnv(ctx, "GOCACHE"); err != nil {
		fmt.Fprintln(os.Stderr, "benchreal:", err)
		return 1
	}

	status := 0
	var results []*result
	for i, m := range mods {
		dir := filepath.Join(root, fmt.Sprintf("%02d-%s", i, safeName(m.name)))
		fmt.Fprintf(b.log, "benchreal: == %s (%s)\n", m.name, m.shape)
		res := b.measure(ctx, m, dir, *runs)
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "benchreal: interrupted")
			return 1
		}
		if res.err != nil {
			fmt.Fprintf(os.Stderr, "benchreal: %s: %v\n", m.name, res.err)
			status = 1
		}
		results = append(results, res)
	}
	writeTable(os.Stdout, results)
	writeRounds(os.Stdout, results)

	// The worst first runs relative to go test, phase by phase.
	var ok []*result
	for _, r := range results {
		if r.err == nil && len(r.rounds) > 0 {
			ok = append(ok, r)
		}
	}
	sort.SliceStable(ok, func(i, j int) bool { return ok[i].ratio1() > ok[j].ratio1() })
	if len(ok) > *profile {
		ok = ok[:*profile]
	}
	if len(ok) > 0 {
		fmt.Fprintf(os.Stdout, "\n## Phases of the %d worst first runs\n\n", len(ok))
		fmt.Fprintf(os.Stdout, "In a fresh copy warmed with one go test -count=1 ./..., %d at once (CPUs) in each phase.\n\n", runtime.NumCPU())
		fmt.Fprintln(os.Stdout, "| module | go list s | go test -c s | -test.list s | run whole s | sum s | godist 1st s (this copy) | go test s (median) | dominant | go test -c -ldflags='-s -w' s |")
		fmt.Fprintln(os.Stdout, "|---|---|---|---|---|---|---|---|---|---|")
	}
	for i, r := range ok {
		dir := filepath.Join(root, fmt.Sprintf("profile-%d-%s", i, safeName(r.mod.name)))
		p, err := b.phases(ctx, r, dir)
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "benchreal: interrupted")
			return 1
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchreal: phases of %s: %v\n", r.mod.name, err)
			fmt.Fprintf(os.Stdout, "| %s | %s |\n", r.mod.name, oneLine(err.Error()))
			status = 1
			continue
		}
		g, _, _ := r.medians()
		fmt.Fprintf(os.Stdout, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.2f |\n", r.mod.name,
			p.list.Seconds(), p.build.Seconds(), p.testList.Seconds(), p.run.Seconds(), p.sum().Seconds(),
			p.godist.Seconds(), g.Seconds(), p.dominant(), p.buildNoDWARF.Seconds())
		if len(p.notes) > 0 {
			defer fmt.Fprintf(os.Stdout, "\n%s: %s\n", r.mod.name, strings.Join(p.notes, "; "))
		}
	}
	return status
}

// lookup takes a module of modules by path@version or path, or any path@version.
func lookup(name string) (module, bool) {
	path, version, hasVersion := strings.Cut(name, "@")
	for _, m := range modules {
		p, v, _ := strings.Cut(m.name, "@")
		if p == path && (!hasVersion || v == version) {
			return m, true
		}
	}
	if hasVersion && path != "" && version != "" {
		return module{name: name, shape: "?"}, true
	}
	return module{}, false
}

// measure prepares m under dir and times its rounds.
func (b *bench) measure(ctx context.Context, m module, dir string, runs int) *result {
	res := &result{mod: m}
	res.load[0] = loadAverage()
	defer func() { res.load[1] = loadAverage() }()
	dm, ok := difftest.Lookup(m.name)
	if !ok {
		res.err = fmt.Errorf("not a path@version")
		return res
	}
	src := filepath.Join(dir, "src")
	res.src = src
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.err = err
		return res
	}
	fmt.Fprintf(b.log, "benchreal: fetching %s through the module proxy\n", m.name)
	pctx, cancel := context.WithTimeout(ctx, b.timeout)
	err := difftest.Prepare(pctx, dm, src)
	cancel()
	if err != nil {
		res.err = err
		return res
	}
	for i := 1; i <= runs; i++ {
		rd, err := b.round(ctx, res, src, filepath.Join(dir, fmt.Sprintf("r%d", i)), i == 1)
		if err != nil {
			res.err = fmt.Errorf("round %d: %w", i, err)
			return res
		}
		res.rounds = append(res.rounds, rd)
	}
	return res
}

// round makes a fresh copy of src in dir, warms go's caches for it and times the three runs.
func (b *bench) round(ctx context.Context, res *result, src, dir string, first bool) (round, error) {
	var rd round
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rd, err
	}
	if err := copyTree(src, tree); err != nil {
		return rd, err
	}
	env, err := b.env(filepath.Join(dir, "cache"))
	if err != nil {
		return rd, err
	}
	// Warm go's build and vet caches for this directory (time discarded); its -json stream
	// gives the counts.
	warm := filepath.Join(dir, "warm.json")
	w := b.run(ctx, tree, env, warm, "go", "test", "-count=1", "-json", "./...")
	if w.killed {
		return rd, fmt.Errorf("warm-up go test: %s (see %s)", killedMsg(ctx, b.timeout), w.out)
	}
	data, err := os.ReadFile(warm)
	if err != nil {
		return rd, err
	}
	warmOut := difftest.Parse(data)
	if first {
		if err := b.count(ctx, res, tree, env, warmOut); err != nil {
			return rd, err
		}
	}
	rd.goTest = b.run(ctx, tree, env, filepath.Join(dir, "gotest.out"), "go", "test", "-count=1", "./...")
	if rd.goTest.killed {
		return rd, fmt.Errorf("go test: %s (see %s)", killedMsg(ctx, b.timeout), rd.goTest.out)
	}
	durations := filepath.Join(dir, "durations.json")
	rd.gd1 = b.run(ctx, tree, env, filepath.Join(dir, "godist-1.out"), b.godist, "--durations", durations, "./...")
	rd.gd2 = b.run(ctx, tree, env, filepath.Join(dir, "godist-2.out"), b.godist, "--durations", durations, "./...")
	if ctx.Err() != nil {
		return rd, ctx.Err()
	}
	rd.match = matches(rd, warmOut)
	return rd, nil
}

// count fills in the package and test counts of res from go list and the warm-up stream.
func (b *bench) count(ctx context.Context, res *result, tree string, env []string, o *difftest.Outcome) error {
	pkgs, err := b.goList(ctx, tree, env)
	if err != nil {
		return err
	}
	res.pkgs = len(pkgs)
	for _, p := range pkgs {
		if p.hasTests() {
			res.pkgsWithTests++
		}
	}
	for k := range o.Tests {
		if strings.Contains(k.Test, "/") {
			res.sub++
		} else {
			res.top++
		}
	}
	res.passed, res.failed, res.skip = counts(o)
	return nil
}

// counts are the tests, subtests included, whose last result is pass, fail and skip.
func counts(o *difftest.Outcome) (passed, failed, skipped int) {
	for _, acts := range o.Tests {
		switch acts[len(acts)-1] {
		case difftest.Pass:
			passed++
		case difftest.Fail:
			failed++
		case difftest.Skip:
			skipped++
		}
	}
	return passed, failed, skipped
}

// resultLine is a package's result line as go test and godist print it.
var resultLine = regexp.MustCompile(`^(ok|FAIL|\?)\s+(\S+)(\s|$)`)

// summaryLine is godist's closing line.
var summaryLine = regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed, (\d+) skipped`)

// matches says how the godist runs of rd differ from its go test run ("" when they do
// not): exit status, each package's result line, and the counts against the warm-up's.
func matches(rd round, warm *difftest.Outcome) string {
	want, err := packageLines(rd.goTest.out)
	if err != nil {
		return err.Error()
	}
	var diffs []string
	for i, gd := range []run{rd.gd1, rd.gd2} {
		var d []string
		if gd.killed {
			diffs = append(diffs, fmt.Sprintf("godist %d: killed", i+1))
			continue
		}
		if gd.exit != rd.goTest.exit {
			d = append(d, fmt.Sprintf("exit %d, go test %d", gd.exit, rd.goTest.exit))
		}
		got, err := packageLines(gd.out)
		if err != nil {
			d = append(d, err.Error())
		}
		for p, s := range want {
			if got[p] != s {
				d = append(d, fmt.Sprintf("%s %q, go test %q", p, orNone(got[p]), s))
			}
		}
		for p, s := range got {
			if _, ok := want[p]; !ok {
				d = append(d, fmt.Sprintf("%s %q, go test none", p, s))
			}
		}
		data, _ := os.ReadFile(gd.out)
		passed, failed, skipped := counts(warm)
		if m := summaryLine.FindAllSubmatch(data, -1); len(m) > 0 {
			last := m[len(m)-1]
			if c := fmt.Sprintf("%s/%s/%s", last[1], last[2], last[3]); c != fmt.Sprintf("%d/%d/%d", passed, failed, skipped) {
				d = append(d, fmt.Sprintf("passed/failed/skipped %s, go test -json %d/%d/%d", c, passed, failed, skipped))
			}
		} else {
			d = append(d, "no summary line")
		}
		if len(d) > 0 {
			sort.Strings(d)
			diffs = append(diffs, fmt.Sprintf("godist %d: %s", i+1, strings.Join(d, ", ")))
		}
	}
	return strings.Join(diffs, "; ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// packageLines maps each package to the first word of its result line in the output file.
func packageLines(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if m := resultLine.FindStringSubmatch(sc.Text()); m != nil {
			out[m[2]] = m[1]
		}
	}
	return out, sc.Err()
}

// listed is the part of go list -json the benchmark reads.
type listed struct {
	ImportPath, Dir           string
	TestGoFiles, XTestGoFiles []string
}

func (p listed) hasTests() bool { return len(p.TestGoFiles)+len(p.XTestGoFiles) > 0 }

// goList lists the packages of ./... in tree.
func (b *bench) goList(ctx context.Context, tree string, env []string) ([]listed, error) {
	out := filepath.Join(filepath.Dir(tree), "list.json")
	r := b.runTo(ctx, tree, env, out, out+".stderr", "go", "list", "-e", "-json=ImportPath,Name,Dir,TestGoFiles,XTestGoFiles,Error,Module", "./...")
	if r.killed || r.exit != 0 {
		return nil, fmt.Errorf("go list: exit %d (see %s.stderr)", r.exit, r.out)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pkgs []listed
	dec := json.NewDecoder(f)
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("go list: %s: %w", out, err)
		}
		pkgs = append(pkgs, p)
	}
}

// phase times, from outside, of one module's first godist run.
type phaseTimes struct {
	list, build, testList, run, godist time.Duration
	buildNoDWARF                       time.Duration // go test -c -ldflags='-s -w', as go test links
	notes                              []string
}

func (p phaseTimes) sum() time.Duration { return p.list + p.build + p.testList + p.run }

func (p phaseTimes) dominant() string {
	names := []string{"go list", "go test -c", "-test.list", "run"}
	vals := []time.Duration{p.list, p.build, p.testList, p.run}
	best := 0
	for i, v := range vals {
		if v > vals[best] {
			best = i
		}
	}
	return fmt.Sprintf("%s (%.0f%%)", names[best], 100*float64(vals[best])/float64(p.sum()))
}

// phases times go list, go test -c, -test.list and the binaries' runs in a fresh copy of
// r's module, then godist's first run in it.
func (b *bench) phases(ctx context.Context, r *result, dir string) (phaseTimes, error) {
	var p phaseTimes
	fmt.Fprintf(b.log, "benchreal: == phases of %s\n", r.mod.name)
	src := r.src
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return p, err
	}
	if err := copyTree(src, tree); err != nil {
		return p, err
	}
	env, err := b.env(filepath.Join(dir, "cache"))
	if err != nil {
		return p, err
	}
	if w := b.run(ctx, tree, env, filepath.Join(dir, "warm.out"), "go", "test", "-count=1", "./..."); w.killed {
		return p, fmt.Errorf("warm-up go test: %s", killedMsg(ctx, b.timeout))
	}

	start := time.Now()
	pkgs, err := b.goList(ctx, tree, env)
	if err != nil {
		return p, err
	}
	p.list = time.Since(start)

	// go test -c, in groups of packages whose binaries' names differ, the groups at once.
	var groups [][]listed
	seen := map[string]int{}
	for _, q := range pkgs {
		if !q.hasTests() {
			continue
		}
		k := seen[gobuild.ExecName(q.ImportPath)]
		seen[gobuild.ExecName(q.ImportPath)]++
		for len(groups) <= k {
			groups = append(groups, nil)
		}
		groups[k] = append(groups[k], q)
	}
	// First without DWARF, as go test links the binaries it runs (-ldflags=-s -w; its
	// _testmain.go is not in the build cache yet, which counts against this build), then as
	// godist builds them; each into a directory of its own, so both link every binary.
	build := func(bins, name string, flags ...string) (time.Duration, error) {
		start := time.Now()
		var wg sync.WaitGroup
		builds := make([]run, len(groups))
		for i, g := range groups {
			out := filepath.Join(bins, fmt.Sprint(i))
			if err := os.MkdirAll(out, 0o755); err != nil {
				return 0, err
			}
			args := append([]string{"test", "-c", "-json"}, flags...)
			args = append(args, "-o", out+string(filepath.Separator))
			for _, q := range g {
				args = append(args, q.ImportPath)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				builds[i] = b.run(ctx, tree, env, filepath.Join(dir, fmt.Sprintf("%s-%d.out", name, i)), "go", args...)
			}()
		}
		wg.Wait()
		took := time.Since(start)
		for i, br := range builds {
			if br.killed {
				return 0, fmt.Errorf("go test -c: %s", killedMsg(ctx, b.timeout))
			}
			if br.exit != 0 {
				p.notes = append(p.notes, fmt.Sprintf("%s group %d exit %d (some package did not build)", name, i, br.exit))
			}
		}
		return took, nil
	}
	if p.buildNoDWARF, err = build(filepath.Join(dir, "bin-nodwarf"), "build-nodwarf", "-ldflags=-s -w"); err != nil {
		return p, err
	}
	bins := filepath.Join(dir, "bin")
	if p.build, err = build(bins, "build"); err != nil {
		return p, err
	}
	type binary struct{ path, dir string }
	var binaries []binary
	for i, g := range groups {
		for _, q := range g {
			bin := filepath.Join(bins, fmt.Sprint(i), gobuild.ExecName(q.ImportPath)+".test")
			if _, err := os.Stat(bin); err == nil {
				binaries = append(binaries, binary{bin, q.Dir})
			}
		}
	}
	p.notes = append(p.notes, fmt.Sprintf("%d binaries in %d go test -c", len(binaries), len(groups)))

	each := func(name string, args ...string) (time.Duration, time.Duration, error) {
		sem := make(chan struct{}, runtime.NumCPU())
		var mu sync.Mutex
		var slowest time.Duration
		var firstErr error
		start := time.Now()
		var wg sync.WaitGroup
		for i, bn := range binaries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				r := b.run(ctx, bn.dir, append(env[:len(env):len(env)], "PWD="+bn.dir), filepath.Join(dir, fmt.Sprintf("%s-%d.out", name, i)), bn.path, args...)
				mu.Lock()
				defer mu.Unlock()
				slowest = max(slowest, r.wall)
				if r.killed && firstErr == nil {
					firstErr = fmt.Errorf("%s %s: %s", bn.path, strings.Join(args, " "), killedMsg(ctx, b.timeout))
				}
			}()
		}
		wg.Wait()
		return time.Since(start), slowest, firstErr
	}
	var slowest time.Duration
	if p.testList, slowest, err = each("list", "-test.list", "."); err != nil {
		return p, err
	}
	p.notes = append(p.notes, fmt.Sprintf("slowest -test.list %.2fs", slowest.Seconds()))
	if p.run, slowest, err = each("run", "-test.paniconexit0", "-test.timeout=10m0s", "-test.count=1"); err != nil {
		return p, err
	}
	p.notes = append(p.notes, fmt.Sprintf("slowest binary run %.2fs", slowest.Seconds()))

	gd := b.run(ctx, tree, env, filepath.Join(dir, "godist-1.out"), b.godist, "--durations", filepath.Join(dir, "durations.json"), "./...")
	if gd.killed {
		return p, fmt.Errorf("godist: %s", killedMsg(ctx, b.timeout))
	}
	p.godist = gd.wall
	return p, nil
}

// env is the environment of every timed run: this process's, less godist's worker
// variables, with the user cache (godist's binaries, durations) in cache, go's build cache
// where it is, and no network for the go command.
func (b *bench) env(cache string) ([]string, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODIST_") {
			env = append(env, kv)
		}
	}
	// GODIST_CACHE_DIR=off: godist's second run runs its tests, as go test -count=1 does
	// (issue 11 measures runs; the result cache is measured by bench/cache.sh).
	return append(env, "NO_COLOR=1", "GOCACHE="+b.gocache, "XDG_CACHE_HOME="+cache, "GODIST_CACHE_DIR=off",
		"GOPROXY=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly"), nil
}

// run runs name in dir with its stdout and stderr to out, under b.timeout, in a process
// group of its own. Exit -1: it could not start (said on the log).
func (b *bench) run(ctx context.Context, dir string, env []string, out, name string, args ...string) run {
	return b.runTo(ctx, dir, env, out, "", name, args...)
}

// runTo is run with stderr to its own file, unless stderr is "".
func (b *bench) runTo(ctx context.Context, dir string, env []string, out, stderr, name string, args ...string) run {
	r := run{out: out, exit: -1}
	f, err := os.Create(out)
	if err != nil {
		fmt.Fprintln(b.log, "benchreal:", err)
		return r
	}
	defer f.Close()
	ef := f
	if stderr != "" {
		if ef, err = os.Create(stderr); err != nil {
			fmt.Fprintln(b.log, "benchreal:", err)
			return r
		}
		defer ef.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, f, ef
	start := time.Now()
	// A process group of its own (internal/child, the one process helper): a timeout or an
	// interrupt kills go test's test binaries and godist's workers with it, and so does
	// whatever the command left behind when it exits.
	p, err := child.Start(cmd)
	if err != nil {
		fmt.Fprintf(b.log, "benchreal: %s: %v\n", name, err)
		return r
	}
	stop := context.AfterFunc(ctx, func() { p.Kill() })
	err = p.Wait(func() { p.Kill() })
	stop()
	r.wall = time.Since(start)
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.killed = true
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	case err != nil:
		fmt.Fprintf(b.log, "benchreal: %s: %v\n", name, err)
	default:
		r.exit = 0
	}
	if filepath.Base(name) == "go" || name == b.godist {
		fmt.Fprintf(b.log, "benchreal:   %s %s: exit %d in %.2fs\n", filepath.Base(name), strings.Join(args, " "), r.exit, r.wall.Seconds())
	}
	return r
}

func killedMsg(ctx context.Context, d time.Duration) string {
	if ctx.Err() != nil {
		return "interrupted"
	}
	return fmt.Sprintf("killed after %v", d)
}

func writeTable(w io.Writer, results []*result) {
	fmt.Fprintln(w, "| module | shape | packages (with tests) | tests (subtests) | go test s | godist 1st s | ratio (≤ 1.0) | godist 2nd s | ratio (≤ 0.6) | results match go test | load before/after |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.err != nil || len(r.rounds) == 0 {
			fmt.Fprintf(w, "| %s | %s | not measured: %s |||||||| %s/%s |\n", r.mod.name, r.mod.shape, oneLine(fmt.Sprint(r.err)), r.load[0], r.load[1])
			continue
		}
		g, d1, d2 := r.medians()
		match := "yes"
		var why []string
		for i, rd := range r.rounds {
			if rd.match != "" {
				why = append(why, fmt.Sprintf("round %d: %s", i+1, rd.match))
			}
		}
		if len(why) > 0 {
			match = "no: " + oneLine(strings.Join(why, "; "))
		}
		fmt.Fprintf(w, "| %s | %s | %d (%d) | %d (%d) | %.2f | %.2f | %.2f%s | %.2f | %.2f%s | %s | %s/%s |\n",
			r.mod.name, r.mod.shape, r.pkgs, r.pkgsWithTests, r.top, r.sub,
			g.Seconds(), d1.Seconds(), ratio(d1, g), mark(ratio(d1, g) <= 1.0), d2.Seconds(), ratio(d2, g), mark(ratio(d2, g) <= 0.6),
			match, r.load[0], r.load[1])
	}
}

// writeRounds lists every round's times and exit statuses.
func writeRounds(w io.Writer, results []*result) {
	fmt.Fprintln(w, "\nEvery round (go test / godist 1st / godist 2nd, seconds, exit status):")
	fmt.Fprintln(w)
	for _, r := range results {
		var parts []string
		for _, rd := range r.rounds {
			parts = append(parts, fmt.Sprintf("%.2f/%.2f/%.2f (exit %d/%d/%d)", rd.goTest.wall.Seconds(), rd.gd1.wall.Seconds(), rd.gd2.wall.Seconds(),
				rd.goTest.exit, rd.gd1.exit, rd.gd2.exit))
		}
		fmt.Fprintf(w, "- %s: %s\n", r.mod.name, strings.Join(parts, ", "))
	}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func mark(ok bool) string {
	if ok {
		return ""
	}
	return " ✗"
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func safeName(s string) string { return strings.NewReplacer("/", "_", "@", "_").Replace(s) }

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func goEnv(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// copyTree copies src to dst (which must not exist), files and directories writable.
func copyTree(src, dst string) error {
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode().Perm() | 0o600
		if d.IsDir() {
			mode |= 0o700
		}
		return os.Chmod(p, mode)
	})
}
