package gotest

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzListAndRunPattern: any -test.list output parses; the pattern made of its names
// compiles level by level and selects each of them.
func FuzzListAndRunPattern(f *testing.F) {
	f.Add([]byte("TestA\nTestB\nExampleX\nFuzzY\nBenchmarkZ\n"), "")
	f.Add([]byte("TestA\n"), "TestA/sub|X/y")
	f.Add([]byte("Test[x]\nTest(y)\n"), "[")
	f.Fuzz(func(t *testing.T, out []byte, userRun string) {
		l := ParseList(out)
		names := l.Runnable()
		p := RunPattern(userRun, names)
		if userRun == "" && len(names) > 0 {
			re, err := regexp.Compile(p)
			if err != nil {
				t.Fatalf("RunPattern(%q) = %q does not compile: %v", names, p, err)
			}
			for _, n := range names {
				if !re.MatchString(n) {
					t.Fatalf("pattern %q does not select %q", p, n)
				}
			}
		}
		for _, n := range names {
			if strings.ContainsAny(n, "\n/") {
				t.Fatalf("ParseList returned %q", n)
			}
		}
	})
}
