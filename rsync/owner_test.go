package rsync

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nothing destroyed: what a sync may delete, what it refuses, what it cannot carry.

// precious writes files that a sync must leave alone into dir and returns a check that
// fails t unless each is still there, byte for byte, with its mode and mtime.
func precious(t *testing.T, dir string, files ...string) func() {
	t.Helper()
	for i, f := range files {
		writeFile(t, filepath.Join(dir, f), []byte("precious "+f+" "+strings.Repeat("x", i)), 0o640)
	}
	before := map[string]string{}
	for _, f := range files {
		before[f] = describe(t, filepath.Join(dir, f))
	}
	return func() {
		t.Helper()
		for _, f := range files {
			if got := describe(t, filepath.Join(dir, f)); got != before[f] {
				t.Errorf("%s: %q, want it untouched: %q", f, got, before[f])
			}
		}
	}
}

// describe is a file's mode, mtime and content ("missing" if it is gone).
func describe(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		return "missing"
	}
	b, _ := os.ReadFile(p)
	return fi.Mode().String() + " " + fi.ModTime().UTC().Format(time.RFC3339Nano) + " " + string(b)
}

func syncOnce(t *testing.T, p *peer, src, dst string, opts Options) (Stats, error) {
	t.Helper()
	st, err := Sync(context.Background(), src, []Dest{dest(p, dst)}, opts)
	if len(st) != 1 {
		t.Fatalf("stats %+v, err %v", st, err)
	}
	return st[0], err
}

// mkdeep makes the file rel below base, however long its path, a directory at a time.
func mkdeep(t *testing.T, base, rel string) {
	t.Helper()
	r, err := os.OpenRoot(base)
	if err != nil {
		t.Fatal(err)
	}
	comps := strings.Split(rel, "/")
	for _, c := range comps[:len(comps)-1] {
		if err := r.Mkdir(c, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
		sub, err := r.OpenRoot(c)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		r = sub
	}
	defer r.Close()
	if err := r.WriteFile(comps[len(comps)-1], []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// A directory no sync wrote before: files are copied and overwritten, nothing is deleted,
// what is kept is counted; then it is godist's (it has a marker), but what godist did
// not write stays.
func TestSyncForeignDestination(t *testing.T) {
	p := newPeer(t)
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "a.go"), []byte("package a"), 0o644)
	writeFile(t, filepath.Join(src, "sub", "b.go"), []byte("package b"), 0o644)
	check := precious(t, dst, "notes.txt", "sub/mine.txt", "deep/er/x", ".hidden")
	writeFile(t, filepath.Join(dst, "a.go"), []byte("overwritten"), 0o644)
	st, err := syncOnce(t, p, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check()
	// notes.txt, deep/ (one, with what is in it), .hidden, sub/mine.txt
	if st.Deleted != 0 || st.Kept != 4 || st.Owned {
		t.Errorf("stats %+v: want nothing deleted, 4 kept, not owned", st)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a.go")); string(b) != "package a" {
		t.Errorf("a.go: %q", b)
	}
	if !exists(filepath.Join(dst, markerName)) {
		t.Fatal("no marker after the sync")
	}
	// Again: now owned; still nothing it did not write goes.
	st, err = syncOnce(t, p, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check()
	if st.Deleted != 0 || st.Kept != 4 || !st.Owned || st.FilesSent != 0 {
		t.Errorf("second sync %+v: want nothing deleted or sent, 4 kept, owned", st)
	}
}

// In a tree it synced before, a sync deletes what it wrote and the source no longer has,
// and nothing else: not a file someone added, not the directory that holds one.
func TestSyncOwnedDeletesOnlyWhatItWrote(t *testing.T) {
	p := newPeer(t)
	src := t.TempDir()
	dst := filepath.Join(t.TempDir(), "new")
	writeFile(t, filepath.Join(src, "keep.go"), []byte("keep"), 0o644)
	writeFile(t, filepath.Join(src, "gone.go"), []byte("gone"), 0o644)
	writeFile(t, filepath.Join(src, "dir", "a"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(src, "dir", "sub", "b"), []byte("b"), 0o644)
	writeFile(t, filepath.Join(src, "all", "c"), []byte("c"), 0o644)
	os.Symlink("keep.go", filepath.Join(src, "link"))
	if st, err := syncOnce(t, p, src, dst, Options{}); err != nil || st.Kept != 0 || st.Owned {
		t.Fatalf("first sync into a missing directory: %+v %v", st, err)
	}
	check := precious(t, dst, "added.txt", "dir/added.txt", "dir/sub/out/log")
	os.Remove(filepath.Join(src, "gone.go"))
	os.Remove(filepath.Join(src, "link"))
	os.RemoveAll(filepath.Join(src, "dir"))
	os.RemoveAll(filepath.Join(src, "all"))
	st, err := syncOnce(t, p, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check()
	for _, f := range []string{"gone.go", "link", "dir/a", "dir/sub/b", "all"} {
		if exists(filepath.Join(dst, f)) {
			t.Errorf("%s: still there; godist wrote it and the source has it no more", f)
		}
	}
	// gone.go, link, dir/a, dir/sub/b, all/c, all
	if st.Deleted != 6 || st.Kept != 3 || !st.Owned {
		t.Errorf("stats %+v: want 6 deleted, 3 kept, owned", st)
	}
	// With Delete, what godist did not write goes too.
	st, err = syncOnce(t, p, src, dst, Options{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst, nil)
	if st.Kept != 0 || st.Deleted != 6 { // added.txt, dir/added.txt, dir/sub/out/log, out, sub, dir
		t.Errorf("with Delete: %+v", st)
	}
}

// The marker names exactly the manifest of the last sync, whatever the names.
func TestSyncMarkerContents(t *testing.T) {
	p := newPeer(t)
	src, dst := t.TempDir(), t.TempDir()
	names := []string{"a\nb", "c:d", `e\f`, "tab\there", "\x1b[2J", "é"}
	for _, n := range names {
		writeFile(t, filepath.Join(src, n), []byte(n), 0o644)
	}
	if _, err := syncOnce(t, p, src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dst, markerName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := parseMarker(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(names) {
		t.Errorf("marker names %q, want %q", got, names)
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			t.Errorf("marker lacks %q", n)
		}
	}
	// An unchanged sync leaves the marker alone.
	fi1, _ := os.Stat(filepath.Join(dst, markerName))
	if _, err := syncOnce(t, p, src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	fi2, _ := os.Stat(filepath.Join(dst, markerName))
	if !os.SameFile(fi1, fi2) {
		t.Error("a sync that changed nothing rewrote the marker")
	}
}

// A marker of a source (it was a destination itself) is not carried; the marker of the
// destination is never deleted nor compared.
func TestSyncMarkerNotCarried(t *testing.T) {
	p := newPeer(t)
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "x"), []byte("x"), 0o644)
	writeFile(t, filepath.Join(a, "sub", markerName), []byte("only a file down here"), 0o644)
	if _, err := syncOnce(t, p, a, b, Options{Delete: true}); err != nil {
		t.Fatal(err)
	}
	st, err := syncOnce(t, p, b, c, Options{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 3 { // x, sub, sub/.godist-sync
		t.Errorf("files %d, want 3: the marker of b is not an entry", st.Files)
	}
	sameTree(t, a, c, nil)
	if !exists(filepath.Join(c, markerName)) {
		t.Error("c has no marker")
	}
}

// A file in the marker's place that is not a marker: the destination is refused, and
// nothing in it changes.
func TestSyncNotAMarker(t *testing.T) {
	p := newPeer(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	for name, setup := range map[string]func(dst string){
		"text": func(dst string) { writeFile(t, filepath.Join(dst, markerName), []byte("my own notes\n"), 0o644) },
		"bad line": func(dst string) {
			writeFile(t, filepath.Join(dst, markerName), []byte(markerHeader+"\n\"a\"\nnot quoted\n"), 0o644)
		},
		"symlink": func(dst string) { os.Symlink("elsewhere", filepath.Join(dst, markerName)) },
		"dir":     func(dst string) { os.Mkdir(filepath.Join(dst, markerName), 0o755) },
	} {
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			setup(dst)
			check := precious(t, dst, "mine")
			before := snapshot(t, dst, nil)
			_, err := syncOnce(t, p, src, dst, Options{Delete: true})
			var re *RefusedError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), markerName) {
				t.Fatalf("err %v, want a *RefusedError naming %s", err, markerName)
			}
			check()
			if after := snapshot(t, dst, nil); len(after) != len(before) {
				t.Errorf("destination changed: %v -> %v", keys(before), keys(after))
			}
		})
	}
}

// Where the source has a file and the destination a directory holding what no sync
// wrote, the sync fails naming it and the directory keeps its files; with Delete the
// file replaces it.
func TestSyncDirectoryInTheWay(t *testing.T) {
	for _, kind := range []string{"file", "symlink"} {
		t.Run(kind, func(t *testing.T) {
			p := newPeer(t)
			src, dst := t.TempDir(), t.TempDir()
			if kind == "file" {
				writeFile(t, filepath.Join(src, "docs"), bytes.Repeat([]byte("d"), 1000), 0o644)
			} else {
				os.Symlink("elsewhere", filepath.Join(src, "docs"))
			}
			check := precious(t, dst, "docs/mine.txt", "docs/deep/more.txt")
			_, err := syncOnce(t, p, src, dst, Options{})
			if err == nil || !strings.Contains(err.Error(), `"docs"`) {
				t.Fatalf("err %v, want one naming docs", err)
			}
			check()
			noTemps(t, dst)
			if _, err := syncOnce(t, p, src, dst, Options{Delete: true}); err != nil {
				t.Fatal(err)
			}
			sameTree(t, src, dst, nil)
		})
	}
}

// Names with a newline, a colon, a backslash, control characters, and what looks like a
// drive letter are legal POSIX names: they are carried, and deleted once gone.
func TestSyncStrangeNames(t *testing.T) {
	p := newPeer(t)
	src, dst := t.TempDir(), t.TempDir()
	names := []string{"new\nline", "co:lon", `back\slash`, `..\up`, "C:drive", `c:\windows\x`, "esc\x1b[2J", "del\x7f", "dir\nx/in:side"}
	for _, n := range names {
		writeFile(t, filepath.Join(src, n), []byte("content of "+n), 0o644)
	}
	check := precious(t, dst, "precious")
	if _, err := syncOnce(t, p, src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	check()
	sameTree(t, src, dst, func(rel string) bool { return rel == "precious" })
	for _, n := range names[:3] {
		os.Remove(filepath.Join(src, n))
	}
	st, err := syncOnce(t, p, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check()
	sameTree(t, src, dst, func(rel string) bool { return rel == "precious" })
	if st.Deleted != 3 || st.Kept != 1 {
		t.Errorf("stats %+v: want 3 deleted, 1 kept", st)
	}
}

// Entries a sync cannot carry fail it with an error naming them; nothing is sent.
func TestSyncCannotCarry(t *testing.T) {
	deep := strings.Repeat("d/", maxDepth) + "f"
	long := strings.Repeat(strings.Repeat("n", 200)+"/", 21) + "f"
	cases := map[string]struct {
		make func(t *testing.T, src string)
		path string // the entry named in the error
	}{
		"too deep": {func(t *testing.T, src string) { writeFile(t, filepath.Join(src, deep), []byte("x"), 0o644) },
			strings.Repeat("d/", maxDepth) + "f"},
		"too long": {func(t *testing.T, src string) { mkdeep(t, src, long) },
			strings.Repeat(strings.Repeat("n", 200)+"/", 20) + strings.Repeat("n", 200)},
		"fifo": {func(t *testing.T, src string) {
			if err := syscall.Mkfifo(filepath.Join(src, "pipe"), 0o644); err != nil {
				t.Skip(err)
			}
		}, "pipe"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := newPeer(t)
			src, dst := t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(src, "ok"), []byte("ok"), 0o644)
			tc.make(t, src)
			check := precious(t, dst, "precious", "ok")
			before := snapshot(t, dst, nil)
			_, err := Sync(context.Background(), src, []Dest{dest(p, dst)}, Options{Delete: true})
			var ee *EntryError
			if !errors.As(err, &ee) || ee.Path != filepath.Join(src, tc.path) {
				t.Fatalf("err %.300v, want an *EntryError for the %s entry", err, name)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			check()
			if after := snapshot(t, dst, nil); len(after) != len(before) {
				t.Errorf("destination changed: %v -> %v", keys(before), keys(after))
			}
			// With Warn, it is skipped and reported; the rest is synced.
			var warned []string
			st, err := syncOnce(t, p, src, dst, Options{Warn: func(path string, err error) { warned = append(warned, path) }})
			if err != nil || len(warned) != 1 || st.Skipped != 1 {
				t.Errorf("with Warn: %+v %v, warned %q", st, err, warned)
			}
		})
	}
}

// Destinations a receiver refuses, before it writes anything: /, $HOME, the cache root
// and directories above them (after symlinks), and relative ones that climb out of its
// working directory. HOME and XDG_CACHE_HOME are made up for the test.
func TestSyncRefusedDestinations(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home", "user")
	cache := filepath.Join(base, "xdg")
	cwd := filepath.Join(base, "work", "a", "b")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{home, cache, cwd, outside} {
		os.MkdirAll(d, 0o755)
	}
	os.Symlink(home, filepath.Join(cwd, "tohome"))
	os.Symlink(outside, filepath.Join(cwd, "toout"))
	os.Symlink("/", filepath.Join(cwd, "toroot"))
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Chdir(cwd)
	checks := []func(){
		precious(t, home, "precious", ".cache/godist/blobs/x"),
		precious(t, cache, "godist/blobs/y", "other/z"),
		precious(t, filepath.Join(base, "work"), "w", "a/wa"),
		precious(t, outside, "o"),
	}
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	for _, d := range []struct{ dest, want string }{
		{home, "it is $HOME"},
		{home + "/.", "it is $HOME"},
		{home + "/../user", "it is $HOME"},
		{"tohome", "it is $HOME"},
		{filepath.Dir(home), "it holds $HOME"},
		{filepath.Join(cache, "godist"), "it is the godist cache root"},
		{cache, "it holds the godist cache root"},
		{"..", "climbs out"},
		{"../..", "climbs out"},
		{"x/../../b", "climbs out"},
		{"toout/..", "climbs out"},
		{"toout/../b", "climbs out"},
		{"", "empty"},
	} {
		t.Run(d.dest, func(t *testing.T) {
			p := newPeer(t)
			_, err := syncOnce(t, p, src, d.dest, Options{Delete: true})
			var re *RefusedError
			if !errors.As(err, &re) || !strings.Contains(re.Reason, d.want) {
				t.Fatalf("err %v, want a refusal saying %q", err, d.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("not one line: %q", err)
			}
		})
	}
	for _, c := range checks {
		c()
	}
	for _, d := range []string{"x", filepath.Join(cwd, "x"), filepath.Join(home, "x")} {
		if exists(d) {
			t.Errorf("%s was made", d)
		}
	}
	// Allowed: below the working directory, through symlinks, into the cache (where the
	// runner keeps its trees), and with the HOME check on the home of the process.
	for _, d := range []string{"fine/dir", "x/../fine2", "toout/in", filepath.Join(cache, "godist", "work", "h", "m"), filepath.Join(home, "proj")} {
		p := newPeer(t)
		if _, err := syncOnce(t, p, src, d, Options{Delete: true}); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	for _, c := range checks {
		c()
	}
}

// / is refused, however it is spelled; the test only looks: a hand-made sender sends a
// hello and reads the reply, and would send no manifest whatever the answer.
func TestSyncRootRefused(t *testing.T) {
	cwd := t.TempDir()
	os.Symlink("/", filepath.Join(cwd, "toroot"))
	os.Symlink("../../../../../../../../../../..", filepath.Join(cwd, "up"))
	t.Chdir(cwd)
	for _, d := range []string{"/", "//", "/.", "/tmp/..", "toroot", "toroot/.", "up", "up/"} {
		if _, err := checkDest(d); err == nil || !strings.Contains(err.Error(), "it is /") {
			t.Errorf("checkDest(%q): %v, want it is /", d, err)
		}
		p := newPeer(t)
		ch, err := p.open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c := &conn{ch: ch}
		h := &hello{version: protocolVersion, mode: modeTree, codecs: codecsAll, flags: helloDelete, dest: d}
		if err := c.sendRaw(context.Background(), encodeHello(h)); err != nil {
			t.Fatal(err)
		}
		rp, err := recvReply(context.Background(), c)
		ch.Close()
		if err != nil || rp.state != treeRefused || !strings.Contains(rp.path, "it is /") {
			t.Errorf("%q: reply %+v %v, want refused", d, rp, err)
		}
	}
}

func TestParseMarker(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil: not a marker
	}{
		{markerHeader + "\n", []string{}},
		{markerHeader + "\n\"a\"\n\"b/c\"\n", []string{"a", "b/c"}},
		{markerHeader + "\n\"a\\nb\"\n\"\\x00x\"\n", nil}, // NUL: not a path
		{markerHeader + "\n\"a\\nb\"\n\"c:\\\\d\"\n", []string{"a\nb", `c:\d`}},
		{"", nil},
		{"godist-sync 2\n", nil},
		{markerHeader + "\na\n", nil},
		{markerHeader + "\n`a`\n", nil},
		{markerHeader + "\n'a'\n", nil},
		{markerHeader + "\n\"../x\"\n", nil},
		{markerHeader + "\n\"/abs\"\n", nil},
		{markerHeader + "\n\"a\" \n", nil},
		{markerHeader + "\n\n", nil},
		{markerHeader + "\n\"" + strings.Repeat("x", maxMarkerLine) + "\"\n", nil},
	} {
		got, err := parseMarker(strings.NewReader(tc.in))
		if tc.want == nil {
			if err == nil || !errors.Is(err, errNotMarker) {
				t.Errorf("%q: %v %v, want errNotMarker", firstBytes(tc.in, 60), got, err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %v %v, want %q", tc.in, got, err, tc.want)
			continue
		}
		for _, w := range tc.want {
			if _, ok := got[w]; !ok {
				t.Errorf("%q: lacks %q", tc.in, w)
			}
		}
	}
}

// Without XDG_CACHE_HOME the cache root is $HOME/.cache/godist.
func TestSyncRefusedCacheRootOfHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	check := precious(t, home, ".cache/godist/blobs/b", ".cache/other/o")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	for _, d := range []struct{ dest, want string }{
		{filepath.Join(home, ".cache", "godist"), "it is the godist cache root"},
		{filepath.Join(home, ".cache"), "it holds the godist cache root"},
	} {
		p := newPeer(t)
		_, err := syncOnce(t, p, src, d.dest, Options{Delete: true})
		var re *RefusedError
		if !errors.As(err, &re) || !strings.Contains(re.Reason, d.want) {
			t.Errorf("%s: %v, want a refusal saying %q", d.dest, err, d.want)
		}
	}
	check()
}
