package sshdtest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/internal/child"
)

func TestEcho(t *testing.T) {
	s := Start(t, Options{})
	if got := Output(t, s.SSH("echo", "hi")); got != "hi\n" {
		t.Fatalf("ssh %s echo hi = %q, want %q", s.Alias, got, "hi\n")
	}
	// Sessions get the temporary remote home, not the real one.
	if got := strings.TrimSpace(Output(t, s.SSH("echo $HOME $XDG_CACHE_HOME"))); got != s.RemoteHome+" "+s.RemoteHome+"/.cache" {
		t.Fatalf("remote HOME XDG_CACHE_HOME = %q, want %s", got, s.RemoteHome)
	}
	if s.HostKeyFingerprint == "" || !strings.HasPrefix(s.HostKeyFingerprint, "SHA256:") {
		t.Fatalf("HostKeyFingerprint = %q", s.HostKeyFingerprint)
	}
}

func TestChroot(t *testing.T) {
	s := Start(t, Options{Chroot: true})
	if got := Output(t, s.SSH("echo", "hi")); got != "hi\n" {
		t.Fatalf("ssh %s echo hi = %q, want %q", s.Alias, got, "hi\n")
	}
	got := Output(t, s.SSH("ls /lib* /usr 2>&1; busybox uname -m"))
	t.Logf("ls /lib* /usr 2>&1; busybox uname -m:\n%s", got)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "No such file") || !strings.Contains(lines[1], "No such file") || lines[2] == "" {
		t.Errorf("want two No such file errors and a machine name, got %q", got)
	}
	if got, want := Output(t, s.SSH("echo $HOME; pwd")), s.RemoteHome+"\n"+s.RemoteHome+"\n"; got != want {
		t.Errorf("HOME, pwd = %q; want %q", got, want)
	}
	if got := strings.Join(strings.Fields(Output(t, s.SSH("ls /"))), " "); got != "bin dev home tmp" {
		t.Errorf("ls / = %q, want %q", got, "bin dev home tmp")
	}
	if got := Output(t, s.SSH("id -u")); got == "0\n" {
		t.Errorf("chrooted session runs as root")
	}
	// Nothing resembling a libc or a dynamic loader anywhere in the chroot.
	out := Output(t, exec.Command("find", s.Chroot, "-name", "*.so*", "-o", "-name", "ld-*"))
	if strings.TrimSpace(out) != "" {
		t.Errorf("chroot holds shared libraries:\n%s", out)
	}
	// The home directory and /tmp are writable, /dev/null works.
	got = Output(t, s.SSH("echo x > ~/f && cat ~/f && echo y > /tmp/g && cat /tmp/g && echo z > /dev/null && echo ok"))
	if got != "x\ny\nok\n" {
		t.Errorf("writing in the chroot: %q", got)
	}
}

func TestCleanupLeavesNothing(t *testing.T) {
	var s *Server
	var chroot string
	t.Run("server", func(t *testing.T) {
		s = Start(t, Options{Chroot: true})
		chroot = s.Chroot
		// A session that would outlive its client.
		cmd := s.SSH("sleep 300")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		deadline := time.Now().Add(10 * time.Second)
		for len(s.Children()) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("no session processes appeared")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if !child.Gone(s.PID()) {
		t.Errorf("sshd %d still running after cleanup", s.PID())
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after cleanup", s.dir)
	}
	if _, err := os.Stat(chroot); !os.IsNotExist(err) {
		t.Errorf("%s still exists after cleanup", chroot)
	}
	out, _ := exec.Command("pgrep", "-u", TestUser, "-f", "sleep 300").Output()
	if len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("session processes left behind: %s", out)
	}
}
