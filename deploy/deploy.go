// Package deploy ships what a run needs to gateways that do not share the master's files:
// the module tree of the packages under test (and --rsyncdir trees), once per host and
// working directory, and each test binary, once per host, into its blob cache by content
// hash (a rebuilt binary travels as a delta against the previous one).
//
// Concurrent requests for the same host share one transfer (singleflight); a transfer
// that fails is not remembered, so the next gateway of that host tries again rather than
// inheriting the error, and a success is remembered for the rest of the run.
package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/gateway"
	"github.com/godist/godist/rsync"
	"github.com/godist/godist/xspec"
)

// Options of a Deployer.
type Options struct {
	// ModuleRoot is the module of the packages under test: the tree every host gets.
	ModuleRoot string
	// Trees are further trees to ship (--rsyncdir); Ignore are gitignore-style patterns
	// left out of every tree (--rsyncignore), besides each tree's .gitignore files.
	Trees, Ignore []string
	// Note, if set, is told what was shipped and what was left out.
	Note func(string)
}

// Deployer ships trees and binaries to hosts. It is safe for concurrent use.
type Deployer struct {
	opts  Options
	group singleflight.Group
	mu    sync.Mutex
	trees map[string]string // host key -> base directory, once shipped
	blobs map[string]string // host key + local binary -> its path there
}

// New returns a Deployer.
func New(opts Options) *Deployer {
	if opts.Note == nil {
		opts.Note = func(string) {}
	}
	return &Deployer{opts: opts, trees: map[string]string{}, blobs: map[string]string{}}
}

// IsRemote reports whether a gateway's worker cannot see the master's files: anything but
// popen, and a popen reached through such a gateway.
func IsRemote(g xspec.Gateway, all []xspec.Gateway) bool {
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

func hashString(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// workDir is the per-module working directory on gw's host: in its user cache
// (${XDG_CACHE_HOME:-$HOME/.cache}/godist/work/HASH), or below its working directory when
// it has none.
func (d *Deployer) workDir(gw *gateway.Gateway) string {
	host, _ := os.Hostname()
	rel := path.Join("godist", "work", hashString(host+"\x00"+d.opts.ModuleRoot))
	if gw.Info.CacheDir != "" {
		return path.Join(gw.Info.CacheDir, rel)
	}
	return path.Join(gw.Info.Cwd, ".cache", rel)
}

// Tree ships the trees to gw's host, once per host and working directory, and returns the
// directory there that mirrors the master's "/": a master path P is at Dir(base, P).
func (d *Deployer) Tree(ctx context.Context, gw *gateway.Gateway) (string, error) {
	base := d.workDir(gw)
	key := gw.Info.Hostname + "\x00" + base
	d.mu.Lock()
	done, ok := d.trees[key]
	d.mu.Unlock()
	if ok {
		return done, nil
	}
	_, err, _ := d.group.Do("tree\x00"+key, func() (any, error) {
		d.mu.Lock()
		_, ok := d.trees[key]
		d.mu.Unlock()
		if ok {
			return nil, nil
		}
		if err := d.ship(ctx, gw, base); err != nil {
			return nil, err
		}
		d.mu.Lock()
		d.trees[key] = base
		d.mu.Unlock()
		return nil, nil
	})
	if err != nil {
		return "", err
	}
	return base, nil
}

func (d *Deployer) ship(ctx context.Context, gw *gateway.Gateway, base string) error {
	open := func(ctx context.Context) (*channel.Channel, error) { return gw.RemoteExec(ctx, rsync.ReceiverFunc) }
	for _, tree := range append([]string{d.opts.ModuleRoot}, d.opts.Trees...) {
		abs, err := filepath.Abs(tree)
		if err != nil {
			return err
		}
		excludes, err := rsync.GitIgnorePatterns(abs)
		if err != nil {
			return fmt.Errorf("reading .gitignore files of %s: %w", abs, err)
		}
		excludes = append(append(excludes, "/.git/"), d.opts.Ignore...)
		stats, err := rsync.Sync(ctx, abs, []rsync.Dest{{Name: gw.ID, Open: open, Path: Dir(base, abs)}},
			rsync.Options{Exclude: excludes, Delete: true, Compress: true, Warn: func(p string, err error) {
				// A socket or fifo in the tree (a dev server's) is no test input: left
				// out, and said.
				d.opts.Note(fmt.Sprintf("godist: %s: not shipped: %v", gw.ID, err))
			}})
		if err != nil {
			return fmt.Errorf("shipping %s to %s: %w", abs, gw.ID, err)
		}
		if len(stats) == 1 {
			d.opts.Note(fmt.Sprintf("godist: %s: %s synced (%d files sent, %d bytes)", gw.ID, abs, stats[0].FilesSent, stats[0].BytesSent))
		}
	}
	return nil
}

// Binary puts a test binary into gw's host's blob cache, once per host, and returns its
// path there. name says what it is, for errors ("test binary of example.com/p").
func (d *Deployer) Binary(ctx context.Context, gw *gateway.Gateway, name, bin string) (string, error) {
	key := gw.Info.Hostname + "\x00" + d.workDir(gw) + "\x00" + bin
	d.mu.Lock()
	p, ok := d.blobs[key]
	d.mu.Unlock()
	if ok {
		return p, nil
	}
	v, err, _ := d.group.Do("blob\x00"+key, func() (any, error) {
		d.mu.Lock()
		p, ok := d.blobs[key]
		d.mu.Unlock()
		if ok {
			return p, nil
		}
		open := func(ctx context.Context) (*channel.Channel, error) { return gw.RemoteExec(ctx, rsync.ReceiverFunc) }
		p, _, err := rsync.PutBlob(ctx, open, bin, rsync.BlobOptions{Name: name, Compress: true})
		if err != nil {
			return "", err
		}
		d.mu.Lock()
		d.blobs[key] = p
		d.mu.Unlock()
		return p, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// Dir is where a directory of the master is on a host whose tree is at base.
func Dir(base, local string) string {
	return path.Join(base, filepath.ToSlash(local))
}
