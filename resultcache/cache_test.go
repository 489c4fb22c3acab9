package resultcache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/godist/godist/gotest"
)

func TestPutGetTrimClear(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	el := 0.5
	keys := []string{Key("a"), Key("b"), Key("c")}
	for i, k := range keys {
		e := &Entry{Package: "p", Events: []gotest.Event{{Action: "run", Test: "T"}, {Action: "pass", Test: "T", Elapsed: &el}}}
		if err := c.Put(k, e); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(time.Duration(i-10) * time.Minute) // a oldest, c newest
		os.Chtimes(c.file(k), old, old)
	}
	got, ok := c.Get(keys[2])
	if ok {
		if err := got.LoadEvents(); err != nil {
			t.Fatal(err)
		}
	}
	if !ok || got.Package != "p" || len(got.Events) != 2 || *got.Events[1].Elapsed != 0.5 {
		t.Fatalf("Get: %+v, %v", got, ok)
	}
	if _, ok := c.Get(Key("missing")); ok {
		t.Fatal("Get of a missing key hit")
	}
	// Files that are not godist's entries, inside the cache: never removed.
	foreign := []string{filepath.Join(dir, "notes.txt"), filepath.Join(dir, keys[0][:2], "mine.res"), filepath.Join(dir, "zz", keys[1]+".res")}
	for _, f := range foreign {
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte("not godist's"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := c.Stat()
	if st.Entries != 3 {
		t.Fatalf("Stat: %d entries, want 3", st.Entries)
	}
	size := fileSize(t, c.file(keys[2]))
	// Trim to one entry's size: the least recently used (a, then b) go; c, just read, stays.
	removed, err := c.Trim(size)
	if err != nil || removed.Entries != 2 {
		t.Fatalf("Trim: removed %+v, %v", removed, err)
	}
	if _, ok := c.Get(keys[2]); !ok {
		t.Error("Trim removed the most recently used entry")
	}
	if removed, err := c.Clear(); err != nil || removed.Entries != 1 {
		t.Errorf("Clear: removed %+v, %v", removed, err)
	}
	for _, f := range append(foreign, filepath.Join(dir, marker)) {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s was removed: %v", f, err)
		}
	}
}

func fileSize(t *testing.T, f string) int64 {
	fi, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestOpenRefusesSomeoneElsesDirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "photo.jpg"), []byte("x"), 0o644)
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "not empty and not godist's") {
		t.Fatalf("Open of a foreign directory: %v", err)
	}
}

func TestInputsAndValid(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "pkg", "testdata"), 0o755)
	data := filepath.Join(root, "pkg", "testdata", "in.txt")
	os.WriteFile(data, []byte("one"), 0o644)
	log := []byte("# test log\ngetenv HOME\nopen testdata/in.txt\nstat testdata\nopen testdata\nopen /etc/hostname\nstat missing.txt\nchdir " + root + "\nopen pkg/testdata/in.txt\n")
	ops, err := ParseTestLog(log)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": "/h"}
	envf := func(n string) string { v, ok := env[n]; return EnvSum(v, ok) }
	in, err := Inputs([][]LogOp{ops}, []Where{{Dir: filepath.Join(root, "pkg")}}, root, envf)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range in {
		names = append(names, i.Op+" "+strings.TrimPrefix(i.Name, root))
	}
	want := "dir /pkg/testdata,env HOME,file /pkg/testdata/in.txt,missing /pkg/missing.txt,stat ,stat /pkg/testdata" // "stat ": the chdir to root
	if got := strings.Join(names, ","); got != want {
		t.Fatalf("inputs:\n got %s\nwant %s (a file outside the root is not an input, as in go test)", got, want)
	}
	check := func(what string, wantOK bool) {
		t.Helper()
		if ok, changed := Valid(in, envf); ok != wantOK {
			t.Errorf("%s: valid %v (changed %q), want %v", what, ok, changed, wantOK)
		}
	}
	check("unchanged", true)
	later := time.Now().Add(time.Hour)
	os.Chtimes(data, later, later)
	check("touched", true)
	os.WriteFile(data, []byte("two"), 0o644)
	check("content changed", false)
	os.WriteFile(data, []byte("one"), 0o644)
	check("content back", true)
	env["HOME"] = "/other"
	check("variable changed", false)
	env["HOME"] = "/h"
	os.WriteFile(filepath.Join(root, "pkg", "missing.txt"), nil, 0o644)
	check("missing file now there", false)
	os.Remove(filepath.Join(root, "pkg", "missing.txt"))
	os.WriteFile(filepath.Join(root, "pkg", "testdata", "new.txt"), nil, 0o644)
	check("file added to a listed directory", false)
}

func TestParseTestLogRefusesWhatIsNotALog(t *testing.T) {
	for _, bad := range []string{"", "getenv X\n", "# test log\nopen x", "# test log\nunlink x\n", "# test log\nopen\n"} {
		if _, err := ParseTestLog([]byte(bad)); err == nil {
			t.Errorf("ParseTestLog(%q): no error", bad)
		}
	}
}

func FuzzParseTestLog(f *testing.F) {
	f.Add([]byte("# test log\ngetenv HOME\nopen a\nstat b\nchdir /c\n"))
	f.Add([]byte("# test log\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := ParseTestLog(data)
		if err != nil {
			return
		}
		for _, op := range ops {
			if op.Name == "" || strings.Contains(op.Name, "\n") {
				t.Fatalf("bad op %+v", op)
			}
		}
		// Inputs never panics on a parsed log, wherever it points.
		Inputs([][]LogOp{ops}, []Where{{Dir: t.TempDir()}}, t.TempDir(), func(string) string { return "" })
	})
}

func FuzzDecode(f *testing.F) {
	raw, _ := cbor.Marshal(&Entry{Version: Version, Package: "p", Events: []gotest.Event{{Action: "run", Test: "T"}}})
	f.Add(encoder.EncodeAll(raw, nil))
	f.Add([]byte("not zstd"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err == nil && e.Version != Version {
			t.Fatalf("decoded an entry of version %d", e.Version)
		}
		if err == nil {
			e.LoadEvents() // an error, never a panic
		}
	})
}
