package channel

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// Channel is one bidirectional, ordered message channel of a Session.
//
// Send may be called concurrently with Receive; concurrent Sends are
// serialized (each message is sent whole), concurrent Receives each get
// distinct messages. Close ends this side's sending (a half close, like
// TCP's): the peer's Receive returns io.EOF after the messages sent before
// it, while this side can still receive until the peer closes too. A
// channel's resources are released once both ends have closed it, or the
// session dies. Messages the application does not receive stay buffered
// (at most the window, see Config) and hold up the peer's Sends: receive,
// set a callback, or close the session.
type Channel struct {
	s    *Session
	id   uint32
	name string

	sendSem chan struct{} // 1-slot semaphore serializing Send and Close
	closing chan struct{} // closed by Close

	mu sync.Mutex // guards the fields below
	// sending
	credit      int // bytes the peer will accept now
	creditWait  bool
	creditSig   chan struct{}
	localClosed bool
	closeSent   bool // our CLOSE is in the stream
	freed       bool // removed from the session's table
	// receiving
	q             []RawMessage
	qWire         []int // wire bytes of q[i] not yet credited
	qHead         int
	waiting       int // goroutines blocked in Receive
	inlineReaders int // of which reading the stream (0 or 1)
	recvSig       chan struct{}
	recvUsed      int  // bytes received and not yet returned as credit
	pendingCredit int  // consumed bytes to return with the next CREDIT
	partialActive bool // a multi-frame message is being reassembled
	partial       []byte
	partialTotal  int
	partialWire   int // bytes of partial not yet eligible for credit
	peerClosed    bool
	peerErr       *RemoteError
	peerClosedCh  chan struct{}
	cb            func(RawMessage)
	cbEnd         func(error)
	cbScheduled   bool
	cbEnded       bool
	cbBroken      bool // fn panicked; further messages are dropped

	// Guarded by s.w.mu: the writer's view of this channel.
	wq      []chunk
	wbusy   bool // one of wq's chunks is being written
	inReady bool
	wmsg    uint64 // last message number handed to the writer
	wstarted,
	wdone uint64 // last message whose first / last chunk was taken / written
	wsig chan struct{}
}

func newChannel(s *Session, id uint32, name string) *Channel {
	return &Channel{
		s:            s,
		id:           id,
		name:         name,
		sendSem:      make(chan struct{}, 1),
		closing:      make(chan struct{}),
		credit:       int(s.peer.window),
		creditSig:    make(chan struct{}, 1),
		recvSig:      make(chan struct{}, 1),
		peerClosedCh: make(chan struct{}),
		wsig:         make(chan struct{}, 1),
	}
}

// ID returns the channel's id, unique within its session.
func (c *Channel) ID() uint32 { return c.id }

// Name returns the name given to Open.
func (c *Channel) Name() string { return c.name }

// Session returns the session c belongs to.
func (c *Channel) Session() *Session { return c.s }

func (c *Channel) String() string { return fmt.Sprintf("channel %d %q", c.id, c.name) }

func (c *Channel) local() bool { return c.s.ownID(c.id) }

// Send CBOR-encodes v and sends it as one message. It blocks while the
// peer's window for this channel is used up, until ctx is done, the channel
// is closed locally (ErrChannelClosed) or the session dies (its cause). A
// []byte (or RawMessage) is sent without copying for large messages; Send
// returns only once it no longer refers to v's memory. A message larger
// than the peer's MaxMessageSize fails with ErrMessageTooLarge and leaves
// the channel usable. A Send cut short after part of a large message went
// out tells the peer to discard that part.
func (c *Channel) Send(ctx context.Context, v any) error {
	s := c.s
	select {
	case c.sendSem <- struct{}{}: // fast path: no Send in progress
	default:
		select {
		case c.sendSem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return ErrChannelClosed
		case <-s.done:
			return s.err
		}
	}
	err := c.send(ctx, v)
	<-c.sendSem
	return err
}

// send is Send holding the send semaphore.
func (c *Channel) send(ctx context.Context, v any) error {
	s := c.s
	c.mu.Lock()
	closed := c.localClosed
	c.mu.Unlock()
	if closed {
		return ErrChannelClosed
	}
	if s.isDone() {
		return s.err
	}

	var headBuf [9]byte
	head, body, buf, err := s.codec.encode(v, &headBuf)
	if err != nil {
		return err
	}
	if buf != nil {
		defer putEncBuf(buf)
	}
	n := len(head) + len(body)
	if n > int(s.peer.maxMessage) {
		return fmt.Errorf("%w: %d bytes, the peer accepts at most %d", ErrMessageTooLarge, n, s.peer.maxMessage)
	}
	maxFrame := int(s.peer.maxFrame)
	single := false
	if n <= maxFrame {
		if n <= int(s.peer.window)/2 {
			single = true
		} else {
			c.mu.Lock()
			single = n <= c.credit
			c.mu.Unlock()
		}
	}
	if single && n <= smallMessage {
		if _, err := c.takeCredit(ctx, n, n); err != nil {
			return err
		}
		if !s.sendSmall(c, head, body) {
			return s.err
		}
		return nil
	}
	return c.sendChunks(ctx, head, body, single)
}

// sendChunks sends a message through the chunk queue, without copying
// body, and waits until it is written.
func (c *Channel) sendChunks(ctx context.Context, head, body []byte, single bool) error {
	s := c.s
	w := &s.w
	n := len(head) + len(body)
	maxFrame := int(s.peer.maxFrame)
	w.mu.Lock()
	c.wmsg++
	msg := c.wmsg
	w.mu.Unlock()

	off := 0 // bytes of the message (head+body) queued so far
	for off < n {
		var lo, hi int
		switch {
		case single:
			lo, hi = n, n
		case off == 0:
			// First frame: prefix, the whole head, at least one body
			// byte, and at least one byte left for a later frame.
			lo = sizedPrefixLen + len(head) + 1
			hi = min(maxFrame, sizedPrefixLen+n-1)
		default:
			lo, hi = 1, min(maxFrame, n-off)
		}
		got, err := c.takeCredit(ctx, lo, hi)
		if err != nil {
			return c.abortMessage(msg, err)
		}
		ch := chunk{msg: msg, credit: got}
		switch {
		case single:
			putHeader(ch.hdr[:], frameData, 0, c.id, uint32(n))
			ch.hlen = uint8(frameHeaderLen + copy(ch.hdr[frameHeaderLen:], head))
			ch.data = body
			off = n
		case off == 0:
			putHeader(ch.hdr[:], frameData, flagSized|flagMore, c.id, uint32(got))
			ch.hdr[frameHeaderLen] = byte(n >> 24)
			ch.hdr[frameHeaderLen+1] = byte(n >> 16)
			ch.hdr[frameHeaderLen+2] = byte(n >> 8)
			ch.hdr[frameHeaderLen+3] = byte(n)
			ch.hlen = uint8(frameHeaderLen + sizedPrefixLen + copy(ch.hdr[frameHeaderLen+sizedPrefixLen:], head))
			take := got - sizedPrefixLen - len(head)
			ch.data = body[:take]
			off = len(head) + take
		default:
			var flags byte
			if off+got < n {
				flags = flagMore
			}
			putHeader(ch.hdr[:], frameData, flags, c.id, uint32(got))
			ch.hlen = frameHeaderLen
			b := off - len(head)
			ch.data = body[b : b+got]
			off += got
		}
		ch.last = off == n
		written, ok := s.writeChunkDirect(c, &ch)
		if !ok {
			return c.abortMessage(msg, s.err)
		}
		if !written && !w.push(c, ch) {
			return c.abortMessage(msg, s.err)
		}
	}
	for {
		w.mu.Lock()
		done := c.wdone == msg
		w.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-c.wsig:
		case <-ctx.Done():
			return c.abortMessage(msg, ctx.Err())
		case <-c.closing:
			return c.abortMessage(msg, ErrChannelClosed)
		case <-s.done:
			return c.abortMessage(msg, s.err)
		}
	}
}

// abortMessage withdraws the unwritten chunks of message msg, waits until
// the writer no longer refers to the sender's memory, and, if part of the
// message already went out, tells the peer to discard it. It returns cause,
// or nil if the message turned out to be fully written.
func (c *Channel) abortMessage(msg uint64, cause error) error {
	s := c.s
	w := &s.w
	w.mu.Lock()
	ret := 0
	keep := c.wq[:0]
	for _, ch := range c.wq {
		if ch.msg == msg {
			ret += ch.credit
		} else {
			keep = append(keep, ch)
		}
	}
	clear(c.wq[len(keep):])
	c.wq = keep
	if len(c.wq) == 0 && c.inReady {
		c.inReady = false
		for i, r := range w.ready {
			if r == c {
				w.ready = append(w.ready[:i], w.ready[i+1:]...)
				break
			}
		}
	}
	for c.wbusy {
		w.cond.Wait()
	}
	if c.wdone == msg {
		w.mu.Unlock()
		return nil
	}
	started := c.wstarted == msg
	w.mu.Unlock()

	c.mu.Lock()
	c.credit += ret
	c.mu.Unlock()
	if started && !s.isDone() {
		s.w.appendOrdered(c, frameData, flagAbort, false)
	}
	return cause
}

// takeCredit waits until at least lo bytes of credit are available and
// takes up to hi.
func (c *Channel) takeCredit(ctx context.Context, lo, hi int) (int, error) {
	s := c.s
	for {
		c.mu.Lock()
		if c.credit >= lo {
			got := min(c.credit, hi)
			c.credit -= got
			c.mu.Unlock()
			return got, nil
		}
		c.creditWait = true
		c.mu.Unlock()
		select {
		case <-c.closing:
			return 0, ErrChannelClosed
		case <-s.done:
			return 0, s.err
		default:
		}
		// Read the stream while waiting if nobody else does: the credit
		// comes from there.
		err := s.waitOrRead(ctx, c.creditSig, c.closing, func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.credit >= lo || c.localClosed
		})
		if err != nil {
			return 0, err
		}
	}
}

// addCredit handles a CREDIT frame (reader goroutine).
func (c *Channel) addCredit(inc uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(c.credit)+int64(inc) > int64(c.s.peer.window) {
		return protoErr(ErrFlowControl, "credit overflow on channel %d: %d + %d exceeds the window of %d", c.id, c.credit, inc, c.s.peer.window)
	}
	c.credit += int(inc)
	if c.creditWait {
		c.creditWait = false
		signal(c.creditSig)
	}
	return nil
}

// creditLocked makes n consumed bytes returnable to the peer and sends a
// CREDIT frame once half the window is returnable. c.mu must be held.
func (c *Channel) creditLocked(n int) {
	if n == 0 {
		return
	}
	c.pendingCredit += n
	if c.pendingCredit >= max(1, c.s.cfg.WindowSize/2) && !c.peerClosed {
		inc := c.pendingCredit
		c.pendingCredit = 0
		c.recvUsed -= inc
		c.s.w.appendCredit(c.id, uint32(inc))
	}
}

// receiverPresentLocked reports whether someone is waiting for this
// channel's next message, which lets a large message grow past the window.
func (c *Channel) receiverPresentLocked() bool { return c.waiting > 0 || c.cb != nil }

// readData handles a DATA frame (reader goroutine). Only the reader
// goroutine writes partialActive, partial and partialTotal.
func (c *Channel) readData(h header) error {
	s := c.s
	n := int(h.length)
	more := h.flags&flagMore != 0
	sized := h.flags&flagSized != 0

	c.mu.Lock()
	if c.peerClosed {
		c.mu.Unlock()
		return protoErr(ErrProtocol, "DATA after CLOSE on channel %d", c.id)
	}
	if c.recvUsed+n > s.cfg.WindowSize {
		c.mu.Unlock()
		return protoErr(ErrFlowControl, "channel %d: %d bytes beyond its window of %d", c.id, c.recvUsed+n-s.cfg.WindowSize, s.cfg.WindowSize)
	}
	if h.flags&flagAbort != 0 {
		if h.flags != flagAbort || n != 0 || !c.partialActive {
			c.mu.Unlock()
			return protoErr(ErrProtocol, "bad ABORT on channel %d", c.id)
		}
		c.creditLocked(c.partialWire)
		c.partialWire = 0
		c.partialActive = false
		c.partial = nil
		c.mu.Unlock()
		return nil
	}
	if n == 0 {
		c.mu.Unlock()
		return protoErr(ErrProtocol, "empty DATA frame on channel %d", c.id)
	}
	if (c.partialActive && sized) || (!c.partialActive && more != sized) {
		c.mu.Unlock()
		return protoErr(ErrProtocol, "DATA flags 0x%02x out of place on channel %d", h.flags, c.id)
	}
	c.recvUsed += n
	c.mu.Unlock()

	if !c.partialActive && !more {
		buf := s.alloc(n)
		if err := s.readFull(buf); err != nil {
			return err
		}
		return c.complete(buf, n)
	}

	if !c.partialActive {
		if n <= sizedPrefixLen {
			return protoErr(ErrProtocol, "SIZED DATA frame of %d bytes on channel %d", n, c.id)
		}
		var pb [sizedPrefixLen]byte
		if err := s.readFull(pb[:]); err != nil {
			return err
		}
		total := int(uint32(pb[0])<<24 | uint32(pb[1])<<16 | uint32(pb[2])<<8 | uint32(pb[3]))
		first := n - sizedPrefixLen
		if total > s.cfg.MaxMessageSize {
			return protoErr(ErrMessageTooLarge, "message of %d bytes on channel %d (limit %d)", total, c.id, s.cfg.MaxMessageSize)
		}
		if total <= first {
			return protoErr(ErrProtocol, "SIZED total %d not above the first frame's %d bytes on channel %d", total, first, c.id)
		}
		buf := getBuf(min(total, max(first, s.cfg.WindowSize)))[:first]
		if err := s.readFull(buf); err != nil {
			return err
		}
		c.mu.Lock()
		c.partial, c.partialTotal, c.partialActive = buf, total, true
		c.addPartialLocked(n)
		c.mu.Unlock()
		return nil
	}

	have := len(c.partial)
	need := have + n
	if need > c.partialTotal || (!more && need != c.partialTotal) {
		return protoErr(ErrProtocol, "message on channel %d does not match its SIZED total %d", c.id, c.partialTotal)
	}
	buf := c.partial
	if need > cap(buf) {
		nb := make([]byte, have, min(c.partialTotal, max(need, 2*cap(buf))))
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:need]
	if err := s.readFull(buf[have:]); err != nil {
		return err
	}
	c.mu.Lock()
	c.partial = buf
	c.addPartialLocked(n)
	if more {
		c.mu.Unlock()
		return nil
	}
	wire := c.partialWire
	c.partialWire = 0
	c.partial = nil
	c.partialActive = false
	c.mu.Unlock()
	return c.complete(buf, wire)
}

// addPartialLocked accounts n bytes of a message being reassembled.
func (c *Channel) addPartialLocked(n int) {
	if c.receiverPresentLocked() {
		c.creditLocked(n)
	} else {
		c.partialWire += n
	}
}

// complete validates a whole message and queues it (reader goroutine).
func (c *Channel) complete(data []byte, wire int) error {
	s := c.s
	if err := s.codec.dec.Wellformed(data); err != nil {
		return protoErr(ErrBadValue, "message on channel %d: %v", c.id, err)
	}
	c.mu.Lock()
	c.q = append(c.q, RawMessage{data: data, codec: s.codec})
	c.qWire = append(c.qWire, wire)
	if c.cb != nil {
		c.scheduleLocked()
	} else if c.waiting > c.inlineReaders {
		signal(c.recvSig)
		if s.deadline != nil {
			// Let the receiver read next time: it can (a receiver whose ctx may be
			// cancelled reads the stream itself only where reads have deadlines; standing
			// aside for one that cannot would hold every message 5 ms).
			s.lastRecv.Store(s.now())
		}
	}
	c.mu.Unlock()
	return nil
}

// popLocked takes the next queued message, returning its credit.
func (c *Channel) popLocked() (RawMessage, bool) {
	if c.qHead == len(c.q) {
		return RawMessage{}, false
	}
	m := c.q[c.qHead]
	wire := c.qWire[c.qHead]
	c.q[c.qHead] = RawMessage{}
	c.qHead++
	switch {
	case c.qHead == len(c.q):
		c.q, c.qWire, c.qHead = c.q[:0], c.qWire[:0], 0
	case c.qHead >= 64 && c.qHead*2 >= len(c.q):
		k := copy(c.q, c.q[c.qHead:])
		copy(c.qWire, c.qWire[c.qHead:])
		clear(c.q[k:])
		c.q, c.qWire, c.qHead = c.q[:k], c.qWire[:k], 0
	}
	c.creditLocked(wire)
	return m, true
}

// peerCloseLocked handles the peer's CLOSE. c.mu must be held.
func (c *Channel) peerCloseLocked(rerr *RemoteError) error {
	if c.peerClosed {
		return protoErr(ErrProtocol, "second CLOSE on channel %d", c.id)
	}
	if c.partialActive {
		return protoErr(ErrProtocol, "CLOSE inside a message on channel %d", c.id)
	}
	c.peerClosed = true
	c.peerErr = rerr
	close(c.peerClosedCh)
	signal(c.recvSig)
	if c.cb != nil {
		c.scheduleLocked()
	}
	return nil
}

// endErrLocked is what Receive returns once the queue is empty after the
// peer closed: io.EOF or the peer's *RemoteError.
func (c *Channel) endErrLocked() error {
	if c.peerErr != nil {
		return c.peerErr
	}
	return io.EOF
}

// next returns the next message. Messages already received are delivered
// even after the session died; then the session's cause is returned.
func (c *Channel) next(ctx context.Context) (RawMessage, error) {
	s := c.s
	c.mu.Lock()
	for {
		if c.cb != nil {
			c.mu.Unlock()
			return RawMessage{}, ErrCallbackSet
		}
		if m, ok := c.popLocked(); ok {
			if c.waiting > 0 && (c.qHead < len(c.q) || c.peerClosed) {
				signal(c.recvSig) // pass the wakeup on
			}
			c.mu.Unlock()
			return m, nil
		}
		if c.peerClosed {
			if c.waiting > 0 {
				signal(c.recvSig)
			}
			err := c.endErrLocked()
			c.mu.Unlock()
			return RawMessage{}, err
		}
		if s.isDone() {
			c.mu.Unlock()
			return RawMessage{}, s.err
		}
		if err := ctx.Err(); err != nil {
			c.mu.Unlock()
			return RawMessage{}, err
		}
		c.waiting++
		s.w.streak.Store(0)
		if c.partialWire > 0 {
			// A receiver now waits for the message being reassembled:
			// let it grow past the window.
			c.creditLocked(c.partialWire)
			c.partialWire = 0
		}
		c.mu.Unlock()
		var err error
		if s.canReadInline(ctx) {
			select {
			case s.rtok <- struct{}{}: // fast path: nobody is reading
				err = c.readInlineToken(ctx)
			default:
				select {
				case <-c.recvSig:
				case s.rtok <- struct{}{}:
					err = c.readInlineToken(ctx)
				case <-s.done:
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
		} else {
			select {
			case <-c.recvSig:
			case <-s.done:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		c.mu.Lock()
		c.waiting--
		if err != nil {
			c.mu.Unlock()
			return RawMessage{}, err
		}
	}
}

// Receive decodes the next message into the value pointed to by v. It
// blocks until a message arrives, ctx is done, or the channel ends: io.EOF
// after the peer's Close, a *RemoteError after its CloseWithError, the
// session's cause if the session died. Decoding a byte string into *[]byte
// does not copy. A message that does not decode into v is consumed and the
// decode error returned. Receive fails with ErrCallbackSet after
// SetCallback.
func (c *Channel) Receive(ctx context.Context, v any) error {
	m, err := c.next(ctx)
	if err != nil {
		return err
	}
	return m.Decode(v)
}

// ReceiveAny is Receive into a fresh Go value, see RawMessage.Any.
func (c *Channel) ReceiveAny(ctx context.Context) (any, error) {
	m, err := c.next(ctx)
	if err != nil {
		return nil, err
	}
	return m.Any()
}

// ReceiveRaw returns the next message undecoded.
func (c *Channel) ReceiveRaw(ctx context.Context) (RawMessage, error) {
	return c.next(ctx)
}

// Close ends this side's sending and tells the peer, whose Receive returns
// io.EOF once it has the messages sent before. A Send blocked on this
// channel returns ErrChannelClosed. Close is idempotent and does not block
// on the peer; it returns nil (also when the session is dead).
func (c *Channel) Close() error { return c.close(nil) }

// CloseWithError is Close, but the peer's Receive and WaitClose return a
// *RemoteError with err's message and a stack (NewRemoteError(err)).
func (c *Channel) CloseWithError(err error) error {
	if err == nil {
		return c.close(nil)
	}
	return c.close(NewRemoteError(err))
}

func (c *Channel) close(rerr *RemoteError) error {
	s := c.s
	c.mu.Lock()
	if c.localClosed {
		c.mu.Unlock()
		return nil
	}
	c.localClosed = true
	close(c.closing)
	sending := c.creditWait
	c.mu.Unlock()
	if sending {
		s.interrupt() // a Send waiting for credit may be reading the stream
	}
	// Wait for a Send in progress: it sees closing and returns promptly.
	select {
	case c.sendSem <- struct{}{}:
	case <-s.done:
		return nil
	}
	defer func() { <-c.sendSem }()
	var flags byte
	var payload []byte
	if rerr != nil {
		flags = flagError
		payload = marshalRemoteError(rerr)
	}
	inArena, ok := s.w.appendOrdered(c, frameClose, flags, true, payload)
	if ok && inArena {
		s.closeWritten(c)
	}
	return nil
}

// WaitClose waits until the peer has closed its side and returns its
// *RemoteError if it used CloseWithError, nil for a plain Close, the
// session's cause if the session died first, or ctx.Err(). Messages still
// queued stay receivable; note that a peer blocked in Send on a full window
// never gets to close.
func (c *Channel) WaitClose(ctx context.Context) error {
	select {
	case <-c.peerClosedCh:
		return c.remoteErr()
	case <-c.s.done:
		select {
		case <-c.peerClosedCh:
			return c.remoteErr()
		default:
			return c.s.err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Channel) remoteErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.peerErr != nil {
		return c.peerErr
	}
	return nil
}
