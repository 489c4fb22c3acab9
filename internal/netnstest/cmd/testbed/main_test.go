//go:build linux

package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/netnstest"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "testbed")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The command brings the testbed up, says how to reach it, and takes it down when its
// stdin ends, or on SIGTERM; nothing of it is left either way.
func TestUpAndDown(t *testing.T) {
	netnstest.Require(t)
	bin := build(t)
	for _, how := range []string{"stdin", "SIGTERM"} {
		t.Run(how, func(t *testing.T) {
			cmd := exec.Command(bin, "-hosts", "h1,h2/h1", "-rate", "100mbit")
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stdin.Close(); cmd.Wait() })
			vars := map[string]string{}
			var hosts []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() && sc.Text() != "READY" {
				k, v, _ := strings.Cut(sc.Text(), "=")
				v = strings.Trim(v, "'()")
				if k == "TB_HOSTS+" {
					hosts = append(hosts, v)
				}
				vars[k] = v
			}
			if vars["TB_ID"] == "" || vars["TB_CLIENT_NS"] != vars["TB_ID"]+"-c" || strings.Join(hosts, " ") != "h1 h2" || vars["TB_LINKS"] != "veth" {
				t.Fatalf("output %v %v; stderr %s", vars, hosts, stderr.Bytes())
			}
			id := vars["TB_ID"]
			if ns, _ := netnstest.ListNamespaces(id); len(ns) != 4 {
				t.Errorf("namespaces %v, want the client's, the switch's, h1's and h2's", ns)
			}
			if how == "stdin" {
				stdin.Close()
			} else {
				cmd.Process.Signal(syscall.SIGTERM)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("exit: %v; stderr %s", err, stderr.Bytes())
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("still up 30s after its %s ended", how)
			}
			if ns, _ := netnstest.ListNamespaces(id); len(ns) != 0 {
				t.Errorf("namespaces left: %v", ns)
			}
			for _, k := range []string{"TB_HOME_h1", "TB_HOME_h2"} {
				if _, err := os.Stat(vars[k]); !os.IsNotExist(err) {
					t.Errorf("%s %s still there", k, vars[k])
				}
			}
		})
	}
}

// Bad flags: one line, exit status 2, nothing made.
func TestBadFlags(t *testing.T) {
	bin := build(t)
	for _, args := range [][]string{{"-links", "fiber"}, {"-hosts", "h1,,h2"}, {"extra"}, {"-hosts", "H1"}} {
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		msg := strings.TrimSpace(stderr.String())
		if code != 2 || strings.Count(msg, "\n") > 0 || !strings.HasPrefix(msg, "testbed: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, msg)
		}
	}
}
