// Package filesum is the one sha256-of-a-file of godist (worker binaries, test binaries).
package filesum

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"strings"
)

// SHA256 is the hex sha256 of the file at path.
func SHA256(path string) (string, error) {
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

// GoBuildID is the Go build ID of the ELF executable at path (its .note.go.buildid: the
// link's action and content IDs, so one ID names one content), read without reading the
// rest of the file; ok=false when the file has none (not ELF, not Go).
func GoBuildID(path string) (id string, ok bool) {
	f, err := elf.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil || s.Size > 4096 {
		return "", false
	}
	data, err := s.Data()
	if err != nil || len(data) < 16 {
		return "", false
	}
	// An ELF note: namesz, descsz, type (4 bytes each), "Go\x00\x00", then the ID.
	order := f.ByteOrder
	namesz, descsz, typ := order.Uint32(data), order.Uint32(data[4:]), order.Uint32(data[8:])
	if namesz != 4 || typ != 4 || string(data[12:16]) != "Go\x00\x00" || uint64(16+descsz) > uint64(len(data)) || descsz == 0 {
		return "", false
	}
	return string(data[16 : 16+descsz]), true
}

// ContentID names the content of the executable at path: for a Go executable, the content
// part of its build ID (the last of actionID/contentID of its main package, then of its
// link: a page to read, not megabytes; not the whole ID, since a change that the linker
// drops, an unused function, leaves the same binary, as go test finds too); else its
// sha256.
func ContentID(path string) (string, error) {
	if id, ok := GoBuildID(path); ok && strings.Count(id, "/") == 3 {
		return "go-content-id:" + id[strings.LastIndex(id, "/")+1:], nil
	}
	return SHA256(path)
}

// ID tells a file from another one at the same path, from its metadata: a program that
// writes a new file and renames it into place (go does with binaries) gives another inode.
// Its status change time is left out: a hard link to the file, or the link's removal,
// moves it.
type ID struct {
	Ino  uint64 `json:"ino"`
	Size int64  `json:"size"`
	Mod  int64  `json:"mod"` // modification time, Unix nanoseconds
}

// IDOf is the ID of the regular file at path (links followed); ok is false if there is none.
func IDOf(path string) (id ID, ok bool) {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return ID{}, false
	}
	return ID{Ino: Inode(fi), Size: fi.Size(), Mod: fi.ModTime().UnixNano()}, true
}
