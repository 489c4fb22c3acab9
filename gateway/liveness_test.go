package gateway

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/proc"
	"github.com/godist/godist/xspec"
)

// startExecKeepalive starts an exec=sh gateway (bootstrapped with this test binary as the
// worker) whose liveness bound is bound.
func startExecKeepalive(t *testing.T, bound time.Duration) *Gateway {
	t.Helper()
	s, err := xspec.Parse("exec=sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Start(ctx, "gw0", s, Options{Binaries: testBinaries(t), Env: []string{workerEnv + "=1"}, Keepalive: bound})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// An idle exec= link is not lost: the liveness check's requests keep bytes coming.
func TestExecIdleLinkStaysUp(t *testing.T) {
	g := startExecKeepalive(t, time.Second)
	select {
	case <-g.Done():
		t.Fatalf("an idle, healthy exec= gateway was lost: %v", g.Err())
	case <-time.After(2500 * time.Millisecond):
	}
	var got string
	if err := callFn(t, g, "echo", "still there", &got); err != nil || got != "still there" {
		t.Fatalf("echo after 2.5s idle: %q, %v", got, err)
	}
}

// A frozen exec= link (its processes stopped: the command that carries it, or what it
// reaches) is found within the bound, and the gateway is lost saying why.
func TestExecFrozenLinkLostWithinBound(t *testing.T) {
	const bound = 1500 * time.Millisecond
	g := startExecKeepalive(t, bound)
	// This test is not parallel (t.Setenv): every process below this one is its link's.
	frozen := proc.Descendants(os.Getpid())
	if len(frozen) == 0 {
		t.Fatal("no process below the test: where is the exec= command?")
	}
	for _, pid := range frozen {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, pid := range frozen {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	stopped := time.Now()
	select {
	case <-g.Done():
	case <-time.After(bound + 3*time.Second):
		t.Fatalf("a frozen exec= link was not lost within %v", bound+3*time.Second)
	}
	if took := time.Since(stopped); took > bound+time.Second {
		t.Errorf("lost after %v, bound %v", took, bound)
	}
	if err := g.Err(); err == nil || !strings.Contains(err.Error(), "delivered nothing for") {
		t.Errorf("Err = %v, want it to say the link delivered nothing", err)
	}
	g.Close()
	for _, pid := range frozen {
		if proc.Alive(pid) {
			t.Errorf("process %d of the frozen link outlived its gateway", pid)
		}
	}
}
