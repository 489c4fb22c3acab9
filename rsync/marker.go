package rsync

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// The sync marker: a file at the top of every destination a tree sync has written,
// naming the entries that sync wrote there. It is what makes a directory godist's: in a
// destination without it, a sync deletes nothing (unless told to delete); in one with
// it, a sync deletes the entries the marker names that the source no longer has, and
// keeps any other. It is never sent, compared or deleted as an entry of a tree.
//
// Its format (PROTOCOL.md): the line markerHeader, then one line per entry, the entry's
// path quoted as a Go string (strconv.Quote: any byte of a name survives, a newline
// included), in manifest order.
const (
	markerName   = ".godist-sync"
	markerHeader = "godist-sync 1"
	// maxMarkerLine bounds one line: a quoted path of maxPathLen bytes, each \xNN.
	maxMarkerLine = 4*maxPathLen + 2
)

// errNotMarker is a file in the marker's place that is not a marker of godist's.
var errNotMarker = errors.New("not a godist sync marker")

// parseMarker reads a marker and returns the paths it names. Anything but a marker (a
// wrong header, a line that is not one quoted path, a path checkPath refuses, too many
// entries) is errNotMarker, with what was wrong.
func parseMarker(r io.Reader) (map[string]struct{}, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxMarkerLine+1)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errNotMarker, fmt.Sprintf(format, args...))
	}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, bad("%v", err)
		}
		return nil, bad("empty")
	}
	if sc.Text() != markerHeader {
		return nil, bad("first line %q, want %q", firstBytes(sc.Text(), 40), markerHeader)
	}
	paths := map[string]struct{}{}
	line := 1
	for sc.Scan() {
		line++
		p, err := strconv.Unquote(sc.Text())
		if err != nil || len(sc.Bytes()) == 0 || sc.Bytes()[0] != '"' {
			return nil, bad("line %d is not a quoted path", line)
		}
		if err := checkPath(p); err != nil {
			return nil, bad("line %d: %v", line, err)
		}
		if len(paths) >= maxEntries {
			return nil, bad("more than %d entries", maxEntries)
		}
		paths[p] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, bad("line %d: %v", line+1, err)
	}
	return paths, nil
}

func firstBytes(s string, n int) string { return s[:min(n, len(s))] }

// encodeMarker writes the marker of paths.
func encodeMarker(w io.Writer, paths []string) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(markerHeader + "\n")
	var buf []byte
	for _, p := range paths {
		buf = strconv.AppendQuote(buf[:0], p)
		buf = append(buf, '\n')
		bw.Write(buf)
	}
	return bw.Flush()
}

// readMarker reads the marker of the destination root: the paths it names and whether
// there is one. A marker that is not a regular file, or not a marker, is an error.
func readMarker(root *os.Root) (map[string]struct{}, bool, error) {
	fi, err := root.Lstat(markerName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%w: not a regular file (%v)", errNotMarker, fi.Mode().Type())
	}
	f, err := root.OpenFile(markerName, os.O_RDONLY|oNoFollow|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%w: replaced while being read", errNotMarker)
	}
	paths, err := parseMarker(f)
	if err != nil {
		return nil, false, err
	}
	return paths, true, nil
}

// writeMarker replaces the marker of root with one naming paths, atomically.
func writeMarker(root *os.Root, token string, paths []string, fsync bool) error {
	tmp := tempName(token, markerName)
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("rsync: writing the sync marker: %w", err)
	}
	err = encodeMarker(f, paths)
	if err == nil && fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, markerName)
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("rsync: writing the sync marker: %w", err)
	}
	return nil
}
