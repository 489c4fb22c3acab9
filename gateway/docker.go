package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/tail"
	"github.com/godist/godist/xspec"
)

// docker=IMAGE: each gateway is a container of its own, started by the docker client on
// this machine (or on a hop's, with via=) from IMAGE:
//
//	docker run --rm -i --network none --log-driver none --name godist-ID-RANDOM \
//	    --hostname godist-RANDOM --label godist.gateway=ID IMAGEID sh
//
// and bootstrapped exactly as exec= is (bootstrap.go): the container needs only a POSIX sh.
// The container's one process is that shell, then the worker it execs, reading the
// master's pipe through docker's attach: when the master goes — it closes the session, is
// interrupted, or is SIGKILLed, which kills the docker client with it (package child) — the
// engine closes the container's stdin, the worker sees its stream end and exits (killing
// its test processes, as every worker does), the container stops, and --rm has the engine
// remove it. The gateway's teardown returns only once the container is gone: it asks the
// engine (docker inspect, by the container's name, which godist chose), and when the
// container is still there and not being removed — its client was killed, or broke off
// when the master closed its output — removes it (docker rm -f).
//
// Before the run, `docker image inspect` resolves IMAGE to its id (pulling it first as
// pull= says), so the container runs the very image inspected, and a missing client, a
// daemon that does not answer or a missing image is one line naming it, not a bootstrap
// that found no shell.

// Docker's defaults for docker= specs without network= and pull=.
const (
	DefaultDockerNetwork = "none"
	DefaultDockerPull    = xspec.PullMissing
)

// DefaultPullTimeout bounds a docker pull of a docker= image. Other docker commands (the
// image's inspection, a container's removal) are bounded by the bootstrap timeout.
const DefaultPullTimeout = 10 * time.Minute

// ErrNoDockerClient is the cause of a docker= gateway's start on a machine without a
// docker client in PATH.
var ErrNoDockerClient = errors.New("gateway: no docker client")

// DockerError is a docker= gateway whose container could not be started: no docker client,
// an engine that does not answer, an image that is not there or cannot be pulled, or a
// docker run that failed. Msg is one line, docker's own words where it said any.
type DockerError struct {
	Command string // what failed: "docker", "docker image inspect IMAGE", "docker pull IMAGE", "docker run"
	Msg     string
	Err     error // ErrNoDockerClient, or what running the command returned
}

// Error is one line: "COMMAND: MSG".
func (e *DockerError) Error() string { return e.Command + ": " + e.Msg }
func (e *DockerError) Unwrap() error { return e.Err }

// startDocker starts spec's container and bootstraps the worker in it.
func startDocker(ctx context.Context, id string, spec *xspec.Spec, opts Options) (*Gateway, error) {
	p, err := startContainer(ctx, id, spec, opts.Env, opts.BootstrapTimeout)
	if err != nil {
		return nil, err
	}
	g, err := connect(ctx, id, spec, opts, p.link, &bootstrapConfig{binaries: opts.Binaries})
	if err != nil {
		// connect has killed the link: the docker client is reaped, its exit status known.
		if derr := dockerRunError(p); derr != nil {
			return nil, derr
		}
		return nil, err
	}
	return g, nil
}

// startContainer resolves spec's image and starts `docker run` for gateway id, whose
// stdin and stdout reach the shell in the new container. The link's kill also makes sure
// the container is gone (see above). env is the worker's environment; only its
// GODIST_TESTRUNUID is used, as a label. timeout bounds each short docker command (0 =
// DefaultBootstrapTimeout).
func startContainer(ctx context.Context, id string, spec *xspec.Spec, env []string, timeout time.Duration) (*process, error) {
	if timeout <= 0 {
		timeout = DefaultBootstrapTimeout
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		return nil, &DockerError{Command: "docker", Msg: `docker=IMAGE needs the docker client, and there is no "docker" in PATH`, Err: ErrNoDockerClient}
	}
	image, err := dockerImage(ctx, docker, spec, timeout)
	if err != nil {
		return nil, err
	}
	name, hostname := containerName(id)
	p, err := startProcess(dockerRunArgv(docker, id, spec, image, name, hostname, env), "", os.Environ(), "docker run")
	if err != nil {
		return nil, err
	}
	kill := p.link.kill
	var once sync.Once
	p.link.kill = func() {
		kill()
		// By its name: a client killed before it heard the container's id (or before
		// the engine made it) leaves no container the name does not find.
		once.Do(func() { removeContainer(docker, name, timeout) })
	}
	return p, nil
}

// containerName is a name for a container of gateway id that no other container has,
// godist-ID-RANDOM, and its hostname, godist-RANDOM: a hostname of its own, as godist
// takes gateways with one hostname (and cache directory) for one host, sharing files.
// Docker would give every container of network=host this machine's.
func containerName(id string) (name, hostname string) {
	var b [8]byte
	rand.Read(b[:])
	r := hex.EncodeToString(b[:])
	if id == "" {
		return "godist-" + r, "godist-" + r
	}
	return "godist-" + id + "-" + r, "godist-" + r
}

// dockerRunArgv is the docker client's command line that starts gateway id's container,
// named name, with hostname, from image (an image id).
func dockerRunArgv(docker, id string, spec *xspec.Spec, image, name, hostname string, env []string) []string {
	network := spec.Network
	if network == "" {
		network = DefaultDockerNetwork
	}
	argv := []string{docker, "run", "--rm", "-i", "--network", network,
		// The container's output is the worker's channel stream: no use logging it.
		"--log-driver", "none",
		"--name", name, "--hostname", hostname}
	if id != "" {
		argv = append(argv, "--label", "godist.gateway="+id)
	}
	for _, kv := range env {
		if uid, ok := strings.CutPrefix(kv, "GODIST_TESTRUNUID="); ok {
			argv = append(argv, "--label", "godist.testrunuid="+uid)
		}
	}
	return append(argv, "--", image, "sh")
}

// dockerImage resolves spec's IMAGE to the id of an image the engine has, pulling it as
// spec's pull= says.
func dockerImage(ctx context.Context, docker string, spec *xspec.Spec, timeout time.Duration) (string, error) {
	pull := spec.Pull
	if pull == "" {
		pull = DefaultDockerPull
	}
	inspect := func() (string, error) {
		out, msg, err := runDocker(ctx, timeout, docker, "image", "inspect", "--format", "{{.Id}}", "--", spec.Target)
		if err == nil && out == "" {
			err, msg = errors.New("no id"), "docker gave no image id"
		}
		if err != nil {
			cmd := "docker image inspect " + spec.Target
			if pull == xspec.PullNever {
				cmd += " (pull=never)"
			}
			return "", &DockerError{Command: cmd, Msg: msg, Err: err}
		}
		return out, nil
	}
	if pull != xspec.PullAlways {
		id, err := inspect()
		if err == nil || pull == xspec.PullNever || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return id, err // a stuck engine would not answer a pull either
		}
		// Not there (or no engine at all, which the pull will say too).
	}
	if _, msg, err := runDocker(ctx, DefaultPullTimeout, docker, "pull", "--quiet", "--", spec.Target); err != nil {
		return "", &DockerError{Command: "docker pull " + spec.Target, Msg: msg, Err: err}
	}
	return inspect()
}

// removeContainer returns once container ctr (a name or id) is gone, or after timeout:
// the engine may be removing it already (--rm, once its process ended), or it is there
// still (its docker client was killed, or broke off when its output was closed), and then
// docker rm -f removes it. It polls docker inspect: one call when the container is gone.
// Only docker's "no such container" counts as gone; any other failure of an inspect is
// asked again.
func removeContainer(docker, ctr string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	removed := false
	for {
		status, msg, err := runDocker(context.Background(), timeout, docker, "container", "inspect", "--format", "{{.State.Status}}", "--", ctr)
		if err != nil && noSuchContainer(msg) {
			return // gone
		}
		if time.Now().After(deadline) {
			return
		}
		if err != nil {
			// Not an answer about the container (the client or the engine failed this
			// once, under load): asked again, until deadline.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if status != "removing" && !removed {
			runDocker(context.Background(), timeout, docker, "rm", "--force", "--", ctr)
			removed = true
			continue
		}
		time.Sleep(20 * time.Millisecond) // polling the engine, bounded by deadline
	}
}

// noSuchContainer reports whether msg, docker's one-line reason (runDocker), says that
// the container is not there.
func noSuchContainer(msg string) bool {
	return strings.Contains(msg, "No such container") || strings.Contains(msg, "No such object")
}

// runDocker runs the docker client with args, within timeout, and returns its output
// trimmed and, if it failed, a one-line message: docker's first line on stderr (without
// its "Error response from daemon:" and the like), or how it ended.
func runDocker(ctx context.Context, timeout time.Duration, docker string, args ...string) (out, msg string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(docker, args...)
	var stdout bytes.Buffer
	stderr := tail.New(8 << 10)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	p, err := child.Start(cmd)
	if err != nil {
		return "", err.Error(), err
	}
	stop := context.AfterFunc(ctx, func() { p.Kill() })
	err = p.Wait(nil)
	stop()
	out = strings.TrimSpace(stdout.String())
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return out, fmt.Sprintf("no answer within %v (is the docker daemon running?)", timeout), ctx.Err()
	case ctx.Err() != nil:
		return out, ctx.Err().Error(), ctx.Err()
	case err != nil:
		if m := dockerSaid(stderr.Bytes(), ""); m != "" {
			return out, m, err
		}
		return out, err.Error(), err
	}
	return out, "", nil
}

// dockerRunError is the docker client's own failure to start the container (exit status
// 125: docker's error; 126, 127: the container's sh could not be run), nil if the client
// did not fail so (the container ran, and the bootstrap's error says what went wrong).
func dockerRunError(p *process) error {
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) {
		return nil
	}
	switch ee.ExitCode() {
	case 125, 126, 127:
	default:
		return nil
	}
	m := dockerSaid(p.link.stderr.Bytes(), "docker: ")
	if m == "" {
		return nil
	}
	return &DockerError{Command: "docker run", Msg: m, Err: p.waitErr}
}

// dockerSaid is the first line of docker's stderr that starts with prefix ("" = any
// non-empty line), without prefix and the "Error response from daemon: " before docker's
// reason, shown as printable; "" if there is none.
func dockerSaid(stderr []byte, prefix string) string {
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		m, ok := strings.CutPrefix(line, prefix)
		if !ok || m == "" {
			continue
		}
		for _, p := range []string{"Error response from daemon: ", "Error: "} {
			m = strings.TrimPrefix(m, p)
		}
		return printable(m)
	}
	return ""
}
