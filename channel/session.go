package channel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// lingerTimeout bounds how long a dying session waits for its final frames
// (a GOAWAY) to be written before it closes the stream.
const lingerTimeout = time.Second

// readBufferSize is the size of the session's bufio.Reader.
const readBufferSize = 64 << 10

// Session multiplexes channels over one byte stream. It owns three
// goroutines (reader, writer, callbacks) that all exit before Close
// returns. All methods are safe for concurrent use.
//
// A session dies on the first of: a local Close, the peer's goodbye, a
// protocol violation by either side, or a failure of the stream. Every
// blocked call on the session or its channels then returns, and Err keeps
// the first cause.
type Session struct {
	rwc      io.ReadWriteCloser
	br       *bufio.Reader
	cfg      Config
	peer     hello
	isClient bool
	codec    *codec

	// outLimit is how many channels this side may have open towards the
	// peer: min(local, peer) MaxChannels.
	outLimit int

	done       chan struct{} // closed when the session dies
	err        error         // first cause; written once before done is closed
	readerDone chan struct{}
	writerDone chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
	rwcOnce    sync.Once
	rwcErr     error

	mu         sync.Mutex // guards the fields below and err
	chans      map[uint32]*Channel
	nextID     uint64 // next id this side opens
	lastPeerID uint32 // highest id the peer opened
	nIn, nOut  int
	acceptQ    []*Channel
	acceptSig  chan struct{}
	cbChans    map[*Channel]struct{}
	cbClosed   bool // the callback goroutine has done its final pass
	closing    bool // Close has started

	cbmu  sync.Mutex
	cbq   []*Channel
	cbSig chan struct{}

	w writer

	// Reading. Whoever holds rtok (a 1-slot semaphore) reads frames:
	// the background readLoop, or a goroutine blocked in Receive (see
	// reader.go). The fields below are used only by the token holder.
	rtok     chan struct{}
	slab     []byte // allocation slab for small messages
	epoch    time.Time
	lastRecv atomic.Int64 // ns since epoch when a receiver last read or was served
	deadline deadliner    // rwc's SetReadDeadline, or nil
	imu      sync.Mutex   // guards interruptible, interrupted, interruptPending
	interruptible,
	interrupted,
	interruptPending bool
}

// NewSession runs the version/capability handshake over rwc and starts the
// session's goroutines. isClient must be true on exactly one end; the two
// ends open channels with disjoint ids (client odd, server even). cfg nil
// means DefaultConfig(); cfg is copied.
//
// The handshake is bounded by ctx and cfg.HandshakeTimeout; ctx does not
// bound the session's life after NewSession returns. On error rwc is closed.
//
// Obligations on rwc: Close must unblock pending Read and Write calls (true
// of net.Conn, net.Pipe and pipes from os.Pipe; a blocking-mode *os.File
// such as an inherited stdin is not unblocked by Close).
func NewSession(ctx context.Context, rwc io.ReadWriteCloser, isClient bool, cfg *Config) (*Session, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		rwc.Close()
		return nil, err
	}
	cd, err := newCodec(cfg)
	if err != nil {
		rwc.Close()
		return nil, err
	}
	s := newSession(rwc, isClient, cfg, cd)
	if err := s.handshake(ctx); err != nil {
		return nil, err
	}
	s.outLimit = min(s.cfg.MaxChannels, int(s.peer.maxChannels))
	s.wg.Add(3)
	go s.readLoop()
	go s.writeLoop()
	go s.callbackLoop()
	return s, nil
}

// newSession builds a session without running the handshake or starting
// its goroutines.
func newSession(rwc io.ReadWriteCloser, isClient bool, cfg *Config, cd *codec) *Session {
	s := &Session{
		rwc:        rwc,
		br:         bufio.NewReaderSize(rwc, readBufferSize),
		cfg:        *cfg,
		isClient:   isClient,
		codec:      cd,
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		chans:      make(map[uint32]*Channel),
		acceptSig:  make(chan struct{}, 1),
		cbChans:    make(map[*Channel]struct{}),
		cbSig:      make(chan struct{}, 1),
		rtok:       make(chan struct{}, 1),
		epoch:      time.Now(),
	}
	s.deadline, _ = rwc.(deadliner)
	s.nextID = 2
	if isClient {
		s.nextID = 1
	}
	s.w.init()
	return s
}

// handshake sends our hello and reads the peer's, concurrently (net.Pipe
// has no buffer, so both ends writing first would deadlock).
func (s *Session) handshake(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	ours := helloFromConfig(&s.cfg)
	out := ours.marshal()
	werr := make(chan error, 1)
	rerr := make(chan error, 1)
	go func() {
		_, err := s.rwc.Write(out)
		werr <- err
	}()
	go func() {
		rerr <- s.readHello()
	}()
	var readErr, writeErr error
	gotR, gotW := false, false
	for !gotR || !gotW {
		select {
		case readErr = <-rerr:
			gotR = true
			if readErr != nil && !gotW {
				// The peer's hello is bad: no point finishing our write.
				s.rwc.Close()
			}
		case writeErr = <-werr:
			gotW = true
			if writeErr != nil && !gotR {
				s.rwc.Close()
			}
		case <-ctx.Done():
			s.rwc.Close()
			if !gotR {
				<-rerr
			}
			if !gotW {
				<-werr
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w: timed out after %v: %w", ErrHandshake, s.cfg.HandshakeTimeout, ctx.Err())
			}
			return fmt.Errorf("%w: %w", ErrHandshake, ctx.Err())
		}
	}
	if readErr != nil {
		s.rwc.Close()
		return readErr
	}
	if writeErr != nil {
		s.rwc.Close()
		return fmt.Errorf("%w: %w", ErrHandshake, &ConnError{Op: "write", Err: writeErr})
	}
	return nil
}

func (s *Session) readHello() error {
	var fixed [helloFixedLen]byte
	if n, err := io.ReadFull(s.br, fixed[:]); err != nil {
		if n > 0 {
			// Fail on the magic if that much is already wrong.
			if _, _, perr := parseHelloPrefix(append(fixed[:n:n], make([]byte, helloFixedLen-n)...)); perr != nil && n >= len(magic) {
				return perr
			}
			return &HandshakeError{Reason: fmt.Sprintf("stream ended inside the peer's hello after %d bytes (got %q): %v", n, fixed[:n], err)}
		}
		return &HandshakeError{Reason: fmt.Sprintf("peer closed the stream before its hello: %v", err)}
	}
	version, bodyLen, err := parseHelloPrefix(fixed[:])
	if err != nil {
		return err
	}
	var body [helloMaxBody]byte
	if _, err := io.ReadFull(s.br, body[:bodyLen]); err != nil {
		return &HandshakeError{Reason: fmt.Sprintf("stream ended inside the peer's hello: %v", err)}
	}
	h, err := parseHelloBody(version, body[:bodyLen])
	if err != nil {
		return err
	}
	s.peer = h
	return nil
}

// isDone reports whether the session has died.
func (s *Session) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// fail records err as the cause of death if it is the first, and releases
// every waiter. It does not close rwc.
func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	if s.closing {
		err = ErrSessionClosed // a local Close is under way: that is the cause
	}
	s.err = err
	close(s.done)
	s.mu.Unlock()
}

// flushOnDeath reports whether a dying writer should still write its last
// arena: only when this side ended the session and the stream is intact.
func (s *Session) flushOnDeath() bool {
	var pe *ProtocolError
	return s.err == ErrSessionClosed || errors.As(s.err, &pe)
}

func (s *Session) closeRWC() {
	s.rwcOnce.Do(func() { s.rwcErr = s.rwc.Close() })
}

// linger waits (bounded) for the writer to flush its last frames, then
// closes the stream.
func (s *Session) linger() {
	t := time.NewTimer(lingerTimeout)
	select {
	case <-s.writerDone:
	case <-t.C:
	}
	t.Stop()
	s.closeRWC()
}

// Close ends the session: it tells the peer goodbye, releases every
// waiter with ErrSessionClosed (unless the session had already died),
// closes rwc and waits for the session's goroutines, including running
// callbacks (so it must not be called from a callback: use a goroutine).
// Messages queued before Close are written first, for at most a second.
// Close is idempotent; it returns the error of closing rwc.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		if !s.isDone() {
			var b [4]byte
			s.w.appendFrame(frameGoAway, 0, 0, b[:])
		}
		s.fail(ErrSessionClosed)
		s.linger()
	})
	s.wg.Wait()
	return s.rwcErr
}

// Done returns a channel closed when the session has died.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns the first cause of the session's death, nil while it is
// alive, ErrSessionClosed after a local Close.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Wait blocks until the session dies and returns the cause, or until ctx
// is done and returns ctx.Err().
func (s *Session) Wait(ctx context.Context) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Open opens a new channel; name is delivered to the peer's Accept. Open
// does not wait for the peer: the channel can be used at once. It fails
// with ErrTooManyChannels when this side already has min(local, peer)
// MaxChannels channels open; a channel stays counted until both ends have
// closed it.
func (s *Session) Open(ctx context.Context, name string) (*Channel, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(name) > maxNameLen {
		return nil, ErrNameTooLong
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.nOut >= s.outLimit || s.nextID > 0xFFFFFFFF {
		return nil, ErrTooManyChannels
	}
	id := uint32(s.nextID)
	s.nextID += 2
	c := newChannel(s, id, name)
	s.chans[id] = c
	s.nOut++
	// Queued under s.mu so that OPEN frames go out in id order.
	if !s.w.appendFrame(frameOpen, 0, id, []byte(name)) {
		return nil, s.err
	}
	return c, nil
}

// Accept waits for the next channel opened by the peer. Channels the peer
// opens wait in a queue (counted against MaxChannels) until accepted;
// their messages are buffered within their windows.
func (s *Session) Accept(ctx context.Context) (*Channel, error) {
	for {
		s.mu.Lock()
		if len(s.acceptQ) > 0 {
			c := s.acceptQ[0]
			s.acceptQ[0] = nil
			s.acceptQ = s.acceptQ[1:]
			more := len(s.acceptQ) > 0
			s.mu.Unlock()
			if more {
				signal(s.acceptSig)
			}
			return c, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.acceptSig:
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// signal does a non-blocking send on a 1-buffered wakeup channel.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// closeWritten is called once c's CLOSE frame is in the stream.
func (s *Session) closeWritten(c *Channel) {
	s.mu.Lock()
	c.mu.Lock()
	c.closeSent = true
	s.maybeFreeLocked(c)
	c.mu.Unlock()
	s.mu.Unlock()
}

// maybeFreeLocked forgets c once both ends have closed it. s.mu and c.mu
// must be held.
func (s *Session) maybeFreeLocked(c *Channel) {
	if c.freed || !c.closeSent || !c.peerClosed {
		return
	}
	c.freed = true
	delete(s.chans, c.id)
	if c.local() {
		s.nOut--
	} else {
		s.nIn--
	}
}

// ownID reports whether id has this side's parity.
func (s *Session) ownID(id uint32) bool {
	return (id%2 == 1) == s.isClient
}

// readErr turns a stream read error into a session cause.
func (s *Session) readErr(err error) error {
	if s.isDone() {
		return s.err
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = io.ErrUnexpectedEOF
	}
	return &ConnError{Op: "read", Err: err}
}

// readFull reads a frame payload.
func (s *Session) readFull(b []byte) error {
	if _, err := io.ReadFull(s.br, b); err != nil {
		return s.readErr(err)
	}
	return nil
}

// alloc returns n bytes for a message; small ones share a slab.
func (s *Session) alloc(n int) []byte {
	const slabSize, slabMax = 32 << 10, 1 << 10
	if n > slabMax {
		return getBuf(n)
	}
	if cap(s.slab)-len(s.slab) < n {
		s.slab = make([]byte, 0, slabSize)
	}
	l := len(s.slab)
	s.slab = s.slab[:l+n]
	return s.slab[l : l+n : l+n]
}

func (s *Session) lookup(id uint32) *Channel {
	s.mu.Lock()
	c := s.chans[id]
	s.mu.Unlock()
	return c
}

// knownID reports whether id was ever opened on this session.
func (s *Session) knownID(id uint32) bool {
	if id == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ownID(id) {
		return uint64(id) < s.nextID
	}
	return id <= s.lastPeerID
}

func (s *Session) readOpen(h header) error {
	if h.flags != 0 {
		return protoErr(ErrProtocol, "OPEN with flags 0x%02x", h.flags)
	}
	if h.length > maxNameLen {
		return protoErr(ErrFrameTooLarge, "OPEN name of %d bytes (limit %d)", h.length, maxNameLen)
	}
	var nb [maxNameLen]byte
	name := nb[:h.length]
	if err := s.readFull(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.id == 0 || s.ownID(h.id) || h.id <= s.lastPeerID {
		return protoErr(ErrProtocol, "OPEN of channel %d out of sequence (last %d)", h.id, s.lastPeerID)
	}
	if s.nIn >= s.cfg.MaxChannels {
		return protoErr(ErrTooManyChannels, "peer opened more than %d channels", s.cfg.MaxChannels)
	}
	if s.err != nil {
		return s.err
	}
	s.lastPeerID = h.id
	c := newChannel(s, h.id, string(name))
	s.chans[h.id] = c
	s.nIn++
	s.acceptQ = append(s.acceptQ, c)
	signal(s.acceptSig)
	return nil
}

func (s *Session) readCredit(h header) error {
	if h.flags != 0 || h.length != 4 {
		return protoErr(ErrProtocol, "CREDIT with flags 0x%02x length %d", h.flags, h.length)
	}
	var b [4]byte
	if err := s.readFull(b[:]); err != nil {
		return err
	}
	inc := binary.BigEndian.Uint32(b[:])
	if inc == 0 {
		return protoErr(ErrProtocol, "CREDIT of 0 on channel %d", h.id)
	}
	c := s.lookup(h.id)
	if c == nil {
		if s.knownID(h.id) {
			return nil // credit can cross the peer's CLOSE; harmless
		}
		return protoErr(ErrUnknownChannel, "CREDIT for channel %d", h.id)
	}
	return c.addCredit(inc)
}

func (s *Session) readGoAway(h header) error {
	if h.id != 0 || h.flags != 0 || h.length < 4 || h.length > 4+maxGoAwayText {
		return protoErr(ErrProtocol, "bad GOAWAY (channel %d flags 0x%02x length %d)", h.id, h.flags, h.length)
	}
	var b [4 + maxGoAwayText]byte
	p := b[:h.length]
	if err := s.readFull(p); err != nil {
		return err
	}
	code := binary.BigEndian.Uint32(p)
	if code == codeNoError {
		return ErrPeerClosed
	}
	return &PeerError{Code: code, Message: string(p[4:])}
}

func (s *Session) readClose(h header) error {
	if h.flags&^closeFlagsMask != 0 {
		return protoErr(ErrProtocol, "CLOSE with flags 0x%02x", h.flags)
	}
	if h.flags&flagError == 0 && h.length != 0 {
		return protoErr(ErrProtocol, "CLOSE without error flag has %d bytes", h.length)
	}
	if h.length > maxCloseLen {
		return protoErr(ErrFrameTooLarge, "CLOSE payload of %d bytes (limit %d)", h.length, maxCloseLen)
	}
	c := s.lookup(h.id)
	if c == nil {
		return protoErr(ErrUnknownChannel, "CLOSE for channel %d", h.id)
	}
	var rerr *RemoteError
	if h.flags&flagError != 0 {
		p := make([]byte, h.length)
		if err := s.readFull(p); err != nil {
			return err
		}
		var err error
		if rerr, err = parseRemoteError(p); err != nil {
			return err
		}
	}
	s.mu.Lock()
	c.mu.Lock()
	err := c.peerCloseLocked(rerr)
	if err == nil {
		s.maybeFreeLocked(c)
	}
	c.mu.Unlock()
	s.mu.Unlock()
	return err
}

// remote error payload: u32 len, message, u32 len, stack.
func marshalRemoteError(e *RemoteError) []byte {
	msg, stack := e.Message, e.Stack
	const maxMsg = 16 << 10
	if len(msg) > maxMsg {
		msg = msg[:maxMsg]
	}
	if room := maxCloseLen - 8 - len(msg); len(stack) > room {
		stack = stack[:room]
	}
	b := make([]byte, 0, 8+len(msg)+len(stack))
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	b = append(b, msg...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(stack)))
	b = append(b, stack...)
	return b
}

func parseRemoteError(p []byte) (*RemoteError, error) {
	field := func() (string, bool) {
		if len(p) < 4 {
			return "", false
		}
		n := binary.BigEndian.Uint32(p)
		p = p[4:]
		if uint64(n) > uint64(len(p)) {
			return "", false
		}
		f := string(p[:n])
		p = p[n:]
		return f, true
	}
	msg, ok1 := field()
	stack, ok2 := field()
	if !ok1 || !ok2 || len(p) != 0 {
		return nil, protoErr(ErrProtocol, "malformed CLOSE error payload")
	}
	return &RemoteError{Message: msg, Stack: stack}, nil
}

func (s *Session) readData(h header) error {
	if h.flags&^dataFlagsMask != 0 {
		return protoErr(ErrProtocol, "DATA with flags 0x%02x", h.flags)
	}
	if h.length > uint32(s.cfg.MaxFrameSize) {
		return protoErr(ErrFrameTooLarge, "DATA frame of %d bytes on channel %d (limit %d)", h.length, h.id, s.cfg.MaxFrameSize)
	}
	c := s.lookup(h.id)
	if c == nil {
		return protoErr(ErrUnknownChannel, "DATA for channel %d", h.id)
	}
	return c.readData(h)
}
