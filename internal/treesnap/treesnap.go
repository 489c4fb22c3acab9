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
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/godist/godist/internal/filesum"
)

// ErrUnsure is the error of a walk that cannot vouch for the tree: a symbolic link to a
// directory (its files are outside the walk), more entries than the limit, or a platform
// without status change times.
var ErrUnsure = errors.New("treesnap: the tree cannot be vouched for")

// Snap is what a walk of a tree saw.
type Snap struct {
	Digest string    `json:"digest"` // of every entry's path, type, size, inode and times
	Files  int       `json:"files"`
	Newest time.Time `json:"newest"` // the latest modification or status change in the tree
	Taken  time.Time `json:"taken"`  // when the walk started
	Coarse bool      `json:"coarse"` // every time was whole seconds: a coarse file system
}

// Take walks root, leaving out the directories named in skipDirs (by base name, e.g.
// ".git") and the files in skipFiles (absolute paths: outputs of the caller's own). It
// stops with ErrUnsure past limit entries.
func Take(root string, skipDirs map[string]bool, skipFiles map[string]bool, limit int) (Snap, error) {
	s := Snap{Taken: time.Now(), Coarse: true}
	h := sha256.New()
	var buf [8]byte
	num := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	add := func(rel string, fi fs.FileInfo) error {
		if fi.IsDir() {
			// Its times move whenever an entry is added, removed or renamed in it, which
			// the entries' own paths and inodes tell; and with any file left out.
			h.Write([]byte(rel))
			h.Write([]byte{0})
			num(uint64(fi.Mode()))
			return nil
		}
		ct, ok := filesum.ChangeTime(fi)
		if !ok {
			return ErrUnsure
		}
		mt := fi.ModTime()
		for _, t := range []time.Time{mt, ct} {
			if t.After(s.Newest) {
				s.Newest = t
			}
			if t.Nanosecond() != 0 {
				s.Coarse = false
			}
		}
		h.Write([]byte(rel))
		h.Write([]byte{0})
		num(uint64(fi.Mode()))
		num(uint64(fi.Size()))
		num(filesum.Inode(fi))
		num(uint64(mt.UnixNano()))
		num(uint64(ct.UnixNano()))
		return nil
	}
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
		s.Files++
		if s.Files > limit {
			return ErrUnsure
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := add(rel, fi); err != nil {
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
			return add(rel+"\x00->", target)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrUnsure) {
			return Snap{}, err
		}
		return Snap{}, fmt.Errorf("treesnap: %w", err)
	}
	s.Digest = hex.EncodeToString(h.Sum(nil))
	return s, nil
}

// Trusted reports whether s vouches for the tree as it was when the walk started: no
// entry changed within one tick of the file system's clock before it (100 ms, or 2 s on a
// file system of whole seconds), so that any later change shows in its times.
func (s Snap) Trusted() bool {
	margin := 100 * time.Millisecond
	if s.Coarse {
		margin = 2 * time.Second
	}
	return s.Digest != "" && s.Newest.Before(s.Taken.Add(-margin))
}

// Same reports whether two snapshots saw the same tree.
func (s Snap) Same(o Snap) bool { return s.Digest != "" && s.Digest == o.Digest && s.Files == o.Files }
