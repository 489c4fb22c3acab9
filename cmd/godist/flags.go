package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// goTestFlags are the flags godist takes the way go test does: with one dash (-run X,
// -run=X) as well as with two.
var goTestFlags = map[string]bool{
	"run": true, "skip": true, "count": true, "short": true, "timeout": true, "failfast": true,
	"race": true, "tags": true, "shuffle": true, "cover": true, "coverprofile": true,
	"jsonfile": true, "dist": true, "tx": true, "durations": true, "maxfail": true,
	"junitfile": true, "slowest": true, "shard": true, "format": true, "rerun-fails": true, "rsyncdir": true, "rsyncignore": true,
}

// goFlagsToPosix rewrites "-run X" to "--run X" for the long flags above, up to "--",
// so that cobra's POSIX parser takes go test's spelling.
func goFlagsToPosix(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 2 {
			name, _, _ := strings.Cut(a[1:], "=")
			if goTestFlags[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

// flagError marks errors of flag parsing (exit status 2).
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() + " (see godist --help)" }
func (e *flagError) Unwrap() error { return e.err }

func isFlagError(err error) bool {
	var fe *flagError
	return errors.As(err, &fe)
}

func wrapFlagError(_ *cobra.Command, err error) error { return &flagError{err} }

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// parseN reads -n: a positive number or "auto".
func parseN(v string, auto int) (int, error) {
	if v == "" {
		return 0, nil
	}
	if v == "auto" {
		return auto, nil
	}
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil || fmt.Sprint(n) != v || n < 1 || n > 1024 {
		return 0, usagef("-n %q: expected a number of workers from 1 to 1024, or auto", v)
	}
	return n, nil
}
