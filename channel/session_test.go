package channel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
)

type point struct {
	X, Y int
	Tag  string
	Data []byte
	Sub  []point
	M    map[string]int
}

func TestEchoValues(t *testing.T) {
	forTransports(t, func(t *testing.T, tr transport) {
		ctx := testCtx(t)
		cl, sv := sessionPair(t, tr, nil, nil)
		go echoServer(sv)
		ch, err := cl.Open(ctx, "echo")
		if err != nil {
			t.Fatal(err)
		}
		in := point{X: 1, Y: -2, Tag: "héllo", Data: []byte{0, 1, 2}, Sub: []point{{X: 3}}, M: map[string]int{"a": 1}}
		if err := ch.Send(ctx, in); err != nil {
			t.Fatal(err)
		}
		var out point
		if err := ch.Receive(ctx, &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("got %+v, want %+v", out, in)
		}
		for _, v := range []any{nil, true, int64(-5), 3.5, "s", []byte("bytes"), []any{int64(1), "x"}, map[any]any{"k": int64(2)}} {
			if err := ch.Send(ctx, v); err != nil {
				t.Fatal(err)
			}
			got, err := ch.ReceiveAny(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("got %#v, want %#v", got, v)
			}
		}
		// Sizes around the frame and small-message boundaries.
		for _, n := range []int{0, 1, 23, 24, 255, 256, smallMessage - 10, smallMessage + 10, 1<<20 - 10, 1 << 20, 3<<20 + 7, 9 << 20} {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i * 7)
			}
			if err := ch.Send(ctx, b); err != nil {
				t.Fatal(n, err)
			}
			var got []byte
			if err := ch.Receive(ctx, &got); err != nil {
				t.Fatal(n, err)
			}
			if !bytes.Equal(got, b) {
				t.Fatalf("size %d: mismatch", n)
			}
		}
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
		if err := ch.Receive(ctx, new(any)); err != io.EOF {
			t.Fatalf("after close: %v, want EOF", err)
		}
		if err := ch.WaitClose(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// echoServer echoes every message of every accepted channel until the
// peer closes it, then closes it too.
func echoServer(s *Session) {
	ctx := testCtxBackground()
	for {
		ch, err := s.Accept(ctx)
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for {
				m, err := ch.ReceiveRaw(ctx)
				if err != nil {
					return
				}
				if err := ch.Send(ctx, m); err != nil {
					return
				}
			}
		}()
	}
}

func TestRemoteError(t *testing.T) {
	forTransports(t, func(t *testing.T, tr transport) {
		ctx := testCtx(t)
		cl, sv := sessionPair(t, tr, nil, nil)
		go func() {
			ch, err := sv.Accept(ctx)
			if err != nil {
				return
			}
			defer func() {
				if r := recover(); r != nil {
					ch.CloseWithError(NewRemoteError(fmt.Errorf("panic: %v", r)))
				}
			}()
			var v int
			ch.Receive(ctx, &v)
			panic(fmt.Sprintf("boom %d", v))
		}()
		ch, _ := cl.Open(ctx, "x")
		ch.Send(ctx, 42)
		err := ch.Receive(ctx, new(any))
		var re *RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("got %v, want RemoteError", err)
		}
		if re.Message != "panic: boom 42" || !bytes.Contains([]byte(re.Stack), []byte("TestRemoteError")) {
			t.Fatalf("bad remote error %q stack:\n%s", re.Message, re.Stack)
		}
		if err := ch.WaitClose(ctx); !errors.As(err, &re) {
			t.Fatalf("WaitClose: %v", err)
		}
	})
}
