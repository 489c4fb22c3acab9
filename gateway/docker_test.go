package gateway

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godist/godist/internal/dockertest"
	"github.com/godist/godist/xspec"
)

func TestDockerRunArgv(t *testing.T) {
	s, err := xspec.Parse("docker=img:1//network=host")
	if err != nil {
		t.Fatal(err)
	}
	got := dockerRunArgv("/usr/bin/docker", "gw3", s, "sha256:abc", "godist-gw3-x", "godist-x", []string{"A=1", "GODIST_TESTRUNUID=u1"})
	want := []string{"/usr/bin/docker", "run", "--rm", "-i", "--network", "host", "--log-driver", "none", "--name", "godist-gw3-x", "--hostname", "godist-x",
		"--label", "godist.gateway=gw3", "--label", "godist.testrunuid=u1", "--", "sha256:abc", "sh"}
	if !slices.Equal(got, want) {
		t.Errorf("argv\n got %q\nwant %q", got, want)
	}
	// A hostname of its own, whatever the network: with network=host docker would give
	// each container this machine's, and godist would take them all for one host (and
	// ship the tree to one of them only).
	if name, host := containerName("gw3"); !regexp.MustCompile(`^godist-gw3-[0-9a-f]{16}$`).MatchString(name) || host != "godist-"+name[len(name)-16:] {
		t.Errorf("containerName: %q, %q", name, host)
	}
	if a, _ := containerName("gw3"); a == func() string { b, _ := containerName("gw3"); return b }() {
		t.Errorf("two names alike: %q", a)
	}
	s, _ = xspec.Parse("docker=img")
	if got := dockerRunArgv("docker", "", s, "i", "c", "h", nil); !slices.Contains(got, "none") || slices.Contains(got, "--label") {
		t.Errorf("default network none, no labels without an id: %q", got)
	}
}

// startDockerT starts spec as gateway gw0 and returns Start's error, failing the test if
// the start took longer than within (it hung) or succeeded.
func startDockerT(t *testing.T, spec string, within time.Duration) error {
	t.Helper()
	s, err := xspec.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	g, err := Start(ctx, "gw0", s, Options{Binaries: testBinaries(t), BootstrapTimeout: within / 2})
	if g != nil {
		g.Close()
		t.Fatalf("%s started", spec)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s: Start still there after %v (hung): %v", spec, within, err)
	}
	var se *StartError
	if !errors.As(err, &se) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("%s: error %T %q, want a one-line *StartError", spec, err, err)
	}
	t.Logf("%s", err)
	return err
}

// A docker= gateway that cannot start says why in one line, in docker's words where docker
// said something: no client, no engine, no image, no shell in the image.
func TestDockerStartErrors(t *testing.T) {
	t.Run("no client", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		err := startDockerT(t, "docker=busybox", 10*time.Second)
		if !errors.Is(err, ErrNoDockerClient) || err.Error() != `gateway gw0 (docker=busybox): docker: docker=IMAGE needs the docker client, and there is no "docker" in PATH` {
			t.Errorf("got %q", err)
		}
	})
	dockertest.Require(t)
	t.Run("no engine", func(t *testing.T) {
		sock := t.TempDir() + "/docker.sock"
		t.Setenv("DOCKER_HOST", "unix://"+sock)
		for _, pull := range []string{"", "//pull=never"} {
			err := startDockerT(t, "docker=busybox"+pull, 20*time.Second)
			if !strings.Contains(err.Error(), "Cannot connect to the Docker daemon at unix://"+sock) {
				t.Errorf("got %q", err)
			}
		}
	})
	im := dockertest.NewImage(t, dockertest.ImageOptions{Applets: []string{}})
	t.Run("no image", func(t *testing.T) {
		ref := strings.Replace(im.Ref, ":latest", ":missing", 1)
		err := startDockerT(t, "docker="+ref+"//pull=never", 20*time.Second)
		want := "gateway gw0 (docker=" + ref + "//pull=never): docker image inspect " + ref + " (pull=never): "
		if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "No such image") {
			t.Errorf("got  %q\nwant %q...No such image...", err, want)
		}
	})
	t.Run("no shell", func(t *testing.T) {
		err := startDockerT(t, "docker="+im.Ref, 20*time.Second)
		var de *DockerError
		if !errors.As(err, &de) || de.Command != "docker run" || !strings.Contains(err.Error(), `"sh"`) {
			t.Errorf("got %q", err)
		}
	})
	if left := im.Containers(t); len(left) > 0 {
		t.Errorf("failed starts left containers %v", left)
	}
}

// A container whose docker client is killed (the master gave up on it) is removed before
// the kill returns: docker rm -f by the name godist gave it.
func TestDockerKilledClientRemovesContainer(t *testing.T) {
	dockertest.Require(t)
	im := dockertest.NewImage(t, dockertest.ImageOptions{})
	s, err := xspec.Parse("docker=" + im.Ref)
	if err != nil {
		t.Fatal(err)
	}
	p, err := startContainer(context.Background(), "gw0", s, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The shell answers: the container runs.
	if _, err := p.link.rwc.Write([]byte("echo up\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := p.link.rwc.Read(buf); err != nil || string(buf) != "up\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	ids := im.Containers(t)
	if len(ids) != 1 {
		t.Fatalf("%d containers of the image, want 1", len(ids))
	}
	if name := dockertest.Docker(t, "inspect", "--format", "{{.Name}}", ids[0]); !regexp.MustCompile(`^/godist-gw0-[0-9a-f]{16}$`).MatchString(name) {
		t.Errorf("container name %q, want godist-gw0-RANDOM", name)
	}
	p.link.kill()
	if p.waitErr == nil {
		t.Fatalf("the docker client exited 0 when killed")
	}
	if left := im.Containers(t); len(left) > 0 {
		t.Errorf("container %v still there after the kill", left)
	}
}

// An engine that takes the connection and never answers costs the bootstrap timeout, not
// a hang: a unix socket that accepts and stays silent stands for a stuck daemon.
func TestDockerEngineSilent(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker client")
	}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	for _, pull := range []string{"//pull=never", ""} { // no pull after an inspect that got no answer
		s, _ := xspec.Parse("docker=busybox" + pull)
		start := time.Now()
		_, err = Start(context.Background(), "gw0", s, Options{Binaries: testBinaries(t), BootstrapTimeout: time.Second})
		took := time.Since(start)
		want := "gateway gw0 (docker=busybox" + pull + "): docker image inspect busybox" + strings.ReplaceAll(pull, "//pull=never", " (pull=never)") + ": no answer within 1s (is the docker daemon running?)"
		if err == nil || err.Error() != want {
			t.Errorf("got  %v\nwant %s", err, want)
		}
		if took > 10*time.Second {
			t.Errorf("took %v with a 1s timeout", took)
		}
	}
}

// Only docker's own "no such container" ends the wait for a container to go: any other
// failure of an inspect (a client that failed, an engine slow to answer) is asked again.
func TestNoSuchContainerIsDockersAnswerOnly(t *testing.T) {
	for msg, gone := range map[string]bool{
		"No such container: godist-gw1-0123456789abcdef":       true,
		"No such object: godist-gw1-0123456789abcdef":          true,
		"no answer within 30s (is the docker daemon running?)": false,
		"signal: killed": false,
		"":               false,
	} {
		if noSuchContainer(msg) != gone {
			t.Errorf("noSuchContainer(%q) = %v, want %v", msg, !gone, gone)
		}
	}
}
