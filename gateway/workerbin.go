package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
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
	return &Binaries{self: self, cacheDir: cacheDir, byPlat: map[string]*platformBinary{}}
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
	if p := os.Getenv("GODIST_WORKER_" + strings.ToUpper(goos) + "_" + strings.ToUpper(goarch)); p != "" {
		return describe(p, goos, goarch)
	}
	if goos == runtime.GOOS && goarch == runtime.GOARCH && isStatic(b.self) {
		return describe(b.self, goos, goarch)
	}
	self, err := hashFile(b.self)
	if err != nil {
		return nil, fmt.Errorf("gateway: hashing %s: %w", b.self, err)
	}
	out := filepath.Join(b.cacheDir, self[:16]+"-"+goos+"-"+goarch, "godist")
	if _, err := os.Stat(out); err == nil {
		return describe(out, goos, goarch)
	}
	src := sourceDir()
	if src == "" {
		return nil, fmt.Errorf("gateway: no static godist worker for %s/%s and no godist source to build one; build it with `CGO_ENABLED=0 GOOS=%s GOARCH=%s go build -o FILE ./cmd/godist` and set GODIST_WORKER_%s_%s=FILE",
			goos, goarch, goos, goarch, strings.ToUpper(goos), strings.ToUpper(goarch))
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	tmp := out + fmt.Sprintf(".tmp%d", os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, "./cmd/godist")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=-buildvcs=false")
	if msg, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("gateway: building a %s/%s worker: %v: %s", goos, goarch, err, firstLine(msg))
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return describe(out, goos, goarch)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

func describe(path, goos, goarch string) (*Binary, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: worker binary: %w", err)
	}
	h, err := hashFile(path)
	if err != nil {
		return nil, err
	}
	return &Binary{GOOS: goos, GOARCH: goarch, Path: path, Hash: h, Size: st.Size()}, nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// isStatic reports whether an ELF executable needs no dynamic loader (and so no libc).
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
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
