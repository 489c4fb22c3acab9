// Package netnstest builds, for one test, a small network of hosts out of Linux network
// namespaces: each host a namespace with its own address in 198.18.0.0/15 (the
// benchmarking range, RFC 2544), its own OpenSSH sshd (internal/sshdtest) and its own HOME,
// so that godist's remote cache (${XDG_CACHE_HOME:-$HOME/.cache}/godist) differs per host.
//
// The network (DefaultHosts):
//
//	client 198.18.1.1 ─┐
//	h1     198.18.1.11 ├─ br0, a bridge in the testbed's switch namespace
//	h2     198.18.1.12 ┤
//	h4     198.18.1.14 ┘  (busybox only: a chrooted sshd, no libc, no Go)
//	h1     198.18.13.1 ── h3 198.18.13.2  (a link of h1's own; routed nowhere else)
//
// h1 is a bastion: h3 is reachable only from h1's namespace (h1 does not forward), and the
// client's ~/.ssh/config says ProxyJump h1 for it. The master (godist itself) runs in the
// client namespace (Testbed.Command), so nothing of a test touches the root namespace: no
// interface, address or route there is made or changed, and all traffic stays inside the
// testbed's namespaces.
//
// Needs Linux, root, and ip and tc of iproute2; sshd as internal/sshdtest needs it (and the
// user godisttest for the busybox host: `make deps`). Without them Require skips, or fails
// when GODIST_REQUIRE_SSHD is set (CI sets it).
//
// Link control: Host.Cut and Host.Restore take a host's link down and up (`ip link set DEV
// down`, at its far end); Host.Shape delays, paces and drops its packets in both
// directions: a host link is a veth pair, shaped with tc (netem where the kernel has
// sch_netem, otherwise a tbf rate limit only), or with Options.RelayLinks a pair of TAP
// devices joined by a relay in this process that does netem's work (relay.go).
//
// Every name is unique to the testbed (the process id and random bytes), and Close (which
// Start registers with t.Cleanup) deletes exactly the namespaces, processes and files the
// testbed made: it never looks a process up by name, only stops the pids it started.
package netnstest
