//go:build linux

package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godist/godist/internal/sshdtest"
)

// One fault of each kind, each in a run of its own on one shared harness: two marked
// packages over local workers, ssh=, socket= and exec= gateways, with a 2 s keepalive.
// Every fault waits for tests to have started (marker files), never for a time. Each
// run must lose, double and get wrong nothing, end within its bound and leave no
// process behind (Result's counts, and its Problems say what went wrong).

const testKeepalive = 2 * time.Second

var (
	godistBin  string
	harnessMu  sync.Mutex
	harness    *Harness
	harnessErr error
)

func TestMain(m *testing.M) {
	if err := BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "godist-chaos-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	godistBin = filepath.Join(dir, "godist")
	build := exec.Command("go", "build", "-o", godistBin, "../../cmd/godist")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building godist: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	if harness != nil {
		harness.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// shared is the harness of this package's tests, set up by the first test that needs it.
func shared(t *testing.T) *Harness {
	t.Helper()
	sshdtest.Require(t)
	harnessMu.Lock()
	defer harnessMu.Unlock()
	if harness == nil && harnessErr == nil {
		fixtures, _ := filepath.Abs("../../fixtures")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		harness, harnessErr = Setup(ctx, Config{
			Godist: godistBin, Fixtures: fixtures, Work: filepath.Join(filepath.Dir(godistBin), "work"),
			Keepalive: testKeepalive, RunBound: 30 * time.Second,
			Packages: []string{"./m0", "./m1"},
			Gateways: []Link{LinkLocal, LinkSSH, LinkSocket, LinkExec},
		})
		if harnessErr == nil {
			// A run without faults, which must be clean too, records the durations by
			// which the next runs split the packages over the gateways.
			r := harness.Run(ctx, filepath.Join(harness.cfg.Work, "runs", "clean"), nil)
			if r.Bad() {
				harnessErr = fmt.Errorf("a run without faults: %s", strings.Join(r.Problems, "; "))
			}
		}
	}
	if harnessErr != nil {
		t.Fatalf("chaos harness: %v", harnessErr)
	}
	return harness
}

// runFault runs godist once over the gateways of links with f injected and fails t for
// anything the run found.
func runFault(t *testing.T, f Fault, links ...Link) *Result {
	t.Helper()
	h := shared(t)
	dir := filepath.Join(h.cfg.Work, "runs", t.Name())
	if len(links) == 0 {
		links = h.cfg.Gateways
	}
	r := h.RunOn(context.Background(), dir, links, []Fault{f})
	for _, n := range r.Notes {
		t.Log(n)
		if strings.Contains(n, ": missed (") {
			t.Errorf("the fault found nothing to hit: %s", n)
		}
	}
	for _, p := range r.Problems {
		t.Error(p)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "godist.log"))
			js, _ := os.ReadFile(filepath.Join(dir, "run.json"))
			t.Logf("godist's output:\n%s\n--jsonfile:\n%s", log, js)
		}
	})
	return r
}

// assertDetected checks that the link fault of r was found, within the bound.
func assertDetected(t *testing.T, r *Result) {
	t.Helper()
	if len(r.Detect) == 0 {
		t.Fatalf("no gateway of the faulted link was reported lost")
	}
	if d := r.Detect[0]; d > testKeepalive+time.Second {
		t.Errorf("found %v after the fault; the bound is %v", d, testKeepalive)
	}
}

// A local worker killed while its tests run: they run again elsewhere (runner/batch.go
// retries what a lost gateway held), nothing lost or doubled.
func TestChaosWorkerKilled(t *testing.T) {
	runFault(t, Fault{Kind: KillWorker, AfterMarks: 2, MarkFrom: LinkLocal}, LinkLocal, LinkSocket)
}

// A remote worker (behind sshd) killed: the same.
func TestChaosRemoteWorkerKilled(t *testing.T) {
	runFault(t, Fault{Kind: KillWorker, AfterMarks: 2, MarkFrom: LinkSSH}, LinkSSH, LinkSocket)
}

// A remote worker stopped (SIGSTOP) behind sshd, which answers the keepalives and keeps
// the session open: the liveness check (gateway/liveness.go) finds it within the bound,
// its gateway is lost and closed, its tests run elsewhere.
func TestChaosRemoteWorkerStopped(t *testing.T) {
	assertDetected(t, runFault(t, Fault{Kind: StopWorker, AfterMarks: 2, MarkFrom: LinkSSH}, LinkSSH, LinkSocket))
}

// The worker of a via= gateway stopped on the hop's host: the end-to-end liveness check
// finds it, and the hop kills it when the master closes its channel, although it never
// ends its output (gateway/via.go).
func TestChaosViaWorkerStopped(t *testing.T) {
	assertDetected(t, runFault(t, Fault{Kind: StopWorker, AfterMarks: 2, MarkFrom: LinkVia}, LinkVia, LinkSocket))
}

// A worker killed while a test runs its subtests, some of them ended: the test runs
// again elsewhere, and the subtests that had ended are not reported a second time
// (runner/batch.go, endedSubtests).
func TestChaosWorkerKilledBetweenSubtests(t *testing.T) {
	runFault(t, Fault{Kind: KillWorker, Test: "TestSubs/slow", AfterMarks: 1}, LinkLocal, LinkSocket)
}

// A test process killed: that test fails as a crash (with the crash note), the tests
// that shared its process run again, everything else is go test's.
func TestChaosTestProcessKilled(t *testing.T) {
	r := runFault(t, Fault{Kind: KillTest, Test: "TestLong", AfterMarks: 2}, LinkLocal, LinkSSH)
	if r.Crashes != 1 {
		t.Errorf("%d tests reported as crashed, want 1 (TestLong, which go test passes)", r.Crashes)
	}
}

// The sshd process of the ssh connection killed: both ssh= gateways are lost at once
// and their work moves.
func TestChaosSSHSessionKilled(t *testing.T) {
	assertDetected(t, runFault(t, Fault{Kind: KillSession, Link: LinkSSH, AfterMarks: 2, MarkFrom: LinkSSH}, LinkSSH, LinkSocket))
}

// The sshd processes of the connection stopped (SIGSTOP): a link that carries nothing
// and never closes, found by the keepalives within the bound.
func TestChaosSSHLinkFrozen(t *testing.T) {
	assertDetected(t, runFault(t, Fault{Kind: StopSession, Link: LinkSSH, AfterMarks: 2, MarkFrom: LinkSSH}, LinkSSH, LinkSocket))
}

// A TCP link to godist serve that stops forwarding (a proxy the harness owns): found
// within the bound.
func TestChaosSocketLinkFrozen(t *testing.T) {
	assertDetected(t, runFault(t, Fault{Kind: FreezeLink, Link: LinkSocket, AfterMarks: 1, MarkFrom: LinkSocket}, LinkSocket, LinkSSH))
}

// exec='s ssh process stopped: a pipe link whose pipes stay open, found by the liveness
// check (gateway/liveness.go) within the bound.
func TestChaosExecLinkFrozen(t *testing.T) {
	assertDetected(t, runFault(t, Fault{Kind: FreezeLink, Link: LinkExec, AfterMarks: 1, MarkFrom: LinkExec}, LinkExec, LinkSocket))
}

// The master SIGKILLed: no worker and no test process outlives it, here or behind the
// sshd and the serve (each worker sees its stream end and kills its test processes).
func TestChaosMasterKilled(t *testing.T) {
	runFault(t, Fault{Kind: KillMaster, AfterMarks: 3})
}

// The master interrupted (SIGINT): it exits non-zero, reports nothing it cut short as
// passed, and leaves nothing behind.
func TestChaosMasterInterrupted(t *testing.T) {
	r := runFault(t, Fault{Kind: InterruptMaster, AfterMarks: 3})
	if r.Exit != 130 {
		t.Errorf("exit status %d after SIGINT, want 130", r.Exit)
	}
}
