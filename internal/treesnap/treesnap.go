// Package treesnap tells whether anything in a directory tree changed, from what the file
// system records of each entry (its path, type, size, inode, modification and status
// change times) without reading a file: a few milliseconds for a module's tree.
//
// Directories count by their paths only: their times move with every entry added,
// removed or renamed in them, which their entries tell.
//
// A snapshot vouches for the tree only when nothing in it changed shortly before the walk
// (Trusted): a change in the same clock tick as an earlier one could leave every recorded
// time as it was. The status change time (ctime) moves on every write, rename, chmod and
// link, and no program can set it back, so a file rewritten with its old size and
// modification time (cp -p, touch -r) is still seen as changed.
package treesnap

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godist/godist/internal/filesum"
)

// ErrUnsure is the error of a walk that cannot vouch for the tree: a symbolic link to a
// directory (its files are outside the walk), more entries than the limit, or a platform
// without status change times.
var ErrUnsure = errors.New("treesnap: the tree cannot be vouched for")

// View is what a walk saw of one set of the tree's entries.
type View struct {
	Digest string    `json:"digest"` // of every entry's path, type, size, inode and times
	Files  int       `json:"files"`
	Newest time.Time `json:"newest"` // the latest modification or status change among them
}

// Snap is what a walk of a tree saw: of all its entries, and of the files a go build reads
// by their names (Sources: Go, assembly, C and the like, .syso, .pgo, go.mod, go.sum,
// go.work, vendor/modules.txt), which are all it reads unless a package embeds files or
// links what cgo names.
type Snap struct {
	All     View      `json:"all"`
	Sources View      `json:"sources"`
	Taken   time.Time `json:"taken"`  // when the walk started
	Coarse  bool      `json:"coarse"` // every time was whole seconds: a coarse file system
	// GoFiles are the paths of the Go files the walk saw (not recorded: for the caller
	// that wants to read them without walking the tree again).
	GoFiles []string `json:"-"`
}

// sourceExt are the file name extensions of what go build reads of a package by name.
var sourceExt = map[string]bool{
	".go": true, ".s": true, ".S": true, ".sx": true, ".c": true, ".h": true, ".hh": true,
	".hpp": true, ".hxx": true, ".cc": true, ".cpp": true, ".cxx": true, ".m": true,
	".f": true, ".F": true, ".for": true, ".f90": true, ".syso": true, ".swig": true,
	".swigcxx": true, ".pgo": true,
}

// IsSource reports whether a file of this name is one go build reads by its name.
func IsSource(name string) bool {
	switch name {
	case "go.mod", "go.sum", "go.work", "go.work.sum", "modules.txt":
		return true
	}
	return sourceExt[filepath.Ext(name)]
}

// Take walks root, leaving out the directories named in skipDirs (by base name, e.g.
// ".git") and the files in skipFiles (absolute paths: outputs of the caller's own). It
// stops with ErrUnsure past limit entries.
func Take(root string, skipDirs map[string]bool, skipFiles map[string]bool, limit int) (Snap, error) {
	s := Snap{Taken: time.Now(), Coarse: true}
	all, src := sha256.New(), sha256.New()
	var buf [8]byte
	num := func(h hash.Hash, v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	add := func(rel string, fi fs.FileInfo, source bool) error {
		if fi.IsDir() {
			// Its times move whenever an entry is added, removed or renamed in it, which
			// the entries' own paths and inodes tell; and with any file left out.
			all.Write([]byte(rel))
			all.Write([]byte{0})
			num(all, uint64(fi.Mode()))
			return nil
		}
		ct, ok := filesum.ChangeTime(fi)
		if !ok {
			return ErrUnsure
		}
		mt := fi.ModTime()
		views := []*View{&s.All}
		hs := []hash.Hash{all}
		if source {
			views, hs = append(views, &s.Sources), append(hs, src)
		}
		for _, t := range []time.Time{mt, ct} {
			for _, v := range views {
				if t.After(v.Newest) {
					v.Newest = t
				}
			}
			if t.Nanosecond() != 0 {
				s.Coarse = false
			}
		}
		for i, h := range hs {
			h.Write([]byte(rel))
			h.Write([]byte{0})
			num(h, uint64(fi.Mode()))
			num(h, uint64(fi.Size()))
			num(h, filesum.Inode(fi))
			num(h, uint64(mt.UnixNano()))
			num(h, uint64(ct.UnixNano()))
			views[i].Files++
		}
		return nil
	}
	entries := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && skipDirs[d.Name()] {
			return filepath.SkipDir
		}
		if skipFiles[path] {
			return nil
		}
		entries++
		if entries > limit {
			return ErrUnsure
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		source := !fi.IsDir() && IsSource(d.Name())
		if source && strings.HasSuffix(d.Name(), ".go") {
			s.GoFiles = append(s.GoFiles, path)
		}
		if err := add(rel, fi, source); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// What it points to is what the build reads.
			target, err := os.Stat(path)
			if err != nil {
				return nil // dangling: its own entry is all there is
			}
			if target.IsDir() {
				return ErrUnsure
			}
			return add(rel+"\x00->", target, source)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrUnsure) {
			return Snap{}, err
		}
		return Snap{}, fmt.Errorf("treesnap: %w", err)
	}
	s.All.Digest = hex.EncodeToString(all.Sum(nil))
	s.Sources.Digest = hex.EncodeToString(src.Sum(nil))
	return s, nil
}

// Trusted reports whether s vouches for view v of the tree as it was when the walk
// started: none of its entries changed within one tick of the file system's clock before
// it (100 ms, or 2 s on a file system of whole seconds), so that any later change shows in
// their times.
func (s Snap) Trusted(v View) bool {
	margin := 100 * time.Millisecond
	if s.Coarse {
		margin = 2 * time.Second
	}
	return v.Digest != "" && v.Newest.Before(s.Taken.Add(-margin))
}

// Same reports whether two walks saw the same entries.
func (v View) Same(o View) bool { return v.Digest != "" && v.Digest == o.Digest && v.Files == o.Files }
