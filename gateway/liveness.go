package gateway

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godist/godist/proto"
)

// A link may fail without closing: the command that carries an exec= link (kubectl,
// docker exec, ssh, ...) may freeze or its peer be partitioned away with its pipes open,
// and a worker may freeze (stopped, or its host wedged) behind a transport that stays up
// and answers its own keepalives (sshd does). watchWorker checks the whole way to the
// worker: when nothing has come from the worker for a third of the bound it asks for
// its Info (any answer, any byte, counts), and once nothing has come for the whole bound
// it kills the link, so that the gateway is lost and its work moves.

// clockedStream is a worker's byte stream that records when it last delivered bytes, and
// whose reads and writes fail with the liveness check's reason once it broke the link.
type clockedStream struct {
	io.ReadWriteCloser
	last   atomic.Int64          // UnixNano of the last read of one byte or more
	broken atomic.Pointer[error] // why the liveness check killed the link, if it did
}

// clockedDeadline is a clockedStream over a stream whose reads can be interrupted, which
// the channel session uses (see its deadliner).
type clockedDeadline struct {
	*clockedStream
	d interface{ SetReadDeadline(time.Time) error }
}

func (c clockedDeadline) SetReadDeadline(t time.Time) error { return c.d.SetReadDeadline(t) }

// clock wraps rwc in a clockedStream, keeping its SetReadDeadline if it has one.
func clock(rwc io.ReadWriteCloser) io.ReadWriteCloser {
	c := &clockedStream{ReadWriteCloser: rwc}
	c.last.Store(time.Now().UnixNano())
	if d, ok := rwc.(interface{ SetReadDeadline(time.Time) error }); ok {
		return clockedDeadline{c, d}
	}
	return c
}

func clockOf(s io.ReadWriteCloser) *clockedStream {
	if d, ok := s.(clockedDeadline); ok {
		return d.clockedStream
	}
	return s.(*clockedStream)
}

func (c *clockedStream) Read(b []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(b)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, c.cause(err)
}

func (c *clockedStream) Write(b []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(b)
	return n, c.cause(err)
}

// cause is err, or why the liveness check broke the link if it did.
func (c *clockedStream) cause(err error) error {
	if b := c.broken.Load(); b != nil && err != nil {
		return *b
	}
	return err
}

func (c *clockedStream) idle() time.Duration { return time.Since(time.Unix(0, c.last.Load())) }

// watch is a running liveness check. stop ends it and waits for its goroutines.
type watch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	why    atomic.Pointer[error] // set once the check killed the link
}

// watchWorker starts the liveness check of g, whose session runs over stream (made by
// clock), with bound as Options.Keepalive says. It ends with g's session or stop.
func (g *Gateway) watchWorker(stream io.ReadWriteCloser, bound time.Duration) *watch {
	c := clockOf(stream)
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{cancel: cancel}
	interval := bound / keepaliveCount
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTimer(interval)
		defer t.Stop()
		asking := false
		answered := make(chan struct{}, 1) // one request at a time: never blocks
		for {
			select {
			case <-ctx.Done():
				return
			case <-g.sess.Done():
				return
			case <-answered:
				asking = false
				continue
			case <-t.C:
			}
			idle := c.idle()
			if idle >= bound {
				err := fmt.Errorf("nothing came from the worker for %v (--keepalive %v): it, or the link to it, is frozen or cut off; killed the link",
					idle.Round(time.Millisecond), bound)
				w.why.Store(&err)
				c.broken.Store(&err) // what the session's reads and writes now fail with
				g.link.kill()
				return
			}
			if idle >= interval && !asking {
				asking = true
				w.wg.Add(1)
				go func() {
					defer w.wg.Done()
					g.ping(ctx)
					answered <- struct{}{}
				}()
			}
			t.Reset(min(interval, bound-idle)) // the next third, or when the bound runs out
		}
	}()
	return w
}

// ping asks the worker for its Info and waits for the answer or ctx.
func (g *Gateway) ping(ctx context.Context) {
	ch, err := g.sess.Open(ctx, proto.InfoFunc)
	if err != nil {
		return
	}
	defer ch.Close()
	var info proto.Info
	ch.Receive(ctx, &info)
}

// stop ends the check and waits for it. Idempotent; nil-safe.
func (w *watch) stop() {
	if w == nil {
		return
	}
	w.cancel()
	w.wg.Wait()
}

// err is why the check killed the link, nil if it did not.
func (w *watch) err() error {
	if w == nil {
		return nil
	}
	if p := w.why.Load(); p != nil {
		return *p
	}
	return nil
}
