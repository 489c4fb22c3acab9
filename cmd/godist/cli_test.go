package main

import (
	"strings"
	"testing"
)

// Bad input gets one line on stderr saying what was wrong and what is accepted, exit
// status 2, and no stack trace.
func TestBadInputIsOneLineAndStatus2(t *testing.T) {
	dir := fixturesDir(t)
	cases := []struct {
		args []string
		want string // in the error line
	}{
		{[]string{"--bogus", "./pass"}, "unknown flag: --bogus"},
		{[]string{"-bogus", "./pass"}, "unknown shorthand flag"},
		{[]string{"--dist", "weird", "./pass"}, `--dist "weird": unknown mode (accepted: load, each)`},
		{[]string{"--tx", "popen//foo=1", "./pass"}, `unknown key "foo" (accepted:`},
		{[]string{"--tx", "0*popen", "./pass"}, `"0*popen"`},
		{[]string{"--tx", "warp=x", "./pass"}, `"warp=x"`},
		{[]string{"--tx", "ssh=", "./pass"}, `"ssh="`},
		{[]string{"-n", "0", "./pass"}, "expected a number of workers from 1 to 1024, or auto"},
		{[]string{"-n", "many", "./pass"}, "expected a number of workers"},
		{[]string{"./shared/..."}, `package pattern "./shared/...": matched no packages`},
		{[]string{"example.com/none/..."}, "matched no packages"},
		{[]string{"./nonexist"}, `package pattern "./nonexist"`},
		{[]string{"-timeout", "soon", "./pass"}, `invalid argument "soon"`},
		{[]string{"-count", "-2", "./pass"}, "expected a count of 1 or more"},
		{[]string{"--format", "fancy", "./pass"}, "fancy"},
		{[]string{"--junitfile", "/nonexistent/dir/j.xml", "./pass"}, "--junitfile: open /nonexistent/dir/j.xml"},
		{[]string{"--jsonfile", "/nonexistent/dir/j.json", "./pass"}, "--jsonfile: open /nonexistent/dir/j.json"},
		{[]string{"--shard", "0/3", "./pass"}, `shard "0/3": want I/N`},
		{[]string{"--maxfail", "-1", "./pass"}, "expected a number of failures of 1 or more"},
		{[]string{"-x", "--maxfail", "3", "./pass"}, "-x is --maxfail 1"},
		{[]string{"--rerun-fails", "-2", "./pass"}, "expected a number of re-runs from 0 to 100"},
		{[]string{"--tx", "popen//via=nope", "./pass"}, `via="nope" names no gateway`},
		{[]string{"ping"}, "give at least one --tx SPEC"},
		{[]string{"rsync", "--tx", "popen"}, "want SRCDIR and DESTDIR"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			stdout, stderr, code := runCmd(t, dir, godistBin, c.args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2; stderr: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimRight(string(stderr), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "godist: ") {
				t.Errorf("stderr is not one godist: line:\n%s", stderr)
			}
			if !strings.Contains(string(stderr), c.want) {
				t.Errorf("stderr %q does not say %q", stderr, c.want)
			}
			if strings.Contains(string(stderr), "goroutine ") || strings.Contains(string(stderr), "panic") {
				t.Errorf("stack trace on stderr:\n%s", stderr)
			}
			if len(stdout) != 0 {
				t.Errorf("stdout not empty on bad input:\n%s", stdout)
			}
		})
	}
}

func TestGoFlagsToPosix(t *testing.T) {
	got := goFlagsToPosix([]string{"-run", "X", "-run=Y", "-v", "-n", "2", "--tx", "popen", "-count=3", "./...", "--", "-run", "Z"})
	want := []string{"--run", "X", "--run=Y", "-v", "-n", "2", "--tx", "popen", "--count=3", "./...", "--", "-run", "Z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
