package channel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

type encMode = cbor.UserBufferEncMode

// codec holds one session's CBOR modes, built once from its Config.
type codec struct {
	enc encMode
	dec cbor.DecMode
}

var encModeOnce = sync.OnceValues(func() (cbor.UserBufferEncMode, error) {
	return cbor.EncOptions{}.UserBufferEncMode()
})

func newCodec(cfg *Config) (*codec, error) {
	em, err := encModeOnce()
	if err != nil {
		return nil, err
	}
	dm, err := cbor.DecOptions{
		MaxNestedLevels:  cfg.MaxDepth,
		MaxArrayElements: cfg.MaxContainerLen,
		MaxMapPairs:      cfg.MaxContainerLen,
		IndefLength:      cbor.IndefLengthForbidden,
		IntDec:           cbor.IntDecConvertSignedOrBigInt,
	}.DecMode()
	if err != nil {
		return nil, fmt.Errorf("channel: config: %w", err)
	}
	return &codec{enc: em, dec: dm}, nil
}

var encBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf is the largest encode buffer kept for reuse.
const maxPooledBuf = 256 << 10

func putEncBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		b.Reset()
		encBufPool.Put(b)
	}
}

// encode returns v's CBOR encoding. For []byte and RawMessage values the
// payload is not copied: head holds the CBOR head (if any) and body aliases
// the caller's bytes. Otherwise body is in buf (from encBufPool), which the
// caller must return with putEncBuf once done with body.
func (c *codec) encode(v any, head *[9]byte) (h []byte, body []byte, buf *bytes.Buffer, err error) {
	switch x := v.(type) {
	case []byte:
		if x == nil {
			break // nil slice encodes as CBOR null; leave it to the encoder
		}
		return byteStringHead(head, len(x)), x, nil, nil
	case RawMessage:
		if len(x.data) == 0 {
			return nil, nil, nil, fmt.Errorf("channel: send of empty RawMessage")
		}
		return nil, x.data, nil, nil
	}
	buf = encBufPool.Get().(*bytes.Buffer)
	if err := c.enc.MarshalToBuffer(v, buf); err != nil {
		putEncBuf(buf)
		return nil, nil, nil, fmt.Errorf("channel: encode %T: %w", v, err)
	}
	return nil, buf.Bytes(), buf, nil
}

// byteStringHead writes the CBOR head of a byte string of length n.
func byteStringHead(head *[9]byte, n int) []byte {
	const major = 2 << 5
	switch {
	case n < 24:
		head[0] = major | byte(n)
		return head[:1]
	case n <= math.MaxUint8:
		head[0], head[1] = major|24, byte(n)
		return head[:2]
	case n <= math.MaxUint16:
		head[0] = major | 25
		binary.BigEndian.PutUint16(head[1:], uint16(n))
		return head[:3]
	case uint64(n) <= math.MaxUint32:
		head[0] = major | 26
		binary.BigEndian.PutUint32(head[1:], uint32(n))
		return head[:5]
	default:
		head[0] = major | 27
		binary.BigEndian.PutUint64(head[1:], uint64(n))
		return head[:9]
	}
}

// byteStringBody returns the content of data if it is exactly one definite
// length CBOR byte string.
func byteStringBody(data []byte) ([]byte, bool) {
	if len(data) == 0 || data[0]>>5 != 2 {
		return nil, false
	}
	ai := data[0] & 31
	var n uint64
	var off int
	switch {
	case ai < 24:
		n, off = uint64(ai), 1
	case ai == 24 && len(data) >= 2:
		n, off = uint64(data[1]), 2
	case ai == 25 && len(data) >= 3:
		n, off = uint64(binary.BigEndian.Uint16(data[1:])), 3
	case ai == 26 && len(data) >= 5:
		n, off = uint64(binary.BigEndian.Uint32(data[1:])), 5
	case ai == 27 && len(data) >= 9:
		n, off = binary.BigEndian.Uint64(data[1:]), 9
	default:
		return nil, false
	}
	if uint64(len(data)-off) != n {
		return nil, false
	}
	return data[off:len(data):len(data)], true
}

// RawMessage is one received message, still CBOR-encoded, with the decode
// limits of the session it came from. Messages handed to callbacks and
// returned by ReceiveQueue and ReceiveEach are RawMessages. A RawMessage may
// be sent as is on any channel (its bytes are forwarded without re-encoding).
// The zero RawMessage decodes as an error.
type RawMessage struct {
	data  []byte
	codec *codec
}

// Decode decodes m into the value pointed to by v, like Receive. Decoding
// into *[]byte a message that is a byte string returns the message's own
// bytes without copying.
func (m RawMessage) Decode(v any) error {
	if m.codec == nil {
		return fmt.Errorf("channel: decode of empty RawMessage")
	}
	if p, ok := v.(*[]byte); ok && p != nil {
		if b, ok := byteStringBody(m.data); ok {
			*p = b
			return nil
		}
	}
	if err := m.codec.dec.Unmarshal(m.data, v); err != nil {
		return fmt.Errorf("channel: decode into %T: %w", v, err)
	}
	return nil
}

// Any decodes m into a Go value: nil, bool, int64 (big.Int past int64),
// float64, string, []byte, []any or map[any]any.
func (m RawMessage) Any() (any, error) {
	if b, ok := byteStringBody(m.data); ok {
		return b, nil
	}
	var v any
	if err := m.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// Bytes returns the message's CBOR encoding. The caller must not modify it.
func (m RawMessage) Bytes() []byte { return m.data }

// Len returns the size of the encoded message in bytes.
func (m RawMessage) Len() int { return len(m.data) }
