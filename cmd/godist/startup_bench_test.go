package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/godist/godist/internal/sshdtest"
)

// Start-up benchmarks, side by side in one run (bench/startup.sh prints the ratios):
//   - godist ping --tx ssh=HOST, warm and cold remote cache, against a bare `ssh HOST true`
//     on the same sshd;
//   - 16*popen against one popen.

func benchRun(b *testing.B, env []string, name string, args ...string) {
	b.Helper()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
}

func benchSSHD(b *testing.B) (*sshdtest.Server, []string) {
	sshdtest.Require(b)
	s := sshdtest.Start(b, sshdtest.Options{})
	env := append(os.Environ(), "NO_COLOR=1")
	return s, append(env, s.Env()...)
}

func BenchmarkStartupSSHTrue(b *testing.B) {
	s, _ := benchSSHD(b)
	for i := 0; i < b.N; i++ {
		if out, err := s.SSH("true").CombinedOutput(); err != nil {
			b.Fatalf("ssh true: %v\n%s", err, out)
		}
	}
}

func BenchmarkStartupPingSSHWarm(b *testing.B) {
	s, env := benchSSHD(b)
	benchRun(b, env, godistBin, "ping", "--tx", "ssh="+s.Alias) // fill the remote cache
	b.ResetTimer()
	benchRun(b, env, godistBin, "ping", "--tx", "ssh="+s.Alias)
}

func BenchmarkStartupPingSSHCold(b *testing.B) {
	s, env := benchSSHD(b)
	cache := filepath.Join(s.RemoteHome, ".cache", "godist")
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.RemoveAll(cache)
		b.StartTimer()
		cmd := exec.Command(godistBin, "ping", "--tx", "ssh="+s.Alias)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ping: %v\n%s", err, out)
		}
	}
}

func BenchmarkStartupPopen1(b *testing.B) {
	benchRun(b, os.Environ(), godistBin, "ping", "--tx", "popen")
}

func BenchmarkStartupPopen16(b *testing.B) {
	benchRun(b, os.Environ(), godistBin, "ping", "--tx", "16*popen")
}
