package rsync

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	cases := []struct {
		pats  []string
		path  string
		isDir bool
		want  bool
	}{
		{[]string{"*.o"}, "a.o", false, true},
		{[]string{"*.o"}, "x/y/a.o", false, true},
		{[]string{"*.o"}, "a.oo", false, false},
		{[]string{"*.o"}, "a.o/b", false, false}, // the parent would be pruned by the walk
		{[]string{"/a.o"}, "x/a.o", false, false},
		{[]string{"/a.o"}, "a.o", false, true},
		{[]string{"build/"}, "build", true, true},
		{[]string{"build/"}, "build", false, false},
		{[]string{"build/"}, "x/build", true, true},
		{[]string{"x/build"}, "x/build", true, true},
		{[]string{"x/build"}, "y/x/build", true, false}, // a middle slash anchors
		{[]string{"**/foo"}, "foo", false, true},
		{[]string{"**/foo"}, "a/b/foo", false, true},
		{[]string{"foo/**"}, "foo", true, false},
		{[]string{"foo/**"}, "foo/a", false, true},
		{[]string{"foo/**"}, "foo/a/b", false, true},
		{[]string{"a/**/b"}, "a/b", false, true},
		{[]string{"a/**/b"}, "a/x/y/b", false, true},
		{[]string{"a/**/b"}, "a/x/y/c", false, false},
		{[]string{"*.log", "!keep.log"}, "keep.log", false, false},
		{[]string{"*.log", "!keep.log"}, "x.log", false, true},
		{[]string{"!keep.log", "*.log"}, "keep.log", false, true}, // the last match decides
		{[]string{"# comment"}, "# comment", false, false},
		{[]string{`\#file`}, "#file", false, true},
		{[]string{`\!file`}, "!file", false, true},
		{[]string{"trail  "}, "trail", false, true},
		{[]string{`trail\ `}, "trail ", false, true},
		{[]string{"f?o"}, "foo", false, true},
		{[]string{"f?o"}, "f/o", false, false},
		{[]string{"[a-c]x"}, "bx", false, true},
		{[]string{"[a-c]x"}, "dx", false, false},
		{[]string{"[!a-c]x"}, "dx", false, true},
		{[]string{"[^a-c]x"}, "ax", false, false},
		{[]string{"[]]x"}, "]x", false, true},
		{[]string{"[x"}, "[x", false, true}, // unterminated class: literal
		{[]string{`a\*b`}, "a*b", false, true},
		{[]string{`a\*b`}, "axb", false, false},
		{[]string{"*"}, "anything", false, true},
		{[]string{"a*b*c"}, "aXXbYYc", false, true},
		{[]string{"a*b*c"}, "aXXbYY", false, false},
		{[]string{""}, "x", false, false},
		{[]string{"/"}, "x", false, false},
		{[]string{".git/"}, ".git", true, true},
		// A pattern is a line without its end of line: a '\r' in it is a name's, as in
		// git (whose reader strips only the CR of CRLF; FuzzFilter found "\r" matching
		// nothing when compilePattern stripped one more).
		{[]string{"\r"}, "\r", false, true},
		{[]string{"\r"}, "d/\r", false, true},
		{[]string{"\r"}, "0", true, false},
		{[]string{"x\r"}, "x", false, false},
		{[]string{"x\r"}, "x\r", false, true},
		{[]string{"x\r "}, "x\r", false, true},
		{[]string{"\t"}, "\t", false, true},
		// Trailing spaces as git's trim_trailing_spaces: a "\\" pair escapes no space.
		{[]string{`a\\ `}, `a\`, false, true},
		{[]string{`a\\ `}, `a\ `, false, false},
		{[]string{`a\  `}, "a ", false, true},
		{[]string{`b\\\  `}, `b\ `, false, true},
		// A trailing '\' matches nothing (git's wildmatch), "\/" at the end included.
		{[]string{`\`}, `\`, false, false},
		{[]string{`x\`}, `x\`, false, false},
		{[]string{`*\`}, `x\`, false, false},
		{[]string{`foo\/`}, `foo\`, true, false},
	}
	for _, c := range cases {
		f, err := NewFilter(c.pats)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(c.path, c.isDir); got != c.want {
			t.Errorf("%q.Match(%q, dir=%v) = %v, want %v", c.pats, c.path, c.isDir, got, c.want)
		}
	}
}

func TestFilterExcludedByParent(t *testing.T) {
	f, _ := NewFilter([]string{"vendor/", "!vendor/keep.go"})
	if !f.Excluded("vendor/keep.go", false) {
		t.Errorf("a file in an excluded directory cannot be included again (git's rule)")
	}
	if f.Excluded("src/keep.go", false) {
		t.Errorf("src/keep.go excluded")
	}
	var nf *Filter
	if nf.Match("x", false) || nf.Excluded("x", true) || len(nf.Patterns()) != 0 {
		t.Errorf("nil filter excludes")
	}
}

func TestFilterBadPatterns(t *testing.T) {
	for _, p := range []string{"a\x00b", string(make([]byte, maxPatternLen+1))} {
		if _, err := NewFilter([]string{p}); err == nil {
			t.Errorf("pattern %q accepted", p[:min(len(p), 10)])
		}
	}
}

func TestGitIgnorePatterns(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, ".gitignore"), []byte("*.log\n/bin/\n# comment\n\n!important.log\n"), 0o644)
	writeFile(t, filepath.Join(root, "sub", ".gitignore"), []byte("gen/\nlocal.txt\n/only-here\nx/y\n"), 0o644)
	writeFile(t, filepath.Join(root, "bin", ".gitignore"), []byte("never-read\n"), 0o644)
	pats, err := GitIgnorePatterns(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"*.log", "/bin/", "# comment", "", "!important.log",
		"/sub/**/gen/", "/sub/**/local.txt", "/sub/only-here", "/sub/x/y"}
	if !slices.Equal(pats, want) {
		t.Errorf("patterns %q\nwant     %q", pats, want)
	}
	f, _ := NewFilter(pats)
	for path, want := range map[string]bool{
		"a.log": true, "important.log": false, "bin": true, "sub/gen": true, "sub/deep/gen": true,
		"gen": false, "sub/local.txt": true, "local.txt": false, "sub/only-here": true,
		"sub/deep/only-here": false, "sub/x/y": true, "sub/z/x/y": false,
	} {
		isDir := path == "bin" || path == "sub/gen" || path == "sub/deep/gen" || path == "gen"
		if got := f.Match(path, isDir); got != want {
			t.Errorf("%s: excluded %v, want %v", path, got, want)
		}
	}
	if _, err := GitIgnorePatterns(filepath.Join(root, "missing")); !os.IsNotExist(err) {
		t.Errorf("missing root: %v", err)
	}
}

// TestGitIgnoreLines: what git check-ignore (2.39) says of these .gitignore files. The CR
// of a CRLF line (or of a last line without '\n') goes, once; nothing else but trailing
// unescaped spaces does, in a nested file too.
func TestGitIgnoreLines(t *testing.T) {
	paths := []string{"\r", "sub/\r", "x", "x\r", "\t", "sub/\t", " #x", "sub/ #x", "sub/d", "sub/d/f", "sub/f"}
	for _, c := range []struct {
		root, sub string
		want      []string
	}{
		{"\r", "", nil},
		{"\r\n", "", nil},
		{"\r\r\n", "", []string{"\r", "sub/\r"}},
		{"\r\r", "", []string{"\r", "sub/\r"}},
		{"x\r\n", "", []string{"x"}},
		{"x\r\r\n", "", []string{"x\r"}},
		{"x\r \n", "", []string{"x\r"}},
		{"", "\r\r\n", []string{"sub/\r"}},
		{"", "\t\n", []string{"sub/\t"}},
		{"", " #x\n", []string{"sub/ #x"}},
		{"", "/\n", nil},
		{"", "!\n", nil},
		{"", "d\n!\n", []string{"sub/d", "sub/d/f"}},
		{"", "d\r\n!/\r\n", []string{"sub/d", "sub/d/f"}},
	} {
		root := t.TempDir()
		if c.root != "" {
			writeFile(t, filepath.Join(root, ".gitignore"), []byte(c.root), 0o644)
		}
		if c.sub != "" {
			writeFile(t, filepath.Join(root, "sub", ".gitignore"), []byte(c.sub), 0o644)
		}
		pats, err := GitIgnorePatterns(root)
		if err != nil {
			t.Fatal(err)
		}
		f, err := NewFilter(pats)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range paths {
			if f.Excluded(p, p == "sub/d") {
				got = append(got, p)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("root %q, sub %q: patterns %q exclude %q, want %q", c.root, c.sub, pats, got, c.want)
		}
	}
}
