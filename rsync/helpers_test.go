package rsync

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godist/godist/channel"
)

// peer is a worker in memory: a channel session over OS pipes whose far end runs
// Receiver on every channel opened to it.
type peer struct {
	t      testing.TB
	client *channel.Session
	server *channel.Session

	mu   sync.Mutex
	errs []error // what each Receiver returned, in order of return
	wg   sync.WaitGroup
}

type pipeRWC struct{ r, w *os.File }

func (p pipeRWC) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p pipeRWC) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p pipeRWC) Close() error {
	p.w.Close()
	return p.r.Close()
}

func newPeer(t testing.TB) *peer {
	t.Helper()
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a, b := pipeRWC{r1, w2}, pipeRWC{r2, w1}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := &peer{t: t}
	var serr error
	done := make(chan struct{})
	go func() {
		p.server, serr = channel.NewSession(ctx, b, false, nil)
		close(done)
	}()
	p.client, err = channel.NewSession(ctx, a, true, nil)
	<-done
	if err != nil || serr != nil {
		t.Fatalf("sessions: %v %v", err, serr)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			ch, err := p.server.Accept(context.Background())
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				err := Receiver(context.Background(), ch)
				p.mu.Lock()
				p.errs = append(p.errs, err)
				p.mu.Unlock()
				if err != nil {
					ch.CloseWithError(err)
				} else {
					ch.Close()
				}
			}()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *peer) close() {
	p.client.Close()
	p.server.Close()
	p.wg.Wait()
}

func (p *peer) open(ctx context.Context) (*channel.Channel, error) {
	return p.client.Open(ctx, ReceiverFunc)
}

// receiverErrs waits for n receivers to have returned and gives their errors.
func (p *peer) receiverErrs(n int) []error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		if len(p.errs) >= n {
			errs := append([]error(nil), p.errs...)
			p.mu.Unlock()
			return errs
		}
		p.mu.Unlock()
	}
	p.t.Fatalf("receivers did not return")
	return nil
}

func dest(p *peer, path string) Dest { return Dest{Name: path, Open: p.open, Path: path} }

// snapshot describes a tree: path → kind, mode, content or target, mtime of files.
func snapshot(t testing.TB, root string, skip func(rel string) bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		rel := filepath.ToSlash(path[len(root)+1:])
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			out[rel] = "dir " + fi.Mode().String()
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			out[rel] = "link " + target
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out[rel] = "file " + fi.Mode().String() + " " + fi.ModTime().UTC().Format(time.RFC3339Nano) + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails t unless the trees at a and b are equal, entry by entry.
// The sync marker at the top of b is not part of the tree.
func sameTree(t testing.TB, a, b string, skip func(string) bool) {
	t.Helper()
	skipB := func(rel string) bool { return rel == markerName || skip != nil && skip(rel) }
	sa, sb := snapshot(t, a, skip), snapshot(t, b, skipB)
	var diffs []string
	for k, va := range sa {
		vb, ok := sb[k]
		switch {
		case !ok:
			diffs = append(diffs, "missing in copy: "+k)
		case va != vb:
			diffs = append(diffs, "differs: "+k+": "+abbrev(va)+" vs "+abbrev(vb))
		}
	}
	for k := range sb {
		if _, ok := sa[k]; !ok {
			diffs = append(diffs, "extra in copy: "+k)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		if len(diffs) > 20 {
			diffs = append(diffs[:20], "...")
		}
		t.Fatalf("trees %s and %s differ:\n%s", a, b, strings.Join(diffs, "\n"))
	}
}

func abbrev(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// noTemps fails t if any temp file of this package is left below root.
func noTemps(t testing.TB, root string) {
	t.Helper()
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			t.Errorf("temp file left: %s", path)
		}
		return nil
	})
}

func bytesRepeat(s string, n int) []byte { return bytes.Repeat([]byte(s), n) }

var _ = io.EOF
