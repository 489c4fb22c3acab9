package gateway

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
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/godist/godist/internal/sshdtest"
	"github.com/godist/godist/xspec"
)

// These tests run against real sshd processes (internal/sshdtest). They set HOME with
// t.Setenv, so none of them is parallel.

func sshSpec(t testing.TB, target string) *xspec.Spec {
	sp, err := xspec.Parse("ssh=" + target)
	if err != nil {
		panic(err)
	}
	return sp
}

// sshUse points HOME at home and keeps the caller's ssh-agent out.
func sshUse(t *testing.T, home string) {
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
}

// sshHome makes a HOME whose ~/.ssh/config is config.
func sshHome(t *testing.T, config string) string {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

func testPool(t *testing.T, cfg *sshPoolConfig) *sshPool {
	if cfg == nil {
		cfg = &sshPoolConfig{}
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	p := newSSHPool(cfg)
	t.Cleanup(func() { p.Close() })
	return p
}

func openShellT(t *testing.T, p *sshPool, target, command string) *sshShell {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rwc, err := p.openShell(ctx, sshSpec(t, target), command)
	if err != nil {
		t.Fatalf("openShell(%s): %v", target, err)
	}
	t.Cleanup(func() { rwc.Close() })
	return rwc.(*sshShell)
}

// sshSay writes cmd to a shell and returns the first line it answers.
func sshSay(t *testing.T, sh io.ReadWriter, r *bufio.Reader, cmd string) string {
	t.Helper()
	if _, err := io.WriteString(sh, cmd+"\n"); err != nil {
		t.Fatalf("writing %q: %v", cmd, err)
	}
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := r.ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("reading the answer to %q: %v (got %q)", cmd, res.err, res.line)
		}
		return strings.TrimSuffix(res.line, "\n")
	case <-time.After(20 * time.Second):
		t.Fatalf("no answer to %q in 20s", cmd)
		return ""
	}
}

func TestSSHShellViaAlias(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	sshUse(t, s.Home)
	p := testPool(t, nil)
	sh := openShellT(t, p, s.Alias, "")
	r := bufio.NewReader(sh)
	if got := sshSay(t, sh, r, "echo hi"); got != "hi" {
		t.Fatalf("echo hi: got %q", got)
	}
	if got := sshSay(t, sh, r, "echo $HOME"); got != s.RemoteHome {
		t.Fatalf("remote HOME %q, want %q", got, s.RemoteHome)
	}
	sshSay(t, sh, r, "echo oops >&2; echo done")
	// stderr travels as its own stream: it may land just after stdout's answer.
	for deadline := time.Now().Add(5 * time.Second); string(sh.Stderr()) == "" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := string(sh.Stderr()); got != "oops\n" {
		t.Errorf("stderr tail %q, want %q", got, "oops\n")
	}
	// The command exits: Read ends with io.EOF, and the exit status is there.
	io.WriteString(sh, "exit 3\n")
	if b, err := io.ReadAll(sh); err != nil || len(b) != 0 {
		t.Fatalf("after exit: %q, %v; want EOF", b, err)
	}

	var ee *ssh.ExitError
	<-sh.Done()
	if err := sh.ExitErr(); !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("ExitErr = %v, want exit status 3", err)
	}
}

func TestSSHPrefersAESGCM(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{LogLevel: "DEBUG1"})
	sshUse(t, s.Home)
	sh := openShellT(t, testPool(t, nil), s.Alias, "true")
	io.ReadAll(sh)
	if !strings.Contains(s.Log(), "cipher: aes128-gcm@openssh.com") {
		t.Errorf("the connection does not use aes128-gcm@openssh.com")
	}
}

func TestSSHBulkBytes(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	sshUse(t, s.Home)
	p := testPool(t, nil)
	sh := openShellT(t, p, s.Alias, "cat")
	data := make([]byte, 8<<20) // well over the 2 MiB channel window, both ways
	rand.Read(data)
	go func() {
		sh.Write(data)
		sh.stdin.Close() // EOF for cat
	}()
	got, err := io.ReadAll(sh)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("cat returned %d bytes, differing from the %d sent", len(got), len(data))
	}
}

func TestSSHChrootedHost(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{Chroot: true})
	sshUse(t, s.Home)
	p := testPool(t, nil)
	sh := openShellT(t, p, s.Alias, "")
	r := bufio.NewReader(sh)
	if got := sshSay(t, sh, r, "ls /lib /usr >/dev/null 2>&1 || echo no-libc"); got != "no-libc" {
		t.Fatalf("got %q", got)
	}
	if got := sshSay(t, sh, r, "busybox uname -s"); got != "Linux" {
		t.Fatalf("uname -s: %q", got)
	}
}

func TestSSHExplicitUserAndPortWin(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	// The alias's config says port 1 and user nobody-here; the spec's user and port win.
	home := sshHome(t, fmt.Sprintf("Host wrong\n\tHostName 127.0.0.1\n\tPort 1\n\tUser nobody-here\n\tIdentityFile %s\n\tUserKnownHostsFile %s\n", s.IdentityFile, s.KnownHosts))
	sshUse(t, home)
	p := testPool(t, nil)
	sh := openShellT(t, p, fmt.Sprintf("%s@wrong:%d", s.User, s.Port), "echo hi")
	if b, err := io.ReadAll(sh); err != nil || string(b) != "hi\n" {
		t.Fatalf("got %q, %v", b, err)
	}
}

// startAgent serves keys on a unix socket as ssh-agent does and points SSH_AUTH_SOCK at it.
func startAgent(t *testing.T, keys ...any) {
	t.Helper()
	keyring := agent.NewKeyring()
	for _, k := range keys {
		if err := keyring.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				agent.ServeAgent(keyring, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	t.Setenv("SSH_AUTH_SOCK", sock)
}

func TestSSHAgentAuth(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	// No IdentityFile, and no key in this HOME: only the agent holds the key.
	home := sshHome(t, fmt.Sprintf("Host agenthost\n\tHostName 127.0.0.1\n\tPort %d\n\tUser %s\n\tUserKnownHostsFile %s\n", s.Port, s.User, s.KnownHosts))
	sshUse(t, home)
	p := testPool(t, nil)
	ctx := context.Background()
	_, err := p.openShell(ctx, sshSpec(t, "agenthost"), "true")
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), "no ssh-agent") {
		t.Fatalf("without the agent: %v; want an authentication failure that says there is no agent", err)
	}
	t.Logf("without the agent: %v", err)

	b, err := os.ReadFile(s.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, k)
	sh := openShellT(t, p, "agenthost", "echo hi")
	if b, err := io.ReadAll(sh); err != nil || string(b) != "hi\n" {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestSSHEncryptedKey(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	key := filepath.Join(dir, "id_enc")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(s.AuthorizedKeys, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(pub)
	f.Close()
	home := sshHome(t, fmt.Sprintf("Host enc\n\tHostName 127.0.0.1\n\tPort %d\n\tUser %s\n\tIdentityFile %s\n\tUserKnownHostsFile %s\n", s.Port, s.User, key, s.KnownHosts))
	sshUse(t, home)
	p := testPool(t, nil)

	_, err = p.openShell(context.Background(), sshSpec(t, "enc"), "true")
	if err == nil || !strings.Contains(err.Error(), key+" (encrypted and not in the ssh-agent)") {
		t.Fatalf("got %v; want a note that %s is encrypted", err, key)
	}
	t.Logf("encrypted key without agent: %v", err)
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error has several lines: %q", err)
	}

	// The agent holds the decrypted key: it is used for the encrypted file.
	b, _ := os.ReadFile(key)
	raw, err := ssh.ParseRawPrivateKeyWithPassphrase(b, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, raw)
	sh := openShellT(t, p, "enc", "echo hi")
	if b, err := io.ReadAll(sh); err != nil || string(b) != "hi\n" {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestSSHUnknownHostKeyRefused(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	sshUse(t, s.Home)
	if err := os.WriteFile(s.KnownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := testPool(t, nil)
	_, err := p.openShell(context.Background(), sshSpec(t, s.Alias), "true")
	var hke *sshHostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("got %v, want a host key error", err)
	}
	msg := err.Error()
	t.Logf("unknown host key: %s", msg)
	for _, want := range []string{s.Addr, s.HostKeyFingerprint, s.KnownHosts, "is not in", "ssh-keyscan"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message has several lines")
	}
	if n := strings.Count(s.Log(), "Accepted publickey"); n != 0 {
		t.Errorf("authenticated %d times to a host with an unknown key", n)
	}
}

func TestSSHChangedHostKeyRefused(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	sshUse(t, s.Home)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ssh.NewPublicKey(pub)
	line := fmt.Sprintf("# a comment\n[127.0.0.1]:%d %s", s.Port, ssh.MarshalAuthorizedKey(other))
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	p := testPool(t, nil)
	_, err = p.openShell(context.Background(), sshSpec(t, s.Alias), "true")
	var hke *sshHostKeyError
	if !errors.As(err, &hke) || hke.Recorded == nil {
		t.Fatalf("got %v, want a changed host key error", err)
	}
	msg := err.Error()
	t.Logf("changed host key: %s", msg)
	for _, want := range []string{s.Addr, s.HostKeyFingerprint, s.KnownHosts + ":2", "does not match", "man-in-the-middle"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q", want)
		}
	}
}

func TestSSHStrictHostKeyChecking(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	empty := filepath.Join(t.TempDir(), "known_hosts")
	for _, mode := range []string{"no", "accept-new"} {
		t.Run(mode, func(t *testing.T) {
			os.WriteFile(empty, nil, 0o600)
			home := sshHome(t, fmt.Sprintf("Host h\n\tHostName 127.0.0.1\n\tPort %d\n\tUser %s\n\tIdentityFile %s\n\tUserKnownHostsFile %s\n\tStrictHostKeyChecking %s\n", s.Port, s.User, s.IdentityFile, empty, mode))
			sshUse(t, home)
			var logs []string
			var mu sync.Mutex
			p := testPool(t, &sshPoolConfig{Logf: func(f string, a ...any) {
				mu.Lock()
				defer mu.Unlock()
				logs = append(logs, fmt.Sprintf(f, a...))
			}})
			sh := openShellT(t, p, "h", "echo hi")
			if b, err := io.ReadAll(sh); err != nil || string(b) != "hi\n" {
				t.Fatalf("got %q, %v", b, err)
			}
			mu.Lock()
			t.Logf("notes: %q", logs)
			if len(logs) != 1 || !strings.Contains(logs[0], s.HostKeyFingerprint) {
				t.Errorf("want one note naming the key, got %q", logs)
			}
			mu.Unlock()
			kh, _ := os.ReadFile(empty)
			if added := strings.Contains(string(kh), s.HostKey); added != (mode == "accept-new") {
				t.Errorf("known_hosts after the connection: %q", kh)
			}
		})
	}
}

func TestSSHHostKeyAlgorithmsFromKnownHosts(t *testing.T) {
	// The server has an ECDSA and an ed25519 key; known_hosts has only the ed25519 one.
	s := sshdtest.Start(t, sshdtest.Options{HostKeyTypes: []string{"ed25519", "ecdsa"}})
	sshUse(t, s.Home)

	// Left to its defaults, x/crypto asks for ECDSA first and finds a mismatch.
	keys, err := newSSHHostKeys(&sshConfigResolved{UserKnownHostsFiles: []string{s.KnownHosts}, StrictHostKeyChecking: "yes"}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{User: s.User, HostKeyCallback: keys.check})
	var hke *sshHostKeyError
	if !errors.As(err, &hke) || hke.KeyType != ssh.KeyAlgoECDSA256 {
		t.Fatalf("default algorithms: %v; want an ECDSA key mismatch (else this test proves nothing)", err)
	}

	p := testPool(t, nil)
	sh := openShellT(t, p, s.Alias, "echo hi")
	if b, err := io.ReadAll(sh); err != nil || string(b) != "hi\n" {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestSSHAuthFailureSaysWhatWasOffered(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	key := filepath.Join(dir, "id_other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	home := sshHome(t, fmt.Sprintf("Host h\n\tHostName 127.0.0.1\n\tPort %d\n\tUser %s\n\tIdentityFile %s\n\tIdentityFile %s/missing\n\tUserKnownHostsFile %s\n", s.Port, s.User, key, dir, s.KnownHosts))
	sshUse(t, home)
	p := testPool(t, nil)
	_, err := p.openShell(context.Background(), sshSpec(t, "h"), "true")
	if err == nil {
		t.Fatal("a key the server does not know got in")
	}
	t.Logf("auth failure: %v", err)
	for _, want := range []string{"h (" + s.User + "@" + s.Addr + ")", "authentication failed", "offered " + key, dir + "/missing (no such file)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q", want)
		}
	}
}

func TestSSHProxyJump(t *testing.T) {
	jump := sshdtest.Start(t, sshdtest.Options{LogLevel: "DEBUG1"})
	target := sshdtest.Start(t, sshdtest.Options{})
	config := jump.ConfigEntry("jump") + target.ConfigEntry("target") + "\tProxyJump jump\n" +
		target.ConfigEntry("target2") + "\tProxyJump jump,jump\n" +
		target.ConfigEntry("target3") + fmt.Sprintf("\tProxyJump ssh://%s@jump:%d\n", jump.User, jump.Port)
	sshUse(t, sshHome(t, config))
	p := testPool(t, nil)
	for i, alias := range []string{"target", "target2", "target3"} {
		sh := openShellT(t, p, alias, "echo hi")
		if b, err := io.ReadAll(sh); err != nil || string(b) != "hi\n" {
			t.Fatalf("%s: got %q, %v", alias, b, err)
		}
		// Each connection to target goes through jump: target2 through jump twice.
		want := []int{1, 3, 4}[i]
		if n := strings.Count(jump.Log(), "direct-tcpip"); n < want {
			t.Errorf("%s: jump host forwarded %d connections, want %d", alias, n, want)
		}
	}
	if n := strings.Count(target.Log(), "Accepted publickey"); n != 3 {
		t.Errorf("target accepted %d logins, want 3", n)
	}

	// A jump host that cannot be reached says so.
	sshUse(t, sshHome(t, target.ConfigEntry("t")+"\tProxyJump nosuch.invalid\n"))
	_, err := testPool(t, nil).openShell(context.Background(), sshSpec(t, "t"), "true")
	if err == nil || !strings.Contains(err.Error(), "jump host") || !strings.Contains(err.Error(), "nosuch.invalid") {
		t.Fatalf("unreachable jump host: %v", err)
	}
	t.Logf("unreachable jump host: %v", err)
}

func TestSSHMaxSessionsOpensMoreConnections(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{MaxSessions: 2})
	sshUse(t, s.Home)
	p := testPool(t, nil)
	res, err := resolveSSH(s.Alias, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var shells []*sshShell
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rwc, err := p.openShell(ctx, sshSpec(t, s.Alias), "")
			if err != nil {
				t.Errorf("openShell: %v", err)
				return
			}
			mu.Lock()
			shells = append(shells, rwc.(*sshShell))
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, sh := range shells {
		r := bufio.NewReader(sh)
		if got := sshSay(t, sh, r, fmt.Sprintf("echo %d", i)); got != fmt.Sprint(i) {
			t.Errorf("shell %d: %q", i, got)
		}
	}
	if n := p.connections(res); n != 3 {
		t.Errorf("%d connections for 5 shells with MaxSessions 2, want 3", n)
	}
	if n := strings.Count(s.Log(), "Accepted publickey"); n != 3 {
		t.Errorf("sshd accepted %d logins, want 3", n)
	}
	for _, sh := range shells {
		sh.Close()
	}
	if n := p.connections(res); n != 0 {
		t.Errorf("%d connections left after closing every shell", n)
	}
}

// freezeProxy forwards TCP connections to a target until frozen, then forwards nothing:
// a dead link, as when a cable is pulled, without any FIN or RST.
type freezeProxy struct {
	ln     net.Listener
	target string
	frozen chan struct{}
	closed chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target, frozen: make(chan struct{}), closed: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	t.Cleanup(func() {
		close(p.closed)
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			<-p.closed
			return
		default:
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (p *freezeProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func TestSSHDeadLinkDetected(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	px := startFreezeProxy(t, s.Addr)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", px.port(), s.HostKey)), 0o600)
	sshUse(t, sshHome(t, fmt.Sprintf("Host viaproxy\n\tHostName 127.0.0.1\n\tPort %d\n\tUser %s\n\tIdentityFile %s\n\tUserKnownHostsFile %s\n", px.port(), s.User, s.IdentityFile, kh)))

	const interval = 200 * time.Millisecond
	p := testPool(t, &sshPoolConfig{KeepaliveInterval: interval, KeepaliveCountMax: 3})
	sh := openShellT(t, p, "viaproxy", "")
	r := bufio.NewReader(sh)
	if got := sshSay(t, sh, r, "echo hi"); got != "hi" {
		t.Fatalf("echo hi: %q", got)
	}
	// Idle but alive: the keepalives are answered, the link stays up.
	time.Sleep(5 * interval)
	if got := sshSay(t, sh, r, "echo still"); got != "still" {
		t.Fatalf("after idling: %q", got)
	}

	close(px.frozen)
	frozeAt := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := r.ReadString('\n')
		errc <- err
	}()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("a dead link was not noticed in 10s")
	}
	took := time.Since(frozeAt)
	t.Logf("dead link noticed after %v: %v", took, err)
	if err == nil || err == io.EOF || !strings.Contains(err.Error(), "keepalive") || !strings.Contains(err.Error(), "viaproxy") {
		t.Errorf("read error %v; want one that names the host and the keepalives", err)
	}
	// Nothing came for 3 intervals; that began at most one interval (and a round trip)
	// before the freeze.
	if took < 3*interval-interval-50*time.Millisecond || took > 3*interval+time.Second {
		t.Errorf("noticed after %v; want about %v", took, 3*interval)
	}
	if _, err := sh.Write([]byte("echo x\n")); err == nil || !strings.Contains(err.Error(), "keepalive") {
		t.Errorf("write after the loss: %v", err)
	}
	res, _ := resolveSSH("viaproxy", "", 0)
	if n := p.connections(res); n != 0 {
		t.Errorf("the dead connection is still in the pool (%d)", n)
	}
}

func TestSSHDefaultKeepaliveWithin15s(t *testing.T) {
	c := newSSHPool(nil).cfg
	if d := time.Duration(c.KeepaliveCountMax) * c.KeepaliveInterval; d != 15*time.Second {
		t.Fatalf("default dead-link detection time %v, want 15s", d)
	}
}

// Options.Keepalive is the whole bound: three keepalives a third of it apart.
func TestSSHKeepaliveOptionIsTheWholeBound(t *testing.T) {
	c := newSSHPool(Options{Keepalive: 3 * time.Second}.sshConfig()).cfg
	if c.KeepaliveInterval != time.Second || c.KeepaliveCountMax != 3 {
		t.Errorf("Keepalive 3s: every %v, %d missed; want every 1s, 3 missed", c.KeepaliveInterval, c.KeepaliveCountMax)
	}
	if d := newSSHPool(Options{}.sshConfig()).cfg; time.Duration(d.KeepaliveCountMax)*d.KeepaliveInterval != DefaultKeepalive {
		t.Errorf("no Keepalive: bound %v, want DefaultKeepalive", time.Duration(d.KeepaliveCountMax)*d.KeepaliveInterval)
	}
}

func TestSSHCloseReleasesEverything(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{MaxSessions: 2})
	sshUse(t, s.Home)
	before := runtime.NumGoroutine()
	p := newSSHPool(&sshPoolConfig{KeepaliveInterval: 100 * time.Millisecond})
	var shells []*sshShell
	for i := 0; i < 3; i++ {
		rwc, err := p.openShell(context.Background(), sshSpec(t, s.Alias), "")
		if err != nil {
			t.Fatal(err)
		}
		sh := rwc.(*sshShell)
		if got := sshSay(t, sh, bufio.NewReader(sh), "echo hi"); got != "hi" {
			t.Fatalf("echo hi: %q", got)
		}
		shells = append(shells, sh)
	}
	if len(s.Children()) == 0 {
		t.Fatal("sshd has no session processes while shells are open")
	}
	// Close one shell, then the pool with the other two still open.
	shells[0].Close()
	p.Close()
	p.Close()
	for _, sh := range shells[1:] {
		if _, err := sh.Read(make([]byte, 1)); err == nil {
			t.Errorf("read from a shell of a closed pool succeeded")
		}
		sh.Close()
	}
	if _, err := p.openShell(context.Background(), sshSpec(t, s.Alias), ""); !errors.Is(err, errSSHPoolClosed) {
		t.Errorf("openShell after Close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before || len(s.Children()) > 0 {
		if time.Now().After(deadline) {
			var b bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("after Close: %d goroutines (%d before), sshd children %v\n%s", runtime.NumGoroutine(), before, s.Children(), b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSSHOpenShellUnblock(t *testing.T) {
	// A server that accepts and never says a word: the handshake waits for its banner.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	sshUse(t, sshHome(t, ""))

	t.Run("ctx", func(t *testing.T) {
		p := testPool(t, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.openShell(ctx, sshSpec(t, fmt.Sprintf("127.0.0.1:%d", port)), "")
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("got %v after %v; want the context's deadline after 200ms", err, time.Since(start))
		}
		t.Logf("%v", err)
	})
	t.Run("handshake-timeout", func(t *testing.T) {
		p := testPool(t, &sshPoolConfig{HandshakeTimeout: 200 * time.Millisecond})
		_, err := p.openShell(context.Background(), sshSpec(t, fmt.Sprintf("127.0.0.1:%d", port)), "")
		if err == nil || !strings.Contains(err.Error(), "no SSH handshake within 200ms") {
			t.Fatalf("got %v", err)
		}
		t.Logf("%v", err)
	})
}

// envOf makes a Getenv from environment entries, the last one winning.
func envOf(env []string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

// BenchmarkSSHDownload reads 32 MiB from a remote command, through this package and
// through OpenSSH's ssh, for comparison.
func BenchmarkSSHDownload(b *testing.B) {
	const size = 32 << 20
	s := sshdtest.Start(b, sshdtest.Options{LogLevel: "ERROR"})
	command := fmt.Sprintf("head -c %d /dev/zero", size)
	b.Run("x-crypto", func(b *testing.B) {
		p := newSSHPool(&sshPoolConfig{Getenv: envOf(append(os.Environ(), s.Env()...))})
		defer p.Close()
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			rwc, err := p.openShell(context.Background(), sshSpec(nil, s.Alias), command)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rwc)
			rwc.Close()
			if err != nil || n != size {
				b.Fatalf("read %d bytes, %v", n, err)
			}
		}
	})
	b.Run("openssh", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			cmd := s.SSH(command)
			out, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, out)
			if err := cmd.Wait(); err != nil || n != size {
				b.Fatalf("read %d bytes, %v", n, err)
			}
		}
	})
}
