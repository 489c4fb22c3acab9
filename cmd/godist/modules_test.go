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
