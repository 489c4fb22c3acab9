package deploy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/rsync"
	"github.com/godist/godist/worker"
	"github.com/godist/godist/xspec"
)

// connect makes a gateway to an in-process worker with the sync receiver, whose user
// cache is this test's (XDG_CACHE_HOME).
func connect(t *testing.T) *gateway.Gateway {
	t.Helper()
	master, side := net.Pipe()
	reg := worker.NewRegistry()
	reg.Register(rsync.ReceiverFunc, rsync.Receiver)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		worker.Serve(context.Background(), side, reg)
	}()
	spec, _ := xspec.Parse("exec=in-process")
	g, err := gateway.Connect(context.Background(), "gw0", spec, master, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		wg.Wait()
	})
	return g
}

// A failed transfer is not remembered: the next call ships the tree (a sync.Once per host
// would hand every later gateway of that host the first one's error).
func TestTreeErrorNotCached(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := connect(t)
	d := New(Options{ModuleRoot: mod})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Tree(ctx, g); err == nil {
		t.Fatal("a cancelled transfer succeeded")
	}
	base, err := d.Tree(context.Background(), g)
	if err != nil {
		t.Fatalf("the second transfer inherited the first one's error: %v", err)
	}
	if _, err := os.Stat(filepath.Join(Dir(base, mod), "go.mod")); err != nil {
		t.Fatalf("the tree was not shipped: %v", err)
	}
	// Once shipped, it is not shipped again.
	if again, err := d.Tree(context.Background(), g); err != nil || again != base {
		t.Fatalf("third call: %q, %v", again, err)
	}
}

// Concurrent calls for one host share one transfer.
func TestTreeOncePerHost(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	mod := t.TempDir()
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module m\n"), 0o644)
	g := connect(t)
	var notes []string
	var mu sync.Mutex
	d := New(Options{ModuleRoot: mod, Note: func(s string) { mu.Lock(); notes = append(notes, s); mu.Unlock() }})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.Tree(context.Background(), g); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(notes) != 1 {
		t.Errorf("the tree was shipped %d times (%v), want once", len(notes), notes)
	}
}
