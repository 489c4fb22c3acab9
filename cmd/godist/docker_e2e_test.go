package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/dockertest"
	"github.com/godist/godist/internal/proc"
)

// dockerArgs are the fixture packages the docker tests run: deterministic ones (no flaky,
// no timing), a crash among them, and every outcome.
var dockerArgs = []string{"-timeout", "20s", "./pass", "./subtests", "./files", "./panic", "./testmain", "./skip"}

// dockerEnv is the environment of a godist that runs docker gateways: the go command keeps
// this machine's caches, and no live view.
func dockerEnv(t *testing.T) []string {
	t.Helper()
	env := append(os.Environ(), "NO_COLOR=1")
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	return env
}

// runCompared runs godist with txs on dockerArgs in --dist mode (load or each) and
// compares each test's and package's result with go test's: in load mode once, in each
// mode on every one of the gateways ids.
func runCompared(t *testing.T, mode string, ids []string, txs ...string) {
	t.Helper()
	dir := fixturesDir(t)
	want := goTestJSON(t, dir, dockerArgs...)
	jf := filepath.Join(t.TempDir(), "run.json")
	args := []string{"--dist", mode, "--jsonfile", jf, "--durations", filepath.Join(t.TempDir(), "d.json")}
	for _, tx := range txs {
		args = append(args, "--tx", tx)
	}
	start := time.Now()
	stdout, stderr, code := runWithEnv(t, dockerEnv(t), dir, append(args, dockerArgs...)...)
	t.Logf("godist --dist %s took %v", mode, time.Since(start))
	if code != 1 {
		t.Errorf("exit %d, want 1 (fixtures fail):\n%s%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(jf)
	if err != nil {
		t.Fatalf("no --jsonfile: %v\n%s%s", err, stdout, stderr)
	}
	if mode != "each" {
		compareOutcomes(t, want, parseStream(t, data, false), nil)
	} else {
		got := parseStream(t, data, true)
		for k, acts := range want.tests {
			pkg, test, _ := strings.Cut(k, " ")
			if crashPackages[pkg] {
				continue // the tests after a crash: go test never runs them
			}
			for _, w := range ids {
				if g := got.tests[pkg+" @"+w+" "+test]; len(g) != 1 || g[0] != acts[len(acts)-1] {
					t.Errorf("%s on %s: %v, want [%s]", k, w, g, acts[len(acts)-1])
				}
			}
		}
		for pkg, acts := range want.pkgs {
			for _, w := range ids {
				if g := got.pkgs[pkg+" @"+w]; len(g) != 1 || g[0] != acts[0] {
					t.Errorf("package %s on %s: %v, want [%s]", pkg, w, g, acts[0])
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("godist said:\n%s%s", stdout, stderr)
	}
}

// --tx 'exec=docker exec -i CTR sh': containers someone else started (here the test) are
// hosts like any other; a counted spec runs several workers in one container. In each
// mode every gateway runs every test: each gets go test's results, and in load mode the
// run as a whole does.
func TestDockerExecGateways(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	im := dockertest.NewImage(t, dockertest.ImageOptions{})
	a, b, c := im.Start(t), im.Start(t), im.Start(t)
	txs := []string{"exec=docker exec -i " + a.ID + " sh", "exec=docker exec -i " + b.ID + " sh//chdir=/tmp/w",
		"2*exec=docker exec -i " + c.ID + " sh"}
	runCompared(t, "each", []string{"gw0", "gw1", "gw2", "gw3"}, txs...)
	runCompared(t, "load", nil, txs...)
	// The containers are the test's: godist leaves them running, with its workers gone.
	for _, ctr := range []*dockertest.Container{a, b, c} {
		if !waitFor(10*time.Second, func() bool {
			return !strings.Contains(dockertest.Docker(t, "top", ctr.ID), " worker")
		}) {
			t.Errorf("container %s still runs a worker after godist exited:\n%s", ctr.ID, dockertest.Docker(t, "top", ctr.ID))
		}
	}
}

// --tx docker=IMAGE: godist starts a container of its own for each gateway (N*docker: N
// containers), runs the tests there with go test's results (in each mode on every
// gateway), and has removed every container by the time it exits.
func TestDockerGatewayRun(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	im := dockertest.NewImage(t, dockertest.ImageOptions{})
	txs := []string{"docker=" + im.Ref, "2*docker=" + im.Ref + "//chdir=/work//env:GODIST_DOCKER_TEST=1"}
	for _, mode := range []string{"load", "each"} {
		runCompared(t, mode, []string{"gw0", "gw1", "gw2"}, txs...)
		if left := im.Containers(t); len(left) > 0 {
			t.Errorf("--dist %s: containers %v still there after godist exited", mode, left)
		}
	}
}

// godist ping --tx docker=IMAGE reports the container's platform and host (a hostname of
// its own, godist-RANDOM), its worker as the container's process 1, chdir= and N containers.
func TestDockerPing(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	im := dockertest.NewImage(t, dockertest.ImageOptions{})
	res, out, code := pingJSON(t, dockerEnv(t), "docker="+im.Ref, "2*docker="+im.Ref+"//chdir=/w")
	if code != 0 || len(res) != 3 {
		t.Fatalf("exit %d, %d results:\n%s", code, len(res), out)
	}
	host, _ := os.Hostname()
	hosts := map[string]bool{}
	for i, r := range res {
		if r.GOOS != "linux" || r.GOARCH == "" || r.PID != 1 || r.NCPU < 1 || !regexp.MustCompile(`^godist-[0-9a-f]{16}$`).MatchString(r.Hostname) || r.Hostname == host {
			t.Errorf("ping result %+v: want linux, pid 1 and the container's own hostname", r)
		}
		if wantCwd := map[bool]string{true: "/", false: "/w"}[i == 0]; r.Cwd != wantCwd {
			t.Errorf("%s: cwd %q, want %q", r.ID, r.Cwd, wantCwd)
		}
		hosts[r.Hostname] = true
	}
	if len(hosts) != 3 {
		t.Errorf("3 gateways in %d containers, want 3", len(hosts))
	}
	// The plain form names the platform.
	stdout, stderr, code := runWithEnv(t, dockerEnv(t), t.TempDir(), "ping", "--tx", "docker="+im.Ref)
	if code != 0 || !strings.Contains(string(stdout), "\tlinux/"+res[0].GOARCH+" host=") {
		t.Errorf("godist ping: exit %d:\n%s%s", code, stdout, stderr)
	}
	if left := im.Containers(t); len(left) > 0 {
		t.Errorf("containers %v still there after godist ping", left)
	}
}

// inContainer reports whether process pid runs in the container id (its cgroup names it).
func inContainer(pid int, id string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	return err == nil && bytes.Contains(b, []byte(id))
}

// startDockerHang starts godist on the hang fixture in 2*docker=IMAGE and returns once the
// hang test runs in one of the image's containers, with its test processes there.
func startDockerHang(t *testing.T, im *dockertest.Image) (*exec.Cmd, *bytes.Buffer, []int) {
	t.Helper()
	cmd, out := startHangRun(t, "2*docker="+im.Ref)
	var tests []int
	if !waitFor(90*time.Second, func() bool {
		tests = nil
		for _, id := range im.Containers(t) {
			for _, pid := range hangTestProcs() {
				if inContainer(pid, id) {
					tests = append(tests, pid)
				}
			}
		}
		return len(tests) > 0
	}) {
		t.Fatalf("the hang test never started in a container; godist said:\n%s", out.String())
	}
	ids := im.Containers(t)
	if len(ids) != 2 {
		t.Fatalf("%d containers of the image, want 2", len(ids))
	}
	// Labelled with their gateway and the run.
	gws := map[string]bool{}
	for _, id := range ids {
		l := dockertest.Docker(t, "inspect", "--format", `{{index .Config.Labels "godist.gateway"}} {{index .Config.Labels "godist.testrunuid"}}`, id)
		gw, uid, _ := strings.Cut(l, " ")
		if uid == "" {
			t.Errorf("container %s: labels %q, want godist.gateway and godist.testrunuid", id, l)
		}
		gws[gw] = true
	}
	if !gws["gw0"] || !gws["gw1"] {
		t.Errorf("containers labelled for gateways %v, want gw0 and gw1", gws)
	}
	return cmd, out, tests
}

// A master killed with SIGKILL leaves no container behind: its docker clients die with it
// (parent death), the engine closes the containers' input, the workers exit with their
// test processes, and --rm has the engine remove the containers.
func TestDockerMasterKilledLeavesNoContainer(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	im := dockertest.NewImage(t, dockertest.ImageOptions{})
	cmd, _, tests := startDockerHang(t, im)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	start := time.Now()
	if !waitFor(30*time.Second, func() bool { return len(im.Containers(t)) == 0 }) {
		t.Fatalf("containers %v still there 30s after the master was killed", im.Containers(t))
	}
	t.Logf("containers gone %v after the SIGKILL", time.Since(start))
	for _, pid := range tests {
		if !waitFor(10*time.Second, func() bool { return !proc.Alive(pid) }) {
			t.Errorf("test process %d outlived its container", pid)
		}
	}
}

// An interrupted run (SIGINT, a terminal's Ctrl-C) removes its containers before godist
// exits.
func TestDockerInterruptLeavesNoContainer(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	im := dockertest.NewImage(t, dockertest.ImageOptions{})
	cmd, out, _ := startDockerHang(t, im)
	cmd.Process.Signal(os.Interrupt)
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
		t.Logf("godist exited %v after the SIGINT", time.Since(start))
	case <-time.After(30 * time.Second):
		t.Fatalf("godist did not exit within 30s of SIGINT:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("interrupted run exited %d, want 130:\n%s", code, out.String())
	}
	if left := im.Containers(t); len(left) > 0 {
		t.Errorf("containers %v still there after godist exited", left)
	}
}

// A docker= gateway that cannot start (an image the engine lacks, pull=never: nothing
// goes to a registry) is one line naming the image and docker's reason, exit status 3.
func TestDockerBadImage(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	im := dockertest.NewImage(t, dockertest.ImageOptions{})
	ref := strings.Replace(im.Ref, ":latest", ":missing", 1)
	stdout, stderr, code := runWithEnv(t, dockerEnv(t), fixturesDir(t), "--tx", "docker="+ref+"//pull=never",
		"--durations", filepath.Join(t.TempDir(), "d.json"), "./pass")
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	if code != 3 || len(lines) != 1 || !strings.HasPrefix(lines[0], "godist: ") ||
		!strings.Contains(lines[0], "docker image inspect "+ref+" (pull=never): ") || !strings.Contains(lines[0], "No such image") {
		t.Errorf("exit %d, want 3 and one line naming the image:\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(string(stdout), "ok ") || strings.Contains(string(stdout), "FAIL") {
		t.Errorf("packages reported although nothing ran:\n%s", stdout)
	}
}

// docker=IMAGE//via=ID: the hop's docker client starts the container (here the hop is a
// local worker, so the engine is this one), and removes it with the run; a start error on
// the hop comes back as one line.
func TestDockerViaHop(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	im := dockertest.NewImage(t, dockertest.ImageOptions{})
	res, out, code := pingJSON(t, dockerEnv(t), "popen//id=hop", "docker="+im.Ref+"//via=hop//chdir=/v")
	if code != 0 || len(res) != 2 {
		t.Fatalf("exit %d, %d results:\n%s", code, len(res), out)
	}
	if r := res[1]; r.PID != 1 || r.Cwd != "/v" || !regexp.MustCompile(`^godist-[0-9a-f]{16}$`).MatchString(r.Hostname) {
		t.Errorf("via the hop: %+v, want the container's worker", r)
	}
	if left := im.Containers(t); len(left) > 0 {
		t.Errorf("containers %v still there after godist ping", left)
	}
	ref := strings.Replace(im.Ref, ":latest", ":missing", 1)
	res, out, code = pingJSON(t, dockerEnv(t), "popen//id=hop", "docker="+ref+"//via=hop//pull=never")
	t.Logf("via the hop: %s", res[1].Error)
	if code != 3 || len(res) != 2 || !strings.Contains(res[1].Error, "docker image inspect "+ref+" (pull=never): ") || strings.Contains(res[1].Error, "\n") {
		t.Errorf("exit %d, want 3 and gw1's one-line error naming the image:\n%s", code, out)
	}
}

// A master killed with SIGKILL leaves nothing running in a container it reached with
// exec=docker exec: the docker exec client dies with the master, the worker's input ends,
// and it exits with its test processes. The container stays (it is not godist's).
func TestDockerExecMasterKilledLeavesNothing(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	im := dockertest.NewImage(t, dockertest.ImageOptions{})
	ctr := im.Start(t)
	cmd, out := startHangRun(t, "2*exec=docker exec -i "+ctr.ID+" sh")
	running := func(what string) bool { return strings.Contains(dockertest.Docker(t, "top", ctr.ID), what) }
	if !waitFor(90*time.Second, func() bool { return running("-test.v=test2json") }) {
		t.Fatalf("the hang test never started in the container; godist said:\n%s", out.String())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !waitFor(30*time.Second, func() bool { return !running(" worker") && !running("-test.v=test2json") }) {
		t.Errorf("30s after the master was killed the container still runs:\n%s", dockertest.Docker(t, "top", ctr.ID))
	}
}

// startHangRun starts godist on the fixtures' hang package over tx (killed at the test's
// end if still running), its output in the buffer.
func startHangRun(t *testing.T, tx string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(godistBin, "--tx", tx, "-timeout", "1m", "--durations", filepath.Join(t.TempDir(), "d.json"), "./hang")
	cmd.Dir = fixturesDir(t)
	cmd.Env = dockerEnv(t)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, out
}
