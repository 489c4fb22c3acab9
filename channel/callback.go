package channel

import "fmt"

// SetCallback makes the session deliver c's messages to fn instead of
// Receive, like execnet's setcallback with an endmarker. Messages already
// queued are delivered first, in order. fn runs on a goroutine owned by the
// session that serves the callbacks of all its channels one at a time, so
// fn must not block for long (it holds up other channels' callbacks, and
// Session.Close waits for it); a message's credit returns to the peer when
// fn returns.
//
// end (may be nil) is called once, on the same goroutine, after the last
// message: with nil after the peer's Close, its *RemoteError after
// CloseWithError, or the session's cause if the session died. If fn panics
// the channel is closed with a *RemoteError describing the panic, later
// messages are dropped, and end is still called.
//
// SetCallback may be called once per channel; Receive then fails with
// ErrCallbackSet. It panics if called twice or with a nil fn.
func (c *Channel) SetCallback(fn func(msg RawMessage), end func(err error)) {
	if fn == nil {
		panic("channel: SetCallback with nil fn")
	}
	s := c.s
	s.mu.Lock()
	final := s.cbClosed
	if !final {
		s.cbChans[c] = struct{}{}
	}
	s.mu.Unlock()

	c.mu.Lock()
	if c.cb != nil {
		c.mu.Unlock()
		panic("channel: SetCallback called twice on " + c.String())
	}
	c.cb, c.cbEnd = fn, end
	if c.waiting > 0 {
		signal(c.recvSig) // blocked Receives return ErrCallbackSet
		if c.inlineReaders > 0 {
			s.interrupt()
		}
	}
	if c.partialWire > 0 {
		c.creditLocked(c.partialWire)
		c.partialWire = 0
	}
	if !final && (c.qHead < len(c.q) || c.peerClosed) {
		c.scheduleLocked()
	}
	c.mu.Unlock()
	if final {
		// The callback goroutine is gone: deliver here.
		c.runCallbacks(true)
	}
}

// scheduleLocked queues c for the callback goroutine. c.mu must be held.
func (c *Channel) scheduleLocked() {
	if c.cbScheduled || c.cbEnded {
		return
	}
	c.cbScheduled = true
	s := c.s
	s.cbmu.Lock()
	s.cbq = append(s.cbq, c)
	s.cbmu.Unlock()
	signal(s.cbSig)
}

// callbackLoop runs callbacks until the session dies, then, once the reader
// has stopped, delivers what is left and calls every end function.
func (s *Session) callbackLoop() {
	defer s.wg.Done()
	for {
		s.cbmu.Lock()
		if len(s.cbq) == 0 {
			s.cbmu.Unlock()
			select {
			case <-s.cbSig:
				continue
			case <-s.done:
			}
			break
		}
		c := s.cbq[0]
		s.cbq[0] = nil
		s.cbq = s.cbq[1:]
		s.cbmu.Unlock()
		c.runCallbacks(false)
	}
	<-s.readerDone
	s.rtok <- struct{}{} // wait out any reading receiver; nobody reads after this
	s.mu.Lock()
	s.cbClosed = true
	list := make([]*Channel, 0, len(s.cbChans))
	for c := range s.cbChans {
		list = append(list, c)
	}
	s.mu.Unlock()
	for _, c := range list {
		c.runCallbacks(true)
	}
}

// runCallbacks delivers c's queued messages and, when c has ended (or
// final), calls its end function once.
func (c *Channel) runCallbacks(final bool) {
	for {
		c.mu.Lock()
		m, ok := c.popLocked()
		if ok {
			broken := c.cbBroken
			fn := c.cb
			c.mu.Unlock()
			if !broken {
				c.callFn(fn, m)
			}
			continue
		}
		c.cbScheduled = false
		if c.cbEnded || !(c.peerClosed || final) {
			c.mu.Unlock()
			return
		}
		c.cbEnded = true
		var err error
		if c.peerClosed {
			if c.peerErr != nil {
				err = c.peerErr
			}
		} else {
			err = c.s.err
		}
		end := c.cbEnd
		c.mu.Unlock()
		if end != nil {
			c.callEnd(end, err)
		}
		return
	}
}

func (c *Channel) callFn(fn func(RawMessage), m RawMessage) {
	defer func() {
		if r := recover(); r != nil {
			re := NewRemoteError(fmt.Errorf("panic in callback of %v: %v", c, r))
			c.mu.Lock()
			c.cbBroken = true
			c.mu.Unlock()
			c.CloseWithError(re)
		}
	}()
	fn(m)
}

func (c *Channel) callEnd(end func(error), err error) {
	defer func() { recover() }() // a panicking end must not kill the session's goroutine
	end(err)
}
