package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// serverVersion is what the server announces in the SSH version exchange.
const serverVersion = "SSH-2.0-godist-serve"

// maxRefusalLogs is how many refused requests one connection gets log lines for.
const maxRefusalLogs = 32

// errNotAuthorized is what the public key callback says about a key not in the file.
var errNotAuthorized = errors.New("serve: key not in the authorized keys file")

// conn is one client connection.
type conn struct {
	s      *Server
	nc     net.Conn
	prefix string // for log lines: "#N ADDR"

	// During the handshake (the callbacks of one connection run one at a time).
	keys    []AuthorizedKey
	keysErr error
	loaded  bool
	offered []string // fingerprints of the keys the client offered

	sessions atomic.Int32 // open sessions
	refusals atomic.Int32 // refused requests and channels so far
	wg       sync.WaitGroup
}

// recoverPanic, deferred at the top of each goroutine of a connection, turns a panic into
// the end of that connection: nothing a client sends should cause one, and if it does, the
// server stays up for the others.
func (c *conn) recoverPanic() {
	if r := recover(); r != nil {
		c.logf("internal error, connection closed: %v\n%s", r, debug.Stack())
		c.nc.Close()
	}
}

func (c *conn) logf(format string, args ...any) {
	c.s.logf("%s: %s", c.prefix, fmt.Sprintf(format, args...))
}

// refused logs a refused request or channel, up to maxRefusalLogs per connection.
func (c *conn) refused(format string, args ...any) {
	switch n := c.refusals.Add(1); {
	case n < maxRefusalLogs:
		c.logf(format, args...)
	case n == maxRefusalLogs:
		c.logf("%s (further refusals on this connection are not logged)", fmt.Sprintf(format, args...))
	}
}

// serveConn runs the handshake of nc, holding its pre-authentication slot sl until it is
// over, then serves the connection's sessions until it ends and their workers are gone.
func (s *Server) serveConn(nc net.Conn, sl *slot) {
	c := &conn{s: s, nc: nc, prefix: fmt.Sprintf("#%d %s", s.nextConn.Add(1), nc.RemoteAddr())}
	defer c.recoverPanic()
	start := time.Now()
	defer s.slots.release(sl)

	nc.SetDeadline(start.Add(s.cfg.HandshakeTimeout))
	sconn, chans, reqs, err := ssh.NewServerConn(nc, c.serverConfig())
	s.slots.release(sl)
	if err != nil {
		nc.Close()
		if s.slots.wasEvicted(sl) {
			c.logf("closed during the handshake after %v: its slot went to a connection from a source with fewer (%d in their handshake at most)",
				time.Since(start).Round(time.Millisecond), s.cfg.MaxUnauthenticated)
			return
		}
		c.logf("%s", c.handshakeFailure(err, time.Since(start)))
		return
	}
	nc.SetDeadline(time.Time{})
	c.logf("connected: user %q, key %s %s (%s)", sconn.User(), sconn.Permissions.Extensions["key"],
		sconn.Permissions.Extensions["fingerprint"], sconn.Permissions.Extensions["source"])

	done := make(chan struct{})
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		// keepalive@openssh.com, tcpip-forward and the like: all refused.
		for r := range reqs {
			if r.Type != "keepalive@openssh.com" && r.Type != "no-more-sessions@openssh.com" {
				c.refused("refused global request %s", printable(r.Type))
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		c.keepalive(sconn, done)
	}()
	n := 0
	for nch := range chans {
		if nch.ChannelType() != "session" {
			c.refused("refused channel %s", printable(nch.ChannelType()))
			nch.Reject(ssh.Prohibited, "godist serve runs only godist workers")
			continue
		}
		if int(c.sessions.Load()) >= s.cfg.MaxSessionsPerConn {
			c.refused("refused a session: %d open on this connection", s.cfg.MaxSessionsPerConn)
			nch.Reject(ssh.Prohibited, fmt.Sprintf("at most %d sessions per connection", s.cfg.MaxSessionsPerConn))
			continue
		}
		n++
		c.sessions.Add(1)
		c.wg.Add(1)
		go func(n int) {
			defer c.wg.Done()
			defer c.sessions.Add(-1)
			defer c.recoverPanic()
			c.serveSession(nch, n)
		}(n)
	}
	// chans is closed: the connection is gone.
	werr := sconn.Wait()
	close(done)
	sconn.Close()
	c.wg.Wait()
	why := "closed by the client"
	select {
	case <-s.shutdown:
		why = "closed: server shutting down"
	default:
		if werr != nil && !errors.Is(werr, io.EOF) {
			why = "lost: " + werr.Error()
		}
	}
	c.logf("%s after %v, %d sessions", why, time.Since(start).Round(time.Millisecond), n)
}

// serverConfig is the SSH configuration of one connection: public keys only, checked
// against the authorized keys file as it is now.
func (c *conn) serverConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		ServerVersion: serverVersion,
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			fp := ssh.FingerprintSHA256(key)
			if len(c.offered) < 16 && !contains(c.offered, fp) {
				c.offered = append(c.offered, fp)
			}
			if !c.loaded {
				c.loaded = true
				c.keys, c.keysErr = c.s.authorizedKeys()
			}
			want := key.Marshal()
			for _, k := range c.keys {
				if bytes.Equal(k.Key.Marshal(), want) {
					return &ssh.Permissions{Extensions: map[string]string{
						"key": key.Type(), "fingerprint": fp,
						"source": fmt.Sprintf("%s:%d", c.s.cfg.AuthorizedKeysFile, k.Line)}}, nil
				}
			}
			return nil, errNotAuthorized
		},
	}
	cfg.AddHostKey(c.s.cfg.HostKey)
	return cfg
}

// handshakeFailure says why a handshake failed, in a log line.
func (c *conn) handshakeFailure(err error, took time.Duration) string {
	if c.keysErr != nil {
		return fmt.Sprintf("refused: cannot read the authorized keys: %v", c.keysErr)
	}
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("closed: no SSH handshake within %v", c.s.cfg.HandshakeTimeout)
	case len(c.offered) > 0:
		return fmt.Sprintf("authentication failed: key %s not in %s", strings.Join(c.offered, ", "), c.s.cfg.AuthorizedKeysFile)
	}
	var ae *ssh.ServerAuthError
	if errors.As(err, &ae) {
		return "authentication failed: no public key offered"
	}
	select {
	case <-c.s.shutdown:
		return "closed during the handshake: server shutting down"
	default:
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		// As a client does that refuses the host key.
		return fmt.Sprintf("the client left during the handshake, before offering a key (%v)", err)
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return fmt.Sprintf("handshake failed after %v: %s", took.Round(time.Millisecond), printable(msg))
}

// keepalive sends keepalive@openssh.com requests every KeepaliveInterval and closes the
// connection when one has had no answer for KeepaliveCountMax intervals.
func (c *conn) keepalive(sconn *ssh.ServerConn, done <-chan struct{}) {
	interval, limit := c.s.cfg.KeepaliveInterval, time.Duration(c.s.cfg.KeepaliveCountMax)*c.s.cfg.KeepaliveInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	var pending chan struct{} // nil while no request is out
	var sent time.Time
	for {
		select {
		case <-done:
			return
		case <-pending:
			pending = nil
			continue
		case <-t.C:
		}
		if pending != nil {
			if time.Since(sent) >= limit {
				c.logf("no answer to keepalives for %v; closing the connection", limit)
				sconn.Close()
				return
			}
			continue
		}
		pending, sent = make(chan struct{}), time.Now()
		c.wg.Add(1)
		go func(p chan struct{}) {
			defer c.wg.Done()
			// Any answer will do (clients answer unknown requests with a failure).
			sconn.SendRequest("keepalive@openssh.com", true, nil)
			close(p)
		}(pending)
	}
}

// authorizedKeys reads the authorized keys file, logging its warnings when they differ
// from the last ones logged.
func (s *Server) authorizedKeys() ([]AuthorizedKey, error) {
	keys, warnings, err := ReadAuthorizedKeys(s.cfg.AuthorizedKeysFile)
	if err != nil {
		return nil, err
	}
	w := strings.Join(warnings, "\n")
	s.mu.Lock()
	changed := w != s.lastWarnings
	s.lastWarnings = w
	s.mu.Unlock()
	if changed {
		for _, x := range warnings {
			s.logf("%s", x)
		}
	}
	return keys, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// printable quotes what a client sent for a log line: at most 100 bytes, escaped.
func printable(s string) string {
	if len(s) > 100 {
		return fmt.Sprintf("%q...", s[:100])
	}
	return fmt.Sprintf("%q", s)
}
