package channel

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// fuzzConfig has small limits so that the fuzzer reaches them.
func fuzzConfig() *Config {
	c := DefaultConfig()
	c.MaxFrameSize = 4096
	c.MaxMessageSize = 64 << 10
	c.WindowSize = 8192
	c.MaxChannels = 8
	c.MaxDepth = 8
	c.MaxContainerLen = 64
	return c
}

type nopRWC struct{ io.Reader }

func (nopRWC) Write(p []byte) (int, error) { return len(p), nil }
func (nopRWC) Close() error                { return nil }

// fuzzSeeds are valid frame sequences (after the handshake).
func fuzzSeeds() [][]byte {
	return [][]byte{
		nil,
		frame(frameOpen, 0, 1, []byte("name")),
		bytes.Join([][]byte{
			frame(frameOpen, 0, 1, []byte("a")),
			frame(frameData, 0, 1, []byte{0x82, 0x01, 0x61, 'x'}),
			frame(frameData, flagSized|flagMore, 1, u32(5), []byte{0x44, 1}),
			frame(frameData, flagMore, 1, []byte{2, 3}),
			frame(frameData, 0, 1, []byte{4}),
			frame(frameCredit, 0, 1, u32(1)),
			frame(frameClose, flagError, 1, marshalRemoteError(&RemoteError{Message: "m", Stack: "s"})),
		}, nil),
		bytes.Join([][]byte{
			frame(frameOpen, 0, 3, nil),
			frame(frameData, flagSized|flagMore, 3, u32(3), []byte{0x42, 9}),
			frame(frameData, flagAbort, 3),
			frame(frameClose, 0, 3),
			frame(frameGoAway, 0, 0, u32(2), []byte("bye")),
		}, nil),
	}
}

// FuzzFrameDecoder feeds arbitrary bytes to the frame reader of a session
// that has done its handshake. It must return an error (never panic, hang
// or allocate beyond the configured limits) by the end of the input.
func FuzzFrameDecoder(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	cd, err := newCodec(fuzzConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSession(nopRWC{bytes.NewReader(data)}, true, fuzzConfig(), cd)
		s.peer = helloFromConfig(fuzzConfig())
		s.outLimit = s.cfg.MaxChannels
		for i := 0; ; i++ {
			if err := s.readFrame(); err != nil {
				break
			}
			if i > len(data) {
				t.Fatal("more frames than bytes")
			}
		}
		// Whatever was accepted is bounded by the limits.
		if len(s.chans) > s.cfg.MaxChannels {
			t.Fatalf("%d channels", len(s.chans))
		}
		for _, c := range s.chans {
			if c.recvUsed > s.cfg.WindowSize || cap(c.partial) > s.cfg.MaxMessageSize {
				t.Fatalf("channel %d holds %d bytes, partial cap %d", c.id, c.recvUsed, cap(c.partial))
			}
			for m, ok := c.popLocked(); ok; m, ok = c.popLocked() {
				m.Any()
			}
		}
	})
}

// FuzzValueDecoder decodes arbitrary bytes as a message.
func FuzzValueDecoder(f *testing.F) {
	for _, v := range []any{nil, 1, -1, "s", []byte("b"), []any{1, "x", []any{}}, map[string]any{"a": 1.5}, point{X: 1, Sub: []point{{Y: 2}}}} {
		var hb [9]byte
		_, body, buf, err := (&codec{enc: mustEncMode()}).encode(v, &hb)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte(nil), body...))
		if buf != nil {
			putEncBuf(buf)
		}
	}
	cd, err := newCodec(fuzzConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if cd.dec.Wellformed(data) != nil {
			return // the session rejects it before anyone decodes it
		}
		m := RawMessage{data: data, codec: cd}
		m.Any()
		var p point
		m.Decode(&p)
		var b []byte
		m.Decode(&b)
		var mp map[string]any
		m.Decode(&mp)
	})
}

func mustEncMode() encMode {
	em, err := encModeOnce()
	if err != nil {
		panic(err)
	}
	return em
}

// FuzzSession runs a whole session against a peer that sends arbitrary
// bytes (a valid hello is prepended to the seeds). The session must fail
// cleanly and release its goroutines.
func FuzzSession(f *testing.F) {
	h := helloFromConfig(fuzzConfig())
	for _, s := range fuzzSeeds() {
		f.Add(append(h.marshal(), s...))
	}
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() {
			a.Write(data)
			a.Close()
		}()
		go io.Copy(io.Discard, a)
		cfg := fuzzConfig()
		cfg.HandshakeTimeout = time.Second
		s, err := NewSession(context.Background(), b, false, cfg)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
		defer cancel()
		go func() {
			for {
				ch, err := s.Accept(ctx)
				if err != nil {
					return
				}
				go func() {
					for {
						if _, err := ch.ReceiveAny(ctx); err != nil {
							return
						}
					}
				}()
			}
		}()
		if err := s.Wait(ctx); err == nil || err == context.DeadlineExceeded {
			t.Fatalf("session still alive after the input ended: %v", err)
		}
		s.Close()
	})
}
