package gotest

import (
	"regexp"
	"strings"
	"testing"
)

// SkipsTopLevel never panics, and when it says a name is skipped whole, the -run pattern
// made of the same text selects that name at the top level too (the same matcher, anchored
// nowhere): they read patterns alike.
func FuzzSkipsTopLevel(f *testing.F) {
	for _, s := range []string{"TestA", "TestA/sub", "A|B", "Test[", `Test\|x`, "(a|b)/c", "Test A", "^$", ""} {
		f.Add(s, "TestA")
	}
	f.Fuzz(func(t *testing.T, skip, name string) {
		if !SkipsTopLevel(skip, name) || strings.Contains(skip, "/") {
			return
		}
		if RunPattern(skip, []string{name}) == matchNothing {
			// A single-level alternative matched name, so RunPattern must keep it.
			for _, levels := range splitRunPattern(skip) {
				if len(levels) == 1 {
					if re, err := regexp.Compile(rewriteName(levels[0])); err == nil && re.MatchString(name) {
						t.Fatalf("SkipsTopLevel(%q, %q) but RunPattern selects nothing", skip, name)
					}
				}
			}
		}
	})
}
