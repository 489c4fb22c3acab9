package gobuild

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/filesum"
)

// Building as go test builds. A first build (no binary in the directory yet) needs every
// test binary linked anew, and go test -c links more than go test does for one it runs
// (go test -c keeps a binary for the user; -o refuses two packages of one binary name, so
// a cmd/NAME beside a tested NAME costs a go command of its own). So such a build runs go
// test itself, with -exec naming a shim (Options.Shim, the godist binary): go builds,
// vets and links every package exactly as go test ./... does, in one command, and where
// it would run a test binary it runs the shim instead, which hands the binary over a
// socket to this process and exits at once without running anything. The binary is
// renamed out of go's work directory the moment it is linked (no polling), and go's
// reports of the packages it could not build or that have no test files are go test's
// own. Later builds (binaries there) use go test -c, which does not link again a binary
// that is up to date.

// ShimEnv and shimTokenEnv carry the socket and its password to the shim through go.
const (
	ShimEnv      = "GODIST_BUILD_SOCKET"
	shimTokenEnv = "GODIST_BUILD_TOKEN"
)

// ShimRequested reports whether this process was started by go test -exec as a build
// shim: the program's main must then call RunShim and exit with its status.
func ShimRequested() bool { return os.Getenv(ShimEnv) != "" }

// shimRequest is what the shim sends: the token, the package directory go runs the test
// binary in, and the binary.
type shimRequest struct {
	Token string `json:"token"`
	Dir   string `json:"dir"`
	Bin   string `json:"bin"`
}

// RunShim is the shim: args are what go test -exec passes (the test binary, then its
// flags). It hands the binary to the build that started go and returns the exit status;
// what it prints, go shows as the package's test output.
func RunShim(args []string, stdout io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stdout, "godist build shim: "+format+"\n", a...)
		return 1
	}
	if len(args) == 0 {
		return fail("no test binary given (go test -exec passes one)")
	}
	dir, err := os.Getwd()
	if err != nil {
		return fail("%v", err)
	}
	bin := args[0]
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(dir, bin)
	}
	c, err := net.DialTimeout("unix", os.Getenv(ShimEnv), 10*time.Second)
	if err != nil {
		return fail("%v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	req, _ := json.Marshal(shimRequest{Token: os.Getenv(shimTokenEnv), Dir: dir, Bin: bin})
	if _, err := c.Write(append(req, '\n')); err != nil {
		return fail("%v", err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fail("no answer from the build: %v", err)
	}
	id, ok := strings.CutPrefix(strings.TrimSpace(reply), "ok ")
	if !ok {
		return fail("%s", strings.TrimSpace(reply))
	}
	// go caches this run as the package's test result, its output with it: a later go
	// test -exec of the same binary says "(cached)" and repeats the line instead of
	// linking the binary again (finishExec). go caches only a run that wrote its test log,
	// which it reads beside the binary (cmd/go/internal/test: the run's Objdir) and does not
	// name to an -exec program: an empty one, the binary read nothing.
	if err := os.WriteFile(filepath.Join(filepath.Dir(bin), "testlog.txt"), []byte("# test log\n"), 0o644); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "%s%s\n", shimMarker, id)
	return 0
}

// shimMarker starts the line a shim prints: the content ID of the binary it handed over (filesum.ContentID).
const shimMarker = "godist-binary v1 "

// handoff is a binary a shim handed over: renamed to staged, for the package in dir.
type handoff struct{ dir, staged string }

// shimServer is the socket the shims of one go command hand their binaries to.
type shimServer struct {
	ln      net.Listener
	tmp     string // a directory of the socket's own to remove, "" if in work
	sock    string
	token   string
	work    string // go's GOTMPDIR: binaries come from under it and are staged in it
	add     func(handoff)
	wg      sync.WaitGroup
	mu      sync.Mutex
	n       int
	stopped bool
}

// maxSocketPath is below every platform's limit on a unix socket's path (104 on BSDs).
const maxSocketPath = 100

// listenShim opens the socket, in work when its path is short enough, else in a private
// temporary directory.
func listenShim(work string, add func(handoff)) (*shimServer, error) {
	tok := make([]byte, 16)
	rand.Read(tok)
	s := &shimServer{work: work, add: add, token: hex.EncodeToString(tok)}
	s.sock = filepath.Join(work, "shim.sock")
	if len(s.sock) > maxSocketPath {
		tmp, err := os.MkdirTemp("", "godist-build-")
		if err != nil {
			return nil, err
		}
		s.tmp, s.sock = tmp, filepath.Join(tmp, "s")
	}
	os.Remove(s.sock) // one a killed run left
	ln, err := net.Listen("unix", s.sock)
	if err != nil {
		s.removeTmp()
		return nil, err
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *shimServer) removeTmp() {
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}

func (s *shimServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			fmt.Fprintln(c, s.serve(c))
		}()
	}
}

// serve takes one shim's binary and says "ok", or why not.
func (s *shimServer) serve(c net.Conn) string {
	line, err := bufio.NewReader(io.LimitReader(c, 64<<10)).ReadBytes('\n')
	if err != nil {
		return "reading the request: " + err.Error()
	}
	var req shimRequest
	if err := json.Unmarshal(line, &req); err != nil || req.Token != s.token {
		return "not a request of this build"
	}
	bin := filepath.Clean(req.Bin)
	if !strings.HasPrefix(bin, s.work+string(filepath.Separator)) {
		return "the test binary is not in the build's work directory"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return "the build has ended"
	}
	s.n++
	staged := filepath.Join(s.work, fmt.Sprintf("linked-%d", s.n))
	if err := os.Rename(bin, staged); err != nil {
		return err.Error()
	}
	id, err := filesum.ContentID(staged)
	if err != nil || strings.ContainsAny(id, " \n") {
		os.Remove(staged)
		return fmt.Sprintf("the test binary has no ID: %v", err)
	}
	s.add(handoff{dir: filepath.Clean(req.Dir), staged: staged})
	return "ok " + id
}

// close stops taking binaries and returns once every connection has ended.
func (s *shimServer) close() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
	s.removeTmp()
}

// canExec reports whether a build can run go test with the shim: a shim, no coverage (go
// test would read the coverage the shim does not write), a target whose binaries keep
// their names (not windows' .exe), and go's test cache on (a -count in GOFLAGS turns it
// off: every binary would be linked on every build, where go test -c keeps those that
// are up to date).
func canExec(opts Options) bool {
	return opts.Shim != "" && !opts.Cover && targetGOOS(opts) != "windows" && !strings.Contains(goflags(opts), "-count")
}

// BuildsWithShim reports whether Build builds with go test -exec and the shim for opts
// (else with go test -c, whose binaries are other bytes).
func BuildsWithShim(opts Options) bool { return canExec(opts) }

// goflags is the GOFLAGS the go command sees.
func goflags(opts Options) string {
	v := os.Getenv("GOFLAGS")
	for _, kv := range opts.Env {
		if f, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			v = f
		}
	}
	return v
}

func targetGOOS(opts Options) string {
	goos := runtime.GOOS
	for _, kv := range opts.Env {
		if v, ok := strings.CutPrefix(kv, "GOOS="); ok {
			goos = v
		}
	}
	return goos
}

// startExec starts go test -count=1 -json -exec SHIM on targets, its work directory in
// outDir/.work, the shims' binaries staged there.
//
// Without relink, go's test cache answers for each binary that is as it was when a shim
// handed it over (finishExec); with relink (-count=1), go links every binary anew.
func startExec(ctx context.Context, opts Options, targets []string, outDir string, relink bool) (*groupRun, error) {
	args := []string{"test", "-json", "-exec", opts.Shim}
	if relink {
		args = append(args, "-count=1")
	}
	if opts.Tags != "" {
		args = append(args, "-tags", opts.Tags)
	}
	if opts.Race {
		args = append(args, "-race")
	}
	if opts.Vet != "" {
		args = append(args, "-vet="+opts.Vet)
	}
	args = append(args, opts.Flags...)
	args = append(args, targets...)
	g := &groupRun{env: opts.Env, dir: outDir, wake: make(chan struct{}, 1), work: filepath.Join(outDir, ".work")}
	if err := os.MkdirAll(g.work, 0o755); err != nil {
		return nil, err
	}
	srv, err := listenShim(g.work, func(h handoff) {
		g.mu.Lock()
		g.handoffs = append(g.handoffs, h)
		g.mu.Unlock()
		g.poke()
	})
	if err != nil {
		os.RemoveAll(g.work)
		return nil, err
	}
	g.shim = srv
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Env = append(cmd.Env, "GOTMPDIR="+g.work, ShimEnv+"="+srv.sock, shimTokenEnv+"="+srv.token)
	g.cmd = cmd
	if err := g.start(); err != nil {
		srv.close()
		os.RemoveAll(g.work)
		return nil, err
	}
	return g, nil
}

// finishExec is finish for a go test -exec run: each handed-over binary of a package of
// pkgs goes to place(p) and then to ready. A package whose result go's test cache gave
// (its shim's line repeated, with the binary's ID) keeps the binary at place(p) if that is
// the one, and goes to ready too. The events of a package with tests are held until go
// ends the package and passed on only if go could not build its binary (a shim's "ok" is
// not a test result); every other event is passed on as go writes it. missing are the
// packages with tests of which go neither gave a binary nor said why (a cached result whose
// binary is gone, a shim that could not hand it over).
func (g *groupRun) finishExec(ctx context.Context, pkgs []Package, place func(Package) string, ready func(Binary), emit func(gotest.Event)) (missing []Package, err error) {
	byDir := map[string]Package{}
	tested := map[string]Package{}
	for _, p := range pkgs {
		if p.HasTests {
			byDir[filepath.Clean(p.Dir)] = p
			tested[p.ImportPath] = p
		}
	}
	placed := map[string]bool{}
	settled := map[string]bool{}
	held := map[string][]gotest.Event{}
	take := func(h handoff) {
		p, ok := byDir[h.dir]
		if !ok || placed[p.ImportPath] {
			os.Remove(h.staged)
			return
		}
		dst := place(p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return
		}
		if err := os.Rename(h.staged, dst); err != nil {
			return
		}
		placed[p.ImportPath] = true
		ready(Binary{Package: p, Path: dst})
	}
	onEvent := func(e gotest.Event) {
		p, isTested := tested[e.Package]
		if e.Package == "" || !isTested || e.Test != "" {
			if e.Test == "" {
				emit(e)
			}
			return
		}
		held[e.Package] = append(held[e.Package], e)
		switch e.Action {
		case gotest.ActionPass, gotest.ActionFail, gotest.ActionSkip:
		default:
			return
		}
		evs := held[e.Package]
		delete(held, e.Package)
		switch {
		case placed[e.Package]:
		case e.Action == gotest.ActionFail && e.FailedBuild != "":
			settled[e.Package] = true
			for _, e := range evs {
				emit(e)
			}
		case e.Action == gotest.ActionPass:
			// From go's test cache: the binary its shim handed over then, if it is the
			// one still in place.
			for _, ev := range evs {
				id, ok := strings.CutPrefix(strings.TrimSpace(ev.Output), shimMarker)
				if !ok {
					continue
				}
				dst := place(p)
				if have, err := filesum.ContentID(dst); err == nil && have == id {
					placed[e.Package] = true
					ready(Binary{Package: p, Path: dst})
				}
				break
			}
		}
	}
	// Whether go failed is in its events: a package it could not build is settled here.
	_, err = g.finishWith(ctx, take, onEvent)
	for _, p := range pkgs {
		if p.HasTests && !placed[p.ImportPath] && !settled[p.ImportPath] {
			missing = append(missing, p)
		}
	}
	return missing, err
}

// buildExec builds pkgs with go test -exec and the shim (early's go command when there is
// one), each binary put where Build puts it (groupIdx) and given to ready. The packages
// whose binary go's test cache named but that is no longer in place go through go test
// -exec -count=1 once more. started is false when go could not be started so; missing are
// as finishExec's, after that.
func buildExec(ctx context.Context, opts Options, pkgs []Package, outDir string, groupIdx map[string]int, early *Early, emit func(gotest.Event), ready func(Binary)) (missing []Package, started bool, err error) {
	var run *groupRun
	if early != nil {
		if !early.take() {
			return nil, false, errors.New("go test -exec: the early build was abandoned")
		}
		defer early.cancel()
		defer context.AfterFunc(ctx, early.cancel)()
		run = early.run
	} else if run, err = startExec(ctx, opts, importPaths(pkgs), outDir, false); err != nil {
		return nil, false, nil
	}
	place := func(p Package) string {
		return filepath.Join(outDir, fmt.Sprint(groupIdx[p.ImportPath]), ExecName(p.ImportPath)+".test")
	}
	missing, err = run.finishExec(ctx, pkgs, place, ready, emit)
	if err != nil || len(missing) == 0 {
		return missing, true, err
	}
	run, err = startExec(ctx, opts, importPaths(missing), outDir, true)
	if err != nil {
		return missing, true, nil
	}
	missing, err = run.finishExec(ctx, missing, place, ready, emit)
	return missing, true, err
}

// importPaths are the import paths of pkgs, in their order (go starts the packages named
// first first).
func importPaths(pkgs []Package) []string {
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = p.ImportPath
	}
	return out
}
