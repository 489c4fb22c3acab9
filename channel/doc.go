// Package channel multiplexes many bidirectional message channels over one
// byte stream (an io.ReadWriteCloser: OS pipes, an ssh session, a TCP
// connection). It is modeled on py.execnet's channels: either end opens a
// named channel, both ends send and receive Go values on it, and errors and
// panics of the far end arrive as *RemoteError with the remote stack.
// It knows nothing of ssh, tests or gateways. The wire format is in
// PROTOCOL.md next to this file.
//
// # Use
//
//	s, err := channel.NewSession(ctx, rwc, isClient, nil) // handshake
//	defer s.Close()
//	ch, err := s.Open(ctx, "run")        // the peer gets it from s.Accept
//	err = ch.Send(ctx, Request{...})     // CBOR-encoded
//	err = ch.Receive(ctx, &reply)        // io.EOF after the peer's Close
//	ch.Close()
//
// Values: nil, bools, integers, floats, strings, []byte, slices, maps and
// structs made of them, encoded as CBOR (github.com/fxamacker/cbor/v2).
// ReceiveAny returns int64, float64, string, []byte, []any, map[any]any.
// A []byte travels as a CBOR byte string without re-encoding, and a byte
// string received into *[]byte is not copied.
//
// # Concurrency and obligations
//
// Every method of Session and Channel is safe for concurrent use, and every
// blocking call takes a context first and also returns when the session
// dies. A session owns three goroutines (reader, writer, callbacks); Close
// waits for all of them. The first cause of a session's death is kept
// (Err, Wait) and returned by every call blocked on it.
//
// Who reads the stream: a goroutine blocked in Receive (or in Send, waiting
// for credit) reads it itself when nobody else does; otherwise the
// session's reader goroutine does, standing aside for 5 ms after a
// receiver last read, so frames for callbacks and Accept can wait that
// long while the application is between two Receives.
//
// The application must keep receiving on channels whose peer sends, or the
// peer's Send blocks once the channel's window is full (flow control is per
// channel, so other channels keep flowing). Channels the peer opens must be
// accepted or they hold their window until the session ends. A callback
// (SetCallback) runs on the session's callback goroutine and must not block
// for long. Close of the stream must unblock its pending Read and Write
// (true of net.Conn, net.Pipe and os.Pipe pipes; for an inherited stdin
// switch it to non-blocking mode first).
//
// # Limits and memory
//
// All limits are in Config and are announced in the handshake; inputs
// beyond them end the session with a *ProtocolError (and tell the peer
// why), never a panic or an allocation sized by an unchecked length. A
// channel nobody receives on buffers at most WindowSize (4 MiB) bytes;
// while a receiver waits on a channel, the message being reassembled may
// grow to MaxMessageSize (256 MiB), so one channel holds at most
// WindowSize+MaxMessageSize bytes of payload. A session holds at most
// MaxChannels (4096) channels opened by the peer.
//
// # Performance
//
// A goroutine blocked in Receive reads the stream itself when nobody else
// does, and a sender that alternates with receiving writes its message
// itself, so a request/response round trip costs no goroutine handoff. A
// streaming sender hands messages to the writer goroutine, which coalesces
// everything queued into one write. Large messages go out in frames of at
// most MaxFrameSize, channels taking turns, without copying the payload.
//
// How fast it is, against execnet's channels and the raw pipe floors, measured side by side
// on the 2-core development machine, is in BENCH.md in this directory, with the method.
//
// Reproduce with
//
//	bash bench/channel.sh
//
// which runs
//
//	go test -run='^$' -bench='Process|RawPipe' -benchtime=3s -count=3 ./channel
//	/usr/bin/python3 channel/bench_execnet.py 3
//	dd if=/dev/zero bs=1M count=4096 | cat > /dev/null
package channel
