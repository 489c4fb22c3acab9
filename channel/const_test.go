package channel

import (
	"bytes"
	"testing"
)

// TestWireConstants pins every constant of the wire format (PROTOCOL.md).
// A failure here means the protocol changed: bump ProtocolVersion and
// update PROTOCOL.md.
func TestWireConstants(t *testing.T) {
	pins := []struct {
		name      string
		got, want int64
	}{
		{"ProtocolVersion", ProtocolVersion, 1},
		{"helloFixedLen", int64(helloFixedLen), 12},
		{"helloBodyLen", int64(helloBodyLen), 28},
		{"helloMaxBody", helloMaxBody, 256},
		{"frameHeaderLen", frameHeaderLen, 10},
		{"sizedPrefixLen", sizedPrefixLen, 4},
		{"maxNameLen", maxNameLen, 4096},
		{"maxCloseLen", maxCloseLen, 65536},
		{"maxGoAwayText", maxGoAwayText, 1024},
		{"maxWireU32", maxWireU32, 1<<31 - 1},
		{"minFrameSize", minFrameSize, 1024},
		{"maxFrameSizeLimit", maxFrameSizeLimit, 16 << 20},
		{"minWindowSize", minWindowSize, 256},

		{"frameData", int64(frameData), 0x01},
		{"frameOpen", int64(frameOpen), 0x02},
		{"frameClose", int64(frameClose), 0x03},
		{"frameCredit", int64(frameCredit), 0x04},
		{"frameGoAway", int64(frameGoAway), 0x05},

		{"flagMore", int64(flagMore), 0x01},
		{"flagSized", int64(flagSized), 0x02},
		{"flagAbort", int64(flagAbort), 0x04},
		{"flagError", int64(flagError), 0x01},
		{"capNone", int64(capNone), 0},

		{"codeNoError", int64(codeNoError), 0},
		{"codeProtocol", int64(codeProtocol), 1},
		{"codeFrameTooLarge", int64(codeFrameTooLarge), 2},
		{"codeMessageTooLarge", int64(codeMessageTooLarge), 3},
		{"codeTooManyChannels", int64(codeTooManyChannels), 4},
		{"codeFlowControl", int64(codeFlowControl), 5},
		{"codeUnknownChannel", int64(codeUnknownChannel), 6},
		{"codeBadValue", int64(codeBadValue), 7},
		{"codeInternal", int64(codeInternal), 8},
	}
	for _, p := range pins {
		if p.got != p.want {
			t.Errorf("%s = %d, want %d", p.name, p.got, p.want)
		}
	}
	if magic != "\x89GDC\r\n\x1a\n" {
		t.Errorf("magic = %q", magic)
	}
	for code, err := range codeTable {
		if got := codeForError(err); code != 0 && got != uint32(code) {
			t.Errorf("code of %v = %d, want %d", err, got, code)
		}
		if errorForCode(uint32(code)) != err {
			t.Errorf("error of code %d", code)
		}
	}
	if errorForCode(999) != ErrProtocol {
		t.Error("unknown codes must map to ErrProtocol")
	}
}

// TestWireLayout pins the byte layout of a hello and of each frame type.
func TestWireLayout(t *testing.T) {
	h := hello{version: 1, caps: 0, maxFrame: 1 << 20, maxMessage: 256 << 20, window: 4 << 20, maxChannels: 4096, maxDepth: 32, maxContainer: 1 << 20}
	want := []byte{
		0x89, 'G', 'D', 'C', '\r', '\n', 0x1a, '\n', // magic
		0, 1, // version
		0, 28, // body length
		0, 0, 0, 0, // capabilities
		0, 0x10, 0, 0, // max frame
		0x10, 0, 0, 0, // max message
		0, 0x40, 0, 0, // window
		0, 0, 0x10, 0, // max channels
		0, 0, 0, 32, // max depth
		0, 0x10, 0, 0, // max container
	}
	if got := h.marshal(); !bytes.Equal(got, want) {
		t.Errorf("hello = % x\nwant    % x", got, want)
	}
	if got := helloFromConfig(DefaultConfig()); got != h {
		t.Errorf("default hello = %+v, want %+v", got, h)
	}
	f := appendHeader(nil, frameData, flagSized|flagMore, 0x01020304, 0x0a0b0c0d)
	if !bytes.Equal(f, []byte{0x01, 0x03, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d}) {
		t.Errorf("header = % x", f)
	}
	if parseHeader(f) != (header{frameData, 3, 0x01020304, 0x0a0b0c0d}) {
		t.Errorf("parseHeader = %+v", parseHeader(f))
	}
	re := marshalRemoteError(&RemoteError{Message: "ab", Stack: "c"})
	if !bytes.Equal(re, []byte{0, 0, 0, 2, 'a', 'b', 0, 0, 0, 1, 'c'}) {
		t.Errorf("remote error payload = % x", re)
	}
	var hb [9]byte
	for n, want := range map[int][]byte{0: {0x40}, 23: {0x57}, 24: {0x58, 24}, 256: {0x59, 1, 0}, 1 << 20: {0x5a, 0, 0x10, 0, 0}} {
		if got := byteStringHead(&hb, n); !bytes.Equal(got, want) {
			t.Errorf("byte string head of %d = % x, want % x", n, got, want)
		}
	}
}
