package rsync

import (
	"fmt"
	"strings"
)

// Limits on names, checked by both ends (the receiver whatever the sender says).
const (
	maxPathLen  = 4096 // bytes of a relative path in the tree
	maxNameLen  = 255  // bytes of one path component
	maxLinkLen  = 4096 // bytes of a symlink's target
	maxPatterns = 4096 // exclude patterns in one hello
	maxEntries  = 1 << 26
	maxDestLen  = 4096
	maxDepth    = 256 // directory nesting of a tree
	tempPrefix  = ".godist-rsync."
	maxIdentity = 512
)

// PathError is a path of the tree that the receiver (or the sender, before sending)
// refuses, with the reason.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return fmt.Sprintf("rsync: unsafe path %q: %s", e.Path, e.Reason) }

// checkPath reports whether p may name an entry of a synced tree: a clean relative path
// with '/' separators, no empty, "." or ".." components, no NUL, no component that is a
// temp file of this package, not the sync marker, within the length and depth limits.
// Every other byte is carried as it is: a newline, a control character, ':' and '\' are
// legal in POSIX names, and receivers are POSIX systems. It is the receiver's first line
// of defence: a path that passes cannot leave the destination lexically.
func checkPath(p string) error {
	bad := func(reason string) error { return &PathError{Path: p, Reason: reason} }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > maxPathLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxPathLen))
	case p[0] == '/':
		return bad("absolute")
	case strings.IndexByte(p, 0) >= 0:
		return bad("NUL byte")
	case p == markerName:
		return bad("reserved name (the sync marker of godist rsync)")
	}
	depth := 0
	for comp := range strings.SplitSeq(p, "/") {
		depth++
		switch {
		case comp == "":
			return bad("empty component (not clean)")
		case comp == ".":
			return bad(`"." component (not clean)`)
		case comp == "..":
			return bad(`".." component`)
		case len(comp) > maxNameLen:
			return bad(fmt.Sprintf("a name longer than %d bytes", maxNameLen))
		case strings.HasPrefix(comp, tempPrefix):
			return bad("reserved name (temp files of godist rsync)")
		}
	}
	if depth > maxDepth {
		return bad(fmt.Sprintf("more than %d levels deep", maxDepth))
	}
	return nil
}

// checkLinkTarget reports whether t may be the target of a symlink in the tree. Targets
// are kept as they are (a link pointing out of the tree stays a link): the receiver never
// resolves a path through a symlink, so a target cannot make it write anywhere.
func checkLinkTarget(t string) error {
	switch {
	case t == "":
		return &PathError{Path: t, Reason: "empty symlink target"}
	case len(t) > maxLinkLen:
		return &PathError{Path: t, Reason: "symlink target too long"}
	case strings.IndexByte(t, 0) >= 0:
		return &PathError{Path: t, Reason: "NUL in symlink target"}
	}
	return nil
}

// comparePaths orders paths as a depth-first walk that visits the entries of a directory
// in byte order of their names (filepath.WalkDir's order): component by component.
func comparePaths(a, b string) int {
	for {
		ai := strings.IndexByte(a, '/')
		bi := strings.IndexByte(b, '/')
		ac, bc := a, b
		if ai >= 0 {
			ac = a[:ai]
		}
		if bi >= 0 {
			bc = b[:bi]
		}
		if c := strings.Compare(ac, bc); c != 0 {
			return c
		}
		switch {
		case ai < 0 && bi < 0:
			return 0
		case ai < 0:
			return -1 // a is an ancestor of b
		case bi < 0:
			return 1
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}

// parentOf is the directory part of a tree path ("" for the root).
func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// baseOf is the last component of a tree path.
func baseOf(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
