package rsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestPutBlob(t *testing.T) {
	p := newPeer(t)
	cache := filepath.Join(t.TempDir(), "blobs")
	local := filepath.Join(t.TempDir(), "pkg.test")
	rng := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(rng.Uint32() % 16) // compressible, not trivially
	}
	writeFile(t, local, data, 0o755)
	ctx := context.Background()
	opts := BlobOptions{CacheDir: cache, Name: "example.com/pkg", Compress: true}
	path, st, err := PutBlob(ctx, p.open, local, opts)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := filepath.Join(cache, hex.EncodeToString(sum[:])); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	sameFile(t, local, path)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", fi.Mode())
	}
	if st.FilesSent != 1 || st.BytesSent > int64(len(data)) {
		t.Errorf("first put: %+v", st)
	}
	// Again: nothing sent.
	path2, st, err := PutBlob(ctx, p.open, local, opts)
	if err != nil || path2 != path || st.FilesSent != 0 || st.BytesSent > 200 {
		t.Errorf("second put: %s %+v %v", path2, st, err)
	}
	// Rebuilt: a few changes; it goes as a delta against the last blob of its name.
	copy(data[1<<20:], "a one-line change moved this")
	data = append(data[:2<<20], append([]byte("inserted"), data[2<<20:]...)...)
	writeFile(t, local, data, 0o755)
	path3, st, err := PutBlob(ctx, p.open, local, opts)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, local, path3)
	if st.Matched < int64(len(data))-100000 || st.BytesSent > 50000 {
		t.Errorf("rebuilt blob did not go as a delta: %+v", st)
	}
	// An explicit basis works without a name.
	copy(data[100:], "again")
	writeFile(t, local, data, 0o755)
	_, st, err = PutBlob(ctx, p.open, local, BlobOptions{CacheDir: cache, Basis: []string{filepath.Base(path3)}})
	if err != nil || st.Matched == 0 {
		t.Errorf("explicit basis: %+v %v", st, err)
	}
	noTemps(t, cache)
}

func TestPutBlobDefaultCache(t *testing.T) {
	p := newPeer(t)
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", home)
	local := filepath.Join(t.TempDir(), "f")
	writeFile(t, local, []byte("blob"), 0o644)
	path, _, err := PutBlob(context.Background(), p.open, local, BlobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != filepath.Join(home, ".cache", "godist", "blobs") {
		t.Errorf("blob at %s", path)
	}
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "xdg"))
	path, _, err = PutBlob(context.Background(), p.open, local, BlobOptions{})
	if err != nil || filepath.Dir(path) != filepath.Join(home, "xdg", "godist", "blobs") {
		t.Errorf("blob at %s: %v", path, err)
	}
}

// A hostile blob sender cannot make the receiver store content under another hash.
func TestPutBlobWrongContent(t *testing.T) {
	p := newPeer(t)
	cache := t.TempDir()
	good := sha256.Sum256([]byte("good"))
	rs := newRawSender(t, p, &hello{version: protocolVersion, mode: modeBlob, codecs: codecsAll, cacheDir: cache,
		hash: good[:], size: 4, perm: 0o644})
	rs.needs(1)
	rs.data(fileRecs(0, []byte("evil")))
	if errs := p.receiverErrs(1); errs[0] == nil {
		t.Fatal("receiver stored it")
	}
	if ents, _ := os.ReadDir(cache); len(ents) != 0 {
		t.Errorf("cache holds %v", ents)
	}
}
