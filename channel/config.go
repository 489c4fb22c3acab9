package channel

import (
	"fmt"
	"time"
)

// Bounds enforced by Config.Validate and on the limits a peer announces.
const (
	minFrameSize      = 1024
	minWindowSize     = 256
	maxFrameSizeLimit = 16 << 20
	minDepth          = 4     // smallest MaxDepth the CBOR decoder accepts
	maxDepthLimit     = 65535 // largest MaxDepth the CBOR decoder accepts
	minContainerLen   = 16    // smallest MaxContainerLen the CBOR decoder accepts
)

// Config holds the limits of one end of a session. Both ends announce their
// limits in the handshake; each end enforces its own limits on what it
// receives and honours the peer's limits in what it sends.
//
// Memory bound: a channel that nobody is receiving on buffers at most
// WindowSize bytes of messages. While a Receive is waiting on a channel (or a
// callback is set) the message being reassembled may grow past the window up
// to MaxMessageSize, so one channel holds at most WindowSize +
// MaxMessageSize bytes of payload, plus up to 2x slack for a message still
// being reassembled. A session holds at most MaxChannels channels opened by
// the peer (and as many opened locally), each bounded as above.
type Config struct {
	// MaxFrameSize is the largest payload of one frame this side accepts
	// (default 1 MiB, range [1 KiB, 16 MiB]). Larger messages are split into
	// several DATA frames and reassembled.
	MaxFrameSize int

	// MaxMessageSize is the largest reassembled message this side accepts
	// (default 256 MiB). Send fails with ErrMessageTooLarge, without harming
	// the session, for a message larger than the peer's MaxMessageSize.
	MaxMessageSize int

	// WindowSize is the per-channel receive credit in bytes (default 4 MiB,
	// at least 256):
	// the peer may have at most this many unacknowledged bytes in flight on
	// one channel. Credit is returned as the application consumes messages.
	WindowSize int

	// MaxChannels is the largest number of channels the peer may have open
	// towards this side at once (default 4096). Open fails with
	// ErrTooManyChannels when this side already has min(local, peer)
	// MaxChannels channels of its own open.
	MaxChannels int

	// MaxDepth is the CBOR nesting depth limit (default 32, range [4, 65535]).
	MaxDepth int

	// MaxContainerLen is the largest CBOR array or map this side accepts
	// (default 1<<20, at least 16).
	MaxContainerLen int

	// HandshakeTimeout bounds the version/capability handshake in
	// NewSession (default 10s).
	HandshakeTimeout time.Duration
}

// DefaultConfig returns a new Config with the default limits.
func DefaultConfig() *Config {
	return &Config{
		MaxFrameSize:     1 << 20,
		MaxMessageSize:   256 << 20,
		WindowSize:       4 << 20,
		MaxChannels:      4096,
		MaxDepth:         32,
		MaxContainerLen:  1 << 20,
		HandshakeTimeout: 10 * time.Second,
	}
}

// Validate reports the first field of c that is out of range.
func (c *Config) Validate() error {
	check := func(name string, v, lo, hi int) error {
		if v < lo || v > hi {
			return fmt.Errorf("channel: config: %s %d out of range [%d, %d]", name, v, lo, hi)
		}
		return nil
	}
	for _, err := range []error{
		check("MaxFrameSize", c.MaxFrameSize, minFrameSize, maxFrameSizeLimit),
		check("MaxMessageSize", c.MaxMessageSize, 1, maxWireU32),
		check("WindowSize", c.WindowSize, minWindowSize, maxWireU32),
		check("MaxChannels", c.MaxChannels, 1, maxWireU32),
		check("MaxDepth", c.MaxDepth, minDepth, maxDepthLimit),
		check("MaxContainerLen", c.MaxContainerLen, minContainerLen, maxWireU32),
	} {
		if err != nil {
			return err
		}
	}
	if c.HandshakeTimeout <= 0 {
		return fmt.Errorf("channel: config: HandshakeTimeout %v must be positive", c.HandshakeTimeout)
	}
	return nil
}
