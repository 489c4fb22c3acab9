//go:build linux

package netnstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godist/godist/internal/sshdtest"
)

// NamePrefix starts the name of every namespace a testbed makes ("godist-nt-PID-RAND-h1"):
// a test that checks for leftovers lists the names with its own testbed's ID.
const NamePrefix = "godist-nt-"

// HostSpec describes one host of a testbed.
type HostSpec struct {
	// Name is the host's name in the client's ~/.ssh/config: a lower-case letter, then up to
	// 7 lower-case letters or digits ("h1").
	Name string
	// Busybox makes it a host with only a static busybox: its sessions are chrooted as
	// sshdtest.TestUser (no libc, no Go).
	Busybox bool
	// Behind names an earlier host on the LAN through which alone this one is reached: it
	// gets a link (and a subnet) of its own to that host, and ProxyJump BEHIND in the
	// client's ~/.ssh/config. "" puts the host on the LAN with the client.
	Behind string
}

// DefaultHosts are h1 (the bastion), h2, h3 (reached only through h1) and h4 (busybox).
var DefaultHosts = []HostSpec{{Name: "h1"}, {Name: "h2"}, {Name: "h3", Behind: "h1"}, {Name: "h4", Busybox: true}}

// Options say what testbed to build.
type Options struct {
	// Hosts are the hosts, in order (nil = DefaultHosts). At most 200.
	Hosts []HostSpec
	// RelayLinks gives every host a relay link (relay.go) instead of a veth pair: TAP
	// devices joined by this process, which delays, paces and drops frames as Host.Shape
	// says, where the kernel has no sch_netem. Each frame then costs two copies through
	// this process: for a benchmark, not for tests that do not shape.
	RelayLinks bool
}

// Testbed is a running network of hosts. Its methods are safe for concurrent use.
type Testbed struct {
	// ID is unique to this testbed: NamePrefix, this process's pid and random hex. Its
	// namespaces are ID-c (the client), ID-sw (the switch) and ID-NAME (each host).
	ID     string
	Client string // the client namespace, where the master runs
	Switch string // the namespace holding the LAN's bridge
	// Home is the client's HOME: .ssh/config names every host (HostName, Port, User,
	// IdentityFile, UserKnownHostsFile, ProxyJump for hosts behind a bastion) and
	// .ssh/known_hosts holds every host key.
	Home       string
	ConfigFile string // Home/.ssh/config
	KnownHosts string // Home/.ssh/known_hosts
	Hosts      []*Host

	goEnv      []string // GOCACHE, GOMODCACHE, GOPATH of this machine's go, whatever HOME is
	relayLinks bool

	mu         sync.Mutex
	namespaces []string // made, in order
	servers    []*sshdtest.Server
	relays     []*relay
	netem      bool
	closed     bool
}

// Host is one host of a testbed.
type Host struct {
	Name    string
	NS      string // its namespace
	Addr    string // its address, as its clients dial it
	Busybox bool
	// Behind is the host through which alone this one is reached (nil: on the LAN).
	Behind *Host
	// Server is its sshd, listening on Addr:22 in NS.
	Server *sshdtest.Server
	// Home is the HOME of its sessions as this machine's filesystem has it (inside the chroot
	// for a busybox host); its remote cache is Home/.cache/godist. A host other than a
	// busybox one has in Home/.ssh the same config as the client's, as seen from that host
	// (no ProxyJump to itself), so that a gateway opened from its worker (via=) reaches
	// the others.
	Home string

	tb      *Testbed
	farNS   string // where the far end of its link is: the switch, or its bastion
	farDev  string // the far end's device
	nearDev string // its own end, in NS
	relay   *relay // its relay link (Options.RelayLinks), or nil for a veth pair
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// Available reports whether a testbed can be built here, and if not why.
func Available() (bool, string) {
	if runtime.GOOS != "linux" {
		return false, "network namespaces need Linux"
	}
	if os.Geteuid() != 0 {
		return false, "network namespaces need root"
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, tool + " not found in PATH (install iproute2)"
		}
	}
	if ok, why := sshdtest.Available(); !ok {
		return false, why
	}
	return true, ""
}

// Require skips the test when a testbed cannot be built here, or fails it when
// sshdtest.RequireEnv (GODIST_REQUIRE_SSHD) is set, as CI does.
func Require(t testing.TB) {
	t.Helper()
	if ok, why := Available(); !ok {
		unavailable(t, why)
	}
}

func unavailable(t testing.TB, why string) { sshdtest.Unavailable(t, "netnstest", why) }

// Start builds a testbed as opts say and registers Close with t.Cleanup. It calls Require
// first (and for a busybox host, checks as sshdtest.Start does that a chrooted sshd can
// run here). sshd's logs are shown when the test fails.
func Start(t testing.TB, opts Options) *Testbed {
	t.Helper()
	Require(t)
	specs := opts.Hosts
	if specs == nil {
		specs = DefaultHosts
	}
	for _, s := range specs {
		if s.Busybox {
			if ok, why := sshdtest.ChrootAvailable(); !ok {
				unavailable(t, "busybox host "+s.Name+": "+why)
			}
		}
	}
	tb, err := New(opts)
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range tb.Hosts {
				if h.Server != nil {
					t.Logf("netnstest: sshd log of %s:\n%s", h.Name, h.Server.Log())
				}
			}
		}
		if err := tb.Close(); err != nil {
			t.Errorf("netnstest: %v", err)
		}
	})
	return tb
}

// New builds a testbed for a caller that is not a test (internal/netnstest/cmd/testbed);
// tests use Start. The caller must call Close. On error nothing of it is left.
func New(opts Options) (*Testbed, error) {
	if ok, why := Available(); !ok {
		return nil, errors.New(why)
	}
	specs := opts.Hosts
	if specs == nil {
		specs = DefaultHosts
	}
	if err := CheckHosts(specs); err != nil {
		return nil, err
	}
	tb := &Testbed{relayLinks: opts.RelayLinks}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%s%d-%s", NamePrefix, os.Getpid(), hex.EncodeToString(rnd[:]))
	tb.ID, tb.Client, tb.Switch = id, id+"-c", id+"-sw"
	if err := tb.build(specs); err != nil {
		if cerr := tb.Close(); cerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
		}
		return nil, err
	}
	return tb, nil
}

// CheckHosts says what is wrong with a list of hosts (nil if nothing), in one line, as New
// would refuse it.
func CheckHosts(specs []HostSpec) error {
	if len(specs) == 0 || len(specs) > 200 {
		return fmt.Errorf("%d hosts; want 1 to 200", len(specs))
	}
	seen := map[string]HostSpec{}
	for _, s := range specs {
		if !nameRE.MatchString(s.Name) {
			return fmt.Errorf("host name %q: want a lower-case letter, then up to 7 lower-case letters or digits", s.Name)
		}
		if _, dup := seen[s.Name]; dup {
			return fmt.Errorf("host name %q given twice", s.Name)
		}
		if s.Behind != "" {
			b, ok := seen[s.Behind]
			switch {
			case !ok:
				return fmt.Errorf("host %s: Behind %q names no earlier host", s.Name, s.Behind)
			case b.Behind != "":
				return fmt.Errorf("host %s: Behind %q is itself behind %s; want a host on the LAN", s.Name, s.Behind, b.Behind)
			}
		}
		seen[s.Name] = s
	}
	return nil
}

// The address plan, all in 198.18.0.0/15: the LAN is 198.18.1.0/24 (the client .1, the i-th
// host, from 0, .11+i); the i-th host, when behind a bastion, has 198.18.(11+i).0/24 to
// itself: the bastion .1, the host .2 (DefaultHosts' h3: 198.18.13.2).
const lanPrefix = "198.18.1."

func lanAddr(i int) string      { return fmt.Sprintf("%s%d", lanPrefix, 11+i) }
func behindNet(i int) string    { return fmt.Sprintf("198.18.%d.", 11+i) }
func clientAddr() string        { return lanPrefix + "1" }
func prefixLen(a string) string { return a + "/24" }

func (tb *Testbed) build(specs []HostSpec) error {
	if err := tb.addNS(tb.Client); err != nil {
		return err
	}
	if err := tb.addNS(tb.Switch); err != nil {
		return err
	}
	if err := ipIn(tb.Switch, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := ipIn(tb.Switch, "link", "set", "br0", "up"); err != nil {
		return err
	}
	if err := tb.lanPort(tb.Client, "c", clientAddr()); err != nil {
		return err
	}
	byName := map[string]*Host{}
	for i, s := range specs {
		h := &Host{Name: s.Name, NS: tb.ID + "-" + s.Name, Busybox: s.Busybox, tb: tb, nearDev: "eth0"}
		if err := tb.addNS(h.NS); err != nil {
			return err
		}
		if s.Behind == "" {
			h.Addr, h.farNS, h.farDev = lanAddr(i), tb.Switch, s.Name
			if err := tb.hostLink(h, []string{"master", "br0"}, ""); err != nil {
				return err
			}
		} else {
			b := byName[s.Behind]
			h.Behind = b
			h.Addr, h.farNS, h.farDev = behindNet(i)+"2", b.NS, s.Name
			if err := tb.hostLink(h, nil, behindNet(i)+"1"); err != nil {
				return err
			}
		}
		byName[s.Name] = h
		tb.Hosts = append(tb.Hosts, h)
	}
	// A bastion routes nothing: h3 is reachable from h1's namespace only. A new namespace
	// starts with forwarding off; say so rather than rely on it.
	for _, ns := range tb.namespaces {
		if err := inNS(ns, func() error {
			return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0\n"), 0)
		}); err != nil {
			return fmt.Errorf("turning forwarding off in %s: %w", ns, err)
		}
	}
	tb.netem = tcIn(tb.Switch, "qdisc", "add", "dev", "br0", "root", "netem", "delay", "1ms") == nil
	if tb.netem {
		if err := tcIn(tb.Switch, "qdisc", "del", "dev", "br0", "root"); err != nil {
			return err
		}
	}

	if err := tb.startServers(); err != nil {
		return err
	}
	return tb.writeSSHConfigs()
}

// addNS makes namespace ns, records it for Close, and brings its loopback up.
func (tb *Testbed) addNS(ns string) error {
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	tb.mu.Lock()
	tb.namespaces = append(tb.namespaces, ns)
	tb.mu.Unlock()
	return ipIn(ns, "link", "set", "lo", "up")
}

// lanPort links namespace ns to the bridge: a veth pair made in the switch namespace, its
// end there called port (on br0), the other end eth0 in ns with address addr/24. Neither
// end is ever in the root namespace.
func (tb *Testbed) lanPort(ns, port, addr string) error {
	for _, c := range [][]string{
		{tb.Switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{tb.Switch, "link", "set", port, "master", "br0", "up"},
		{ns, "addr", "add", prefixLen(addr), "dev", "eth0"},
		{ns, "link", "set", "eth0", "up"},
	} {
		if err := ipIn(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// hostLink links host h to its far end (h.farNS, h.farDev): a veth pair made at the far
// end, or a relay link. The far end gets farLink (as "master br0") and farAddr/24 if not "";
// h's end, eth0, gets h.Addr/24.
func (tb *Testbed) hostLink(h *Host, farLink []string, farAddr string) error {
	if tb.relayLinks {
		r, err := newRelay(h.farNS, h.farDev, h.NS, h.nearDev)
		if err != nil {
			return err
		}
		tb.mu.Lock()
		tb.relays = append(tb.relays, r)
		tb.mu.Unlock()
		h.relay = r
	} else if err := ipIn(h.farNS, "link", "add", h.farDev, "type", "veth", "peer", "name", h.nearDev, "netns", h.NS); err != nil {
		return err
	}
	cmds := [][]string{append(append([]string{h.farNS, "link", "set", h.farDev}, farLink...), "up")}
	if farAddr != "" {
		cmds = append(cmds, []string{h.farNS, "addr", "add", prefixLen(farAddr), "dev", h.farDev})
	}
	cmds = append(cmds,
		[]string{h.NS, "addr", "add", prefixLen(h.Addr), "dev", h.nearDev},
		[]string{h.NS, "link", "set", h.nearDev, "up"})
	for _, c := range cmds {
		if err := ipIn(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

func (tb *Testbed) startServers() error {
	errs := make([]error, len(tb.Hosts))
	var wg sync.WaitGroup
	for i, h := range tb.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sshdtest.New(sshdtest.Options{
				Chroot:     h.Busybox,
				ListenAddr: h.Addr,
				Port:       22,
				Exec:       []string{"ip", "netns", "exec", h.NS},
				Dial:       Dialer(h.NS),
				Alias:      h.Name,
			})
			if err != nil {
				errs[i] = fmt.Errorf("sshd of %s: %w", h.Name, err)
				return
			}
			tb.mu.Lock()
			tb.servers = append(tb.servers, s)
			tb.mu.Unlock()
			h.Server = s
			h.Home = s.RemoteHome
			if s.Chroot != "" {
				h.Home = filepath.Join(s.Chroot, s.RemoteHome)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeSSHConfigs writes the client's HOME and each (non-busybox) host's ~/.ssh.
func (tb *Testbed) writeSSHConfigs() error {
	home, err := os.MkdirTemp("", tb.ID+"-home-")
	if err != nil {
		return err
	}
	tb.mu.Lock()
	tb.Home = home
	tb.mu.Unlock()
	var known strings.Builder
	for _, h := range tb.Hosts {
		known.WriteString(h.Server.KnownHostsLine() + "\n")
	}
	tb.ConfigFile = filepath.Join(home, ".ssh", "config")
	tb.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
	if err := writeSSHDir(home, tb.sshConfig(nil, filepath.Join(home, ".ssh", "known_hosts")), known.String()); err != nil {
		return err
	}
	for _, h := range tb.Hosts {
		if h.Busybox {
			continue
		}
		if err := writeSSHDir(h.Home, tb.sshConfig(h, filepath.Join(h.Home, ".ssh", "known_hosts")), known.String()); err != nil {
			return err
		}
	}
	goEnv, err := goEnvOf("GOCACHE", "GOMODCACHE", "GOPATH")
	if err != nil {
		return err
	}
	tb.goEnv = goEnv
	return nil
}

func writeSSHDir(home, config, known string) error {
	dir := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(known), 0o600)
}

// sshConfig is ~/.ssh/config as seen from host from (nil: the client): a Host block per
// host; a host behind a bastion gets ProxyJump BASTION unless from is that bastion; from
// itself is left out.
func (tb *Testbed) sshConfig(from *Host, knownHosts string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# The hosts of testbed %s (internal/netnstest).\n", tb.ID)
	for _, h := range tb.Hosts {
		if h == from {
			continue
		}
		if from != nil && from.Behind != nil && h != from.Behind {
			continue // a host behind a bastion reaches only its bastion
		}
		fmt.Fprintf(&b, "\nHost %s\n\tHostName %s\n\tPort %d\n\tUser %s\n\tIdentityFile %s\n\tIdentitiesOnly yes\n\tUserKnownHostsFile %s\n\tStrictHostKeyChecking yes\n\tBatchMode yes\n\tLogLevel ERROR\n",
			h.Name, h.Server.Host, h.Server.Port, h.Server.User, h.Server.IdentityFile, knownHosts)
		if h.Behind != nil && h.Behind != from {
			fmt.Fprintf(&b, "\tProxyJump %s\n", h.Behind.Name)
		}
	}
	return b.String()
}

// goEnvOf is NAME=VALUE of go env for each name: a master with the testbed's HOME still
// uses this machine's build and module caches.
func goEnvOf(names ...string) ([]string, error) {
	out, err := exec.Command("go", append([]string{"env"}, names...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(names) {
		return nil, fmt.Errorf("go env %v: %d lines", names, len(lines))
	}
	env := make([]string, len(names))
	for i, n := range names {
		env[i] = n + "=" + lines[i]
	}
	return env, nil
}

// Host is the host called name, or nil.
func (tb *Testbed) Host(name string) *Host {
	for _, h := range tb.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Env is what a process in the client namespace needs in its environment (after
// os.Environ()) to reach the hosts by name: HOME (the client's), an empty SSH_AUTH_SOCK (no
// agent of the caller's takes part), and this machine's GOCACHE, GOMODCACHE and GOPATH, with
// GOPROXY=off (the client namespace has no way out) and GOTOOLCHAIN=local.
func (tb *Testbed) Env() []string {
	env := []string{"HOME=" + tb.Home, "SSH_AUTH_SOCK=", "GOPROXY=off", "GOTOOLCHAIN=local"}
	return append(env, tb.goEnv...)
}

// Command is name args... run in the client namespace (`ip netns exec CLIENT name args...`)
// with os.Environ() and Env as its environment. ip execs the command, so the process's pid
// is the command's.
func (tb *Testbed) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", tb.Client, name}, args...)...)
	cmd.Env = append(os.Environ(), tb.Env()...)
	return cmd
}

// Namespaces are the names of the namespaces the testbed made and has not deleted.
func (tb *Testbed) Namespaces() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.namespaces...)
}

// PIDs are the pids of the sshd processes the testbed started (each host's).
func (tb *Testbed) PIDs() []int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var pids []int
	for _, s := range tb.servers {
		pids = append(pids, s.PID())
	}
	return pids
}

// Netem reports whether the kernel has sch_netem, so that Shape can delay and drop packets
// on a veth link (without it Shape only limits the rate there, with tbf; a relay link does
// all three anyway).
func (tb *Testbed) Netem() bool { return tb.netem }

// Close stops every sshd the testbed started and every process they started, deletes its
// namespaces and removes its files. Idempotent. It returns what it could not delete.
func (tb *Testbed) Close() error {
	tb.mu.Lock()
	if tb.closed {
		tb.mu.Unlock()
		return nil
	}
	tb.closed = true
	servers, relays, nss, home := tb.servers, tb.relays, tb.namespaces, tb.Home
	tb.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Close()
		}()
	}
	wg.Wait()
	for _, r := range relays {
		r.close()
	}
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", nss[i]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", nss[i], err, bytes.TrimSpace(out)))
		}
	}
	tb.mu.Lock()
	tb.namespaces = nil
	tb.mu.Unlock()
	if home != "" {
		if err := os.RemoveAll(home); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ListNamespaces are the names `ip netns list` shows that start with prefix (give a
// testbed's ID to see only its own).
func ListNamespaces(prefix string) ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %v", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Cut takes the host's link down at its far end (the switch's port, or the bastion's end):
// from then on no packet reaches the host or leaves it, and nothing tells its peers so.
func (h *Host) Cut() error { return ipIn(h.farNS, "link", "set", h.farDev, "down") }

// Restore brings the link that Cut took down up again.
func (h *Host) Restore() error { return ipIn(h.farNS, "link", "set", h.farDev, "up") }

// Shape is what a link does to its packets, in each direction.
type Shape struct {
	Delay time.Duration // added to every packet, each way (netem only)
	Rate  string        // a tc rate, "100mbit" ("" = no limit)
	Loss  float64       // the percentage of packets dropped, 0 to 100 (netem only)
}

// ErrNoNetem is Shape's error for a delay or a loss on a kernel without sch_netem.
var ErrNoNetem = errors.New("netnstest: the kernel has no sch_netem (CONFIG_NET_SCH_NETEM): no delay or loss, only a rate limit")

// Shape puts s on both directions of the host's link (replacing what was there): `tc qdisc
// replace dev DEV root netem delay D rate R loss L%` on each end of a veth link, or tbf for
// a rate alone when the kernel has no netem; a relay link's relay does it.
func (h *Host) Shape(s Shape) error {
	if s.Loss < 0 || s.Loss > 100 || s.Delay < 0 {
		return fmt.Errorf("netnstest: shape %+v: want a delay >= 0 and a loss of 0 to 100", s)
	}
	if h.relay != nil {
		if _, err := bitsPerSecond(s.Rate); err != nil {
			return err
		}
		h.relay.setShape(s)
		return nil
	}
	var args []string
	switch {
	case h.tb.netem:
		args = []string{"netem"}
		if s.Delay > 0 {
			args = append(args, "delay", fmt.Sprintf("%dus", s.Delay.Microseconds()))
		}
		if s.Rate != "" {
			args = append(args, "rate", s.Rate)
		}
		if s.Loss > 0 {
			args = append(args, "loss", fmt.Sprintf("%g%%", s.Loss))
		}
		// netem's queue must hold what a delay keeps in flight at the rate.
		args = append(args, "limit", "100000")
	case s.Delay > 0 || s.Loss > 0:
		return ErrNoNetem
	case s.Rate != "":
		args = []string{"tbf", "rate", s.Rate, "burst", "256kb", "latency", "100ms"}
	default:
		return h.Unshape()
	}
	for _, end := range [][2]string{{h.farNS, h.farDev}, {h.NS, h.nearDev}} {
		if err := tcIn(end[0], append([]string{"qdisc", "replace", "dev", end[1], "root"}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

// Unshape takes what Shape put on the link off again.
func (h *Host) Unshape() error {
	if h.relay != nil {
		h.relay.setShape(Shape{})
		return nil
	}
	for _, end := range [][2]string{{h.farNS, h.farDev}, {h.NS, h.nearDev}} {
		// Deleting the default qdisc is an error tc reports; there is nothing to undo then.
		out, err := exec.Command("tc", "-n", end[0], "qdisc", "show", "dev", end[1], "root").Output()
		if err != nil || !(bytes.Contains(out, []byte("netem")) || bytes.Contains(out, []byte("tbf"))) {
			continue
		}
		if err := tcIn(end[0], "qdisc", "del", "dev", end[1], "root"); err != nil {
			return err
		}
	}
	return nil
}

// Dialer is a dial function (net.DialTimeout's) whose sockets are made in namespace ns
// (see inNS).
func Dialer(ns string) func(network, addr string, timeout time.Duration) (net.Conn, error) {
	return func(network, addr string, timeout time.Duration) (net.Conn, error) {
		var c net.Conn
		err := inNS(ns, func() error {
			var err error
			c, err = net.DialTimeout(network, addr, timeout)
			return err
		})
		return c, err
	}
}

// inNS runs f on an OS thread that entered network namespace ns, and waits for it. The
// thread goes back to its namespace before it is unlocked. If it cannot, it stays locked
// and ends with its goroutine; a child process whose Pdeathsig is tied to it
// (internal/child) would die with it, which is why the thread must not end in the normal
// case: any goroutine's thread may be the one a child was started from.
func inNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(self)
		fd, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = f()
		if unix.Setns(self, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func ipIn(ns string, args ...string) error {
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func tcIn(ns string, args ...string) error {
	if out, err := exec.Command("tc", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("tc -n %s %s: %v: %s", ns, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
