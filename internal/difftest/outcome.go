// Package difftest is godist's differential test harness: it runs `go test -json` and godist
// on the same packages and compares, test by test (subtests included) and package by
// package, the terminal action each of them reports, the packages reported, the build
// failures and the exit status.
//
// A test whose outcome differs between two go test runs is flaky: it is listed apart and
// never counted as a difference. Tests that godist reports and go test never reached, in a
// package whose go test process crashed, are expected (godist runs the tests stranded by a
// crash again in a new process) and listed apart too.
//
// The harness reads the streams with its own decoder, not godist's gotest package, so that
// it does not share the bugs of what it checks.
package difftest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"sort"
)

// Terminal actions of a test or package, as go test -json writes them.
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip"
	// None stands for "reported nothing" in a Diff.
	None = "-"
)

// Key names one test: its package's import path and its full name (subtests with "/").
type Key struct {
	Package string
	Test    string
}

func (k Key) String() string { return k.Package + " " + k.Test }

// event is the part of a go test -json line the harness reads.
type event struct {
	ImportPath  string
	Action      string
	Package     string
	Test        string
	Output      string
	FailedBuild string
}

func isTerminal(action string) bool { return action == Pass || action == Fail || action == Skip }

// Outcome is what one go test -json stream reports.
type Outcome struct {
	// Tests holds the terminal actions of each test, in stream order.
	Tests map[Key][]string
	// Started are the tests that had a run event.
	Started map[Key]bool
	// Packages holds the terminal actions of each package.
	Packages map[string][]string
	// Builds are the ImportPaths of build-fail events.
	Builds map[string]bool
	// FailedBuild holds the FailedBuild field of each package's terminal event, where set:
	// the package failed because that did not build.
	FailedBuild map[string]string
	// Completed are the packages whose test binary printed its final "PASS" or "FAIL" line:
	// their process ran to its end. A package that failed without it crashed (a panic, an
	// os.Exit, a timeout) and go test never reached the tests after the crash.
	Completed map[string]bool
	// Malformed counts lines that are not JSON events; FirstMalformed is the first of them.
	Malformed      int
	FirstMalformed string
}

// Parse reads a go test -json stream (or godist's --jsonfile). Lines that are not JSON are
// counted in Malformed, not fatal: go test itself may let one through.
func Parse(stream []byte) *Outcome {
	o := &Outcome{Tests: map[Key][]string{}, Started: map[Key]bool{}, Packages: map[string][]string{},
		Builds: map[string]bool{}, FailedBuild: map[string]string{}, Completed: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			if o.Malformed == 0 {
				o.FirstMalformed = string(line)
			}
			o.Malformed++
			continue
		}
		if e.Action == "build-fail" {
			o.Builds[e.ImportPath] = true
			continue
		}
		if e.Package == "" {
			continue
		}
		if e.Test == "" {
			switch {
			case e.Action == "output" && (e.Output == "PASS\n" || e.Output == "FAIL\n"):
				o.Completed[e.Package] = true
			case isTerminal(e.Action):
				o.Packages[e.Package] = append(o.Packages[e.Package], e.Action)
				if e.FailedBuild != "" {
					o.FailedBuild[e.Package] = e.FailedBuild
				}
			}
			continue
		}
		k := Key{e.Package, e.Test}
		switch {
		case e.Action == "run":
			o.Started[k] = true
		case isTerminal(e.Action):
			o.Tests[k] = append(o.Tests[k], e.Action)
		}
	}
	if err := sc.Err(); err != nil {
		o.Malformed++
		if o.FirstMalformed == "" {
			o.FirstMalformed = err.Error()
		}
	}
	return o
}

// asGoTest completes a go test stream the way the comparison reads it: a test that started
// and has no terminal action was running when its process died, and godist fails such a
// test, so it counts as failed. (godist's own stream gets no such help: every test it
// starts must end exactly once.)
func (o *Outcome) asGoTest() *Outcome {
	for k := range o.Started {
		if len(o.Tests[k]) == 0 {
			o.Tests[k] = []string{Fail}
		}
	}
	return o
}

// test is the last terminal action of a test, None if it has none.
func (o *Outcome) test(k Key) string {
	if a := o.Tests[k]; len(a) > 0 {
		return a[len(a)-1]
	}
	return None
}

// pkg is the last terminal action of a package, None if it has none.
func (o *Outcome) pkg(p string) string {
	if a := o.Packages[p]; len(a) > 0 {
		return a[len(a)-1]
	}
	return None
}

// crashed reports whether p failed without its test binary printing its final PASS/FAIL.
func (o *Outcome) crashed(p string) bool {
	return o.pkg(p) == Fail && !o.Completed[p] && !o.buildFailed(p)
}

// buildFailed reports whether p's package result is a build failure: a build-fail event
// names p or one of p's test variants ("p [p.test]", "p_test [p.test]").
func (o *Outcome) buildFailed(p string) bool {
	if o.FailedBuild[p] != "" {
		return true
	}
	for b := range o.Builds {
		if b == p || b == p+" ["+p+".test]" || b == p+"_test ["+p+".test]" {
			return true
		}
	}
	return false
}

func sortedKeys[M ~map[K]V, K interface{ ~string }, V any](m M) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

func sortedTestKeys[V any](m map[Key]V) []Key {
	keys := make([]Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Package != keys[j].Package {
			return keys[i].Package < keys[j].Package
		}
		return keys[i].Test < keys[j].Test
	})
	return keys
}
