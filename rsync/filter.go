package rsync

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Filter is a compiled list of gitignore-style exclude patterns, matched against paths
// relative to the root of the tree ('/'-separated). The zero Filter (and nil) excludes
// nothing. A Filter is immutable and safe for concurrent use.
//
// The syntax is .gitignore's (gitignore(5)):
//   - blank lines and lines starting with '#' are ignored; "\#" is a literal '#';
//   - trailing spaces are ignored unless escaped ("\ ");
//   - '!' negates: a path excluded by an earlier pattern is included again (but never
//     inside a directory that is excluded: the walk does not go there); "\!" is literal;
//   - a trailing '/' matches directories only;
//   - a pattern with a '/' at the start or in the middle is anchored at the root; otherwise
//     it matches a name at any depth;
//   - '*' matches anything but '/', '?' one character but '/', "[a-z]" and "[!a-z]" (or
//     "[^a-z]") a character class, '\' escapes; "**/" at the start matches in every
//     directory, "/**" at the end everything inside, "/**/" zero or more directories.
//
// The last pattern that matches a path decides.
type Filter struct {
	pats []pattern
}

type pattern struct {
	raw     string
	neg     bool
	dirOnly bool
	segs    []string // glob per path component; "**" matches zero or more components
	// trailing "/**": the last "**" matches one or more components
	inside bool
}

// maxPatternLen bounds one pattern.
const maxPatternLen = 4096

// NewFilter compiles patterns (one gitignore line each, without its end of line: the '\r'
// of a CRLF line too, which GitIgnorePatterns strips as git does). Blank and comment lines
// are skipped. It fails on a pattern with a NUL byte or over 4096 bytes.
func NewFilter(patterns []string) (*Filter, error) {
	f := &Filter{}
	for _, line := range patterns {
		p, ok, err := compilePattern(line)
		if err != nil {
			return nil, err
		}
		if ok {
			f.pats = append(f.pats, p)
		}
	}
	return f, nil
}

// Patterns returns the patterns of f as given (blank and comment lines dropped).
func (f *Filter) Patterns() []string {
	if f == nil {
		return nil
	}
	out := make([]string, len(f.pats))
	for i, p := range f.pats {
		out[i] = p.raw
	}
	return out
}

// patternLine trims the trailing spaces of a pattern line that are not escaped (git's
// trim_trailing_spaces: `a\ ` keeps its space, `a\\ ` does not) and reports whether
// what remains is a pattern, not a blank line or a comment. Nothing else is trimmed: a
// line is given without its end of line, and the '\r' of a CRLF one is the reader's to
// strip (readPatternFile's, as git strips it when it reads .gitignore), so "\r" here is
// a pattern naming a carriage return, as it is in git.
func patternLine(line string) (string, bool) {
	spaces := -1 // where the run of trailing unescaped spaces starts
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case ' ':
			if spaces < 0 {
				spaces = i
			}
			continue
		case '\\':
			i++ // the escaped byte stays, a space too
		}
		spaces = -1
	}
	if spaces >= 0 {
		line = line[:spaces]
	}
	return line, line != "" && line[0] != '#'
}

func compilePattern(line string) (pattern, bool, error) {
	raw := line
	if len(line) > maxPatternLen {
		return pattern{}, false, fmt.Errorf("rsync: exclude pattern too long (%d bytes)", len(line))
	}
	if strings.IndexByte(line, 0) >= 0 {
		return pattern{}, false, fmt.Errorf("rsync: exclude pattern %q: NUL byte", line)
	}
	line, ok := patternLine(line)
	if !ok {
		return pattern{}, false, nil
	}
	p := pattern{raw: raw}
	if line[0] == '!' {
		p.neg = true
		line = line[1:]
	} else if strings.HasPrefix(line, `\!`) || strings.HasPrefix(line, `\#`) {
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") { // escaped too, as in git: `a\/` is `a\`, which matches nothing
		p.dirOnly = true
		line = strings.TrimRight(line, "/")
	}
	if line == "" {
		return pattern{}, false, nil // "/" or "!" alone: matches nothing
	}
	anchored := strings.Contains(line, "/")
	line = strings.TrimLeft(line, "/")
	var segs []string
	for s := range strings.SplitSeq(line, "/") {
		if s == "" {
			continue // "a//b" is "a/b"
		}
		if s == "**" && len(segs) > 0 && segs[len(segs)-1] == "**" {
			continue
		}
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		return pattern{}, false, nil
	}
	if !anchored && segs[0] != "**" {
		segs = append([]string{"**"}, segs...)
	}
	if len(segs) > 1 && segs[len(segs)-1] == "**" {
		p.inside = true
	}
	p.segs = segs
	return p, true, nil
}

// Match reports whether the last pattern matching p (a directory if isDir) excludes it. It
// looks at p alone, not at its parent directories: a walk that prunes excluded directories
// gets gitignore's semantics. Excluded checks the parents too.
func (f *Filter) Match(p string, isDir bool) bool {
	if f == nil || len(f.pats) == 0 {
		return false
	}
	comps := strings.Split(p, "/")
	for i := len(f.pats) - 1; i >= 0; i-- {
		pt := &f.pats[i]
		if pt.dirOnly && !isDir {
			continue
		}
		if pt.match(comps) {
			return !pt.neg
		}
	}
	return false
}

// Excluded reports whether p is excluded by f, itself or because a directory above it is.
func (f *Filter) Excluded(p string, isDir bool) bool {
	if f == nil || len(f.pats) == 0 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && f.Match(p[:i], true) {
			return true
		}
	}
	return f.Match(p, isDir)
}

// match matches the pattern's segments against path components, "**" standing for any
// run of components (at least one for a trailing "/**"). Greedy with backtracking to the
// last "**", which is linear in practice and O(len(segs)*len(comps)) at worst.
func (pt *pattern) match(comps []string) bool {
	segs := pt.segs
	si, ci := 0, 0
	starSi, starCi := -1, 0
	for ci < len(comps) {
		if si < len(segs) && segs[si] == "**" {
			starSi, starCi = si, ci
			si++
			continue
		}
		if si < len(segs) && globMatch(segs[si], comps[ci]) {
			si++
			ci++
			continue
		}
		if starSi >= 0 {
			starCi++
			si, ci = starSi+1, starCi
			continue
		}
		return false
	}
	for si < len(segs) && segs[si] == "**" {
		if pt.inside && si == len(segs)-1 {
			return false // "dir/**" needs something inside dir
		}
		si++
	}
	return si == len(segs)
}

// globMatch matches one path component against a glob: '*', '?', character classes and
// '\' escapes. Malformed classes (no closing ']') match '[' literally; a glob ending in an
// unescaped '\' matches nothing (git's wildmatch).
func globMatch(pat, name string) bool {
	pi, ni := 0, 0
	starPi, starNi := -1, 0
	for ni < len(name) {
		if pi < len(pat) {
			switch c := pat[pi]; c {
			case '*':
				for pi < len(pat) && pat[pi] == '*' {
					pi++
				}
				starPi, starNi = pi, ni
				continue
			case '?':
				pi++
				ni++
				continue
			case '[':
				if ok, width, valid := matchClass(pat[pi:], name[ni]); valid {
					if ok {
						pi += width
						ni++
						continue
					}
				} else if name[ni] == '[' {
					pi++
					ni++
					continue
				}
			case '\\':
				if pi+1 < len(pat) {
					if pat[pi+1] == name[ni] {
						pi += 2
						ni++
						continue
					}
				} // a trailing '\' matches nothing, as in git
			default:
				if c == name[ni] {
					pi++
					ni++
					continue
				}
			}
		}
		if starPi >= 0 {
			starNi++
			pi, ni = starPi, starNi
			continue
		}
		return false
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// matchClass matches c against the class at the start of pat ("[...]"). It returns whether
// c is in the class, the class's width in pat, and whether pat starts with a well-formed
// class at all.
func matchClass(pat string, c byte) (in bool, width int, valid bool) {
	i := 1
	negate := false
	if i < len(pat) && (pat[i] == '!' || pat[i] == '^') {
		negate = true
		i++
	}
	first := true
	for i < len(pat) {
		if pat[i] == ']' && !first {
			return in != negate, i + 1, true
		}
		first = false
		lo := pat[i]
		if lo == '\\' && i+1 < len(pat) {
			i++
			lo = pat[i]
		}
		i++
		hi := lo
		if i+1 < len(pat) && pat[i] == '-' && pat[i+1] != ']' {
			hi = pat[i+1]
			i += 2
			if hi == '\\' && i < len(pat) {
				hi = pat[i]
				i++
			}
		}
		if lo <= c && c <= hi {
			in = true
		}
	}
	return false, 0, false
}

// GitIgnorePatterns reads the .gitignore files of the tree at root and returns their
// patterns rewritten relative to root, in an order where deeper files come later (so they
// take precedence, as in git). Each pattern of dir/.gitignore is anchored at dir. Directories
// that the patterns found so far exclude are not searched, as git does not. Add
// ".git/" yourself if the repository's own directory is to be left out.
func GitIgnorePatterns(root string) ([]string, error) {
	var out []string
	var f *Filter
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			return nil // unreadable parts of the tree: the walk of Sync reports them
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (d.Name() == ".git" || f.Match(rel, true)) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != ".gitignore" || !d.Type().IsRegular() {
			return nil
		}
		dir := parentOf(rel)
		pats, err := readPatternFile(path)
		if err != nil {
			return err
		}
		for _, p := range pats {
			out = append(out, rebasePattern(p, dir))
		}
		if f, err = NewFilter(out); err != nil {
			return err
		}
		return nil
	})
	return out, err
}

func readPatternFile(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var pats []string
	sc := bufio.NewScanner(io.LimitReader(fh, 1<<20))
	sc.Buffer(nil, maxPatternLen+2)
	for sc.Scan() {
		pats = append(pats, sc.Text())
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return nil, err
	}
	return pats, nil
}

// rebasePattern rewrites a pattern of the .gitignore in dir ("" = the root) to mean the
// same relative to the root.
func rebasePattern(p, dir string) string {
	if dir == "" {
		return p
	}
	// Blank, comment and match-nothing lines are told apart as compilePattern does: only
	// trailing unescaped spaces are trimmed ("\t", "\r" and " #x" are patterns), and a line
	// of slashes ("/", "!") is left alone: rebased it would be "/dir/**/", every directory
	// in dir.
	line, ok := patternLine(p)
	if !ok {
		return p
	}
	t, neg := p, ""
	if line[0] == '!' {
		neg, t, line = "!", t[1:], line[1:]
	}
	body := strings.TrimRight(line, "/")
	if body == "" {
		return p
	}
	if strings.Contains(body, "/") {
		return neg + "/" + dir + "/" + strings.TrimLeft(t, "/")
	}
	return neg + "/" + dir + "/**/" + t
}
