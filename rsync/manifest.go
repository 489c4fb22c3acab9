package rsync

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// entry is one entry of a tree: a directory, a regular file or a symlink.
type entry struct {
	path   string // relative, '/'-separated, clean
	kind   byte   // entDir, entFile, entLink
	mode   uint32 // Unix permission bits with setuid, setgid, sticky (07777)
	size   int64  // files
	mtime  int64  // files: modification time, Unix nanoseconds
	target string // symlinks
}

const maxFileSize = 1 << 62

// unixMode converts the permission part of an fs.FileMode to Unix bits.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// fileMode converts Unix permission bits to an fs.FileMode.
func fileMode(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// encodeEntry appends e to b; prev is the path of the entry before it ("" for the first),
// whose common prefix is not repeated.
func encodeEntry(b *wbuf, prev string, e *entry) {
	n := 0
	for n < len(prev) && n < len(e.path) && prev[n] == e.path[n] {
		n++
	}
	b.uvarint(uint64(n))
	b.str(e.path[n:])
	b.byte(e.kind)
	b.uvarint(uint64(e.mode))
	switch e.kind {
	case entFile:
		b.uvarint(uint64(e.size))
		b.varint(e.mtime)
	case entLink:
		b.str(e.target)
	}
}

// decodeEntry reads one entry written by encodeEntry after prev. It checks the encoding
// and the limits, not the path's safety (checkPath) nor its order.
func decodeEntry(r *rbuf, prev string) entry {
	var e entry
	n := r.uint(uint64(len(prev)), "shared prefix")
	suffix := r.bytes(maxPathLen, "path")
	if r.err != nil {
		return e
	}
	if int(n)+len(suffix) > maxPathLen {
		r.fail("path too long")
		return e
	}
	e.path = prev[:n] + string(suffix)
	e.kind = r.byte()
	e.mode = uint32(r.uint(0o7777, "mode"))
	switch e.kind {
	case entDir:
	case entFile:
		e.size = int64(r.uint(maxFileSize, "size"))
		e.mtime = r.varint()
	case entLink:
		e.target = r.str(maxLinkLen, "symlink target")
	default:
		r.fail("unknown entry kind %#x", e.kind)
	}
	return e
}

// tree is a walked source tree, ready to be sent to any number of receivers.
type tree struct {
	root    string
	entries []entry
	msgs    [][]byte // MANIFEST messages, then MANIFEST_END
	skipped int
	bytes   int64 // total size of the files

	zonce sync.Once
	zmsgs [][]byte // msgs compressed (when that makes them smaller)
}

// compressed returns the manifest messages compressed, computed once for every receiver.
func (t *tree) compressed() [][]byte {
	t.zonce.Do(func() {
		t.zmsgs = make([][]byte, len(t.msgs))
		for i, m := range t.msgs {
			t.zmsgs[i] = compressMsg(m)
		}
	})
	return t.zmsgs
}

// EntryError is an entry of the source tree that a sync cannot carry: a socket, a device,
// a named pipe, a path deeper or longer than the limits (PROTOCOL.md), a file it cannot
// read. Sync fails with it unless Options.Warn is set (then the entry is skipped and
// reported there): an entry is never left out in silence.
type EntryError struct {
	Path   string // on the local machine
	Reason string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("rsync: cannot sync %q: %s (exclude it to sync the rest)", e.Path, e.Reason)
}

// isOwnFile reports whether rel is a file of godist rsync's own that a tree never
// carries: the sync marker at the top (the source was itself a destination), temp files.
func isOwnFile(rel string) bool {
	return rel == markerName || strings.HasPrefix(baseOf(rel), tempPrefix)
}

// walkTree walks root (following root itself if it is a symlink, nothing below it) and
// encodes its manifest. Entries excluded by f are left out (a directory with everything in
// it), and so are godist's own files (isOwnFile). An entry that cannot be synced (a
// socket, device or FIFO, a path beyond the limits) is an *EntryError; with warn, it is
// passed to warn, left out and counted in skipped instead.
func walkTree(root string, f *Filter, warn func(string, error)) (*tree, error) {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("rsync: %s is not a directory", root)
	}
	t := &tree{root: real}
	// cannot handles an entry that cannot be synced: an error, or with warn a skip.
	cannot := func(rel, reason string) error {
		err := &EntryError{Path: filepath.Join(root, filepath.FromSlash(rel)), Reason: reason}
		if warn == nil {
			return err
		}
		t.skipped++
		warn(rel, err)
		return nil
	}
	err = filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == real {
			return nil
		}
		rel := filepath.ToSlash(path[len(real)+1:])
		if f.Match(rel, d.IsDir()) || isOwnFile(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if err := checkPath(rel); err != nil {
			if err := cannot(rel, err.(*PathError).Reason); err != nil {
				return err
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone since the directory was read
			}
			return err
		}
		e := entry{path: rel, mode: unixMode(info.Mode())}
		switch {
		case d.IsDir():
			e.kind = entDir
		case info.Mode().IsRegular():
			e.kind, e.size, e.mtime = entFile, info.Size(), info.ModTime().UnixNano()
			t.bytes += e.size
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := checkLinkTarget(target); err != nil {
				return cannot(rel, err.(*PathError).Reason)
			}
			e.kind, e.target, e.mode = entLink, target, 0o777
		default:
			return cannot(rel, kindName(info.Mode())+" (a sync carries regular files, directories and symlinks)")
		}
		t.entries = append(t.entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(t.entries) > maxEntries {
		return nil, fmt.Errorf("rsync: %s: %d entries, more than the %d a sync takes", root, len(t.entries), maxEntries)
	}
	prev := ""
	msg := newMsg(msgManifest, bodyGoal)
	for i := range t.entries {
		e := &t.entries[i]
		encodeEntry(&msg, prev, e)
		prev = e.path
		if len(msg) >= bodyGoal {
			t.msgs = append(t.msgs, msg)
			msg = newMsg(msgManifest, bodyGoal)
		}
	}
	if len(msg) > 2 {
		t.msgs = append(t.msgs, msg)
	}
	end := newMsg(msgManifestEnd, 8)
	end.uvarint(uint64(len(t.entries)))
	t.msgs = append(t.msgs, end)
	return t, nil
}

// kindName names the type of an entry that is not a file, directory or symlink.
func kindName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return fmt.Sprintf("an entry of type %v", m.Type())
}

// localPath is the path on this machine of a tree path.
func (t *tree) localPath(rel string) string {
	return filepath.Join(t.root, filepath.FromSlash(rel))
}
