package rsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/channel"
)

// TestMain doubles as a worker process: with RSYNC_TEST_WORKER=1 the test binary serves
// Receiver on its stdin and stdout, as `godist worker` does.
func TestMain(m *testing.M) {
	if os.Getenv("RSYNC_TEST_WORKER") == "1" {
		serveStdio()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type stdio struct{}

func (stdio) Read(b []byte) (int, error)  { return os.Stdin.Read(b) }
func (stdio) Write(b []byte) (int, error) { return os.Stdout.Write(b) }
func (stdio) Close() error                { os.Stdin.Close(); return os.Stdout.Close() }

func serveStdio() {
	ctx := context.Background()
	s, err := channel.NewSession(ctx, stdio{}, false, nil)
	if err != nil {
		os.Exit(1)
	}
	for {
		ch, err := s.Accept(ctx)
		if err != nil {
			return
		}
		go func() {
			if err := Receiver(ctx, ch); err != nil {
				ch.CloseWithError(err)
			} else {
				ch.Close()
			}
		}()
	}
}

// workerProc is a worker process running this test binary.
type workerProc struct {
	cmd  *exec.Cmd
	sess *channel.Session
}

func startWorker(t *testing.T) *workerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RSYNC_TEST_WORKER=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rwc := struct {
		io.Reader
		io.Writer
		io.Closer
	}{out, in, closers{in, out}}
	sess, err := channel.NewSession(context.Background(), rwc, true, nil)
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	w := &workerProc{cmd: cmd, sess: sess}
	t.Cleanup(func() {
		sess.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return w
}

type closers []io.Closer

func (c closers) Close() error {
	for _, x := range c {
		x.Close()
	}
	return nil
}

func (w *workerProc) open(ctx context.Context) (*channel.Channel, error) {
	return w.sess.Open(ctx, ReceiverFunc)
}

// midFile sends the manifest of one file "big" of size bytes, and the first chunk MiB of
// it, then leaves the transfer hanging.
func midFile(t *testing.T, c *conn, dst string, size int64, chunks int) {
	t.Helper()
	ctx := context.Background()
	if err := c.sendRaw(ctx, encodeHello(treeHello(dst))); err != nil {
		t.Fatal(err)
	}
	rs := &rawSender{t: t, c: c}
	rs.manifest([]entry{{path: "big", kind: entFile, mode: 0o644, size: size, mtime: 1e18}})
	if got := rs.needs(1); len(got) != 1 {
		t.Fatalf("needs %v", got)
	}
	chunk := bytesRepeat("partial!", maxLit/8)
	rs.data(func(*wbuf) {}) // an empty DATA message is no harm
	first := true
	for range chunks * (1 << 20) / maxLit {
		msg := newMsg(msgData, maxLit+16)
		if first {
			msg.byte(recFile)
			msg.uvarint(0)
			first = false
		}
		msg.byte(recLit)
		msg.bytes(chunk)
		if err := c.sendRaw(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
}

// A transfer cut off mid-file (the session dies) leaves the old file as it was, no
// partial new one, and no temp file.
func TestInterruptedTransfer(t *testing.T) {
	for _, old := range []bool{false, true} {
		p := newPeer(t)
		dst := t.TempDir()
		oldContent := []byte("the old version")
		if old {
			writeFile(t, filepath.Join(dst, "big"), oldContent, 0o644)
		}
		ch, err := p.open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		midFile(t, &conn{ch: ch}, dst, 64<<20, 3)
		// Wait for the temp file to be written to, then kill the session.
		waitFor(t, func() bool { return len(temps(dst)) == 1 })
		p.client.Close()
		errs := p.receiverErrs(1)
		if errs[0] == nil {
			t.Fatal("receiver reported success")
		}
		b, err := os.ReadFile(filepath.Join(dst, "big"))
		switch {
		case old && string(b) != string(oldContent):
			t.Errorf("old file changed: %q... %v", b[:min(len(b), 20)], err)
		case !old && err == nil:
			t.Errorf("a partial file is in place (%d bytes)", len(b))
		}
		noTemps(t, dst)
	}
}

func temps(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out")
}

// A receiver process killed mid-file leaves no partial file in place; its temp file is
// removed by the next sync of that directory, which completes.
func TestKilledReceiver(t *testing.T) {
	dst := t.TempDir()
	writeFile(t, filepath.Join(dst, "big"), []byte("old"), 0o644)
	w := startWorker(t)
	ch, err := w.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	midFile(t, &conn{ch: ch}, dst, 64<<20, 3)
	waitFor(t, func() bool { return len(temps(dst)) == 1 })
	w.cmd.Process.Signal(syscall.SIGKILL)
	w.cmd.Wait()
	if b, _ := os.ReadFile(filepath.Join(dst, "big")); string(b) != "old" {
		t.Fatalf("big is %d bytes, want the old version", len(b))
	}
	if len(temps(dst)) != 1 {
		t.Fatalf("temps %v, want the killed receiver's", temps(dst))
	}
	// The next sync, by another process, cleans up and completes.
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big"), bytesRepeat("new", 100000), 0o644)
	w2 := startWorker(t)
	if _, err := Sync(context.Background(), src, []Dest{{Open: w2.open, Path: dst}}, Options{Delete: true}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst, nil)
	noTemps(t, dst)
}

// A temp file of a sync that is still running is left alone by another sync of the
// same directory.
func TestLiveTempFileKept(t *testing.T) {
	dst := t.TempDir()
	live := tempName(newToken(), "x") // this process, token not registered: stale
	os.WriteFile(filepath.Join(dst, live), nil, 0o600)
	tok := newToken()
	liveTokens.Store(tok, struct{}{})
	defer liveTokens.Delete(tok)
	running := tempName(tok, "y")
	os.WriteFile(filepath.Join(dst, running), nil, 0o600)
	other := tempPrefix + "1.abc.def.z" // pid 1 is alive
	os.WriteFile(filepath.Join(dst, other), nil, 0o600)
	p := newPeer(t)
	if _, err := Sync(context.Background(), t.TempDir(), []Dest{dest(p, dst)}, Options{}); err != nil {
		t.Fatal(err)
	}
	got := temps(dst)
	if len(got) != 2 || !slicesContains(got, running) || !slicesContains(got, other) {
		t.Errorf("temps after sync: %v; want %s and %s kept, %s removed", got, running, other, live)
	}
}

func slicesContains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// A large file syncs with memory bounded by the chunk sizes, not the file size: whole,
// then as a delta after edits. The sender, the receiver and both channel ends all run in
// this process; HeapInuse is sampled throughout.
func TestLargeFileBoundedMemory(t *testing.T) {
	size := int64(200 << 20)
	if testing.Short() {
		size = 48 << 20
	}
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "big")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse (zeros) with random stretches every 8 MiB.
	rng := rand.New(rand.NewPCG(3, 4))
	f.Truncate(size)
	junk := make([]byte, 1<<20)
	for off := int64(0); off < size; off += 8 << 20 {
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		f.WriteAt(junk, off)
	}
	f.Close()
	p := newPeer(t)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	runtime.GC()
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	ctx := context.Background()
	if _, err := Sync(ctx, src, []Dest{dest(p, dst)}, Options{Compress: true}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, path, filepath.Join(dst, "big"))
	cold := peak.Load()
	// Edit three places and resync: a delta.
	f, _ = os.OpenFile(path, os.O_WRONLY, 0)
	for _, off := range []int64{100, size / 2, size - 5000} {
		f.WriteAt([]byte("an edit"), off)
	}
	f.Close()
	os.Chtimes(path, time.Time{}, time.Now().Add(time.Hour))
	st, err := Sync(ctx, src, []Dest{dest(p, dst)}, Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-done
	sameFile(t, path, filepath.Join(dst, "big"))
	t.Logf("%d MiB: peak heap in use %.1f MiB (cold), %.1f MiB (both); delta: %d literal bytes, %d bytes sent",
		size>>20, float64(cold)/(1<<20), float64(peak.Load())/(1<<20), st[0].Literal, st[0].BytesSent)
	if peak.Load() > 64<<20 {
		t.Errorf("peak heap in use %d MiB, want under 64 MiB", peak.Load()>>20)
	}
	if st[0].Literal > 4*int64(blockSizeFor(size)) { // an edit may straddle two blocks
		t.Errorf("delta of 3 small edits sent %d literal bytes", st[0].Literal)
	}
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	ha, hb := hashFile(t, a), hashFile(t, b)
	if !bytes.Equal(ha, hb) {
		t.Fatalf("%s and %s differ", a, b)
	}
}

func hashFile(t *testing.T, p string) []byte {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return h.Sum(nil)
}
