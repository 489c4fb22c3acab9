// Package serve is `godist serve`: an SSH-protocol server that runs godist workers and
// nothing else, the far end of socket=HOST:PORT gateways.
//
// Clients authenticate with a public key listed in an authorized_keys file (read afresh at
// each connection, so keys can be added or removed while the server runs); passwords and
// keyboard-interactive are not offered. A session may send "env" requests and then one
// "exec" request whose command is exactly "godist worker" (or "worker"); the server then
// runs its own executable as `EXE worker`, a child process in its own process group, with
// the session's stdin and stdout as the worker's, and the worker's stderr as the session's.
// Shells, ptys, subsystems, X11, agent and port forwarding are all refused.
//
// Two environment names a session may send are the server's, not the worker's:
//
//	GODIST_SERVE_CHDIR  the worker's working directory (made if missing; relative to
//	                    Config.Dir, which is $HOME by default, as for an ssh session)
//	GODIST_SERVE_NICE   the worker's niceness, -20..19 (test processes inherit it)
//
// Other names of the form [A-Za-z_][A-Za-z0-9_]* are added to the worker's environment,
// which is otherwise the server's own.
//
// Teardown: when the session ends (the client closes it or its stdin, the connection is
// lost, or the server shuts down) the worker's stdin is closed and the worker exits,
// killing its test processes; if it is still there Config.KillAfter later, its process
// group is killed. The worker's exit status goes back as "exit-status" (or "exit-signal").
//
// Robustness: the SSH handshake, authentication included, must finish within
// Config.HandshakeTimeout. At most Config.MaxUnauthenticated connections may be in that
// phase at once, and at most Config.MaxUnauthenticatedPerSource of them from one source
// (an IPv4 address, an IPv6 /64); a connection over the per-source limit is closed at
// once. When all the slots are taken, a connection from a source that holds fewer takes
// the oldest slot of the source that holds most, so that idle connections from one
// address do not lock out clients from others (see limits.go). Accepted connections use
// TCP keepalives and the server's own keepalive@openssh.com requests, so a vanished
// client's workers go.
package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config configures a Server.
type Config struct {
	// HostKey is the server's host key. Required.
	HostKey ssh.Signer
	// AuthorizedKeysFile lists the public keys that may log in (see ParseAuthorizedKeys).
	// It is read at every connection. Required.
	AuthorizedKeysFile string
	// Worker is the argv of a worker ("--nice N" may be appended); nil means
	// {os.Executable(), "worker"}.
	Worker []string
	// Dir is the workers' working directory; "" means $HOME, or the server's own working
	// directory without HOME.
	Dir string
	// Env is the workers' base environment; nil means os.Environ().
	Env []string

	// HandshakeTimeout bounds the SSH handshake of a connection, authentication included.
	HandshakeTimeout time.Duration
	// MaxUnauthenticated is how many connections may be in their handshake at once.
	MaxUnauthenticated int
	// MaxUnauthenticatedPerSource is how many of those may come from one source: one
	// IPv4 address, or one IPv6 /64.
	MaxUnauthenticatedPerSource int
	// MaxSessionsPerConn is how many sessions (workers) one connection may hold; more are
	// refused as "administratively prohibited", and clients open another connection.
	MaxSessionsPerConn int
	// KillAfter is how long a worker has to exit once its session ended before its process
	// group is killed.
	KillAfter time.Duration
	// KeepaliveInterval and KeepaliveCountMax: an authenticated connection that answers
	// none of KeepaliveCountMax keepalive@openssh.com requests sent every KeepaliveInterval
	// is closed.
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	// TCPKeepalive is the TCP keepalive period of accepted connections.
	TCPKeepalive time.Duration

	// Logf receives one line per connection, failed authentication and session; nil drops
	// them. It may be called from many goroutines at once.
	Logf func(format string, args ...any)
}

// DefaultConfig is a Config with every limit set; HostKey and AuthorizedKeysFile are left
// for the caller.
func DefaultConfig() *Config {
	return &Config{
		HandshakeTimeout:            10 * time.Second,
		MaxUnauthenticated:          64,
		MaxUnauthenticatedPerSource: 8,
		MaxSessionsPerConn:          32,
		KillAfter:                   5 * time.Second,
		KeepaliveInterval:           15 * time.Second,
		KeepaliveCountMax:           3,
		TCPKeepalive:                15 * time.Second,
	}
}

func (c *Config) validate() error {
	switch {
	case c.HostKey == nil:
		return errors.New("serve: no host key")
	case c.AuthorizedKeysFile == "":
		return errors.New("serve: no authorized keys file")
	case c.HandshakeTimeout <= 0, c.KillAfter <= 0, c.KeepaliveInterval <= 0, c.TCPKeepalive <= 0:
		return errors.New("serve: HandshakeTimeout, KillAfter, KeepaliveInterval and TCPKeepalive must be positive")
	case c.MaxUnauthenticated < 1, c.MaxUnauthenticatedPerSource < 1, c.MaxSessionsPerConn < 1, c.KeepaliveCountMax < 1:
		return errors.New("serve: MaxUnauthenticated, MaxUnauthenticatedPerSource, MaxSessionsPerConn and KeepaliveCountMax must be at least 1")
	}
	return nil
}

// ErrServerClosed is returned by Serve after the server was shut down.
var ErrServerClosed = errors.New("serve: server closed")

// Server runs godist workers for SSH clients. Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	worker []string
	dir    string
	env    []string
	logf   func(string, ...any)

	slots *limiter // of the connections in their handshake

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
	shutdown chan struct{} // closed by Shutdown
	wg       sync.WaitGroup

	lastWarnings string // of the authorized keys file, as last logged (guarded by mu)

	nextConn atomic.Uint64
	dropped  atomic.Int64 // connections refused or evicted since the last log line about it
	lastDrop atomic.Int64 // unix nanoseconds of that line
}

// New checks cfg and makes a Server. Zero limits of cfg take DefaultConfig's.
func New(cfg *Config) (*Server, error) {
	c := *cfg
	d := DefaultConfig()
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.MaxUnauthenticated == 0 {
		c.MaxUnauthenticated = d.MaxUnauthenticated
	}
	if c.MaxUnauthenticatedPerSource == 0 {
		c.MaxUnauthenticatedPerSource = d.MaxUnauthenticatedPerSource
	}
	if c.MaxSessionsPerConn == 0 {
		c.MaxSessionsPerConn = d.MaxSessionsPerConn
	}
	if c.KillAfter == 0 {
		c.KillAfter = d.KillAfter
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = d.KeepaliveInterval
	}
	if c.KeepaliveCountMax == 0 {
		c.KeepaliveCountMax = d.KeepaliveCountMax
	}
	if c.TCPKeepalive == 0 {
		c.TCPKeepalive = d.TCPKeepalive
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: c, logf: c.Logf, conns: map[net.Conn]struct{}{}, shutdown: make(chan struct{}),
		slots: newLimiter(c.MaxUnauthenticated, c.MaxUnauthenticatedPerSource)}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	s.worker = c.Worker
	if s.worker == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("serve: finding the worker executable: %w", err)
		}
		s.worker = []string{exe, "worker"}
	}
	s.dir = c.Dir
	if s.dir == "" {
		s.dir = os.Getenv("HOME")
	}
	s.env = c.Env
	if s.env == nil {
		s.env = os.Environ()
	}
	return s, nil
}

// Listen binds addr (as ParseListenAddr returns it) with the server's TCP keepalive.
func (s *Server) Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: s.cfg.TCPKeepalive}
	return lc.Listen(ctx, "tcp", addr)
}

// Serve accepts connections on l until ctx ends, Shutdown is called or l fails. Before it
// returns it closes l and every connection, and waits for every worker to be gone
// (Config.KillAfter at most, then they are killed). It returns nil when ctx ended or
// Shutdown was called, otherwise the listener's error.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, s.Shutdown)
	defer stop()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.mu.Unlock()
	lnDone := make(chan struct{})
	defer close(lnDone)
	go func() {
		select {
		case <-s.shutdown:
			l.Close()
		case <-lnDone:
		}
	}()
	var err error
	var backoff time.Duration
	for {
		var c net.Conn
		c, err = l.Accept()
		if err != nil {
			if backoff, err = s.acceptFailed(err, backoff); err == nil && backoff > 0 {
				continue
			}
			break
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			continue
		}
		sl, victim, why := s.slots.admit(c)
		if victim != nil {
			// Its goroutine sees the connection closed, and says so.
			victim.nc.Close()
		}
		if why != admitted {
			s.untrack(c)
			c.Close()
			s.noteDropped(c, why)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(c, sl)
		}()
	}
	s.Shutdown()
	s.wg.Wait()
	return err
}

// acceptFailed decides what follows a failed Accept: retry after a growing pause (out of
// file descriptors and the like, as net/http does), or end Serve with err (nil after
// Shutdown).
func (s *Server) acceptFailed(err error, backoff time.Duration) (time.Duration, error) {
	select {
	case <-s.shutdown:
		return 0, nil
	default:
	}
	var ne net.Error
	if !errors.As(err, &ne) || errors.Is(err, net.ErrClosed) {
		return 0, err
	}
	backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
	s.logf("accept: %v; retrying in %v", err, backoff)
	select {
	case <-time.After(backoff):
		return backoff, nil
	case <-s.shutdown:
		return 0, nil
	}
}

// Shutdown stops accepting connections and closes every connection; each session's worker
// then exits (or is killed after Config.KillAfter). It does not wait: Serve returns once
// everything is gone. Idempotent.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	close(s.shutdown)
	for c := range s.conns {
		c.Close()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// noteDropped logs connections refused for the pre-authentication limits, at most once a
// second.
func (s *Server) noteDropped(c net.Conn, why refusal) {
	s.dropped.Add(1)
	now := time.Now().UnixNano()
	last := s.lastDrop.Load()
	if now-last < int64(time.Second) || !s.lastDrop.CompareAndSwap(last, now) {
		return
	}
	n := s.dropped.Swap(0)
	if why == perSource {
		s.logf("%s: refused: %d connections from %s already in their handshake (%d refused since the last note)",
			c.RemoteAddr(), s.cfg.MaxUnauthenticatedPerSource, sourceOf(c.RemoteAddr()), n)
		return
	}
	s.logf("%s: refused: %d connections already in their handshake, none from a source holding more than this one's (%d refused since the last note)",
		c.RemoteAddr(), s.cfg.MaxUnauthenticated, n)
}
