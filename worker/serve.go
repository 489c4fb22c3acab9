package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/proto"
)

func serveInfo(ctx context.Context, ch *channel.Channel) error {
	host, _ := os.Hostname()
	cwd, _ := os.Getwd()
	cache, _ := os.UserCacheDir()
	return ch.Send(ctx, proto.Info{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Hostname: host,
		PID: os.Getpid(), Cwd: cwd, NCPU: runtime.NumCPU(), Version: proto.Release, CacheDir: cache, Proto: proto.Version,
		EnvSums: envSums()})
}

// envSums hashes the value of every variable of the worker's environment.
func envSums() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			continue
		}
		sum := sha256.Sum256([]byte(v))
		out[k] = hex.EncodeToString(sum[:])
	}
	return out
}

// Serve is the worker side of a gateway: it speaks the channel protocol over rwc and runs
// the registered function named by each channel the master opens, each on its own
// goroutine. It returns when the stream closes or ctx ends, after cancelling the context of
// every running function and waiting for them to return; the functions must therefore stop
// promptly when their ctx is done (and kill what they started).
func Serve(ctx context.Context, rwc io.ReadWriteCloser, reg *Registry) error {
	sess, err := channel.NewSession(ctx, rwc, false, channel.DefaultConfig())
	if err != nil {
		rwc.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		sess.Close()
	}()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		ch, err := sess.Accept(ctx)
		if err != nil {
			if cause := sess.Err(); cause != nil {
				return cause
			}
			return err
		}
		fn, ok := reg.lookup(ch.Name())
		if !ok {
			ch.CloseWithError(fmt.Errorf("worker: no function %q on this worker (it has: %v)", ch.Name(), reg.Names()))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			call(ctx, fn, ch)
		}()
	}
}

// stdio joins the process's standard input and output into the worker's stream.
type stdio struct{}

func (stdio) Read(p []byte) (int, error) { return os.Stdin.Read(p) }

// stdioDeadline is stdio when stdin is a pipe the poller handles (as the master's pipes
// are): then the session's receivers may read it themselves.
type stdioDeadline struct{ stdio }

func (stdioDeadline) SetReadDeadline(t time.Time) error { return os.Stdin.SetReadDeadline(t) }
func (stdio) Write(p []byte) (int, error)               { return os.Stdout.Write(p) }
func (stdio) Close() error {
	err1 := os.Stdin.Close()
	err2 := os.Stdout.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// Stdio is the worker's stream when a gateway started it with pipes: os.Stdin and os.Stdout.
// Nothing else in a worker process may write to os.Stdout.
func Stdio() io.ReadWriteCloser {
	if os.Stdin.SetReadDeadline(time.Time{}) == nil {
		return stdioDeadline{}
	}
	return stdio{}
}

// IsEndOfStream reports whether err from Serve means only that the master went away: the
// normal end of a worker.
func IsEndOfStream(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, os.ErrClosed) ||
		errors.Is(err, channel.ErrSessionClosed) || errors.Is(err, channel.ErrPeerClosed) || errors.Is(err, context.Canceled)
}
