package serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// dialFrom opens a TCP connection to addr from the loopback address ip (all of 127/8 is
// loopback on Linux): another source, as the server sees it.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clientFrom logs in from ip and starts a worker, within d.
func clientFrom(t *testing.T, ts *testServer, ip string, d time.Duration) {
	t.Helper()
	start := time.Now()
	nc := dialFrom(t, ip, ts.addr)
	nc.SetDeadline(start.Add(d))
	sc, chans, reqs, err := ssh.NewClientConn(nc, ts.addr, ts.clientConfig())
	if err != nil {
		t.Fatalf("client from %s: handshake after %v: %v", ip, time.Since(start), err)
	}
	c := ssh.NewClient(sc, chans, reqs)
	t.Cleanup(func() { c.Close() })
	ws, err := tryWorker(c, "godist worker")
	if err != nil {
		t.Fatalf("client from %s: worker: %v", ip, err)
	}
	nc.SetDeadline(time.Time{})
	if took := time.Since(start); took > d {
		t.Fatalf("client from %s: in and running after %v, want within %v", ip, took, d)
	}
	ws.sess.Close()
}

// admittedOrRefused reads what the server says first on an idle connection: its banner
// (the connection is in its handshake: true) or nothing before the end (refused: false).
func admittedOrRefused(t *testing.T, c net.Conn) (bool, *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	switch {
	case err == nil && strings.HasPrefix(line, serverVersion):
		return true, r
	case line == "" && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return false, r
	}
	t.Fatalf("first bytes %q, %v: neither a banner nor the end", line, err)
	return false, nil
}

// waitClosed reads c to its end, failing t if that takes longer than until.
func waitClosed(t *testing.T, r *bufio.Reader, c net.Conn, until time.Time) {
	t.Helper()
	c.SetReadDeadline(until)
	if _, err := io.Copy(io.Discard, r); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

// 64 idle TCP connections from one address locked every client out for 10 s, renewably:
// now one source holds at most MaxUnauthenticatedPerSource handshake slots, a client from
// another address gets in at once, and the idle ones are closed at the pre-auth deadline.
func TestIdleFloodFromOneSource(t *testing.T) {
	const deadline = 3 * time.Second
	ts := startServer(t, func(c *Config) { c.HandshakeTimeout = deadline })
	start := time.Now()
	type idle struct {
		c net.Conn
		r *bufio.Reader
	}
	var held []idle
	for i := 0; i < 80; i++ {
		c := dialFrom(t, "127.0.0.1", ts.addr)
		if in, r := admittedOrRefused(t, c); in {
			held = append(held, idle{c, r})
		} else {
			c.Close()
		}
	}
	if want := DefaultConfig().MaxUnauthenticatedPerSource; len(held) != want {
		t.Errorf("%d of 80 idle connections from one source in their handshake, want %d", len(held), want)
	}
	// Another source is not locked out: it logs in and runs a worker while the flood's
	// connections are still held.
	clientFrom(t, ts, "127.0.0.2", deadline/2)
	if strings.Contains(ts.log.String(), "no SSH handshake within") {
		t.Fatalf("the client got in only after the flood's connections were closed:\n%s", ts.log.String())
	}
	// And the idle ones go at the deadline, not before.
	for _, h := range held {
		waitClosed(t, h.r, h.c, start.Add(deadline+5*time.Second))
	}
	if took := time.Since(start); took < deadline-100*time.Millisecond {
		t.Errorf("idle connections closed after %v, before the %v deadline", took, deadline)
	}
	waitLog(t, ts, 5*time.Second, "connections from 127.0.0.1/32 already in their handshake")
	waitLog(t, ts, 5*time.Second, "closed: no SSH handshake within 3s")
}

// When one source's idle connections fill every slot (a per-source limit as high as the
// global one), a client from another source takes the oldest of them and gets in; another
// connection from the same source does not.
func TestGlobalSlotsFullOfOneSource(t *testing.T) {
	const slots = 16
	ts := startServer(t, func(c *Config) {
		c.HandshakeTimeout = time.Minute // only eviction frees a slot within the test
		c.MaxUnauthenticated, c.MaxUnauthenticatedPerSource = slots, slots
	})
	var conns []net.Conn
	var readers []*bufio.Reader
	for i := 0; i < slots; i++ {
		c := dialFrom(t, "127.0.0.1", ts.addr)
		in, r := admittedOrRefused(t, c)
		if !in {
			t.Fatalf("connection %d refused with %d slots", i, slots)
		}
		conns, readers = append(conns, c), append(readers, r)
	}
	if in, _ := admittedOrRefused(t, dialFrom(t, "127.0.0.1", ts.addr)); in {
		t.Error("one more connection from the same source took a slot")
	}
	clientFrom(t, ts, "127.0.0.2", 10*time.Second)
	// The oldest of the flood made room.
	waitClosed(t, readers[0], conns[0], time.Now().Add(5*time.Second))
	waitLog(t, ts, 5*time.Second, "its slot went to a connection from a source with fewer")
	if n, mine := ts.srv.slots.held(netip.MustParsePrefix("127.0.0.1/32")); n != slots-1 || mine != slots-1 {
		t.Errorf("slots held: %d, %d by the flood; want %d, %d", n, mine, slots-1, slots-1)
	}
}

// fakeConn is a connection from addr, for the limiter alone.
type fakeConn struct {
	net.Conn
	addr   net.Addr
	closed atomic.Bool
}

func (f *fakeConn) RemoteAddr() net.Addr { return f.addr }
func (f *fakeConn) Close() error         { f.closed.Store(true); return nil }

func from(s string) *fakeConn {
	return &fakeConn{addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(4, 3)
	var a []*slot
	for i := 0; i < 3; i++ {
		s, v, why := l.admit(from(fmt.Sprintf("10.0.0.1:%d", 1000+i)))
		if why != admitted || v != nil {
			t.Fatalf("a%d: %v, victim %v", i, why, v)
		}
		a = append(a, s)
	}
	if _, _, why := l.admit(from("10.0.0.1:2000")); why != perSource {
		t.Errorf("a 4th from one source: %v, want refused per source", why)
	}
	b0, _, why := l.admit(from("10.0.0.2:1"))
	if why != admitted {
		t.Fatalf("b0: %v", why)
	}
	// Full (3 + 1): a newcomer from a third source takes a's oldest slot.
	c0, v, why := l.admit(from("10.0.0.3:1"))
	if why != admitted || v != a[0] || !l.wasEvicted(a[0]) {
		t.Fatalf("c0: %v, victim %v (want a's oldest %v)", why, v, a[0])
	}
	// Now a holds 2, b and c 1: b taking a's would only swap them.
	if _, _, why := l.admit(from("10.0.0.2:2")); why != global {
		t.Errorf("b1 with a at 2, b at 1: %v, want refused", why)
	}
	l.release(a[0]) // the evicted one's goroutine ends: nothing more freed
	if n, mine := l.held(netip.MustParsePrefix("10.0.0.1/32")); n != 4 || mine != 2 {
		t.Errorf("held %d, %d by a; want 4, 2", n, mine)
	}
	for _, s := range []*slot{a[1], a[2], b0, c0, c0} {
		l.release(s)
	}
	if n, _ := l.held(netip.Prefix{}); n != 0 || len(l.bySource) != 0 {
		t.Errorf("after every release: %d held, %v", n, l.bySource)
	}
}

func TestSourceOf(t *testing.T) {
	for addr, want := range map[net.Addr]string{
		from("192.0.2.7:22").addr:                  "192.0.2.7/32",
		from("[::ffff:192.0.2.7]:22").addr:         "192.0.2.7/32",
		from("[2001:db8:1:2:3:4:5:6]:22").addr:     "2001:db8:1:2::/64",
		from("[2001:db8:1:2:ffff::1]:22").addr:     "2001:db8:1:2::/64",
		&net.UnixAddr{Name: "/tmp/x", Net: "unix"}: "invalid Prefix",
	} {
		if got := sourceOf(addr).String(); got != want {
			t.Errorf("sourceOf(%v) = %s, want %s", addr, got, want)
		}
	}
}
