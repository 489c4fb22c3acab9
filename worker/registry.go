package worker

import (
	"context"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/proto"
)

// Func is a function a worker runs when the master opens a channel with its name: remote
// exec, the Go way. The code is the worker binary's own; only the name travels. Func owns
// ch: it must serve the channel until it returns, after which the worker closes ch, with
// the returned error (or the panic) delivered to the master as a *channel.RemoteError.
type Func func(ctx context.Context, ch *channel.Channel) error

// Registry maps names to the functions a worker offers. Build it once, before Serve; it is
// read-only afterwards and safe for concurrent lookups.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Func
}

// NewRegistry returns a registry holding the function every worker has: proto.InfoFunc.
// The command that serves adds the others (proto.RunFunc with Register, the sync receiver,
// the hop's side of via=).
func NewRegistry() *Registry {
	r := &Registry{m: map[string]Func{}}
	r.Register(proto.InfoFunc, serveInfo)
	return r
}

// Register adds fn under name; registering a name twice panics, as it is a programming error.
func (r *Registry) Register(name string, fn Func) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[name]; dup {
		panic("worker: function registered twice: " + name)
	}
	r.m[name] = fn
}

// Names lists the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *Registry) lookup(name string) (Func, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn, ok := r.m[name]
	return fn, ok
}

// call runs fn on ch, turning a panic into a RemoteError, and closes ch with the outcome.
func call(ctx context.Context, fn Func, ch *channel.Channel) {
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = &channel.RemoteError{Message: fmt.Sprintf("panic: %v", p), Stack: string(debug.Stack())}
			}
		}()
		err = fn(ctx, ch)
	}()
	if err != nil {
		ch.CloseWithError(err)
		return
	}
	ch.Close()
}
