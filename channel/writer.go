package channel

import (
	"sync"
	"sync/atomic"
	"time"
)

// The write side of a session is one goroutine (writeLoop) draining two
// queues:
//
//   - the arena: complete small frames (control frames and single-frame
//     messages up to smallMessage bytes), appended by any goroutine. Appending
//     copies the frame, so the caller can reuse its memory at once. All
//     frames in the arena go out in one write, which is what coalesces many
//     small messages into one syscall.
//   - per-channel chunk queues (Channel.wq) for multi-frame and large
//     messages. A chunk's payload aliases the sender's memory and Send waits
//     until it is written. Channels with queued chunks take turns (round
//     robin, one frame each), so a bulk transfer cannot starve other
//     channels.
//
// Each iteration writes the whole arena, followed by at most one chunk.
// Frames of one channel must go out in order, so while a channel has chunks
// queued (or one being written) its further frames join its chunk queue
// instead of the arena; a chunk is always written after the arena batch
// that was pending when it was queued.

// smallMessage is the largest message sent through the arena.
const smallMessage = 32 << 10

// maxArenaKeep is the largest arena buffer kept for reuse after a write.
const maxArenaKeep = 1 << 20

// chunk is one queued frame whose payload may alias the sender's memory.
type chunk struct {
	hdr    [frameHeaderLen + sizedPrefixLen + 9]byte // header, prefix, CBOR head
	hlen   uint8
	data   []byte // rest of the payload
	msg    uint64 // the message this chunk belongs to (0: a lone frame)
	credit int    // flow-control credit the chunk took
	last   bool   // last frame of msg
	close  bool   // the channel's CLOSE frame
	owned  bool   // data is a private copy (frames queued behind chunks)
}

type writer struct {
	mu    sync.Mutex
	cond  sync.Cond // broadcast after each chunk write, for abortMessage
	arena []byte
	spare []byte
	ready []*Channel // channels with queued chunks, in turn order
	wake  chan struct{}
	idle  bool
	dead  bool // writeLoop has exited; nothing more will be written

	// writing is set while some goroutine owns rwc for writing: writeLoop,
	// or a sender writing directly (see sendSmall).
	writing bool

	// streak counts messages written directly by senders since a
	// receiver last blocked (reset in Channel.next).
	streak atomic.Int32
}

// maxStreak is how many messages senders write directly in a row before
// leaving writes to writeLoop. A sender that alternates with a blocking
// Receive (request/response traffic) writes its message itself, which
// saves a goroutine handoff; a sender streaming messages hands them to
// writeLoop, which coalesces them into few large writes.
const maxStreak = 4

func (w *writer) init() {
	w.cond.L = &w.mu
	w.wake = make(chan struct{}, 1)
	w.arena = make([]byte, 0, 64<<10)
	w.spare = make([]byte, 0, 64<<10)
}

// kickLocked wakes the writer if it is idle. w.mu must be held.
func (w *writer) kickLocked() {
	if w.idle {
		w.idle = false
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// appendFrame queues a small frame that need not be ordered with any
// channel's chunks (OPEN, CREDIT, GOAWAY). It reports false if the writer
// is gone.
func (w *writer) appendFrame(typ, flags byte, id uint32, payload ...[]byte) bool {
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return false
	}
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	w.arena = appendHeader(w.arena, typ, flags, id, uint32(n))
	for _, p := range payload {
		w.arena = append(w.arena, p...)
	}
	w.kickLocked()
	w.mu.Unlock()
	return true
}

// appendCredit queues a CREDIT frame.
func (w *writer) appendCredit(id uint32, inc uint32) {
	w.mu.Lock()
	if !w.dead {
		w.arena = appendHeader(w.arena, frameCredit, 0, id, 4)
		w.arena = append(w.arena, byte(inc>>24), byte(inc>>16), byte(inc>>8), byte(inc))
		w.kickLocked()
	}
	w.mu.Unlock()
}

// appendOrdered queues a frame of channel c that must follow c's earlier
// frames: into the arena when c has no chunks pending, else behind them.
// It reports whether the frame went into the arena, and false, false if the
// writer is gone.
func (w *writer) appendOrdered(c *Channel, typ, flags byte, isClose bool, payload ...[]byte) (arena, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead {
		return false, false
	}
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	if len(c.wq) == 0 && !c.wbusy {
		w.arena = appendHeader(w.arena, typ, flags, c.id, uint32(n))
		for _, p := range payload {
			w.arena = append(w.arena, p...)
		}
		w.kickLocked()
		return true, true
	}
	ch := chunk{hlen: frameHeaderLen, close: isClose, owned: true}
	putHeader(ch.hdr[:], typ, flags, c.id, uint32(n))
	if n > 0 {
		ch.data = make([]byte, 0, n)
		for _, p := range payload {
			ch.data = append(ch.data, p...)
		}
	}
	w.pushLocked(c, ch)
	return false, true
}

// sendSmall queues a single-frame DATA message of c (like appendOrdered)
// and, unless a sender is streaming (see maxStreak), writes it at once on
// the calling goroutine. It reports false if the writer is gone.
func (s *Session) sendSmall(c *Channel, head, body []byte) bool {
	w := &s.w
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return false
	}
	n := len(head) + len(body)
	if len(c.wq) != 0 || c.wbusy {
		w.mu.Unlock()
		_, ok := w.appendOrdered(c, frameData, 0, false, head, body)
		return ok
	}
	direct := !w.writing && len(w.arena) == 0 && len(w.ready) == 0 && w.streak.Load() < maxStreak
	w.arena = appendHeader(w.arena, frameData, 0, c.id, uint32(n))
	w.arena = append(w.arena, head...)
	w.arena = append(w.arena, body...)
	if !direct {
		w.kickLocked()
		w.mu.Unlock()
		return true
	}
	w.writing = true
	buf := w.arena
	w.arena = w.spare[:0]
	w.spare = nil
	w.streak.Add(1)
	w.mu.Unlock()

	_, err := s.rwc.Write(buf)

	w.mu.Lock()
	w.writing = false
	if w.spare == nil && cap(buf) <= maxArenaKeep {
		w.spare = buf[:0]
	}
	if len(w.arena) > 0 || len(w.ready) > 0 || err != nil {
		w.kickLocked()
	}
	w.mu.Unlock()
	if err != nil {
		s.writeFailed(err)
	}
	return true
}

// writeErrGrace is how long a failed write waits for the reader to find
// the peer's reason (a GOAWAY before it closed the stream) before the
// write error becomes the session's cause.
const writeErrGrace = 100 * time.Millisecond

// writeFailed ends the session after a write error.
func (s *Session) writeFailed(err error) {
	t := time.NewTimer(writeErrGrace)
	select {
	case <-s.done:
	case <-t.C:
	}
	t.Stop()
	s.fail(&ConnError{Op: "write", Err: err})
	s.closeRWC()
}

// writeChunkDirect writes chunk ch of c on the calling goroutine if the
// stream is free and no other channel is waiting for its turn: this saves
// two goroutine handoffs per large message. It reports whether it wrote
// the chunk, and ok false if the writer is gone.
func (s *Session) writeChunkDirect(c *Channel, ch *chunk) (written, ok bool) {
	w := &s.w
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return false, false
	}
	if w.writing || len(w.ready) != 0 || len(c.wq) != 0 || c.wbusy {
		w.mu.Unlock()
		return false, true
	}
	w.writing = true
	c.wbusy = true
	if ch.msg != 0 {
		c.wstarted = ch.msg
	}
	buf := append(w.arena, ch.hdr[:ch.hlen]...)
	w.arena = w.spare[:0]
	w.spare = nil
	w.mu.Unlock()

	err := s.writeFrames(buf, ch.data)

	w.mu.Lock()
	w.writing = false
	c.wbusy = false
	if ch.last && err == nil {
		c.wdone = ch.msg
	}
	if w.spare == nil && cap(buf) <= maxArenaKeep {
		w.spare = buf[:0]
	}
	w.cond.Broadcast()
	if len(w.arena) > 0 || len(w.ready) > 0 || err != nil {
		w.kickLocked()
	}
	w.mu.Unlock()
	if err != nil {
		s.writeFailed(err)
		return false, false
	}
	return true, true
}

// push queues a chunk of c. It reports false if the writer is gone.
func (w *writer) push(c *Channel, ch chunk) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead {
		return false
	}
	w.pushLocked(c, ch)
	return true
}

func (w *writer) pushLocked(c *Channel, ch chunk) {
	c.wq = append(c.wq, ch)
	if !c.inReady {
		c.inReady = true
		w.ready = append(w.ready, c)
	}
	w.kickLocked()
}

// writeLoop is the session's only writer of rwc.
func (s *Session) writeLoop() {
	defer s.wg.Done()
	defer close(s.writerDone)
	w := &s.w
	for {
		w.mu.Lock()
		for (len(w.arena) == 0 && len(w.ready) == 0) || w.writing {
			if s.isDone() && !w.writing {
				s.writerExitLocked()
				w.mu.Unlock()
				return
			}
			w.idle = true
			w.mu.Unlock()
			select {
			case <-w.wake:
			case <-s.done:
			}
			w.mu.Lock()
			w.idle = false
		}
		if s.isDone() {
			// Dying: flush the arena once (it may hold a GOAWAY telling
			// the peer why) unless the stream itself is broken; queued
			// chunks are dropped, their senders released by s.done.
			buf := w.arena
			w.arena = nil
			s.writerExitLocked()
			w.mu.Unlock()
			if len(buf) > 0 && s.flushOnDeath() {
				s.rwc.Write(buf)
			}
			return
		}
		w.writing = true
		buf := w.arena
		w.arena = w.spare[:0]
		w.spare = nil
		var c *Channel
		var ch chunk
		if len(w.ready) > 0 {
			c = w.ready[0]
			copy(w.ready, w.ready[1:])
			w.ready[len(w.ready)-1] = nil
			w.ready = w.ready[:len(w.ready)-1]
			ch = c.wq[0]
			c.wq[0] = chunk{}
			c.wq = c.wq[1:]
			if len(c.wq) > 0 {
				w.ready = append(w.ready, c)
			} else {
				c.wq = nil
				c.inReady = false
			}
			c.wbusy = true
			if ch.msg != 0 {
				c.wstarted = ch.msg
			}
			buf = append(buf, ch.hdr[:ch.hlen]...)
		}
		w.mu.Unlock()

		err := s.writeFrames(buf, ch.data)

		w.mu.Lock()
		w.writing = false
		if cap(buf) <= maxArenaKeep {
			w.spare = buf[:0]
		} else {
			w.spare = make([]byte, 0, 64<<10)
		}
		if c != nil {
			c.wbusy = false
			if ch.last {
				c.wdone = ch.msg
				select {
				case c.wsig <- struct{}{}:
				default:
				}
			}
			w.cond.Broadcast()
		}
		w.mu.Unlock()
		if err != nil {
			s.writeFailed(err)
			w.mu.Lock()
			s.writerExitLocked()
			w.mu.Unlock()
			return
		}
		if ch.close {
			s.closeWritten(c)
		}
	}
}

// writeFrames writes buf then data; a small data is copied after buf to
// save a system call.
func (s *Session) writeFrames(buf, data []byte) error {
	if len(data) <= 4096 {
		_, err := s.rwc.Write(append(buf, data...))
		return err
	}
	if _, err := s.rwc.Write(buf); err != nil {
		return err
	}
	_, err := s.rwc.Write(data)
	return err
}

// writerExitLocked marks the writer gone. s.w.mu must be held.
func (s *Session) writerExitLocked() {
	s.w.dead = true
	s.w.arena = nil
	for _, c := range s.w.ready {
		c.wq = nil
		c.inReady = false
	}
	s.w.ready = nil
	s.w.cond.Broadcast()
}
