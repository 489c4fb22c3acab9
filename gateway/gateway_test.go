package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/proc"
	"github.com/godist/godist/proto"
	"github.com/godist/godist/worker"
	"github.com/godist/godist/xspec"
)

// The test binary doubles as the worker: Start runs `EXE worker` with this variable set.
const workerEnv = "GATEWAY_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "old" {
		// A worker of another release: it answers InfoFunc speaking protocol 0.
		sess, err := channel.NewSession(context.Background(), worker.Stdio(), false, channel.DefaultConfig())
		if err != nil {
			os.Exit(1)
		}
		for {
			ch, err := sess.Accept(context.Background())
			if err != nil {
				os.Exit(0)
			}
			if ch.Name() == proto.InfoFunc {
				ch.Send(context.Background(), proto.Info{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Version: "v0.1.0", Proto: 0})
			}
			ch.Close()
		}
	}
	if os.Getenv(workerEnv) == "1" {
		reg := worker.NewRegistry()
		reg.Register(proto.SpawnFunc, ServeSpawn)
		reg.Register("echo", func(ctx context.Context, ch *channel.Channel) error {
			for {
				v, err := ch.ReceiveAny(ctx)
				if err != nil {
					return nil
				}
				if err := ch.Send(ctx, v); err != nil {
					return err
				}
			}
		})
		reg.Register("getenv", func(ctx context.Context, ch *channel.Channel) error {
			var name string
			if err := ch.Receive(ctx, &name); err != nil {
				return err
			}
			return ch.Send(ctx, os.Getenv(name))
		})
		reg.Register("nice", func(ctx context.Context, ch *channel.Channel) error {
			prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
			if err != nil {
				return err
			}
			return ch.Send(ctx, 20-prio) // the raw syscall returns 20 - nice
		})
		reg.Register("fail", func(ctx context.Context, ch *channel.Channel) error {
			return errors.New("it went wrong over there")
		})
		reg.Register("panic", func(ctx context.Context, ch *channel.Channel) error {
			panic("boom over there")
		})
		err := worker.Serve(context.Background(), worker.Stdio(), reg)
		if err != nil && !worker.IsEndOfStream(err) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startGW(t *testing.T, spec string) *Gateway {
	t.Helper()
	s, err := xspec.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Start(ctx, "gw0", s, Options{Executable: exe, Env: []string{workerEnv + "=1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func callFn(t *testing.T, g *Gateway, name string, arg, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := g.RemoteExec(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if arg != nil {
		if err := ch.Send(ctx, arg); err != nil {
			return err
		}
	}
	return ch.Receive(ctx, out)
}

func TestPopenInfo(t *testing.T) {
	g := startGW(t, "popen//chdir=/tmp")
	if g.Info.PID == os.Getpid() || g.Info.PID == 0 {
		t.Errorf("worker pid %d: want another process", g.Info.PID)
	}
	host, _ := os.Hostname()
	if g.Info.GOOS == "" || g.Info.GOARCH == "" || g.Info.Hostname != host || g.Info.NCPU < 1 || g.Info.Version == "" {
		t.Errorf("incomplete info %+v", g.Info)
	}
	if g.Info.Cwd != "/tmp" {
		t.Errorf("chdir=/tmp: worker cwd %q", g.Info.Cwd)
	}
}

func TestRemoteExecEchoAndEnv(t *testing.T) {
	g := startGW(t, "popen//env:GW_TEST_X=hello world")
	var got map[string]any
	if err := callFn(t, g, "echo", map[string]any{"a": "b"}, &got); err != nil || got["a"] != "b" {
		t.Fatalf("echo: %v, %v", got, err)
	}
	var v string
	if err := callFn(t, g, "getenv", "GW_TEST_X", &v); err != nil || v != "hello world" {
		t.Fatalf("env:GW_TEST_X reached the worker as %q (%v)", v, err)
	}
}

func TestNice(t *testing.T) {
	g := startGW(t, "popen//nice=7")
	var n int
	if err := callFn(t, g, "nice", nil, &n); err != nil || n != 7 {
		t.Fatalf("worker niceness %d (%v), want 7", n, err)
	}
}

func TestRemoteErrorsAndPanics(t *testing.T) {
	g := startGW(t, "popen")
	var v any
	var re *channel.RemoteError
	err := callFn(t, g, "fail", nil, &v)
	if !errors.As(err, &re) || !strings.Contains(re.Message, "it went wrong over there") {
		t.Errorf("remote error: got %v", err)
	}
	err = callFn(t, g, "panic", nil, &v)
	if !errors.As(err, &re) || !strings.Contains(re.Message, "boom over there") || !strings.Contains(re.Stack, "gateway_test.go") {
		t.Errorf("remote panic: got %v (stack %q)", err, stackOf(err))
	}
	err = callFn(t, g, "no-such-function", nil, &v)
	if !errors.As(err, &re) || !strings.Contains(re.Message, `no function "no-such-function"`) || !strings.Contains(re.Message, "echo") {
		t.Errorf("unknown function: got %v", err)
	}
	// The gateway is still fine afterwards.
	var got string
	if err := callFn(t, g, "echo", "still here", &got); err != nil || got != "still here" {
		t.Fatalf("after remote errors: %q, %v", got, err)
	}
}

func stackOf(err error) string {
	var re *channel.RemoteError
	if errors.As(err, &re) {
		return re.Stack
	}
	return ""
}

func TestCloseIsIdempotentAndEndsTheWorker(t *testing.T) {
	g := startGW(t, "popen")
	pid := g.Info.PID
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if proc.Alive(pid) {
		t.Fatalf("worker %d still alive after Close", pid)
	}
	select {
	case <-g.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}

func TestLostWorkerReleasesWaiters(t *testing.T) {
	g := startGW(t, "popen")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := g.RemoteExec(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		var v any
		errc <- ch.Receive(ctx, &v) // nothing was sent: blocks until the worker dies
	}()
	child.KillPid(g.Info.PID)
	select {
	case err := <-errc:
		if err == nil || ctx.Err() != nil {
			t.Fatalf("Receive returned %v after the worker died", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive still blocked after the worker died")
	}
	select {
	case <-g.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the worker died")
	}
	if g.Err() == nil {
		t.Fatal("Err is nil after the worker died")
	}
}

func TestStartFailureSaysWhy(t *testing.T) {
	s, _ := xspec.Parse("popen")
	_, err := Start(context.Background(), "gw3", s, Options{Executable: "/nonexistent/godist"})
	var se *StartError
	if !errors.As(err, &se) || se.ID != "gw3" || !strings.Contains(err.Error(), "/nonexistent/godist") {
		t.Fatalf("got %v", err)
	}
	// Nothing listens on port 1: the error names the address.
	s, _ = xspec.Parse("socket=127.0.0.1:1")
	if _, err := Start(context.Background(), "gw4", s, Options{}); !errors.As(err, &se) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("socket gateway to a closed port: got %v", err)
	}
	// A command that is no shell: the error says how it ended.
	s, _ = xspec.Parse("exec=echo no shell here >&2; exit 7")
	_, err = Start(context.Background(), "gw6", s, Options{Binaries: testBinaries(t)})
	if err == nil || !strings.Contains(err.Error(), "exit status 7") || !strings.Contains(err.Error(), "no shell here") {
		t.Fatalf("exec of a failing command: got %v", err)
	}
	// A worker binary that does not speak the protocol.
	s, _ = xspec.Parse("popen")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Start(ctx, "gw5", s, Options{Executable: "/bin/echo"}); err == nil {
		t.Fatal("a worker that speaks no protocol started")
	}
}

// A worker that speaks another application protocol is refused at connect, with both
// versions named.
func TestVersionMismatchRefused(t *testing.T) {
	s, _ := xspec.Parse("popen")
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Start(ctx, "gw0", s, Options{Executable: exe, Env: []string{workerEnv + "=old"}})
	if err == nil {
		g.Close()
		t.Fatal("a worker speaking protocol 0 was accepted")
	}
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Worker != 0 || ve.WorkerRelease != "v0.1.0" {
		t.Fatalf("error %v (%T), want a *VersionError naming protocol 0 and v0.1.0", err, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "godist protocol 0 (godist v0.1.0)") || !strings.Contains(msg, fmt.Sprintf("speaks %d", proto.Version)) || strings.Contains(msg, "\n") {
		t.Errorf("error %q does not name both versions in one line", msg)
	}
}
