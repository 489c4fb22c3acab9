package runner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/internal/filesum"
	"github.com/godist/godist/internal/treesnap"
)

// An unchanged tree needs no go command. On a warm run go list resolves the patterns again
// and go test -c hashes every input of every binary to find them up to date: on a small
// module that is most of a run. So a build that succeeded for every package leaves, beside
// its binaries, a record of the tree it was built from (internal/treesnap: every file's
// size, inode, modification and status change times, taken before go started) and of the
// binaries it left. A later run of the same patterns, flags, environment and go command
// whose tree gives the same snapshot, and whose binaries are the files the record names,
// runs them at once, without go list or go test -c.
//
// What the snapshot cannot see turns it off: a go.work (other modules are inputs), a
// replace by a local directory, a symbolic link to a directory, more than maxTreeFiles
// entries, a platform without status change times, or a change so close before the walk
// that a later one could share its times (treesnap.Snap.Trusted). Where no Go file of the
// module embeds files or uses cgo, only its sources count (treesnap.IsSource): a test
// that writes into the tree does not keep the next run waiting for go. Anything else that goes
// into a build is in the key: the go command found on PATH (its file), and every GO*,
// CGO_* and C toolchain variable. A build with a failure leaves no record.

const upToDateVersion = 2

// maxTreeFiles bounds the walk: past it the tree is left to go.
const maxTreeFiles = 50000

type upToDateRecord struct {
	Version int           `json:"version"`
	Key     string        `json:"key"`
	Tree    treesnap.Snap `json:"tree"`
	// SourcesOnly: no Go file of the module embeds files or uses cgo, so the build read
	// only the files of the tree's sources view, and only they must be unchanged (a test
	// that writes into the tree does not stop the next run from starting at once).
	SourcesOnly bool                   `json:"sources_only"`
	Packages    []gobuild.Package      `json:"packages"`
	Binaries    map[string]binIdentity `json:"binaries"` // import path -> its binary in keep
}

// binIdentity is a binary's path and what tells it from another file there
// (filesum.ID: go renames a new binary into place).
type binIdentity struct {
	Path string `json:"path"`
	filesum.ID
}

func identityOf(path string) (binIdentity, bool) {
	id, ok := filesum.IDOf(path)
	if !ok || id.Ino == 0 {
		return binIdentity{}, false // no inode here: a replaced file could look the same
	}
	return binIdentity{Path: path, ID: id}, true
}

// upToDate is what the run knows of its tree before go runs.
type upToDate struct {
	key  string
	keep string // the binary directory the record lives in
	snap treesnap.Snap
	rec  *upToDateRecord // the record the tree matches, nil if none
}

// buildEnvKey is what besides the tree decides what go test -c builds: the go command and
// the C compilers (their files), the variables go reads, and its go env -w settings.
func buildEnvKey() string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(k, "GO") && !strings.HasPrefix(k, "GODIST_")) || strings.HasPrefix(k, "CGO_") {
			env = append(env, kv)
			continue
		}
		switch k {
		case "CC", "CXX", "FC", "AR", "PKG_CONFIG", "PATH", "HOME", "XDG_CONFIG_HOME":
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	// The programs: the go command, and the C compilers cgo would run (an upgrade of either
	// replaces its file).
	var progs []string
	for _, name := range []string{"go", os.Getenv("CC"), os.Getenv("CXX"), "gcc", "g++", "clang", "cc"} {
		id := binIdentity{}
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			id, _ = identityOf(p)
		}
		progs = append(progs, fmt.Sprintf("%s=%+v", name, id))
	}
	goBin := strings.Join(progs, "\x00")
	// go env -w settings: go reads them from its own file.
	goEnv := os.Getenv("GOENV")
	if goEnv == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			goEnv = filepath.Join(dir, "go", "env")
		}
	}
	var settings []byte
	if goEnv != "" && goEnv != "off" {
		settings, _ = os.ReadFile(goEnv)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%q\x00%s\x00%q", env, goBin, settings)
	return hex.EncodeToString(h.Sum(nil))
}

// takeTree snapshots the module tree of the run, for the record check and for a record
// this run's build may leave; nil when the tree cannot be vouched for.
func (r *runner) takeTree(key string, bopts gobuild.Options, g *guessedBinDir) *upToDate {
	if g == nil {
		return nil
	}
	for _, f := range bopts.Flags {
		if name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "="); name == "modfile" || name == "overlay" {
			return nil // inputs outside the tree
		}
	}
	root, keep := g.root, g.keep
	if hasLocalReplace(root) {
		return nil
	}
	skip := map[string]bool{}
	for _, f := range r.ownOutputs() {
		if abs, err := filepath.Abs(f); err == nil {
			skip[abs] = true
		}
	}
	snap, err := treesnap.Take(root, map[string]bool{".git": true}, skip, maxTreeFiles)
	if err != nil {
		return nil
	}
	u := &upToDate{key: key + "-" + buildEnvKey(), keep: keep, snap: snap}
	data, err := os.ReadFile(u.recordPath())
	if err != nil {
		return u
	}
	var rec upToDateRecord
	if json.Unmarshal(data, &rec) != nil || rec.Version != upToDateVersion || rec.Key != u.key || len(rec.Packages) == 0 {
		return u
	}
	was, is := rec.Tree.All, snap.All
	if rec.SourcesOnly {
		was, is = rec.Tree.Sources, snap.Sources
	}
	if !rec.Tree.Trusted(was) || !was.Same(is) {
		return u
	}
	u.rec = &rec
	return u
}

// ownOutputs are the files this run writes, which may be in the tree.
func (r *runner) ownOutputs() []string {
	c := r.cfg
	out := append([]string(nil), c.OwnFiles...)
	for _, f := range []string{c.CoverProfile, c.DurationsFile} {
		if f != "" {
			out = append(out, f, filepath.Join(c.Dir, f))
		}
	}
	return out
}

func (u *upToDate) recordPath() string {
	return filepath.Join(u.keep, "uptodate", u.key[:32]+".json")
}

// fresh gives the binaries of the record, in pkgs' order, when every one is still the
// file the record names (under the binary directory's lock); ok is false otherwise.
func (u *upToDate) fresh(keep string) (bins []gobuild.Binary, ok bool) {
	if u == nil || u.rec == nil || keep != u.keep {
		return nil, false
	}
	for _, p := range u.rec.Packages {
		if !p.HasTests {
			continue
		}
		want, ok := u.rec.Binaries[p.ImportPath]
		if !ok {
			return nil, false
		}
		if got, ok := identityOf(want.Path); !ok || got != want {
			return nil, false
		}
		bins = append(bins, gobuild.Binary{Package: p, Path: want.Path})
	}
	return bins, true
}

// save leaves the record of a build of pkgs into keep that succeeded for every package:
// bins are its binaries there.
func (u *upToDate) save(keep string, pkgs []gobuild.Package, bins []gobuild.Binary) {
	// The sources are some of the files: untrusted, so is the whole tree.
	if u == nil || keep != u.keep || !u.snap.Trusted(u.snap.Sources) {
		return
	}
	rec := upToDateRecord{Version: upToDateVersion, Key: u.key, Tree: u.snap, Packages: pkgs, Binaries: map[string]binIdentity{}}
	rec.SourcesOnly = !readsOtherFiles(u.snap.GoFiles)
	if !rec.SourcesOnly && !u.snap.Trusted(u.snap.All) {
		return
	}
	for _, b := range bins {
		id, ok := identityOf(b.Path)
		if !ok {
			return
		}
		rec.Binaries[b.Package.ImportPath] = id
	}
	for _, p := range pkgs {
		if _, ok := rec.Binaries[p.ImportPath]; p.HasTests && !ok {
			return
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return
	}
	path := u.recordPath()
	if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
		writeFileAtomic(path, data)
	}
}

// forget removes the record: the build it would vouch for is being replaced.
func (u *upToDate) forget() {
	if u != nil {
		os.Remove(u.recordPath())
	}
}

// readsOtherFiles reports whether a build of the module's packages may read files other
// than its sources (treesnap.IsSource): one of its Go files (goFiles, as the tree's walk
// found them) embeds files (go:embed) or
// uses cgo, whose directives may name libraries and headers of any name. It errs on the
// side of yes: a mention in a comment counts, and so does a file it cannot read.
func readsOtherFiles(goFiles []string) bool {
	for _, path := range goFiles {
		data, err := os.ReadFile(path)
		if err != nil || bytes.Contains(data, []byte("go:embed")) || bytes.Contains(data, []byte(`"C"`)) {
			return true
		}
	}
	return false
}

// hasLocalReplace reports whether root's go.mod replaces a module by a directory (whose
// files are inputs outside the tree), or cannot be read.
func hasLocalReplace(root string) bool {
	path := filepath.Join(root, "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	f, err := modfile.ParseLax(path, data, nil)
	if err != nil {
		return true
	}
	for _, r := range f.Replace {
		if r.New.Version == "" {
			return true
		}
	}
	return false
}
