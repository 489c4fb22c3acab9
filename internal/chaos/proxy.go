//go:build linux

package chaos

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Proxy is a TCP relay on 127.0.0.1 in front of one server, owned by the harness, that
// makes link faults on demand: Cut closes every relayed connection (both ends see the
// link drop), Freeze stops forwarding without closing anything (both ends see a link
// that carries nothing, as a partition does). Its methods are safe for concurrent use;
// Close must be called, and returns once every goroutine of the proxy has ended.
type Proxy struct {
	Addr   string // 127.0.0.1:PORT, where clients connect
	target string
	ln     net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	frozen chan struct{} // non-nil while frozen; closed by Cut/Close to release the copiers
	closed bool
	wg     sync.WaitGroup
}

// NewProxy listens on a free loopback port and relays each connection to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies src to dst until either fails, holding each chunk back while the proxy is
// frozen; then it closes both.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer p.drop(dst, src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			f := p.frozen
			p.mu.Unlock()
			if f != nil {
				<-f // frozen: nothing more goes through until Cut or Close
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) drop(a, b net.Conn) {
	a.Close()
	b.Close()
	p.mu.Lock()
	delete(p.conns, a)
	delete(p.conns, b)
	p.mu.Unlock()
}

// Freeze stops forwarding: bytes already relayed stay delivered, the next ones are held
// (and then the senders' windows fill), and no connection closes. New connections are
// accepted and frozen too. Cut ends a freeze.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen == nil && !p.closed {
		p.frozen = make(chan struct{})
	}
}

// Cut closes every connection relayed so far (and ends a freeze); the proxy goes on
// accepting new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutLocked()
}

func (p *Proxy) cutLocked() {
	for c := range p.conns {
		c.Close()
	}
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
}

// Conns is how many connections (client and server ends) the proxy holds.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops listening, cuts every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.cutLocked()
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}
