package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/gotest"
)

func TestGoldenFormats(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "") // testname turns into github-actions under GitHub Actions
	for _, format := range []string{"dots", "pkgname", "pkgname-and-test-fails", "testname", "testdox", "github-actions", "standard-quiet", "standard-verbose"} {
		for _, script := range []string{"load", "each"} {
			t.Run(format+"/"+script, func(t *testing.T) {
				out, _ := runPlain(t, script+".jsonl", Options{Format: format, Each: script == "each"})
				if strings.Contains(out, "\x1b") {
					t.Errorf("escape code without Color:\n%q", out)
				}
				golden(t, "format-"+format+"-"+script+".golden", []byte(out))
			})
		}
	}
}

// standard-json writes the stream back, Worker included; a huge output line survives the
// trip through testjson's scanner (which refuses lines over 64 KiB) in pieces.
func TestFormatStandardJSONAndLongOutput(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf, Format: "standard-verbose"})
	long := strings.Repeat("é\"<x>", 40000) + "\n" // 240 kB, escaping grows it further
	r.Event(gotest.Event{Action: gotest.ActionOutput, Package: "p", Test: "TestA", Output: long, Worker: "gw0"})
	r.Close(0)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), long) {
		t.Errorf("long line mangled: %d bytes out, %d in", buf.Len(), len(long))
	}

	buf.Reset()
	r = newReporter(t, Options{Out: &buf, Format: "standard-json"})
	r.Event(gotest.Event{Action: gotest.ActionRun, Package: "p", Test: "TestA", Worker: "gw0"})
	r.Close(0)
	if want := `{"Action":"run","Package":"p","Test":"TestA","Worker":"gw0"}` + "\n"; !strings.HasPrefix(buf.String(), want) {
		t.Errorf("got %q, want prefix %q", buf.String(), want)
	}
}

// A test still running at Close is ended by testjson as failed; the formatter sees it.
func TestFormatSeesUnfinishedAtClose(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "")
	var buf bytes.Buffer
	r := newReporter(t, Options{Out: &buf, Format: "testname"})
	r.Event(gotest.Event{Action: gotest.ActionRun, Package: "p", Test: "TestHang", Worker: "gw0"})
	s := r.Close(time.Second)
	if !strings.HasPrefix(buf.String(), "FAIL p.TestHang") {
		t.Errorf("output:\n%s", buf.String())
	}
	if s.NotRun != 1 || !strings.HasSuffix(buf.String(), "\n0 passed, 0 failed, 0 skipped in 1.00s, 1 not run\n") {
		t.Errorf("summary %+v, output:\n%s", s, buf.String())
	}
}

func TestANSIStripper(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"plain"}, "plain"},
		{[]string{"\x1b[31mred\x1b[0m"}, "red"},
		{[]string{"a\x1b[", "1;3", "1mb\x1b", "[0mc"}, "abc"},
		{[]string{"x\x1b7y"}, "xy"},
		{[]string{"✓ ok\n"}, "✓ ok\n"},
	} {
		var buf bytes.Buffer
		s := &ansiStripper{w: &buf}
		for _, p := range tc.in {
			if n, err := s.Write([]byte(p)); n != len(p) || err != nil {
				t.Errorf("Write(%q) = %d, %v", p, n, err)
			}
		}
		if buf.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, buf.String(), tc.want)
		}
	}
}

func TestChunks(t *testing.T) {
	s := strings.Repeat("aé", maxChunk) // 3*maxChunk bytes
	cs := chunks(s)
	if strings.Join(cs, "") != s {
		t.Fatal("chunks lose text")
	}
	for _, c := range cs {
		if len(c) > maxChunk || !strings.HasPrefix(c, "a") && !strings.HasPrefix(c, "é") {
			t.Errorf("chunk of %d bytes starting %q", len(c), c[:2])
		}
	}
	if got := chunks(""); len(got) != 1 || got[0] != "" {
		t.Errorf("chunks(\"\") = %q", got)
	}
}

func TestFormatsSorted(t *testing.T) {
	fs := formatNames()
	for i := 1; i < len(fs); i++ {
		if fs[i-1] >= fs[i] {
			t.Errorf("formatNames not sorted: %q", fs)
		}
	}
}
