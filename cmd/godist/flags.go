package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commandLine rewrites godist's command line, written as go test's (go's flag syntax:
// -name, -name=value, -name value, one dash or two), into what cobra parses: every flag
// of a test run before "--" becomes --NAME=VALUE, looked up among godist's flags (its
// one-letter -n -C -v -x first) and go test's (goFlags); an unknown or refused flag is a
// usage error. A subcommand's single-dash long flags (-tx) just get their second dash.
func commandLine(root *cobra.Command, args []string) ([]string, error) {
	if len(args) > 0 {
		switch args[0] {
		case "help", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return args, nil
		}
		for _, c := range root.Commands() {
			if c.Name() == args[0] || c.HasAlias(args[0]) {
				sub, err := doubleDashLong(c.Flags(), args[1:])
				return append([]string{args[0]}, sub...), err
			}
		}
	}
	return goStyleArgs(root.Flags(), args)
}

// doubleDashLong rewrites "-name X" to "--name X" for the long flags of f, up to "--",
// and checks the values of its boolean and number flags (pflag's own errors quote
// strconv).
func doubleDashLong(f *pflag.FlagSet, args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			out = append(out, a)
			continue
		}
		body := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, value, hasValue := strings.Cut(body, "=")
		fl := f.Lookup(name)
		if fl == nil && len(name) == 1 {
			fl = f.ShorthandLookup(name)
		}
		if !strings.HasPrefix(a, "--") && len(a) > 2 && f.Lookup(name) != nil {
			a = "-" + a
		}
		out = append(out, a)
		if fl == nil {
			continue // pflag says it is unknown
		}
		spelled := strings.TrimSuffix(a, "="+value)
		switch fl.Value.Type() {
		case "bool":
			if _, err := strconv.ParseBool(value); hasValue && err != nil {
				return nil, usagef("%s %q: expected true or false", printable(spelled), value)
			}
		case "int":
			if !hasValue && i+1 < len(args) {
				value = args[i+1]
			}
			if _, err := strconv.Atoi(value); (hasValue || i+1 < len(args)) && err != nil {
				return nil, usagef("%s %q: expected a whole number", printable(spelled), value)
			}
		}
	}
	return out, nil
}

// goStyleArgs parses args as go test does its command line, against the flags of f (and
// goFlags' refusals and checks), and returns them as --NAME=VALUE for pflag, followed by
// the arguments after "--" (or go test's -args) unchanged. A single-dash argument longer
// than two characters is a long flag: -n4 is flag "n4", not -n 4.
func goStyleArgs(f *pflag.FlagSet, args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-args" || a == "--args" {
			return append(append(out, "--"), args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			out = append(out, a) // a package, or "-"
			continue
		}
		dashes, body := "-", a[1:]
		if body[0] == '-' {
			dashes, body = "--", body[1:]
		}
		if body == "" || body[0] == '-' || body[0] == '=' {
			return nil, usagef("bad flag syntax: %s", printable(a))
		}
		name, value, hasValue := strings.Cut(body, "=")
		spelled := dashes + printable(name)
		if name == "h" || name == "help" {
			out = append(out, "--help")
			continue
		}
		gname := name
		if rest, ok := strings.CutPrefix(name, "test."); ok && testBinaryFlags[rest] {
			gname = rest
		}
		var fl *pflag.Flag
		if len(gname) == 1 {
			fl = f.ShorthandLookup(gname) // godist's -n -C -v -x
		}
		g, isGo := goFlags[gname]
		if fl == nil && isGo && g.refuse != "" {
			return nil, usagef("%s", g.refuse)
		}
		if fl == nil {
			fl = f.Lookup(gname)
		}
		if fl == nil || fl.Hidden {
			return nil, unknownFlag(f, spelled, name)
		}
		boolean := fl.NoOptDefVal != "" // never takes the next argument as its value
		hasCheck := isGo && g.check != nil
		switch {
		case boolean && !hasValue:
			value = fl.NoOptDefVal
		case boolean && !hasCheck: // -buildvcs=auto has its own check
			if _, err := strconv.ParseBool(value); err != nil {
				return nil, usagef("%s %q: expected true or false", spelled, value)
			}
		case !boolean && !hasValue:
			if i+1 == len(args) {
				return nil, usagef("flag needs a value: %s", spelled)
			}
			i++
			value = args[i]
		}
		if hasCheck {
			if err := g.check(value); err != nil {
				return nil, usagef("%s %q: expected %v", spelled, value, err)
			}
		}
		if r, ok := ownNumbers[fl.Name]; ok && !r.accepts(value) {
			return nil, usagef("%s %q: expected %s", spelled, value, r.what)
		}
		out = append(out, "--"+fl.Name+"="+value)
	}
	return out, nil
}

// unknownFlag is the error for a flag neither godist nor go test has; it says where such
// flags go, and how to write what was probably meant (-n4, -vx).
func unknownFlag(f *pflag.FlagSet, spelled, name string) error {
	const after = "pass flags for the test binaries after --"
	if len(name) > 1 && spelled[1] != '-' {
		short, rest := name[:1], printable(name[1:])
		if fl := f.ShorthandLookup(short); fl != nil && fl.NoOptDefVal == "" &&
			(short == "C" || rest == "auto" || strings.Trim(rest, "0123456789") == "") {
			return usagef("unknown flag %s: write -%s %s or -%s=%s (%s)", spelled, short, rest, short, rest, after)
		}
		var each []string
		for i := range len(name) {
			fl := f.ShorthandLookup(name[i : i+1]) // a byte: pflag panics on longer names
			if fl == nil || fl.NoOptDefVal == "" {
				each = nil
				break
			}
			each = append(each, "-"+name[i:i+1])
		}
		if each != nil {
			return usagef("unknown flag %s: write %s (%s)", spelled, strings.Join(each, " "), after)
		}
	}
	return usagef("unknown flag %s: not a godist or go test flag (%s)", spelled, after)
}

// printable is s, or s quoted if it has characters that do not print as themselves.
func printable(s string) string {
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		return q
	}
	return s
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

// numberRange is what a number flag of godist's own accepts: a whole number from min to
// max, as what says.
type numberRange struct {
	min, max int
	what     string
}

func (r numberRange) accepts(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= r.min && n <= r.max
}

// ownNumbers are godist's own number flags of a test run, checked as goStyleArgs takes
// them (go test's are checked by goFlags).
var ownNumbers = map[string]numberRange{
	"maxfail":     {0, 1 << 30, "a number of failures of 1 or more (0: no limit)"},
	"rerun-fails": {0, 100, "a number of re-runs from 0 to 100"},
	"slowest":     {0, 1 << 30, "a number of tests of 0 or more"},
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
