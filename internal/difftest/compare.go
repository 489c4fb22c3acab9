package difftest

import (
	"fmt"
	"sort"
	"strings"
)

// Kinds of Diff.
const (
	KindTest     = "test"     // a test's terminal action
	KindPackage  = "package"  // a package's terminal action
	KindBuild    = "build"    // a build-fail event
	KindExit     = "exit"     // the exit status
	KindTerminal = "terminal" // not exactly one terminal action in godist's stream
	KindStream   = "stream"   // godist's stream has lines that are not JSON events
	KindRun      = "run"      // a godist run did not finish (timeout, no --jsonfile)
)

// Diff is one thing that godist reports differently from go test.
type Diff struct {
	Kind string
	What string // "pkg TestName", a package, a build's ImportPath, ...
	// GoTest is go test's outcome (None: it reports nothing).
	GoTest string
	// Godist is godist's outcome in each of its runs; "" where that run agreed with go test.
	Godist []string
}

func (d Diff) String() string {
	var runs []string
	for i, g := range d.Godist {
		if g == "" {
			g = "= go test"
		}
		runs = append(runs, fmt.Sprintf("%s (run %d)", g, i+1))
	}
	return fmt.Sprintf("%s %s: go test %s, godist %s", d.Kind, d.What, d.GoTest, strings.Join(runs, ", "))
}

// Flaky is a test or package whose outcome differed between the go test runs, or a test
// known to be flaky.
type Flaky struct {
	What   string
	GoTest []string // go test's outcome in each run
	Godist []string // godist's in each run
	// Known, if not "", says why the test is known to be flaky (Options.Flaky).
	Known string
}

func (f Flaky) String() string {
	s := fmt.Sprintf("%s: go test %s; godist %s", f.What, strings.Join(f.GoTest, ", "), strings.Join(f.Godist, ", "))
	if f.Known != "" {
		s += " (known flaky: " + f.Known + ")"
	}
	return s
}

// Stream is one run's result as Compare takes it.
type Stream struct {
	Outcome *Outcome
	Exit    int
	// Err, if not nil, says that the run did not finish (it timed out, or wrote no
	// stream): its outcome is not compared.
	Err error
}

// Comparison is what Compare found.
type Comparison struct {
	Tests    int // tests (subtests included) go test's first run reported
	Packages int // packages go test reported
	Diffs    []Diff
	Flaky    []Flaky
	// Rerun are tests only godist reports, in packages whose go test process crashed before
	// reaching them: godist ran them again in a new process. Expected, not differences.
	Rerun []Key
	// Varying are tests whose subtests' names change from run to run (a pointer or a time
	// in the name): subtests of theirs that not every run has are not compared.
	Varying []Varying
	// Ignored are the ignored packages that were reported, with why.
	Ignored []string
}

// Varying is a test whose subtests' names vary between runs.
type Varying struct {
	Parent Key
	// GoTest and Godist count the names that only some runs had.
	GoTest, Godist int
}

func (v Varying) String() string {
	return fmt.Sprintf("%s: subtest names vary from run to run; %d such names under go test, %d under godist, not compared", v.Parent, v.GoTest, v.Godist)
}

// Options of a comparison.
type Options struct {
	// Ignore maps packages whose results are not compared to the reason.
	Ignore map[string]string
	// Flaky maps tests known to be flaky under go test too (at a rate too low for two runs
	// to show) to the evidence. Such a test, its subtests and its parents count as flaky;
	// so do its package's result and the exit status in a run where one of them differed.
	Flaky map[Key]string
}

// Compare compares godist's runs with go test's. goTest must hold at least one run that
// finished; a test or package whose outcome differs between the go test runs is flaky and
// not compared.
func Compare(goTest, godist []Stream, opts Options) *Comparison {
	ignore := opts.Ignore
	c := &Comparison{}
	var gts []*Outcome
	var exits []int
	for _, s := range goTest {
		if s.Err == nil && s.Outcome != nil {
			gts = append(gts, s.Outcome.asGoTest())
			exits = append(exits, s.Exit)
		}
	}
	if len(gts) == 0 {
		return c
	}
	ref := gts[0]

	// What go test reports, over all its runs, and what varied between them.
	tests := map[Key]bool{}
	pkgs := map[string]bool{}
	builds := map[string]bool{}
	crashed := map[string]bool{}
	for _, o := range gts {
		for k := range o.Tests {
			tests[k] = true
		}
		for p := range o.Packages {
			pkgs[p] = true
			if o.crashed(p) {
				crashed[p] = true
			}
		}
		for b := range o.Builds {
			builds[b] = true
		}
	}
	flakyTests := map[Key]bool{}
	for k := range tests {
		for _, o := range gts[1:] {
			if o.test(k) != ref.test(k) {
				flakyTests[k] = true
			}
		}
	}
	flakyPkgs := map[string]bool{}
	for p := range pkgs {
		for _, o := range gts[1:] {
			if o.pkg(p) != ref.pkg(p) {
				flakyPkgs[p] = true
			}
		}
	}
	// A subtest that only some go test runs have has a name that varies (with an address
	// or a time in it), not an outcome: its parent's subtests are matched by name only where
	// every run has the name.
	varying := map[Key]*Varying{}
	for k := range flakyTests {
		for _, o := range gts {
			if o.test(k) == None && strings.Contains(k.Test, "/") {
				p := parentOf(k)
				if varying[p] == nil {
					varying[p] = &Varying{Parent: p}
				}
				varying[p].GoTest++
				delete(flakyTests, k)
				break
			}
		}
	}
	// Tests known to be flaky, with their subtests and parents.
	knownFlaky := map[Key]string{}
	for k := range tests {
		for f, why := range opts.Flaky {
			if k.Package == f.Package && (k.Test == f.Test || strings.HasPrefix(k.Test, f.Test+"/") || strings.HasPrefix(f.Test, k.Test+"/")) {
				knownFlaky[k] = why
			}
		}
	}
	c.Tests, c.Packages = len(ref.Tests), len(pkgs)
	for _, p := range sortedKeys(ignore) {
		if pkgs[p] {
			c.Ignored = append(c.Ignored, p+": "+ignore[p])
		}
	}

	// The exit status go test's runs agree on, if it must be godist's too: when packages are
	// flaky or ignored, godist's status is known only if a compared package failed.
	wantExit := exits[0]
	for _, e := range exits[1:] {
		if e != wantExit {
			wantExit = -1
		}
	}
	if wantExit >= 0 && (len(flakyPkgs) > 0 || len(c.Ignored) > 0) {
		wantExit = -1
		for p := range pkgs {
			if ignore[p] == "" && !flakyPkgs[p] && ref.pkg(p) == Fail {
				wantExit = 1
			}
		}
	}

	diffs := map[string]*Diff{}
	var order []string
	add := func(run int, kind, what, want, got string) {
		id := kind + "\x00" + what + "\x00" + want
		d := diffs[id]
		if d == nil {
			d = &Diff{Kind: kind, What: what, GoTest: want, Godist: make([]string, len(godist))}
			diffs[id] = d
			order = append(order, id)
		}
		d.Godist[run] = got
	}
	rerun := map[Key]bool{}
	for run, s := range godist {
		if s.Err != nil || s.Outcome == nil {
			msg := "no result"
			if s.Err != nil {
				msg = s.Err.Error()
			}
			add(run, KindRun, fmt.Sprintf("godist run %d", run+1), "finished", msg)
			continue
		}
		o := s.Outcome
		if o.Malformed > 0 {
			add(run, KindStream, "--jsonfile", "JSON lines", fmt.Sprintf("%d other lines, the first %q", o.Malformed, o.FirstMalformed))
		}
		for _, k := range sortedTestKeys(o.Tests) {
			if n := len(o.Tests[k]); n != 1 && ignore[k.Package] == "" {
				add(run, KindTerminal, k.String(), "1", fmt.Sprintf("%d %v", n, o.Tests[k]))
			}
		}
		for _, k := range sortedTestKeys(o.Started) {
			if len(o.Tests[k]) == 0 && ignore[k.Package] == "" {
				add(run, KindTerminal, k.String(), "1", "0 (run, never ended)")
			}
		}
		// A package of which godist reports no test at all is one difference, not one per test.
		godistTests := map[string]int{}
		for k := range o.Tests {
			godistTests[k.Package]++
		}
		lost := map[string]map[string]int{} // package -> go test's outcome -> tests
		for k := range tests {
			if ignore[k.Package] == "" && !flakyTests[k] && (varying[parentOf(k)] == nil || inAll(gts, k)) && godistTests[k.Package] == 0 {
				if lost[k.Package] == nil {
					lost[k.Package] = map[string]int{}
				}
				lost[k.Package][ref.test(k)]++
			}
		}
		for _, p := range sortedKeys(lost) {
			var parts []string
			n := 0
			for _, a := range sortedKeys(lost[p]) {
				parts = append(parts, fmt.Sprintf("%d %s", lost[p][a], a))
				n += lost[p][a]
			}
			add(run, KindTest, fmt.Sprintf("%s (all %d tests)", p, n), strings.Join(parts, ", "), None)
		}
		flakeHit := map[string]bool{} // packages where a known flaky test differed
		for _, k := range sortedTestKeys(tests) {
			if ignore[k.Package] != "" || flakyTests[k] || lost[k.Package] != nil {
				continue
			}
			if v := varying[parentOf(k)]; v != nil && !inAll(gts, k) {
				continue
			}
			if want, got := ref.test(k), o.test(k); want != got {
				if knownFlaky[k] != "" {
					flakeHit[k.Package] = true
					continue
				}
				add(run, KindTest, k.String(), want, got)
			}
		}
		for _, k := range sortedTestKeys(o.Tests) {
			if tests[k] || ignore[k.Package] != "" {
				continue
			}
			if crashed[k.Package] {
				rerun[k] = true
				continue
			}
			if v := varying[parentOf(k)]; v != nil {
				v.Godist++
				continue
			}
			add(run, KindTest, k.String(), None, o.test(k))
		}
		for _, p := range sortedKeys(o.Packages) {
			if n := len(o.Packages[p]); n != 1 && ignore[p] == "" {
				add(run, KindTerminal, "package "+p, "1", fmt.Sprintf("%d %v", n, o.Packages[p]))
			}
		}
		for _, p := range sortedKeys(pkgs) {
			if ignore[p] != "" || flakyPkgs[p] || flakeHit[p] {
				continue
			}
			if want, got := ref.pkg(p), o.pkg(p); want != got {
				add(run, KindPackage, p, want, got)
			}
		}
		for _, p := range sortedKeys(o.Packages) {
			if !pkgs[p] && ignore[p] == "" {
				add(run, KindPackage, p, None, o.pkg(p))
			}
		}
		for _, p := range sortedKeys(pkgs) {
			if ignore[p] != "" || flakyPkgs[p] {
				continue
			}
			if want, got := ref.FailedBuild[p], o.FailedBuild[p]; want != got {
				add(run, KindBuild, "FailedBuild of "+p, quoteOrNone(want), quoteOrNone(got))
			}
		}
		for _, b := range sortedKeys(builds) {
			if !o.Builds[b] && ignore[buildPackage(b)] == "" {
				add(run, KindBuild, b, "build-fail", None)
			}
		}
		for _, b := range sortedKeys(o.Builds) {
			if !builds[b] && ignore[buildPackage(b)] == "" {
				add(run, KindBuild, b, None, "build-fail")
			}
		}
		if wantExit >= 0 && s.Exit != wantExit && len(flakeHit) == 0 {
			add(run, KindExit, "exit status", fmt.Sprint(wantExit), fmt.Sprint(s.Exit))
		}
	}
	for _, id := range order {
		c.Diffs = append(c.Diffs, *diffs[id])
	}
	sort.SliceStable(c.Diffs, func(i, j int) bool { return kindRank(c.Diffs[i].Kind) < kindRank(c.Diffs[j].Kind) })
	c.Rerun = sortedTestKeys(rerun)
	for _, p := range sortedTestKeys(varying) {
		c.Varying = append(c.Varying, *varying[p])
	}

	for k := range knownFlaky {
		flakyTests[k] = true
	}
	for _, k := range sortedTestKeys(flakyTests) {
		f := Flaky{What: k.String(), Known: knownFlaky[k]}
		for _, o := range gts {
			f.GoTest = append(f.GoTest, o.test(k))
		}
		for _, s := range godist {
			f.Godist = append(f.Godist, outcomeOf(s, func(o *Outcome) string { return o.test(k) }))
		}
		c.Flaky = append(c.Flaky, f)
	}
	for _, p := range sortedKeys(flakyPkgs) {
		f := Flaky{What: "package " + p}
		for _, o := range gts {
			f.GoTest = append(f.GoTest, o.pkg(p))
		}
		for _, s := range godist {
			f.Godist = append(f.Godist, outcomeOf(s, func(o *Outcome) string { return o.pkg(p) }))
		}
		c.Flaky = append(c.Flaky, f)
	}
	return c
}

// parentOf is the test a subtest belongs to.
func parentOf(k Key) Key {
	i := strings.LastIndex(k.Test, "/")
	if i < 0 {
		return Key{k.Package, ""}
	}
	return Key{k.Package, k.Test[:i]}
}

// inAll reports whether every outcome has test k.
func inAll(outs []*Outcome, k Key) bool {
	for _, o := range outs {
		if o.test(k) == None {
			return false
		}
	}
	return true
}

func quoteOrNone(s string) string {
	if s == "" {
		return None
	}
	return fmt.Sprintf("%q", s)
}

func outcomeOf(s Stream, f func(*Outcome) string) string {
	if s.Err != nil || s.Outcome == nil {
		return None
	}
	return f(s.Outcome)
}

func kindRank(kind string) int {
	for i, k := range []string{KindRun, KindStream, KindExit, KindBuild, KindPackage, KindTerminal, KindTest} {
		if k == kind {
			return i
		}
	}
	return 99
}

// buildPackage maps a build event's ImportPath ("p", "p [p.test]", "p_test [p.test]") to
// the package under test.
func buildPackage(importPath string) string {
	if i := strings.Index(importPath, " ["); i >= 0 && strings.HasSuffix(importPath, ".test]") {
		return strings.TrimSuffix(importPath[i+2:], ".test]")
	}
	return importPath
}
