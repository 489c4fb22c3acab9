package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/godist/godist/xspec"
)

// Group starts gateways — all at once — and tears them down together. Gateways of one
// group that reach the same ssh host share its connections. Safe for concurrent use.
type Group struct {
	opts Options
	ssh  *sshPool

	mu    sync.Mutex
	gws   []*Gateway
	done  bool
	ready map[string]*hopState // by gateway id, for via=
}

// hopState lets gateways with via= wait for their hop.
type hopState struct {
	up chan struct{} // closed once the gateway started or failed
	gw *Gateway
}

// NewGroup returns an empty group whose gateways start with opts.
func NewGroup(opts Options) *Group {
	return &Group{opts: opts, ssh: newSSHPool(opts.SSH), ready: map[string]*hopState{}}
}

// Start starts one gateway of the group.
func (g *Group) Start(ctx context.Context, id string, spec *xspec.Spec) (*Gateway, error) {
	return g.StartWith(ctx, id, spec, nil)
}

// StartWith starts one gateway of the group with env added to the worker's environment.
func (g *Group) StartWith(ctx context.Context, id string, spec *xspec.Spec, env []string) (*Gateway, error) {
	g.mu.Lock()
	if g.done {
		g.mu.Unlock()
		return nil, &StartError{ID: id, Spec: spec.Raw, Err: errors.New("gateway: group terminated")}
	}
	me := g.hop(id)
	g.mu.Unlock()
	opts := g.opts
	opts.Env = append(append([]string(nil), opts.Env...), env...)
	var gw *Gateway
	var err error
	if spec.Via != "" {
		gw, err = g.startVia(ctx, id, spec, opts)
	} else {
		gw, err = start(ctx, id, spec, opts, g.ssh)
	}
	me.gw = gw
	close(me.up)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		gw.Close()
		return nil, &StartError{ID: id, Spec: spec.Raw, Err: errors.New("gateway: group terminated")}
	}
	g.gws = append(g.gws, gw)
	return gw, nil
}

func (g *Group) hop(id string) *hopState {
	h := g.ready[id]
	if h == nil {
		h = &hopState{up: make(chan struct{})}
		g.ready[id] = h
	}
	return h
}

// startVia waits for the hop gateway of the group to be up, then starts spec through it.
func (g *Group) startVia(ctx context.Context, id string, spec *xspec.Spec, opts Options) (*Gateway, error) {
	g.mu.Lock()
	h := g.hop(spec.Via)
	g.mu.Unlock()
	select {
	case <-h.up:
	case <-ctx.Done():
		return nil, &StartError{ID: id, Spec: spec.Raw, Err: ctx.Err()}
	}
	if h.gw == nil {
		return nil, &StartError{ID: id, Spec: spec.Raw, Err: fmt.Errorf("via=%s: that gateway did not start", spec.Via)}
	}
	gw, err := startVia(ctx, id, spec, opts, h.gw)
	if err != nil {
		return nil, &StartError{ID: id, Spec: spec.Raw, Err: err}
	}
	return gw, nil
}

// StartAll starts every gateway concurrently. Both slices are in the order of gws: each
// gateway or its error.
func (g *Group) StartAll(ctx context.Context, gws []xspec.Gateway) ([]*Gateway, []error) {
	out := make([]*Gateway, len(gws))
	errs := make([]error, len(gws))
	var wg sync.WaitGroup
	for i, x := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = g.Start(ctx, x.ID, x.Spec)
		}()
	}
	wg.Wait()
	return out, errs
}

// Terminate closes every gateway of the group at once, giving each worker up to timeout
// to exit before it is killed, then closes the shared connections. Idempotent.
func (g *Group) Terminate(timeout time.Duration) error {
	g.mu.Lock()
	gws := g.gws
	g.gws = nil
	g.done = true
	g.mu.Unlock()
	errs := make([]error, len(gws))
	var wg sync.WaitGroup
	for i, gw := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = gw.Terminate(timeout)
		}()
	}
	wg.Wait()
	if err := g.ssh.Close(); err != nil && !errors.Is(err, errSSHPoolClosed) {
		errs = append(errs, fmt.Errorf("gateway: closing ssh connections: %w", err))
	}
	return errors.Join(errs...)
}
