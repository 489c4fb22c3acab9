//go:build linux

// Command testbed brings a netnstest testbed up for a script (bench/netns.sh), prints how to
// use it, and tears it down when its stdin ends or it gets SIGTERM or SIGINT.
//
//	testbed [-hosts h1,h2,h3/h1,h4+busybox] [-links auto|veth|relay] [-delay 20ms] [-rate 100mbit]
//
// -hosts lists the hosts: NAME, NAME/BASTION (reached only through BASTION), NAME+busybox.
// -delay and -rate shape every host's link (each way); -links auto takes veth pairs when
// the kernel has sch_netem or no delay is asked for, relay links otherwise.
//
// On stdout, once the testbed is up, lines for bash to eval, then READY:
//
//	TB_ID='godist-nt-...'            the testbed's ID (every namespace's name starts so)
//	TB_CLIENT_NS='...'               the namespace to run the master in (ip netns exec)
//	TB_ENV+=('HOME=...')             one line per variable the client needs (netnstest's Env)
//	TB_HOSTS+=('h1')                 each host's name in the client's ~/.ssh/config ...
//	TB_HOME_h1='...'                 ... and its sessions' HOME on this machine's filesystem
//	TB_LINKS='relay'                 the kind of link the hosts have
//	READY
//
// Errors go to stderr in one line; the exit status is 2 for bad flags, 1 when the testbed
// cannot be built (nothing of it is left then). Killed with SIGKILL, it leaves its
// namespaces (its sshds die with it): `ip netns del` each name starting with TB_ID.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/godist/godist/internal/netnstest"
	"github.com/godist/godist/internal/sshdtest"
)

func main() {
	hosts := flag.String("hosts", "h1,h2,h3/h1,h4+busybox", "the hosts: NAME, NAME/BASTION, NAME+busybox, comma-separated")
	links := flag.String("links", "auto", "the hosts' links: auto, veth or relay")
	delay := flag.Duration("delay", 0, "delay added to every packet on every host's link, each way")
	rate := flag.String("rate", "", "every host's link's rate, as tc takes it (100mbit)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(2, fmt.Errorf("unexpected arguments %q (flags only)", flag.Args()))
	}
	specs, err := parseHosts(*hosts)
	if err != nil {
		fail(2, err)
	}
	if *links != "auto" && *links != "veth" && *links != "relay" {
		fail(2, fmt.Errorf("-links %q: want auto, veth or relay", *links))
	}
	shape := netnstest.Shape{Delay: *delay, Rate: *rate}

	// Signals from here on end the testbed, not the process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	tb, err := netnstest.New(netnstest.Options{Hosts: specs, RelayLinks: *links == "relay"})
	if err != nil {
		fail(1, err)
	}
	if *links == "auto" && shape.Delay > 0 && !tb.Netem() {
		// No netem: the delay needs relay links.
		if err := tb.Close(); err != nil {
			fail(1, err)
		}
		if tb, err = netnstest.New(netnstest.Options{Hosts: specs, RelayLinks: true}); err != nil {
			fail(1, err)
		}
	}
	kind := "veth"
	if *links == "relay" || (*links == "auto" && shape.Delay > 0 && !tb.Netem()) {
		kind = "relay"
	}
	if shape != (netnstest.Shape{}) {
		for _, h := range tb.Hosts {
			if err := h.Shape(shape); err != nil {
				tb.Close()
				fail(1, err)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "TB_ID=%s\nTB_CLIENT_NS=%s\n", sh(tb.ID), sh(tb.Client))
	for _, v := range tb.Env() {
		fmt.Fprintf(&b, "TB_ENV+=(%s)\n", sh(v))
	}
	for _, h := range tb.Hosts {
		fmt.Fprintf(&b, "TB_HOSTS+=(%s)\nTB_HOME_%s=%s\n", sh(h.Name), h.Name, sh(h.Home))
	}
	fmt.Fprintf(&b, "TB_LINKS=%s\nREADY\n", sh(kind))
	os.Stdout.WriteString(b.String())

	sshdtest.WaitStdinOrSignal(sigs)
	start := time.Now()
	if err := tb.Close(); err != nil {
		fail(1, err)
	}
	fmt.Fprintf(os.Stderr, "testbed: %s closed in %v\n", tb.ID, time.Since(start).Round(time.Millisecond))
}

func parseHosts(s string) ([]netnstest.HostSpec, error) {
	var specs []netnstest.HostSpec
	for _, item := range strings.Split(s, ",") {
		var h netnstest.HostSpec
		name, busybox := strings.CutSuffix(item, "+busybox")
		h.Busybox = busybox
		h.Name, h.Behind, _ = strings.Cut(name, "/")
		if h.Name == "" {
			return nil, fmt.Errorf("-hosts %q: empty host in %q (want NAME, NAME/BASTION or NAME+busybox)", s, item)
		}
		specs = append(specs, h)
	}
	if err := netnstest.CheckHosts(specs); err != nil {
		return nil, fmt.Errorf("-hosts %q: %v", s, err)
	}
	return specs, nil
}

// sh quotes v for sh.
func sh(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }

// fail prints err in one line and exits with code.
func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "testbed: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	os.Exit(code)
}
