package gateway

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/xspec"
)

// bootstrapped starts an exec= gateway whose shell runs with cache as its cache directory,
// using this test binary as the worker.
func bootstrapped(t *testing.T, cache, spec string) (*Gateway, error) {
	t.Helper()
	s, err := xspec.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", cache)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Start(ctx, "gw0", s, Options{Binaries: testBinaries(t), Env: []string{workerEnv + "=1"}})
	if g != nil {
		t.Cleanup(func() { g.Close() })
	}
	return g, err
}

// testBinaries serves this test binary as the linux/amd64 worker.
func testBinaries(t *testing.T) *Binaries {
	exe, _ := os.Executable()
	bins := NewBinaries(exe, t.TempDir())
	bins.byPlat = map[string]*platformBinary{}
	b, err := describe(exe, "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	pb := &platformBinary{bin: b}
	pb.once.Do(func() {})
	bins.byPlat["linux/amd64"] = pb
	return bins
}

func TestBootstrapShipsOnceThenNothing(t *testing.T) {
	cache := t.TempDir()
	g, err := bootstrapped(t, cache, "exec=sh")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(mustExe(t))
	if g.Shipped != st.Size() {
		t.Errorf("cold cache: shipped %d bytes, want the whole binary (%d)", g.Shipped, st.Size())
	}
	var got string
	if err := callFn(t, g, "echo", "through the bootstrap", &got); err != nil || got != "through the bootstrap" {
		t.Fatalf("echo after bootstrap: %q, %v", got, err)
	}
	g.Close()
	g2, err := bootstrapped(t, cache, "exec=sh//chdir="+t.TempDir()+"/made//env:A=b c")
	if err != nil {
		t.Fatal(err)
	}
	if g2.Shipped != 0 {
		t.Errorf("warm cache: shipped %d bytes, want 0", g2.Shipped)
	}
	if !strings.HasSuffix(g2.Info.Cwd, "/made") {
		t.Errorf("chdir: cwd %q", g2.Info.Cwd)
	}
	var a string
	if err := callFn(t, g2, "getenv", "A", &a); err != nil || a != "b c" {
		t.Errorf("env:A reached the worker as %q, %v", a, err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "godist", "*"))
	if len(files) != 1 || !strings.Contains(files[0], "godist-") {
		t.Errorf("cache holds %v, want exactly the worker binary (no temporary files)", files)
	}
}

func mustExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// fakeTools puts scripts named like tools first on the shell's PATH.
func fakeTools(t *testing.T, tools map[string]string) string {
	dir := t.TempDir()
	for name, body := range tools {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBootstrapRefusals(t *testing.T) {
	cases := []struct {
		name  string
		tools map[string]string
		want  string
	}{
		{"unknown platform", map[string]string{"uname": "echo Plan9 mips"}, `uname -sm says "Plan9 mips"`},
		{"corrupted transfer", map[string]string{"sha256sum": "echo 0000 \"$1\""}, "checksum"},
		{"read-only cache", map[string]string{"mkdir": "exit 1"}, "cannot write"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := fakeTools(t, c.tools)
			cache := t.TempDir()
			_, err := bootstrapped(t, cache, "exec=PATH="+dir+":$PATH sh")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			left, _ := filepath.Glob(filepath.Join(cache, "godist", "*"))
			if len(left) != 0 {
				t.Errorf("a failed bootstrap left %v in the cache", left)
			}
		})
	}
}

func TestBootstrapCancel(t *testing.T) {
	s, _ := xspec.Parse("exec=sleep 60")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Start(ctx, "gw0", s, Options{Binaries: testBinaries(t)}); err == nil {
		t.Fatal("a command that never answers started")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("cancel did not unblock the bootstrap")
	}
}

func TestPlatformOf(t *testing.T) {
	for uname, want := range map[string]string{"Linux x86_64": "linux/amd64", "Linux aarch64": "linux/arm64",
		"Darwin arm64": "darwin/arm64", "Linux i686": "linux/386", "Linux armv7l": "linux/arm"} {
		goos, goarch, err := platformOf(uname)
		if err != nil || goos+"/"+goarch != want {
			t.Errorf("%q: %s/%s, %v; want %s", uname, goos, goarch, err, want)
		}
		if got := unameOf(goos, goarch); got != uname {
			t.Errorf("unameOf(%s) = %q, want %q", want, got, uname)
		}
	}
}
