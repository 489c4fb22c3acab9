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
	// One worker process serves all the gateways of a counted popen spec (N*popen): a
	// worker only dispatches, every test still runs in a process of its own, and N
	// workers would cost N process start-ups for nothing.
	shared map[*xspec.Spec]*sharedWorker
}

type sharedWorker struct {
	once sync.Once
	base *Gateway
	err  error
	refs int  // guarded by Group.mu
	up   bool // once has run; guarded by Group.mu
}

// lost reports whether the shared worker started and has died since. Called with
// Group.mu held.
func (sw *sharedWorker) lost() bool {
	if !sw.up || sw.base == nil {
		return false
	}
	select {
	case <-sw.base.Done():
		return true
	default:
		return false
	}
}

// hopState lets gateways with via= wait for their hop.
type hopState struct {
	up chan struct{} // closed once the gateway started or failed
	gw *Gateway
}

// NewGroup returns an empty group whose gateways start with opts.
func NewGroup(opts Options) *Group {
	return &Group{opts: opts, ssh: newSSHPool(opts.sshConfig()), ready: map[string]*hopState{}, shared: map[*xspec.Spec]*sharedWorker{}}
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
	select {
	case <-me.up: // started before: this is a restart
		me = &hopState{up: make(chan struct{})}
		g.ready[id] = me
	default:
	}
	g.mu.Unlock()
	opts := g.opts
	opts.Env = append(append([]string(nil), opts.Env...), env...)
	var gw *Gateway
	var err error
	switch {
	case spec.Via != "":
		gw, err = g.startVia(ctx, id, spec, opts)
	case spec.Type == xspec.TypePopen && spec.Count > 1:
		gw, err = g.startShared(ctx, id, spec)
	default:
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

// startShared starts the worker process of a counted popen spec once and returns a
// gateway on it; the last of its gateways to close terminates it.
func (g *Group) startShared(ctx context.Context, id string, spec *xspec.Spec) (*Gateway, error) {
	g.mu.Lock()
	sw := g.shared[spec]
	if sw == nil || sw.lost() {
		// None yet, or the one there was died: a new one for the gateways started again.
		sw = &sharedWorker{}
		g.shared[spec] = sw
	}
	sw.refs++
	g.mu.Unlock()
	// Each test process gets its gateway's environment from the runner; the shared worker
	// has only the group's and the spec's.
	sw.once.Do(func() {
		base, err := start(ctx, id, spec, g.opts, g.ssh)
		g.mu.Lock()
		sw.base, sw.err, sw.up = base, err, true
		g.mu.Unlock()
	})
	release := func(timeout time.Duration) error {
		g.mu.Lock()
		sw.refs--
		last := sw.refs == 0
		g.mu.Unlock()
		if last && sw.base != nil {
			return sw.base.Terminate(timeout)
		}
		return nil
	}
	if sw.err != nil {
		release(0)
		// The one start failed for every gateway of the spec: each names itself.
		var se *StartError
		if errors.As(sw.err, &se) && se.ID != id {
			return nil, &StartError{ID: id, Spec: se.Spec, Err: se.Err}
		}
		return nil, sw.err
	}
	b := sw.base
	return &Gateway{ID: id, Spec: spec, Info: b.Info, sess: b.sess, link: b.link, release: release}, nil
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
