package dockertest

import (
	"os/exec"
	"strings"
	"testing"
)

// An image holds busybox and its applets; a container of it runs, docker exec reaches its
// shell, and when the test that made them ends, both are gone.
func TestImageAndContainers(t *testing.T) {
	Require(t)
	var im *Image
	t.Run("use", func(t *testing.T) {
		im = NewImage(t, ImageOptions{})
		a, b := im.Start(t), im.Start(t)
		if a.ID == b.ID {
			t.Fatalf("two containers, one id %s", a.ID)
		}
		out, err := exec.Command("docker", "exec", "-i", a.ID, "sh", "-c", "uname -sm; cat /etc/godist-dockertest; ls -ld /tmp").CombinedOutput()
		if err != nil {
			t.Fatalf("docker exec: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "Linux ") || lines[1] != im.Ref || !strings.HasPrefix(lines[2], "drwxrwxrwt") {
			t.Errorf("in the container:\n%s", out)
		}
		if got := im.Containers(t); len(got) != 2 {
			t.Errorf("the image has containers %v, want the two started", got)
		}
		if l := Docker(t, "inspect", "--format", "{{index .Config.Labels \""+LabelKey+"\"}}", a.ID); l != im.Ref {
			t.Errorf("label %s=%q, want %q", LabelKey, l, im.Ref)
		}
	})
	if out, err := exec.Command("docker", "ps", "--all", "--quiet", "--filter", "label="+LabelKey+"="+im.Ref).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("containers left after the test: %q %v", out, err)
	}
	if out, err := exec.Command("docker", "image", "inspect", im.ID).CombinedOutput(); err == nil {
		t.Errorf("image %s left after the test:\n%.200s", im.Ref, out)
	}
}

// An image without applets has no shell: what a docker= gateway must report, not hang on.
func TestImageWithoutShell(t *testing.T) {
	Require(t)
	im := NewImage(t, ImageOptions{Applets: []string{}})
	out, err := exec.Command("docker", "run", "--rm", "--network", "none", im.ID, "sh").CombinedOutput()
	if err == nil {
		t.Fatalf("sh ran in an image without it:\n%s", out)
	}
}
