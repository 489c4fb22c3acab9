package rsync

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkColdTree syncs the tree at $RSYNC_BENCH_SRC (skipped when unset) to an
// empty directory, in memory over OS pipes.
func BenchmarkColdTree(b *testing.B) {
	src := os.Getenv("RSYNC_BENCH_SRC")
	if src == "" {
		b.Skip("RSYNC_BENCH_SRC not set")
	}
	p := newPeer(b)
	for i := 0; b.Loop(); i++ {
		dst := filepath.Join(b.TempDir(), "d")
		if _, err := Sync(context.Background(), src, []Dest{dest(p, dst)}, Options{Delete: true, Compress: os.Getenv("RSYNC_BENCH_Z") != ""}); err != nil {
			b.Fatal(err)
		}
	}
}
