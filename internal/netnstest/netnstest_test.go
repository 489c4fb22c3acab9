//go:build linux

package netnstest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/sshdtest"
)

// The testbed as the brief draws it: every host answers OpenSSH's ssh from the client
// namespace by its name, h3 only through h1, each with a HOME of its own; h4 has no libc;
// a cut link is cut and a restored one works again; and Close leaves nothing behind.
func TestTestbed(t *testing.T) {
	Require(t)
	var tb *Testbed
	t.Run("up", func(t *testing.T) {
		tb = Start(t, Options{})
		// Nothing of it is in the root namespace: no address, no route in 198.18.0.0/15.
		for _, args := range [][]string{{"-o", "addr", "show"}, {"route", "show", "table", "all"}} {
			out := sshdtest.Output(t, exec.Command("ip", args...))
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, " 198.18.") || strings.Contains(l, " 198.19.") || strings.HasPrefix(l, "198.1") {
					t.Errorf("the root namespace has %q (ip %s)", l, strings.Join(args, " "))
				}
			}
		}
		homes := map[string]string{}
		for _, h := range tb.Hosts {
			got := strings.TrimSpace(sshdtest.Output(t, tb.Command("ssh", "-F", tb.ConfigFile, h.Name, "echo $HOME")))
			if h.Busybox {
				if got != h.Server.RemoteHome {
					t.Errorf("%s: HOME %q, want %q", h.Name, got, h.Server.RemoteHome)
				}
			} else if got != h.Home {
				t.Errorf("%s: HOME %q, want %q", h.Name, got, h.Home)
			}
			if other, dup := homes[h.Home]; dup {
				t.Errorf("%s and %s share HOME %s", h.Name, other, h.Home)
			}
			homes[h.Home] = h.Name
		}
		// h4 is the busybox host: no libc there.
		if out, err := tb.Command("ssh", "-F", tb.ConfigFile, "h4", "ls /lib /usr").CombinedOutput(); err == nil {
			t.Errorf("h4 has /lib or /usr:\n%s", out)
		}
		// h3 is behind h1: the client has no route to it, h1 has.
		h1, h3 := tb.Host("h1"), tb.Host("h3")
		_, err := Dialer(tb.Client)("tcp", h3.Addr+":22", 2*time.Second)
		if !errors.Is(err, syscall.ENETUNREACH) {
			t.Errorf("dialing h3 from the client: %v, want %v", err, syscall.ENETUNREACH)
		}
		c, err := Dialer(h1.NS)("tcp", h3.Addr+":22", 2*time.Second)
		if err != nil {
			t.Errorf("dialing h3 from h1: %v", err)
		} else {
			c.Close()
		}
		// From h1's own HOME (a via= hop's), h3 is reached directly.
		cmd := exec.Command("ip", "netns", "exec", h1.NS, "ssh", "-F", h1.Home+"/.ssh/config", "h3", "echo $SSH_CONNECTION")
		if f := strings.Fields(sshdtest.Output(t, cmd)); len(f) != 4 || f[2] != h3.Addr || f[0] != behindNet(2)+"1" {
			t.Errorf("h3 from h1: SSH_CONNECTION %q, want from %s1 to %s", f, behindNet(2), h3.Addr)
		}

		// A cut link: nothing gets through until it is restored.
		h2 := tb.Host("h2")
		if err := h2.Cut(); err != nil {
			t.Fatal(err)
		}
		if c, err := Dialer(tb.Client)("tcp", h2.Addr+":22", 300*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("h2 answered through a cut link")
		}
		if err := h2.Restore(); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(sshdtest.Output(t, tb.Command("ssh", "-F", tb.ConfigFile, "h2", "echo back"))); got != "back" {
			t.Errorf("after Restore: %q", got)
		}

		// A rate limit goes on both ends; a delay needs netem.
		if err := h2.Shape(Shape{Rate: "100mbit"}); err != nil {
			t.Fatal(err)
		}
		for _, end := range [][2]string{{h2.farNS, h2.farDev}, {h2.NS, h2.nearDev}} {
			out := sshdtest.Output(t, exec.Command("tc", "-n", end[0], "qdisc", "show", "dev", end[1], "root"))
			if !strings.Contains(out, "100Mbit") {
				t.Errorf("qdisc on %s in %s: %q, want a 100Mbit rate", end[1], end[0], out)
			}
		}
		err = h2.Shape(Shape{Delay: 20 * time.Millisecond, Rate: "100mbit"})
		if tb.Netem() && err != nil {
			t.Errorf("Shape with netem: %v", err)
		} else if !tb.Netem() && !errors.Is(err, ErrNoNetem) {
			t.Errorf("Shape with a delay and no netem: %v, want ErrNoNetem", err)
		}
		if err := h2.Unshape(); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(sshdtest.Output(t, tb.Command("ssh", "-F", tb.ConfigFile, "h2", "echo unshaped"))); got != "unshaped" {
			t.Errorf("after Unshape: %q", got)
		}
	})
	if tb == nil {
		return
	}
	if left, err := ListNamespaces(tb.ID); err != nil || len(left) > 0 {
		t.Errorf("namespaces left after Close: %v %v", left, err)
	}
	for _, pid := range tb.PIDs() {
		if !child.Gone(pid) {
			t.Errorf("sshd %d still running after Close", pid)
		}
	}
	paths := []string{tb.Home}
	for _, h := range tb.Hosts {
		paths = append(paths, h.Home)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there after Close", p)
		}
	}
}

// Bad host lists are refused in one line, before anything is made.
func TestBadHosts(t *testing.T) {
	for _, hs := range [][]HostSpec{
		{{Name: "H1"}},
		{{Name: "h1"}, {Name: "h1"}},
		{{Name: "h3", Behind: "h1"}, {Name: "h1"}},
		{{Name: "h1"}, {Name: "h2", Behind: "h1"}, {Name: "h3", Behind: "h2"}},
		{},
	} {
		if err := CheckHosts(hs); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want one line", hs, err)
		}
	}
	if err := CheckHosts(DefaultHosts); err != nil {
		t.Errorf("DefaultHosts: %v", err)
	}
}

// Relay links do what netem would: a delay each way (a TCP connect takes at least the
// round trip), a rate (a transfer takes at least its size over the rate), a total loss (a
// frozen link), and a cut; and they carry ssh as a veth pair does.
func TestRelayLinks(t *testing.T) {
	Require(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		unavailable(t, "relay links need /dev/net/tun: "+err.Error())
	}
	tb := Start(t, Options{Hosts: []HostSpec{{Name: "h1"}, {Name: "h2", Behind: "h1"}}, RelayLinks: true})
	h1, h2 := tb.Host("h1"), tb.Host("h2")
	connect := func(ns, addr string) time.Duration {
		t.Helper()
		start := time.Now()
		c, err := Dialer(ns)("tcp", addr+":22", 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s from %s: %v", addr, ns, err)
		}
		d := time.Since(start)
		c.Close()
		return d
	}
	if err := h1.Shape(Shape{Delay: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if d := connect(tb.Client, h1.Addr); d < 40*time.Millisecond {
		t.Errorf("connect over a link with 20ms each way took %v, want at least 40ms", d)
	}
	// h2 is behind h1: both links' delays add up, the ProxyJump session crosses them.
	if err := h2.Shape(Shape{Delay: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if d := connect(h1.NS, h2.Addr); d < 20*time.Millisecond {
		t.Errorf("connect over a link with 10ms each way took %v, want at least 20ms", d)
	}
	if got := strings.TrimSpace(sshdtest.Output(t, tb.Command("ssh", "-F", tb.ConfigFile, "h2", "echo far"))); got != "far" {
		t.Errorf("ssh h2 through h1: %q", got)
	}
	// 1 MB at 10 Mbit/s: at least 0.8 s.
	if err := h1.Shape(Shape{Rate: "10mbit"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := sshdtest.Output(t, tb.Command("ssh", "-F", tb.ConfigFile, "h1", "head -c 1000000 /dev/zero"))
	if d := time.Since(start); len(out) != 1000000 || d < 800*time.Millisecond {
		t.Errorf("1 MB at 10mbit: %d bytes in %v, want 1000000 in at least 800ms", len(out), d)
	}
	// Frozen, then cut: nothing gets through.
	if err := h1.Shape(Shape{Loss: 100}); err != nil {
		t.Fatal(err)
	}
	if c, err := Dialer(tb.Client)("tcp", h1.Addr+":22", 300*time.Millisecond); err == nil {
		c.Close()
		t.Errorf("h1 answered through a frozen link")
	}
	if err := h1.Unshape(); err != nil {
		t.Fatal(err)
	}
	if err := h1.Cut(); err != nil {
		t.Fatal(err)
	}
	if c, err := Dialer(tb.Client)("tcp", h1.Addr+":22", 300*time.Millisecond); err == nil {
		c.Close()
		t.Errorf("h1 answered through a cut link")
	}
	if err := h1.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(sshdtest.Output(t, tb.Command("ssh", "-F", tb.ConfigFile, "h1", "echo back"))); got != "back" {
		t.Errorf("after Restore: %q", got)
	}
	if err := h1.Shape(Shape{Rate: "fast"}); err == nil {
		t.Errorf("Shape with rate %q: no error", "fast")
	}
}
