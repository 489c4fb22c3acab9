package gotest

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// matchNothing is a -test.run pattern no top-level test, fuzz target or example matches:
// their names are never empty.
const matchNothing = "^$"

// RunPattern returns the -test.run value that selects exactly the top-level tests, fuzz
// targets and examples in topLevel, within what the user's -run pattern userRun selects
// ("" selects everything). Subtests are selected as userRun selects them.
//
// It follows the testing package: a pattern is split into alternatives at each '|' outside
// [] and (), each alternative into one regexp per level of the test name at each '/', and a
// name matches if, for some alternative, each level's regexp matches (unanchored) that level
// of the name. So RunPattern keeps each alternative's later levels, replaces its first level
// by the anchored, quoted names of topLevel that the first level matches, and drops the
// alternative if none does. An alternative whose first level is not a valid regexp is kept as
// it is, so the binary reports the error as go test would. If nothing in topLevel is
// selected, RunPattern returns "^$", which selects nothing.
func RunPattern(userRun string, topLevel []string) string {
	if userRun == "" {
		return anchoredNames(topLevel)
	}
	type alt struct {
		first string
		rest  string // the later levels, with their leading '/'
		names []string
	}
	var alts []*alt
	for _, levels := range splitRunPattern(userRun) {
		rest := ""
		if len(levels) > 1 {
			rest = "/" + strings.Join(levels[1:], "/")
		}
		re, err := regexp.Compile(rewriteName(levels[0]))
		if err != nil {
			alts = append(alts, &alt{first: levels[0], rest: rest})
			continue
		}
		var names []string
		for _, name := range topLevel {
			if re.MatchString(name) {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			continue
		}
		// Alternatives that differ only in the first level become one.
		i := slices.IndexFunc(alts, func(a *alt) bool { return a.names != nil && a.rest == rest })
		if i < 0 {
			alts = append(alts, &alt{rest: rest, names: names})
			continue
		}
		for _, name := range names {
			if !slices.Contains(alts[i].names, name) {
				alts[i].names = append(alts[i].names, name)
			}
		}
	}
	if len(alts) == 0 {
		return matchNothing
	}
	parts := make([]string, len(alts))
	for i, a := range alts {
		first := a.first
		if a.names != nil {
			first = anchoredNames(a.names)
		}
		parts[i] = first + a.rest
	}
	return strings.Join(parts, "|")
}

// anchoredNames returns ^(A|B)$ for names A and B, quoted.
func anchoredNames(names []string) string {
	if len(names) == 0 {
		return matchNothing
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(quoted, "|") + ")$"
}

// splitRunPattern splits a -test.run pattern as the testing package does: into alternatives
// at '|', and each alternative into levels at '/', both only outside [] and () and not after
// a backslash.
func splitRunPattern(s string) [][]string {
	var alts [][]string
	var levels []string
	brackets, parens := 0, 0
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			brackets++
		case ']':
			if brackets > 0 { // an unmatched ']' is a literal
				brackets--
			}
		case '(':
			if brackets == 0 {
				parens++
			}
		case ')':
			if brackets == 0 {
				parens--
			}
		case '\\':
			i++
		case '/', '|':
			if brackets == 0 && parens == 0 {
				levels = append(levels, s[start:i])
				start = i + 1
				if s[i] == '|' {
					alts = append(alts, levels)
					levels = nil
				}
			}
		}
	}
	levels = append(levels, s[start:])
	return append(alts, levels)
}

// rewriteName rewrites a name or pattern as the testing package does before matching:
// white space becomes '_', and unprintable runes their Go escapes.
func rewriteName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case isTestingSpace(r):
			b.WriteByte('_')
		case !strconv.IsPrint(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isTestingSpace is the testing package's notion of white space in test names.
func isTestingSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// SkipsTopLevel reports whether the -test.skip pattern skip skips the top-level test name
// as a whole, as the testing package decides: some alternative of skip has a single level,
// and it matches name. (An alternative with more levels skips subtests only; one that is
// not a valid regexp skips nothing here, and the binary reports it.)
func SkipsTopLevel(skip, name string) bool {
	if skip == "" {
		return false
	}
	for _, levels := range splitRunPattern(skip) {
		if len(levels) != 1 {
			continue
		}
		re, err := regexp.Compile(rewriteName(levels[0]))
		if err == nil && re.MatchString(name) {
			return true
		}
	}
	return false
}
