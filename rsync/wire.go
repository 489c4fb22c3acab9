package rsync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/godist/godist/channel"
)

// The wire format is described in PROTOCOL.md; const_test.go pins these values.

// protocolVersion is the version both ends must speak.
const protocolVersion = 2

// Message types. Every message is one channel message, a byte string:
// type u8, flags u8, body.
const (
	msgHello       = 0x01 // sender → receiver: what to do where
	msgManifest    = 0x02 // sender → receiver: entries of the tree
	msgManifestEnd = 0x03 // sender → receiver: the manifest is complete
	msgData        = 0x04 // sender → receiver: file records
	msgReply       = 0x10 // receiver → sender: answer to the hello
	msgNeed        = 0x11 // receiver → sender: files it needs, with signatures
	msgResult      = 0x12 // receiver → sender: done, with its counts
)

// Message flags.
const (
	flagZstd = 0x01 // the body is one zstd frame
)

// Codecs, as bits of the sets in the hellos.
const (
	codecZstd = 1 << 0
	codecsAll = codecZstd
)

// Hello modes.
const (
	modeTree = 1
	modeBlob = 2
)

// Hello flags of a tree sync.
const (
	helloDelete = 1 << 0
	helloFsync  = 1 << 1
)

// Reply states.
const (
	treeReady   = 0 // tree: go on with the manifest
	blobHave    = 1 // blob: the blob is there, nothing to send
	blobNeed    = 2 // blob: send it (a NEED follows)
	treeRefused = 3 // tree: the destination is refused (the reason in the path field)
)

// Result flags of a tree sync.
const (
	resultOwned = 1 << 0 // the destination held the sync marker of an earlier sync
)

// Data record tags.
const (
	recFile  = 'F' // uvarint index: the file whose records follow
	recLit   = 'L' // uvarint n, n bytes: literal data
	recCopy  = 'C' // uvarint block, uvarint count: blocks of the basis
	recEnd   = 'E' // [32]byte sha256 of the whole file: the file is complete
	shaLen   = 32
	entDir   = 'd'
	entFile  = 'f'
	entLink  = 'l'
	maxLit   = 128 << 10 // largest literal record
	bodyGoal = 256 << 10 // a message body is sent once it reaches this size
	// maxBody bounds a decompressed body (and a raw one); maxNeedBody a NEED body, which
	// may carry the signature of one large file.
	maxBody     = 4 << 20
	maxNeedBody = 16 << 20
)

// errProto is the sentinel of violations of this package's protocol by the peer.
var errProto = errors.New("rsync: protocol error")

func protoErrf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProto}, args...)...)
}

// ---- encoding ----

type wbuf []byte

func (b *wbuf) byte(c byte)       { *b = append(*b, c) }
func (b *wbuf) uvarint(v uint64)  { *b = binary.AppendUvarint(*b, v) }
func (b *wbuf) varint(v int64)    { *b = binary.AppendVarint(*b, v) }
func (b *wbuf) bytes(p []byte)    { b.uvarint(uint64(len(p))); *b = append(*b, p...) }
func (b *wbuf) str(s string)      { b.uvarint(uint64(len(s))); *b = append(*b, s...) }
func (b *wbuf) raw(p []byte)      { *b = append(*b, p...) }
func (b *wbuf) u32le(v uint32)    { *b = binary.LittleEndian.AppendUint32(*b, v) }
func newMsg(typ byte, n int) wbuf { b := make(wbuf, 2, n+2); b[0] = typ; return b }

// rbuf decodes; the first error sticks and every later read returns zero values.
type rbuf struct {
	b   []byte
	err error
}

func (r *rbuf) fail(format string, args ...any) {
	if r.err == nil {
		r.err = protoErrf(format, args...)
	}
}

func (r *rbuf) empty() bool { return r.err != nil || len(r.b) == 0 }

func (r *rbuf) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated message")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *rbuf) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// uint reads a uvarint that must be at most max.
func (r *rbuf) uint(max uint64, what string) uint64 {
	v := r.uvarint()
	if v > max {
		r.fail("%s %d out of range (max %d)", what, v, max)
		return 0
	}
	return v
}

func (r *rbuf) fixed(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("truncated message")
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// bytes reads a length-prefixed byte string of at most max bytes; it aliases the buffer.
func (r *rbuf) bytes(max int, what string) []byte {
	n := r.uint(uint64(max), what+" length")
	return r.fixed(int(n))
}

func (r *rbuf) str(max int, what string) string { return string(r.bytes(max, what)) }

// ---- compression ----

var (
	encoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithWindowSize(1<<20),
			zstd.WithEncoderCRC(false))
		if err != nil {
			panic(err) // constant options
		}
		return e
	})
	decoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(maxNeedBody), zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxWindow(maxNeedBody))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// compressMsg returns msg with its body zstd-compressed when that makes it smaller, and
// msg itself otherwise (incompressible data travels as it is).
func compressMsg(msg []byte) []byte {
	if len(msg) < 64 {
		return msg
	}
	out := make([]byte, 2, 2+len(msg)/2)
	out[0], out[1] = msg[0], msg[1]|flagZstd
	out = encoder().EncodeAll(msg[2:], out)
	if len(out) >= len(msg) {
		return msg
	}
	return out
}

// openMsg splits a received message into type and body, decompressing the body into
// scratch (reused between calls) when it is compressed. It enforces the body limits.
func openMsg(msg []byte, scratch *[]byte) (typ byte, body []byte, err error) {
	if len(msg) < 2 {
		return 0, nil, protoErrf("message of %d bytes", len(msg))
	}
	typ, flags, body := msg[0], msg[1], msg[2:]
	limit := maxBody
	if typ == msgNeed {
		limit = maxNeedBody
	}
	if flags&^flagZstd != 0 {
		return 0, nil, protoErrf("unknown message flags %#x", flags)
	}
	if flags&flagZstd != 0 {
		if cap(*scratch) < limit {
			*scratch = make([]byte, 0, limit)
		}
		out, err := decoder().DecodeAll(body, (*scratch)[:0:limit])
		if err != nil {
			return 0, nil, protoErrf("message type %#x: zstd: %v", typ, err)
		}
		body = out
	}
	if len(body) > limit {
		return 0, nil, protoErrf("message type %#x: body of %d bytes (limit %d)", typ, len(body), limit)
	}
	return typ, body, nil
}

// ---- channel ends ----

// wireOverhead is what the channel adds to a message of n bytes on the transport: the
// CBOR head of the byte string and the 10-byte header of each frame (frames of at most
// 1 MiB, the channel's default), plus the 4-byte total of a multi-frame message.
func wireOverhead(n int) int64 {
	head := 1
	switch {
	case int64(n) >= 1<<32:
		head = 9
	case n >= 1<<16:
		head = 5
	case n >= 1<<8:
		head = 3
	case n >= 24:
		head = 2
	}
	total := n + head
	frames := (total + (1 << 20) - 1) >> 20
	over := int64(head + 10*frames)
	if frames > 1 {
		over += 4
	}
	return over
}

// conn is one end of an rsync exchange over a channel: it counts what it sends and
// decodes what it receives.
type conn struct {
	ch       *channel.Channel
	sent     int64 // transport bytes of the messages sent (see wireOverhead)
	received int64
	compress bool // the peer decodes zstd and compression is wanted
	scratch  []byte
	mu       sync.Mutex // guards sent (sends may come from two goroutines)

	startRecv sync.Once
	in        chan inMsg
	quitInit  sync.Once
	quitOnce  sync.Once
	quit      chan struct{}
}

func (c *conn) quitCh() chan struct{} {
	c.quitInit.Do(func() { c.quit = make(chan struct{}) })
	return c.quit
}

// close stops the conn's receiving goroutine from handing over more messages. The
// goroutine itself ends when the channel does (after the peer's Close, or with the session).
func (c *conn) close() {
	q := c.quitCh()
	c.quitOnce.Do(func() { close(q) })
}

type inMsg struct {
	m   channel.RawMessage
	err error
}

func (c *conn) send(ctx context.Context, msg []byte) error {
	if c.compress {
		msg = compressMsg(msg)
	}
	return c.sendRaw(ctx, msg)
}

func (c *conn) sendRaw(ctx context.Context, msg []byte) error {
	if err := c.ch.Send(ctx, msg); err != nil {
		return err
	}
	c.mu.Lock()
	c.sent += int64(len(msg)) + wireOverhead(len(msg))
	c.mu.Unlock()
	return nil
}

func (c *conn) bytesSent() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

// recv returns the next message's type and body. The body is valid until the next recv.
// At the peer's Close it returns io.EOF.
//
// Messages are taken off the channel by a goroutine of the conn that receives without a
// deadline, and handed over: a Receive that can be cancelled cannot read the stream
// itself unless the stream has read deadlines (an ssh session has none), and then waits
// for the session's reader goroutine, which is much slower for a stream of messages. The
// goroutine ends when the channel or its session does; recv stops waiting for it when
// ctx is done.
func (c *conn) recv(ctx context.Context) (byte, []byte, error) {
	c.startRecv.Do(func() {
		c.in = make(chan inMsg, 2)
		quit := c.quitCh()
		go func() {
			defer close(c.in)
			for {
				m, err := c.ch.ReceiveRaw(context.Background())
				select {
				case c.in <- inMsg{m, err}:
				case <-quit:
					return
				}
				if err != nil {
					return
				}
			}
		}()
	})
	var im inMsg
	select {
	case x, ok := <-c.in:
		if !ok {
			return 0, nil, io.ErrClosedPipe
		}
		im = x
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	if im.err != nil {
		return 0, nil, im.err
	}
	var msg []byte
	if err := im.m.Decode(&msg); err != nil {
		return 0, nil, protoErrf("message is not a byte string: %v", err)
	}
	c.received += int64(len(msg)) + wireOverhead(len(msg))
	return openMsg(msg, &c.scratch)
}

// isEOF reports whether err is the peer's orderly Close.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
