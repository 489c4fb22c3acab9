package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// peerEnv selects the role of a re-executed test binary.
const peerEnv = "GODIST_CHANNEL_TEST_PEER"

func TestMain(m *testing.M) {
	if role := os.Getenv(peerEnv); role != "" {
		os.Exit(runPeer(role))
	}
	os.Exit(m.Run())
}

// stdioConn returns stdin+stdout as a stream, switched to non-blocking mode
// so that the runtime poller serves them (and Close unblocks them).
func stdioConn() (io.ReadWriteCloser, error) {
	for _, fd := range []int{0, 1} {
		if err := syscall.SetNonblock(fd, true); err != nil {
			return nil, err
		}
	}
	return pipeRWC{os.NewFile(0, "stdin"), os.NewFile(1, "stdout")}, nil
}

// runPeer is the main of the child process: a server session on stdio
// whose accepted channels behave according to their names.
func runPeer(role string) int {
	if role == "rawecho" {
		return rawEcho()
	}
	if role != "serve" {
		fmt.Fprintln(os.Stderr, "unknown peer role", role)
		return 2
	}
	rwc, err := stdioConn()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	s, err := NewSession(ctx, rwc, false, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		return 1
	}
	defer s.Close()
	for {
		ch, err := s.Accept(ctx)
		if err != nil {
			break
		}
		go servePeerChannel(ctx, ch)
	}
	return 0
}

func servePeerChannel(ctx context.Context, ch *Channel) {
	switch ch.Name() {
	case "echo":
		defer ch.Close()
		for {
			m, err := ch.ReceiveRaw(ctx)
			if err != nil {
				return
			}
			if err := ch.Send(ctx, m); err != nil {
				return
			}
		}
	case "sink":
		// Receives a count n, then n messages, and answers n; repeats.
		defer ch.Close()
		for {
			var n int
			if err := ch.Receive(ctx, &n); err != nil {
				return
			}
			for i := 0; i < n; i++ {
				m, err := ch.ReceiveRaw(ctx)
				if err != nil {
					return
				}
				m.Release()
			}
			if err := ch.Send(ctx, n); err != nil {
				return
			}
		}
	case "callback":
		// Echoes through a callback; end closes the channel.
		ch.SetCallback(func(m RawMessage) {
			ch.Send(ctx, m)
		}, func(err error) {
			ch.Close()
		})
	case "panic":
		ch.SetCallback(func(m RawMessage) {
			panic("callback exploded")
		}, nil)
	case "error":
		var msg string
		ch.Receive(ctx, &msg)
		ch.CloseWithError(errors.New(msg))
	case "exit":
		// The process dies abruptly: the parent sees the stream end.
		os.Exit(3)
	}
}

// rawEcho is the peer of the RawPipe benchmarks: it echoes the bytes it
// reads, except that a read of more than 64 bytes is only counted and
// acknowledged with one byte per MiB.
func rawEcho() int {
	rwc, err := stdioConn()
	if err != nil {
		return 1
	}
	buf := make([]byte, 1<<20)
	got := 0
	for {
		n, err := rwc.Read(buf)
		if err != nil {
			return 0
		}
		if n <= 64 && got == 0 {
			rwc.Write(buf[:n])
			continue
		}
		for got += n; got >= 1<<20; got -= 1 << 20 {
			rwc.Write(buf[:1])
		}
	}
}

// startPeer runs the test binary as a peer process and returns the client
// session connected to it over two OS pipes.
func startPeer(t testing.TB, cfg *Config) *Session {
	t.Helper()
	rwc := startPeerProcess(t, "serve")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := NewSession(ctx, rwc, true, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startPeerProcess runs the test binary as a peer process in role and
// returns the parent's ends of the two pipes to it.
func startPeerProcess(t testing.TB, role string) io.ReadWriteCloser {
	t.Helper()
	pr, cw, err := os.Pipe() // parent reads what child writes
	if err != nil {
		t.Fatal(err)
	}
	cr, pw, err := os.Pipe() // child reads what parent writes
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("GODIST_CHANNEL_TEST_PIPESIZE") != "0" {
		setPipeSize(pr, 1<<20)
		setPipeSize(pw, 1<<20)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), peerEnv+"="+role)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cr, cw, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cr.Close()
	cw.Close()
	rwc := pipeRWC{pr, pw}
	t.Cleanup(func() {
		// Runs after the session's cleanup (registered later): the
		// peer exits once its session sees ours end.
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(hangTimeout):
			cmd.Process.Kill()
			<-done
			t.Errorf("peer process did not exit")
		}
		rwc.Close()
	})
	return rwc
}

func TestProcessEcho(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	s := startPeer(t, nil)
	for _, name := range []string{"echo", "callback"} {
		ch, err := s.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 100, 1 << 20, 5<<20 + 3} {
			b := make([]byte, n)
			b[n-1] = 7
			if err := ch.Send(ctx, b); err != nil {
				t.Fatal(err)
			}
			var got []byte
			if err := ch.Receive(ctx, &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != n || got[n-1] != 7 {
				t.Fatalf("%s: bad echo of %d bytes", name, n)
			}
		}
		ch.Close()
		if err := ch.WaitClose(ctx); err != nil {
			t.Fatal(name, err)
		}
	}
}

func TestProcessRemoteErrors(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	s := startPeer(t, nil)
	ch, _ := s.Open(ctx, "error")
	ch.Send(ctx, "disk full")
	var re *RemoteError
	if err := ch.Receive(ctx, new(any)); !errors.As(err, &re) || re.Message != "disk full" || re.Stack == "" {
		t.Fatalf("got %v", err)
	}
	ch, _ = s.Open(ctx, "panic")
	ch.Send(ctx, 1)
	if err := ch.WaitClose(ctx); !errors.As(err, &re) || re.Message == "" {
		t.Fatalf("got %v", err)
	} else if want := "callback exploded"; !contains(re.Message, want) || !contains(re.Stack, "servePeerChannel") {
		t.Fatalf("got %q, stack:\n%s", re.Message, re.Stack)
	}
}

func TestProcessPeerDies(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	s := startPeer(t, nil)
	echo, _ := s.Open(ctx, "echo")
	recvErr := make(chan error, 1)
	go func() { recvErr <- echo.Receive(ctx, new(any)) }()
	s.Open(ctx, "exit")
	err := <-recvErr
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Receive after peer death: %v", err)
	}
	if s.Err() != err {
		t.Fatalf("Err() = %v, want %v", s.Err(), err)
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
