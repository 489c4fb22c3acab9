package gobuild

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godist/godist/gotest"
)

func TestMain(m *testing.M) {
	if ShimRequested() {
		os.Exit(RunShim(os.Args[1:], os.Stdout)) // this test binary as go test -exec's shim
	}
	os.Exit(m.Run())
}

// bothWays runs f once building with go test -c (shim "") and once with go test -exec
// and this test binary as the shim (shim.go), which a first build takes.
func bothWays(t *testing.T, f func(t *testing.T, shim string)) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, shim string }{{"test-c", ""}, {"exec-shim", exe}} {
		t.Run(c.name, func(t *testing.T) { f(t, c.shim) })
	}
}

// ldflagsOf is the -ldflags a Go binary was built with, from its build information.
func ldflagsOf(t *testing.T, bin string) string {
	t.Helper()
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	for _, kv := range info.Settings {
		if kv.Key == "-ldflags" {
			return kv.Value
		}
	}
	return ""
}

func TestExecName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"example.com/foo", "foo"},
		{"example.com/foo/v2", "foo"},
		{"example.com/foo/v10", "foo"},
		{"example.com/foo/v1", "v1"},   // v1 is no major-version suffix
		{"example.com/foo/v0", "v0"},   // nor v0
		{"example.com/foo/v02", "v02"}, // nor a leading zero
		{"example.com/foo/v2x", "v2x"},
		{"v2", "v2"}, // a lone element stays
		{"gopkg.in/yaml.v3", "yaml.v3"},
		{"example.com/foo/v2/internal/bar", "bar"},
		{"example.com/cmd/tool", "tool"},
	} {
		if got := ExecName(c.in); got != c.want {
			t.Errorf("ExecName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// goMod and passTest are the go.mod of the test modules and a passing test to follow a
// package clause.
const (
	goMod    = "module example.com/m\n\ngo 1.21\n"
	passTest = "\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A module whose path ends in /v2, with a package named like its root (internal/foo), two
// packages of one name, a main package and a package of external tests only: every test
// binary is built, under the name go gives it, and none is reported as a build failure.
func TestBuildNamesAndGroupsAsGoDoes(t *testing.T) { bothWays(t, testBuildNamesAndGroups) }

func testBuildNamesAndGroups(t *testing.T, shim string) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":                         "module example.com/foo/v2\n\ngo 1.21\n",
		"foo.go":                         "package foo\n",
		"foo_test.go":                    "package foo\n" + passTest,
		"internal/foo/foo.go":            "package foo\n",
		"internal/foo/foo_test.go":       "package foo\n" + passTest,
		"a/util/util_test.go":            "package util\n" + passTest,
		"b/util/util_test.go":            "package util\n" + passTest,
		"cmd/tool/main.go":               "package main\n\nfunc main() {}\n",
		"cmd/tool/main_test.go":          "package main\n" + passTest,
		"xonly/x_test.go":                "package xonly_test\n" + passTest,
		"v3/v3.go":                       "package v3\n",
		"v3/v3_test.go":                  "package v3\n" + passTest,
		"notests/notests.go":             "package notests\n",
		"broken/broken_test.go":          "package broken\n\nvar x int = \"no\"\n",
		"broken/v4/broken_test.go":       "package v4\n" + passTest,
		"internal/broken/b_test.go":      "package broken\n" + passTest,
		"internal/foo/v2/nested_test.go": "package v2\n" + passTest,
	})
	ctx := context.Background()
	opts := Options{Dir: root, Shim: shim}
	pkgs, err := Resolve(ctx, opts, []string{"./..."})
	if err != nil {
		t.Fatal(err)
	}
	var events []gotest.Event
	outDir := t.TempDir()
	res, err := Build(ctx, opts, pkgs, outDir, func(e gotest.Event) { events = append(events, e) })
	if err != nil {
		t.Fatal(err)
	}
	paths := BinaryPaths(pkgs, outDir)
	for _, b := range res.Binaries {
		if paths[b.Package.ImportPath] != b.Path {
			t.Errorf("%s: built at %s, BinaryPaths says %s", b.Package.ImportPath, b.Path, paths[b.Package.ImportPath])
		}
		// go test -c links with the -ldflags go test gives what it runs; go test -exec is
		// go test's own link, with no -ldflags of ours.
		want := "-s -w"
		if shim != "" {
			want = ""
		}
		if got := ldflagsOf(t, b.Path); got != want {
			t.Errorf("%s: linked with -ldflags %q, want %q", b.Package.ImportPath, got, want)
		}
	}
	built := map[string]string{}
	for _, b := range res.Binaries {
		built[b.Package.ImportPath] = filepath.Base(b.Path)
		if _, err := os.Stat(b.Path); err != nil {
			t.Errorf("%s: %v", b.Package.ImportPath, err)
		}
	}
	for pkg, name := range map[string]string{
		"example.com/foo/v2":                 "foo.test",
		"example.com/foo/v2/internal/foo":    "foo.test",
		"example.com/foo/v2/a/util":          "util.test",
		"example.com/foo/v2/b/util":          "util.test",
		"example.com/foo/v2/cmd/tool":        "tool.test",
		"example.com/foo/v2/xonly":           "xonly.test",
		"example.com/foo/v2/v3":              "v2.test", // the module's own v2 gives way: cmd/go does the same
		"example.com/foo/v2/broken/v4":       "broken.test",
		"example.com/foo/v2/internal/broken": "broken.test",
		"example.com/foo/v2/internal/foo/v2": "foo.test",
	} {
		if built[pkg] != name {
			t.Errorf("%s: built %q, want %q", pkg, built[pkg], name)
		}
	}
	var fails []string
	for _, e := range events {
		if e.Action == gotest.ActionFail {
			fails = append(fails, e.Package)
		}
	}
	if len(fails) != 1 || fails[0] != "example.com/foo/v2/broken" {
		t.Errorf("packages reported failing: %v, want only example.com/foo/v2/broken", fails)
	}
	var out strings.Builder
	for _, e := range events {
		if e.Action == gotest.ActionBuildOutput {
			out.WriteString(e.Output)
		}
	}
	if !strings.Contains(out.String(), "broken_test.go") {
		t.Errorf("the build failure comes without go's output:\n%s", out.String())
	}
}

// A go test -c that fails without naming a package is an error carrying go's message.
func TestBuildErrorNamesTheCause(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":    goMod,
		"m_test.go": "package m\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n",
	})
	ctx := context.Background()
	pkgs, err := Resolve(ctx, Options{Dir: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// -race on a GOARCH without a race runtime concerns no package in particular.
	opts := Options{Dir: root, Race: true, Env: []string{"GOARCH=386"}}
	_, err = Build(ctx, opts, pkgs, t.TempDir(), func(gotest.Event) {})
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("-race with GOARCH=386: err %v (%T), want a *BuildError", err, err)
	}
	if !strings.Contains(be.Msg, "race") || strings.Contains(be.Error(), "\n") {
		t.Errorf("error %q does not say in one line that -race is the problem", be.Error())
	}
}

func TestNoSplitDirective(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":      goMod,
		"a/a_test.go": "package a\n\n//godist:nosplit\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n",
		"b/b_test.go": "package b\n\n// mentions //godist:nosplit in prose only\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n",
		"c/c_test.go": "package c_test\n\n\t//godist:nosplit\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n",
	})
	pkgs, err := Resolve(context.Background(), Options{Dir: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range pkgs {
		got[p.ImportPath] = p.NoSplit
	}
	want := map[string]bool{"example.com/m/a": true, "example.com/m/b": false, "example.com/m/c": true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: NoSplit %v, want %v", k, got[k], v)
		}
	}
}

func TestBinaryPathsAsBuildPutsThem(t *testing.T) {
	pkgs := []Package{{ImportPath: "a/util", HasTests: true}, {ImportPath: "b/util", HasTests: true}, {ImportPath: "m/v2", HasTests: true}, {ImportPath: "x", HasTests: false}}
	got := BinaryPaths(pkgs, "/d")
	want := map[string]string{"a/util": "/d/0/util.test", "b/util": "/d/1/util.test", "m/v2": "/d/0/m.test"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
}

func TestLinkFlagsOmitDebugAsGoTest(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, "-ldflags=-s -w"},
		{[]string{"-trimpath"}, "-trimpath -ldflags=-s -w"},
		{[]string{"-ldflags=-X main.v=1"}, "-ldflags=-X main.v=1 -s -w"},
		{[]string{"-ldflags=-a", "-ldflags=-b"}, "-ldflags=-b -s -w"},
	} {
		if got := strings.Join(linkFlags(c.in), " "); got != c.want {
			t.Errorf("linkFlags(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Packages without test files go to go test -c as go test builds them: one that does not
// build is reported "build failed", as go test -json reports it, not "no test files"; one
// that builds is "no test files"; a package of one name with a tested one builds beside it.
func TestBuildReportsUntestedPackagesAsGoTest(t *testing.T) {
	bothWays(t, testBuildReportsUntestedPackages)
}

func testBuildReportsUntestedPackages(t *testing.T, shim string) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":            goMod,
		"ok/ok_test.go":     "package ok\n" + passTest,
		"plain/plain.go":    "package plain\n",
		"bad/bad.go":        "package bad\n\nvar x int = \"no\"\n",
		"a/util/u_test.go":  "package util\n" + passTest,
		"b/util/util.go":    "package util\n",
		"c/util/util.go":    "package util\n\nfunc f() { undefined() }\n",
		"d/util/u_test.go":  "package util\n" + passTest,
		"d/util/u.go":       "package util\n",
		"usesbad/u_test.go": "package usesbad\n\nimport _ \"example.com/m/bad\"\n" + passTest,
	})
	ctx := context.Background()
	opts := Options{Dir: root, Shim: shim}
	pkgs, err := Resolve(ctx, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	res, err := Build(ctx, opts, pkgs, t.TempDir(), func(e gotest.Event) {
		if e.Package != "" && e.Test == "" && (e.Action == gotest.ActionPass || e.Action == gotest.ActionFail || e.Action == gotest.ActionSkip) {
			got[e.Package] += e.Action
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range res.Binaries {
		got[b.Package.ImportPath] += "built"
	}
	// go test itself is the oracle.
	cmd := exec.Command("go", "test", "-count=1", "-json", "./...")
	cmd.Dir = root
	out, _ := cmd.Output()
	want := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		var e gotest.Event
		if json.Unmarshal([]byte(line), &e) != nil || e.Package == "" || e.Test != "" {
			continue
		}
		switch e.Action {
		case gotest.ActionSkip, gotest.ActionFail:
			want[e.Package] = e.Action
		case gotest.ActionPass:
			want[e.Package] = "built" // it ran, so it built
		}
	}
	if len(want) != 8 {
		t.Fatalf("go test -json reported %d packages, want 8: %v\n%s", len(want), want, out)
	}
	for pkg, w := range want {
		if got[pkg] != w {
			t.Errorf("%s: Build gave %q, go test %q", pkg, got[pkg], w)
		}
	}
}

// A go test -c started early on the patterns is taken over by Build: every binary is
// built once, each given to Ready once, with the events of a Build of its own.
func TestEarlyBuildIsTakenOver(t *testing.T) { bothWays(t, testEarlyBuildIsTakenOver) }

func testEarlyBuildIsTakenOver(t *testing.T, shim string) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":          goMod,
		"a/a_test.go":     "package a\n" + passTest,
		"b/b_test.go":     "package b\n" + passTest,
		"plain/plain.go":  "package plain\n",
		"bad/bad_test.go": "package bad\n\nvar x int = \"no\"\n",
	})
	ctx := context.Background()
	outDir := t.TempDir()
	early, err := StartEarly(ctx, Options{Dir: root, Shim: shim}, nil, outDir)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := Resolve(ctx, Options{Dir: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ready := map[string]int{}
	opts := Options{Dir: root, Early: early, Shim: shim, Ready: func(b Binary) { ready[b.Package.ImportPath]++ }}
	terminal := map[string]string{}
	res, err := Build(ctx, opts, pkgs, outDir, func(e gotest.Event) {
		if e.Package != "" && e.Test == "" && (e.Action == gotest.ActionFail || e.Action == gotest.ActionSkip) {
			terminal[e.Package] += e.Action
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Binaries) != 2 || ready["example.com/m/a"] != 1 || ready["example.com/m/b"] != 1 || len(ready) != 2 {
		t.Errorf("binaries %v, Ready calls %v: want a and b, once each", res.Binaries, ready)
	}
	if terminal["example.com/m/plain"] != "skip" || terminal["example.com/m/bad"] != "fail" || len(terminal) != 2 {
		t.Errorf("package results %v: want plain skip (no test files), bad fail", terminal)
	}
	early.Abandon() // after Build: nothing to stop, and no hang
	for _, work := range []string{filepath.Join(outDir, "0", ".work"), filepath.Join(outDir, ".work")} {
		if _, err := os.Stat(work); !os.IsNotExist(err) {
			t.Errorf("go's work directory is left: %v", err)
		}
	}
}

// An early go test -c on packages two of which share a binary name is refused by go;
// Build stops it and builds the packages as it would have, in groups, without go's
// complaint among the events.
func TestEarlyBuildStoppedWhenNamesClash(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":           goMod,
		"a/util/u_test.go": "package util\n" + passTest,
		"b/util/u_test.go": "package util\n" + passTest,
	})
	ctx := context.Background()
	outDir := t.TempDir()
	early, err := StartEarly(ctx, Options{Dir: root}, []string{"./..."}, outDir)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := Resolve(ctx, Options{Dir: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs []gotest.Event
	res, err := Build(ctx, Options{Dir: root, Early: early}, pkgs, outDir, func(e gotest.Event) { evs = append(evs, e) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Binaries) != 2 {
		t.Errorf("binaries %v, want both util.test", res.Binaries)
	}
	for _, e := range evs {
		if e.Action == gotest.ActionFail || strings.Contains(e.Output, "cannot write") {
			t.Errorf("event %+v: the early command's refusal reached the run", e)
		}
	}
}

// A package that stops building takes down the binaries of the packages that import it,
// though go test -c names only it: the binary an earlier build left for an importer is not
// kept as if up to date, whether the broken package has tests of its own or not.
func TestBuildDropsBinariesOfImportersOfABrokenPackage(t *testing.T) {
	bothWays(t, testBuildDropsBinariesOfImporters)
}

// With a shim, the first build is go test -exec's and the second go test -c's, over the
// binaries the first left.
func testBuildDropsBinariesOfImporters(t *testing.T, shim string) {
	for _, tested := range []bool{false, true} {
		root := t.TempDir()
		files := map[string]string{
			"go.mod":      goMod,
			"lib/lib.go":  "package lib\n\nfunc V() int { return 1 }\n",
			"a/a_test.go": "package a\n\nimport (\n\t\"testing\"\n\n\t\"example.com/m/lib\"\n)\n\nfunc TestA(t *testing.T) { _ = lib.V() }\n",
			"b/b_test.go": "package b\n" + passTest,
		}
		if tested {
			files["lib/lib_test.go"] = "package lib\n" + passTest
		}
		writeFiles(t, root, files)
		ctx := context.Background()
		opts := Options{Dir: root, Shim: shim}
		pkgs, err := Resolve(ctx, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		outDir := t.TempDir()
		if _, err := Build(ctx, opts, pkgs, outDir, func(gotest.Event) {}); err != nil {
			t.Fatal(err)
		}
		writeFiles(t, root, map[string]string{"lib/lib.go": "package lib\n\nfunc V() int { return undefined }\n"})
		res, err := Build(ctx, opts, pkgs, outDir, func(gotest.Event) {})
		if err != nil {
			t.Fatal(err)
		}
		var built []string
		for _, b := range res.Binaries {
			built = append(built, b.Package.ImportPath)
		}
		if len(built) != 1 || built[0] != "example.com/m/b" {
			t.Errorf("lib with tests %v, broken: binaries %v, want only b's", tested, built)
		}
	}
}
