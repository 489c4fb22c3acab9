//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/netnstest"
	"github.com/godist/godist/internal/proc"
)

// The tests here run godist in the client namespace of a netnstest testbed against hosts
// that are namespaces of their own, each with its sshd and HOME (internal/netnstest):
// h1 (the bastion), h2, h3 (only through h1, by ProxyJump) and h4 (busybox only).

// netnsPackages are fixture packages whose results do not depend on timing or on the
// machine: go test's outcome for each test and package is fixed.
var netnsPackages = []string{"./pass", "./fail", "./subtests", "./files", "./skip", "./testmain", "./examples", "./panic"}

// netnsGodist runs the godist under test in tb's client namespace, in dir.
func netnsGodist(t *testing.T, tb *netnstest.Testbed, dir string, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	cmd := tb.Command(godistBin, args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, "NO_COLOR=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(interface{ ExitCode() int }); ok && err != nil {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.Bytes(), e.Bytes(), code
}

// netnsRun runs godist with a --jsonfile and returns the stream's outcome.
func netnsRun(t *testing.T, tb *netnstest.Testbed, perWorker bool, args ...string) (outcome, string, int) {
	t.Helper()
	jf := filepath.Join(t.TempDir(), "run.json")
	args = append([]string{"--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json")}, args...)
	stdout, stderr, code := netnsGodist(t, tb, fixturesDir(t), args...)
	data, err := os.ReadFile(jf)
	if err != nil {
		t.Fatalf("no --jsonfile: %v\n%s%s", err, stdout, stderr)
	}
	return parseStream(t, data, perWorker), string(stdout) + string(stderr), code
}

// sliceOf is the part of a per-worker outcome (parseStream(..., true)) that gateway gw
// reported, keyed as a whole run's is.
func sliceOf(o outcome, gw string) outcome {
	s := outcome{tests: map[string][]string{}, pkgs: map[string][]string{}, builds: o.builds}
	tag := " @" + gw
	for k, v := range o.tests {
		pkg, rest, _ := strings.Cut(k, " ")
		if w, test, _ := strings.Cut(rest, " "); " "+w == tag {
			s.tests[pkg+" "+test] = v
		}
	}
	for k, v := range o.pkgs {
		if pkg, ok := strings.CutSuffix(k, tag); ok {
			s.pkgs[pkg] = v
		}
	}
	return s
}

// synced reports whether host h's remote cache holds a copy of the module tree.
func synced(h *netnstest.Host) bool {
	entries, err := os.ReadDir(filepath.Join(h.Home, ".cache", "godist", "work"))
	return err == nil && len(entries) > 0
}

// closeAndCheck waits until godist's sessions on the hosts (all but skip) are gone, closes
// the testbed and checks that nothing of it is left: no namespace of its ID, no sshd, no
// process the sshds started, no file.
func closeAndCheck(t *testing.T, tb *netnstest.Testbed, skip ...string) {
	t.Helper()
	for _, h := range tb.Hosts {
		if slices.Contains(skip, h.Name) {
			continue
		}
		if !waitFor(10*time.Second, func() bool { return len(h.Server.Children()) == 0 }) {
			t.Errorf("%s: sshd still has session processes %v 10s after godist exited", h.Name, h.Server.Children())
		}
	}
	var pids []int
	for _, h := range tb.Hosts {
		pids = append(pids, h.Server.Children()...)
	}
	pids = append(pids, tb.PIDs()...)
	if err := tb.Close(); err != nil {
		t.Error(err)
	}
	if left, err := netnstest.ListNamespaces(tb.ID); err != nil || len(left) > 0 {
		t.Errorf("namespaces left: %v %v", left, err)
	}
	for _, pid := range pids {
		if !waitFor(5*time.Second, func() bool { return child.Gone(pid) || !proc.Alive(pid) }) {
			t.Errorf("process %d of the testbed still running after Close", pid)
		}
	}
	for _, p := range append([]string{tb.Home}, homesOf(tb)...) {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there after Close", p)
		}
	}
}

func homesOf(tb *netnstest.Testbed) []string {
	var hs []string
	for _, h := range tb.Hosts {
		hs = append(hs, h.Home)
	}
	return hs
}

// Load over four hosts, one of them reached through the bastion by ProxyJump and one with
// nothing but busybox: every test and package gets go test's result, and no gateway failed
// (each got the tree into its host's own cache, or was not needed: in load mode the tests
// may all have run before a slower gateway was up; the each-mode test below needs them all).
func TestNetnsLoadOverHosts(t *testing.T) {
	t.Parallel()
	tb := netnstest.Start(t, netnstest.Options{})
	dir := fixturesDir(t)
	args := append([]string{"-timeout", "10s"}, netnsPackages...)
	want := goTestJSON(t, dir, args...)
	gws := map[string][]string{"h1": {"gw0"}, "h2": {"gw1", "gw2"}, "h3": {"gw3"}, "h4": {"gw4"}}
	got, out, code := netnsRun(t, tb, false, append([]string{"--tx", "ssh=h1", "--tx", "2*ssh=h2", "--tx", "ssh=h3", "--tx", "ssh=h4"}, args...)...)
	if code != 1 {
		t.Errorf("exit %d, want 1 (fixtures fail):\n%s", code, out)
	}
	compareOutcomes(t, want, got, nil)
	// A host gets the tree once, through one of its gateways.
	for _, h := range tb.Hosts {
		note := func(f func(gw string) string) bool {
			for _, gw := range gws[h.Name] {
				if strings.Contains(out, f(gw)) {
					return true
				}
			}
			return false
		}
		switch {
		case note(func(gw string) string { return "godist: " + gw + ": " + dir + " synced" }):
			if !synced(h) {
				t.Errorf("%s: the tree was synced, but not into %s", h.Name, filepath.Join(h.Home, ".cache", "godist", "work"))
			}
		case note(func(gw string) string { return "godist: " + gw + " (" }) && strings.Contains(out, "was not up when every test had run elsewhere"):
		default:
			t.Errorf("%s (%v): neither synced nor cancelled as not needed", h.Name, gws[h.Name])
		}
	}
	if t.Failed() {
		t.Logf("godist said:\n%s", out)
	}
	closeAndCheck(t, tb)
}

// --dist each over the same hosts: each gateway's slice of the stream is a whole go test
// run, the busybox host's and the one behind the bastion's included.
func TestNetnsEachOverHosts(t *testing.T) {
	t.Parallel()
	tb := netnstest.Start(t, netnstest.Options{})
	dir := fixturesDir(t)
	args := append([]string{"-timeout", "10s"}, netnsPackages...)
	want := goTestJSON(t, dir, args...)
	got, out, code := netnsRun(t, tb, true, append([]string{"--dist", "each", "--tx", "ssh=h1", "--tx", "2*ssh=h2", "--tx", "ssh=h3", "--tx", "ssh=h4"}, args...)...)
	if code != 1 {
		t.Errorf("exit %d, want 1 (fixtures fail):\n%s", code, out)
	}
	for _, gw := range []string{"gw0", "gw1", "gw2", "gw3", "gw4"} {
		t.Run(gw, func(t *testing.T) {
			compareOutcomes(t, want, sliceOf(got, gw), nil)
		})
	}
	if t.Failed() {
		t.Logf("godist said:\n%s", out)
	}
	closeAndCheck(t, tb)
}

// via=: gateways opened from the bastion's worker: h3 by the bastion's own ~/.ssh/config
// (directly, from its namespace: the client has no route to h3) and a local worker on the
// bastion. In each mode, so that every gateway runs every test: each slice is go test's.
func TestNetnsVia(t *testing.T) {
	t.Parallel()
	tb := netnstest.Start(t, netnstest.Options{Hosts: []netnstest.HostSpec{{Name: "h1"}, {Name: "h3", Behind: "h1"}}})
	dir := fixturesDir(t)
	args := append([]string{"-timeout", "10s"}, netnsPackages...)
	want := goTestJSON(t, dir, args...)
	got, out, code := netnsRun(t, tb, true, append([]string{"--dist", "each", "--tx", "ssh=h1//id=hop", "--tx", "ssh=h3//via=hop", "--tx", "popen//via=hop"}, args...)...)
	if code != 1 {
		t.Errorf("exit %d, want 1 (fixtures fail):\n%s", code, out)
	}
	workers := slices.Sorted(maps.Keys(got.workers))
	if !slices.Equal(workers, []string{"gw1", "gw2", "hop"}) {
		t.Errorf("events from %v, want gw1 (h3 via the hop), gw2 (popen via the hop) and hop", workers)
	}
	for _, gw := range workers {
		t.Run(gw, func(t *testing.T) {
			compareOutcomes(t, want, sliceOf(got, gw), nil)
		})
	}
	if h3 := tb.Host("h3"); !synced(h3) {
		t.Errorf("h3: no tree in its cache")
	}
	if t.Failed() {
		t.Logf("godist said:\n%s", out)
	}
	closeAndCheck(t, tb)
}

// A link cut mid-run: h2's two workers run the tests (h2 has GODIST_FIXTURE_SLOW, so its
// TestSlow of stopslow/slow sleeps 30s) while the only other gateway waits at a gate the
// test holds shut. When the stream shows TestSlow running on h2, the test cuts h2's link
// and opens the gate. godist must find h2 lost within its keepalive bound (--keepalive 3s
// here), run what h2 did not finish on the other gateway,
// and report every test once, with go test's outcome.
func TestNetnsLinkCutMidRun(t *testing.T) {
	t.Parallel()
	tb := netnstest.Start(t, netnstest.Options{Hosts: []netnstest.HostSpec{{Name: "h1"}, {Name: "h2"}}})
	dir := fixturesDir(t)
	pkgs := []string{"./stopslow/slow", "./slow", "./pass", "./subtests", "./skip"}
	args := append([]string{"-timeout", "60s"}, pkgs...)
	want := goTestJSON(t, dir, args...)

	gate := filepath.Join(t.TempDir(), "open")
	// The standby: OpenSSH's ssh to h1, once the gate is open (bounded by the test's end).
	standby := fmt.Sprintf("exec=sh -c 'while [ ! -e %s ]; do sleep 0.02; done; exec ssh -F %s h1 sh'", gate, tb.ConfigFile)
	jf := filepath.Join(t.TempDir(), "run.json")
	cmd := tb.Command(godistBin, append([]string{"--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"),
		"--keepalive", "3s", "--tx", "2*ssh=h2//env:GODIST_FIXTURE_SLOW=1", "--tx", standby}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, "NO_COLOR=1")
	// Its output (notes go to stdout without -json, errors to stderr), in one pipe.
	output, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The output, line by line, with the time each line came.
	type line struct {
		at   time.Time
		text string
	}
	var mu sync.Mutex
	var lines []line
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(output)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, line{time.Now(), sc.Text()})
			mu.Unlock()
		}
		io.Copy(io.Discard, output)
	}()
	var waitErr error
	waited := false
	wait := func() {
		if !waited {
			waited = true
			<-readDone
			waitErr = cmd.Wait()
		}
	}
	// On a t.Fatal below: godist (and with it its workers, by their parent's death) goes.
	t.Cleanup(func() {
		if !waited {
			cmd.Process.Kill()
			wait()
		}
	})
	// The trigger: TestSlow running on h2 (gw0 or gw1: the only gateways up).
	running := func() bool {
		data, _ := os.ReadFile(jf)
		for _, l := range bytes.Split(data, []byte("\n")) {
			var e gotest.Event
			if json.Unmarshal(l, &e) == nil && e.Action == gotest.ActionRun && e.Test == "TestSlow" && (e.Worker == "gw0" || e.Worker == "gw1") {
				return true
			}
		}
		return false
	}
	if !waitFor(60*time.Second, running) {
		t.Fatalf("TestSlow never ran on h2 within 60s")
	}
	if err := tb.Host("h2").Cut(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wait()
	ended := time.Since(cut)
	code := 0
	if ee, ok := waitErr.(interface{ ExitCode() int }); ok && waitErr != nil {
		code = ee.ExitCode()
	}
	mu.Lock()
	var all strings.Builder
	var lostAt time.Duration
	for _, l := range lines {
		all.WriteString(l.text + "\n")
		if lostAt == 0 && (strings.HasPrefix(l.text, "godist: gateway gw0 lost") || strings.HasPrefix(l.text, "godist: gateway gw1 lost")) {
			lostAt = l.at.Sub(cut)
		}
	}
	mu.Unlock()
	out := all.String()
	t.Logf("h2 cut; its loss noted after %v; godist ended %v after the cut", lostAt.Round(time.Millisecond), ended.Round(time.Millisecond))
	if code != 1 {
		t.Errorf("exit %d, want 1 (subtests fail)", code)
	}
	// The keepalive bound (--keepalive), plus what a loaded machine adds.
	const bound = 3 * time.Second
	switch {
	case lostAt == 0:
		t.Errorf("godist never said h2's gateways were lost")
	case lostAt > bound+5*time.Second:
		t.Errorf("h2's loss noted %v after the cut; the keepalive bound is %v", lostAt, bound)
	}
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, false)
	compareOutcomes(t, want, got, nil)
	// TestSlow, cut short on h2, passed where it ran again: on the standby, gw2.
	var endedOn []string
	for _, l := range bytes.Split(data, []byte("\n")) {
		var e gotest.Event
		if json.Unmarshal(l, &e) == nil && e.Test == "TestSlow" && gotest.IsTerminal(e.Action) {
			endedOn = append(endedOn, e.Action+" on "+e.Worker)
		}
	}
	if !slices.Equal(endedOn, []string{"pass on gw2"}) {
		t.Errorf("TestSlow ended %v, want [pass on gw2]", endedOn)
	}
	if t.Failed() {
		t.Logf("godist said:\n%s", out)
	}
	// h2's sessions cannot hear of the end over a cut link: Close kills them.
	closeAndCheck(t, tb, "h2")
}
