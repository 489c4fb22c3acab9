package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/godist/godist/internal/proc"
)

// The test binary doubles as the worker the server runs: with workerEnv set it says hello
// on stdout (pid, working directory, arguments, FOO and its process group), then does
// what SERVE_TEST_MODE (sent by the client as an env request) says:
//
//	"" (echo)   copy stdin to stdout, exit 0 at its end
//	fail        write "worker broke" to stderr, exit 3
//	stubborn    ignore SIGTERM and SIGHUP, read stdin to its end, then never exit
//	family      start a stubborn child (in the worker's process group), print "child=PID",
//	            read stdin to its end, then never exit
const workerEnv = "SERVE_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(testWorker())
	}
	os.Exit(m.Run())
}

func testWorker() int {
	cwd, _ := os.Getwd()
	fmt.Printf("hello pid=%d cwd=%s args=%q FOO=%s pgid=%d\n", os.Getpid(), cwd, os.Args[1:], os.Getenv("FOO"), syscall.Getpgrp())
	switch os.Getenv("SERVE_TEST_MODE") {
	case "fail":
		fmt.Fprintln(os.Stderr, "worker broke")
		return 3
	case "stubborn":
		signal.Ignore(syscall.SIGTERM, syscall.SIGHUP)
		io.Copy(io.Discard, os.Stdin)
		select {}
	case "family":
		exe, _ := os.Executable()
		p, err := os.StartProcess(exe, []string{exe, "-test.run=^$"}, &os.ProcAttr{
			Env:   append(os.Environ(), "SERVE_TEST_MODE=stubborn"),
			Files: []*os.File{nil, nil, os.Stderr},
		})
		if err != nil {
			fmt.Println("child error", err)
			return 1
		}
		fmt.Printf("child=%d\n", p.Pid)
		io.Copy(io.Discard, os.Stdin)
		select {}
	}
	io.Copy(os.Stdout, os.Stdin)
	return 0
}

// testServer is a Server on a loopback port with one authorized user key.
type testServer struct {
	srv     *Server
	addr    string
	hostKey ssh.PublicKey
	user    ssh.Signer // authorized
	keys    string     // the authorized keys file
	log     *syncBuffer
	cancel  context.CancelFunc
	done    chan error // Serve's result
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startServer(t *testing.T, configure func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{user: newSigner(t), log: &syncBuffer{}, done: make(chan error, 1)}
	host := newSigner(t)
	ts.hostKey = host.PublicKey()
	ts.keys = filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ts.keys, ssh.MarshalAuthorizedKey(ts.user.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{
		HostKey:            host,
		AuthorizedKeysFile: ts.keys,
		Worker:             []string{exe, "-test.run=^$"},
		Dir:                home,
		// A race-enabled worker would otherwise sleep a second at exit.
		Env:       append(os.Environ(), workerEnv+"=1", "GORACE=atexit_sleep_ms=0"),
		KillAfter: 3 * time.Second,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(ts.log, format+"\n", args...)
		},
	}
	if configure != nil {
		configure(cfg)
	}
	ts.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	l, err := ts.srv.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	go func() { ts.done <- ts.srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Serve did not return within 15s of its context's end")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", ts.log.String())
		}
	})
	return ts
}

func (ts *testServer) clientConfig(auth ...ssh.AuthMethod) *ssh.ClientConfig {
	if auth == nil {
		auth = []ssh.AuthMethod{ssh.PublicKeys(ts.user)}
	}
	return &ssh.ClientConfig{User: "tester", Auth: auth, HostKeyCallback: ssh.FixedHostKey(ts.hostKey), Timeout: 5 * time.Second}
}

func (ts *testServer) dial(t *testing.T) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", ts.addr, ts.clientConfig())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// worker is a session running a test worker.
type testSession struct {
	sess   *ssh.Session
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *syncBuffer
	hello  string
	pid    int
}

// startWorker opens a session on c, sends env, execs command and reads the worker's hello.
func startTestWorker(t *testing.T, c *ssh.Client, command string, env ...string) *testSession {
	t.Helper()
	ws, err := tryWorker(c, command, env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.sess.Close() })
	return ws
}

func tryWorker(c *ssh.Client, command string, env ...string) (*testSession, error) {
	sess, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	ws := &testSession{sess: sess, stderr: &syncBuffer{}}
	sess.Stderr = ws.stderr
	ws.stdin, _ = sess.StdinPipe()
	out, _ := sess.StdoutPipe()
	ws.stdout = bufio.NewReader(out)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if err := sess.Setenv(k, v); err != nil {
			sess.Close()
			return nil, fmt.Errorf("setenv %s: %w", k, err)
		}
	}
	if err := sess.Start(command); err != nil {
		sess.Close()
		return nil, err
	}
	line, err := ws.stdout.ReadString('\n')
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("no hello from the worker: %v (stderr %q)", err, ws.stderr.String())
	}
	ws.hello = line
	if _, err := fmt.Sscanf(line, "hello pid=%d", &ws.pid); err != nil {
		sess.Close()
		return nil, fmt.Errorf("hello %q: %v", line, err)
	}
	return ws, nil
}

func waitGone(t *testing.T, d time.Duration, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, pid := range pids {
		for proc.Alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still running after %v", pid, d)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func waitLog(t *testing.T, ts *testServer, d time.Duration, want string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(ts.log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log %q within %v", want, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWorkerRunsAndEchoes(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t)
	for _, command := range WorkerCommands {
		ws := startTestWorker(t, c, command)
		fmt.Fprintf(ws.stdin, "ping %s\n", command)
		line, err := ws.stdout.ReadString('\n')
		if err != nil || line != "ping "+command+"\n" {
			t.Fatalf("%s: echo gave %q, %v", command, line, err)
		}
		if !strings.Contains(ws.hello, "cwd="+filepath.Join(filepath.Dir(ts.keys), "home")+" ") {
			t.Errorf("worker not in Config.Dir: %s", ws.hello)
		}
		ws.stdin.Close()
		if err := ws.sess.Wait(); err != nil {
			t.Errorf("%s: exit: %v", command, err)
		}
		waitGone(t, 5*time.Second, ws.pid)
	}
	waitLog(t, ts, 5*time.Second, "exited with status 0")
	if !strings.Contains(ts.log.String(), `connected: user "tester", key ssh-ed25519 `+ssh.FingerprintSHA256(ts.user.PublicKey())) {
		t.Errorf("no connection line with the key's fingerprint:\n%s", ts.log.String())
	}
}

func TestWorkerExitStatusAndStderr(t *testing.T) {
	ts := startServer(t, nil)
	ws := startTestWorker(t, ts.dial(t), "godist worker", "SERVE_TEST_MODE=fail")
	err := ws.sess.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("exit: %v, want status 3", err)
	}
	if !strings.Contains(ws.stderr.String(), "worker broke") {
		t.Errorf("stderr %q", ws.stderr.String())
	}
	waitLog(t, ts, 5*time.Second, `exited with status 3`)
	if !strings.Contains(ts.log.String(), `"worker broke"`) {
		t.Errorf("the log does not quote the worker's last stderr line:\n%s", ts.log.String())
	}
}

func TestEnvChdirAndNice(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t)
	ws := startTestWorker(t, c, "godist worker", "FOO=bar baz", EnvChdir+"=sub/dir", EnvNice+"=7")
	want := filepath.Join(filepath.Dir(ts.keys), "home", "sub", "dir")
	if !strings.Contains(ws.hello, "cwd="+want+" ") || !strings.Contains(ws.hello, `args=["-test.run=^$" "--nice" "7"]`) ||
		!strings.Contains(ws.hello, "FOO=bar baz ") {
		t.Errorf("hello %q: want cwd %s, --nice 7 and FOO", ws.hello, want)
	}
	if strings.Contains(ws.hello, "GODIST_SERVE") {
		t.Errorf("the server's own names reached the worker: %s", ws.hello)
	}
	// An absolute directory is taken as it is.
	abs := filepath.Join(t.TempDir(), "abs")
	ws = startTestWorker(t, c, "worker", EnvChdir+"="+abs)
	if !strings.Contains(ws.hello, "cwd="+abs+" ") {
		t.Errorf("hello %q: want cwd %s", ws.hello, abs)
	}
}

func TestBadEnvFailsTheExecWithAMessage(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t)
	for _, kv := range []struct{ name, value, want string }{
		{"BAD-NAME", "x", "BAD-NAME"},
		{"1X", "x", "1X"},
		{"X", "a\x00b", "NUL"},
		{EnvNice, "99", "-20..19"},
		{EnvNice, "x", "-20..19"},
		{EnvChdir, "", "empty"},
	} {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stderr syncBuffer
		sess.Stderr = &stderr
		// Without want-reply, as the socket= client sends them: the refusal comes at exec.
		sess.SendRequest("env", false, ssh.Marshal(&struct{ Name, Value string }{kv.name, kv.value}))
		if err := sess.Run("godist worker"); err == nil {
			t.Errorf("env %q=%q: the worker ran", kv.name, kv.value)
		}
		if !strings.Contains(stderr.String(), kv.want) {
			t.Errorf("env %q=%q: stderr %q does not say %q", kv.name, kv.value, stderr.String(), kv.want)
		}
		sess.Close()
	}
	// With want-reply the refusal is immediate.
	sess, _ := c.NewSession()
	defer sess.Close()
	if err := sess.Setenv("A=B", "x"); err == nil {
		t.Error("an env name with '=' was accepted")
	}
	// Too many variables.
	sess2, _ := c.NewSession()
	defer sess2.Close()
	var refused bool
	for i := 0; i <= maxEnvVars; i++ {
		if err := sess2.Setenv(fmt.Sprintf("V%d", i), "x"); err != nil {
			refused = true
			break
		}
	}
	if !refused {
		t.Errorf("more than %d env variables accepted", maxEnvVars)
	}
}

func TestAuthentication(t *testing.T) {
	ts := startServer(t, nil)
	ts.dial(t).Close()

	stranger := newSigner(t)
	_, err := ssh.Dial("tcp", ts.addr, ts.clientConfig(ssh.PublicKeys(stranger)))
	if err == nil {
		t.Fatal("a key not in the authorized keys file was let in")
	}
	waitLog(t, ts, 5*time.Second, "authentication failed: key "+ssh.FingerprintSHA256(stranger.PublicKey())+" not in "+ts.keys)

	// No password, no keyboard-interactive, whatever they say.
	for name, m := range map[string]ssh.AuthMethod{
		"password": ssh.Password("secret"),
		"keyboard-interactive": ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return nil, nil
		}),
	} {
		if _, err := ssh.Dial("tcp", ts.addr, ts.clientConfig(m)); err == nil {
			t.Errorf("%s authentication let in", name)
		}
	}

	// The file is read at each connection: a key added is let in, a key removed is not.
	f, err := os.OpenFile(ts.keys, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(ssh.MarshalAuthorizedKey(stranger.PublicKey()))
	f.Close()
	c, err := ssh.Dial("tcp", ts.addr, ts.clientConfig(ssh.PublicKeys(stranger)))
	if err != nil {
		t.Fatalf("a key added to the file is refused: %v", err)
	}
	c.Close()
	if err := os.WriteFile(ts.keys, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ssh.Dial("tcp", ts.addr, ts.clientConfig()); err == nil {
		t.Fatal("a key removed from the file was let in")
	}

	// A key with an option serve does not honour is not let in.
	line := `from="10.0.0.1" ` + string(ssh.MarshalAuthorizedKey(ts.user.PublicKey()))
	if err := os.WriteFile(ts.keys, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ssh.Dial("tcp", ts.addr, ts.clientConfig()); err == nil {
		t.Fatal("a key with from= was let in")
	}
	waitLog(t, ts, 5*time.Second, "options godist serve does not honour (from)")
}

func TestOnlyWorkersRun(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t)
	for _, command := range []string{"sh", "ls", "godist  worker", "godist worker --nice 1", "godist worker; sh", "/bin/sh -c 'godist worker'", "", "WORKER"} {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stderr syncBuffer
		sess.Stderr = &stderr
		if err := sess.Start(command); err == nil {
			t.Errorf("exec %q was accepted", command)
		}
		sess.Close()
	}
	sess, _ := c.NewSession()
	if err := sess.Shell(); err == nil {
		t.Error("a shell was started")
	}
	sess.Close()
	sess, _ = c.NewSession()
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
		t.Error("a pty was granted")
	}
	sess.Close()
	sess, _ = c.NewSession()
	if err := sess.RequestSubsystem("sftp"); err == nil {
		t.Error("the sftp subsystem was started")
	}
	sess.Close()
	sess, _ = c.NewSession()
	for _, req := range []string{"auth-agent-req@openssh.com", "x11-req", "signal", "break"} {
		if ok, err := sess.SendRequest(req, true, nil); ok || err != nil {
			t.Errorf("%s: ok=%v err=%v, want refused", req, ok, err)
		}
	}
	// A malformed exec request.
	if ok, _ := sess.SendRequest("exec", true, []byte{0, 0, 0, 9, 'x'}); ok {
		t.Error("a malformed exec was accepted")
	}
	sess.Close()
	// Port forwarding, both ways, and other channel types.
	if conn, err := c.Dial("tcp", ts.addr); err == nil {
		conn.Close()
		t.Error("a direct-tcpip channel was opened")
	}
	if l, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
		t.Error("a remote port forward was set up")
	}
	if ch, _, err := c.OpenChannel("x11", nil); err == nil {
		ch.Close()
		t.Error("an x11 channel was opened")
	}
	// After all that the connection still runs a worker.
	ws := startTestWorker(t, c, "godist worker")
	ws.stdin.Close()
	if err := ws.sess.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`refused exec "ls"`, `refused "shell" request`, `refused "pty-req" request`, `refused "subsystem" request`, `refused channel "direct-tcpip"`} {
		if !strings.Contains(ts.log.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestSecondExecRefused(t *testing.T) {
	ts := startServer(t, nil)
	ws := startTestWorker(t, ts.dial(t), "godist worker")
	if ok, _ := ws.sess.SendRequest("exec", true, ssh.Marshal(&struct{ Command string }{"godist worker"})); ok {
		t.Fatal("a second exec on one session was accepted")
	}
	if ok, _ := ws.sess.SendRequest("env", true, ssh.Marshal(&struct{ Name, Value string }{"A", "b"})); ok {
		t.Fatal("env after exec was accepted")
	}
}

func TestMaxSessionsPerConnection(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxSessionsPerConn = 2 })
	c := ts.dial(t)
	a := startTestWorker(t, c, "godist worker")
	startTestWorker(t, c, "godist worker")
	_, err := c.NewSession()
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Fatalf("third session: %v, want administratively prohibited", err)
	}
	// A session that ends makes room.
	a.stdin.Close()
	a.sess.Wait()
	a.sess.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws, err := tryWorker(c, "godist worker")
		if err == nil {
			ws.sess.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a session ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The worker goes when its session does, however the session ends; one that does not exit
// is killed with its process group after KillAfter.
func TestWorkerGoesWithItsSession(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.KillAfter = 300 * time.Millisecond })
	c := ts.dial(t)

	// Session closed: stdin ends, the worker exits.
	ws := startTestWorker(t, c, "godist worker")
	ws.sess.Close()
	waitGone(t, 5*time.Second, ws.pid)

	// A worker that ignores the end of its input is killed after KillAfter, with the
	// process group it leads: its child goes too.
	ws = startTestWorker(t, c, "godist worker", "SERVE_TEST_MODE=family")
	line, err := ws.stdout.ReadString('\n')
	var child int
	if _, err2 := fmt.Sscanf(line, "child=%d", &child); err != nil || err2 != nil {
		t.Fatalf("child line %q: %v %v", line, err, err2)
	}
	start := time.Now()
	ws.sess.Close()
	waitGone(t, 5*time.Second, ws.pid)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("the stubborn worker went after %v, before KillAfter", d)
	}
	waitGone(t, 5*time.Second, child)
	waitLog(t, ts, 5*time.Second, "still there 300ms after its session ended; killed")

	// Connection lost (the client's socket closed under it): same.
	raw, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(raw, ts.addr, ts.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	c2 := ssh.NewClient(sc, chans, reqs)
	defer c2.Close()
	ws = startTestWorker(t, c2, "godist worker", "SERVE_TEST_MODE=stubborn")
	raw.Close()
	waitGone(t, 5*time.Second, ws.pid)
}

// A worker started in a process group of its own: killing the group takes processes that
// stayed in it.
func TestWorkerProcessGroupKilled(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.KillAfter = 200 * time.Millisecond })
	ws := startTestWorker(t, ts.dial(t), "godist worker", "SERVE_TEST_MODE=stubborn")
	var pgid int
	if i := strings.Index(ws.hello, "pgid="); i >= 0 {
		pgid, _ = strconv.Atoi(strings.TrimSpace(ws.hello[i+5:]))
	}
	if pgid != ws.pid {
		t.Fatalf("worker pid %d is in process group %d, want its own", ws.pid, pgid)
	}
	ws.sess.Close()
	waitGone(t, 5*time.Second, ws.pid)
}

// Garbage instead of a protocol: the connection is dropped and the server goes on.
func TestGarbageBytes(t *testing.T) {
	ts := startServer(t, nil)
	for i, prefix := range []string{"", "SSH-2.0-x\r\n"} {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, 64<<10)
		rand.Read(junk)
		go func() {
			conn.Write(append([]byte(prefix), junk...))
		}()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, conn)
		conn.Close()
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("case %d: the server did not close the connection: %v", i, err)
		}
	}
	ws := startTestWorker(t, ts.dial(t), "godist worker")
	ws.sess.Close()
}

// A connection that sends nothing is closed after HandshakeTimeout; so is one that stops
// in the middle of the handshake. Others are served meanwhile.
func TestStalledHandshakesReleased(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.HandshakeTimeout = 700 * time.Millisecond })
	silent, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	midway, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer midway.Close()
	// A version line and the start of a key exchange packet, then nothing.
	midway.Write([]byte("SSH-2.0-stalled\r\n\x00\x00\x01\x00\x08\x14"))
	start := time.Now()

	// Meanwhile a real client gets in and runs a worker.
	ws := startTestWorker(t, ts.dial(t), "godist worker")
	ws.sess.Close()

	for name, conn := range map[string]net.Conn{"silent": silent, "midway": midway} {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, conn) // the server's banner, then the end
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s connection not closed by the server: %v", name, err)
		}
		if d := time.Since(start); d < 600*time.Millisecond {
			t.Errorf("%s connection closed after %v, before the handshake deadline", name, d)
		}
	}
	waitLog(t, ts, 5*time.Second, "closed: no SSH handshake within 700ms")
}

// At most MaxUnauthenticated connections are in their handshake at once; more are closed
// at once, and once those end, clients get in again.
func TestUnauthenticatedFlood(t *testing.T) {
	const limit = 4
	ts := startServer(t, func(c *Config) { c.MaxUnauthenticated = limit })
	var flood []net.Conn
	for i := 0; i < limit; i++ {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// The banner says the server took it into its handshake.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.HasPrefix(line, serverVersion) {
			t.Fatalf("connection %d: banner %q, %v", i, line, err)
		}
		flood = append(flood, conn)
	}
	extra, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(extra); len(b) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("connection over the limit: read %q, %v; want closed without a banner", b, err)
	}
	extra.Close()
	if _, err := ssh.Dial("tcp", ts.addr, ts.clientConfig()); err == nil {
		t.Error("a client got in while the handshake slots were all taken")
	}
	for _, c := range flood {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := ssh.Dial("tcp", ts.addr, ts.clientConfig())
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client gets in after the flood ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitLog(t, ts, time.Second, "connections already in their handshake")
}

// freezeConn stops delivering what the server sends once frozen, as a client whose machine
// vanished would.
type freezeConn struct {
	net.Conn
	frozen chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (f *freezeConn) Read(p []byte) (int, error) {
	select {
	case <-f.frozen:
		<-f.closed
		return 0, net.ErrClosed
	default:
	}
	return f.Conn.Read(p)
}

func (f *freezeConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return f.Conn.Close()
}

func TestKeepaliveDropsVanishedClient(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.KeepaliveInterval = 100 * time.Millisecond
		c.KeepaliveCountMax = 3
		c.KillAfter = 200 * time.Millisecond
	})
	raw, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	fc := &freezeConn{Conn: raw, frozen: make(chan struct{}), closed: make(chan struct{})}
	sc, chans, reqs, err := ssh.NewClientConn(fc, ts.addr, ts.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := ssh.NewClient(sc, chans, reqs)
	defer c.Close()
	ws := startTestWorker(t, c, "godist worker")
	close(fc.frozen)
	waitLog(t, ts, 5*time.Second, "no answer to keepalives for 300ms; closing the connection")
	waitGone(t, 5*time.Second, ws.pid)
}

// Shutdown ends every session and waits for the workers, even stubborn ones.
func TestShutdownWaitsForWorkers(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.KillAfter = 300 * time.Millisecond })
	c := ts.dial(t)
	a := startTestWorker(t, c, "godist worker")
	b := startTestWorker(t, c, "godist worker", "SERVE_TEST_MODE=stubborn")
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		ts.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if proc.Alive(a.pid) || proc.Alive(b.pid) {
		t.Errorf("workers left after Serve returned: %d %v, %d %v", a.pid, proc.Alive(a.pid), b.pid, proc.Alive(b.pid))
	}
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		t.Error("the listener still accepts after Serve returned")
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(&Config{AuthorizedKeysFile: "x"}); err == nil {
		t.Error("no host key accepted")
	}
	if _, err := New(&Config{HostKey: newSigner(t)}); err == nil {
		t.Error("no authorized keys file accepted")
	}
	if _, err := New(&Config{HostKey: newSigner(t), AuthorizedKeysFile: "x", KillAfter: -1}); err == nil {
		t.Error("negative KillAfter accepted")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
