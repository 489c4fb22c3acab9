// Package gateway starts godist workers where an XSpec says and talks to them over one
// channel session each: popen (a local worker process), ssh= (an ssh session), socket= (a
// godist serve), exec= (any command reaching a shell), docker= (a container of its own,
// docker.go), and via= (any of these opened from another gateway's host). A gateway offers remote
// exec — functions registered by name in the worker binary, called with a channel — and
// its teardown takes the worker and everything it started with it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/tail"
	"github.com/godist/godist/proto"
	"github.com/godist/godist/xspec"
)

// ErrUnsupported is returned by Start for a gateway type this build cannot start yet.
var ErrUnsupported = errors.New("gateway: unsupported gateway type")

// StartError says which gateway failed to start and why.
type StartError struct {
	ID   string
	Spec string
	Err  error
}

// Error is one line: "gateway ID (SPEC): CAUSE".
func (e *StartError) Error() string {
	// The cause's own package prefix would only repeat this one's.
	return fmt.Sprintf("gateway %s (%s): %s", e.ID, e.Spec, strings.TrimPrefix(e.Err.Error(), "gateway: "))
}
func (e *StartError) Unwrap() error { return e.Err }

// PlatformError is a popen gateway asking for a platform this machine cannot run: the
// kernel refused the worker built for it.
type PlatformError struct {
	Host string // this machine's GOOS/GOARCH
	Want string // the spec's GOOS/GOARCH
	Err  error  // what exec said (exec format error, a missing interpreter); nil for another OS
}

func (e *PlatformError) Error() string {
	why := ""
	if e.Err != nil {
		why = fmt.Sprintf(" (%v)", errnoOf(e.Err))
	}
	return fmt.Sprintf("this machine (%s) cannot run %s binaries%s; reach a %s host with ssh=, socket= or exec=",
		e.Host, e.Want, why, e.Want)
}

func (e *PlatformError) Unwrap() error { return e.Err }

// Options for Start.
type Options struct {
	// Executable is the worker binary to run ("" = this process's own executable). It is
	// started as `Executable worker`.
	Executable string
	// Env is added to the worker's environment after the spec's env: keys.
	Env []string
	// Config of the channel session ("nil" = channel.DefaultConfig()).
	Config *channel.Config
	// SSH configures ssh= and socket= connections (nil = keepalives every 5 s, 3 missed =
	// dead). Tests of this package set it; others set Keepalive.
	SSH *sshPoolConfig
	// Keepalive bounds how long the worker may send nothing before the gateway counts as
	// lost (liveness.go: it is asked for its Info after a third of it) and how long an
	// ssh= or socket= connection may (its keepalives every third of it, unless SSH is
	// set). 0 = DefaultKeepalive.
	Keepalive time.Duration
	// Binaries finds worker binaries for bootstraps (nil = DefaultBinaries()).
	Binaries *Binaries
	// BootstrapTimeout bounds each step of a bootstrap (ssh=, exec=, docker=): the shell's
	// answer to each line, each piece of the worker binary it takes; and for docker= each
	// docker command but a pull (DefaultPullTimeout) (0 = DefaultBootstrapTimeout).
	BootstrapTimeout time.Duration
}

// Gateway is one started worker, seen from the master. Its methods are safe for concurrent
// use.
type Gateway struct {
	ID   string
	Spec *xspec.Spec
	Info proto.Info
	// Shipped is how many bytes of worker binary the start sent (0 with a warm cache).
	Shipped int64

	sess    *channel.Session
	link    *link
	watch   *watch // the worker's liveness check (liveness.go)
	onClose func()
	release func(timeout time.Duration) error // for a gateway sharing another's worker

	closeOnce sync.Once
	closeErr  error
}

// link is the byte stream to a worker and what holds it up: a local process (popen, exec=)
// or a remote session (ssh, socket, via).
type link struct {
	rwc    io.ReadWriteCloser
	stderr *tail.Buffer
	done   <-chan struct{} // closed when the process or session has ended
	kill   func()          // ends it by force and returns once done is closed; idempotent
	// ended says how the process or session ended, once done is closed ("" if unknown).
	ended func() string
}

// Start starts the gateway id of spec on its own (not sharing connections with others; see
// Group) and waits for its handshake and Info. On error nothing it started is left running.
func Start(ctx context.Context, id string, spec *xspec.Spec, opts Options) (*Gateway, error) {
	pool := newSSHPool(opts.sshConfig())
	g, err := start(ctx, id, spec, opts, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	g.onClose = func() { pool.Close() }
	return g, nil
}

func start(ctx context.Context, id string, spec *xspec.Spec, opts Options, pool *sshPool) (*Gateway, error) {
	var g *Gateway
	var err error
	switch {
	case spec.Via != "":
		err = fmt.Errorf("via=%s: gateways that go via another start in a Group with it", spec.Via)
	default:
		switch spec.Type {
		case xspec.TypePopen, xspec.TypeExec:
			// Both start a local process, which must be killable with all it starts.
			if err = child.Supported(); err != nil {
				break
			}
			if spec.Type == xspec.TypePopen {
				g, err = startPopen(ctx, id, spec, opts)
			} else {
				g, err = startExec(ctx, id, spec, opts)
			}
		case xspec.TypeDocker:
			if err = child.Supported(); err != nil {
				break
			}
			g, err = startDocker(ctx, id, spec, opts)
		case xspec.TypeSSH:
			g, err = startSSH(ctx, id, spec, opts, pool)
		case xspec.TypeSocket:
			g, err = startSocket(ctx, id, spec, opts, pool)
		default:
			err = fmt.Errorf("%w %q (this build starts: popen, exec, docker, ssh, socket)", ErrUnsupported, spec.Type)
		}
	}
	if err != nil {
		return nil, &StartError{ID: id, Spec: spec.Raw, Err: err}
	}
	return g, nil
}

func startPopen(ctx context.Context, id string, spec *xspec.Spec, opts Options) (*Gateway, error) {
	exe := opts.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	// Before any build for another platform: a chdir= that is not there fails at once.
	if err := checkDir(spec.Chdir); err != nil {
		return nil, err
	}
	goos, goarch := spec.Platform()
	host := runtime.GOOS + "/" + runtime.GOARCH
	if goos != runtime.GOOS && !(goos == "android" && runtime.GOOS == "linux") {
		// A worker here runs on this kernel: no use building one for another OS.
		return nil, &PlatformError{Host: host, Want: goos + "/" + goarch}
	}
	foreign := goos != runtime.GOOS || goarch != runtime.GOARCH
	if foreign {
		// Another platform, which this machine may run (popen//goarch=386 on linux/amd64,
		// or one qemu-user serves through binfmt_misc): a worker built for it. Whether it
		// runs, only exec can tell.
		bins := opts.Binaries
		if bins == nil {
			bins = DefaultBinaries()
		}
		bin, err := bins.For(ctx, goos, goarch)
		if err != nil {
			return nil, err
		}
		exe = bin.Path
	}
	env := append(os.Environ(), spec.EnvList()...)
	env = append(env, opts.Env...)
	l, err := startProcess([]string{exe, "worker"}, spec.Chdir, env, exe)
	if err != nil {
		if foreign && cannotExec(err) {
			return nil, &PlatformError{Host: host, Want: goos + "/" + goarch, Err: err}
		}
		return nil, err
	}
	if spec.HasNice {
		// Children inherit it: the worker's test processes run at the same niceness.
		if err := child.Renice(l.pid, spec.Nice); err != nil {
			l.kill()
			return nil, fmt.Errorf("nice=%d: %w", spec.Nice, err)
		}
	}
	return connect(ctx, id, spec, opts, l.link, nil)
}

// startExec runs COMMAND with sh on this machine; its stdin and stdout reach a POSIX shell
// somewhere (a container, a pod, a namespace), where the bootstrap starts the worker.
func startExec(ctx context.Context, id string, spec *xspec.Spec, opts Options) (*Gateway, error) {
	l, err := startProcess([]string{"/bin/sh", "-c", spec.Target}, "", os.Environ(), "command")
	if err != nil {
		return nil, err
	}
	return connect(ctx, id, spec, opts, l.link, &bootstrapConfig{binaries: opts.Binaries})
}

// shellLink is the link of a command running in an ssh session; what names it in errors.
func shellLink(sh *sshShell, what string) *link {
	var once sync.Once
	return &link{rwc: sh, stderr: sh.stderr, done: sh.Done(),
		kill: func() {
			// Once: a session that does not end within the wait (its command stopped)
			// costs the wait once, not at every call.
			once.Do(func() {
				sh.Close()
				select {
				case <-sh.Done():
				case <-time.After(5 * time.Second):
				}
			})
		},
		ended: func() string {
			if err := sh.ExitErr(); err != nil {
				return what + ": " + err.Error()
			}
			return what + " exited"
		}}
}

// startSSH opens a shell on the host through the pool and bootstraps the worker there.
func startSSH(ctx context.Context, id string, spec *xspec.Spec, opts Options, pool *sshPool) (*Gateway, error) {
	rwc, err := pool.openShell(ctx, spec, "sh")
	if err != nil {
		return nil, err
	}
	l := shellLink(rwc.(*sshShell), "remote shell")
	return connect(ctx, id, spec, opts, l, &bootstrapConfig{binaries: opts.Binaries})
}

// connect bootstraps the worker over l when boot is not nil, then runs the channel
// handshake and fetches the worker's Info. On error it kills l.
func connect(ctx context.Context, id string, spec *xspec.Spec, opts Options, l *link, boot *bootstrapConfig) (*Gateway, error) {
	g := &Gateway{ID: id, Spec: spec, link: l}
	rwc := l.rwc
	if boot != nil {
		var err error
		boot.spec, boot.env, boot.timeout = spec, opts.Env, opts.BootstrapTimeout
		if rwc, g.Shipped, err = bootstrap(ctx, l.rwc, boot); err != nil {
			err = g.explainBoot(err)
			l.kill()
			return nil, err
		}
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = channel.DefaultConfig()
	}
	// A start-up that hangs (a shell that never answers) must still end with ctx.
	stop := context.AfterFunc(ctx, l.kill)
	stream := clock(rwc)
	sess, err := channel.NewSession(ctx, stream, true, cfg)
	stop()
	if err != nil {
		err = g.explain(err) // before the kill, which would only add "signal: killed"
		l.kill()
		return nil, err
	}
	g.sess = sess
	// The Info is the end of the handshake: bounded by the same timeout.
	ictx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	err = g.fetchInfo(ictx)
	timedOut := err != nil && ctx.Err() == nil && errors.Is(ictx.Err(), context.DeadlineExceeded)
	cancel()
	if timedOut {
		err = g.explain(fmt.Errorf("%w: the worker said hello but sent no Info within %v", channel.ErrHandshake, cfg.HandshakeTimeout))
		sess.Close()
		l.kill()
		return nil, err
	}
	if err != nil {
		g.Close()
		return nil, g.explain(err)
	}
	bound := opts.Keepalive
	if bound <= 0 {
		bound = DefaultKeepalive
	}
	g.watch = g.watchWorker(stream, bound)
	return g, nil
}

// process is a link to a local child process in its own process group (package child).
type process struct {
	*link
	pid int
	// waitErr is what Wait said of the process (nil: it exited with status 0); read it
	// only once done is closed.
	waitErr error
}

// startProcess starts argv in dir ("" = this process's) with its stdin and stdout as the
// link's stream, in its own process group (so a terminal's Ctrl-C reaches the master, which
// then tears the worker down in order), dying with the master even when the master is
// SIGKILLed (on Linux; elsewhere its stdin ends then). what names the process in how it
// ended ("command", or the worker's path).
//
// A dir it cannot enter is reported as "chdir DIR: ...": exec alone would blame the
// program ("fork/exec PROGRAM: no such file or directory").
func startProcess(argv []string, dir string, env []string, what string) (*process, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	// Pipes of our own rather than cmd.StdinPipe/StdoutPipe: cmd.Wait would close those as
	// soon as the process exits, possibly before the session has read its last frames.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	stderr := tail.New(8 << 10)
	cmd.Stderr = stderr
	p, err := child.Start(cmd)
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, explainExec(err, argv[0], dir)
	}
	exited := make(chan struct{})
	proc := &process{pid: p.Pid()}
	go func() {
		proc.waitErr = p.Wait(nil)
		close(exited)
	}()
	rwc := &pipeRWC{r: outR, w: inW}
	var once sync.Once
	kill := func() {
		once.Do(func() {
			p.Kill() // a no-op once reaped: its pid may be someone else's then
			rwc.Close()
		})
		<-exited
	}
	ended := func() string {
		if proc.waitErr == nil {
			return what + " exited"
		}
		return what + ": " + proc.waitErr.Error()
	}
	proc.link = &link{rwc: rwc, stderr: stderr, done: exited, kill: kill, ended: ended}
	return proc, nil
}

// checkDir says why a process cannot start in dir as "chdir DIR: REASON" when dir is
// missing or no directory, nil otherwise (or if dir is "").
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return &fs.PathError{Op: "chdir", Path: dir, Err: errnoOf(err)}
	}
	if !st.IsDir() {
		return &fs.PathError{Op: "chdir", Path: dir, Err: syscall.ENOTDIR}
	}
	return nil
}

// explainExec adds to a failed exec of prog in dir what exec's error hides: a dir that
// went away since checkDir or that this process may not enter, or a program that is there
// but whose interpreter (the ELF loader, a #! line's, a binfmt_misc handler's) is not.
func explainExec(err error, prog, dir string) error {
	if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.ENOTDIR) {
		return err
	}
	if derr := checkDir(dir); derr != nil {
		return derr
	}
	if dir != "" && errors.Is(err, syscall.EACCES) {
		// Not searchable by this process's effective ids, as the child's chdir was. Asked
		// only after exec failed: without faccessat2 Go emulates AT_EACCESS from the mode
		// bits, which would refuse root directories it may enter.
		if aerr := searchable(dir); aerr != nil {
			return &fs.PathError{Op: "chdir", Path: dir, Err: aerr}
		}
	}
	if errors.Is(err, syscall.ENOENT) && filepath.IsAbs(prog) {
		if st, serr := os.Stat(prog); serr == nil && st.Mode().IsRegular() {
			return &interpreterError{prog: prog, err: err}
		}
	}
	return err
}

// interpreterError is an exec that failed with "no such file or directory" for a program
// that exists.
type interpreterError struct {
	prog string
	err  error
}

func (e *interpreterError) Error() string {
	return fmt.Sprintf("exec %s: no such file or directory for its interpreter (the dynamic loader, #! line or binfmt_misc handler it needs is missing)", e.prog)
}

func (e *interpreterError) Unwrap() error { return e.err }

// cannotExec reports whether exec refused a program as not runnable here: a format the
// kernel does not know, or an interpreter that is missing.
func cannotExec(err error) bool {
	var ie *interpreterError
	return errors.Is(err, syscall.ENOEXEC) || errors.As(err, &ie)
}

// errnoOf is the system's reason in err without the operation and path around it
// ("no such file or directory" of "stat /x: no such file or directory").
func errnoOf(err error) error {
	var ie *interpreterError
	if errors.As(err, &ie) {
		return errors.New("its interpreter is missing")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (g *Gateway) fetchInfo(ctx context.Context) error {
	ch, err := g.RemoteExec(ctx, proto.InfoFunc)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.Receive(ctx, &g.Info); err != nil {
		return err
	}
	if g.Info.Proto != proto.Version {
		return &VersionError{Worker: g.Info.Proto, WorkerRelease: g.Info.Version}
	}
	return nil
}

// VersionError is a worker that speaks another application protocol than this master
// (a godist serve of another release, say): nothing it would say could be trusted.
type VersionError struct {
	Worker        int    // the worker's proto.Version (0: too old to say)
	WorkerRelease string // its godist release
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("the worker speaks godist protocol %d (godist %s), this godist speaks %d (godist %s): run the same godist release on both sides",
		e.Worker, e.WorkerRelease, proto.Version, proto.Release)
}

// explain adds how the link ended and what the far side wrote to stderr, if anything, to
// a start-up error.
func (g *Gateway) explain(err error) error {
	select {
	case <-g.link.done:
		if g.link.ended != nil {
			err = fmt.Errorf("%w (%s)", err, g.link.ended())
		}
	case <-time.After(100 * time.Millisecond):
	}
	if l := g.link.stderr.LastLine(); l != "" {
		return fmt.Errorf("%w; stderr: %s", err, l)
	}
	return err
}

// RemoteExec opens a channel to the worker's function name. The caller owns the channel
// and must Close it.
func (g *Gateway) RemoteExec(ctx context.Context, name string) (*channel.Channel, error) {
	return g.sess.Open(ctx, name)
}

// Done is closed when the gateway is lost or closed.
func (g *Gateway) Done() <-chan struct{} { return g.sess.Done() }

// Err is why the gateway is gone, nil while it is up.
func (g *Gateway) Err() error {
	select {
	case <-g.sess.Done():
		if err := g.watch.err(); err != nil {
			return err
		}
		return g.explain(g.sess.Err())
	default:
		return nil
	}
}

// Close ends the session and waits up to 5 seconds for the worker to exit, then kills it.
// Idempotent.
func (g *Gateway) Close() error { return g.Terminate(5 * time.Second) }

// Terminate ends the session — the worker then kills its test processes and exits — and
// waits up to timeout for the worker to go, after which it is killed.
func (g *Gateway) Terminate(timeout time.Duration) error {
	g.closeOnce.Do(func() {
		if g.release != nil {
			// One of several gateways served by one worker process.
			g.closeErr = g.release(timeout)
			return
		}
		if g.sess != nil {
			g.sess.Close()
		}
		g.watch.stop()
		if g.watch.err() == nil { // else it killed the link: the worker is past waiting for
			select {
			case <-g.link.done:
			case <-time.After(timeout):
				g.link.kill()
				g.closeErr = fmt.Errorf("gateway %s: worker did not exit within %v; killed", g.ID, timeout)
			}
		}
		g.link.kill() // releases what holds the link (an ssh session) even after a clean exit
		if g.onClose != nil {
			g.onClose()
		}
	})
	return g.closeErr
}

type pipeRWC struct {
	r *os.File
	w *os.File
}

// SetReadDeadline lets the channel session's receivers read the pipe themselves.
func (p *pipeRWC) SetReadDeadline(t time.Time) error { return p.r.SetReadDeadline(t) }

func (p *pipeRWC) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeRWC) Write(b []byte) (int, error) { return p.w.Write(b) }

// CloseWrite ends the process's input and keeps its output open.
func (p *pipeRWC) CloseWrite() error { return p.w.Close() }

func (p *pipeRWC) Close() error {
	err := p.w.Close()
	p.r.Close()
	return err
}

// Connect makes a gateway of a stream that already reaches a worker (an in-process one
// over net.Pipe, say): the channel handshake and Info, no process and no bootstrap.
// Closing the gateway closes rwc.
func Connect(ctx context.Context, id string, spec *xspec.Spec, rwc io.ReadWriteCloser, opts Options) (*Gateway, error) {
	done := make(chan struct{})
	var once sync.Once
	l := &link{
		rwc:    rwc,
		stderr: tail.New(1),
		done:   done,
		kill: func() {
			once.Do(func() {
				rwc.Close()
				close(done)
			})
		},
	}
	g, err := connect(ctx, id, spec, opts, l, nil)
	if err != nil {
		return nil, err
	}
	go func() {
		<-g.Done() // the session's end is the link's: nothing else holds it
		l.kill()
	}()
	return g, nil
}
