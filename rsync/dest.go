package rsync

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// RefusedError is a destination that a receiver refuses to sync into, before it has
// written anything: /, $HOME, the godist cache root or a directory holding one of them,
// a relative path that climbs out of the receiver's working directory, or a directory
// whose sync marker is not godist's. It crosses the wire in the REPLY (state refused).
type RefusedError struct {
	Dest   string // the destination as the sender gave it
	Reason string // one line
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("rsync: destination %q refused: %s", e.Dest, e.Reason)
}

// protected is a directory a sync never goes into, nor into a directory holding it.
type protected struct {
	what string // "/", "$HOME", "the godist cache root"
	path string // resolved
}

// protectedDirs lists /, $HOME and ${XDG_CACHE_HOME:-$HOME/.cache}/godist of this
// process, resolved (symlinks followed, as far as they exist) from cwd.
func protectedDirs(cwd string) []protected {
	out := []protected{{"/", "/"}}
	home := os.Getenv("HOME")
	if home != "" {
		if p, _, err := resolveDest(cwd, home); err == nil {
			out = append(out, protected{"$HOME", p})
		}
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" && home != "" {
		cache = filepath.Join(home, ".cache")
	}
	if cache != "" {
		if p, _, err := resolveDest(cwd, filepath.Join(cache, "godist")); err == nil {
			out = append(out, protected{"the godist cache root", p})
		}
	}
	return out
}

// checkDest decides whether dest (relative: to the working directory) may be synced
// into, before anything is written, and returns it resolved: an absolute path without
// symlinks (as far as it exists) or "." and ".." components.
//
// It refuses an empty destination or one with a NUL; a relative one whose ".."
// components climb out of the working directory (above it, or back out of where a
// symlink led: "..", "a/../../b", "link/.."); one that is /, $HOME or the godist cache
// root, or a directory above one of them, once resolved. Symlinks in dest are otherwise
// followed, as the kernel would.
func checkDest(dest string) (string, error) {
	refuse := func(format string, args ...any) error {
		return &RefusedError{Dest: dest, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case dest == "":
		return "", refuse("empty (want a directory path)")
	case strings.IndexByte(dest, 0) >= 0:
		return "", refuse("NUL byte in the path")
	}
	cwd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("rsync: working directory: %w", err)
	}
	if real, err := filepath.EvalSymlinks(cwd); err == nil {
		cwd = real
	}
	real, climbs, err := resolveDest(cwd, dest)
	if err != nil {
		return "", err
	}
	if climbs {
		return "", refuse("climbs out of the working directory %s (a relative destination stays below it; give an absolute path to go elsewhere)", cwd)
	}
	for _, p := range protectedDirs(cwd) {
		switch {
		case real == p.path && p.what == "/":
			return "", refuse("it is / (a sync never goes into /, $HOME, the godist cache root or a directory above them)")
		case real == p.path:
			return "", refuse("it is %s (%s) (a sync never goes into /, $HOME, the godist cache root or a directory above them)", p.what, p.path)
		case isUnderDir(p.path, real):
			return "", refuse("it holds %s (%s) (a sync never goes into /, $HOME, the godist cache root or a directory above them)", p.what, p.path)
		}
	}
	return real, nil
}

// checkOpenedDest refuses the opened destination if it is the same directory as one of
// protectedDirs (by device and inode: a bind mount or a symlink swapped in meanwhile).
func checkOpenedDest(dest string, root *os.Root, cwd string) error {
	fi, err := root.Stat(".")
	if err != nil {
		return err
	}
	for _, p := range protectedDirs(cwd) {
		if pfi, err := os.Stat(p.path); err == nil && os.SameFile(fi, pfi) {
			return &RefusedError{Dest: dest, Reason: fmt.Sprintf("it is %s (%s) (a sync never goes into /, $HOME, the godist cache root or a directory above them)", p.what, p.path)}
		}
	}
	return nil
}

// isUnderDir reports whether p is strictly below dir (both absolute and clean).
func isUnderDir(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}

// maxDestLinks bounds the symlinks followed in resolving a destination (the kernel's 40).
const maxDestLinks = 40

// resolveDest resolves p (relative: to cwd, which is absolute and resolved) as the kernel
// would: symlinks are followed as they are met, ".." goes to the parent of where the
// path has got to. The part of p that does not exist yet is taken as it is written. It
// reports whether a ".." of p itself (not of a symlink's target) climbs out of cwd: where
// p is relative and the path has got to cwd itself or to a place that is not below it.
func resolveDest(cwd, p string) (string, bool, error) {
	type comp struct {
		name string
		ours bool // a component of p, not of a symlink's target
	}
	split := func(s string, ours bool) []comp {
		var out []comp
		for c := range strings.SplitSeq(s, "/") {
			if c != "" && c != "." {
				out = append(out, comp{c, ours})
			}
		}
		return out
	}
	relative := !filepath.IsAbs(p)
	cur := cwd
	if !relative {
		cur = "/"
	}
	todo := split(p, true)
	links, climbs, missing := 0, false, false
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if c.name == ".." {
			if c.ours && relative && !isUnderDir(cur, cwd) {
				climbs = true
			}
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c.name)
		if missing {
			cur = next
			continue
		}
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = true
			cur = next
		case err != nil:
			return "", false, fmt.Errorf("rsync: destination %q: %w", p, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			links++
			if links > maxDestLinks {
				return "", false, fmt.Errorf("rsync: destination %q: more than %d symlinks", p, maxDestLinks)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", false, fmt.Errorf("rsync: destination %q: %w", p, err)
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			todo = append(split(target, false), todo...)
		case fi.IsDir():
			cur = next
		default:
			return "", false, fmt.Errorf("rsync: destination %q: %s is not a directory", p, next)
		}
	}
	return cur, climbs, nil
}
