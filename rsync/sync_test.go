package rsync

import (
	"context"
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
