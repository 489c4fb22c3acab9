package channel

import (
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// hangTimeout is how long a test waits for something that must happen before
// it calls it a hang. It bounds waits only: no test depends on it passing
// for its result, so it is generous, for loaded machines.
const hangTimeout = 20 * time.Second

// checkLeaks fails t if goroutines running this package's session code are
// still alive (after a grace period) when t ends. Tests in this package do
// not run in parallel, so any such goroutine belongs to the test.
func checkLeaks(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		var stacks string
		for deadline := time.Now().Add(hangTimeout); ; {
			stacks = sessionGoroutines()
			if stacks == "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if stacks != "" {
			t.Errorf("leaked goroutines:\n%s", stacks)
		}
	})
}

func sessionGoroutines() string {
	var leaked []string
	for _, g := range goroutines() {
		if strings.Contains(g, "channel.(*Session)") || strings.Contains(g, "channel.ReceiveQueue") {
			leaked = append(leaked, g)
		}
	}
	return strings.Join(leaked, "\n\n")
}

// goroutines returns the stack of every goroutine, each starting with its
// "goroutine N [state]:" line.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// parkedIn returns how many goroutines with fn in their stack are parked,
// waiting for something (a channel, a select, a condition, the network
// poller), rather than running, ready to run, or waiting for a lock.
func parkedIn(fn string) int {
	n := 0
	for _, g := range goroutines() {
		if !strings.Contains(g, fn) {
			continue
		}
		_, state, _ := strings.Cut(g, "[")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",") // "select, 2 minutes"
		switch state {
		case "running", "runnable", "syscall", "preempted", "sync.Mutex.Lock", "sync.RWMutex.Lock", "sync.RWMutex.RLock", "semacquire":
		default:
			n++
		}
	}
	return n
}

// transport makes a connected pair of streams.
type transport struct {
	name string
	pair func(t testing.TB) (a, b io.ReadWriteCloser)
}

var transports = []transport{
	{"netpipe", func(t testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser) {
		a, b := net.Pipe()
		return a, b
	}},
	{"ospipe", osPipePair},
	{"tcp", tcpPair},
}

// pipeRWC joins the read end of one OS pipe and the write end of another.
type pipeRWC struct{ r, w *os.File }

func (p pipeRWC) Read(b []byte) (int, error)        { return p.r.Read(b) }
func (p pipeRWC) Write(b []byte) (int, error)       { return p.w.Write(b) }
func (p pipeRWC) SetReadDeadline(t time.Time) error { return p.r.SetReadDeadline(t) }
func (p pipeRWC) Close() error {
	err1 := p.r.Close()
	err2 := p.w.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

func osPipePair(t testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser) {
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	return pipeRWC{r1, w2}, pipeRWC{r2, w1}
}

func tcpPair(t testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return a, r.c
}

// sessionPair runs the handshake on both ends of a transport.
func sessionPair(t testing.TB, tr transport, ccfg, scfg *Config) (client, server *Session) {
	t.Helper()
	a, b := tr.pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type res struct {
		s   *Session
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := NewSession(ctx, b, false, scfg)
		ch <- res{s, err}
	}()
	client, err := NewSession(ctx, a, true, ccfg)
	r := <-ch
	if err != nil || r.err != nil {
		t.Fatalf("handshake: client %v, server %v", err, r.err)
	}
	server = r.s
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	t.Cleanup(cancel)
	return ctx
}

// forTransports runs f as a subtest over every in-process transport.
func forTransports(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			checkLeaks(t)
			f(t, tr)
		})
	}
}

func testCtxBackground() context.Context { return context.Background() }
