package gateway

import (
	"context"
	"debug/elf"
	"debug/macho"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Workers for darwin and freebsd hosts are cross-built from godist's source with the local
// Go toolchain, as the one for linux/386 is. The builds are not run here: only that they
// build, and are executables of the platform they are for.
func TestCrossBuildWorkers(t *testing.T) {
	if _, err := os.Stat(filepath.Join(goroot(t), "bin", "go")); err != nil {
		t.Skip("no Go toolchain")
	}
	if testing.Short() {
		t.Skip("-short: two cross-builds of godist take a minute with a cold build cache")
	}
	if sourceDir() == "" {
		t.Skip("no godist source next to this test binary (built with -trimpath?)")
	}
	t.Setenv("PATH", filepath.Join(goroot(t), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bins := NewBinaries(exe, t.TempDir())
	for _, plat := range []struct {
		goos, goarch string
		check        func(path string) error
	}{
		{"darwin", "arm64", machO(macho.CpuArm64)},
		{"freebsd", "amd64", elfFor(elf.ELFOSABI_FREEBSD, elf.EM_X86_64)},
	} {
		t.Run(plat.goos+"_"+plat.goarch, func(t *testing.T) {
			t.Setenv("GODIST_WORKER_"+strings.ToUpper(plat.goos)+"_"+strings.ToUpper(plat.goarch), "")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			start := time.Now()
			b, err := bins.For(ctx, plat.goos, plat.goarch)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s/%s worker built in %v", plat.goos, plat.goarch, time.Since(start).Round(time.Millisecond))
			if b.GOOS != plat.goos || b.GOARCH != plat.goarch || b.Size == 0 || len(b.Hash) != 64 {
				t.Errorf("binary %+v", b)
			}
			if err := plat.check(b.Path); err != nil {
				t.Errorf("%s: %v", b.Path, err)
			}
			if !isStatic(b.Path) {
				t.Errorf("%s is not static: a host of its platform would not serve it as itself", b.Path)
			}
		})
	}
}

func machO(cpu macho.Cpu) func(string) error {
	return func(path string) error {
		f, err := macho.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if f.Cpu != cpu || f.Type != macho.TypeExec {
			return &platformMismatch{got: f.Cpu.String() + " " + f.Type.String(), want: cpu.String() + " executable"}
		}
		return nil
	}
}

func elfFor(abi elf.OSABI, machine elf.Machine) func(string) error {
	return func(path string) error {
		f, err := elf.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if f.OSABI != abi || f.Machine != machine || f.Type != elf.ET_EXEC {
			return &platformMismatch{got: f.OSABI.String() + " " + f.Machine.String() + " " + f.Type.String(),
				want: abi.String() + " " + machine.String() + " ET_EXEC"}
		}
		return nil
	}
}

type platformMismatch struct{ got, want string }

func (e *platformMismatch) Error() string { return "is " + e.got + ", want " + e.want }

// goroot is the GOROOT of the go command on PATH ("" if there is none).
func goroot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
