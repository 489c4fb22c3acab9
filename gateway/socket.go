package gateway

// The client side of socket= gateways: a `godist serve` at HOST:PORT speaks the SSH
// protocol, so socket= goes through the same connection pool, authentication and host key
// checks as ssh=, and asks for `godist worker` instead of a shell: the server runs its own
// godist binary, so there is no bootstrap. The spec's chdir=, nice= and env: keys, and the
// worker environment of the gateway, travel as "env" requests (the serve package documents
// the GODIST_SERVE_* names it takes for itself).

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/godist/godist/proto"
	"github.com/godist/godist/xspec"
)

// socketCommand is what a socket= gateway asks the server to run.
const socketCommand = "godist worker"

// startSocket opens a worker session on the godist serve of spec through the pool.
func startSocket(ctx context.Context, id string, spec *xspec.Spec, opts Options, pool *sshPool) (*Gateway, error) {
	sh, err := pool.openSocket(ctx, spec, socketEnv(spec, opts.Env))
	if err != nil {
		return nil, err
	}
	l := shellLink(sh, "remote worker")
	g, err := connect(ctx, id, spec, opts, l, nil)
	if err != nil {
		if why := serveRefusal(spec, l); why != "" {
			return nil, &refusedError{why: why, err: err}
		}
		return nil, err
	}
	return g, nil
}

// serveRefusal is why the server did not start the worker, "" if it did or did not say:
// godist serve writes "godist serve: REASON" to the session's stderr and ends it (see
// serve/session.go). A chdir= it could not make becomes "chdir DIR: REASON".
func serveRefusal(spec *xspec.Spec, l *link) string {
	select {
	case <-l.done:
	default:
		return ""
	}
	why, ok := strings.CutPrefix(l.stderr.LastLine(), "godist serve: ")
	if !ok {
		return ""
	}
	if r, ok := strings.CutPrefix(why, proto.EnvServeChdir+": "); ok {
		return "chdir " + spec.Chdir + ": " + r
	}
	return "godist serve: " + why
}

// refusedError is a start the far side refused, with its reason.
type refusedError struct {
	why string
	err error // what the master saw of it (a handshake with no peer)
}

func (e *refusedError) Error() string { return e.why }
func (e *refusedError) Unwrap() error { return e.err }

// socketEnv is what a socket= worker is told with env requests: its working directory and
// niceness, the spec's env: keys, then env.
func socketEnv(spec *xspec.Spec, env []string) []string {
	var out []string
	if spec.Chdir != "" {
		out = append(out, proto.EnvServeChdir+"="+spec.Chdir)
	}
	if spec.HasNice {
		out = append(out, proto.EnvServeNice+"="+strconv.Itoa(spec.Nice))
	}
	out = append(out, spec.EnvList()...)
	return append(out, env...)
}

// openSocket opens a session on the godist serve of s that runs a worker, with env sent
// first. The shell's Read and Write are the worker's stdout and stdin.
func (p *sshPool) openSocket(ctx context.Context, s *xspec.Spec, env []string) (*sshShell, error) {
	if s.Type != xspec.TypeSocket {
		return nil, fmt.Errorf("socket: spec %q is not a socket= spec", s.Raw)
	}
	if err := p.cfg.validate(); err != nil {
		return nil, err
	}
	res, err := resolveSocketWith(p.getenv, s.Host, s.Port)
	if err != nil {
		return nil, err
	}
	return p.open(ctx, res, socketCommand, env)
}

// resolveSocketWith is the connection to a socket= HOST:PORT. It reads $HOME/.ssh/config
// as ssh= does, for what says how to log in and how to check the host key — User,
// IdentityFile, IdentitiesOnly, UserKnownHostsFile, GlobalKnownHostsFile,
// StrictHostKeyChecking, ConnectTimeout, from the Host blocks HOST matches (Host * among
// them) — but not for where to connect: a socket= spec names the address itself, so
// HostName, Port and ProxyJump are not used.
func resolveSocketWith(getenv func(string) string, host string, port int) (*sshConfigResolved, error) {
	res, err := resolveSSHWith(getenv, host, "", port)
	if err != nil {
		return nil, err
	}
	res.Alias = host
	res.HostName = host
	res.Port = port
	res.ProxyJump = ""
	res.Serve = true
	return res, nil
}
