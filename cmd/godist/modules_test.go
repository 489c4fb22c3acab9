package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Public modules, fetched through the module proxy, whose test suites must give the same
// per-test results under godist -n 2 as under go test.
var publicModules = []string{
	"github.com/google/uuid@v1.6.0",
	"github.com/pkg/errors@v0.9.1",
	"github.com/spf13/pflag@v1.0.9",
}

func TestPublicModulesSameAsGoTest(t *testing.T) {
	for _, mod := range publicModules {
		t.Run(mod, func(t *testing.T) {
			dir := fetchModule(t, mod)
			want := goTestJSON(t, dir, "./...")
			if len(want.tests) == 0 {
				t.Fatalf("go test reported no tests in %s", mod)
			}
			got, output, _ := godistJSON(t, dir, "-n", "2", "./...")
			compareOutcomes(t, want, got, nil)
			if t.Failed() {
				t.Logf("godist said:\n%s", output)
			}
		})
	}
}

// fetchModule downloads mod through the module proxy and returns a writable copy of it
// that is its own main module.
func fetchModule(t *testing.T, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v (the module proxy must be reachable)", mod, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %s", mod, out)
	}
	dst := filepath.Join(t.TempDir(), "mod")
	if err := os.CopyFS(dst, os.DirFS(info.Dir)); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			mode := os.FileMode(0o644)
			if d.IsDir() {
				mode = 0o755
			}
			os.Chmod(p, mode)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dst, "go.mod")); err != nil {
		name, _, _ := strings.Cut(mod, "@")
		if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte("module "+name+"\n\ngo 1.16\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = dst
	if out, err := tidy.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy in %s: %v\n%s", mod, err, out)
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
