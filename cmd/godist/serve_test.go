package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/proc"
)

// serveProc is a `godist serve` process on a free loopback port, and a client HOME whose
// ~/.ssh holds the key it lets in and a known_hosts with its host key.
type serveProc struct {
	cmd         *exec.Cmd
	port        int
	spec        string // socket=127.0.0.1:PORT
	home        string // the client's HOME (also the server's: its workers start there)
	identity    string
	knownHosts  string
	keysFile    string
	fingerprint string // of the host key
	stderr      *lockedBuffer
	exited      chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// writeUserKey writes a new ed25519 private key in OpenSSH format to file and returns its
// public key.
func writeUserKey(t *testing.T, file string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "serve-e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	listeningRE = regexp.MustCompile(`listening on 127\.0\.0\.1:(\d+) `)
	knownLineRE = regexp.MustCompile(`known_hosts line for clients: (.+)\n`)
	hostKeyRE   = regexp.MustCompile(`host key .* \(ssh-ed25519 (SHA256:[^,)]+)`)
)

func startServe(t *testing.T) *serveProc {
	t.Helper()
	dir := t.TempDir()
	s := &serveProc{home: filepath.Join(dir, "home"), keysFile: filepath.Join(dir, "authorized_keys"),
		stderr: &lockedBuffer{}, exited: make(chan struct{})}
	s.identity = filepath.Join(s.home, ".ssh", "id_ed25519")
	s.knownHosts = filepath.Join(s.home, ".ssh", "known_hosts")
	pub := writeUserKey(t, s.identity)
	if err := os.WriteFile(s.keysFile, ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(godistBin, "serve", "--listen", "127.0.0.1:0",
		"--host-key", filepath.Join(dir, "host_key"), "--authorized-keys", s.keysFile)
	s.cmd.Env = append(os.Environ(), "HOME="+s.home)
	s.cmd.Stderr = s.stderr
	group, err := child.Start(s.cmd)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		group.Wait(nil)
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			group.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("godist serve said:\n%s", s.stderr.String())
		}
	})
	if !waitFor(15*time.Second, func() bool { return knownLineRE.MatchString(s.stderr.String()) }) {
		t.Fatalf("godist serve did not start:\n%s", s.stderr.String())
	}
	out := s.stderr.String()
	s.port, _ = strconv.Atoi(listeningRE.FindStringSubmatch(out)[1])
	s.spec = "socket=127.0.0.1:" + strconv.Itoa(s.port)
	s.fingerprint = hostKeyRE.FindStringSubmatch(out)[1]
	line := knownLineRE.FindStringSubmatch(out)[1]
	if want := "[127.0.0.1]:" + strconv.Itoa(s.port) + " ssh-ed25519 AAAA"; !strings.HasPrefix(line, want) {
		t.Fatalf("known_hosts line %q, want it to start %q", line, want)
	}
	if err := os.WriteFile(s.knownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// env is a client environment with the test HOME, no ssh-agent, and this machine's go
// caches.
func (s *serveProc) env(t *testing.T) []string {
	t.Helper()
	env := append(os.Environ(), "NO_COLOR=1")
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	return append(env, "HOME="+s.home, "SSH_AUTH_SOCK=")
}

// workers are the processes below the serve process: its workers and what they run.
func (s *serveProc) workers() []int {
	select {
	case <-s.exited:
		return nil
	default:
	}
	return proc.Descendants(s.cmd.Process.Pid)
}

func (s *serveProc) assertNoWorkers(t *testing.T, within time.Duration) {
	t.Helper()
	if !waitFor(within, func() bool { return len(s.workers()) == 0 }) {
		t.Fatalf("godist serve still has processes %v", s.workers())
	}
}

func TestServePing(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	res, out, code := pingJSON(t, s.env(t), s.spec, "2*"+s.spec+"//chdir=wd//env:FOO=bar")
	if code != 0 || len(res) != 3 {
		t.Fatalf("exit %d, %d results:\n%s", code, len(res), out)
	}
	kids := map[int]bool{}
	for _, pid := range proc.Descendants(s.cmd.Process.Pid) {
		kids[pid] = true
	}
	pids := map[int]bool{}
	for i, r := range res {
		if r.ID == "" || r.GOOS != "linux" || r.GOARCH == "" || r.Hostname == "" || r.PID == 0 || r.Cwd == "" ||
			r.NCPU < 1 || r.Version == "" || r.StartupMS < 0 || r.Shipped != 0 || r.Error != "" {
			t.Errorf("incomplete ping result %+v", r)
		}
		wantCwd := s.home
		if i > 0 {
			wantCwd = filepath.Join(s.home, "wd")
		}
		if r.Cwd != wantCwd {
			t.Errorf("%s: cwd %q, want %q", r.ID, r.Cwd, wantCwd)
		}
		pids[r.PID] = true
	}
	if len(pids) != 3 {
		t.Errorf("workers %v: want three of them", pids)
	}
	if !strings.Contains(s.stderr.String(), `connected: user "`) || !strings.Contains(s.stderr.String(), "worker pid ") {
		t.Errorf("no connection and session lines in the server's log:\n%s", s.stderr.String())
	}
	s.assertNoWorkers(t, 10*time.Second)
}

// An unknown host key is refused with the host, its fingerprint and the known_hosts file.
func TestServeUnknownHostKeyRefused(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	if err := os.WriteFile(s.knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, out, code := pingJSON(t, s.env(t), s.spec)
	if code != 3 {
		t.Errorf("exit %d, want 3", code)
	}
	// The hint names the line godist serve printed at start, and the file to add it to.
	serveLine := "known_hosts line for clients: [127.0.0.1]:" + strconv.Itoa(s.port) + " ssh-ed25519"
	for _, want := range []string{"127.0.0.1:" + strconv.Itoa(s.port), s.fingerprint, s.knownHosts, "add to " + s.knownHosts, serveLine} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal does not name %q:\n%s", want, out)
		}
	}
	if !strings.Contains(s.stderr.String(), serveLine) {
		t.Fatalf("godist serve did not print %q at start:\n%s", serveLine, s.stderr.String())
	}

	// A run: the same one line on stderr, exit status 3, no package reported.
	stdout, stderr, code := runWithEnv(t, s.env(t), fixturesDir(t), "--tx", s.spec, "--durations", filepath.Join(t.TempDir(), "d.json"), "./pass")
	if lines := strings.Split(strings.TrimRight(string(stderr), "\n"), "\n"); code != 3 || len(lines) != 1 || !strings.Contains(lines[0], serveLine) {
		t.Errorf("run: exit %d, stderr not one line naming %q:\n%s", code, serveLine, stderr)
	}
	if strings.Contains(string(stdout), "FAIL") {
		t.Errorf("run: stdout reports a package that never ran:\n%s", stdout)
	}

	// A key that changed: the hint names the line recorded, and godist serve's.
	other := writeUserKey(t, filepath.Join(t.TempDir(), "other"))
	stale := "# an old key\n[127.0.0.1]:" + strconv.Itoa(s.port) + " " + string(ssh.MarshalAuthorizedKey(other))
	if err := os.WriteFile(s.knownHosts, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	_, out, code = pingJSON(t, s.env(t), s.spec)
	for _, want := range []string{s.knownHosts + ":2", "possible man-in-the-middle", "replace line 2", serveLine} {
		if code != 3 || !strings.Contains(out, want) {
			t.Errorf("changed key: exit %d, refusal does not say %q:\n%s", code, want, out)
		}
	}
}

// A key that is not in the authorized keys file is refused, on both sides' say.
func TestServeKeyNotAuthorized(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	stranger := writeUserKey(t, s.identity)
	_, out, code := pingJSON(t, s.env(t), s.spec)
	if code != 3 || !strings.Contains(out, "authentication failed") || !strings.Contains(out, s.identity) {
		t.Errorf("exit %d, want 3 and an authentication failure naming %s:\n%s", code, s.identity, out)
	}
	want := "authentication failed: key " + ssh.FingerprintSHA256(stranger) + " not in " + s.keysFile
	if !waitFor(5*time.Second, func() bool { return strings.Contains(s.stderr.String(), want) }) {
		t.Errorf("the server did not log %q", want)
	}
}

// Tests run over socket= gateways give go test's results, and leave no worker behind.
func TestServeRunSameResultsAsGoTest(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	dir := fixturesDir(t)
	args := []string{"-timeout", "5s", "./pass", "./subtests", "./panic"}
	want := goTestJSON(t, dir, args...)
	jf := filepath.Join(t.TempDir(), "run.json")
	_, errOut, code := runWithEnv(t, s.env(t), dir, append([]string{"--tx", "2*" + s.spec, "--jsonfile", jf,
		"--durations", filepath.Join(t.TempDir(), "d.json")}, args...)...)
	if code != 1 {
		t.Errorf("exit %d, want 1 (fixtures fail):\n%s", code, errOut)
	}
	data, err := os.ReadFile(jf)
	if err != nil {
		t.Fatal(err)
	}
	got := parseStream(t, data, false)
	compareOutcomes(t, want, got, nil)
	if !got.workers["gw0"] && !got.workers["gw1"] {
		t.Errorf("events came from %v, want the socket gateways", got.workers)
	}
	s.assertNoWorkers(t, 10*time.Second)
}

// startHangOver starts a run of the hang fixture over s and returns once a test process
// runs under the server.
func startHangOver(t *testing.T, s *serveProc) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(godistBin, "--tx", "2*"+s.spec, "--durations", filepath.Join(t.TempDir(), "d.json"), "-timeout", "1m", "./hang")
	cmd.Dir = fixturesDir(t)
	cmd.Env = s.env(t)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	hangRunning := func() bool {
		for _, pid := range s.workers() {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			// The test process of the hang fixture, wherever its binary lives (the
			// workers of a remote gateway run it from their blob cache) and whatever
			// its -test.run: it runs in (the remote copy of) the fixture's directory.
			if bytes.Contains(b, []byte("-test.v=test2json")) && strings.HasSuffix(proc.Cwd(pid), hangDir) {
				return true
			}
		}
		return false
	}
	if !waitFor(60*time.Second, hangRunning) {
		t.Fatalf("the hang test never ran under the server; godist said:\n%s", out.String())
	}
	return cmd
}

// A master SIGKILLed in the middle of a run leaves no worker and no test process on the
// server.
func TestServeClientKilledLeavesNoWorker(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	cmd := startHangOver(t, s)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	s.assertNoWorkers(t, 15*time.Second)
	ended := func() bool {
		return strings.Contains(s.stderr.String(), "closed by the client") || strings.Contains(s.stderr.String(), "lost:")
	}
	if !waitFor(5*time.Second, ended) {
		t.Errorf("no line about the connection's end:\n%s", s.stderr.String())
	}
}

// SIGTERM ends godist serve with status 0, its workers and their test processes gone.
func TestServeSIGTERMExitsCleanly(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	startHangOver(t, s)
	procs := s.workers()
	if len(procs) == 0 {
		t.Fatal("no workers under the server")
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("godist serve did not exit within 15s of SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	var left []int
	for _, pid := range procs {
		if proc.Alive(pid) {
			left = append(left, pid)
		}
	}
	if len(left) > 0 {
		t.Errorf("processes %v of the server outlived it", left)
	}
	if !strings.Contains(s.stderr.String(), "godist serve: stopped") {
		t.Errorf("no stop line:\n%s", s.stderr.String())
	}
}

func TestServeBadUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve"},
		{"serve", "--listen", ":99999"},
		{"serve", "--listen", "127.0.0.1:x"},
		{"serve", "--listen", ":0", "extra"},
		{"serve", "--nope"},
	} {
		_, errOut, code := runCmd(t, t.TempDir(), godistBin, args...)
		if code != 2 || bytes.Count(bytes.TrimSpace(errOut), []byte("\n")) != 0 {
			t.Errorf("%q: exit %d, want 2 and one line:\n%s", args, code, errOut)
		}
	}
	// A missing authorized keys file is an error at start, not a server that lets nobody in.
	_, errOut, code := runCmd(t, t.TempDir(), godistBin, "serve", "--listen", "127.0.0.1:0",
		"--host-key", filepath.Join(t.TempDir(), "hk"), "--authorized-keys", "/nonexistent/authorized_keys")
	if code != 1 || !strings.Contains(string(errOut), "/nonexistent/authorized_keys") {
		t.Errorf("missing authorized keys: exit %d:\n%s", code, errOut)
	}
}

// A socket= gateway opened from a hop's host.
func TestServeVia(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	res, out, code := pingJSON(t, s.env(t), "popen//id=hop", s.spec+"//via=hop//env:FOO=bar")
	if code != 0 || len(res) != 2 || res[1].PID == 0 || res[1].PID == res[0].PID {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
