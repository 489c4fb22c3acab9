package channel

import (
	"context"
	"sync"
)

// Item is one element of a ReceiveQueue: a message of Channel, or, with Err
// set (io.EOF, a *RemoteError, the session's cause), the end of Channel.
type Item struct {
	Channel *Channel
	Msg     RawMessage
	Err     error
}

// ReceiveQueue merges the messages of several channels into one Go channel,
// like execnet's make_receive_queue. Each channel's messages arrive in
// order; each channel ends with one Item carrying its Err. The returned
// channel is closed when every channel has ended or ctx is done. The
// caller must drain it or cancel ctx: it is served by one goroutine per
// channel, which block until then. The channels must not be received on
// otherwise meanwhile.
func ReceiveQueue(ctx context.Context, chans ...*Channel) <-chan Item {
	out := make(chan Item, len(chans))
	var wg sync.WaitGroup
	wg.Add(len(chans))
	for _, c := range chans {
		go func() {
			defer wg.Done()
			for {
				m, err := c.next(ctx)
				if err != nil && ctx.Err() != nil {
					return
				}
				select {
				case out <- Item{Channel: c, Msg: m, Err: err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// ReceiveEach receives one message from each channel, in order, like
// execnet's receive_each. It stops at the first error, returning the
// messages received so far.
func ReceiveEach(ctx context.Context, chans []*Channel) ([]RawMessage, error) {
	msgs := make([]RawMessage, 0, len(chans))
	for _, c := range chans {
		m, err := c.next(ctx)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}
