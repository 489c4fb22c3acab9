package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/internal/tail"
	"github.com/godist/godist/proto"
	"github.com/godist/godist/xspec"
)

// via=ID opens a gateway from the host of gateway ID (the hop): the hop's worker starts the
// transport there — a worker process for popen, a command for exec=, a container for
// docker= (with the hop's docker client), an ssh session for ssh= — and relays its bytes over one channel of the hop's session. The master runs the
// bootstrap and the inner session through that channel as through any other stream, so
// frames are relayed without the hop understanding them, under the outer channel's flow
// control.

// errKilled is how the master tells the hop to kill the inner transport at once.
var errKilled = errors.New("gateway: killed by the master")

// startVia starts spec's transport on the hop and connects through it.
func startVia(ctx context.Context, id string, spec *xspec.Spec, opts Options, hop *Gateway) (*Gateway, error) {
	ch, err := hop.RemoteExec(ctx, proto.SpawnFunc)
	if err != nil {
		return nil, fmt.Errorf("via=%s: %w", spec.Via, err)
	}
	env := opts.Env
	if spec.Type == xspec.TypePopen {
		env = append(append([]string(nil), spec.EnvList()...), opts.Env...)
	}
	if err := ch.Send(ctx, proto.SpawnRequest{Spec: spec.Raw, Env: env}); err != nil {
		ch.Close()
		return nil, fmt.Errorf("via=%s: %w", spec.Via, err)
	}
	done := make(chan struct{})
	var endErr error
	go func() {
		endErr = ch.WaitClose(context.Background())
		close(done)
	}()
	var once sync.Once
	l := &link{
		rwc:    &channelRWC{ch: ch, r: ch.Reader(), w: ch.Writer()},
		stderr: tail.New(1),
		done:   done,
		kill: func() {
			once.Do(func() { ch.CloseWithError(errKilled) })
			select {
			case <-done:
			case <-hop.Done():
			case <-time.After(5 * time.Second):
			}
		},
		ended: func() string {
			var re *channel.RemoteError
			if errors.As(endErr, &re) {
				// The hop could not start it: its reason, without the channel's wrapping.
				return "via " + spec.Via + ": " + re.Message
			}
			if endErr != nil && !errors.Is(endErr, io.EOF) {
				return "via " + spec.Via + ": " + endErr.Error()
			}
			return "via " + spec.Via + ": the inner transport ended"
		},
	}
	var boot *bootstrapConfig
	if spec.Type == xspec.TypeSSH || spec.Type == xspec.TypeExec || spec.Type == xspec.TypeDocker {
		boot = &bootstrapConfig{binaries: opts.Binaries}
	}
	g, err := connect(ctx, id, spec, opts, l, boot)
	if err != nil {
		// The hop could not start the transport (a chdir= missing there, ...): that is
		// the cause, and the handshake that then found no peer only repeats it.
		select {
		case <-done:
			var re *channel.RemoteError
			if errors.As(endErr, &re) {
				return nil, fmt.Errorf("via %s: %s", spec.Via, re.Message)
			}
		default:
		}
		return nil, err
	}
	return g, nil
}

// channelRWC is a channel as a byte stream.
type channelRWC struct {
	ch *channel.Channel
	r  io.Reader
	w  io.WriteCloser
}

func (c *channelRWC) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *channelRWC) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *channelRWC) Close() error                { return c.ch.Close() }

// ServeSpawn is the hop's side of via=, the worker function registered under
// proto.SpawnFunc: it starts the inner gateway's transport from this host and relays its
// bytes until either side ends.
func ServeSpawn(ctx context.Context, ch *channel.Channel) error {
	var req proto.SpawnRequest
	if err := ch.Receive(ctx, &req); err != nil {
		return err
	}
	spec, err := xspec.Parse(req.Spec)
	if err != nil {
		return err
	}
	var l *link
	switch spec.Type {
	case xspec.TypePopen:
		if goos, goarch := spec.Platform(); goos != runtime.GOOS || goarch != runtime.GOARCH {
			return fmt.Errorf("a popen gateway via a hop runs the hop's own platform (%s/%s), not %s/%s; drop goos=/goarch= or reach such a host directly",
				runtime.GOOS, runtime.GOARCH, goos, goarch)
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		argv := []string{exe, "worker"}
		if spec.HasNice {
			argv = append(argv, "--nice", strconv.Itoa(spec.Nice))
		}
		p, err := startProcess(argv, spec.Chdir, append(os.Environ(), req.Env...), exe)
		if err != nil {
			return err
		}
		l = p.link
	case xspec.TypeExec:
		p, err := startProcess([]string{"/bin/sh", "-c", spec.Target}, "", os.Environ(), "command")
		if err != nil {
			return err
		}
		l = p.link
	case xspec.TypeDocker:
		// The hop's docker client starts the container; its kill removes it.
		p, err := startContainer(ctx, spec.ID, spec, req.Env, 0)
		if err != nil {
			return err
		}
		l = p.link
	case xspec.TypeSSH:
		pool := newSSHPool(nil)
		defer pool.Close()
		rwc, err := pool.openShell(ctx, spec, "sh")
		if err != nil {
			return err
		}
		l = shellLink(rwc.(*sshShell), "remote shell")
	case xspec.TypeSocket:
		pool := newSSHPool(nil)
		defer pool.Close()
		sh, err := pool.openSocket(ctx, spec, socketEnv(spec, req.Env))
		if err != nil {
			return err
		}
		l = shellLink(sh, "remote worker")
	default:
		return fmt.Errorf("gateway: via= cannot start a %s gateway from a hop", spec.Type)
	}
	defer l.kill()
	// Master -> inner; the master's end of the stream is the inner side's end of input.
	upDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(l.rwc, ch.Reader())
		var re *channel.RemoteError
		if errors.As(err, &re) {
			// The master killed it (its worker found frozen, say): at once, not when the
			// inner side ends its output, which a stopped worker never does.
			l.kill()
		} else if cw, ok := l.rwc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		upDone <- err
	}()
	// Inner -> master, until the inner side ends.
	w := ch.Writer()
	_, downErr := io.Copy(w, l.rwc)
	select {
	case err := <-upDone:
		var re *channel.RemoteError
		if errors.As(err, &re) {
			return nil // the master killed it
		}
	default:
	}
	if downErr != nil && ctx.Err() == nil {
		return fmt.Errorf("via: relaying from the inner gateway: %w", downErr)
	}
	return nil
}

// CloseWrite ends the shell's input and keeps its output open.
func (s *sshShell) CloseWrite() error { return s.stdin.Close() }
