package rsync

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSyncBasic(t *testing.T) {
	p := newPeer(t)
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "dst")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("hello"), 0o644)
	writeFile(t, filepath.Join(src, "bin", "tool"), bytesRepeat("x", 100000), 0o755)
	writeFile(t, filepath.Join(src, "sub", "deep", "z"), nil, 0o600)
	if err := os.Symlink("../a.txt", filepath.Join(src, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "abs")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := Sync(ctx, src, []Dest{dest(p, dst)}, Options{Delete: true, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst, nil)
	if st[0].FilesSent != 3 || st[0].Files != 8 {
		t.Errorf("stats %+v", st[0])
	}
	// Nothing changed: nothing sent but the manifest.
	st, err = Sync(ctx, src, []Dest{dest(p, dst)}, Options{Delete: true, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if st[0].FilesSent != 0 || st[0].BytesSent > 400 {
		t.Errorf("unchanged tree: %+v", st[0])
	}
	noTemps(t, dst)
}

// A file changed in the middle travels as a delta: the unchanged blocks are not sent.
func TestSyncDelta(t *testing.T) {
	p := newPeer(t)
	src, dst := t.TempDir(), t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	writeFile(t, filepath.Join(src, "big"), data, 0o644)
	ctx := context.Background()
	if _, err := Sync(ctx, src, []Dest{dest(p, dst)}, Options{}); err != nil {
		t.Fatal(err)
	}
	// Insert 10 bytes in the middle, change 100 near the end.
	data = append(data[:1<<20], append([]byte("0123456789"), data[1<<20:]...)...)
	copy(data[len(data)-5000:], strings.Repeat("y", 100))
	writeFile(t, filepath.Join(src, "big"), data, 0o644)
	os.Chtimes(filepath.Join(src, "big"), time.Time{}, time.Now().Add(time.Second))
	st, err := Sync(ctx, src, []Dest{dest(p, dst)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst, nil)
	if st[0].FilesSent != 1 || st[0].Literal > 8000 || st[0].BytesSent > 12000 {
		t.Errorf("delta sent too much: %+v", st[0])
	}
	t.Logf("%+v", st[0])
}

// Excluded entries are neither sent nor ever deleted; entries gone from the source are
// deleted, and so are directories that held only such entries.
func TestSyncExcludeAndDelete(t *testing.T) {
	p := newPeer(t)
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "keep.go"), []byte("package x"), 0o644)
	writeFile(t, filepath.Join(src, "gone.go"), []byte("package x"), 0o644)
	writeFile(t, filepath.Join(src, "old", "a.go"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(src, "build.log"), []byte("src log"), 0o644)
	writeFile(t, filepath.Join(src, "cache", "blob"), []byte("src cache"), 0o644)
	// On the destination only: excluded things of its own, in kept and deleted places.
	writeFile(t, filepath.Join(dst, "run.log"), []byte("remote log"), 0o644)
	writeFile(t, filepath.Join(dst, "cache", "remote"), []byte("remote cache"), 0o644)
	writeFile(t, filepath.Join(dst, "old", "b.log"), []byte("remote log in a deleted dir"), 0o644)
	writeFile(t, filepath.Join(dst, "extra", "x.go"), []byte("extra"), 0o644)
	opts := Options{Delete: true, Exclude: []string{"*.log", "/cache/"}}
	ctx := context.Background()
	if _, err := Sync(ctx, src, []Dest{dest(p, dst)}, opts); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(src, "gone.go"))
	os.RemoveAll(filepath.Join(src, "old"))
	st, err := Sync(ctx, src, []Dest{dest(p, dst)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"run.log", "cache/remote", "old/b.log", "keep.go"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("%s: %v (excluded or kept entries must stay)", f, err)
		}
	}
	for _, f := range []string{"gone.go", "old/a.go", "extra", "build.log", "cache/blob"} {
		if _, err := os.Lstat(filepath.Join(dst, f)); err == nil {
			t.Errorf("%s still exists", f)
		}
	}
	if st[0].Deleted != 2 { // gone.go, old/a.go (extra/ went with the first sync)
		t.Errorf("deleted %d, want 2", st[0].Deleted)
	}
	// old/ stays, for the excluded file in it.
	excluded := func(rel string) bool { return strings.HasSuffix(rel, ".log") || rel == "cache" || rel == "old" }
	sameTree(t, src, dst, excluded)
}

// Without Delete nothing is deleted.
func TestSyncNoDelete(t *testing.T) {
	p := newPeer(t)
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(dst, "extra"), []byte("x"), 0o644)
	if _, err := Sync(context.Background(), src, []Dest{dest(p, dst)}, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "extra")); err != nil {
		t.Error(err)
	}
}

// Destinations that are one directory on one machine are synced once.
func TestSyncSamePlaceOnce(t *testing.T) {
	if _, err := os.Stat("/proc/sys/kernel/random/boot_id"); err != nil {
		t.Skip("no boot id on this machine")
	}
	p := newPeer(t)
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "a"), bytesRepeat("a", 5000), 0o644)
	os.Symlink(dst, filepath.Join(t.TempDir(), "alias"))
	st, err := Sync(context.Background(), src, []Dest{dest(p, dst), dest(p, dst), dest(p, dst+"/.")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	owners := 0
	for _, s := range st {
		if s.SameAs == -1 {
			owners++
			if s.FilesSent != 1 {
				t.Errorf("owner sent %d files", s.FilesSent)
			}
		} else if s.FilesSent != 0 || st[s.SameAs].SameAs != -1 {
			t.Errorf("duplicate %+v", s)
		}
	}
	if owners != 1 {
		t.Errorf("%d destinations synced the same directory", owners)
	}
	sameTree(t, src, dst, nil)
}

// Progress is reported per file and at the end.
func TestSyncProgress(t *testing.T) {
	p := newPeer(t)
	src, dst := t.TempDir(), t.TempDir()
	for i := range 5 {
		writeFile(t, filepath.Join(src, fmt.Sprint("f", i)), bytesRepeat("x", 1000*i), 0o644)
	}
	var got []Progress
	_, err := Sync(context.Background(), src, []Dest{dest(p, dst)}, Options{Progress: func(pr Progress) { got = append(got, pr) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || !got[5].Done || got[4].FilesSent != 5 || got[4].BytesDone != 10000 || got[4].BytesSent == 0 {
		t.Errorf("progress %+v", got)
	}
}

// A file that vanishes between the walk and its sending is skipped: the receiver keeps
// what it had and the sync succeeds.
func TestSyncVanishedFile(t *testing.T) {
	p := newPeer(t)
	s := newSandbox(t)
	writeFile(t, filepath.Join(s.dst, "b"), []byte("old b"), 0o644)
	rs := newRawSender(t, p, treeHello(s.dst))
	rs.manifest([]entry{file("a", "new a"), file("b", "new b")})
	for _, i := range rs.needs(2) {
		rs.data(func(b *wbuf) { b.byte(recSkip); b.uvarint(i) })
	}
	if errs := p.receiverErrs(1); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if _, err := os.Stat(filepath.Join(s.dst, "a")); err == nil {
		t.Error("a exists")
	}
	if b, _ := os.ReadFile(filepath.Join(s.dst, "b")); string(b) != "old b" {
		t.Errorf("b is %q", b)
	}
	// The sender's side of it.
	w := &dataWriter{msg: newMsg(msgData, 64)}
	if _, sent, err := w.sendFile(context.Background(), filepath.Join(t.TempDir(), "gone"), 3, nil); sent || err != nil {
		t.Errorf("sendFile of a missing file: sent %v, %v", sent, err)
	}
	if string(w.msg[2:]) != string([]byte{recSkip, 3}) {
		t.Errorf("records %q", w.msg[2:])
	}
}
