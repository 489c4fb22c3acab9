package channel

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Sentinel errors. Match them with errors.Is; typed errors below carry data
// and unwrap to the matching sentinel.
var (
	// ErrSessionClosed is the cause of a session ended by a local Close.
	ErrSessionClosed = errors.New("channel: session closed")
	// ErrPeerClosed is the cause of a session the peer closed cleanly.
	ErrPeerClosed = errors.New("channel: session closed by peer")
	// ErrChannelClosed is returned by Send after a local Close.
	ErrChannelClosed = errors.New("channel: send on closed channel")
	// ErrCallbackSet is returned by Receive on a channel with a callback.
	ErrCallbackSet = errors.New("channel: channel has a callback; Receive is not allowed")
	// ErrVersion matches a *VersionError.
	ErrVersion = errors.New("channel: protocol version mismatch")
	// ErrHandshake matches a *HandshakeError and handshake timeouts.
	ErrHandshake = errors.New("channel: handshake failed")
	// ErrNameTooLong is returned by Open for a name over 4096 bytes.
	ErrNameTooLong = errors.New("channel: channel name too long")

	// The following are protocol violations. When this side detects one it
	// tells the peer (GOAWAY with the error's code) and closes the session
	// with a *ProtocolError; when the peer reports one the session ends
	// with a *PeerError. Both match the sentinel with errors.Is.

	ErrProtocol        = errors.New("channel: protocol error")
	ErrFrameTooLarge   = errors.New("channel: frame too large")
	ErrMessageTooLarge = errors.New("channel: message too large")
	ErrTooManyChannels = errors.New("channel: too many channels")
	ErrFlowControl     = errors.New("channel: flow control violation")
	ErrUnknownChannel  = errors.New("channel: frame for unknown channel")
	ErrBadValue        = errors.New("channel: malformed or over-limit value")
	ErrInternal        = errors.New("channel: internal error")
)

// Error codes carried by GOAWAY frames (see PROTOCOL.md).
const (
	codeNoError         uint32 = 0
	codeProtocol        uint32 = 1
	codeFrameTooLarge   uint32 = 2
	codeMessageTooLarge uint32 = 3
	codeTooManyChannels uint32 = 4
	codeFlowControl     uint32 = 5
	codeUnknownChannel  uint32 = 6
	codeBadValue        uint32 = 7
	codeInternal        uint32 = 8
)

// codeTable maps wire codes to sentinels and back. Index = code.
var codeTable = []error{
	codeNoError:         ErrPeerClosed,
	codeProtocol:        ErrProtocol,
	codeFrameTooLarge:   ErrFrameTooLarge,
	codeMessageTooLarge: ErrMessageTooLarge,
	codeTooManyChannels: ErrTooManyChannels,
	codeFlowControl:     ErrFlowControl,
	codeUnknownChannel:  ErrUnknownChannel,
	codeBadValue:        ErrBadValue,
	codeInternal:        ErrInternal,
}

func errorForCode(code uint32) error {
	if int64(code) < int64(len(codeTable)) {
		return codeTable[code]
	}
	return ErrProtocol
}

func codeForError(err error) uint32 {
	for code, e := range codeTable {
		if code != 0 && errors.Is(err, e) {
			return uint32(code)
		}
	}
	return codeInternal
}

// ProtocolError reports a violation by the peer detected on this side. The
// session is closed and the peer is told Code.
type ProtocolError struct {
	Kind   error  // one of the protocol sentinels, e.g. ErrFrameTooLarge
	Detail string // what was wrong
}

func (e *ProtocolError) Error() string { return e.Kind.Error() + ": " + e.Detail }
func (e *ProtocolError) Unwrap() error { return e.Kind }

func protoErr(kind error, format string, args ...any) *ProtocolError {
	return &ProtocolError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// PeerError reports that the peer closed the session because of an error it
// detected (a GOAWAY frame with a non-zero code).
type PeerError struct {
	Code    uint32 // wire code, see PROTOCOL.md
	Message string // the peer's description
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("channel: peer closed the session: %v: %s", errorForCode(e.Code), e.Message)
}
func (e *PeerError) Unwrap() error { return errorForCode(e.Code) }

// VersionError is returned by NewSession when the peer speaks another
// protocol version.
type VersionError struct{ Peer, Local int }

func (e *VersionError) Error() string {
	return fmt.Sprintf("channel: peer speaks protocol version %d, this side speaks %d", e.Peer, e.Local)
}
func (e *VersionError) Unwrap() error { return ErrVersion }

// HandshakeError is returned by NewSession when the peer's hello is not a
// valid hello of this protocol.
type HandshakeError struct{ Reason string }

func (e *HandshakeError) Error() string { return "channel: handshake: " + e.Reason }
func (e *HandshakeError) Unwrap() error { return ErrHandshake }

// ConnError is the cause of a session that died because its byte stream
// failed. Err is the transport's error; an end of stream without the peer's
// goodbye is reported as io.ErrUnexpectedEOF.
type ConnError struct {
	Op  string // "read" or "write"
	Err error
}

func (e *ConnError) Error() string {
	return "channel: connection lost (" + e.Op + "): " + e.Err.Error()
}
func (e *ConnError) Unwrap() error { return e.Err }

// RemoteError is an error (or panic) of the peer, carried over the wire by
// CloseWithError. Receive, WaitClose and callbacks' end functions return it.
type RemoteError struct {
	Message string // the remote error's text
	Stack   string // the remote goroutine's stack when the error was made
}

func (e *RemoteError) Error() string { return "channel: remote error: " + e.Message }

// NewRemoteError returns a RemoteError with err's text and the calling
// goroutine's stack. Called from a deferred recover, the stack includes the
// panic site:
//
//	defer func() {
//		if r := recover(); r != nil {
//			ch.CloseWithError(channel.NewRemoteError(fmt.Errorf("panic: %v", r)))
//		}
//	}()
//
// A *RemoteError passed in is returned unchanged.
func NewRemoteError(err error) *RemoteError {
	if re, ok := err.(*RemoteError); ok {
		return re
	}
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	return &RemoteError{Message: msg, Stack: string(debug.Stack())}
}
