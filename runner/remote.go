package runner

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/gateway"
	"github.com/godist/godist/rsync"
	"github.com/godist/godist/xspec"
)

// Remote runs. A gateway that does not share the master's files (anything but popen, and
// what goes via one) gets the module tree of the packages under test, and each test binary
// it runs, before its tests: the tree into a per-module working directory under its
// user cache, mirrored at the master's absolute paths (so `../shared` and
// --rsyncdir trees keep their relative places), and the binaries into its blob cache by
// content hash, a rebuilt one travelling as a delta against the previous one. Each host
// gets each file once, however many workers it runs.

// remoteState is what one host has received.
type remoteState struct {
	once  sync.Once
	base  string // absolute path on the host that mirrors the master's "/"
	err   error
	mu    sync.Mutex
	blobs map[string]*blobOnce // by local binary path
}

type blobOnce struct {
	once sync.Once
	path string
	err  error
}

// isRemote reports whether a gateway's worker cannot see the master's files.
func isRemote(g xspec.Gateway, all []xspec.Gateway) bool {
	seen := map[string]bool{}
	for s := g.Spec; s != nil; {
		if s.Type != xspec.TypePopen {
			return true
		}
		if s.Via == "" || seen[s.Via] {
			return false
		}
		seen[s.Via] = true
		var next *xspec.Spec
		for _, o := range all {
			if o.ID == s.Via {
				next = o.Spec
			}
		}
		s = next
	}
	return false
}

// remoteWorkDir is the per-module working directory on gw's host: in its user cache
// (${XDG_CACHE_HOME:-$HOME/.cache}/godist/work/HASH), or below its working directory when
// it has none.
func (r *runner) remoteWorkDir(gw *gateway.Gateway) string {
	host, _ := os.Hostname()
	rel := path.Join("godist", "work", hashString(host+"\x00"+r.moduleRoot))
	if gw.Info.CacheDir != "" {
		return path.Join(gw.Info.CacheDir, rel)
	}
	return path.Join(gw.Info.Cwd, ".cache", rel)
}

// prepareRemote ships the tree to gw's host, once per host and working directory.
func (r *runner) prepareRemote(ctx context.Context, gw *gateway.Gateway) (*remoteState, error) {
	key := gw.Info.Hostname + "\x00" + r.remoteWorkDir(gw)
	r.remoteMu.Lock()
	st := r.remotes[key]
	if st == nil {
		st = &remoteState{blobs: map[string]*blobOnce{}}
		r.remotes[key] = st
	}
	r.remoteMu.Unlock()
	st.once.Do(func() {
		st.base = r.remoteWorkDir(gw)
		open := func(ctx context.Context) (*channel.Channel, error) { return gw.RemoteExec(ctx, rsync.ReceiverFunc) }
		trees := append([]string{r.moduleRoot}, r.cfg.RsyncDirs...)
		for _, tree := range trees {
			abs, err := filepath.Abs(tree)
			if err != nil {
				st.err = err
				return
			}
			excludes, err := rsync.GitIgnorePatterns(abs)
			if err != nil {
				st.err = fmt.Errorf("reading .gitignore files of %s: %w", abs, err)
				return
			}
			excludes = append(append(excludes, "/.git/"), r.cfg.RsyncIgnore...)
			stats, err := rsync.Sync(ctx, abs, []rsync.Dest{{Name: gw.ID, Open: open, Path: path.Join(st.base, filepath.ToSlash(abs))}},
				rsync.Options{Exclude: excludes, Delete: true, Compress: true, Warn: func(p string, err error) {
					// A socket or fifo in the tree (a dev server's) is no test input: left
					// out, and said.
					r.note(fmt.Sprintf("godist: %s: not shipped: %v", gw.ID, err))
				}})
			if err != nil {
				st.err = fmt.Errorf("shipping %s to %s: %w", abs, gw.ID, err)
				return
			}
			if len(stats) == 1 {
				r.note(fmt.Sprintf("godist: %s: %s synced (%d files sent, %d bytes)", gw.ID, abs, stats[0].FilesSent, stats[0].BytesSent))
			}
		}
	})
	return st, st.err
}

// remoteBinary puts a test binary into the host's blob cache (once per host) and returns
// its path there.
func (r *runner) remoteBinary(ctx context.Context, gw *gateway.Gateway, st *remoteState, pkg, bin string) (string, error) {
	st.mu.Lock()
	b := st.blobs[bin]
	if b == nil {
		b = &blobOnce{}
		st.blobs[bin] = b
	}
	st.mu.Unlock()
	b.once.Do(func() {
		open := func(ctx context.Context) (*channel.Channel, error) { return gw.RemoteExec(ctx, rsync.ReceiverFunc) }
		b.path, _, b.err = rsync.PutBlob(ctx, open, bin, rsync.BlobOptions{Name: "test binary of " + pkg, Compress: true})
	})
	return b.path, b.err
}

// remoteDir is where a package directory of the master is on a prepared host.
func (st *remoteState) remoteDir(local string) string {
	return path.Join(st.base, filepath.ToSlash(local))
}
