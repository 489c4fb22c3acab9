package runner

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/ledger"
	"github.com/godist/godist/rsync"
	"github.com/godist/godist/scheduler"
	"github.com/godist/godist/worker"
	"github.com/godist/godist/xspec"
)

// inProcess starts each gateway's worker in this process, over net.Pipe: the runner's
// whole path — pipeline, plan, batches, verdicts, the ledger — with real test processes,
// and nothing of gateway's process handling.
type inProcess struct {
	wg sync.WaitGroup
}

func (p *inProcess) start(ctx context.Context, g xspec.Gateway, env []string) (*gateway.Gateway, error) {
	master, side := net.Pipe()
	reg := worker.NewRegistry()
	worker.Register(reg)
	reg.Register(rsync.ReceiverFunc, rsync.Receiver)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		worker.Serve(context.Background(), side, reg)
	}()
	return gateway.Connect(ctx, g.ID, g.Spec, master, gateway.Options{})
}

type recorder struct {
	mu     sync.Mutex
	events []gotest.Event
	notes  []string
}

func (r *recorder) Event(e gotest.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}
func (r *recorder) WorkerState(string, string) {}
func (r *recorder) Note(m string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, m)
}
func (r *recorder) SetTotal(int) {}

// ends lists the terminal actions of each test and package.
func (r *recorder) ends() map[string][]string {
	out := map[string][]string{}
	for _, e := range r.events {
		if gotest.IsTerminal(e.Action) {
			k := e.Package
			if e.Test != "" {
				k += " " + e.Test
			}
			out[k] = append(out[k], e.Action)
		}
	}
	return out
}

func gateways(t *testing.T, n int) []xspec.Gateway {
	t.Helper()
	var specs []*xspec.Spec
	for range n {
		s, err := xspec.Parse("popen")
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	gws, err := xspec.Expand(specs)
	if err != nil {
		t.Fatal(err)
	}
	return gws
}

func TestRunInMemory(t *testing.T) {
	before := runtime.NumGoroutine()
	dir, _ := filepath.Abs("../fixtures")
	for _, mode := range []scheduler.Mode{scheduler.Load, scheduler.Each} {
		var p inProcess
		var rec recorder
		res, err := Run(context.Background(), Config{
			Dir: dir, Patterns: []string{"./pass", "./subtests", "./panic", "./notests", "./buildfail"},
			Gateways: gateways(t, 2), Mode: mode, Timeout: time.Minute,
			Observers: []ledger.Observer{&rec}, Start: p.start,
			DurationsFile: filepath.Join(t.TempDir(), "d.json"),
		})
		p.wg.Wait() // every in-process worker has ended with its gateway
		if err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if res.Status != ExitFailed {
			t.Errorf("mode %v: status %d, want %d (fixtures fail)", mode, res.Status, ExitFailed)
		}
		ends := rec.ends()
		fx := "github.com/godist/godist/fixtures/"
		scopes := 1
		if mode == scheduler.Each {
			scopes = 2
		}
		for key, want := range map[string]string{
			fx + "pass":                    "pass",
			fx + "pass TestAdd":            "pass",
			fx + "subtests":                "fail",
			fx + "subtests TestA/fail/bad": "fail",
			fx + "panic":                   "fail",
			fx + "panic TestPanic":         "fail",
			fx + "panic TestAfter":         "pass", // run again in a new process
			fx + "notests":                 "skip",
			fx + "buildfail":               "fail",
		} {
			got := ends[key]
			if len(got) != scopes {
				t.Errorf("mode %v: %s ends %v, want %s %d time(s)", mode, key, got, want, scopes)
				continue
			}
			for _, a := range got {
				if a != want {
					t.Errorf("mode %v: %s ends %v, want %s", mode, key, got, want)
				}
			}
		}
		var keys []string
		for k, a := range ends {
			if len(a) != scopes && !strings.Contains(k, "panic") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Errorf("mode %v: %s ends %v, want one end per scope", mode, k, ends[k])
		}
	}
	// No goroutine of the run outlives it.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left after the runs (%d before):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// A gateway that never comes up does not hold a run whose tests all ran elsewhere: its
// start is cancelled once the plan is done.
func TestStartNeverUpDoesNotHoldTheRun(t *testing.T) {
	dir, _ := filepath.Abs("../fixtures")
	var p inProcess
	cancelled := make(chan struct{})
	start := func(ctx context.Context, g xspec.Gateway, env []string) (*gateway.Gateway, error) {
		if g.ID == "gw1" {
			<-ctx.Done() // a shell that never answers
			close(cancelled)
			return nil, ctx.Err()
		}
		return p.start(ctx, g, env)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), Config{Dir: dir, Patterns: []string{"./pass"}, Gateways: gateways(t, 2),
			Mode: scheduler.Load, Start: start, DurationsFile: filepath.Join(t.TempDir(), "d.json")})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(60 * time.Second): // a guard only: the run ends once ./pass has run
		t.Fatal("the run waited for a gateway that never came up")
	}
	<-cancelled
	p.wg.Wait()
}

// When no gateway comes up, the run is not run: no Result, a *RunError giving each
// gateway's error on one line, and no package reported as if it had run. When one comes
// up, the one that did not is a note and (each mode) its packages fail there.
func TestNoGatewayComesUp(t *testing.T) {
	dir, _ := filepath.Abs("../fixtures")
	const pkg = "github.com/godist/godist/fixtures/pass"
	failing := func(ctx context.Context, g xspec.Gateway, env []string) (*gateway.Gateway, error) {
		return nil, &gateway.StartError{ID: g.ID, Spec: g.Spec.Raw, Err: errors.New("no route to " + g.ID)}
	}
	for _, mode := range []scheduler.Mode{scheduler.Load, scheduler.Each} {
		var rec recorder
		res, err := Run(context.Background(), Config{Dir: dir, Patterns: []string{"./pass"}, Gateways: gateways(t, 2),
			Mode: mode, Start: failing, Observers: []ledger.Observer{&rec}, DurationsFile: filepath.Join(t.TempDir(), "d.json")})
		var re *RunError
		if res != nil || !errors.As(err, &re) {
			t.Fatalf("mode %v: result %+v, error %v; want no result and a *RunError", mode, res, err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "no route to gw0") || !strings.Contains(msg, "no route to gw1") {
			t.Errorf("mode %v: error %q, want one line with both gateways' errors", mode, msg)
		}
		if ends := rec.ends(); len(ends[pkg]) != 0 {
			t.Errorf("mode %v: %s reported %v, though it never ran", mode, pkg, ends[pkg])
		}
		if len(rec.notes) != 0 {
			t.Errorf("mode %v: notes %q besides the error", mode, rec.notes)
		}
	}

	for _, mode := range []scheduler.Mode{scheduler.Load, scheduler.Each} {
		var p inProcess
		var rec recorder
		start := func(ctx context.Context, g xspec.Gateway, env []string) (*gateway.Gateway, error) {
			if g.ID == "gw0" {
				return failing(ctx, g, env)
			}
			return p.start(ctx, g, env)
		}
		res, err := Run(context.Background(), Config{Dir: dir, Patterns: []string{"./pass"}, Gateways: gateways(t, 2),
			Mode: mode, Start: start, Observers: []ledger.Observer{&rec}, DurationsFile: filepath.Join(t.TempDir(), "d.json")})
		p.wg.Wait()
		if mode == scheduler.Load && (err != nil || res == nil || res.Status != ExitOK) {
			t.Errorf("load: result %+v, error %v; want all passed on gw1", res, err)
		}
		if mode == scheduler.Each && res == nil {
			t.Fatalf("each: no result (%v)", err)
		}
		if !slices.ContainsFunc(rec.notes, func(n string) bool { return strings.Contains(n, "no route to gw0") }) {
			t.Errorf("mode %v: no note of gw0's failure: %q", mode, rec.notes)
		}
		var gw0 []string
		for _, e := range rec.events {
			if e.Package == pkg && e.Test == "" && e.Worker == "gw0" && gotest.IsTerminal(e.Action) {
				gw0 = append(gw0, e.Action)
			}
		}
		if mode == scheduler.Each && !slices.Equal(gw0, []string{gotest.ActionFail}) {
			t.Errorf("each: %s ends %v on gw0, which never came up; want fail", pkg, gw0)
		}
	}
}
