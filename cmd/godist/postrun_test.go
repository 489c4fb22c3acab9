package main

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParsePostRunCommand(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"notify", []string{"notify"}},
		{"notify me --date", []string{"notify", "me", "--date"}},
		{"  notify\t me  ", []string{"notify", "me"}},
		{`bash -c 'echo; echo Slowest tests; gotestsum tool slowest --jsonfile "$F"'`, []string{"bash", "-c", `echo; echo Slowest tests; gotestsum tool slowest --jsonfile "$F"`}},
		{`a "b c" d\ e 'f''g' "h\"i" 'it'"'"'s'`, []string{"a", "b c", "d e", "fg", `h"i`, "it's"}},
		{`./post-run.sh --flag=1`, []string{"./post-run.sh", "--flag=1"}},
		{`notify # a comment`, []string{"notify"}},
		{`a x~y *.go`, []string{"a", "x~y", "*.go"}}, // no globbing: the words as written
		{"notify \\\n  --more", []string{"notify", "--more"}},
		{`a $'x' $"y"`, []string{"a", "$x", "$y"}}, // POSIX sh, not bash: a $ before quotes is a $
	} {
		got, err := parsePostRunCommand(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parsePostRunCommand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", " ", "# c", "''", `""`, "a 'b", `a "b`, "a | b", "a && b", "a || b", "a &", "a; b", "a\nb",
		"a > f", "a < f", "a 2>&1", "X=1 a", "a $X", "a ${X}", `a "$X"`, "a $(b)", "a `b`", "a $((1+2))", "! a", "(a)", "{ a; }",
		"if a; then b; fi", "a <(b)", "~/bin/notify", "a ~user"} {
		if got, err := parsePostRunCommand(in); err == nil {
			t.Errorf("parsePostRunCommand(%q) = %q, want an error", in, got)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("parsePostRunCommand(%q): error on several lines: %q", in, err)
		}
	}
}

// FuzzParsePostRunCommand: any CMD gives a command or a one-line error, never a panic; a
// command has a program; and words quoted as sh quotes them come back as they were.
func FuzzParsePostRunCommand(f *testing.F) {
	for _, s := range []string{"notify me --date", `a "b c" 'd'`, "x 'y", "a | b", "$X", "a\\\nb", "\x00", "'\n'", "a #b", "ü 'ö'"} {
		f.Add(s, "arg")
	}
	f.Fuzz(func(t *testing.T, cmd, word string) {
		argv, err := parsePostRunCommand(cmd)
		switch {
		case err != nil:
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("%q: error on several lines: %q", cmd, err)
			}
		case len(argv) == 0 || argv[0] == "":
			t.Fatalf("%q: no program: %q", cmd, argv)
		}
		// A word single-quoted (sh's way: ' as '"'"') is one argument, as it was.
		if !utf8.ValidString(word) || strings.ContainsRune(word, 0) {
			return
		}
		quoted := "'" + strings.ReplaceAll(word, "'", `'"'"'`) + "'"
		argv, err = parsePostRunCommand("prog " + quoted + " " + quoted)
		if err != nil || len(argv) != 3 || argv[1] != word || argv[2] != word {
			t.Fatalf("prog %s: %q, %v; want [prog %q %q]", quoted, argv, err, word, word)
		}
	})
}
