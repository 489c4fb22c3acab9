package gateway

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/xspec"
)

// Every failure to start a gateway says, in one line naming the gateway and its spec,
// what really went wrong — not the error of the step that tripped over it.

// startErr starts spec as gateway gw0 with this test binary as the worker and returns the
// start's error, failing the test if it started or if the error is not one line.
func startErr(t *testing.T, spec string, opts Options) error {
	t.Helper()
	s, err := xspec.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Executable == "" {
		opts.Executable = mustExe(t)
	}
	opts.Env = append(opts.Env, workerEnv+"=1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g, err := Start(ctx, "gw0", s, opts)
	if err == nil {
		g.Close()
		t.Fatalf("%s started", spec)
	}
	var se *StartError
	if !errors.As(err, &se) || se.ID != "gw0" || se.Spec != spec {
		t.Errorf("%s: %v is not a StartError of gw0 and its spec", spec, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: the error is more than one line: %q", spec, err)
	}
	return err
}

func TestStartPopenChdirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	spec := "popen//chdir=" + dir
	err := startErr(t, spec, Options{})
	want := "gateway gw0 (" + spec + "): chdir " + dir + ": no such file or directory"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v: not fs.ErrNotExist", err)
	}
}

func TestStartPopenChdirNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := "popen//chdir=" + file
	err := startErr(t, spec, Options{})
	want := "gateway gw0 (" + spec + "): chdir " + file + ": not a directory"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
}

func TestStartPopenChdirNotSearchable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root enters any directory")
	}
	dir := filepath.Join(t.TempDir(), "closed")
	if err := os.Mkdir(dir, 0o600); err != nil {
		t.Fatal(err)
	}
	spec := "popen//chdir=" + dir
	err := startErr(t, spec, Options{})
	want := "gateway gw0 (" + spec + "): chdir " + dir + ": permission denied"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
}

// The one worker of N*popen fails to start: each of its gateways says so under its own id.
func TestStartSharedPopenChdirMissingNamesEachGateway(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	spec, err := xspec.Parse("2*popen//chdir=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	gws, err := xspec.Expand([]*xspec.Spec{spec})
	if err != nil {
		t.Fatal(err)
	}
	grp := NewGroup(Options{Executable: mustExe(t), Env: []string{workerEnv + "=1"}})
	defer grp.Terminate(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, errs := grp.StartAll(ctx, gws)
	for i, err := range errs {
		want := "gateway " + gws[i].ID + " (" + spec.Raw + "): chdir " + dir + ": no such file or directory"
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", gws[i].ID, err, want)
		}
	}
}

// Through a hop the hop's own check answers, and the handshake that then finds no peer
// does not bury it.
func TestStartViaRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	grp := NewGroup(Options{Executable: mustExe(t), Env: []string{workerEnv + "=1"}})
	defer grp.Terminate(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hop, _ := xspec.Parse("popen")
	if _, err := grp.Start(ctx, "hop", hop); err != nil {
		t.Fatal(err)
	}
	spec, _ := xspec.Parse("popen//via=hop//chdir=" + dir)
	_, err := grp.Start(ctx, "gw1", spec)
	want := "gateway gw1 (" + spec.Raw + "): via hop: chdir " + dir + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %q", err, want)
	}
	// A hop runs popen workers of its own platform only, and says so.
	host := runtime.GOOS + "/" + runtime.GOARCH
	spec, _ = xspec.Parse("popen//via=hop//goos=" + runtime.GOOS + "//goarch=riscv64")
	if runtime.GOARCH == "riscv64" {
		spec, _ = xspec.Parse("popen//via=hop//goos=" + runtime.GOOS + "//goarch=amd64")
	}
	_, err = grp.Start(ctx, "gw2", spec)
	goos, goarch := spec.Platform()
	want = "gateway gw2 (" + spec.Raw + "): via hop: a popen gateway via a hop runs the hop's own platform (" + host +
		"), not " + goos + "/" + goarch + "; drop goos=/goarch= or reach such a host directly"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %q", err, want)
	}
}

// The far side makes a missing chdir=; when it cannot, the bootstrap says why, from there.
func TestStartBootstrapChdirCannotBeMade(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := file + "/sub"
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	// The first start ships the worker and finds the directory wrong after installing it;
	// the second finds the worker in the cache, in the first line, which must check the
	// directory before the shell says HAVE.
	for _, warm := range []bool{false, true} {
		spec := "exec=sh//chdir=" + dir
		err := startErr(t, spec, Options{Binaries: testBinaries(t)})
		prefix := "gateway gw0 (" + spec + "): bootstrap: chdir " + dir + ": "
		if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(strings.ToLower(err.Error()), "not a directory") {
			t.Errorf("warm cache %v: got %q, want %q... saying \"not a directory\"", warm, err, prefix)
		}
	}
}

// foreignArch is a Linux architecture this machine does not run natively, and the ELF
// machine of its binaries.
func foreignArch() (string, elf.Machine) {
	if runtime.GOARCH == "arm64" {
		return "riscv64", elf.EM_RISCV
	}
	return "arm64", elf.EM_AARCH64
}

// writeELFHeader writes an executable that is only the ELF header of a static binary
// for machine: enough for the kernel to decide whether it can run it.
func writeELFHeader(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Ehsize: 64, Phentsize: 56}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, &h)
	if err := os.WriteFile(path, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
}

// withBinary makes bins serve path as its worker for goos/goarch.
func withBinary(t *testing.T, bins *Binaries, goos, goarch, path string) {
	t.Helper()
	b, err := describe(path, goos, goarch)
	if err != nil {
		t.Fatal(err)
	}
	pb := &platformBinary{bin: b}
	pb.once.Do(func() {})
	bins.byPlat[goos+"/"+goarch] = pb
}

// binfmtHandlers lists the binfmt_misc handlers (qemu-user, ...) this kernel has: with
// one for the foreign machine, its binaries might run here.
func binfmtHandlers() []string {
	entries, _ := os.ReadDir("/proc/sys/fs/binfmt_misc")
	var names []string
	for _, e := range entries {
		if e.Name() != "register" && e.Name() != "status" {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestStartPopenForeignArchIsRefusedClearly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ELF and Linux's exec")
	}
	if h := binfmtHandlers(); len(h) > 0 {
		t.Skipf("binfmt_misc handlers %v may run foreign binaries here", h)
	}
	arch, machine := foreignArch()
	bin := filepath.Join(t.TempDir(), "godist-"+arch)
	writeELFHeader(t, bin, machine)
	bins := testBinaries(t)
	withBinary(t, bins, "linux", arch, bin)
	spec := "popen//goarch=" + arch
	err := startErr(t, spec, Options{Binaries: bins})
	host := runtime.GOOS + "/" + runtime.GOARCH
	want := "gateway gw0 (" + spec + "): this machine (" + host + ") cannot run linux/" + arch +
		" binaries (exec format error); reach a linux/" + arch + " host with ssh=, socket= or exec="
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	var pe *PlatformError
	if !errors.As(err, &pe) || pe.Want != "linux/"+arch || pe.Host != host {
		t.Errorf("%v: no PlatformError for linux/%s", err, arch)
	}
}

// Another OS is refused before anything is built for it.
func TestStartPopenForeignOSIsRefusedUpFront(t *testing.T) {
	goos := "windows"
	if runtime.GOOS == "windows" {
		goos = "linux"
	}
	bins := testBinaries(t)
	bins.src = "" // a build would fail with "no godist source"
	spec := "popen//goos=" + goos + "//goarch=amd64"
	err := startErr(t, spec, Options{Binaries: bins})
	host := runtime.GOOS + "/" + runtime.GOARCH
	want := "gateway gw0 (" + spec + "): this machine (" + host + ") cannot run " + goos +
		"/amd64 binaries; reach a " + goos + "/amd64 host with ssh=, socket= or exec="
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
}

// A program that is there but whose interpreter is not: exec's "no such file or
// directory" is not about the program.
func TestStartPopenMissingInterpreter(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "worker")
	if err := os.WriteFile(exe, []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := startErr(t, "popen", Options{Executable: exe})
	want := "gateway gw0 (popen): exec " + exe + ": no such file or directory for its interpreter"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got  %q\nwant %q...", err, want)
	}
}

// brokenSource is a godist module source whose cmd/godist does not compile.
func brokenSource(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "cmd", "godist"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module github.com/godist/godist\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := "package main\n\nfunc main() {\n\tnotDefinedAnywhere()\n}\n"
	if err := os.WriteFile(filepath.Join(src, "cmd", "godist", "main.go"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	return src
}

// A cross-build of the worker that fails says what the compiler said, not the
// "# package" header go build prints first.
func TestStartWorkerCrossBuildFailure(t *testing.T) {
	if _, err := os.Stat(filepath.Join(goroot(t), "bin", "go")); err != nil {
		t.Skip("no Go toolchain")
	}
	t.Setenv("PATH", filepath.Join(goroot(t), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	goarch := "386" // a platform this machine could run: only the build fails
	if runtime.GOARCH == "386" {
		goarch = "amd64"
	}
	bins := testBinaries(t)
	bins.src = brokenSource(t)
	spec := "popen//goarch=" + goarch
	err := startErr(t, spec, Options{Binaries: bins})
	want := "gateway gw0 (" + spec + "): building a linux/" + goarch + " worker: go build: exit status 1: cmd/godist/main.go:4:2: undefined: notDefinedAnywhere"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	var be *BuildError
	if !errors.As(err, &be) || !strings.Contains(be.Output, "# github.com/godist/godist/cmd/godist") {
		t.Errorf("%v: no BuildError with go build's whole output", err)
	}
}

func TestStartWorkerCrossBuildWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	bins := testBinaries(t)
	bins.src = brokenSource(t)
	err := startErr(t, "popen//goarch=386", Options{Binaries: bins})
	want := `gateway gw0 (popen//goarch=386): building a linux/386 worker needs the go command (exec: "go": executable file not found in $PATH); or set GODIST_WORKER_LINUX_386 to a static godist for linux/386`
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
}

func TestFirstCause(t *testing.T) {
	for out, want := range map[string]string{
		"": "",
		"# example.com/x\nx.go:1:2: undefined: y\nx.go:2:2: more\n":                          "x.go:1:2: undefined: y",
		"go: downloading golang.org/x/sys v0.1.0\ngo: golang.org/x/sys@v0.1.0: no network\n": "go: golang.org/x/sys@v0.1.0: no network",
		"# only a header\n":                 "# only a header",
		"\n  go: cannot find main module\n": "go: cannot find main module",
	} {
		if got := firstCause(out); got != want {
			t.Errorf("firstCause(%q) = %q, want %q", out, got, want)
		}
	}
}
