// Package worker is what a godist worker does for the test runner: it starts a test binary
// with pipes of its own, streams its output back over a channel as it comes, reports how the
// process ended, and kills the process — with its whole process group — when told to, when
// the channel or the session goes away, or when the time limit passes.
//
// The master side is Run; the worker side is the function registered under RunFunc.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/proto"
)

// RunFunc is the registered name of the function that runs one test process.
const RunFunc = proto.RunFunc

// Request asks the worker to run one process (proto.RunRequest).
type Request = proto.RunRequest

// Control is what the master may send after the Request (proto.RunControl).
type Control = proto.RunControl

// Message is what the worker sends: output chunks in order, then one Exit.
type Message = proto.RunMessage

// Exit says how the process ended (proto.RunExit).
type Exit = proto.RunExit

// Register adds the worker's functions to reg.
func Register(reg *Registry) {
	reg.Register(RunFunc, serveRun)
}

const chunkSize = 32 << 10

func serveRun(ctx context.Context, ch *channel.Channel) error {
	var req Request
	if err := ch.Receive(ctx, &req); err != nil {
		return fmt.Errorf("worker: reading the run request: %w", err)
	}
	start := time.Now()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	args := req.Args
	var testLog string
	if req.TestLog {
		f, err := os.CreateTemp("", "godist-testlog-*")
		if err == nil {
			testLog = f.Name()
			f.Close()
			defer os.Remove(testLog)
			args = append(append([]string(nil), args...), "-test.testlogfile="+testLog)
		}
	}
	cmd := exec.Command(req.Path, args...)
	cmd.Dir = req.Dir
	cmd.Env = append(os.Environ(), req.Env...)
	if filepath.IsAbs(req.Dir) {
		// As go test gives it: os.Getwd is then the package directory as the master named
		// it, symlinks and all.
		cmd.Env = append(cmd.Env, "PWD="+req.Dir)
	}
	// One pipe for stdout and stderr, as go test gives a test binary.
	cmd.Stdout, cmd.Stderr = w, w
	p, err := child.Start(cmd)
	if err != nil {
		r.Close()
		w.Close()
		return ch.Send(ctx, Message{Exit: &Exit{Code: -1, Err: err.Error()}})
	}
	w.Close()
	// killed is the first reason the worker killed the process group for; it is set under
	// killMu with the kill itself, so that once Wait has returned it is final.
	var killMu sync.Mutex
	killed := ""
	kill := func(why string) {
		killMu.Lock()
		defer killMu.Unlock()
		if p.Kill() && killed == "" {
			killed = why
		}
	}
	var outEnded atomic.Bool
	exited := make(chan error, 1)
	go func() {
		exited <- p.Wait(func() {
			// A grandchild holding the pipe open must not keep us waiting forever.
			if !outEnded.Load() {
				p.Kill()
			}
		})
	}()

	// Control messages, and the end of the channel, arrive here.
	ctlCtx, ctlCancel := context.WithCancel(ctx)
	defer ctlCancel()
	go func() {
		for {
			var c Control
			err := ch.Receive(ctlCtx, &c)
			if err == nil && !c.Kill {
				continue
			}
			if ctlCtx.Err() == nil {
				kill("requested")
			}
			return
		}
	}()
	var timer <-chan time.Time
	if req.KillAfter > 0 {
		t := time.NewTimer(req.KillAfter)
		defer t.Stop()
		timer = t.C
	}
	// Read output until EOF: every holder of the pipe's write end — the test process and
	// anything it started — has exited or closed it.
	outDone := make(chan error, 1)
	go func() {
		buf := make([]byte, chunkSize)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if serr := ch.Send(ctx, Message{Out: buf[:n]}); serr != nil {
					outEnded.Store(true)
					kill("requested")
					outDone <- serr
					r.Close()
					return
				}
			}
			if err != nil {
				outEnded.Store(true)
				r.Close()
				if errors.Is(err, io.EOF) {
					err = nil
				}
				outDone <- err
				return
			}
		}
	}()
	var waitErr error
	gotExit, gotOut := false, false
	var outErr error
	for !gotExit || !gotOut {
		select {
		case waitErr = <-exited:
			gotExit = true
		case outErr = <-outDone:
			gotOut = true
		case <-timer:
			kill("timeout")
			timer = nil
		case <-ctx.Done():
			// Wait only for what has not come yet (each arrives once), and do not wait
			// on the output of a process that escaped its group: the read end goes.
			kill("requested")
			if !gotExit {
				<-exited
			}
			if !gotOut {
				r.Close()
				<-outDone
			}
			return ctx.Err()
		}
	}
	exit := &Exit{Elapsed: time.Since(start), Code: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exit.Signal = ws.Signal().String()
	}
	killMu.Lock()
	exit.Killed = killed
	killMu.Unlock()
	_ = waitErr
	if testLog != "" {
		if fi, err := os.Stat(testLog); err == nil && fi.Size() <= proto.MaxTestLog {
			exit.TestLog, _ = os.ReadFile(testLog)
		}
	}
	ctlCancel()
	if outErr != nil {
		return outErr
	}
	return ch.Send(ctx, Message{Exit: exit})
}

// Opener opens channels to a worker's functions: a *gateway.Gateway.
type Opener interface {
	RemoteExec(ctx context.Context, name string) (*channel.Channel, error)
}

// Run runs req on gw and calls out with each chunk of the process's output, in order, from
// the calling goroutine. Cancelling ctx kills the process (and its process group) on the
// worker; Run then returns ctx's error. The error is non-nil only when the process's fate
// is unknown (the gateway was lost, ctx ended); a failing process is reported in Exit.
func Run(ctx context.Context, gw Opener, req Request, out func([]byte)) (*Exit, error) {
	ch, err := gw.RemoteExec(ctx, RunFunc)
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	if err := ch.Send(ctx, req); err != nil {
		return nil, err
	}
	for {
		var m Message
		if err := ch.Receive(ctx, &m); err != nil {
			if ctx.Err() != nil {
				// Best effort: tell the worker to kill it now rather than when the channel closes.
				kctx, cancel := context.WithTimeout(context.Background(), time.Second)
				ch.Send(kctx, Control{Kill: true})
				cancel()
				return nil, ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("worker: the run channel closed without an exit status")
			}
			return nil, err
		}
		if len(m.Out) > 0 {
			out(m.Out)
		}
		if m.Exit != nil {
			return m.Exit, nil
		}
	}
}
