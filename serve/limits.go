package serve

import (
	"net"
	"net/netip"
	"sync"
)

// Pre-authentication limits. Every connection holds a slot from the moment it is accepted
// until its SSH handshake, authentication included, is over (or HandshakeTimeout has
// passed). A source — one IPv4 address, or one IPv6 /64, which one host may well hold
// whole — holds at most MaxUnauthenticatedPerSource slots: more connections from it are
// closed at once. When all MaxUnauthenticated slots are taken, a connection from a source
// holding fewer slots than the source holding most (by two or more) takes the oldest slot
// of that source, whose connection is closed; otherwise the newcomer is closed. So idle
// connections from one address, renewed as fast as they are closed, cannot keep another
// address's client from logging in.

// slot is one connection in its handshake. Its fields are guarded by limiter.mu.
type slot struct {
	nc      net.Conn
	source  netip.Prefix
	evicted bool // its place went to a connection from another source
	freed   bool
}

// refusal says why admit turned a connection away.
type refusal int

const (
	admitted  refusal = iota
	perSource         // its source holds MaxUnauthenticatedPerSource slots
	global            // all MaxUnauthenticated slots are taken, none by a source holding more
)

// limiter hands out the pre-authentication slots. Safe for concurrent use.
type limiter struct {
	max, perSource int

	mu       sync.Mutex
	n        int                      // slots held
	bySource map[netip.Prefix][]*slot // oldest first
}

func newLimiter(max, perSource int) *limiter {
	return &limiter{max: max, perSource: perSource, bySource: map[netip.Prefix][]*slot{}}
}

// sourceOf is the source a remote address counts against: the IPv4 address, or the /64
// of an IPv6 one; the zero Prefix when the address is not an IP one.
func sourceOf(a net.Addr) netip.Prefix {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	case ip.Is6():
		p, _ := ip.WithZone("").Prefix(64)
		return p
	}
	return netip.Prefix{}
}

// admit gives nc a slot, or says why not. The connection it took a slot from, if any, is
// returned to be closed by the caller (outside the lock).
func (l *limiter) admit(nc net.Conn) (s *slot, victim *slot, why refusal) {
	src := sourceOf(nc.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	mine := l.bySource[src]
	if len(mine) >= l.perSource {
		return nil, nil, perSource
	}
	if l.n >= l.max {
		var most []*slot
		for _, list := range l.bySource {
			if len(list) > len(most) {
				most = list
			}
		}
		// Taking a slot from a source only one ahead would just swap the two.
		if len(most) < len(mine)+2 {
			return nil, nil, global
		}
		victim = most[0]
		victim.evicted = true
		l.freeLocked(victim)
	}
	s = &slot{nc: nc, source: src}
	l.bySource[src] = append(mine, s)
	l.n++
	return s, victim, admitted
}

// release gives s back once its handshake is over. Idempotent.
func (l *limiter) release(s *slot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.freeLocked(s)
}

// wasEvicted reports whether s lost its slot to another source's connection.
func (l *limiter) wasEvicted(s *slot) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return s.evicted
}

func (l *limiter) freeLocked(s *slot) {
	if s.freed {
		return
	}
	s.freed = true
	l.n--
	list := l.bySource[s.source]
	for i, x := range list {
		if x == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(l.bySource, s.source)
	} else {
		l.bySource[s.source] = list
	}
}

// held is how many slots are taken, in all and by src.
func (l *limiter) held(src netip.Prefix) (all, bySrc int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, len(l.bySource[src])
}
