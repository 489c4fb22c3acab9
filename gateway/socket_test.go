package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/godist/godist/internal/proc"
	"github.com/godist/godist/internal/tail"
	"github.com/godist/godist/serve"
	"github.com/godist/godist/xspec"
)

// socketServer is a godist serve (in this process, over real TCP) whose workers are this
// test binary, and a HOME whose ~/.ssh reaches it as a user's would.
type socketServer struct {
	addr       string
	port       int
	home       string
	identity   string // HOME/.ssh/id_ed25519, in the authorized keys
	knownHosts string // HOME/.ssh/known_hosts, with the server's key
	hostKey    ssh.PublicKey
	workDir    string // the workers' Config.Dir
	log        *tail.Buffer
}

func writeIdentity(t *testing.T, file string) ssh.PublicKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "socket-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s.PublicKey()
}

func startSocketServer(t *testing.T, configure func(*serve.Config)) *socketServer {
	t.Helper()
	dir := t.TempDir()
	s := &socketServer{home: filepath.Join(dir, "home"), workDir: filepath.Join(dir, "work"), log: tail.New(64 << 10)}
	s.identity = filepath.Join(s.home, ".ssh", "id_ed25519")
	userKey := writeIdentity(t, s.identity)
	keysFile := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(keysFile, ssh.MarshalAuthorizedKey(userKey), 0o600); err != nil {
		t.Fatal(err)
	}
	hostSigner, _, err := serve.LoadOrCreateHostKey(filepath.Join(dir, "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	s.hostKey = hostSigner.PublicKey()
	if err := os.Mkdir(s.workDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	var logMu sync.Mutex
	cfg := &serve.Config{
		HostKey:            hostSigner,
		AuthorizedKeysFile: keysFile,
		Worker:             []string{exe},
		Dir:                s.workDir,
		Env:                append(os.Environ(), workerEnv+"=1", "GORACE=atexit_sleep_ms=0"),
		Logf: func(format string, args ...any) {
			logMu.Lock()
			defer logMu.Unlock()
			fmt.Fprintf(s.log, format+"\n", args...)
		},
	}
	if configure != nil {
		configure(cfg)
	}
	srv, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := srv.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.port = l.Addr().(*net.TCPAddr).Port
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", s.log.Bytes())
		}
	})
	s.knownHosts = filepath.Join(s.home, ".ssh", "known_hosts")
	if err := os.WriteFile(s.knownHosts, []byte(serve.KnownHostsLine("127.0.0.1", strconv.Itoa(s.port), s.hostKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// opts are the Options of a master whose HOME is the server's test home, without an
// ssh-agent.
func (s *socketServer) opts(env ...string) Options {
	getenv := func(k string) string {
		switch k {
		case "HOME":
			return s.home
		case "SSH_AUTH_SOCK":
			return ""
		}
		return os.Getenv(k)
	}
	return Options{Env: env, SSH: &sshPoolConfig{Getenv: getenv}}
}

func (s *socketServer) spec(t *testing.T, keys string) *xspec.Spec {
	t.Helper()
	sp, err := xspec.Parse(fmt.Sprintf("socket=127.0.0.1:%d%s", s.port, keys))
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func remoteGetenv(t *testing.T, g *Gateway, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := g.RemoteExec(ctx, "getenv")
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Send(ctx, name); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := ch.Receive(ctx, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A socket= gateway runs a worker on the server with the spec's directory and environment
// and the master's, and its Close takes the worker away.
func TestSocketGateway(t *testing.T) {
	s := startSocketServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Start(ctx, "gw0", s.spec(t, "//chdir=sub//env:FOO=from-spec"), s.opts("GODIST_WORKER=gw0"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Info.PID == 0 || g.Info.PID == os.Getpid() || g.Shipped != 0 {
		t.Errorf("info %+v, shipped %d", g.Info, g.Shipped)
	}
	if want := filepath.Join(s.workDir, "sub"); g.Info.Cwd != want {
		t.Errorf("worker cwd %q, want %q (chdir= relative to the server's directory)", g.Info.Cwd, want)
	}
	if v := remoteGetenv(t, g, "FOO"); v != "from-spec" {
		t.Errorf("FOO=%q on the worker", v)
	}
	if v := remoteGetenv(t, g, "GODIST_WORKER"); v != "gw0" {
		t.Errorf("GODIST_WORKER=%q on the worker", v)
	}
	if v := remoteGetenv(t, g, serve.EnvChdir); v != "" {
		t.Errorf("%s reached the worker: %q", serve.EnvChdir, v)
	}
	pid := g.Info.PID
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for proc.Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("worker %d still running after Close", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSocketUnknownHostKeyRefused(t *testing.T) {
	s := startSocketServer(t, nil)
	if err := os.WriteFile(s.knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), "gw0", s.spec(t, ""), s.opts())
	if err == nil {
		t.Fatal("an unknown host key was accepted")
	}
	for _, want := range []string{s.addr, ssh.FingerprintSHA256(s.hostKey), s.knownHosts} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal does not name %q: %v", want, err)
		}
	}
	// A different key recorded for the address: refused as a change.
	other := writeIdentity(t, filepath.Join(t.TempDir(), "other"))
	os.WriteFile(s.knownHosts, []byte(serve.KnownHostsLine("127.0.0.1", strconv.Itoa(s.port), other)+"\n"), 0o600)
	_, err = Start(context.Background(), "gw0", s.spec(t, ""), s.opts())
	if err == nil || !strings.Contains(err.Error(), "does not match") || !strings.Contains(err.Error(), s.knownHosts+":1") {
		t.Errorf("changed host key: %v", err)
	}
}

func TestSocketKeyNotAuthorized(t *testing.T) {
	s := startSocketServer(t, nil)
	writeIdentity(t, s.identity) // a new key, not the authorized one
	_, err := Start(context.Background(), "gw0", s.spec(t, ""), s.opts())
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), s.identity) {
		t.Fatalf("got %v, want an authentication failure naming %s", err, s.identity)
	}
}

// ~/.ssh/config says how to log in (IdentityFile here) but not where: a socket= spec names
// its address itself.
func TestSocketConfigAddressNotUsed(t *testing.T) {
	s := startSocketServer(t, nil)
	moved := filepath.Join(s.home, "keys", "mine")
	os.MkdirAll(filepath.Dir(moved), 0o700)
	if err := os.Rename(s.identity, moved); err != nil {
		t.Fatal(err)
	}
	conf := "Host 127.0.0.1\n\tHostName 192.0.2.1\n\tPort 1\n\tProxyJump nowhere.invalid:1\n\nHost *\n\tIdentityFile ~/keys/mine\n"
	if err := os.WriteFile(filepath.Join(s.home, ".ssh", "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Start(ctx, "gw0", s.spec(t, ""), s.opts())
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}

// Gateways of a group share connections; a server that allows fewer sessions per
// connection gets more connections.
func TestSocketSessionsPerConnection(t *testing.T) {
	s := startSocketServer(t, func(c *serve.Config) { c.MaxSessionsPerConn = 2 })
	group := NewGroup(s.opts())
	defer group.Terminate(5 * time.Second)
	spec := s.spec(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var gws []xspec.Gateway
	for i := 0; i < 5; i++ {
		gws = append(gws, xspec.Gateway{ID: fmt.Sprintf("gw%d", i), Spec: spec})
	}
	out, errs := group.StartAll(ctx, gws)
	pids := map[int]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("gw%d: %v", i, err)
		}
		pids[out[i].Info.PID] = true
	}
	if len(pids) != 5 {
		t.Errorf("%d distinct workers for 5 gateways", len(pids))
	}
	res, err := resolveSocketWith(group.ssh.getenv, "127.0.0.1", s.port)
	if err != nil {
		t.Fatal(err)
	}
	if n := group.ssh.connections(res); n != 3 {
		t.Errorf("%d connections for 5 sessions at 2 a connection, want 3", n)
	}
	if err := group.Terminate(5 * time.Second); err != nil {
		t.Errorf("Terminate: %v", err)
	}
	if n := group.ssh.connections(res); n != 0 {
		t.Errorf("%d connections left after Terminate", n)
	}
}

// A bad chdir= is the server's refusal, and the start error is its reason, in the spec's
// terms (not the server's GODIST_SERVE_CHDIR, nor the handshake that found no worker).
func TestSocketStartFailureSaysWhy(t *testing.T) {
	s := startSocketServer(t, nil)
	blocker := filepath.Join(s.workDir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := s.spec(t, "//chdir=file/sub")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Start(ctx, "gw0", spec, s.opts())
	if err == nil {
		g.Close()
		t.Fatal("started in a directory under a file")
	}
	want := "gateway gw0 (" + spec.Raw + "): chdir file/sub: mkdir " + blocker + ": not a directory"
	if err.Error() != want {
		t.Fatalf("got  %q\nwant %q", err, want)
	}
}
