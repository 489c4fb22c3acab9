// Package chaos runs godist under injected faults and counts what goes wrong: a harness
// (Setup) that owns real sshds, a godist serve and TCP proxies on 127.0.0.1, runs godist
// over local workers and those gateways on a module of deterministic tests, injects
// faults at chosen moments (Run) — killed workers, test processes, sshd sessions and
// masters, cut and frozen links — and holds each run to go test's outcome: nothing lost,
// doubled or wrong, nothing hung, no process left behind. bench/chaos.sh drives it
// (cmd/chaos); the tests of this package run one fault of each kind. Linux only: it
// reads /proc and becomes a child subreaper.
package chaos
