package channel

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Each blocking call is shown to return on ctx cancellation and on
// Session.Close, over every transport.

// blocked runs f, waits until f is blocked (its goroutine parked, and still
// so a moment later), then runs release and checks that f returns an error
// matching want.
func blocked(t *testing.T, f func() error, release func(), want error) {
	t.Helper()
	errc := make(chan error, 1)
	go blockedCall(f, errc)
	if err, returned := waitParked(t, 1, errc); returned {
		t.Fatalf("returned early: %v", err)
	}
	release()
	select {
	case err := <-errc:
		if !errors.Is(err, want) {
			t.Fatalf("got %v, want %v", err, want)
		}
	case <-time.After(hangTimeout):
		t.Fatal("still blocked after release")
	}
}

// blockedCall runs f for blocked and TestPeerDeathReleasesAll; its name
// marks f's goroutine for waitParked.
func blockedCall(f func() error, errc chan<- error) { errc <- f() }

// waitParked waits until n goroutines running blockedCall are parked, and
// still are a moment later, or until one of them sends to errc (returned).
// The moment only gives a call that should not have blocked a chance to
// return: that it blocks at all is what waitParked waits for.
func waitParked(t *testing.T, n int, errc <-chan error) (err error, returned bool) {
	t.Helper()
	const moment = 20 * time.Millisecond
	deadline := time.Now().Add(hangTimeout)
	for {
		if parkedIn("channel.blockedCall(") >= n {
			select {
			case err := <-errc:
				return err, true
			case <-time.After(moment):
			}
			if parkedIn("channel.blockedCall(") >= n {
				return nil, false
			}
		}
		select {
		case err := <-errc:
			return err, true
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls did not block within %v:\n%s", n, hangTimeout, strings.Join(goroutines(), "\n\n"))
		}
		time.Sleep(time.Millisecond)
	}
}

// noDeadline hides SetReadDeadline, so receivers cannot read inline.
type noDeadline struct{ io.ReadWriteCloser }

var unblockTransports = append(transports, transport{"netpipe-nodeadline", func(t testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser) {
	a, b := transports[0].pair(t)
	return noDeadline{a}, noDeadline{b}
}})

func forUnblock(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range unblockTransports {
		t.Run(tr.name, func(t *testing.T) {
			checkLeaks(t)
			f(t, tr)
		})
	}
}

func smallWindow() *Config {
	c := DefaultConfig()
	c.WindowSize = 1024
	return c
}

func TestSendUnblock(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, smallWindow())
		ctx := testCtx(t)
		ch, _ := cl.Open(ctx, "x")
		peer, err := sv.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		big := make([]byte, 10000)

		// ctx: the Send is abandoned mid-message; the peer discards
		// the part it got and the channel stays usable.
		cctx, cancel := context.WithCancel(ctx)
		blocked(t, func() error { return ch.Send(cctx, big) }, cancel, context.Canceled)
		if err := ch.Send(ctx, "after"); err != nil {
			t.Fatal(err)
		}
		var s string
		if err := peer.Receive(ctx, &s); err != nil || s != "after" {
			t.Fatalf("after abort: %q %v", s, err)
		}

		// Channel Close.
		blocked(t, func() error { return ch.Send(ctx, big) }, func() { ch.Close() }, ErrChannelClosed)
		if err := peer.Receive(ctx, &s); err != io.EOF {
			t.Fatalf("after close: %v", err)
		}

		// Session Close.
		ch2, _ := cl.Open(ctx, "y")
		blocked(t, func() error { return ch2.Send(ctx, big) }, func() { cl.Close() }, ErrSessionClosed)
		if err := sv.Wait(ctx); err != ErrPeerClosed {
			t.Fatalf("peer: %v", err)
		}
	})
}

func TestReceiveUnblock(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, nil)
		ctx := testCtx(t)
		ch, _ := cl.Open(ctx, "x")
		peer, _ := sv.Accept(ctx)
		for i := 0; i < 3; i++ {
			cctx, cancel := context.WithCancel(ctx)
			blocked(t, func() error { return ch.Receive(cctx, new(any)) }, cancel, context.Canceled)
			// The stream is intact after an interrupted read.
			peer.Send(ctx, i)
			var v int
			if err := ch.Receive(ctx, &v); err != nil || v != i {
				t.Fatalf("after cancel: %v %v", v, err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		if err := ch.Receive(cctx, new(any)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("deadline: %v", err)
		}
		blocked(t, func() error { return ch.Receive(ctx, new(any)) }, func() { cl.Close() }, ErrSessionClosed)
	})
}

// The peer's death releases a blocked Receive with the connection error.
func TestReceiveUnblockPeerDeath(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		a, b := tr.pair(t)
		ctx := testCtx(t)
		errc := make(chan error, 1)
		var sv *Session
		go func() {
			var err error
			sv, err = NewSession(ctx, b, false, nil)
			errc <- err
		}()
		cl, err := NewSession(ctx, a, true, nil)
		if err != nil || <-errc != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ch, _ := cl.Open(ctx, "x")
		// Kill the server's stream without a goodbye.
		blocked(t, func() error { return ch.Receive(ctx, new(any)) }, func() { b.Close() }, io.ErrUnexpectedEOF)
		var ce *ConnError
		if !errors.As(cl.Err(), &ce) {
			t.Fatalf("cause %v is not a *ConnError", cl.Err())
		}
		// First cause is kept.
		cl.Close()
		if !errors.As(cl.Err(), &ce) {
			t.Fatalf("cause changed to %v", cl.Err())
		}
		sv.Close()
	})
}

func TestOpenUnblock(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		cl, _ := sessionPair(t, tr, nil, nil)
		ctx, cancel := context.WithCancel(testCtx(t))
		cancel()
		if _, err := cl.Open(ctx, "x"); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled: %v", err)
		}
		cl.Close()
		if _, err := cl.Open(testCtx(t), "x"); err != ErrSessionClosed {
			t.Fatalf("closed: %v", err)
		}
	})
}

func TestAcceptUnblock(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, nil)
		ctx := testCtx(t)
		cctx, cancel := context.WithCancel(ctx)
		blocked(t, func() error { _, err := sv.Accept(cctx); return err }, cancel, context.Canceled)
		blocked(t, func() error { _, err := sv.Accept(ctx); return err }, func() { sv.Close() }, ErrSessionClosed)
		if err := cl.Wait(ctx); err != ErrPeerClosed {
			t.Fatalf("client: %v", err)
		}
	})
}

func TestWaitCloseUnblock(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		cl, _ := sessionPair(t, tr, nil, nil)
		ctx := testCtx(t)
		ch, _ := cl.Open(ctx, "x")
		cctx, cancel := context.WithCancel(ctx)
		blocked(t, func() error { return ch.WaitClose(cctx) }, cancel, context.Canceled)
		blocked(t, func() error { return ch.WaitClose(ctx) }, func() { cl.Close() }, ErrSessionClosed)
	})
}

func TestSessionWaitUnblock(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, nil)
		ctx := testCtx(t)
		cctx, cancel := context.WithCancel(ctx)
		blocked(t, func() error { return cl.Wait(cctx) }, cancel, context.Canceled)
		blocked(t, func() error { return cl.Wait(ctx) }, func() { sv.Close() }, ErrPeerClosed)
		select {
		case <-cl.Done():
		default:
			t.Fatal("Done not closed")
		}
	})
}

func TestReaderWriterUnblock(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, smallWindow())
		ctx := testCtx(t)
		ch, _ := cl.Open(ctx, "x")
		r := ch.Reader()
		blocked(t, func() error { _, err := r.Read(make([]byte, 10)); return err }, func() { ch.Close(); sv.Close() }, ErrPeerClosed)
	})
	forUnblock(t, func(t *testing.T, tr transport) {
		cl, _ := sessionPair(t, tr, nil, smallWindow())
		ctx := testCtx(t)
		ch, _ := cl.Open(ctx, "x")
		w := ch.Writer()
		blocked(t, func() error { _, err := w.Write(make([]byte, 5000)); return err }, func() { w.Close() }, ErrChannelClosed)
	})
}

func TestReceiveQueueUnblock(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		cl, _ := sessionPair(t, tr, nil, nil)
		ctx := testCtx(t)
		a, _ := cl.Open(ctx, "a")
		b, _ := cl.Open(ctx, "b")
		cctx, cancel := context.WithCancel(ctx)
		q := ReceiveQueue(cctx, a, b)
		blocked(t, func() error {
			for range q {
			}
			return context.Canceled
		}, cancel, context.Canceled)
	})
}

// When the stream dies, every kind of waiter is released with the same,
// first cause.
func TestPeerDeathReleasesAll(t *testing.T) {
	forUnblock(t, func(t *testing.T, tr transport) {
		a, b := tr.pair(t)
		ctx := testCtx(t)
		errc := make(chan error, 1)
		go func() {
			_, err := NewSession(ctx, b, false, smallWindow())
			errc <- err
		}()
		cl, err := NewSession(ctx, a, true, nil)
		if err != nil || <-errc != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ch, _ := cl.Open(ctx, "x")
		waiters := []func() error{
			func() error { return ch.Send(ctx, make([]byte, 100000)) },
			func() error { return ch.Receive(ctx, new(any)) },
			func() error { _, err := cl.Accept(ctx); return err },
			func() error { return ch.WaitClose(ctx) },
			func() error { return cl.Wait(ctx) },
		}
		results := make(chan error, len(waiters))
		for _, w := range waiters {
			go blockedCall(w, results)
		}
		if err, returned := waitParked(t, len(waiters), results); returned {
			t.Fatalf("a waiter returned before the peer died: %v", err)
		}
		b.Close() // the peer's end vanishes without a goodbye
		var first error
		for range waiters {
			select {
			case err := <-results:
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
					t.Errorf("waiter released with %v", err)
				}
				if first == nil {
					first = err
				} else if err != first {
					t.Errorf("different causes: %v and %v", first, err)
				}
			case <-time.After(hangTimeout):
				t.Fatal("a waiter is still blocked")
			}
		}
		if _, err := cl.Open(ctx, "y"); err != first {
			t.Errorf("Open after death: %v", err)
		}
	})
}
