package gateway

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"errors"
	"fmt"
	"github.com/godist/godist/internal/filesum"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Binary is a static godist binary that can run as a worker on one platform.
type Binary struct {
	GOOS, GOARCH string
	Path         string
	Hash         string // sha256, hex: its name in the remote cache
	Size         int64
}

// Open opens the binary for sending.
func (b *Binary) Open() (*os.File, error) { return os.Open(b.Path) }

// Uname is what `uname -sm` prints on the binary's platform.
func (b *Binary) Uname() string { return unameOf(b.GOOS, b.GOARCH) }

// Binaries finds a static worker binary for each platform: this very executable when it is
// static and the platform is this one, else one built once with the local Go toolchain
// from godist's source and kept in the local cache. GODIST_WORKER_<GOOS>_<GOARCH> names a
// ready-made binary instead. Safe for concurrent use.
type Binaries struct {
	self     string
	cacheDir string
	src      string // godist's module source, for builds; "" if not there

	mu     sync.Mutex
	byPlat map[string]*platformBinary
}

type platformBinary struct {
	once sync.Once
	bin  *Binary
	err  error
}

var (
	defaultBinariesOnce sync.Once
	defaultBinaries     *Binaries
)

// DefaultBinaries serves this process's executable, with the user cache for builds.
func DefaultBinaries() *Binaries {
	defaultBinariesOnce.Do(func() {
		self, _ := os.Executable()
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		defaultBinaries = NewBinaries(self, filepath.Join(dir, "godist", "workers"))
	})
	return defaultBinaries
}

// NewBinaries serves self (a godist executable) and builds into cacheDir.
func NewBinaries(self, cacheDir string) *Binaries {
	return &Binaries{self: self, cacheDir: cacheDir, src: sourceDir(), byPlat: map[string]*platformBinary{}}
}

// Host is the worker binary for this machine's platform.
func (b *Binaries) Host() (*Binary, error) {
	return b.For(context.Background(), runtime.GOOS, runtime.GOARCH)
}

// For returns the worker binary for goos/goarch, building it on first use.
func (b *Binaries) For(ctx context.Context, goos, goarch string) (*Binary, error) {
	key := goos + "/" + goarch
	b.mu.Lock()
	pb := b.byPlat[key]
	if pb == nil {
		pb = &platformBinary{}
		b.byPlat[key] = pb
	}
	b.mu.Unlock()
	pb.once.Do(func() { pb.bin, pb.err = b.find(ctx, goos, goarch) })
	return pb.bin, pb.err
}

func (b *Binaries) find(ctx context.Context, goos, goarch string) (*Binary, error) {
	env := "GODIST_WORKER_" + strings.ToUpper(goos) + "_" + strings.ToUpper(goarch)
	if p := os.Getenv(env); p != "" {
		bin, err := describe(p, goos, goarch)
		if err != nil {
			return nil, fmt.Errorf("gateway: %s: %w", env, errors.Unwrap(err))
		}
		return bin, nil
	}
	if goos == runtime.GOOS && goarch == runtime.GOARCH && isStatic(b.self) {
		return describe(b.self, goos, goarch)
	}
	self, err := filesum.SHA256(b.self)
	if err != nil {
		return nil, fmt.Errorf("gateway: hashing %s: %w", b.self, err)
	}
	out := filepath.Join(b.cacheDir, self[:16]+"-"+goos+"-"+goarch, "godist")
	if _, err := os.Stat(out); err == nil {
		return describe(out, goos, goarch)
	}
	src := b.src
	if src == "" {
		return nil, fmt.Errorf("gateway: no static godist worker for %s/%s and no godist source to build one; build it with `CGO_ENABLED=0 GOOS=%s GOARCH=%s go build -o FILE ./cmd/godist` and set %s=FILE",
			goos, goarch, goos, goarch, env)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, fmt.Errorf("gateway: building a %s/%s worker: %w", goos, goarch, err)
	}
	tmp := out + fmt.Sprintf(".tmp%d", os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, "./cmd/godist")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=-buildvcs=false")
	if msg, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("gateway: building a %s/%s worker: %w", goos, goarch, ctx.Err())
		}
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("gateway: building a %s/%s worker needs the go command (%v); or set %s to a static godist for %s/%s",
				goos, goarch, err, env, goos, goarch)
		}
		return nil, &BuildError{GOOS: goos, GOARCH: goarch, Err: err, Output: string(msg)}
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("gateway: building a %s/%s worker: %w", goos, goarch, err)
	}
	return describe(out, goos, goarch)
}

// BuildError is a failed build of a worker binary (for another platform, or for this one
// when this executable is not static).
type BuildError struct {
	GOOS, GOARCH string
	Err          error  // go build's (an *exec.ExitError)
	Output       string // what go build printed
}

// Error is one line: the build's first error, not its "# package" header.
func (e *BuildError) Error() string {
	msg := fmt.Sprintf("gateway: building a %s/%s worker: go build: %v", e.GOOS, e.GOARCH, e.Err)
	if l := firstCause(e.Output); l != "" {
		msg += ": " + l
	}
	return msg
}

func (e *BuildError) Unwrap() error { return e.Err }

// firstCause is the first line of go build's output that says what went wrong: not a
// "# importpath" header, nor the go command's progress ("go: downloading ...").
func firstCause(out string) string {
	first := ""
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if first == "" {
			first = l
		}
		if strings.HasPrefix(l, "# ") || strings.HasPrefix(l, "go: downloading ") || strings.HasPrefix(l, "go: finding ") {
			continue
		}
		return l
	}
	return first
}

func describe(path, goos, goarch string) (*Binary, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: worker binary: %w", err)
	}
	h, err := filesum.SHA256(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: worker binary: %w", err)
	}
	return &Binary{GOOS: goos, GOARCH: goarch, Path: path, Hash: h, Size: st.Size()}, nil
}

// isStatic reports whether an executable runs on any host of its platform: an ELF one
// that needs no dynamic loader (and so no libc), or a Mach-O one built without cgo (every
// Go binary for macOS links libSystem, which every Mac has, and nothing else then).
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return isMachONoCgo(path)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// sourceDir finds godist's module source, for building workers for other platforms: the
// directory this file was compiled from, if it is still there.
func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	root := filepath.Dir(filepath.Dir(file))
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.Contains(mod, []byte("module github.com/godist/godist\n")) {
		return ""
	}
	return root
}

func isMachONoCgo(path string) bool {
	f, err := macho.Open(path)
	if err != nil {
		return false
	}
	f.Close()
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "CGO_ENABLED" {
			return s.Value == "0"
		}
	}
	return false
}
