// Package dockertest gives tests a real docker engine to work with: an image made for the
// test from a static busybox (nothing but /bin/busybox, its applets, /tmp), imported under
// a tag unique to the test and removed at its end, and containers started from it,
// labelled for the test and removed at its end.
//
// Tests touch only what they made: the image by its id, containers by the ids docker gave
// them or by the image they came from (Image.Containers). Nothing is matched by name
// patterns, and other users' containers on the same engine are never looked at.
//
// A test that needs docker calls Require: without a docker client, or with an engine that
// does not answer, the test is skipped, unless GODIST_REQUIRE_SSHD is set (CI, .ci/run,
// whose `make deps` installs docker.io and starts dockerd): then it fails.
package dockertest

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/sshdtest"
)

// RequireEnv is the environment variable that turns a missing docker into a test failure.
const RequireEnv = sshdtest.RequireEnv

// LabelKey is the label every container started by Image.Start carries, with the image's
// Ref as its value.
const LabelKey = "godist.dockertest"

// commandTimeout bounds each docker command of the helpers; startTimeout how long a
// started container may take to be running.
const (
	commandTimeout = 60 * time.Second
	startTimeout   = 60 * time.Second
)

// Available reports whether a docker client is in PATH and its engine answers, and if not
// why.
func Available() (bool, string) {
	if _, err := exec.LookPath("docker"); err != nil {
		return false, "no docker client in PATH"
	}
	out, err := docker(15*time.Second, "version", "--format", "{{.Server.Version}}")
	if err != nil {
		return false, "the docker engine does not answer: " + err.Error()
	}
	if out == "" {
		return false, "the docker engine gave no version"
	}
	return true, ""
}

var (
	availOnce sync.Once
	availOK   bool
	availWhy  string
)

// Require skips the test when docker is not available (asked once per test binary), or
// fails it when RequireEnv is set.
func Require(t testing.TB) {
	t.Helper()
	availOnce.Do(func() { availOK, availWhy = Available() })
	if availOK {
		return
	}
	sshdtest.Unavailable(t, "dockertest", availWhy)
}

// ImageOptions say what goes into an image.
type ImageOptions struct {
	// Applets are the busybox applets linked in /bin; nil means sshdtest.DefaultApplets
	// (a shell and what a bootstrap may reasonably expect). An empty, non-nil list gives
	// an image without even a shell.
	Applets []string
}

// Image is an image imported for one test.
type Image struct {
	Ref string // "godist-dockertest-HEX:latest", unique to the test
	ID  string // "sha256:..."
}

// NewImage imports a busybox image for t, removed (with every container of it still
// there) when t ends. Call Require first.
func NewImage(t testing.TB, opts ImageOptions) *Image {
	t.Helper()
	applets := opts.Applets
	if applets == nil {
		applets = sshdtest.DefaultApplets
	}
	busybox, err := sshdtest.StaticBusybox()
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	var r [8]byte
	rand.Read(r[:])
	ref := "godist-dockertest-" + hex.EncodeToString(r[:]) + ":latest"
	rootfs := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := writeRootfs(rootfs, busybox, applets, ref); err != nil {
		t.Fatalf("dockertest: making the image's root file system: %v", err)
	}
	out, err := docker(commandTimeout, "import", "--change", "ENV PATH=/bin", "--", rootfs, ref)
	if err != nil {
		t.Fatalf("dockertest: docker import: %v", err)
	}
	im := &Image{Ref: ref, ID: strings.TrimSpace(out)}
	t.Cleanup(func() {
		// Containers first: an image in use cannot go.
		for _, id := range im.containers() {
			if _, err := docker(commandTimeout, "rm", "--force", "--", id); err != nil {
				t.Errorf("dockertest: removing container %s of %s: %v", id, ref, err)
			}
		}
		if _, err := docker(commandTimeout, "image", "rm", "--force", "--", im.ID); err != nil {
			t.Errorf("dockertest: removing image %s: %v", ref, err)
		}
	})
	return im
}

// writeRootfs writes the tar of the image's root: /bin/busybox, /bin/APPLET -> busybox,
// /tmp (1777), and /etc/godist-dockertest holding ref (so that each image is unlike every
// other, and its id unique).
func writeRootfs(path, busybox string, applets []string, ref string) error {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	now := time.Now()
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: now})
	}
	file := func(name string, mode int64, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, d := range []string{"bin/", "etc/", "root/"} {
		if err := dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := dir("tmp/", 0o1777); err != nil {
		return err
	}
	if err := file("bin/busybox", 0o755, bb); err != nil {
		return err
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return err
		}
	}
	if err := file("etc/godist-dockertest", 0o644, []byte(ref+"\n")); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// Containers are the ids of every container of the image, running or not.
func (im *Image) Containers(t testing.TB) []string {
	t.Helper()
	out, err := docker(commandTimeout, "ps", "--all", "--quiet", "--no-trunc", "--filter", "ancestor="+im.ID)
	if err != nil {
		t.Fatalf("dockertest: docker ps: %v", err)
	}
	return strings.Fields(out)
}

func (im *Image) containers() []string {
	out, _ := docker(commandTimeout, "ps", "--all", "--quiet", "--no-trunc", "--filter", "ancestor="+im.ID)
	return strings.Fields(out)
}

// Container is a running container of an Image.
type Container struct {
	ID string // the full id, as docker exec takes it
}

// Start starts a container of the image, labelled LabelKey=im.Ref, with --network none,
// whose one process (cat) reads a pipe this test process holds: when the test ends, or
// this process dies, the pipe ends, the container stops and the engine removes it (--rm).
// Start returns once the container runs; t's cleanup waits until it is gone.
func (im *Image) Start(t testing.TB) *Container {
	t.Helper()
	cidfile := filepath.Join(t.TempDir(), "cid")
	cmd := exec.Command("docker", "run", "--rm", "-i", "--network", "none", "--log-driver", "none",
		"--cidfile", cidfile, "--label", LabelKey+"="+im.Ref, "--", im.ID, "cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	p, err := child.Start(cmd)
	if err != nil {
		t.Fatalf("dockertest: docker run: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = p.Wait(nil)
		close(exited)
	}()
	var cid string
	deadline := time.Now().Add(startTimeout)
	for {
		if b, err := os.ReadFile(cidfile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			cid = string(bytes.TrimSpace(b))
			out, err := docker(commandTimeout, "inspect", "--format", "{{.State.Running}}", "--", cid)
			if err == nil && out == "true" {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("dockertest: docker run %s ended before its container ran: %v\n%s", im.Ref, waitErr, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			<-exited
			t.Fatalf("dockertest: the container of %s was not running after %v\n%s", im.Ref, startTimeout, stderr.String())
		}
	}
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(startTimeout):
			p.Kill()
			<-exited
			t.Errorf("dockertest: container %s did not end within %v of its input", cid, startTimeout)
		}
		if waitErr != nil {
			// The client exited 0 only once it saw the container removed; otherwise
			// make sure.
			docker(commandTimeout, "rm", "--force", "--", cid)
		}
	})
	return &Container{ID: cid}
}

// docker runs the docker client with args within timeout and returns its stdout, trimmed;
// its error carries the first line docker wrote to stderr.
func docker(timeout time.Duration, args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	p, err := child.Start(cmd)
	if err != nil {
		return "", err
	}
	t := time.AfterFunc(timeout, func() { p.Kill() })
	err = p.Wait(nil)
	timedOut := !t.Stop()
	if timedOut {
		return "", fmt.Errorf("docker %s: no answer within %v", strings.Join(args, " "), timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return "", fmt.Errorf("docker %s: %w: %s", args[0], err, msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Docker runs the docker client with args (for a test's own docker commands) and returns
// its stdout, trimmed.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := docker(commandTimeout, args...)
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	return out
}
