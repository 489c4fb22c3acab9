package treesnap

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func take(t *testing.T, root string) Snap {
	t.Helper()
	s, err := Take(root, map[string]bool{".git": true}, map[string]bool{filepath.Join(root, "out.json"): true}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every kind of change to the tree changes the snapshot, and only changes do; a rewrite
// that keeps the size and sets the old modification time back is seen too (its status
// change time moved).
func TestChangesAreSeen(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "go.mod"), "module m\n")
	write(t, filepath.Join(root, "a", "a.go"), "package a\nconst X = 1\n")
	base := take(t, root)
	if again := take(t, root); !base.All.Same(again.All) {
		t.Fatal("two walks of an unchanged tree differ")
	}
	// Leaving out: .git, and the caller's own output files.
	write(t, filepath.Join(root, ".git", "index"), "x")
	write(t, filepath.Join(root, "out.json"), "{}")
	if !base.All.Same(take(t, root).All) {
		t.Error("a change under .git or to a skipped file changed the snapshot")
	}
	a := filepath.Join(root, "a", "a.go")
	fi, _ := os.Stat(a)
	for _, c := range []struct {
		name   string
		change func()
	}{
		{"same size, old mtime set back", func() {
			write(t, a, "package a\nconst X = 2\n")
			os.Chtimes(a, fi.ModTime(), fi.ModTime())
		}},
		{"a file added", func() { write(t, filepath.Join(root, "a", "b.go"), "package a\n") }},
		{"a file removed", func() { os.Remove(filepath.Join(root, "a", "b.go")) }},
		{"a directory added", func() { os.Mkdir(filepath.Join(root, "c"), 0o755) }},
		{"a mode changed", func() { os.Chmod(a, 0o600) }},
		{"renamed over", func() {
			write(t, a+".new", "package a\nconst X = 3\n")
			os.Rename(a+".new", a)
		}},
	} {
		before := take(t, root)
		c.change()
		after := take(t, root)
		if before.All.Same(after.All) {
			t.Errorf("%s: the snapshot did not change", c.name)
		}
		if c.name != "a directory added" && before.Sources.Same(after.Sources) {
			t.Errorf("%s: the snapshot of the sources did not change", c.name)
		}
	}
}

// A symbolic link to a file counts with what it points to; one to a directory makes the
// tree one that cannot be vouched for; so do too many entries.
func TestUnsure(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	write(t, filepath.Join(outside, "f.go"), "package f\n")
	write(t, filepath.Join(root, "go.mod"), "module m\n")
	if err := os.Symlink(filepath.Join(outside, "f.go"), filepath.Join(root, "f.go")); err != nil {
		t.Fatal(err)
	}
	before := take(t, root)
	write(t, filepath.Join(outside, "f.go"), "package g\n")
	if before.Sources.Same(take(t, root).Sources) {
		t.Error("a change to a linked file did not change the snapshot")
	}
	if _, err := Take(root, nil, nil, 2); !errors.Is(err, ErrUnsure) {
		t.Errorf("3 entries with a limit of 2: %v, want ErrUnsure", err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "dir")); err != nil {
		t.Fatal(err)
	}
	if _, err := Take(root, nil, nil, 1000); !errors.Is(err, ErrUnsure) {
		t.Errorf("a link to a directory: %v, want ErrUnsure", err)
	}
}

// A snapshot vouches for the tree only when its newest change is a tick of the clock older
// than the walk.
func TestTrusted(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		s    Snap
		want bool
	}{
		{Snap{All: View{Digest: "d", Newest: now.Add(-time.Second)}, Taken: now}, true},
		{Snap{All: View{Digest: "d", Newest: now.Add(-50 * time.Millisecond)}, Taken: now}, false},
		{Snap{All: View{Digest: "d", Newest: now}, Taken: now}, false},
		{Snap{All: View{Digest: "d", Newest: now.Add(-time.Second)}, Taken: now, Coarse: true}, false},
		{Snap{All: View{Digest: "d", Newest: now.Add(-3 * time.Second)}, Taken: now, Coarse: true}, true},
		{Snap{All: View{Newest: now.Add(-time.Hour)}, Taken: now}, false},
	} {
		if got := c.s.Trusted(c.s.All); got != c.want {
			t.Errorf("%+v: Trusted %v, want %v", c.s, got, c.want)
		}
	}
	// A tree written just now is not vouched for.
	root := t.TempDir()
	write(t, filepath.Join(root, "x"), "x")
	if s := take(t, root); s.Trusted(s.All) {
		t.Error("a tree changed a moment ago is trusted")
	}
}

// The sources' view sees only what go build reads by name: an output a test writes (a
// plugin, a log) changes the tree, not its sources; a new Go file changes both.
func TestSourcesView(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "go.mod"), "module m\n")
	write(t, filepath.Join(root, "a", "a.go"), "package a\n")
	base := take(t, root)
	write(t, filepath.Join(root, "a", "plugin.so"), "ELF")
	write(t, filepath.Join(root, "a", "out", "log.txt"), "x")
	after := take(t, root)
	if base.All.Same(after.All) || !base.Sources.Same(after.Sources) {
		t.Errorf("outputs written: all same %v (want false), sources same %v (want true)", base.All.Same(after.All), base.Sources.Same(after.Sources))
	}
	if after.Sources.Newest.After(base.Sources.Newest) {
		t.Error("an output moved the sources' newest time")
	}
	for _, name := range []string{"b.go", "x.s", "y.h", "z.syso", "default.pgo"} {
		write(t, filepath.Join(root, "a", name), "x")
		if now := take(t, root); after.Sources.Same(now.Sources) {
			t.Errorf("%s added: the sources' view did not change", name)
		}
		after = take(t, root)
	}
	for name, want := range map[string]bool{"go.mod": true, "go.sum": true, "modules.txt": true, "a.go": true, "a.txt": false, "a.so": false, "Makefile": false, "a.json": false} {
		if IsSource(name) != want {
			t.Errorf("IsSource(%q) = %v", name, !want)
		}
	}
}
