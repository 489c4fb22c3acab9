package channel

import (
	"encoding/binary"
	"fmt"
)

// Wire constants. PROTOCOL.md describes each one; const_test.go pins them.
// Changing any of them changes the protocol and requires a new
// ProtocolVersion.
const (
	// ProtocolVersion is the version this package speaks. Peers must agree
	// exactly.
	ProtocolVersion = 1

	// magic opens every connection, before the version.
	magic = "\x89GDC\r\n\x1a\n"

	helloFixedLen = len(magic) + 2 + 2 // magic, version, body length
	helloBodyLen  = 7 * 4              // the seven u32 fields of a v1 hello body
	helloMaxBody  = 256                // longest hello body a peer may announce

	frameHeaderLen = 10 // type u8, flags u8, channel u32, length u32
	sizedPrefixLen = 4  // u32 total message length in a SIZED first DATA frame

	maxNameLen    = 4096      // longest channel name in an OPEN frame
	maxCloseLen   = 64 << 10  // longest CLOSE error payload
	maxGoAwayText = 1024      // longest GOAWAY message text
	maxWireU32    = 1<<31 - 1 // largest limit a hello may announce
)

// Frame types.
const (
	frameData   byte = 0x01
	frameOpen   byte = 0x02
	frameClose  byte = 0x03
	frameCredit byte = 0x04
	frameGoAway byte = 0x05
)

// DATA frame flags.
const (
	flagMore  byte = 0x01 // more frames of this message follow
	flagSized byte = 0x02 // payload starts with the u32 total message length
	flagAbort byte = 0x04 // discard the partial message; payload is empty

	dataFlagsMask = flagMore | flagSized | flagAbort
)

// CLOSE frame flags.
const (
	flagError byte = 0x01 // payload carries a remote error

	closeFlagsMask = flagError
)

// Capability bits exchanged in the hello. None are defined in version 1; a
// peer ignores bits it does not know.
const capNone uint32 = 0

// header is a decoded frame header.
type header struct {
	typ    byte
	flags  byte
	id     uint32
	length uint32
}

func putHeader(b []byte, typ, flags byte, id, length uint32) {
	_ = b[frameHeaderLen-1]
	b[0] = typ
	b[1] = flags
	binary.BigEndian.PutUint32(b[2:6], id)
	binary.BigEndian.PutUint32(b[6:10], length)
}

func appendHeader(b []byte, typ, flags byte, id, length uint32) []byte {
	return append(b, typ, flags,
		byte(id>>24), byte(id>>16), byte(id>>8), byte(id),
		byte(length>>24), byte(length>>16), byte(length>>8), byte(length))
}

func parseHeader(b []byte) header {
	_ = b[frameHeaderLen-1]
	return header{
		typ:    b[0],
		flags:  b[1],
		id:     binary.BigEndian.Uint32(b[2:6]),
		length: binary.BigEndian.Uint32(b[6:10]),
	}
}

// hello is the handshake message each side sends first.
type hello struct {
	version      uint16
	caps         uint32
	maxFrame     uint32
	maxMessage   uint32
	window       uint32
	maxChannels  uint32
	maxDepth     uint32
	maxContainer uint32
}

func helloFromConfig(c *Config) hello {
	return hello{
		version:      ProtocolVersion,
		caps:         capNone,
		maxFrame:     uint32(c.MaxFrameSize),
		maxMessage:   uint32(c.MaxMessageSize),
		window:       uint32(c.WindowSize),
		maxChannels:  uint32(c.MaxChannels),
		maxDepth:     uint32(c.MaxDepth),
		maxContainer: uint32(c.MaxContainerLen),
	}
}

func (h *hello) marshal() []byte {
	b := make([]byte, 0, helloFixedLen+helloBodyLen)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, h.version)
	b = binary.BigEndian.AppendUint16(b, helloBodyLen)
	for _, v := range []uint32{h.caps, h.maxFrame, h.maxMessage, h.window, h.maxChannels, h.maxDepth, h.maxContainer} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// parseHelloPrefix checks the fixed part of a hello and returns the body
// length that follows.
func parseHelloPrefix(b []byte) (version uint16, bodyLen int, err error) {
	if string(b[:len(magic)]) != magic {
		return 0, 0, &HandshakeError{Reason: fmt.Sprintf("peer did not send the protocol magic (got %q); is something else writing to the stream?", b)}
	}
	version = binary.BigEndian.Uint16(b[len(magic):])
	if version != ProtocolVersion {
		return version, 0, &VersionError{Peer: int(version), Local: ProtocolVersion}
	}
	bodyLen = int(binary.BigEndian.Uint16(b[len(magic)+2:]))
	if bodyLen < helloBodyLen || bodyLen > helloMaxBody {
		return version, 0, &HandshakeError{Reason: fmt.Sprintf("bad hello body length %d", bodyLen)}
	}
	return version, bodyLen, nil
}

// parseHelloBody decodes and validates the peer's announced limits.
func parseHelloBody(version uint16, b []byte) (hello, error) {
	u := func(i int) uint32 { return binary.BigEndian.Uint32(b[4*i:]) }
	h := hello{
		version:      version,
		caps:         u(0),
		maxFrame:     u(1),
		maxMessage:   u(2),
		window:       u(3),
		maxChannels:  u(4),
		maxDepth:     u(5),
		maxContainer: u(6),
	}
	bad := func(name string, v uint32) error {
		return &HandshakeError{Reason: fmt.Sprintf("peer announced invalid %s %d", name, v)}
	}
	switch {
	case h.maxFrame < minFrameSize || h.maxFrame > maxFrameSizeLimit:
		return h, bad("max frame size", h.maxFrame)
	case h.maxMessage < 1 || h.maxMessage > maxWireU32:
		return h, bad("max message size", h.maxMessage)
	case h.window < minWindowSize || h.window > maxWireU32:
		return h, bad("window size", h.window)
	case h.maxChannels < 1 || h.maxChannels > maxWireU32:
		return h, bad("max channels", h.maxChannels)
	}
	return h, nil
}
