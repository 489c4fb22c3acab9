package channel

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Reading the stream.
//
// Handing a message from a reader goroutine to the goroutine blocked in
// Receive costs a goroutine wakeup, which on a small machine is the largest
// part of a round trip (measured: ~7µs of a ~10µs pipe round trip on 2
// cores). So a goroutine blocked in Receive reads the stream itself when
// nobody else is reading: it takes the read token, reads and dispatches
// frames (for any channel) until its own channel has a message, and gives
// the token back. The background readLoop reads when no Receive is, and
// stands aside for standAside after a receiver last read, so that a
// request/response loop keeps reading inline.
//
// A Receive can read inline only if it can be interrupted when its ctx is
// done: either its ctx can never be done, or rwc has SetReadDeadline (as
// net.Conn and *os.File do), which is used to interrupt the wait for the
// next frame. Session.Close interrupts any read by closing rwc.

// standAside is how long readLoop leaves reading to receivers after one
// last read.
const standAside = 5 * time.Millisecond

// deadliner is implemented by streams whose reads can be interrupted.
type deadliner interface {
	SetReadDeadline(t time.Time) error
}

func (s *Session) now() int64 { return int64(time.Since(s.epoch)) }

// readLoop is the background reader.
func (s *Session) readLoop() {
	defer s.wg.Done()
	defer close(s.readerDone)
	var timer *time.Timer
	for {
		if wait := s.standingAside(); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-s.done:
				s.finishReading()
				return
			}
			continue
		}
		select {
		case s.rtok <- struct{}{}:
		case <-s.done:
			s.finishReading()
			return
		}
		if s.isDone() {
			<-s.rtok
			s.finishReading()
			return
		}
		if s.standingAside() > 0 {
			// A receiver read while we waited for the token.
			<-s.rtok
			continue
		}
		err := s.readFrame()
		<-s.rtok
		if err != nil {
			s.readFailed(err)
			s.finishReading()
			return
		}
	}
}

// standingAside returns how much longer readLoop leaves reading to
// receivers.
func (s *Session) standingAside() time.Duration {
	last := s.lastRecv.Load()
	if last == 0 {
		return 0
	}
	return time.Duration(last + int64(standAside) - s.now())
}

// readFailed records a fatal reading error; a protocol violation of the
// peer is reported to it with a GOAWAY frame.
func (s *Session) readFailed(err error) {
	var pe *ProtocolError
	if errors.As(err, &pe) && !s.isDone() {
		code := codeForError(pe.Kind)
		msg := pe.Error()
		if len(msg) > maxGoAwayText {
			msg = msg[:maxGoAwayText]
		}
		b := []byte{byte(code >> 24), byte(code >> 16), byte(code >> 8), byte(code)}
		s.w.appendFrame(frameGoAway, 0, 0, b, []byte(msg))
	}
	s.fail(err)
}

// finishReading runs once in readLoop after the session died: it closes
// the stream, after letting the writer flush a GOAWAY if we sent one.
func (s *Session) finishReading() {
	var pe *ProtocolError
	if errors.As(s.err, &pe) {
		s.linger()
	} else if s.err != ErrSessionClosed {
		// Close does its own linger; other causes mean the stream is
		// broken or the peer is gone.
		s.closeRWC()
	}
}

// canReadInline reports whether a receiver with ctx may read the stream.
func (s *Session) canReadInline(ctx context.Context) bool {
	return ctx.Done() == nil || s.deadline != nil
}

// readInlineToken runs readInline for a Receive on c; the caller has
// taken the read token, which is given back.
func (c *Channel) readInlineToken(ctx context.Context) error {
	s := c.s
	c.mu.Lock()
	c.inlineReaders++
	c.mu.Unlock()
	err := s.readInline(ctx, s.deadline != nil, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.qHead < len(c.q) || c.peerClosed || c.cb != nil
	})
	s.lastRecv.Store(s.now())
	c.mu.Lock()
	c.inlineReaders--
	c.mu.Unlock()
	<-s.rtok
	return err
}

// waitOrRead blocks until sig or cancel fires, ctx is done or the session
// dies; if nobody is reading the stream meanwhile, it reads frames itself
// until ready() holds (whoever makes ready() true without a frame arriving
// must call s.interrupt). Spurious returns are possible: callers re-check.
func (s *Session) waitOrRead(ctx context.Context, sig, cancel <-chan struct{}, ready func() bool) error {
	if !s.canReadInline(ctx) || (cancel != nil && s.deadline == nil) {
		select {
		case <-sig:
		case <-cancel:
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	select {
	case <-sig:
	case <-cancel:
	case s.rtok <- struct{}{}:
		err := s.readInline(ctx, cancel != nil, ready)
		<-s.rtok
		return err
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// readInline reads frames, holding the read token, until ready() holds,
// ctx is done, or the session dies. It returns ctx.Err() if interrupted,
// nil otherwise (a fatal error is recorded as the session's cause).
func (s *Session) readInline(ctx context.Context, cancelable bool, ready func() bool) error {
	// Waits for a frame must be interruptible if ctx can be done or
	// someone may make ready() true (see interrupt).
	interruptible := cancelable && s.deadline != nil
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, s.interrupt)
		defer stop()
		interruptible = true
	}
	for {
		if s.isDone() {
			return nil
		}
		ok := ready()
		// Once served, go on through the frames already buffered (no
		// system call), so that a stream of messages is queued in one
		// go instead of one token round per message.
		if ok && s.br.Buffered() < frameHeaderLen {
			return nil
		}
		if ok {
			hb, _ := s.br.Peek(frameHeaderLen)
			if int(parseHeader(hb).length) > s.br.Buffered()-frameHeaderLen {
				return nil // the payload is not all here yet
			}
		}
		if interruptible && s.br.Buffered() < frameHeaderLen {
			again, err := s.waitFrame(ctx)
			if err != nil {
				return err
			}
			if again {
				continue
			}
		}
		if err := s.readFrame(); err != nil {
			s.readFailed(err)
			return nil
		}
	}
}

// waitFrame waits until a frame header is buffered, interruptibly. It
// returns ctx.Err() if ctx is done, again if the wait was cut short for
// no reason of ours, and otherwise lets readFrame report any stream error.
func (s *Session) waitFrame(ctx context.Context) (again bool, err error) {
	s.imu.Lock()
	if ctx.Err() != nil {
		s.imu.Unlock()
		return false, ctx.Err()
	}
	if s.interruptPending {
		// interrupt was called while we were not waiting: the reason
		// to stop may already hold.
		s.interruptPending = false
		s.imu.Unlock()
		return true, nil
	}
	s.interruptible, s.interrupted = true, false
	s.imu.Unlock()
	_, err = s.br.Peek(frameHeaderLen)
	s.imu.Lock()
	s.interruptible = false
	if s.interrupted {
		s.deadline.SetReadDeadline(time.Time{})
	}
	s.imu.Unlock()
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return true, nil
	}
	return false, nil
}

// interrupt cuts short waitFrame (called when a reading receiver's ctx is
// done).
func (s *Session) interrupt() {
	if s.deadline == nil {
		return
	}
	s.imu.Lock()
	if s.interruptible {
		if !s.interrupted {
			s.interrupted = true
			s.deadline.SetReadDeadline(time.Unix(1, 0))
		}
	} else {
		s.interruptPending = true
	}
	s.imu.Unlock()
}

// readFrame reads and handles one frame. The caller holds the read token.
func (s *Session) readFrame() error {
	var hb [frameHeaderLen]byte
	if _, err := io.ReadFull(s.br, hb[:]); err != nil {
		return s.readErr(err)
	}
	h := parseHeader(hb[:])
	switch h.typ {
	case frameData:
		return s.readData(h)
	case frameOpen:
		return s.readOpen(h)
	case frameClose:
		return s.readClose(h)
	case frameCredit:
		return s.readCredit(h)
	case frameGoAway:
		return s.readGoAway(h)
	}
	return protoErr(ErrProtocol, "unknown frame type 0x%02x", h.typ)
}
