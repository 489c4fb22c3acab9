package gateway

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godist/godist/proto"
)

// A pipe link (exec=) has no keepalive of its own: the command that carries it (kubectl,
// docker exec, ssh, ...) may freeze, its peer may be partitioned away, and its pipes stay
// open all the same. watchPipe gives such a link what ssh= and socket= have: when nothing
// has come from the worker for a third of the bound, it asks for the worker's Info (any
// answer, any byte, counts), and once nothing has come for the whole bound it kills the
// link, so that the gateway is lost and its work moves.

// readClock records when a pipe last delivered bytes.
type readClock struct{ last atomic.Int64 } // UnixNano of the last read of one byte or more

func (c *readClock) tick()               { c.last.Store(time.Now().UnixNano()) }
func (c *readClock) idle() time.Duration { return time.Since(time.Unix(0, c.last.Load())) }

// watch is a running liveness check. stop ends it and waits for its goroutines.
type watch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	why    atomic.Pointer[error] // set once the check killed the link
}

// watchPipe starts the liveness check of g, whose worker's bytes arrive through pipe,
// with bound as Options.Keepalive says. It ends with g's session.
func (g *Gateway) watchPipe(pipe *pipeRWC, bound time.Duration) *watch {
	clock := &pipe.clock
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{cancel: cancel}
	interval := bound / keepaliveCount
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTimer(interval)
		defer t.Stop()
		asking := false
		answered := make(chan struct{}, 1)
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
			idle := clock.idle()
			if idle >= bound {
				err := fmt.Errorf("the link delivered nothing for %v (--keepalive %v): the worker or the command that reaches it is frozen or cut off; killed it",
					idle.Round(time.Millisecond), bound)
				w.why.Store(&err)
				pipe.broken.Store(&err) // what the session's reads and writes now fail with
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
