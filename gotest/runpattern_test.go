package gotest

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplitRunPattern(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want [][]string
	}{
		{"", [][]string{{""}}},
		{"TestA", [][]string{{"TestA"}}},
		{"TestA/sub", [][]string{{"TestA", "sub"}}},
		{"TestA/", [][]string{{"TestA", ""}}},
		{"/inner", [][]string{{"", "inner"}}},
		{"TestA|TestB", [][]string{{"TestA"}, {"TestB"}}},
		{"X/a|Y/b", [][]string{{"X", "a"}, {"Y", "b"}}},
		{"X/a/b|Y||Z/", [][]string{{"X", "a", "b"}, {"Y"}, {""}, {"Z", ""}}},
		{"(A|B)/c", [][]string{{"(A|B)", "c"}}},
		{"A/(b/c)|d", [][]string{{"A", "(b/c)"}, {"d"}}},
		{"[/|]x/y", [][]string{{"[/|]x", "y"}}},
		{"[(]x/y", [][]string{{"[(]x", "y"}}},
		{`A\/b|c`, [][]string{{`A\/b`}, {"c"}}},
		{`A\|b/c`, [][]string{{`A\|b`, "c"}}},
		{"]|a", [][]string{{"]"}, {"a"}}},
		{")|a/b", [][]string{{")|a/b"}}}, // an unmatched ')' leaves the rest unsplit
	} {
		if got := splitRunPattern(tt.in); !slices.EqualFunc(got, tt.want, slices.Equal) {
			t.Errorf("splitRunPattern(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRunPatternString(t *testing.T) {
	top := []string{"TestA", "TestAlpha", "TestB", "TestX", "TestY", "TestÜber", "ExampleA"}
	for _, tt := range []struct {
		run  string
		top  []string
		want string
	}{
		{"", []string{"TestA", "TestB"}, "^(TestA|TestB)$"},
		{"", nil, "^$"},
		{"", []string{"Test_x"}, "^(Test_x)$"},
		{"TestA", top, "^(TestA|TestAlpha)$"},
		{"^TestA$", top, "^(TestA)$"},
		{"TestA/sub", top, "^(TestA|TestAlpha)$/sub"},
		{"TestA/sub", []string{"TestB"}, "^$"},
		{"TestA|TestB", top, "^(TestA|TestAlpha|TestB)$"},
		{"TestB|TestA", top, "^(TestB|TestA|TestAlpha)$"},
		{"X/a|Y/b", top, "^(TestX)$/a|^(TestY)$/b"},
		{"X/a|Y/a", top, "^(TestX|TestY)$/a"},
		{"X/a|Q/b", top, "^(TestX)$/a"},
		{"/inner", []string{"TestA", "TestB"}, "^(TestA|TestB)$/inner"},
		{"Über/ß", top, "^(TestÜber)$/ß"},
		{"Example", top, "^(ExampleA)$"},
		{"(", top, "("},                   // invalid: the binary reports it
		{"*x|TestB", top, "*x|^(TestB)$"}, // only the invalid alternative is kept as is
		{"Test A", []string{"Test_A"}, "^(Test_A)$"},
	} {
		if got := RunPattern(tt.run, tt.top); got != tt.want {
			t.Errorf("RunPattern(%q, %q) = %q, want %q", tt.run, tt.top, got, tt.want)
		}
	}
}

// ranTests runs the subtests fixture with -test.run=pattern and returns the tests that ran.
func ranTests(t *testing.T, pattern string) []string {
	t.Helper()
	var ran []string
	conv := NewConverter("subtests", func(e Event) {
		if e.Action == ActionRun {
			ran = append(ran, e.Test)
		}
	}, nil)
	cmd := exec.Command(fixtureBinary(t, "subtests"), "-test.v=test2json", "-test.run="+pattern)
	cmd.Dir = filepath.Join(fixturesDir(t), "subtests")
	cmd.Stdout = conv
	cmd.Stderr = conv
	err := cmd.Run()
	conv.Exited(err, 0)
	if strings.Contains(pattern, "(") && err != nil && len(ran) == 0 {
		return nil // an invalid pattern
	}
	return ran
}

// TestRunPatternSelects runs the subtests fixture with RunPattern's pattern and checks that
// exactly the tests and subtests ran that the user's pattern runs under the chosen top-level
// tests.
func TestRunPatternSelects(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a fixture binary")
	}
	out, err := exec.Command(fixtureBinary(t, "subtests"), "-test.list", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	all := ParseList(out).Runnable()
	subsets := [][]string{
		all,
		{"TestA"},
		{"TestAlpha"},
		{"TestB", "TestX"},
		{"TestY", "TestÜber"},
		{"Test_snake", "TestAlpha", "TestA"},
		{},
	}
	users := []string{
		"", "TestA/sub", "TestA|TestB", "X/a|Y/b", "X/a|Y/a", "TestA/(x)", `TestA/\(x\)`,
		"TestA/a+b", `TestA/a\+b`, "TestA/ünïcødé", "TestA/日本/inner", "Test[AB]$", "/inner",
		"TestA/sub/deeper", "TestA/sub/deeper/deepest", "NoSuch", "TestA/with space", "TestA/x/y",
		"TestA/[y]", `TestA/\[y\]`, `TestA/\|`, `TestA/\$`, "TestA/fail|TestY/b", "Über|snake",
		"TestA/sub#01", "^TestA$/^sub$",
	}
	for _, user := range users {
		full := ranTests(t, user)
		for _, subset := range subsets {
			var want []string
			for _, name := range full {
				top, _, _ := strings.Cut(name, "/")
				if slices.Contains(subset, top) {
					want = append(want, name)
				}
			}
			pattern := RunPattern(user, subset)
			if got := ranTests(t, pattern); !slices.Equal(got, want) {
				t.Errorf("-run %q within %q: RunPattern = %q ran\n  %q\nwant\n  %q", user, subset, pattern, got, want)
			}
		}
	}
	// Each name alone selects just that test, and all its subtests.
	for _, name := range all {
		got := ranTests(t, RunPattern("", []string{name}))
		if len(got) == 0 || got[0] != name {
			t.Fatalf("RunPattern for %s ran %q", name, got)
		}
		for _, g := range got {
			if g != name && !strings.HasPrefix(g, name+"/") {
				t.Errorf("RunPattern for %s ran %s", name, g)
			}
		}
	}
}

func TestSkipsTopLevel(t *testing.T) {
	for _, c := range []struct {
		skip, name string
		want       bool
	}{
		{"", "TestA", false},
		{"TestA", "TestA", true},
		{"TestA", "TestAB", true}, // unanchored, as in testing
		{"^TestA$", "TestAB", false},
		{"TestA/sub", "TestA", false}, // skips a subtest only
		{"TestB|TestA", "TestA", true},
		{"TestB|TestA/x", "TestA", false},
		{"Test[", "TestA", false},  // invalid: the binary reports it
		{"Test A", "Test_A", true}, // spaces match as the testing package rewrites them
	} {
		if got := SkipsTopLevel(c.skip, c.name); got != c.want {
			t.Errorf("SkipsTopLevel(%q, %q) = %v, want %v", c.skip, c.name, got, c.want)
		}
	}
}
