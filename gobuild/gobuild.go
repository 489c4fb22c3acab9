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
	// Packages without test files: report as go test does, without a build.
	var groups [][]Package
	seen := map[string]int{}
	for _, p := range pkgs {
		if !p.HasTests {
			continue
		}
		elem := ExecName(p.ImportPath)
		k := seen[elem]
		seen[elem] = k + 1
		for len(groups) <= k {
			groups = append(groups, nil)
		}
		groups[k] = append(groups[k], p)
	}
	failedBuild := map[string]string{} // package -> FailedBuild of its build-fail event
	var wg sync.WaitGroup
	errs := make([]error, len(groups))
	for i, g := range groups {
		dir := filepath.Join(outDir, fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		byName := map[string]Package{}
		for _, p := range g {
			byName[ExecName(p.ImportPath)+".test"] = p
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
			failed, err := buildGroup(ctx, opts, g, dir, tell, func(e gotest.Event) {
				if e.Action == gotest.ActionBuildFail {
					mu.Lock()
					pkg := buildPackage(e.ImportPath)
					failedBuild[pkg] = e.ImportPath
					if inGroup[pkg] {
						groupFailed[pkg] = true
					} else {
						vague = true // a dependency's: which test packages it fails is not said here
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
			})
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
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, p := range pkgs {
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
		k := 0
		for _, q := range pkgs[:i] {
			if q.HasTests && ExecName(q.ImportPath) == ExecName(p.ImportPath) {
				k++
			}
		}
		bin := filepath.Join(outDir, fmt.Sprint(k), ExecName(p.ImportPath)+".test")
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
	// In the caller's order: go starts the packages named first first.
	for _, p := range g {
		args = append(args, p.ImportPath)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	if opts.Ready != nil {
		// go's work directory on dir's file system, so that go renames each new binary
		// into dir (it copies across file systems, and a copy is seen half written).
		work := filepath.Join(dir, ".work")
		if err := os.MkdirAll(work, 0o755); err != nil {
			return false, err
		}
		defer os.RemoveAll(work)
		cmd.Env = append(cmd.Env, "GOTMPDIR="+work)
		stopWatch := watchLinks(dir, g, linked)
		defer stopWatch()
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return false, err
	}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("go test -c: %w", err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	reported := false // go said which package failed
	var loose []gotest.Event
	for sc.Scan() {
		var e gotest.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// go test -c -json writes only JSON; keep anything else for the error.
			loose = append(loose, gotest.Event{Action: gotest.ActionBuildOutput, Output: sc.Text() + "\n"})
			continue
		}
		if e.Action == gotest.ActionBuildFail || (e.Package != "" && e.Action == gotest.ActionFail) {
			reported = true
		}
		emit(e)
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return false, fmt.Errorf("go test -c: %w", err)
	}
	if err != nil && !reported {
		// go failed without naming a package that did not build: bad flags, toolchain
		// trouble, a platform without -race. Nothing of the group can run; say why.
		msg := strings.TrimSpace(stderr.String())
		for _, e := range loose {
			msg += "\n" + e.Output
		}
		msg = firstLine(msg)
		if msg == "" {
			msg = err.Error()
		}
		return true, &BuildError{Env: opts.Env, Msg: msg}
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

// watchLinks watches dir for the test binaries of g that go links anew (a file that was
// not there, or another file than before: go renames a new binary into place) and calls
// linked with each one's name, once, from its own goroutine, until stop, which returns once
// the watching has ended.
func watchLinks(dir string, g []Package, linked func(name string)) (stop func()) {
	type id struct {
		ino  uint64
		mod  time.Time
		size int64
	}
	idOf := func(name string) (id, bool) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return id{}, false
		}
		return id{ino: filesum.Inode(fi), mod: fi.ModTime(), size: fi.Size()}, true
	}
	before := map[string]id{}
	var names []string
	for _, p := range g {
		name := ExecName(p.ImportPath) + ".test"
		names = append(names, name)
		if v, ok := idOf(name); ok {
			before[name] = v
		}
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		seen := map[string]bool{}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			for _, name := range names {
				if seen[name] {
					continue
				}
				if v, ok := idOf(name); ok && v != before[name] {
					seen[name] = true
					linked(name)
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// BinaryPaths says where Build(…, pkgs, outDir, …) puts the test binary of each package
// with tests: in outDir/K/NAME.test, K counting the earlier packages whose binary has the
// same NAME (go test -c -o DIR/ writes one binary per name).
func BinaryPaths(pkgs []Package, outDir string) map[string]string {
	out := map[string]string{}
	seen := map[string]int{}
	for _, p := range pkgs {
		if !p.HasTests {
			continue
		}
		name := ExecName(p.ImportPath)
		out[p.ImportPath] = filepath.Join(outDir, fmt.Sprint(seen[name]), name+".test")
		seen[name]++
	}
	return out
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
