package main

import (
	"bytes"
	"encoding/json"
	"github.com/godist/godist/internal/proc"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/sshdtest"
)

// sshEnv is the environment for a godist that uses s through its ~/.ssh/config alias; the
// go command keeps this machine's caches.
func sshEnv(t *testing.T, s *sshdtest.Server) []string {
	t.Helper()
	env := append(os.Environ(), "NO_COLOR=1")
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	return append(env, s.Env()...)
}

func runWithEnv(t *testing.T, env []string, dir string, args ...string) ([]byte, []byte, int) {
	t.Helper()
	cmd := exec.Command(godistBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.Bytes(), stderr.Bytes(), code
}

func pingJSON(t *testing.T, env []string, specs ...string) ([]pingResult, string, int) {
	t.Helper()
	args := []string{"ping", "--json"}
	for _, s := range specs {
		args = append(args, "--tx", s)
	}
	out, errOut, code := runWithEnv(t, env, t.TempDir(), args...)
	var res []pingResult
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var r pingResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("ping --json line %q: %v", line, err)
		}
		res = append(res, r)
	}
	return res, string(out) + string(errOut), code
}

// godist ping over ssh reports every field, ships the worker once, and nothing the second
// time.
func TestSSHPingShipsOnce(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	env := sshEnv(t, s)
	res, out, code := pingJSON(t, env, "ssh="+s.Alias, "2*ssh="+s.Alias)
	if code != 0 || len(res) != 3 {
		t.Fatalf("exit %d, %d results:\n%s", code, len(res), out)
	}
	var shipped int64
	for _, r := range res {
		if r.ID == "" || r.GOOS != "linux" || r.GOARCH == "" || r.Hostname == "" || r.PID == 0 || r.Cwd == "" || r.NCPU < 1 || r.Version == "" || r.StartupMS <= 0 {
			t.Errorf("incomplete ping result %+v", r)
		}
		shipped += r.Shipped
	}
	if shipped == 0 {
		t.Errorf("a cold remote cache got no worker binary")
	}
	res, out, code = pingJSON(t, env, "ssh="+s.Alias)
	if code != 0 || len(res) != 1 || res[0].Shipped != 0 {
		t.Fatalf("second start shipped %+v (exit %d):\n%s", res, code, out)
	}
	// The worker lives in the remote cache, keyed by content hash.
	ents, _ := filepath.Glob(filepath.Join(s.RemoteHome, ".cache", "godist", "godist-*"))
	if len(ents) != 1 {
		t.Errorf("remote cache holds %v, want one worker binary", ents)
	}
}

// The zero-install proof: a host whose sessions are chrooted into a directory that holds
// only a static busybox runs a worker: godist ping (a remote exec of rinfo) works there.
func TestSSHChrootedBusyboxHost(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{Chroot: true})
	env := sshEnv(t, s)
	res, out, code := pingJSON(t, env, "ssh="+s.Alias, "ssh="+s.Alias+"//chdir=/tmp/work//env:FOO=bar")
	if code != 0 || len(res) != 2 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if res[1].Cwd != "/tmp/work" {
		t.Errorf("chdir=/tmp/work: worker cwd %q", res[1].Cwd)
	}
	for _, r := range res {
		if r.PID == 0 || r.GOOS != "linux" {
			t.Errorf("bad result %+v", r)
		}
	}
}

// An unknown host key is refused with the host, its fingerprint and the known_hosts file.
func TestSSHUnknownHostKeyRefused(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	if err := os.WriteFile(s.KnownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, out, code := pingJSON(t, sshEnv(t, s), "ssh="+s.Alias)
	if code != 3 {
		t.Errorf("exit %d, want 3", code)
	}
	for _, want := range []string{s.HostKeyFingerprint, s.KnownHosts, "127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal does not name %q:\n%s", want, out)
		}
	}
}

// Tests run over ssh gateways (this sshd shares the master's files) give go test's results,
// and leave no session process behind.
func TestSSHRunSameResultsAsGoTest(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	dir := fixturesDir(t)
	args := []string{"-timeout", "5s", "./pass", "./subtests", "./panic", "./files"}
	want := goTestJSON(t, dir, args...)
	jf := filepath.Join(t.TempDir(), "run.json")
	_, errOut, code := runWithEnv(t, sshEnv(t, s), dir, append([]string{"--tx", "3*ssh=" + s.Alias, "--jsonfile", jf,
		"--durations", filepath.Join(t.TempDir(), "d.json")}, args...)...)
	if code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, errOut)
	}
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, false)
	compareOutcomes(t, want, got, nil)
	// sshd reaps a closed session's processes a moment after the connection ends.
	if !waitFor(10*time.Second, func() bool { return len(s.Children()) == 0 }) {
		t.Errorf("sshd still has session processes %v 10s after godist exited", s.Children())
	}
}

// Gateways opened from another gateway's host: popen, exec= and ssh= via a hop, chained.
func TestViaGateways(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	env := sshEnv(t, s)
	res, out, code := pingJSON(t, env, "popen//id=hop", "popen//id=mid//via=hop", "popen//via=mid//chdir=/tmp",
		"exec=sh//via=hop", "ssh="+s.Alias+"//via=hop")
	if code != 0 || len(res) != 5 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if res[2].Cwd != "/tmp" {
		t.Errorf("chained via popen: cwd %q, want /tmp", res[2].Cwd)
	}
	pids := map[int]bool{}
	for _, r := range res {
		if r.PID == 0 || pids[r.PID] {
			t.Errorf("result %+v: want a worker of its own", r)
		}
		pids[r.PID] = true
	}
	// Tests run through a hop give go test's results.
	dir := fixturesDir(t)
	want := goTestJSON(t, dir, "./pass", "./subtests")
	jf := filepath.Join(t.TempDir(), "run.json")
	_, errOut, code := runWithEnv(t, env, dir, "--tx", "popen//id=hop", "--tx", "2*popen//via=hop", "--tx", "ssh="+s.Alias+"//via=hop",
		"--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"), "./pass", "./subtests")
	if code != 1 {
		t.Errorf("exit %d, want 1 (subtests fail):\n%s", code, errOut)
	}
	data, _ := os.ReadFile(jf)
	compareOutcomes(t, want, parseStream(t, data, false), nil)
}

// A hop whose own work is done stays up while a gateway relayed through it still runs its
// own (--dist each: every gateway has the whole plan). The gateway via the hop has
// GODIST_FIXTURE_SLOW, so its TestSlow sleeps until -timeout ends it (a fail, 2 s on), while
// the hop's passes at once: closing the hop then would lose the other gateway (exit 3).
func TestViaHopOutlivesItsWork(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	jf := filepath.Join(t.TempDir(), "run.json")
	stdout, errOut, code := runWithEnv(t, append(os.Environ(), "NO_COLOR=1"), dir, "--dist", "each", "--tx", "popen//id=hop",
		"--tx", "popen//via=hop//env:GODIST_FIXTURE_SLOW=1", "-timeout", "2s", "--jsonfile", jf,
		"--durations", filepath.Join(t.TempDir(), "d.json"), "./stopslow/slow")
	if out := append(stdout, errOut...); code != 1 || bytes.Contains(out, []byte("lost")) {
		t.Errorf("exit %d, want 1 (TestSlow timed out on gw1) and no gateway lost:\n%s", code, out)
	}
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, true)
	const pkg = "github.com/godist/godist/fixtures/stopslow/slow"
	for gw, want := range map[string]string{"hop": "pass", "gw1": "fail"} {
		if a := got.tests[pkg+" @"+gw+" TestSlow"]; !slices.Equal(a, []string{want}) {
			t.Errorf("TestSlow on %s: %v, want [%s]", gw, a, want)
		}
	}
}

// popen//goarch=386 runs a worker built for 386 (cross-built once, then cached): the
// cross-platform path on this amd64 machine.
func TestPopen386Worker(t *testing.T) {
	t.Parallel()
	res, out, code := pingJSON(t, append(os.Environ(), "NO_COLOR=1"), "popen//goarch=386", "popen")
	if code != 0 || len(res) != 2 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if res[0].GOARCH != "386" || res[1].GOARCH != "amd64" {
		t.Fatalf("workers report %s and %s, want 386 and amd64", res[0].GOARCH, res[1].GOARCH)
	}
}

// A master killed with SIGKILL leaves nothing behind on an ssh host: the connection drops,
// the remote worker sees its stream end and takes its test processes with it.
func TestSSHMasterKilledLeavesNothing(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	cmd := exec.Command(godistBin, "--tx", "2*ssh="+s.Alias, "-timeout", "1m", "--durations", filepath.Join(t.TempDir(), "d.json"), "./hang")
	cmd.Dir = fixturesDir(t)
	cmd.Env = sshEnv(t, s)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Only this test's sshd's processes count: other tests' may be on the machine.
	hangHere := func() []int {
		var out []int
		for _, pid := range hangTestProcs() {
			if slices.Contains(s.Children(), pid) {
				out = append(out, pid)
			}
		}
		return out
	}
	if !waitFor(60*time.Second, func() bool { return len(hangHere()) > 0 }) {
		t.Fatal("the hang test never started on the ssh host")
	}
	tests := hangHere()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !waitFor(20*time.Second, func() bool { return len(s.Children()) == 0 }) {
		t.Errorf("sshd still has session processes %v 20s after the master died", s.Children())
	}
	// The worker kills them when its stream ends; the kill may take a moment to land.
	for _, pid := range tests {
		if !waitFor(10*time.Second, func() bool { return !proc.Alive(pid) }) {
			t.Errorf("test process %d outlived the master by 10s", pid)
		}
	}
}

// Remote runs: the module tree and the test binaries travel to a host that has nothing but
// busybox, and every test gets go test's result there as well as on a local worker.
func TestSSHRemoteRunOnBusyboxHost(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{Chroot: true})
	dir := fixturesDir(t)
	args := []string{"-timeout", "10s", "./pass", "./subtests", "./files", "./panic", "./testmain"}
	want := goTestJSON(t, dir, args...)
	jf := filepath.Join(t.TempDir(), "run.json")
	start := time.Now()
	_, errOut, code := runWithEnv(t, sshEnv(t, s), dir, append([]string{"--dist", "each", "--tx", "ssh=" + s.Alias, "--tx", "popen",
		"--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json")}, args...)...)
	t.Logf("took %v", time.Since(start))
	if code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, errOut)
	}
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, true)
	for k, acts := range want.tests {
		pkg, test, _ := strings.Cut(k, " ")
		if crashPackages[pkg] {
			continue
		}
		for _, w := range []string{"gw0", "gw1"} {
			if g := got.tests[pkg+" @"+w+" "+test]; len(g) != 1 || g[0] != acts[0] {
				t.Errorf("%s on %s: %v, want [%s]", k, w, g, acts[0])
			}
		}
	}
	if t.Failed() {
		t.Logf("godist said:\n%s", errOut)
	}
}

// Two hosts with four workers each: every test once, go test's result, each host sent each
// file once.
func TestSSHTwoHostsFourWorkersEach(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	a := sshdtest.Start(t, sshdtest.Options{})
	b := sshdtest.Start(t, sshdtest.Options{Chroot: true})
	cfg, err := os.OpenFile(a.ConfigFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg.WriteString("\n" + b.ConfigEntry("hostb"))
	cfg.Close()
	dir := fixturesDir(t)
	args := []string{"-timeout", "10s", "./pass", "./subtests", "./files", "./skip", "./slow", "./parallel", "./testmain", "./examples"}
	want := goTestJSON(t, dir, args...)
	jf := filepath.Join(t.TempDir(), "run.json")
	stdout, errOut, code := runWithEnv(t, sshEnv(t, a), dir, append([]string{"--tx", "4*ssh=" + a.Alias, "--tx", "4*ssh=hostb",
		"--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json")}, args...)...)
	if code != 1 {
		t.Errorf("exit %d, want 1:\n%s%s", code, stdout, errOut)
	}
	data, _ := os.ReadFile(jf)
	compareOutcomes(t, want, parseStream(t, data, false), nil)
	// Each host got the tree once: one "synced" note per host, not per worker.
	if n := strings.Count(string(stdout), "synced ("); n != 2 {
		t.Errorf("%d tree syncs for 2 hosts, want 2:\n%s", n, stdout)
	}
}

// --tx exec=COMMAND runs tests end to end (here a local sh: the worker bootstraps through it
// and gets the tree as a remote host would).
func TestExecGatewayRun(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	args := []string{"./pass", "./files", "./subtests"}
	want := goTestJSON(t, dir, args...)
	jf := filepath.Join(t.TempDir(), "run.json")
	env := append(os.Environ(), "NO_COLOR=1", "XDG_CACHE_HOME="+t.TempDir())
	for _, v := range []string{"GOCACHE", "GOMODCACHE"} {
		out, _ := exec.Command("go", "env", v).Output()
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	_, errOut, code := runWithEnv(t, env, dir, append([]string{"--tx", "2*exec=sh", "--jsonfile", jf}, args...)...)
	if code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, errOut)
	}
	data, _ := os.ReadFile(jf)
	compareOutcomes(t, want, parseStream(t, data, false), nil)
}

// --rsyncdir ships another tree at its place relative to the module; --rsyncignore leaves
// paths out; .gitignore'd files do not travel.
func TestRemoteRsyncDirAndIgnore(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{Chroot: true})
	root := t.TempDir()
	write := func(name, body string) { writeTestFile(t, root, name, body) }
	write("mod/go.mod", "module rd.example\n\ngo 1.26\n")
	write("mod/.gitignore", "secret.txt\n")
	write("mod/secret.txt", "do not ship\n")
	write("mod/big/blob.bin", "ignored by --rsyncignore\n")
	write("data/input.txt", "from --rsyncdir\n")
	write("mod/p/p_test.go", `package p

import (
	"os"
	"testing"
)

func TestRsyncDir(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../data/input.txt")
	if err != nil || string(b) != "from --rsyncdir\n" {
		t.Fatalf("../../data/input.txt: %q, %v", b, err)
	}
}

func TestIgnored(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"../secret.txt", "../big/blob.bin"} {
		if _, err := os.Stat(f); err == nil && os.Getenv("GODIST_WORKER") == "gw0" {
			t.Fatalf("%s was shipped", f)
		}
	}
}
`)
	jf := filepath.Join(t.TempDir(), "run.json")
	stdout, errOut, code := runWithEnv(t, sshEnv(t, s), filepath.Join(root, "mod"), "--tx", "ssh="+s.Alias, "--rsyncdir", filepath.Join(root, "data"),
		"--rsyncignore", "/big/", "--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json"), "./...")
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, stdout, errOut)
	}
	data, _ := os.ReadFile(jf)
	got := parseStream(t, data, false)
	for _, n := range []string{"TestRsyncDir", "TestIgnored"} {
		if a := got.tests["rd.example/p "+n]; len(a) != 1 || a[0] != "pass" {
			t.Errorf("%s: %v, want pass", n, a)
		}
	}
}
