package channel

import (
	"context"
	"io"
)

// Reader returns an io.Reader over c's messages, which must be []byte
// (byte strings): the bytes of consecutive messages form the stream, like
// execnet's makefile("r"). Read returns io.EOF after the peer's Close and
// the *RemoteError or session cause otherwise. Reads block without a
// deadline: close the channel or session to unblock them. Use one Reader at
// a time; do not mix with Receive.
func (c *Channel) Reader() io.Reader { return &chanReader{c: c} }

type chanReader struct {
	c   *Channel
	m   RawMessage // the message buf points into, released once read
	buf []byte
}

func (r *chanReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(r.buf) == 0 {
		r.m.Release()
		m, err := r.c.next(context.Background())
		if err != nil {
			return 0, err
		}
		if err := m.Decode(&r.buf); err != nil {
			return 0, err
		}
		r.m = m
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Writer returns an io.WriteCloser that sends each Write as one []byte
// message, like execnet's makefile("w"); Close closes the channel. Writes
// block on flow control without a deadline: close the channel or session
// to unblock them.
func (c *Channel) Writer() io.WriteCloser { return chanWriter{c} }

type chanWriter struct{ c *Channel }

func (w chanWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := w.c.Send(context.Background(), p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w chanWriter) Close() error { return w.c.Close() }
