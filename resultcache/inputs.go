package resultcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// testlogMagic begins a test binary's -test.testlogfile (testing/internal/testdeps).
var testlogMagic = []byte("# test log\n")

// LogOp is one line of a test log: Op is getenv, open, stat or chdir.
type LogOp struct {
	Op, Name string
}

// MaxTestLog is the largest test log read; a larger one makes the result uncacheable.
const MaxTestLog = 8 << 20

// ParseTestLog reads what a test process wrote to its -test.testlogfile. A log that does
// not begin with the magic line or does not end with a newline (the process died while
// writing it), or has a line of an unknown kind, is an error: the result is not cached.
func ParseTestLog(data []byte) ([]LogOp, error) {
	if !bytes.HasPrefix(data, testlogMagic) {
		return nil, errors.New("test log: no \"# test log\" header")
	}
	if data[len(data)-1] != '\n' {
		return nil, errors.New("test log: cut short")
	}
	var ops []LogOp
	for _, line := range bytes.Split(bytes.TrimPrefix(data, testlogMagic), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		op, name, ok := strings.Cut(string(line), " ")
		if !ok || name == "" {
			return nil, fmt.Errorf("test log: malformed line %q", line)
		}
		switch op {
		case "getenv", "open", "stat", "chdir":
			ops = append(ops, LogOp{op, name})
		default:
			return nil, fmt.Errorf("test log: unknown operation %q", op)
		}
	}
	return ops, nil
}

// Where tells how to read one test process's log.
type Where struct {
	// Dir is the directory the process started in, in the process's own terms.
	Dir string
	// Local maps a path of the process (absolute, cleaned) to the same file on this
	// machine; ok=false for a path that has no counterpart here. nil is the identity.
	Local func(path string) (local string, ok bool)
}

// Env gives the sum of an environment variable's value as a test process sees it.
type Env func(name string) string

// EnvSum is the sum Env gives for a value (set or not).
func EnvSum(value string, set bool) string {
	if !set {
		return "unset"
	}
	s := sha256.Sum256([]byte(value))
	return hex.EncodeToString(s[:])
}

// Inputs makes the inputs of a package's result from its processes' logs: the variables
// they read, with their sums from env; the files and directories under root that they
// opened or looked at, with their sums now. As go test does, files outside root (the
// module, or a tree shipped with it) are not inputs. An input that cannot be read makes
// the whole result uncacheable (an error).
func Inputs(logs [][]LogOp, where []Where, root string, env Env) ([]Input, error) {
	seen := map[Input]bool{}
	var out []Input
	add := func(in Input) {
		k := Input{Op: in.Op, Name: in.Name}
		if !seen[k] {
			seen[k] = true
			out = append(out, in)
		}
	}
	for i, ops := range logs {
		w := where[i]
		pwd := w.Dir
		for _, op := range ops {
			if op.Op == "getenv" {
				add(Input{Op: "env", Name: op.Name, Sum: env(op.Name)})
				continue
			}
			p := op.Name
			if op.Op != "chdir" && !isAbs(p) {
				p = joinPath(pwd, p)
			}
			if op.Op == "chdir" {
				if !isAbs(p) {
					p = joinPath(pwd, p)
				}
				pwd = p
			}
			local, ok := cleanPath(p), true
			if w.Local != nil {
				local, ok = w.Local(local)
			}
			if !ok || !within(local, root) {
				continue
			}
			kind := "stat"
			if op.Op == "open" {
				kind = "open"
			}
			sum, op2, err := sumPath(local, kind)
			if err != nil {
				return nil, err
			}
			add(Input{Op: op2, Name: local, Sum: sum})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Op != out[j].Op {
			return out[i].Op < out[j].Op
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Valid reports whether every input is as it was: it stops at the first that changed and
// says which.
func Valid(inputs []Input, env Env) (ok bool, changed string) {
	for _, in := range inputs {
		var now string
		switch in.Op {
		case "env":
			now = env(in.Name)
		case "file", "dir":
			sum, op, err := sumPath(in.Name, "open")
			if err != nil || op != in.Op {
				return false, in.Op + " " + in.Name
			}
			now = sum
		case "stat", "missing":
			sum, op, err := sumPath(in.Name, "stat")
			if err != nil || op != in.Op {
				return false, in.Op + " " + in.Name
			}
			now = sum
		default:
			return false, "unknown input " + in.Op
		}
		if now != in.Sum {
			return false, in.Op + " " + in.Name
		}
	}
	return true, ""
}

// sumPath sums a file as a test used it: opened (kind "open": a regular file by its
// content, a directory by its names and their types) or only looked at (kind "stat": its
// type, and a regular file's size). It returns the input's op: file, dir, stat or missing.
func sumPath(path, kind string) (sum, op string, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "-", "missing", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("result cache: input %s: %v", path, err)
	}
	h := sha256.New()
	switch {
	case kind == "stat":
		fmt.Fprintf(h, "%v", fi.Mode().Type())
		if fi.Mode().IsRegular() {
			fmt.Fprintf(h, " %d", fi.Size())
		}
		op = "stat"
	case fi.IsDir():
		ents, err := os.ReadDir(path)
		if err != nil {
			return "", "", fmt.Errorf("result cache: input %s: %v", path, err)
		}
		for _, e := range ents {
			fmt.Fprintf(h, "%s %v\n", e.Name(), e.Type())
		}
		op = "dir"
	case fi.Mode().IsRegular():
		f, err := os.Open(path)
		if err != nil {
			return "", "", fmt.Errorf("result cache: input %s: %v", path, err)
		}
		defer f.Close()
		if _, err := io.Copy(h, f); err != nil {
			return "", "", fmt.Errorf("result cache: input %s: %v", path, err)
		}
		op = "file"
	default:
		// A device, a pipe, a socket: what it gives cannot be summed.
		return "", "", fmt.Errorf("result cache: input %s is not a regular file or directory", path)
	}
	return hex.EncodeToString(h.Sum(nil)), op, nil
}

// Paths in a log are the process's: slash-separated on every host godist ships to, or the
// local OS's for a local process (filepath functions handle both where it matters).
func isAbs(p string) bool { return strings.HasPrefix(p, "/") || filepath.IsAbs(p) }

func joinPath(dir, p string) string {
	if strings.HasPrefix(dir, "/") {
		return strings.TrimSuffix(dir, "/") + "/" + p
	}
	return filepath.Join(dir, p)
}

func cleanPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return filepath.FromSlash(cleanSlash(p))
	}
	return filepath.Clean(p)
}

func cleanSlash(p string) string {
	return filepath.ToSlash(filepath.Clean(filepath.FromSlash(p)))
}

// within reports whether path is root or under it.
func within(path, root string) bool {
	if root == "" {
		return false
	}
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
