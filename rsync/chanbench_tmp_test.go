package rsync

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/godist/godist/channel"
)

func rawPair(t *testing.T, deadline bool) (*channel.Session, *channel.Session) {
	r1, w1, _ := os.Pipe()
	r2, w2, _ := os.Pipe()
	var a, b interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
		Close() error
	}
	if deadline {
		a, b = dlRWC{r1, w2}, dlRWC{r2, w1}
	} else {
		a, b = pipeRWC{r1, w2}, pipeRWC{r2, w1}
	}
	ctx := context.Background()
	var sb *channel.Session
	done := make(chan struct{})
	go func() { sb, _ = channel.NewSession(ctx, b, false, nil); close(done) }()
	sa, err := channel.NewSession(ctx, a, true, nil)
	<-done
	if err != nil || sb == nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return sa, sb
}

type dlRWC struct{ r, w *os.File }

func (p dlRWC) Read(b []byte) (int, error)        { return p.r.Read(b) }
func (p dlRWC) Write(b []byte) (int, error)       { return p.w.Write(b) }
func (p dlRWC) SetReadDeadline(t time.Time) error { return p.r.SetReadDeadline(t) }
func (p dlRWC) Close() error                      { p.w.Close(); return p.r.Close() }

func TestChanThroughputTmp(t *testing.T) {
	for _, deadline := range []bool{false, true} {
		for _, cancellable := range []bool{false, true} {
			sa, sb := rawPair(t, deadline)
			ctx := context.Background()
			rctx := context.Background()
			if cancellable {
				var cancel context.CancelFunc
				rctx, cancel = context.WithCancel(rctx)
				defer cancel()
			}
			c2, _ := sa.Open(ctx, "y")
			sc, _ := sb.Accept(ctx)
			msg := make([]byte, 262152)
			done := make(chan struct{})
			go func() {
				for i := 0; i < 40; i++ {
					var b []byte
					if err := sc.Receive(rctx, &b); err != nil {
						t.Error(err)
					}
				}
				close(done)
			}()
			t0 := time.Now()
			for i := 0; i < 40; i++ {
				if err := c2.Send(ctx, msg); err != nil {
					t.Fatal(err)
				}
			}
			<-done
			t.Logf("deadline=%v cancellable=%v: 40 x 256KiB in %v", deadline, cancellable, time.Since(t0))
		}
	}
}
