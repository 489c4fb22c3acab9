package channel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawPeer is the far end of a session, driven byte by byte by a test.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
}

// newRawPair returns a server session and a raw client that has done the
// handshake with hello h (a default hello if nil).
func newRawPair(t testing.TB, cfg *Config, h *hello) (*Session, *rawPeer) {
	t.Helper()
	a, b := net.Pipe()
	if h == nil {
		hh := helloFromConfig(DefaultConfig())
		h = &hh
	}
	p := &rawPeer{t: t, conn: a}
	errc := make(chan error, 1)
	go func() {
		_, err := a.Write(h.marshal())
		if err == nil {
			_, err = io.ReadFull(a, make([]byte, helloFixedLen+helloBodyLen))
		}
		errc <- err
	}()
	s, err := NewSession(context.Background(), b, false, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		s.Close()
	})
	return s, p
}

func frame(typ, flags byte, id uint32, payload ...[]byte) []byte {
	var p []byte
	for _, x := range payload {
		p = append(p, x...)
	}
	return append(appendHeader(nil, typ, flags, id, uint32(len(p))), p...)
}

// bstr returns a CBOR byte string of n bytes in total.
func bstr(n int) []byte {
	for hl := 1; hl <= 9; hl++ {
		var head [9]byte
		if h := byteStringHead(&head, n-hl); len(h) == hl {
			return append(h, make([]byte, n-hl)...)
		}
	}
	panic("bstr: no encoding")
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// send writes b, tolerating the session hanging up on us.
func (p *rawPeer) send(b []byte) {
	p.conn.SetWriteDeadline(time.Now().Add(hangTimeout))
	p.conn.Write(b)
}

// readGoAway reads frames until a GOAWAY and returns its code and text.
func (p *rawPeer) readGoAway() (uint32, string) {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(hangTimeout))
	for {
		var hb [frameHeaderLen]byte
		if _, err := io.ReadFull(p.conn, hb[:]); err != nil {
			p.t.Fatalf("no GOAWAY: %v", err)
		}
		h := parseHeader(hb[:])
		pl := make([]byte, h.length)
		if _, err := io.ReadFull(p.conn, pl); err != nil {
			p.t.Fatalf("no GOAWAY: %v", err)
		}
		if h.typ == frameGoAway {
			return binary.BigEndian.Uint32(pl), string(pl[4:])
		}
	}
}

func TestHostileInput(t *testing.T) {
	small := DefaultConfig()
	small.MaxChannels = 2
	small.MaxDepth = 4
	small.MaxContainerLen = 16
	small.WindowSize = 1024
	small.MaxFrameSize = 1024
	small.MaxMessageSize = 4096
	open1 := frame(frameOpen, 0, 1, []byte("x"))
	deep := bytes.Repeat([]byte{0x81}, 10) // [[[[...
	deep = append(deep, 0x01)
	long := []byte{0x98, 17} // array of 17 elements
	long = append(long, bytes.Repeat([]byte{0x01}, 17)...)
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"unknown frame type", frame(0x77, 0, 0), ErrProtocol},
		{"frame too large", appendHeader(nil, frameData, 0, 1, 1025), ErrFrameTooLarge},
		{"data on unknown channel", frame(frameData, 0, 9, []byte{1}), ErrUnknownChannel},
		{"data on channel 0", frame(frameData, 0, 0, []byte{1}), ErrUnknownChannel},
		{"close of unknown channel", frame(frameClose, 0, 5), ErrUnknownChannel},
		{"credit for never-opened channel", frame(frameCredit, 0, 7, u32(1)), ErrUnknownChannel},
		{"credit overflow", append(open1, frame(frameCredit, 0, 1, u32(1))...), ErrFlowControl},
		{"zero credit", append(open1, frame(frameCredit, 0, 1, u32(0))...), ErrProtocol},
		{"bad credit length", append(open1, frame(frameCredit, 0, 1, u32(1), []byte{0})...), ErrProtocol},
		{"too many channels", bytes.Join([][]byte{open1, frame(frameOpen, 0, 3), frame(frameOpen, 0, 5)}, nil), ErrTooManyChannels},
		{"open with our parity", frame(frameOpen, 0, 2), ErrProtocol},
		{"open out of sequence", append(frame(frameOpen, 0, 5), frame(frameOpen, 0, 3)...), ErrProtocol},
		{"open name too long", appendHeader(nil, frameOpen, 0, 1, maxNameLen+1), ErrFrameTooLarge},
		{"window exceeded", bytes.Join([][]byte{open1, frame(frameData, 0, 1, bstr(1000)), frame(frameData, 0, 1, bstr(100))}, nil), ErrFlowControl},
		{"nesting too deep", append(open1, frame(frameData, 0, 1, deep)...), ErrBadValue},
		{"container too long", append(open1, frame(frameData, 0, 1, long)...), ErrBadValue},
		{"malformed value", append(open1, frame(frameData, 0, 1, []byte{0x1f})...), ErrBadValue},
		{"trailing bytes in value", append(open1, frame(frameData, 0, 1, []byte{0x01, 0x01})...), ErrBadValue},
		{"indefinite length", append(open1, frame(frameData, 0, 1, []byte{0x9f, 0xff})...), ErrBadValue},
		{"sized message too large", append(open1, frame(frameData, flagSized|flagMore, 1, u32(5000), []byte{0x41})...), ErrMessageTooLarge},
		{"sized total too small", append(open1, frame(frameData, flagSized|flagMore, 1, u32(1), []byte{0x41})...), ErrProtocol},
		{"more without sized", append(open1, frame(frameData, flagMore, 1, []byte{0x41})...), ErrProtocol},
		{"message longer than total", bytes.Join([][]byte{open1, frame(frameData, flagSized|flagMore, 1, u32(3), []byte{0x42, 1}), frame(frameData, 0, 1, []byte{2, 3})}, nil), ErrProtocol},
		{"abort without message", append(open1, frame(frameData, flagAbort, 1)...), ErrProtocol},
		{"empty data", append(open1, frame(frameData, 0, 1)...), ErrProtocol},
		{"unknown data flag", append(open1, frame(frameData, 0x80, 1, []byte{1})...), ErrProtocol},
		{"data after close", bytes.Join([][]byte{open1, frame(frameClose, 0, 1), frame(frameData, 0, 1, []byte{1})}, nil), ErrProtocol},
		{"double close", bytes.Join([][]byte{open1, frame(frameClose, 0, 1), frame(frameClose, 0, 1)}, nil), ErrProtocol},
		{"close inside message", bytes.Join([][]byte{open1, frame(frameData, flagSized|flagMore, 1, u32(3), []byte{0x42, 1}), frame(frameClose, 0, 1)}, nil), ErrProtocol},
		{"close payload without flag", append(open1, frame(frameClose, 0, 1, []byte{1})...), ErrProtocol},
		{"malformed remote error", append(open1, frame(frameClose, flagError, 1, u32(100))...), ErrProtocol},
		{"close payload too large", append(open1, appendHeader(nil, frameClose, flagError, 1, maxCloseLen+1)...), ErrFrameTooLarge},
		{"goaway on a channel", frame(frameGoAway, 0, 1, u32(0)), ErrProtocol},
		{"goaway too long", appendHeader(nil, frameGoAway, 0, 0, 4+maxGoAwayText+1), ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			cfg := *small
			s, p := newRawPair(t, &cfg, nil)
			go p.send(tc.input)
			// A waiter must be released with the cause.
			err := s.Wait(testCtx(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("session died with %v, want %v", err, tc.want)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("%T is not a *ProtocolError", err)
			}
			code, text := p.readGoAway()
			if code != codeForError(tc.want) || !strings.Contains(text, pe.Detail) {
				t.Fatalf("GOAWAY code %d %q, want %d with %q", code, text, codeForError(tc.want), pe.Detail)
			}
			if _, err := s.Open(context.Background(), "x"); err != s.Err() {
				t.Fatalf("Open on dead session: %v", err)
			}
		})
	}
}

func TestPeerGoAway(t *testing.T) {
	checkLeaks(t)
	s, p := newRawPair(t, nil, nil)
	go p.send(frame(frameGoAway, 0, 0, u32(codeFlowControl), []byte("you sent too much")))
	err := s.Wait(testCtx(t))
	var pe *PeerError
	if !errors.As(err, &pe) || !errors.Is(err, ErrFlowControl) || pe.Message != "you sent too much" {
		t.Fatalf("got %v", err)
	}
}

// Valid traffic that a peer may legitimately send must not kill the
// session: credit for a channel both ends have closed, abort of a partial
// message.
func TestRawValidEdgeCases(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	cfg := DefaultConfig()
	s, p := newRawPair(t, cfg, nil)
	go p.send(bytes.Join([][]byte{
		frame(frameOpen, 0, 1, []byte("a")),
		frame(frameData, flagSized|flagMore, 1, u32(3), []byte{0x42, 9}),
		frame(frameData, flagAbort, 1),
		frame(frameData, 0, 1, []byte{0x05}),
		frame(frameClose, 0, 1),
	}, nil))
	ch, err := s.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := ch.Receive(ctx, &v); err != nil || v != 5 {
		t.Fatalf("got %v %v", v, err)
	}
	if err := ch.Receive(ctx, &v); err != io.EOF {
		t.Fatalf("got %v", err)
	}
	ch.Close()
	// Drain what the session writes so its writer never blocks.
	go io.Copy(io.Discard, p.conn)
	// Frames are handled in order: once the channel opened after the
	// credit is accepted, the credit has been handled.
	go p.send(append(frame(frameCredit, 0, 1, u32(10)), frame(frameOpen, 0, 3, []byte("b"))...))
	if _, err := s.Accept(ctx); err != nil {
		t.Fatalf("credit for a closed channel: %v", err)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeErrors(t *testing.T) {
	checkLeaks(t)
	run := func(peerBytes []byte) error {
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			a.Write(peerBytes)
			io.Copy(io.Discard, a)
		}()
		cfg := DefaultConfig()
		if peerBytes == nil {
			cfg.HandshakeTimeout = 500 * time.Millisecond // to be waited out
		} else {
			cfg.HandshakeTimeout = hangTimeout // the error comes before it
		}
		s, err := NewSession(context.Background(), b, true, cfg)
		if err == nil {
			s.Close()
		}
		return err
	}
	h := helloFromConfig(DefaultConfig())
	h.version = 7
	err := run(h.marshal())
	if !errors.Is(err, ErrVersion) || err.Error() != "channel: peer speaks protocol version 7, this side speaks 1" {
		t.Fatalf("version: %v", err)
	}
	err = run([]byte("Welcome to Ubuntu 24.04 LTS\r\n"))
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "Welcome") {
		t.Fatalf("garbage: %v", err)
	}
	err = run(nil) // silent peer
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	h = helloFromConfig(DefaultConfig())
	h.window = 3
	if err := run(h.marshal()); !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "window") {
		t.Fatalf("bad limits: %v", err)
	}
	// The peer hangs up before its hello.
	a, b := net.Pipe()
	go func() { io.ReadFull(a, make([]byte, 4)); a.Close() }()
	if _, err := NewSession(context.Background(), b, true, nil); !errors.Is(err, ErrHandshake) {
		t.Fatalf("hangup: %v", err)
	}
	// ctx cancels the handshake, once it is under way: our hello is out
	// and the peer never sends its own.
	a, b = net.Pipe()
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.ReadFull(a, make([]byte, helloFixedLen+helloBodyLen))
		cancel()
	}()
	if _, err := NewSession(ctx, b, true, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(c *Config){
		func(c *Config) { c.MaxFrameSize = 10 },
		func(c *Config) { c.MaxFrameSize = 1 << 30 },
		func(c *Config) { c.MaxMessageSize = 0 },
		func(c *Config) { c.WindowSize = 100 },
		func(c *Config) { c.MaxChannels = 0 },
		func(c *Config) { c.MaxDepth = 2 },
		func(c *Config) { c.MaxContainerLen = 1 },
		func(c *Config) { c.HandshakeTimeout = 0 },
	} {
		c := DefaultConfig()
		mut(c)
		if c.Validate() == nil {
			t.Errorf("invalid config %+v accepted", c)
		}
		a, b := net.Pipe()
		if _, err := NewSession(context.Background(), a, true, c); err == nil {
			t.Errorf("NewSession accepted %+v", c)
		}
		b.Close()
	}
}
