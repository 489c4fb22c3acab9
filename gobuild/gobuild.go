// Package gobuild resolves package patterns with `go list` and builds each package's test
// binary once with `go test -c`, passing on the build events that `go test -json` would write.
package gobuild

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/filesum"
)

// ErrNoPackages is returned by Resolve when the patterns match no packages.
var ErrNoPackages = errors.New("gobuild: no packages to test")

// PatternError is a package pattern that go list rejected or that matched nothing.
type PatternError struct {
	Pattern string
	Msg     string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("package pattern %q: %s (accepted: import paths, ./relative dirs, and ... wildcards as go test takes them)", e.Pattern, e.Msg)
}

// Package is one package to test.
type Package struct {
	ImportPath string
	Name       string
	Dir        string
	// HasTests is true when the package has _test.go files (in-package or external).
	HasTests bool
	// Module root directory of the package, "" outside a module.
	ModuleDir string
	// NoSplit is set by a line "//godist:nosplit" in one of the package's _test.go files:
	// its tests always run together in one process, as go test runs them.
	NoSplit bool
}

// NoSplitDirective is the comment line that keeps a package's tests in one process.
const NoSplitDirective = "//godist:nosplit"

// hasNoSplit reports whether one of files (in dir) has a NoSplitDirective line.
func hasNoSplit(dir string, files []string) bool {
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.Contains(b, []byte(NoSplitDirective)) {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if string(bytes.TrimSpace(line)) == NoSplitDirective {
				return true
			}
		}
	}
	return false
}

// Options control Resolve and Build.
type Options struct {
	Dir   string   // working directory for the go command ("" = current)
	Tags  string   // -tags
	Race  bool     // -race
	Cover bool     // -cover
	Env   []string // extra environment for the go command (e.g. GOOS=, GOARCH=)
	// Flags are further go build flags in -name=value form, given to go test -c; those that
	// choose packages (-mod, -modfile, -overlay) also to go list.
	Flags []string
	// Vet is go test's -vet value ("" = go test's default).
	Vet string
	// Ready, if set, is called with each test binary as soon as it is there: when go has
	// linked it (while other packages still build), or, for one that was up to date, when
	// its go command ends. Calls come one at a time (with emit's), each binary once.
	Ready func(Binary)
	// Early, if set, is a go test -c that StartEarly began on the patterns pkgs came from.
	// Build takes it as its go command when pkgs fit one command (no two packages of one
	// binary name) in outDir/0, and stops it otherwise; either way Build owns it.
	Early *Early
	// Shim, if set, is a program that acts as the build shim when ShimRequested (the
	// godist binary): a build into a directory with no test binary yet then runs go test
	// -exec Shim, which builds exactly as go test does, in one go command (shim.go).
	Shim string
}

// listFlags are the build flags that change what go list finds.
var listFlags = map[string]bool{"mod": true, "modfile": true, "overlay": true}

func flagName(f string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
	return name
}

// Resolve runs `go list` on the patterns and returns the matched packages in go list order.
// A pattern that matches nothing or that go list rejects is a *PatternError.
func Resolve(ctx context.Context, opts Options, patterns []string) ([]Package, error) {
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	args := []string{"list", "-e", "-json=ImportPath,Name,Dir,TestGoFiles,XTestGoFiles,Error,Module"}
	if opts.Tags != "" {
		args = append(args, "-tags", opts.Tags)
	}
	for _, f := range opts.Flags {
		if listFlags[flagName(f)] {
			args = append(args, f)
		}
	}
	args = append(args, "--")
	args = append(args, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("go list: %s", firstLine(msg))
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		// go list warns, and exits 0, for a pattern that matches nothing.
		if i := strings.Index(line, "matched no packages"); i >= 0 {
			pat := strings.TrimPrefix(line, "go: warning: ")
			pat = strings.TrimSpace(strings.TrimSuffix(pat[:strings.Index(pat, "matched no packages")], " "))
			pat = strings.Trim(pat, "\"")
			return nil, &PatternError{Pattern: pat, Msg: "matched no packages"}
		}
	}
	type listed struct {
		ImportPath   string
		Name         string
		Dir          string
		TestGoFiles  []string
		XTestGoFiles []string
		Error        *struct{ Err string }
		Module       *struct{ Dir string }
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list: decoding its output: %w", err)
		}
		if l.Error != nil && l.Dir == "" {
			// A pattern that names no directory or package at all.
			return nil, &PatternError{Pattern: l.ImportPath, Msg: firstLine(l.Error.Err)}
		}
		p := Package{ImportPath: l.ImportPath, Name: l.Name, Dir: l.Dir,
			HasTests: len(l.TestGoFiles)+len(l.XTestGoFiles) > 0}
		if l.Module != nil {
			p.ModuleDir = l.Module.Dir
		}
		if p.HasTests {
			p.NoSplit = hasNoSplit(l.Dir, append(append([]string(nil), l.TestGoFiles...), l.XTestGoFiles...))
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		return nil, ErrNoPackages
	}
	return pkgs, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// ExecName is the name go gives the test binary of importPath, without ".test", as cmd/go's
// DefaultExecName does in module mode: the last path element, except that a trailing
// major-version element ("v2", "v3", ...) gives way to the one before it, so
// example.com/foo/v2 is foo.test. ("v0", "v1" and "v01" are not version elements.)
func ExecName(importPath string) string {
	elem := path.Base(importPath)
	if elem != importPath && isVersionElement(elem) {
		elem = path.Base(path.Dir(importPath))
	}
	return elem
}

func isVersionElement(s string) bool {
	if len(s) < 2 || s[0] != 'v' || s[1] == '0' || s[1] == '1' && len(s) == 2 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || '9' < s[i] {
			return false
		}
	}
	return true
}

// Early is a go test -c started on package patterns before go list has answered, so that
// a first run's build does not wait for its resolve: go loads the packages in both
// commands at once. Nothing reaches the caller before Build takes it (with the packages
// go list resolved); Build stops it where the packages do not fit one go command.
type Early struct {
	dir    string // outDir/0; outDir itself with exec
	exec   bool   // go test -exec with the shim (shim.go), not go test -c
	run    *groupRun
	cancel context.CancelFunc
	mu     sync.Mutex
	taken  bool
}

// StartEarly starts go test -c on patterns ("" = ./...) into outDir/0, as Build would for
// the packages they match when no two of them share a binary name. The caller must give
// it to Build through Options.Early, or call Abandon.
func StartEarly(ctx context.Context, opts Options, patterns []string, outDir string) (*Early, error) {
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	dir := filepath.Join(outDir, "0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &Early{dir: dir, cancel: cancel}
	var run *groupRun
	var err error
	if canExec(opts) {
		e.dir, e.exec = outDir, true
		run, err = startExec(ctx, opts, patterns, outDir, false)
	} else {
		run, err = startGroup(ctx, opts, patterns, dir, true)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	e.run = run
	return e, nil
}

// Abandon stops the go command, unless Build took it, and returns once it has ended. It
// may be called more than once, and after Build.
func (e *Early) Abandon() {
	e.mu.Lock()
	if e.taken {
		e.mu.Unlock()
		return
	}
	e.taken = true
	e.mu.Unlock()
	e.cancel()
	e.run.finish(context.Background(), func(gotest.Event) {})
}

// take marks e taken by Build; false if it was abandoned.
func (e *Early) take() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	taken := e.taken
	e.taken = true
	return !taken
}

// adopt is buildGroup for group 0, g, with the go command already running.
func (e *Early) adopt(ctx context.Context, opts Options, g []Package, linked func(name string), emit func(gotest.Event)) (failed bool, err error) {
	if !e.take() {
		return false, errors.New("go test -c: the early build was abandoned")
	}
	defer e.cancel()
	return e.run.finishWatched(ctx, opts.Ready != nil, g, linked, emit)
}

// BuildError is a go test -c that failed without saying which package did not build: a
// toolchain or flag problem that concerns every package (-race on a platform without it,
// a bad -ldflags). Msg is the first line of what go printed.
type BuildError struct {
	Env []string // GOOS=, GOARCH= of a cross build
	Msg string
}

func (e *BuildError) Error() string {
	if len(e.Env) > 0 {
		return fmt.Sprintf("go test -c (%s): %s", strings.Join(e.Env, " "), e.Msg)
	}
	return "go test -c: " + e.Msg
}

// Binary is a built test binary.
type Binary struct {
	Package Package
	Path    string
}

// Result of Build.
type Result struct {
	// Binaries of the packages that built and have tests, in the order of pkgs.
	Binaries []Binary
	// Reported are the packages whose outcome the build already settled (build failures,
	// setup failures, packages without test files); their events went to emit.
	Reported map[string]bool
}

// Build builds the test binary of every package in pkgs that has tests into outDir, each
// once, with as few go commands as there are packages sharing one last path element.
// Build events (build-output, build-fail) and the package results of packages that cannot
// run (build failed, setup failed, no test files) are passed to emit as `go test -json`
// writes them; emit is called from one goroutine at a time.
func Build(ctx context.Context, opts Options, pkgs []Package, outDir string, emit func(gotest.Event)) (*Result, error) {
	res := &Result{Reported: map[string]bool{}}
	var mu sync.Mutex
	locked := func(e gotest.Event) {
		mu.Lock()
		defer mu.Unlock()
		emit(e)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	// Every package goes to go test -c, as go test builds them all: one without test
	// files is reported "no test files" by go, or "build failed" when it does not build.
	// go refuses two packages of one binary name (with or without tests) in one command.
	groupIdx := groupsOf(pkgs)
	early := opts.Early
	opts.Early = nil
	failedBuild := map[string]string{} // package -> FailedBuild of its build-fail event
	onBuildFail := func(e gotest.Event) {
		if e.Action == gotest.ActionBuildFail {
			mu.Lock()
			failedBuild[buildPackage(e.ImportPath)] = e.ImportPath
			mu.Unlock()
		}
	}
	todo := pkgs
	if early != nil && early.exec || early == nil && canExec(opts) {
		// A first build: go test -exec with the shim, in one go command.
		missing, started, err := buildExec(ctx, opts, pkgs, outDir, groupIdx, early, func(e gotest.Event) {
			onBuildFail(e)
			if e.Package != "" {
				mu.Lock()
				res.Reported[e.Package] = true
				mu.Unlock()
			}
			locked(e)
		}, func(b Binary) {
			mu.Lock()
			defer mu.Unlock()
			if opts.Ready != nil {
				opts.Ready(b)
			}
		})
		if err != nil {
			return nil, err
		}
		if started {
			// What go built without a shim handing it over (none, but for a shim that
			// could not reach this process), go test -c builds.
			todo, early = missing, nil
		}
	}
	var groups [][]Package
	for _, p := range todo {
		k := groupIdx[p.ImportPath]
		for len(groups) <= k {
			groups = append(groups, nil)
		}
		groups[k] = append(groups[k], p)
	}
	if early != nil && (early.exec || len(groups) != 1 || early.dir != filepath.Join(outDir, "0")) {
		early.Abandon() // its go refuses the packages, or builds elsewhere
		early = nil
	}
	if early != nil {
		defer context.AfterFunc(ctx, early.cancel)()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(groups))
	launch := func(i int, g []Package) error {
		dir := filepath.Join(outDir, fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		byName := map[string]Package{} // the binaries the group makes
		for _, p := range g {
			if p.HasTests {
				byName[ExecName(p.ImportPath)+".test"] = p
			}
		}
		told := map[string]bool{} // binaries given to opts.Ready
		tell := func(name string) {
			mu.Lock()
			defer mu.Unlock()
			if told[name] || opts.Ready == nil {
				return
			}
			told[name] = true
			opts.Ready(Binary{Package: byName[name], Path: filepath.Join(dir, name)})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			inGroup := map[string]bool{}
			for _, p := range g {
				inGroup[p.ImportPath] = true
			}
			groupFailed := map[string]bool{} // the group's packages go said did not build
			vague := false                   // a failure go did not pin on a package of the group
			onEvent := func(e gotest.Event) {
				if e.Action == gotest.ActionBuildFail {
					onBuildFail(e)
					mu.Lock()
					pkg := buildPackage(e.ImportPath)
					if inGroup[pkg] && strings.HasSuffix(e.ImportPath, ".test]") {
						groupFailed[pkg] = true // "p [p.test]": p's test binary alone
					} else {
						// A package itself ("p"): every test binary that imports it fails
						// too, and go test -c does not say which.
						vague = true
					}
					mu.Unlock()
				}
				if e.Package != "" {
					mu.Lock()
					res.Reported[e.Package] = true
					if e.Action == gotest.ActionFail && inGroup[e.Package] {
						groupFailed[e.Package] = true
					}
					mu.Unlock()
				}
				locked(e)
			}
			var failed bool
			var err error
			if i == 0 && early != nil {
				failed, err = early.adopt(ctx, opts, g, tell, onEvent)
			} else {
				failed, err = buildGroup(ctx, opts, g, dir, tell, onEvent)
			}
			if err == nil && failed {
				// Something in the group did not build. dir is kept between runs (go test
				// -c does not link again a binary that is up to date there), so a binary of
				// an earlier run may stand where this one failed. go builds the others all
				// the same: when it named each package that failed, those binaries go, and
				// nothing else is touched (an up-to-date binary stays the file it is: a run
				// that speculated on it stands). Otherwise remove the group's binaries that
				// this build did not link and build again, quietly, to be left with exactly
				// those that build now.
				mu.Lock()
				if !vague && len(groupFailed) > 0 {
					for _, p := range g {
						if groupFailed[p.ImportPath] {
							os.Remove(filepath.Join(dir, ExecName(p.ImportPath)+".test"))
						}
					}
					mu.Unlock()
				} else {
					for name := range byName {
						if !told[name] {
							os.Remove(filepath.Join(dir, name))
						}
					}
					mu.Unlock()
					_, err = buildGroup(ctx, opts, g, dir, tell, func(gotest.Event) {})
				}
			}
			if err == nil {
				// What go did not link again was up to date.
				for name := range byName {
					if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
						tell(name)
					}
				}
			}
			errs[i] = err
		}()
		return nil
	}
	// The groups of packages without tests only (their names taken by tested packages in
	// the groups before) build no binary: they go after the others, not beside them.
	untestedOnly := func(g []Package) bool {
		for _, p := range g {
			if p.HasTests {
				return false
			}
		}
		return true
	}
	for _, later := range []bool{false, true} {
		for i, g := range groups {
			if untestedOnly(g) == later {
				if err := launch(i, g); err != nil {
					wg.Wait()
					return nil, err
				}
			}
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		if res.Reported[p.ImportPath] {
			continue
		}
		if !p.HasTests {
			for _, e := range gotest.NoTestFiles(p.ImportPath, clock) {
				emit(e)
			}
			res.Reported[p.ImportPath] = true
			continue
		}
		bin := filepath.Join(outDir, fmt.Sprint(groupIdx[p.ImportPath]), ExecName(p.ImportPath)+".test")
		if _, err := os.Stat(bin); err != nil {
			fb := failedBuild[p.ImportPath]
			if fb == "" {
				fb = p.ImportPath + " [" + p.ImportPath + ".test]"
			}
			for _, e := range gotest.BuildFailed(p.ImportPath, fb, clock) {
				emit(e)
			}
			res.Reported[p.ImportPath] = true
			continue
		}
		res.Binaries = append(res.Binaries, Binary{Package: p, Path: bin})
	}
	return res, nil
}

// EventPackage is the package under test an event of Build belongs to: its Package, or the
// package its ImportPath ("p [p.test]", "p_test [p.test]", "p") names.
func EventPackage(e gotest.Event) string {
	if e.Package != "" {
		return e.Package
	}
	return buildPackage(e.ImportPath)
}

// buildPackage maps the ImportPath of a build event ("p [p.test]", "p_test [p.test]", "p")
// to the package under test it belongs to.
func buildPackage(importPath string) string {
	if i := strings.Index(importPath, " ["); i >= 0 && strings.HasSuffix(importPath, ".test]") {
		return strings.TrimSuffix(importPath[i+2:], ".test]")
	}
	return importPath
}

// buildGroup runs one go test -c; failed reports that it exited with an error (some
// package did not build).
func buildGroup(ctx context.Context, opts Options, g []Package, dir string, linked func(name string), emit func(gotest.Event)) (failed bool, err error) {
	targets := make([]string, len(g))
	for i, p := range g { // in the caller's order: go starts the packages named first first
		targets[i] = p.ImportPath
	}
	run, err := startGroup(ctx, opts, targets, dir, opts.Ready != nil)
	if err != nil {
		return false, err
	}
	return run.finishWatched(ctx, opts.Ready != nil, g, linked, emit)
}

func execNames(g []Package) []string {
	names := make([]string, len(g))
	for i, p := range g {
		names[i] = ExecName(p.ImportPath) + ".test"
	}
	return names
}

// groupRun is one go test -c that runs: its events are read as go writes them (go never
// waits on its pipe) and kept until finish takes them.
type groupRun struct {
	cmd    *exec.Cmd
	env    []string // opts.Env, for a BuildError
	stderr bytes.Buffer
	work   string // go's work directory, removed at finish ("" if none)
	dir    string
	before map[string]filesum.ID // the binaries in dir before go started (with rename)

	mu       sync.Mutex
	evs      []gotest.Event
	loose    []gotest.Event // lines that were not JSON, kept for the error
	reported bool           // go said which package failed
	eof      bool
	wake     chan struct{} // a token when evs grew or eof came
	handoffs []handoff     // binaries the shims handed over, not yet taken
	shim     *shimServer   // the shims' socket (go test -exec), nil for go test -c
}

// startGroup starts go test -c -json -o dir/ on targets (import paths or patterns). With
// rename, go's work directory is on dir's file system, so that go renames each new
// binary into dir (it copies across file systems, and a copy is seen half written).
func startGroup(ctx context.Context, opts Options, targets []string, dir string, rename bool) (*groupRun, error) {
	args := []string{"test", "-c", "-json", "-o", dir + string(filepath.Separator)}
	if opts.Tags != "" {
		args = append(args, "-tags", opts.Tags)
	}
	if opts.Race {
		args = append(args, "-race")
	}
	if opts.Cover {
		args = append(args, "-cover")
	}
	if opts.Vet != "" {
		args = append(args, "-vet="+opts.Vet)
	}
	args = append(args, linkFlags(opts.Flags)...)
	args = append(args, targets...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	g := &groupRun{cmd: cmd, env: opts.Env, dir: dir, wake: make(chan struct{}, 1)}
	if rename {
		g.before = snapshot(dir)
		g.work = filepath.Join(dir, ".work")
		if err := os.MkdirAll(g.work, 0o755); err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, "GOTMPDIR="+g.work)
	}
	if err := g.start(); err != nil {
		if g.work != "" {
			os.RemoveAll(g.work)
		}
		return nil, err
	}
	return g, nil
}

// start starts g.cmd with its events read as go writes them.
func (g *groupRun) start() error {
	g.cmd.Stderr = &g.stderr
	stdout, err := g.cmd.StdoutPipe()
	if err == nil {
		err = g.cmd.Start()
	}
	if err != nil {
		return fmt.Errorf("go test -c: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var e gotest.Event
			g.mu.Lock()
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				// go test -c -json writes only JSON; keep anything else for the error.
				g.loose = append(g.loose, gotest.Event{Action: gotest.ActionBuildOutput, Output: sc.Text() + "\n"})
			} else {
				if e.Action == gotest.ActionBuildFail || (e.Package != "" && e.Action == gotest.ActionFail) {
					g.reported = true
				}
				g.evs = append(g.evs, e)
			}
			g.mu.Unlock()
			g.poke()
		}
		io.Copy(io.Discard, stdout) // a line too long: the rest, so that go can end
		g.mu.Lock()
		g.eof = true
		g.mu.Unlock()
		g.poke()
	}()
	return nil
}

func (g *groupRun) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// finishWatched is finish; with watch, each binary of pkgs that go links meanwhile (a new
// file in the directory, renamed into place) goes to linked as it appears.
func (g *groupRun) finishWatched(ctx context.Context, watch bool, pkgs []Package, linked func(name string), emit func(gotest.Event)) (failed bool, err error) {
	if watch {
		stopWatch := watchLinks(g.dir, execNames(pkgs), g.before, linked)
		defer stopWatch()
	}
	return g.finish(ctx, emit)
}

// finish passes every event of the run to emit, in go's order, waits for go to end and
// says whether it failed, as buildGroup does. It must be called exactly once.
func (g *groupRun) finish(ctx context.Context, emit func(gotest.Event)) (failed bool, err error) {
	return g.finishWith(ctx, nil, emit)
}

// finishWith is finish, with each binary a shim handed over (go test -exec) passed to take
// before the events that came after it.
func (g *groupRun) finishWith(ctx context.Context, take func(handoff), emit func(gotest.Event)) (failed bool, err error) {
	if g.work != "" {
		defer os.RemoveAll(g.work)
	}
	drain := func() {
		g.mu.Lock()
		hs := g.handoffs
		g.handoffs = nil
		g.mu.Unlock()
		for _, h := range hs {
			if take != nil {
				take(h)
			} else {
				os.Remove(h.staged)
			}
		}
	}
	for {
		drain() // before the events: go writes a package's result after its shim ended
		g.mu.Lock()
		evs, eof := g.evs, g.eof
		g.evs = nil
		g.mu.Unlock()
		for _, e := range evs {
			emit(e)
		}
		if eof && len(evs) == 0 {
			break
		}
		if !eof {
			<-g.wake
		}
	}
	err = g.cmd.Wait()
	if g.shim != nil {
		g.shim.close()
		drain()
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return false, fmt.Errorf("go test -c: %w", err)
	}
	if err != nil && !g.reported {
		// go failed without naming a package that did not build: bad flags, toolchain
		// trouble, a platform without -race. Nothing of the group can run; say why.
		msg := strings.TrimSpace(g.stderr.String())
		for _, e := range g.loose {
			msg += "\n" + e.Output
		}
		msg = firstLine(msg)
		if msg == "" {
			msg = err.Error()
		}
		return true, &BuildError{Env: g.env, Msg: msg}
	}
	return err != nil, nil
}

// GOROOT returns the GOROOT of the go command that builds (go env GOROOT), "" if it cannot
// tell.
func GOROOT(ctx context.Context, opts Options) string {
	cmd := exec.CommandContext(ctx, "go", "env", "GOROOT")
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// snapshot is the identity of every test binary in dir now.
func snapshot(dir string) map[string]filesum.ID {
	out := map[string]filesum.ID{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".test") {
			if v, ok := filesum.IDOf(filepath.Join(dir, e.Name())); ok {
				out[e.Name()] = v
			}
		}
	}
	return out
}

// watchLinks watches dir for the test binaries names that go links anew (a file that was
// not there before, or another file than before) and calls linked with each one's name,
// once, from its own goroutine, until stop, which returns once the watching has ended.
// A file system notification (go renames each binary into dir) says at once when to look;
// a slower poll stands in where there is none.
func watchLinks(dir string, names []string, before map[string]filesum.ID, linked func(name string)) (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	var changed chan fsnotify.Event
	var failed chan error
	interval := 20 * time.Millisecond
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(dir); err != nil {
			w.Close()
			w = nil
		} else {
			changed, failed, interval = w.Events, w.Errors, 200*time.Millisecond
		}
	}
	go func() {
		defer close(ended)
		if w != nil {
			defer w.Close()
		}
		seen := map[string]bool{}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			for _, name := range names {
				if seen[name] {
					continue
				}
				if v, ok := filesum.IDOf(filepath.Join(dir, name)); ok && v != before[name] {
					seen[name] = true
					linked(name)
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			case <-changed:
			case <-failed: // an overflow: the poll and the next look catch up
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// BinaryPaths says where Build(…, pkgs, outDir, …) puts the test binary of each package
// with tests: in outDir/K/NAME.test, K counting the earlier packages with tests whose
// binary has the same NAME (go test -c -o DIR/ writes one binary per name).
func BinaryPaths(pkgs []Package, outDir string) map[string]string {
	out := map[string]string{}
	idx := groupsOf(pkgs)
	for _, p := range pkgs {
		if p.HasTests {
			out[p.ImportPath] = filepath.Join(outDir, fmt.Sprint(idx[p.ImportPath]), ExecName(p.ImportPath)+".test")
		}
	}
	return out
}

// groupsOf says which go command (and directory) of Build builds each package: no two of
// one binary name in one command, tested or not (go refuses them).
func groupsOf(pkgs []Package) map[string]int {
	idx := map[string]int{}
	seen := map[string]int{}
	// Tested packages first: each the first command without its name. Then the others,
	// after the tested packages of their name, so that a package without tests (a
	// cmd/NAME beside the module's NAME) never takes a tested one's place in a command.
	for _, tested := range []bool{true, false} {
		for _, p := range pkgs {
			if p.HasTests == tested {
				name := ExecName(p.ImportPath)
				idx[p.ImportPath] = seen[name]
				seen[name]++
			}
		}
	}
	return idx
}

// linkFlags are flags with what go test gives the link of a binary it runs: no symbol
// table and no DWARF (-ldflags=-s -w, on top of the user's -ldflags, as cmd/go's
// OmitDebug does); go test -c keeps them, and linking them costs a quarter of a build.
func linkFlags(flags []string) []string {
	out := make([]string, 0, len(flags)+1)
	ld := ""
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "-ldflags="); ok {
			ld = v // the last -ldflags wins, as with go
			continue
		}
		out = append(out, f)
	}
	if ld != "" {
		ld += " "
	}
	return append(out, "-ldflags="+ld+"-s -w")
}
