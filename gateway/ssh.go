package gateway

// The client side of ssh= gateways: connections to sshd with golang.org/x/crypto/ssh,
// configured from ~/.ssh/config (ssh_config.go), authenticated with the ssh-agent and
// identity files (ssh_auth.go), host keys checked against known_hosts (ssh_hostkey.go).
// Workers on one host share a connection; each runs in a session of its own.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/godist/godist/internal/tail"
	"github.com/godist/godist/xspec"
)

// sshPoolConfig configures an sshPool.
type sshPoolConfig struct {
	// KeepaliveInterval is how often a keepalive@openssh.com request goes to an idle
	// server, and KeepaliveCountMax how many intervals may pass without a byte from the
	// server before the connection counts as dead and is closed: with the defaults (5 s,
	// 3) a dead link is found within 15 s.
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	// ConnectTimeout bounds each TCP connect (ConnectTimeout in ~/.ssh/config wins).
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds each SSH handshake, authentication included.
	HandshakeTimeout time.Duration
	// StderrTail is how many bytes of a session's stderr are kept for messages.
	StderrTail int
	// Getenv reads HOME, USER and SSH_AUTH_SOCK; nil means os.Getenv.
	Getenv func(string) string
	// Logf receives warnings (a host key accepted unchecked, one added to known_hosts);
	// nil drops them.
	Logf func(format string, args ...any)
}

// DefaultKeepalive is how long a worker, or an ssh= or socket= connection, may stay silent
// before its gateway is lost, when Options.Keepalive does not say: 3 requests 5 s apart.
const DefaultKeepalive = 15 * time.Second

// keepaliveCount is how many keepalive intervals make up Options.Keepalive.
const keepaliveCount = 3

// sshConfig is the pool configuration opts ask for: opts.SSH, or one whose keepalives
// fail a link that delivered nothing for opts.Keepalive (nil: the defaults).
func (opts Options) sshConfig() *sshPoolConfig {
	if opts.SSH != nil || opts.Keepalive <= 0 {
		return opts.SSH
	}
	c := defaultSSHPoolConfig()
	c.KeepaliveInterval = opts.Keepalive / keepaliveCount
	c.KeepaliveCountMax = keepaliveCount
	return c
}

// defaultSSHPoolConfig is the configuration newSSHPool(nil) uses.
func defaultSSHPoolConfig() *sshPoolConfig {
	return &sshPoolConfig{
		KeepaliveInterval: DefaultKeepalive / keepaliveCount,
		KeepaliveCountMax: keepaliveCount,
		ConnectTimeout:    15 * time.Second,
		HandshakeTimeout:  30 * time.Second,
		StderrTail:        8 << 10,
	}
}

func (c *sshPoolConfig) validate() error {
	switch {
	case c.KeepaliveInterval <= 0:
		return fmt.Errorf("ssh: KeepaliveInterval %v is not positive", c.KeepaliveInterval)
	case c.KeepaliveCountMax < 1:
		return fmt.Errorf("ssh: KeepaliveCountMax %d is less than 1", c.KeepaliveCountMax)
	case c.ConnectTimeout <= 0 || c.HandshakeTimeout <= 0:
		return errors.New("ssh: ConnectTimeout and HandshakeTimeout must be positive")
	case c.StderrTail < 0:
		return errors.New("ssh: StderrTail is negative")
	}
	return nil
}

// sshCiphers prefers AES-GCM, which Go runs with hardware support, over
// chacha20-poly1305, which it does not.
var sshCiphers = []string{
	ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305,
	ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR,
}

// sshHostError is an error about one host.
type sshHostError struct {
	Host string // as sshConfigResolved.String names it
	Err  error
}

func hostErrorf(res *sshConfigResolved, format string, args ...any) error {
	return &sshHostError{Host: res.String(), Err: fmt.Errorf(format, args...)}
}

func (e *sshHostError) Error() string { return "ssh: " + e.Host + ": " + bareSSHError(e.Err) }
func (e *sshHostError) Unwrap() error { return e.Err }

// sshJumpError is an error of a jump host, on the way to another.
type sshJumpError struct{ Err error }

func (e *sshJumpError) Error() string { return "via jump host: " + bareSSHError(e.Err) }
func (e *sshJumpError) Unwrap() error { return e.Err }

// bareSSHError is err's message without the "ssh: " that starts it at the top.
func bareSSHError(err error) string {
	if err == errSSHPoolClosed {
		return "connection pool closed"
	}
	switch e := err.(type) {
	case *sshHostError:
		return e.Host + ": " + bareSSHError(e.Err)
	case *sshHostKeyError:
		return e.detail()
	}
	return err.Error()
}

// errSSHPoolClosed is the cause of connections closed by sshPool.Close.
var errSSHPoolClosed = errors.New("ssh: connection pool closed")

// sshPool opens shells on ssh hosts. Shells on the same host (same user, address and
// ProxyJump after ~/.ssh/config) share a connection; when sshd refuses another session on
// it (MaxSessions, 10 by default), the pool opens another connection for further shells.
// A connection is closed with its last shell. Its methods are safe for concurrent use.
type sshPool struct {
	cfg    sshPoolConfig
	getenv func(string) string
	logf   func(string, ...any)

	mu     sync.Mutex
	hosts  map[string]*sshHost
	closed bool

	wg sync.WaitGroup // every goroutine the pool starts
}

// sshHost is the connections to one host.
type sshHost struct {
	dialing chan struct{} // a token: one connection is dialled at a time per host
	conns   []*sshConn    // live connections, guarded by sshPool.mu
}

// newSSHPool makes a pool; cfg nil means defaultSSHPoolConfig(). Zero fields of cfg take
// their defaults. The caller must Close it.
func newSSHPool(cfg *sshPoolConfig) *sshPool {
	c := *defaultSSHPoolConfig()
	if cfg != nil {
		d := c
		c = *cfg
		if c.KeepaliveInterval == 0 {
			c.KeepaliveInterval = d.KeepaliveInterval
		}
		if c.KeepaliveCountMax == 0 {
			c.KeepaliveCountMax = d.KeepaliveCountMax
		}
		if c.ConnectTimeout == 0 {
			c.ConnectTimeout = d.ConnectTimeout
		}
		if c.HandshakeTimeout == 0 {
			c.HandshakeTimeout = d.HandshakeTimeout
		}
		if c.StderrTail == 0 {
			c.StderrTail = d.StderrTail
		}
	}
	p := &sshPool{cfg: c, getenv: c.Getenv, logf: c.Logf, hosts: map[string]*sshHost{}}
	if p.getenv == nil {
		p.getenv = os.Getenv
	}
	if p.logf == nil {
		p.logf = func(string, ...any) {}
	}
	return p
}

// openShell opens a session on the host of s (its User, Host and Port, resolved with
// ~/.ssh/config) that runs command, "sh" when command is "". The shell's Read and Write are
// the command's stdout and stdin; its stderr goes to a tail buffer (sshShell.Stderr).
// Closing the shell closes the session, and the connection if no other shell uses it.
// When the connection is lost (no answer to keepalives, or a network error), Read and
// Write return an error saying so. ctx bounds the connect and the session opening, not the
// shell's life.
func (p *sshPool) openShell(ctx context.Context, s *xspec.Spec, command string) (io.ReadWriteCloser, error) {
	if s.Type != xspec.TypeSSH {
		return nil, fmt.Errorf("ssh: spec %q is not an ssh= spec", s.Raw)
	}
	if err := p.cfg.validate(); err != nil {
		return nil, err
	}
	res, err := resolveSSHWith(p.getenv, s.Host, s.User, s.Port)
	if err != nil {
		return nil, err
	}
	if command == "" {
		command = "sh"
	}
	sh, err := p.open(ctx, res, command, nil)
	if err != nil {
		return nil, err
	}
	return sh, nil
}

// open opens a session on the host of res that runs command, with env (NAME=VALUE each)
// sent as "env" requests first.
func (p *sshPool) open(ctx context.Context, res *sshConfigResolved, command string, env []string) (*sshShell, error) {
	h, err := p.host(res.key())
	if err != nil {
		return nil, &sshHostError{Host: res.String(), Err: err}
	}
	for {
		c := p.reserve(h)
		if c == nil {
			if c, err = p.dialReserved(ctx, h, res); err != nil {
				return nil, err
			}
		}
		r, abandoned, err := p.startShell(ctx, c, command, env)
		if err == nil {
			return r, nil
		}
		if abandoned {
			return nil, err
		}
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || (oce.Reason != ssh.Prohibited && oce.Reason != ssh.ConnectionFailed) {
			c.unreserve()
			if lost := c.lostErr(); lost != nil {
				return nil, lost
			}
			if ctx.Err() != nil {
				return nil, hostErrorf(res, "opening a session: %w", ctx.Err())
			}
			return nil, hostErrorf(res, "opening a session: %v", err)
		}
		// sshd's MaxSessions: this connection is full. (OpenSSH refuses the session
		// channel as "connect failed", others as "administratively prohibited"; nothing
		// else makes sshd refuse a session.) Remember how many it holds and try another
		// connection; one that refuses even a first session ends the loop below.
		p.mu.Lock()
		c.reserved--
		alone := c.open == 0 && c.reserved == 0
		if c.limit == 0 || c.open < c.limit {
			c.limit = max(c.open, 1)
		}
		p.mu.Unlock()
		if alone {
			c.maybeClose()
			return nil, hostErrorf(res, "the server refuses to open a session (%s)", oce.Message)
		}
	}
}

func (p *sshPool) host(key string) (*sshHost, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errSSHPoolClosed
	}
	h := p.hosts[key]
	if h == nil {
		h = &sshHost{dialing: make(chan struct{}, 1)}
		p.hosts[key] = h
	}
	return h, nil
}

// reserve picks a connection of h with room for another session and reserves a session on
// it; nil if there is none.
func (p *sshPool) reserve(h *sshHost) *sshConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range h.conns {
		if c.limit == 0 || c.reserved < c.limit {
			c.reserved++
			return c
		}
	}
	return nil
}

// dialReserved returns a connection to h with a session reserved on it: one that another
// caller dialled while this one waited its turn, or a new one.
func (p *sshPool) dialReserved(ctx context.Context, h *sshHost, res *sshConfigResolved) (*sshConn, error) {
	select {
	case h.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, hostErrorf(res, "%w", ctx.Err())
	}
	defer func() { <-h.dialing }()
	if c := p.reserve(h); c != nil {
		return c, nil
	}
	c, err := p.dial(ctx, res)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		err := &sshHostError{Host: res.String(), Err: errSSHPoolClosed}
		c.fail(err)
		return nil, err
	}
	c.host = h
	c.reserved = 1
	h.conns = append(h.conns, c)
	p.mu.Unlock()
	c.start()
	return c, nil
}

// startShell opens a session on c and starts command in it. The reservation passes to the
// shell; on error it stays with the caller, unless ctx ended first (abandoned): then the
// reservation is given back, and the session closed, as soon as the opening is over.
func (p *sshPool) startShell(ctx context.Context, c *sshConn, command string, env []string) (sh *sshShell, abandoned bool, err error) {
	type result struct {
		sh  *sshShell
		err error
	}
	ch := make(chan result) // unbuffered: a result is either taken or cleaned up, never both
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		sh, err := c.newShell(command, env)
		select {
		case ch <- result{sh, err}:
		case <-ctx.Done():
			if sh != nil {
				sh.Close()
			} else {
				c.unreserve()
			}
		}
	}()
	select {
	case r := <-ch:
		return r.sh, false, r.err
	case <-ctx.Done():
		return nil, true, hostErrorf(c.res, "opening a session: %w", ctx.Err())
	}
}

// Close closes every connection, and with them every shell, and waits for the pool's
// goroutines. Idempotent.
func (p *sshPool) Close() error {
	p.mu.Lock()
	p.closed = true
	var conns []*sshConn
	for _, h := range p.hosts {
		conns = append(conns, h.conns...)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.fail(&sshHostError{Host: c.res.String(), Err: errSSHPoolClosed})
	}
	p.wg.Wait()
	return nil
}

// connections is how many live connections the pool has to the host of res (for tests).
func (p *sshPool) connections(res *sshConfigResolved) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.hosts[res.key()]; h != nil {
		return len(h.conns)
	}
	return 0
}

// sshConn is one connection to a host, maybe through jump hosts.
type sshConn struct {
	pool   *sshPool
	res    *sshConfigResolved
	client *ssh.Client
	jumps  []*ssh.Client // closed after client, last first
	raw    *aliveConn    // what client runs over

	// guarded by pool.mu
	host     *sshHost
	reserved int // sessions open or being opened
	open     int // sessions open
	limit    int // sessions sshd allows at once; 0 while unknown

	dead   chan struct{} // closed by fail
	failed sync.Once
	err    error // why the connection is gone; set before dead is closed
}

// dial connects to res, through its ProxyJump hosts if any.
func (p *sshPool) dial(ctx context.Context, res *sshConfigResolved) (*sshConn, error) {
	client, raw, jumps, err := p.connect(ctx, res, 0)
	if err != nil {
		return nil, err
	}
	return &sshConn{pool: p, res: res, client: client, raw: raw, jumps: jumps, dead: make(chan struct{})}, nil
}

const maxJumpDepth = 8

// connect returns an SSH client for res, the connection under it, and the clients of the
// jump hosts it goes through (first hop first).
func (p *sshPool) connect(ctx context.Context, res *sshConfigResolved, depth int) (*ssh.Client, *aliveConn, []*ssh.Client, error) {
	if depth > maxJumpDepth {
		return nil, nil, nil, hostErrorf(res, "more than %d ProxyJump hops (a loop in ~/.ssh/config?)", maxJumpDepth)
	}
	var jumps []*ssh.Client
	closeJumps := func() {
		for i := len(jumps) - 1; i >= 0; i-- {
			jumps[i].Close()
		}
	}
	var conn net.Conn
	if res.ProxyJump == "" {
		timeout := p.cfg.ConnectTimeout
		if res.ConnectTimeout > 0 {
			timeout = res.ConnectTimeout
		}
		d := net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
		c, err := d.DialContext(ctx, "tcp", res.Addr())
		if err != nil {
			return nil, nil, nil, hostErrorf(res, "%v", err)
		}
		conn = c
	} else {
		hops, err := parseProxyJump(res.ProxyJump)
		if err != nil {
			return nil, nil, nil, hostErrorf(res, "%v", err)
		}
		// As OpenSSH does: the last hop is reached through the ones before it (its own
		// ProxyJump is not used then); a single hop is reached as its config says.
		last := hops[len(hops)-1]
		jres, err := resolveSSHWith(p.getenv, last.Host, last.User, last.Port)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(hops) > 1 {
			jres.ProxyJump = res.ProxyJump[:lastComma(res.ProxyJump)]
		}
		jc, _, jj, err := p.connect(ctx, jres, depth+1)
		if err != nil {
			return nil, nil, nil, &sshHostError{Host: res.String(), Err: &sshJumpError{err}}
		}
		jumps = append(jj, jc)
		c, err := jc.DialContext(ctx, "tcp", res.Addr())
		if err != nil {
			closeJumps()
			return nil, nil, nil, hostErrorf(res, "via jump host %s: %v", jres, err)
		}
		conn = c
	}
	raw := newAliveConn(conn)
	client, err := p.handshake(ctx, raw, res)
	if err != nil {
		closeJumps()
		return nil, nil, nil, err
	}
	return client, raw, jumps, nil
}

func lastComma(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ',' {
			return i
		}
	}
	return 0
}

// handshake runs the SSH handshake over conn, closing conn when ctx ends or
// HandshakeTimeout passes (ClientConfig.Timeout covers only a TCP connect it makes
// itself). On error conn is closed.
func (p *sshPool) handshake(ctx context.Context, conn net.Conn, res *sshConfigResolved) (*ssh.Client, error) {
	keys, err := newSSHHostKeys(res, p.logf)
	if err != nil {
		conn.Close()
		return nil, err
	}
	auth := newSSHAuth(res, p.getenv)
	defer auth.close()
	cfg := &ssh.ClientConfig{
		User:              res.User,
		Auth:              []ssh.AuthMethod{auth.method()},
		HostKeyCallback:   keys.check,
		HostKeyAlgorithms: keys.algorithms(res.Addr()),
		ClientVersion:     "SSH-2.0-godist",
		Config:            ssh.Config{Ciphers: sshCiphers},
	}
	hctx, cancel := context.WithTimeout(ctx, p.cfg.HandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, res.Addr(), cfg)
	if !stop() {
		// The context ended during the handshake and closed conn.
		if err == nil {
			sc.Close()
		}
		if ctx.Err() != nil {
			return nil, hostErrorf(res, "handshake: %w", ctx.Err())
		}
		return nil, hostErrorf(res, "no SSH handshake within %v", p.cfg.HandshakeTimeout)
	}
	if err != nil {
		var hke *sshHostKeyError
		if errors.As(err, &hke) {
			return nil, hke
		}
		var he *sshHostError
		if errors.As(err, &he) {
			return nil, he
		}
		inner := errors.Unwrap(err) // past "ssh: handshake failed: "
		if inner == nil {
			inner = err
		}
		if keys.wasAccepted() && auth.failed() {
			return nil, hostErrorf(res, "authentication failed (%s): %v", auth.explain(), inner)
		}
		return nil, hostErrorf(res, "handshake: %v", inner)
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// start starts the goroutines that watch the connection: one for the end of the
// connection, one for keepalives.
func (c *sshConn) start() {
	p := c.pool
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		err := c.client.Wait()
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("the server closed the connection")
		}
		c.fail(hostErrorf(c.res, "connection lost: %v", err))
	}()
	go func() {
		defer p.wg.Done()
		c.keepalive(p.cfg.KeepaliveInterval, p.cfg.KeepaliveCountMax)
	}()
}

// keepalive sends keepalive@openssh.com requests every interval while none is pending,
// and fails the connection once nothing at all has come from the server for
// countMax*interval: that many keepalives in a row went unanswered.
func (c *sshConn) keepalive(interval time.Duration, countMax int) {
	limit := time.Duration(countMax) * interval
	t := time.NewTimer(interval)
	defer t.Stop()
	var reply chan error // nil while no request is pending
	for {
		select {
		case <-c.dead:
			return
		case err := <-reply:
			reply = nil
			if err != nil {
				return // the connection is closing; the Wait goroutine says why
			}
			continue
		case <-t.C:
		}
		idle := c.raw.idle()
		if idle >= limit {
			c.fail(hostErrorf(c.res, "connection lost: %d keepalives in a row unanswered (nothing received for %v)", countMax, idle.Round(time.Millisecond)))
			return
		}
		if reply == nil {
			reply = make(chan error, 1)
			c.pool.wg.Add(1)
			go func(reply chan<- error) {
				defer c.pool.wg.Done()
				// A global request with want-reply: OpenSSH answers with a failure,
				// which is an answer all the same.
				_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
				reply <- err
			}(reply)
		}
		t.Reset(min(interval, limit-idle))
	}
}

// fail closes the connection for err (the first cause is kept). Every shell on it then
// reads and writes err.
func (c *sshConn) fail(err error) {
	c.failed.Do(func() {
		c.err = err
		close(c.dead)
		p := c.pool
		p.mu.Lock()
		if c.host != nil {
			for i, x := range c.host.conns {
				if x == c {
					c.host.conns = append(c.host.conns[:i:i], c.host.conns[i+1:]...)
					break
				}
			}
		}
		p.mu.Unlock()
		c.client.Close()
		for i := len(c.jumps) - 1; i >= 0; i-- {
			c.jumps[i].Close()
		}
	})
}

// lostErr is why the connection is gone, nil while it is up.
func (c *sshConn) lostErr() error {
	select {
	case <-c.dead:
		return c.err
	default:
		return nil
	}
}

// unreserve gives back a reservation that did not become a session.
func (c *sshConn) unreserve() {
	c.pool.mu.Lock()
	c.reserved--
	c.pool.mu.Unlock()
	c.maybeClose()
}

// release gives back an open session.
func (c *sshConn) release() {
	c.pool.mu.Lock()
	c.reserved--
	c.open--
	c.pool.mu.Unlock()
	c.maybeClose()
}

// maybeClose closes the connection when nothing uses or is about to use it. A caller
// that finds it in the host's list reserves under the same lock, so it cannot pick a
// connection that is being closed.
func (c *sshConn) maybeClose() {
	c.pool.mu.Lock()
	idle := c.reserved == 0
	c.pool.mu.Unlock()
	if idle {
		c.fail(hostErrorf(c.res, "connection closed with its last session"))
	}
}

// newShell opens a session and starts command in it, with a reservation the caller holds.
// env goes first as "env" requests without want-reply: no round trip each, and a server
// that refuses one says so when the command starts.
func (c *sshConn) newShell(command string, env []string) (*sshShell, error) {
	sess, err := c.client.NewSession()
	if err != nil {
		return nil, err
	}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if _, err := sess.SendRequest("env", false, ssh.Marshal(&struct{ Name, Value string }{name, value})); err != nil {
			sess.Close()
			return nil, err
		}
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	// stdin and stdout go through pipes so that Close can end a Write or Read blocked on
	// a command that neither reads nor exits (a stopped worker: sshd then never closes
	// the channel, and its window stays shut).
	pr, pw := io.Pipe()
	inR, inW := io.Pipe()
	sh := &sshShell{c: c, sess: sess, stdin: inW, stdout: pr, stderr: tail.New(c.pool.cfg.StderrTail), waited: make(chan struct{})}
	sess.Stderr = sh.stderr
	if err := sess.Start(command); err != nil {
		sess.Close()
		return nil, err
	}
	c.pool.mu.Lock()
	c.open++
	if c.limit != 0 && c.open > c.limit {
		c.limit = c.open
	}
	c.pool.mu.Unlock()
	c.pool.wg.Add(3)
	go func() {
		defer c.pool.wg.Done()
		sh.waitErr = sess.Wait()
		close(sh.waited)
		inW.CloseWithError(errSessionEnded) // the stdin goroutine waits for nothing more
	}()
	go func() {
		// Ends with the channel, or the connection (the pool closes every one).
		defer c.pool.wg.Done()
		_, err := io.Copy(pw, stdout)
		pw.CloseWithError(err) // nil: io.EOF
	}()
	go func() {
		// The one writer of the channel's stdin; ends with CloseWrite or Close, or (when
		// blocked on a command that does not read) with the channel or the connection.
		defer c.pool.wg.Done()
		_, err := io.Copy(stdin, inR)
		if err == nil {
			stdin.Close() // CloseWrite: the command's end of input
		}
		inR.CloseWithError(err)
	}()
	return sh, nil
}

// sshShell is a command running in a session: Read reads its stdout, Write writes its
// stdin. Read, Write and Close may be called concurrently with each other; Read and Write
// are each for one goroutine at a time.
type sshShell struct {
	c      *sshConn
	sess   *ssh.Session
	stdin  *io.PipeWriter // to the session's stdin, through a goroutine
	stdout *io.PipeReader // from the session's stdout, through a goroutine
	stderr *tail.Buffer

	waited  chan struct{} // closed when the session has ended
	waitErr error         // sess.Wait's result, set before waited is closed

	closeOnce sync.Once
}

// Read reads the command's stdout. At its end Read returns io.EOF, or the connection's
// error if the connection was lost (a lost connection ends every session's stream as if
// the command had closed it).
func (s *sshShell) Read(b []byte) (int, error) {
	n, err := s.stdout.Read(b)
	if err == io.EOF {
		if lost := s.lost(); lost != nil {
			return n, lost
		}
	}
	return n, err
}

// Write writes to the command's stdin.
func (s *sshShell) Write(b []byte) (int, error) {
	if lost := s.c.lostErr(); lost != nil {
		return 0, lost // not into the pipe, where the stdin goroutine would drop it
	}
	n, err := s.stdin.Write(b)
	if err != nil {
		if lost := s.c.lostErr(); lost != nil {
			return n, lost
		}
		if errors.Is(err, errShellClosed) {
			return n, err
		}
		return n, hostErrorf(s.c.res, "writing to the session: %v", err)
	}
	return n, nil
}

// lost tells, after stdout's end, whether the connection was lost: the channel of a lost
// connection ends just as one whose command exited, except that no exit status came.
func (s *sshShell) lost() error {
	timer := time.NewTimer(2 * time.Second)
	defer timer.Stop()
	select {
	case <-s.waited:
	case <-s.c.dead:
	case <-timer.C:
		// The command closed its stdout and goes on running.
		return nil
	}
	var missing *ssh.ExitMissingError
	select {
	case <-s.waited:
		if errors.As(s.waitErr, &missing) {
			// Either the server closed the channel without an exit status, or the
			// connection is going down: its Wait returns right after the channels end.
			select {
			case <-s.c.dead:
			case <-timer.C:
			}
		}
	default:
	}
	return s.c.lostErr()
}

// Close closes the session (and so the command's stdin), and the connection if no other
// shell uses it.
// Idempotent; it does not wait for the command to exit.
func (s *sshShell) Close() error {
	s.closeOnce.Do(func() {
		// The channel's own stdin is not closed here: x/crypto's CloseWrite sets a flag
		// that a Write in progress reads unlocked (a data race); closing the channel ends
		// the command's stdin all the same.
		s.sess.Close()
		s.stdout.CloseWithError(errShellClosed)
		s.stdin.CloseWithError(errShellClosed)
		s.c.release()
	})
	return nil
}

// errShellClosed is what Read and Write return after Close; errSessionEnded what Write
// returns once the session has ended.
var (
	errShellClosed  = errors.New("ssh: session closed by this side")
	errSessionEnded = errors.New("ssh: the session has ended")
)

// Stderr is the tail of what the command wrote to stderr.
func (s *sshShell) Stderr() []byte { return s.stderr.Bytes() }

// ExitErr is how the session ended: nil while it runs or when the command exited 0, an
// *ssh.ExitError for another status or a signal, an *ssh.ExitMissingError when the session
// ended without either (as when the connection is lost).
func (s *sshShell) ExitErr() error {
	select {
	case <-s.waited:
		return s.waitErr
	default:
		return nil
	}
}

// Done is closed when the session has ended.
func (s *sshShell) Done() <-chan struct{} { return s.waited }

// aliveConn is a net.Conn that notes when it last read something.
type aliveConn struct {
	net.Conn
	start    time.Time
	lastRead atomic.Int64 // time since start, in ns
}

func newAliveConn(c net.Conn) *aliveConn {
	a := &aliveConn{Conn: c, start: time.Now()}
	return a
}

func (a *aliveConn) Read(b []byte) (int, error) {
	n, err := a.Conn.Read(b)
	if n > 0 {
		a.lastRead.Store(int64(time.Since(a.start)))
	}
	return n, err
}

// idle is how long ago the last read returned data (or the connection was made).
func (a *aliveConn) idle() time.Duration {
	return time.Since(a.start) - time.Duration(a.lastRead.Load())
}
