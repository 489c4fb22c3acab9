package scheduler

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParseShard(t *testing.T) {
	good := []struct {
		in   string
		i, n int
	}{
		{"1/1", 1, 1},
		{"1/4", 1, 4},
		{"4/4", 4, 4},
		{" 2 / 3 ", 2, 3},
		{"10/12", 10, 12},
	}
	for _, c := range good {
		i, n, err := ParseShard(c.in)
		if err != nil || i != c.i || n != c.n {
			t.Errorf("ParseShard(%q) = %d, %d, %v; want %d, %d", c.in, i, n, err, c.i, c.n)
		}
	}
	for _, in := range []string{"", "1", "/", "0/4", "5/4", "1/0", "-1/4", "a/4", "1/b", "1/4/2", "1.5/4", "1/-4", "0/0", "1 /", "½/4"} {
		_, _, err := ParseShard(in)
		var se *ShardSpecError
		if !errors.As(err, &se) || se.Spec != in {
			t.Errorf("ParseShard(%q): got %v, want a *ShardSpecError", in, err)
			continue
		}
		msg := err.Error()
		if want := "want I/N, whole numbers with 1 <= I <= N"; !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
			t.Errorf("ParseShard(%q) error %q: want one line saying %q", in, msg, want)
		}
	}
}

func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"1/4", "0/4", "4/4", " 3/ 7", "x", "1//2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		i, n, err := ParseShard(s)
		if err != nil {
			return
		}
		if i < 1 || n < 1 || i > n {
			t.Fatalf("ParseShard(%q) = %d/%d without an error", s, i, n)
		}
		i2, n2, err := ParseShard(fmt.Sprintf("%d/%d", i, n))
		if err != nil || i2 != i || n2 != n {
			t.Fatalf("round trip of %q: %d/%d, %v", s, i2, n2, err)
		}
	})
}

// randomSuite makes packages with random test counts and estimates; some are Whole, some
// small enough to stay together, some have no tests.
func randomSuite(r *rand.Rand) []Package {
	npkg := 1 + r.IntN(12)
	var pkgs []Package
	for p := range npkg {
		pk := Package{Path: fmt.Sprintf("example.com/p%02d", p), Startup: time.Duration(r.IntN(30)) * time.Millisecond}
		switch r.IntN(6) {
		case 0:
			pk.Whole = true
		case 1:
			// no tests
		default:
			nt := 1 + r.IntN(40)
			for k := range nt {
				est := time.Duration(r.ExpFloat64() * float64(80*time.Millisecond))
				if r.IntN(5) == 0 {
					est = 0 // tests that record 0.00s
				}
				pk.Tests = append(pk.Tests, Test{Name: fmt.Sprintf("Test%03d", (k*7919)%1000), Est: est})
			}
		}
		pkgs = append(pkgs, pk)
	}
	r.Shuffle(len(pkgs), func(a, b int) { pkgs[a], pkgs[b] = pkgs[b], pkgs[a] })
	return pkgs
}

// TestShardUnionIsEveryTestOnce is the property CI relies on: the n jobs together run every
// test, and every Whole package, exactly once; small packages are never split.
func TestShardUnionIsEveryTestOnce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 500 {
		pkgs := randomSuite(r)
		n := 1 + r.IntN(9)
		want := map[string]int{}
		for _, p := range pkgs {
			if p.Whole {
				want[p.Path+" (whole)"] = 1
			}
			for _, tt := range p.Tests {
				want[p.Path+"."+tt.Name] = 1
			}
		}
		got := map[string]int{}
		partsOf := map[string]map[int]bool{}
		for i := 1; i <= n; i++ {
			for _, p := range Shard(pkgs, i, n) {
				if partsOf[p.Path] == nil {
					partsOf[p.Path] = map[int]bool{}
				}
				partsOf[p.Path][i] = true
				if p.Whole {
					got[p.Path+" (whole)"]++
					if len(p.Tests) != 0 {
						t.Fatalf("iter %d: whole package %s with tests %v", iter, p.Path, p.Tests)
					}
					continue
				}
				if len(p.Tests) == 0 {
					t.Fatalf("iter %d: part %d/%d lists %s with no tests", iter, i, n, p.Path)
				}
				for _, tt := range p.Tests {
					got[p.Path+"."+tt.Name]++
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("iter %d (n=%d): union of parts differs from the suite:\ngot  %v\nwant %v", iter, n, got, want)
		}
		for _, p := range pkgs {
			var total time.Duration
			for _, tt := range p.Tests {
				total += tt.Est
			}
			if !p.Whole && total < SplitThreshold && len(partsOf[p.Path]) > 1 {
				t.Fatalf("iter %d: package %s (%v of tests) split over parts %v", iter, p.Path, total, partsOf[p.Path])
			}
		}
	}
}

func TestShardDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		pkgs := randomSuite(r)
		n := 1 + r.IntN(6)
		shuffled := slices.Clone(pkgs)
		r.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		for i := 1; i <= n; i++ {
			a, b := Shard(pkgs, i, n), Shard(pkgs, i, n)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("part %d/%d differs between two calls", i, n)
			}
			c := Shard(shuffled, i, n)
			if !reflect.DeepEqual(byPath(a), byPath(c)) {
				t.Fatalf("part %d/%d depends on the order of the packages:\n%v\n%v", i, n, a, c)
			}
		}
	}
}

func byPath(ps []Package) map[string]Package {
	m := map[string]Package{}
	for _, p := range ps {
		m[p.Path] = p
	}
	return m
}

func TestShardKeepsOrderAndFields(t *testing.T) {
	big := Package{Path: "b", Startup: 5 * time.Millisecond}
	for k := range 10 {
		big.Tests = append(big.Tests, Test{Name: fmt.Sprintf("T%d", k), Est: time.Duration(k+1) * 100 * time.Millisecond})
	}
	pkgs := []Package{
		{Path: "z", Tests: []Test{{Name: "TestOne", Est: time.Millisecond}, {Name: "TestTwo", Est: 2 * time.Millisecond}}},
		big,
		{Path: "a", Whole: true, Startup: 10 * time.Second},
	}
	for i := 1; i <= 3; i++ {
		part := Shard(pkgs, i, 3)
		for k := 1; k < len(part); k++ {
			if idx(pkgs, part[k-1].Path) > idx(pkgs, part[k].Path) {
				t.Errorf("part %d: packages out of the caller's order: %v", i, part)
			}
		}
		for _, p := range part {
			if p.Path == "b" {
				if p.Startup != big.Startup {
					t.Errorf("Startup lost: %v", p.Startup)
				}
				if !sort.SliceIsSorted(p.Tests, func(a, b int) bool { return p.Tests[a].Name < p.Tests[b].Name }) {
					t.Errorf("part %d: tests out of the caller's order: %v", i, p.Tests)
				}
			}
		}
	}
	// The whole package (10s, more than all the rest) has a part to itself.
	for i := 1; i <= 3; i++ {
		part := Shard(pkgs, i, 3)
		for _, p := range part {
			if p.Path == "a" && len(part) != 1 {
				t.Errorf("the 10s whole package shares part %d with %v", i, part)
			}
		}
	}
}

func idx(pkgs []Package, path string) int {
	for k, p := range pkgs {
		if p.Path == path {
			return k
		}
	}
	return -1
}

func TestShardMorePartsThanWork(t *testing.T) {
	pkgs := []Package{{Path: "a", Tests: []Test{{Name: "TestA", Est: time.Millisecond}}}}
	n := 0
	for i := 1; i <= 5; i++ {
		n += len(Shard(pkgs, i, 5))
	}
	if n != 1 {
		t.Fatalf("the one package appears in %d parts", n)
	}
	if got := Shard(nil, 1, 3); len(got) != 0 {
		t.Fatalf("Shard(nil) = %v", got)
	}
}

func TestShardPanicsOnBadPart(t *testing.T) {
	for _, c := range [][2]int{{0, 4}, {5, 4}, {1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Shard(_, %d, %d) did not panic", c[0], c[1])
				}
			}()
			Shard(nil, c[0], c[1])
		}()
	}
}

func TestPackageEstimate(t *testing.T) {
	d := NewDurations()
	if got := d.PackageEstimate("x"); got != 0 {
		t.Fatalf("empty store: %v", got)
	}
	d.Record("x", "TestA", 1500*time.Millisecond)
	d.Record("x", "TestB", 500*time.Millisecond)
	d.RecordStartup("x", 250*time.Millisecond)
	if got := d.PackageEstimate("x"); got != 2250*time.Millisecond {
		t.Fatalf("PackageEstimate = %v, want 2.25s", got)
	}
}

// suite is a test suite as it really runs: each test's true duration and each package's
// process start-up.
type suite struct {
	tests   map[string]map[string]time.Duration // package -> test -> duration
	startup map[string]time.Duration
}

// heavyTailSuite is 300 tests over 15 packages with Pareto-distributed durations (shape
// alpha, 10ms minimum; alpha 1.5 has a finite mean and an unbounded variance, 1.2 a
// heavier tail) and process start-ups of 5-50ms.
func heavyTailSuite(seed uint64, alpha float64) suite {
	r := rand.New(rand.NewPCG(seed, 99))
	s := suite{tests: map[string]map[string]time.Duration{}, startup: map[string]time.Duration{}}
	for p := range 15 {
		path := fmt.Sprintf("example.com/mod/pkg%02d", p)
		s.tests[path] = map[string]time.Duration{}
		s.startup[path] = time.Duration(5+r.IntN(46)) * time.Millisecond
	}
	paths := sortedPaths(s)
	for k := range 300 {
		u := 1 - r.Float64() // (0, 1]
		s.tests[paths[r.IntN(len(paths))]][fmt.Sprintf("Test%03d", k)] = time.Duration(float64(10*time.Millisecond) / math.Pow(u, 1/alpha))
	}
	return s
}

func sortedNames(s suite, pkg string) []string {
	var names []string
	for name := range s.tests[pkg] {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func sortedPaths(s suite) []string {
	var paths []string
	for p := range s.tests {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// plan records the suite's durations in a durations file (leaving out every test for
// which unknown says so, as new tests are), reads the file back, and makes the packages
// the runner would: estimates from Durations.Estimates, so unknown tests get the median.
func plan(t testing.TB, s suite, unknown func(pkg, test string) bool) []Package {
	d := NewDurations()
	for _, p := range sortedPaths(s) {
		for name, dur := range s.tests[p] {
			if !unknown(p, name) {
				d.Record(p, name, dur)
			}
		}
		d.RecordStartup(p, s.startup[p])
	}
	file := filepath.Join(t.TempDir(), "durations.json")
	if err := d.Save(file); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDurations(file)
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []Package
	for _, p := range sortedPaths(s) {
		var names []string
		for name := range s.tests[p] {
			names = append(names, name)
		}
		sort.Strings(names)
		est, startup := d.Estimates(p, names)
		pk := Package{Path: p, Startup: startup}
		for i, name := range names {
			pk.Tests = append(pk.Tests, Test{Name: name, Est: est[i]})
		}
		pkgs = append(pkgs, pk)
	}
	return pkgs
}

type balance struct {
	maxOverMean float64 // the slowest part's true time over the mean part's
	longest     float64 // the longest test's true time and its start-up, over the mean part's
}

// measure shards pkgs n ways and times each part with the suite's true durations: its
// tests plus one start-up per package it runs.
func measure(s suite, pkgs []Package, n int) balance {
	loads := make([]time.Duration, n)
	var longest time.Duration
	for i := 1; i <= n; i++ {
		for _, p := range Shard(pkgs, i, n) {
			loads[i-1] += s.startup[p.Path]
			for _, tt := range p.Tests {
				d := s.tests[p.Path][tt.Name]
				loads[i-1] += d
				longest = max(longest, d+s.startup[p.Path])
			}
		}
	}
	var sum time.Duration
	for _, l := range loads {
		sum += l
	}
	mean := float64(sum) / float64(n)
	return balance{maxOverMean: float64(slices.Max(loads)) / mean, longest: float64(longest) / mean}
}

// naive is what a split that ignores durations gives: every n-th test in name order, one
// start-up per package a part runs.
func naive(s suite, n int) float64 {
	loads := make([]time.Duration, n)
	seen := make([]map[string]bool, n)
	for i := range seen {
		seen[i] = map[string]bool{}
	}
	k := 0
	var sum time.Duration
	for _, p := range sortedPaths(s) {
		var names []string
		for name := range s.tests[p] {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			part := k % n
			k++
			if !seen[part][p] {
				seen[part][p] = true
				loads[part] += s.startup[p]
				sum += s.startup[p]
			}
			loads[part] += s.tests[p][name]
			sum += s.tests[p][name]
		}
	}
	return float64(slices.Max(loads)) / (float64(sum) / float64(n))
}

func quantiles(v []float64) string {
	slices.Sort(v)
	return fmt.Sprintf("median %.4f, p95 %.4f, worst %.4f", v[len(v)/2], v[len(v)*95/100], v[len(v)-1])
}

// TestShardBalanceHeavyTail is the balance figure of bench/SHARD.md: 300 tests whose
// durations a durations file recorded, heavy-tailed, split into 4 shards: the slowest
// shard's time must be within 10% of the mean shard's, for each of 200 suites per tail
// (except those where one test and its process start-up alone take longer than that,
// which no split can help). It
// also reports, without a bound, the balance when a tenth of the tests are new (no
// record: the median estimate) and a split in name order that ignores durations.
func TestShardBalanceHeavyTail(t *testing.T) {
	const n = 4
	for _, alpha := range []float64{1.5, 1.2} {
		var known, fresh, byName []float64
		left := 0
		for seed := range uint64(200) {
			s := heavyTailSuite(seed, alpha)
			b := measure(s, plan(t, s, func(string, string) bool { return false }), n)
			if b.longest > 1.10 {
				left++
				continue
			}
			known = append(known, b.maxOverMean)
			if b.maxOverMean > 1.10 {
				t.Errorf("alpha %.1f seed %d: slowest shard %.1f%% over the mean", alpha, seed, 100*(b.maxOverMean-1))
			}
			r := rand.New(rand.NewPCG(seed, 7))
			unknown := map[string]bool{}
			for _, p := range sortedPaths(s) {
				for _, name := range sortedNames(s, p) {
					unknown[p+"."+name] = r.IntN(10) == 0
				}
			}
			fresh = append(fresh, measure(s, plan(t, s, func(p, name string) bool { return unknown[p+"."+name] }), n).maxOverMean)
			byName = append(byName, naive(s, n))
		}
		t.Logf("pareto alpha=%.1f, 300 tests, 15 packages, %d shards, %d suites (%d left out: one test over 110%% of a mean shard by itself), slowest/mean:", alpha, n, len(known), left)
		t.Logf("  all recorded:            %s", quantiles(known))
		t.Logf("  a tenth new (median):    %s", quantiles(fresh))
		t.Logf("  name order, no durations: %s", quantiles(byName))
	}
}

func BenchmarkShard(b *testing.B) {
	s := heavyTailSuite(1, 1.5)
	pkgs := plan(b, s, func(string, string) bool { return false })
	b.ReportAllocs()
	for b.Loop() {
		for i := 1; i <= 4; i++ {
			Shard(pkgs, i, 4)
		}
	}
	b.ReportMetric(measure(s, pkgs, 4).maxOverMean, "slowest/mean")
}
