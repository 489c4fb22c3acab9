package gotest

import (
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseList(t *testing.T) {
	out := []byte("TestMain: set-up\nTestA\nTestÜber\nTest_x\nTest\nTesting\nBenchmarkB\nBenchmarkb\n" +
		"FuzzC\nExampleD\nExample_e\nExamplefoo\nTestCRLF\r\n\nok  \tpkg\t0.1s\nTest-x\n1Test\nTestTail")
	want := List{
		Tests:      []string{"TestA", "TestÜber", "Test_x", "Test", "TestCRLF", "TestTail"},
		Fuzz:       []string{"FuzzC"},
		Examples:   []string{"ExampleD", "Example_e"},
		Benchmarks: []string{"BenchmarkB"},
	}
	got := ParseList(out)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseList = %+v\nwant %+v", got, want)
	}
	runnable := []string{"TestA", "TestÜber", "Test_x", "Test", "TestCRLF", "TestTail", "FuzzC", "ExampleD", "Example_e"}
	if r := got.Runnable(); !reflect.DeepEqual(r, runnable) {
		t.Errorf("Runnable = %q, want %q", r, runnable)
	}
}

// TestParseListFixtures checks what real binaries list: examples without an output comment
// are missing, fuzz targets and benchmarks are there, and TestMain's lines are dropped.
func TestParseListFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs fixture binaries")
	}
	for _, tt := range []struct {
		pkg  string
		want List
	}{
		{"examples", List{
			Tests:    []string{"TestBeforeExamples"},
			Examples: []string{"ExampleGreet", "ExampleGreet_wrong", "ExampleGreet_unordered", "ExampleGreet_empty"},
		}},
		{"fuzz", List{Tests: []string{"TestAlongside"}, Fuzz: []string{"FuzzReverse", "FuzzNoSeeds"}}},
		{"bench", List{Tests: []string{"TestSum"}, Benchmarks: []string{"BenchmarkSum", "BenchmarkSub"}}},
		{"testmain", List{Tests: []string{"TestStateIsReady", "TestStateAgain"}}},
		{"subtests", List{Tests: []string{"TestA", "TestB", "TestAlpha", "TestX", "TestY", "TestÜber", "Test_snake"}}},
		{"onlyx", List{Tests: []string{"TestExternal"}}},
	} {
		cmd := exec.Command(fixtureBinary(t, tt.pkg), "-test.list", ".")
		cmd.Dir = filepath.Join(fixturesDir(t), tt.pkg)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s -test.list: %v", tt.pkg, err)
		}
		if got := ParseList(out); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ParseList = %+v\nwant %+v\noutput:\n%s", tt.pkg, got, tt.want, out)
		}
	}
}
