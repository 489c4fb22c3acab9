package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/internal/difftest"
)

// A few fast public modules of the differential harness (internal/difftest; all of them:
// bash bench/difftest.sh), fetched through the module proxy, whose test suites must give the
// same results under godist -n 2 as under go test: test by test, package by package, build
// failures and exit status. Among them a module path ending in a major version (its root
// package's binary is named as cmd/go names it), a testify suite (nested testing.RunTests
// prints failing inner tests in a package that passes), a module without go.mod some of
// whose tests fail in a copy, and a plain one.
var publicModules = []struct {
	name     string
	packages []string
	flags    []string
}{
	{"github.com/golang-jwt/jwt/v5", nil, nil},
	// Every test of suite/ but TestFailfastSuiteFailFastOn, which runs `go test -race` on its
	// own package: a race build of the suite in every fresh copy, most of this test's time
	// (the whole module is bench/difftest.sh's). Not -skip: the suite's nested RunTests
	// match every name, so a -skip pattern would skip all of their tests.
	{"github.com/stretchr/testify", []string{"./suite"}, []string{"-run", "^(" + strings.Join([]string{
		"TestPassedReturnsTrueWhenAllTestsPass", "TestPassedReturnsFalseWhenSomeTestFails", "TestPassedReturnsFalseWhenAllTestsFail",
		"TestSuiteRequireTwice", "TestSuiteRecoverPanic", "TestRunSuite", "TestSkippingSuiteSetup", "TestSuiteGetters",
		"TestSuiteLogging", "TestSuiteCallOrder", "TestSuiteWithStats", "TestSuiteWithSkipInSetupAndStats", "TestFailfastSuite",
		"TestSubtestPanic", "TestUnInitializedSuites", "TestSuiteSignatureValidation"}, "|") + ")$"}},
	{"github.com/pkg/errors", nil, nil},
	{"github.com/google/uuid", nil, nil},
}

func TestPublicModulesSameAsGoTest(t *testing.T) {
	for _, pm := range publicModules {
		m, ok := difftest.Lookup(pm.name)
		if !ok {
			t.Fatalf("difftest knows no module %s", pm.name)
		}
		m.Packages, m.Flags = pm.packages, pm.flags
		t.Run(m.Name(), func(t *testing.T) {
			// One run each: these suites are deterministic; the harness's second go test run
			// (which tells flaky tests apart) and second godist run are bench/difftest.sh's.
			cfg := difftest.Config{Godist: godistBin, WorkDir: t.TempDir(), GoTestRuns: 1, GodistRuns: 1, RunTimeout: 3 * time.Minute}
			res, err := difftest.Check(t.Context(), cfg, m)
			if err != nil {
				t.Fatal(err)
			}
			if res.Tests == 0 {
				t.Fatalf("go test reported no tests in %s", m.Name())
			}
			for _, d := range res.Diffs {
				t.Error(d)
			}
			if t.Failed() {
				out, _ := os.ReadFile(res.Godist[0].Output)
				t.Logf("godist said:\n%s", out)
			}
		})
	}
}

// fetchModule downloads mod (path@version) through the module proxy and returns a writable
// copy of it that is its own main module.
func fetchModule(t *testing.T, mod string) string {
	t.Helper()
	path, version, _ := strings.Cut(mod, "@")
	dst := filepath.Join(t.TempDir(), "mod")
	if err := difftest.Prepare(t.Context(), difftest.Module{Path: path, Version: version}, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Coverage merged from every worker equals what go test -cover reports, per package.
// (A suite whose coverage depends on which tests share a process — sync.Once caches, say,
// as in google/uuid — can differ; pkg/errors' does not.)
func TestCoverMergedAcrossWorkersEqualsGoTest(t *testing.T) {
	dir := fetchModule(t, "github.com/pkg/errors@v0.9.1")
	goOut, _, goCode := runCmd(t, dir, "go", "test", "-json", "-cover", "./...")
	profile := filepath.Join(t.TempDir(), "c.out")
	jf := filepath.Join(t.TempDir(), "run.json")
	_, _, code := runCmd(t, dir, godistBin, "-n", "2", "-cover", "-coverprofile", profile, "--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"), "./...")
	if code != goCode {
		t.Fatalf("exit status %d, go test's %d", code, goCode)
	}
	data, _ := os.ReadFile(jf)
	want, got := coverageLines(goOut), coverageLines(data)
	if len(want) == 0 {
		t.Fatal("go test -cover reported no coverage")
	}
	for pkg, w := range want {
		if got[pkg] != w {
			t.Errorf("%s: go test says %q, godist says %q", pkg, w, got[pkg])
		}
	}
	b, err := os.ReadFile(profile)
	if err != nil || !strings.HasPrefix(string(b), "mode: ") || strings.Count(string(b), "\n") < 10 {
		t.Errorf("-coverprofile wrote %d bytes (%v), want a merged text profile", len(b), err)
	}
}

// coverageLines maps each package to its "coverage: N% of statements" output line.
func coverageLines(stream []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(stream), "\n") {
		var e struct{ Package, Test, Action, Output string }
		if json.Unmarshal([]byte(line), &e) != nil || e.Test != "" || e.Action != "output" {
			continue
		}
		if strings.HasPrefix(e.Output, "coverage: ") {
			m[e.Package] = strings.TrimSpace(e.Output)
		}
	}
	return m
}
