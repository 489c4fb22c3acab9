package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ShardSpecError is returned by ParseShard for a spec it does not accept.
type ShardSpecError struct {
	Spec string
}

func (e *ShardSpecError) Error() string {
	return fmt.Sprintf("scheduler: shard %q: want I/N, whole numbers with 1 <= I <= N (such as 1/4, or $CI_NODE_INDEX/$CI_NODE_TOTAL)", e.Spec)
}

// ParseShard parses a shard spec "I/N": the I-th of N parts, counted from 1 (1/4 … 4/4), as
// GitLab's CI_NODE_INDEX/CI_NODE_TOTAL count them. (CircleCI's CIRCLE_NODE_INDEX counts from
// 0: pass $((CIRCLE_NODE_INDEX+1))/$CIRCLE_NODE_TOTAL.) Spaces around the numbers are
// allowed; anything else fails with a *ShardSpecError.
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, &ShardSpecError{Spec: s}
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, &ShardSpecError{Spec: s}
	}
	return i, n, nil
}

// shardUnit is what Shard places on one shard: a single top-level test of a package large
// enough to split, or a whole package (one listed as Whole, or one whose tests together are
// estimated under SplitThreshold).
type shardUnit struct {
	pkg   int    // index into the sorted packages
	test  string // "" for a whole package
	tests []int  // indexes into the package's Tests, for a package kept together
	cost  time.Duration
}

// Shard returns part i (counted from 1, as ParseShard gives it) of n parts of pkgs: the
// packages and top-level tests that CI job i of n runs. Calling it with the same pkgs for
// every i in 1..n places every test and every Whole package in exactly one part.
//
// The parts are balanced by estimated duration with the longest-processing-time rule:
// units go out longest first (ties by package path, then test name), each to the part
// where it would end earliest (ties to the part holding fewer units, then the lowest
// index). A unit is one top-level test, except that a package whose tests add up to less
// than SplitThreshold stays together, as the Plan keeps it in one process (some suites
// depend on go test's in-order run of a package), and so does a Whole package. A part
// pays a package's Startup once for the first of its tests it gets.
//
// Estimates are Test.Est as given: the runner fills them from Durations.Estimates, which
// gives a test with no record the median. A Whole package weighs its Startup, or the median
// test estimate of pkgs when that is more; Durations.PackageEstimate is a better Startup
// for such a package (it cannot be listed, so it runs as one process).
//
// The result is deterministic for a given pkgs, whatever their order. Each returned
// Package keeps its Tests in the order pkgs had them; packages with no work in part i are
// left out; a path listed twice counts once. Shard panics unless 1 <= i <= n.
func Shard(pkgs []Package, i, n int) []Package {
	if n < 1 || i < 1 || i > n {
		panic(fmt.Sprintf("scheduler.Shard: part %d of %d", i, n))
	}
	var sorted []Package
	seen := map[string]bool{}
	for _, p := range pkgs {
		if !seen[p.Path] { // a path listed twice is taken once
			seen[p.Path] = true
			sorted = append(sorted, p)
		}
	}
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].Path < sorted[b].Path })

	median := medianEstimate(sorted)
	var units []shardUnit
	for pi, p := range sorted {
		if p.Whole {
			units = append(units, shardUnit{pkg: pi, cost: max(p.Startup, median)})
			continue
		}
		if len(p.Tests) == 0 {
			continue
		}
		var total time.Duration
		for _, t := range p.Tests {
			total += t.Est
		}
		if total < SplitThreshold || p.NoSplit {
			u := shardUnit{pkg: pi, cost: total + p.Startup}
			for ti := range p.Tests {
				u.tests = append(u.tests, ti)
			}
			units = append(units, u)
			continue
		}
		for _, t := range p.Tests {
			units = append(units, shardUnit{pkg: pi, test: t.Name, cost: t.Est})
		}
	}
	sort.SliceStable(units, func(a, b int) bool {
		ua, ub := units[a], units[b]
		if ua.cost != ub.cost {
			return ua.cost > ub.cost
		}
		if ua.pkg != ub.pkg {
			return ua.pkg < ub.pkg
		}
		return ua.test < ub.test
	})

	load := make([]time.Duration, n)
	count := make([]int, n)
	has := make([]map[int]bool, n) // packages with a single test on each part
	for s := range has {
		has[s] = map[int]bool{}
	}
	mine := map[int]map[string]bool{} // part i's tests, by package; nil map = whole
	for _, u := range units {
		best, bestEnd := -1, time.Duration(0)
		for s := range n {
			end := load[s] + u.cost
			if u.test != "" && !has[s][u.pkg] {
				end += sorted[u.pkg].Startup
			}
			if best < 0 || end < bestEnd || (end == bestEnd && count[s] < count[best]) {
				best, bestEnd = s, end
			}
		}
		load[best] = bestEnd
		count[best]++
		if u.test != "" {
			has[best][u.pkg] = true
		}
		if best != i-1 {
			continue
		}
		switch {
		case u.test != "":
			if mine[u.pkg] == nil {
				mine[u.pkg] = map[string]bool{}
			}
			mine[u.pkg][u.test] = true
		case u.tests != nil:
			if mine[u.pkg] == nil {
				mine[u.pkg] = map[string]bool{}
			}
			for _, ti := range u.tests {
				mine[u.pkg][sorted[u.pkg].Tests[ti].Name] = true
			}
		default:
			mine[u.pkg] = nil
		}
	}

	// Back in the caller's order, each package's tests in theirs.
	var out []Package
	for pi, p := range sorted {
		set, ok := mine[pi]
		if !ok {
			continue
		}
		q := Package{Path: p.Path, Whole: p.Whole, Startup: p.Startup, NoSplit: p.NoSplit, Bench: p.Bench}
		for _, t := range p.Tests {
			if set[t.Name] {
				q.Tests = append(q.Tests, t)
			}
		}
		out = append(out, q)
	}
	order := map[string]int{}
	for k, p := range pkgs {
		if _, ok := order[p.Path]; !ok {
			order[p.Path] = k
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return order[out[a].Path] < order[out[b].Path] })
	return out
}

// medianEstimate is the median of the test estimates in pkgs, or DefaultEstimate when
// there are none.
func medianEstimate(pkgs []Package) time.Duration {
	var all []time.Duration
	for _, p := range pkgs {
		for _, t := range p.Tests {
			all = append(all, t.Est)
		}
	}
	if len(all) == 0 {
		return DefaultEstimate
	}
	slices.Sort(all)
	return all[len(all)/2]
}

// PackageEstimate is the recorded duration of all of pkg's top-level tests together, plus
// its start-up cost: an estimate for running the package as one process (a Whole package
// in Shard). It is 0 when nothing of pkg was recorded.
func (d *Durations) PackageEstimate(pkg string) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	var sum float64
	for _, s := range d.Tests[pkg] {
		sum += s
	}
	return secs(sum + d.Startup[pkg])
}

// SplitDigest is a short digest of everything Shard splits by for n parts: the packages,
// their tests and estimates. Jobs that print the same digest split alike, so together
// they run every test exactly once.
func SplitDigest(pkgs []Package, n int) string {
	sorted := append([]Package(nil), pkgs...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].Path < sorted[b].Path })
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", n)
	for _, p := range sorted {
		fmt.Fprintf(h, "%q %v %v %d %d\n", p.Path, p.Whole, p.NoSplit, p.Startup, len(p.Tests))
		for _, t := range p.Tests {
			fmt.Fprintf(h, "%q %d\n", t.Name, t.Est)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}
