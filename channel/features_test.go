package channel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestFlowControl(t *testing.T) {
	forTransports(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, smallWindow())
		ctx := testCtx(t)
		ch, _ := cl.Open(ctx, "x")
		peer, _ := sv.Accept(ctx)
		// Fill the window with small messages the peer does not read.
		sent := 0
		for {
			sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			err := ch.Send(sctx, make([]byte, 90)) // 92 bytes on the wire
			cancel()
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatal(err)
				}
				break
			}
			sent++
		}
		if sent*92 > 1024 || sent*92 < 1024-92 {
			t.Fatalf("sent %d messages (%d bytes) into a 1024-byte window", sent, sent*92)
		}
		// Consuming returns credit; the rest flows.
		go func() {
			for i := 0; i < 100; i++ {
				ch.Send(ctx, make([]byte, 90))
			}
			ch.Close()
		}()
		n := 0
		for {
			var b []byte
			if err := peer.Receive(ctx, &b); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != sent+100 {
			t.Fatalf("received %d, want %d", n, sent+100)
		}
	})
}

// A bulk transfer on one channel does not starve another channel.
func TestFairness(t *testing.T) {
	forTransports(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, nil)
		go echoServer(sv)
		ctx := testCtx(t)
		bulk, _ := cl.Open(ctx, "bulk")
		small, _ := cl.Open(ctx, "small")
		const total = 96 << 20
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 8<<20)
			go func() {
				for sent := 0; sent < total; sent += len(buf) {
					bulk.Send(ctx, buf)
				}
			}()
			for got := 0; got < total; {
				var b []byte
				if err := bulk.Receive(ctx, &b); err != nil {
					return
				}
				got += len(b)
			}
		}()
		start := time.Now()
		for i := 0; i < 20; i++ {
			small.Send(ctx, i)
			var v int
			if err := small.Receive(ctx, &v); err != nil || v != i {
				t.Fatal(v, err)
			}
		}
		elapsed := time.Since(start)
		select {
		case <-done:
			t.Fatalf("small round trips (%v) waited for the whole bulk transfer", elapsed)
		default:
			t.Logf("20 round trips during bulk transfer: %v", elapsed)
		}
		<-done
	})
}

func TestManyChannelsConcurrent(t *testing.T) {
	forTransports(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, nil)
		go echoServer(sv)
		ctx := testCtx(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ch, err := cl.Open(ctx, fmt.Sprint("c", i))
				if err != nil {
					errs <- err
					return
				}
				defer ch.Close()
				r := rand.New(rand.NewPCG(uint64(i), 1))
				for j := 0; j < 30; j++ {
					// Distinct random bytes for every message, made in 8-byte steps: made
					// a byte at a time under -race they cost seconds of CPU, which a loaded
					// machine stretched past testCtx's deadline.
					b := make([]byte, r.IntN(100000))
					seed := [32]byte{byte(i), byte(j)}
					rand.NewChaCha8(seed).Read(b)
					if err := ch.Send(ctx, b); err != nil {
						errs <- err
						return
					}
					var got []byte
					if err := ch.Receive(ctx, &got); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, b) {
						errs <- fmt.Errorf("channel %d: corrupted message", i)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestMaxChannels(t *testing.T) {
	checkLeaks(t)
	cfg := DefaultConfig()
	cfg.MaxChannels = 2
	cl, sv := sessionPair(t, transports[0], nil, cfg)
	ctx := testCtx(t)
	a, _ := cl.Open(ctx, "a")
	if _, err := cl.Open(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Open(ctx, "c"); err != ErrTooManyChannels {
		t.Fatalf("third Open: %v", err)
	}
	// A slot frees once both ends closed the channel.
	pa, _ := sv.Accept(ctx)
	a.Close()
	pa.Close()
	if err := a.WaitClose(ctx); err != nil {
		t.Fatal(err)
	}
	// Both CLOSEs are through: WaitClose returns once the peer's is handled,
	// and ours was queued before a.Close returned.
	if _, err := cl.Open(ctx, "d"); err != nil {
		t.Fatalf("Open after close: %v", err)
	}
	if err := sv.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestMessageTooLargeForPeer(t *testing.T) {
	checkLeaks(t)
	cfg := DefaultConfig()
	cfg.MaxMessageSize = 1000
	cl, sv := sessionPair(t, transports[0], nil, cfg)
	go echoServer(sv)
	ctx := testCtx(t)
	ch, _ := cl.Open(ctx, "x")
	if err := ch.Send(ctx, make([]byte, 2000)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("got %v", err)
	}
	if err := ch.Send(ctx, "fine"); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := ch.Receive(ctx, &s); err != nil || s != "fine" {
		t.Fatal(s, err)
	}
}

func TestHalfClose(t *testing.T) {
	forTransports(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, nil)
		ctx := testCtx(t)
		ch, _ := cl.Open(ctx, "x")
		ch.Send(ctx, 1)
		ch.Close()
		ch.Close() // idempotent
		if err := ch.Send(ctx, 2); err != ErrChannelClosed {
			t.Fatalf("send after close: %v", err)
		}
		peer, _ := sv.Accept(ctx)
		if peer.Name() != "x" || peer.ID() != ch.ID() {
			t.Fatalf("peer channel %v, want %v", peer, ch)
		}
		var v int
		if err := peer.Receive(ctx, &v); err != nil || v != 1 {
			t.Fatal(v, err)
		}
		if err := peer.Receive(ctx, &v); err != io.EOF {
			t.Fatal(err)
		}
		// The peer can still answer after our close.
		peer.Send(ctx, 3)
		peer.CloseWithError(errors.New("done badly"))
		if err := ch.Receive(ctx, &v); err != nil || v != 3 {
			t.Fatal(v, err)
		}
		var re *RemoteError
		if err := ch.Receive(ctx, &v); !errors.As(err, &re) || re.Message != "done badly" {
			t.Fatal(err)
		}
		if err := ch.WaitClose(ctx); !errors.As(err, &re) {
			t.Fatal(err)
		}
	})
}

func TestCallbacks(t *testing.T) {
	forTransports(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, smallWindow())
		ctx := testCtx(t)
		ch, _ := cl.Open(ctx, "x")
		// Messages sent before SetCallback are delivered first, in
		// order, and large ones need the window to grow.
		for i := 0; i < 5; i++ {
			ch.Send(ctx, i)
		}
		peer, _ := sv.Accept(ctx)
		var got []int
		ended := make(chan error, 2)
		peer.SetCallback(func(m RawMessage) {
			var v int
			if err := m.Decode(&v); err != nil {
				var b []byte
				m.Decode(&b)
				v = len(b)
			}
			got = append(got, v)
		}, func(err error) { ended <- err })
		if err := peer.Receive(ctx, new(any)); err != ErrCallbackSet {
			t.Fatalf("Receive with callback: %v", err)
		}
		for i := 5; i < 10; i++ {
			ch.Send(ctx, i)
		}
		ch.Send(ctx, make([]byte, 5000)) // larger than the window
		ch.Close()
		select {
		case err := <-ended:
			if err != nil {
				t.Fatalf("end: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("end not called")
		}
		want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5000}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		// end is called once with the session's cause when it dies.
		ch2, _ := cl.Open(ctx, "y")
		peer2, _ := sv.Accept(ctx)
		peer2.SetCallback(func(RawMessage) {}, func(err error) { ended <- err })
		ch2.Send(ctx, 1)
		sv.Close()
		if err := <-ended; err != ErrSessionClosed {
			t.Fatalf("end after session close: %v", err)
		}
		// SetCallback on a dead session still delivers end.
		peer3 := newChannel(sv, 99, "dead")
		peer3.SetCallback(func(RawMessage) {}, func(err error) { ended <- err })
		if err := <-ended; err != ErrSessionClosed {
			t.Fatalf("end on dead session: %v", err)
		}
		select {
		case err := <-ended:
			t.Fatalf("end called twice: %v", err)
		default:
		}
	})
}

func TestCallbackPanic(t *testing.T) {
	checkLeaks(t)
	cl, sv := sessionPair(t, transports[0], nil, nil)
	ctx := testCtx(t)
	ch, _ := cl.Open(ctx, "x")
	peer, _ := sv.Accept(ctx)
	peer.SetCallback(func(RawMessage) { panic("kaboom") }, nil)
	ch.Send(ctx, 1)
	var re *RemoteError
	if err := ch.WaitClose(ctx); !errors.As(err, &re) || !contains(re.Message, "kaboom") || !contains(re.Stack, "TestCallbackPanic") {
		t.Fatalf("got %v", err)
	}
}

func TestReceiveQueueAndEach(t *testing.T) {
	checkLeaks(t)
	cl, sv := sessionPair(t, transports[0], nil, nil)
	go echoServer(sv)
	ctx := testCtx(t)
	var chans []*Channel
	for i := 0; i < 3; i++ {
		ch, _ := cl.Open(ctx, fmt.Sprint(i))
		ch.Send(ctx, i*10)
		chans = append(chans, ch)
	}
	msgs, err := ReceiveEach(ctx, chans)
	if err != nil || len(msgs) != 3 {
		t.Fatal(msgs, err)
	}
	for i, m := range msgs {
		var v int
		if m.Decode(&v); v != i*10 {
			t.Fatalf("ReceiveEach[%d] = %d", i, v)
		}
	}
	for i, ch := range chans {
		ch.Send(ctx, i)
		ch.Send(ctx, i+100)
		ch.Close()
	}
	counts := map[*Channel]int{}
	ends := 0
	for it := range ReceiveQueue(ctx, chans...) {
		if it.Err != nil {
			if it.Err != io.EOF {
				t.Fatal(it.Err)
			}
			ends++
			continue
		}
		v, _ := it.Msg.Any()
		if counts[it.Channel] == 1 && v.(int64) < 100 {
			t.Fatalf("out of order on %v: %v", it.Channel, v)
		}
		counts[it.Channel]++
	}
	if ends != 3 {
		t.Fatalf("%d ends", ends)
	}
	for _, ch := range chans {
		if counts[ch] != 2 {
			t.Fatalf("%v: %d messages", ch, counts[ch])
		}
	}
}

func TestReaderWriter(t *testing.T) {
	forTransports(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, nil)
		ctx := testCtx(t)
		ch, _ := cl.Open(ctx, "file")
		data := make([]byte, 5<<20+123)
		for i := range data {
			data[i] = byte(i * 31)
		}
		go func() {
			w := ch.Writer()
			for off := 0; off < len(data); off += 70000 {
				w.Write(data[off:min(off+70000, len(data))])
			}
			w.Close()
		}()
		peer, _ := sv.Accept(ctx)
		h := sha256.New()
		n, err := io.Copy(h, peer.Reader())
		if err != nil || n != int64(len(data)) {
			t.Fatal(n, err)
		}
		if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatal("corrupted stream")
		}
	})
}

func TestSessionClose(t *testing.T) {
	forTransports(t, func(t *testing.T, tr transport) {
		cl, sv := sessionPair(t, tr, nil, nil)
		ctx := testCtx(t)
		if cl.Err() != nil {
			t.Fatal(cl.Err())
		}
		// Messages sent just before Close arrive.
		ch, _ := cl.Open(ctx, "x")
		ch.Send(ctx, "last words")
		if err := cl.Close(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		if cl.Err() != ErrSessionClosed {
			t.Fatal(cl.Err())
		}
		peer, err := sv.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if err := peer.Receive(ctx, &s); err != nil || s != "last words" {
			t.Fatalf("%q %v", s, err)
		}
		if err := peer.Receive(ctx, &s); err != ErrPeerClosed {
			t.Fatal(err)
		}
	})
}

func TestNewRemoteError(t *testing.T) {
	re := NewRemoteError(errors.New("x"))
	if re.Message != "x" || !contains(re.Stack, "TestNewRemoteError") {
		t.Fatal(re)
	}
	if NewRemoteError(re) != re {
		t.Fatal("not idempotent")
	}
	if NewRemoteError(nil).Message != "<nil>" {
		t.Fatal("nil")
	}
	if re.Error() != "channel: remote error: x" {
		t.Fatal(re.Error())
	}
}
