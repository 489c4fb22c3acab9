package serve

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/tail"
	"github.com/godist/godist/proto"
)

// The environment names that set up the worker rather than go into its environment (the
// socket= side of them is gateway's; both come from proto).
const (
	EnvChdir = proto.EnvServeChdir
	EnvNice  = proto.EnvServeNice
)

// WorkerCommands are the exec commands a session may run; both start a worker.
var WorkerCommands = []string{"godist worker", "worker"}

// Limits on what one session may set with env requests.
const (
	maxEnvVars  = 256
	maxEnvBytes = 256 << 10
)

// session is one session channel and, once exec'd, its worker.
type session struct {
	c      *conn
	ch     ssh.Channel
	prefix string

	env      []string
	envBytes int
	chdir    string
	nice     int
	hasNice  bool
	envErr   string // the first env request refused, said to the client at exec
	started  bool
}

func (ss *session) logf(format string, args ...any) {
	ss.c.logf("%s: %s", ss.prefix, fmt.Sprintf(format, args...))
}

// serveSession answers a session's requests — env, then one exec of a worker — and runs
// the worker until it is gone.
func (c *conn) serveSession(nch ssh.NewChannel, n int) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	ss := &session{c: c, ch: ch, prefix: fmt.Sprintf("session %d", n)}
	var wg sync.WaitGroup
	for req := range reqs {
		ok, start := false, false
		switch req.Type {
		case "env":
			ok = !ss.started && ss.setenv(req.Payload)
		case "exec":
			var p struct{ Command string }
			switch {
			case ss.started:
				c.refused("%s: refused a second exec", ss.prefix)
			case ssh.Unmarshal(req.Payload, &p) != nil:
				c.refused("%s: refused a malformed exec request", ss.prefix)
			case !contains(WorkerCommands, p.Command):
				c.refused("%s: refused exec %s: only %q runs here", ss.prefix, printable(p.Command), WorkerCommands[0])
				fmt.Fprintf(ch.Stderr(), "godist serve: refused %q: this server runs only %q (use --tx socket=HOST:PORT)\r\n", p.Command, WorkerCommands[0])
			default:
				ok, start = true, true
			}
		case "shell", "pty-req", "subsystem", "x11-req", "auth-agent-req@openssh.com", "signal", "break":
			c.refused("%s: refused %s request", ss.prefix, printable(req.Type))
			if req.Type == "shell" || req.Type == "subsystem" {
				fmt.Fprintf(ch.Stderr(), "godist serve: no %s here: this server runs only %q (use --tx socket=HOST:PORT)\r\n", req.Type, WorkerCommands[0])
			}
		default:
			// window-change, keepalive@openssh.com and the like need no log line.
		}
		if req.WantReply {
			req.Reply(ok, nil)
		}
		// Only after the reply: the worker's output, exit status and the channel's close
		// must not overtake it.
		if start {
			ss.started = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.recoverPanic()
				ss.run()
			}()
		}
	}
	// The channel is closed, by the client or with the connection; the worker's stdin has
	// reached its end.
	if !ss.started {
		ch.Close()
	}
	wg.Wait()
}

// setenv takes an env request.
func (ss *session) setenv(payload []byte) bool {
	var p struct{ Name, Value string }
	if err := ssh.Unmarshal(payload, &p); err != nil {
		ss.refuseEnv("a malformed env request")
		return false
	}
	if !validEnvName(p.Name) || strings.IndexByte(p.Value, 0) >= 0 {
		ss.refuseEnv(fmt.Sprintf("env %s: expected a name [A-Za-z_][A-Za-z0-9_]* and a value without NUL", printable(p.Name)))
		return false
	}
	ss.envBytes += len(p.Name) + len(p.Value) + 2
	if len(ss.env) >= maxEnvVars || ss.envBytes > maxEnvBytes {
		ss.refuseEnv(fmt.Sprintf("env %s: more than %d variables or %d bytes", p.Name, maxEnvVars, maxEnvBytes))
		return false
	}
	switch p.Name {
	case EnvChdir:
		if p.Value == "" {
			ss.refuseEnv(EnvChdir + ": empty")
			return false
		}
		ss.chdir = p.Value
	case EnvNice:
		n, err := strconv.Atoi(p.Value)
		if err != nil || n < -20 || n > 19 {
			ss.refuseEnv(fmt.Sprintf("%s=%s: expected -20..19", EnvNice, printable(p.Value)))
			return false
		}
		ss.nice, ss.hasNice = n, true
	default:
		ss.env = append(ss.env, p.Name+"="+p.Value)
	}
	return true
}

func (ss *session) refuseEnv(why string) {
	if ss.envErr == "" {
		ss.envErr = why
	}
	ss.c.refused("%s: refused %s", ss.prefix, why)
}

func validEnvName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// run starts the worker, joins its stdio to the channel, waits for it to be gone, sends its
// exit status and closes the channel.
func (ss *session) run() {
	ch := ss.ch
	defer ch.Close()
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		ss.logf("%s", msg)
		fmt.Fprintf(ch.Stderr(), "godist serve: %s\n", msg)
		sendExitStatus(ch, 1)
	}
	if ss.envErr != "" {
		// Logged when it was refused.
		fmt.Fprintf(ch.Stderr(), "godist serve: refused %s\n", ss.envErr)
		sendExitStatus(ch, 1)
		return
	}
	s := ss.c.s
	dir := s.dir
	if ss.chdir != "" {
		dir = ss.chdir
		if !filepath.IsAbs(dir) && s.dir != "" {
			dir = filepath.Join(s.dir, dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fail("%s: %v", EnvChdir, err)
			return
		}
	}
	argv := append([]string(nil), s.worker...)
	if ss.hasNice {
		argv = append(argv, "--nice", strconv.Itoa(ss.nice))
	}
	w, err := startWorker(argv, dir, append(append([]string(nil), s.env...), ss.env...))
	if err != nil {
		fail("starting the worker: %v", err)
		return
	}
	ss.logf("worker pid %d started in %s", w.pid, dir)
	start := time.Now()

	var copies sync.WaitGroup
	copies.Add(2)
	go func() {
		defer copies.Done()
		if _, err := io.Copy(ch, w.stdout); err != nil {
			// The client is gone: keep the worker from blocking on a full pipe while it
			// winds down.
			io.Copy(io.Discard, w.stdout)
		}
	}()
	stderrTail := tail.New(512)
	go func() {
		defer copies.Done()
		if _, err := io.Copy(io.MultiWriter(stderrTail, ch.Stderr()), w.stderr); err != nil {
			io.Copy(stderrTail, w.stderr)
		}
	}()
	// The end of the session's input is the end of the worker's: it then exits, killing
	// its test processes; if it has not after KillAfter, its process group is killed.
	ss.c.wg.Add(1)
	go func() {
		defer ss.c.wg.Done()
		io.Copy(w.stdin, ch)
		w.stdin.Close()
		select {
		case <-w.exited:
		case <-time.After(s.cfg.KillAfter):
			if w.kill() {
				ss.logf("worker pid %d still there %v after its session ended; killed", w.pid, s.cfg.KillAfter)
			}
		}
	}()

	<-w.exited
	// The last output may still be in the pipes; a process of the worker's that holds
	// them open (it should not) does not keep the session open long.
	outDone := make(chan struct{})
	go func() {
		copies.Wait()
		close(outDone)
	}()
	select {
	case <-outDone:
	case <-time.After(2 * time.Second):
		w.stdout.Close()
		w.stderr.Close()
		<-outDone
	}
	w.stdout.Close()
	w.stderr.Close()
	took := time.Since(start).Round(time.Millisecond)
	st := w.state
	if st == nil {
		ss.logf("worker pid %d: %v", w.pid, w.waitErr)
		sendExitStatus(ch, 255)
	} else if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		name := signalName(ws.Signal())
		ss.logf("worker pid %d killed by SIG%s after %v", w.pid, name, took)
		ch.SendRequest("exit-signal", false, ssh.Marshal(&struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: name, CoreDumped: ws.CoreDump()}))
	} else {
		why := ""
		if st.ExitCode() != 0 {
			if l := stderrTail.LastLine(); l != "" {
				why = ": " + printable(l)
			}
		}
		ss.logf("worker pid %d exited with status %d after %v%s", w.pid, st.ExitCode(), took, why)
		sendExitStatus(ch, st.ExitCode())
	}
	ch.CloseWrite()
}

func sendExitStatus(ch ssh.Channel, code int) {
	ch.SendRequest("exit-status", false, ssh.Marshal(&struct{ Status uint32 }{uint32(code)}))
}

// worker is a running worker process, the leader of its own process group.
type worker struct {
	pid    int
	stdin  *os.File // write end
	stdout *os.File // read end
	stderr *os.File // read end
	exited chan struct{}
	// state (nil if waiting failed) and waitErr are set before exited is closed.
	state   *os.ProcessState
	waitErr error

	proc *child.Process
}

// startWorker starts argv in dir with env, in a process group of its own, killed if the
// server dies (on Linux; elsewhere the worker's stdin ends then, and it exits).
func startWorker(argv []string, dir string, env []string) (*worker, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	// Pipes of our own: cmd.Wait would otherwise wait for every holder of stdout and
	// stderr, and close them before the last output is read.
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	p, err := child.Start(cmd)
	if err != nil {
		closeAll()
		return nil, err
	}
	inR.Close()
	outW.Close()
	errW.Close()
	w := &worker{pid: p.Pid(), stdin: inW, stdout: outR, stderr: errR, exited: make(chan struct{}), proc: p}
	go func() {
		err := p.Wait(nil)
		w.state, w.waitErr = cmd.ProcessState, err
		close(w.exited)
	}()
	return w, nil
}

// kill kills the worker's process group unless the worker has been reaped (its pid may be
// someone else's then). It reports whether it sent the signal.
func (w *worker) kill() bool { return w.proc.Kill() }
