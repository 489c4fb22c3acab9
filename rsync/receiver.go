package rsync

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/internal/child"
)

// Receiver is the receiving end of Sync and PutBlob: a worker.Func, registered in
// workers as ReceiverFunc. It serves one sync on ch and returns.
//
// Whatever the sender says, it writes only below the destination directory (through an
// os.Root), refuses paths that are absolute, unclean, have ".." components or a NUL, and
// never resolves a path through a symlink: every entry's parent must be a directory of
// the manifest, which the receiver has made sure is a real directory. It refuses a
// destination that is /, $HOME, the godist cache root or above one of them, or that
// climbs out of its working directory (checkDest), before writing anything; it deletes
// only what the destination's sync marker names, unless the sender asks it to delete
// everything the source lacks (see the package doc, "Nothing destroyed"). Each file is
// written to a temp file in its directory and renamed into place once its SHA-256 checks
// out; temp files are removed on error, and those left by a killed receiver are removed
// by the next sync of their directory.
func Receiver(ctx context.Context, ch *channel.Channel) error {
	c := &conn{ch: ch}
	defer c.close()
	typ, body, err := c.recv(ctx)
	if err != nil {
		if isEOF(err) {
			return nil
		}
		return err
	}
	if typ != msgHello {
		return protoErrf("first message has type %#x, want a hello", typ)
	}
	h, err := decodeHello(body)
	if err != nil {
		return err
	}
	if h.version != protocolVersion {
		return fmt.Errorf("rsync: sender speaks protocol version %d, this receiver %d", h.version, protocolVersion)
	}
	if h.mode == modeBlob {
		return receiveBlob(ctx, c, h)
	}
	return receiveTree(ctx, c, h)
}

// syncToken tells this process's temp files of running syncs from stale ones.
var liveTokens sync.Map // token string → struct{}

func newToken() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tempName is the name of a temp file for base: its prefix is reserved (checkPath refuses
// it), and it carries the pid and token of the sync that writes it.
func tempName(token, base string) string {
	if len(base) > 180 {
		base = base[:180]
	}
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s%d.%s.%s.%s", tempPrefix, os.Getpid(), token, hex.EncodeToString(b[:]), base)
}

// staleTemp reports whether name is a temp file that no running sync will finish: its
// process is gone, or it is this process and its sync is over.
func staleTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		return false
	}
	f := strings.SplitN(rest, ".", 3)
	if len(f) < 3 {
		return true
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return true
	}
	if pid == os.Getpid() {
		_, live := liveTokens.Load(f[1])
		return !live
	}
	return child.Gone(pid)
}

// placeID names a directory on this machine: the machine (its boot id, unique per boot
// of a kernel, or failing that an id kept in the godist cache) with the directory's
// device and inode. "" when neither id can be had.
func placeID(root *os.Root) string {
	machine := ""
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil && len(b) > 0 && len(b) < 100 {
		machine = "boot=" + strings.TrimSpace(string(b))
	} else if id := cachedMachineID(); id != "" {
		machine = "cache=" + id
	} else {
		return ""
	}
	fi, err := root.Stat(".")
	if err != nil {
		return ""
	}
	dev, ino, ok := devIno(fi)
	if !ok {
		return ""
	}
	id := fmt.Sprintf("%s dev=%d ino=%d", machine, dev, ino)
	if len(id) > maxIdentity {
		return ""
	}
	return id
}

// cachedMachineID returns a random id kept in ${XDG_CACHE_HOME:-$HOME/.cache}/godist/,
// made by the first receiver that needs it (a chroot has no /proc for a boot id).
func cachedMachineID() string {
	blobs, err := DefaultBlobDir()
	if err != nil {
		return ""
	}
	dir := filepath.Dir(blobs)
	p := filepath.Join(dir, "machine-id")
	read := func() string {
		b, err := os.ReadFile(p)
		if s := strings.TrimSpace(string(b)); err == nil && len(s) == 32 {
			return s
		}
		return ""
	}
	if id := read(); id != "" {
		return id
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ""
	}
	var b [16]byte
	rand.Read(b[:])
	tmp := filepath.Join(dir, tempName(newToken(), "machine-id"))
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(b[:])+"\n"), 0o644); err != nil {
		return ""
	}
	os.Link(tmp, p) // the first one wins; the others read its id
	os.Remove(tmp)
	return read()
}

// openDest makes dir (relative: to the working directory) and opens it as a root.
func openDest(dir string) (*os.Root, error) {
	if dir == "" {
		return nil, errors.New("rsync: empty destination")
	}
	if strings.IndexByte(dir, 0) >= 0 {
		return nil, errors.New("rsync: NUL in destination")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.OpenRoot(dir)
}

// openTreeDest checks the destination of a tree sync (checkDest), makes it, opens it,
// and reads its sync marker: the paths an earlier sync wrote, and whether there is one.
// A refusal is a *RefusedError, and nothing has been written then.
func openTreeDest(dest string) (*os.Root, map[string]struct{}, bool, error) {
	real, err := checkDest(dest)
	if err != nil {
		return nil, nil, false, err
	}
	if err := os.MkdirAll(real, 0o755); err != nil {
		return nil, nil, false, err
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, nil, false, err
	}
	cwd, _ := os.Getwd()
	if err := checkOpenedDest(dest, root, cwd); err != nil {
		root.Close()
		return nil, nil, false, err
	}
	recorded, owned, err := readMarker(root)
	if errors.Is(err, errNotMarker) {
		err = &RefusedError{Dest: dest, Reason: fmt.Sprintf("%s there is not the sync marker of godist rsync (%v); move it away or sync elsewhere", markerName, err)}
	}
	if err != nil {
		root.Close()
		return nil, nil, false, err
	}
	return root, recorded, owned, nil
}

// dirState is a directory of the manifest that the walk is in.
type dirState struct {
	path     string              // "" for the destination itself
	root     *os.Root            // the directory, opened
	children map[string]struct{} // names the manifest has in it
	fresh    bool                // made by this sync: it had nothing in it
}

// pending is a file the receiver asked for.
type pending struct {
	path  string
	size  int64
	mode  uint32
	mtime int64
	basis bool // ask with the signature of the old file
	// dirInWay: a directory is where the file goes (removed when the file is renamed in)
	dirInWay bool
	sig      *signature // what was sent (nil: whole file); guarded by treeReceiver.mu
	redone   bool
}

type treeReceiver struct {
	c      *conn
	root   *os.Root
	filter *Filter
	delete bool
	fsync  bool
	token  string

	// ownership: what the destination's sync marker names (read-only once the sync
	// runs), whether it had one, and the manifest's paths for the next marker
	recorded map[string]struct{}
	owned    bool
	paths    []string
	inOld    int  // paths that recorded names too
	marked   bool // this sync wrote a marker already

	// manifest walk
	prev    string
	count   uint64
	stack   []*dirState
	dirMode []dirFix // directories whose mode is set at the end

	mu      sync.Mutex
	pending map[uint64]*pending
	queue   *needQueue

	manifest       chan manifestMsg // from run to walkManifest
	manifestClosed bool
	manifestDone   bool // guarded by mu
	recvCtx        context.Context
	wake           context.CancelFunc // ends run's wait for data when nothing is needed
	nothingYet     bool

	// data
	outstanding int // guarded by mu
	cur         *fileWriter
	dirs        dirCache
	bufs        writeBufs
	job         *writeJob // the small file being collected for the pool
	pool        *writePool

	res     result
	deleted atomic.Uint64
	written atomic.Uint64
	kept    atomic.Uint64
	ctx     context.Context
}

type dirFix struct {
	path string
	mode uint32
}

func receiveTree(ctx context.Context, c *conn, h *hello) error {
	filter, err := NewFilter(h.exclude)
	if err != nil {
		return err
	}
	root, recorded, owned, err := openTreeDest(h.dest)
	var refused *RefusedError
	if errors.As(err, &refused) {
		// Refused before anything is written: the sender learns why from the reply.
		reason := refused.Reason
		if len(reason) > maxPathLen {
			reason = reason[:maxPathLen]
		}
		return c.sendRaw(ctx, encodeReply(&reply{version: protocolVersion, codecs: codecsAll, state: treeRefused, path: reason}))
	}
	if err != nil {
		return fmt.Errorf("rsync: destination %s: %w", h.dest, err)
	}
	defer root.Close()
	if err := c.sendRaw(ctx, encodeReply(&reply{version: protocolVersion, codecs: codecsAll, identity: placeID(root)})); err != nil {
		return err
	}
	r := &treeReceiver{c: c, root: root, filter: filter, delete: h.flags&helloDelete != 0,
		fsync: h.flags&helloFsync != 0, token: newToken(), pending: map[uint64]*pending{}, nothingYet: true}
	liveTokens.Store(r.token, struct{}{})
	defer liveTokens.Delete(r.token)
	r.dirs.root = root
	defer r.dirs.closeAll()
	r.stack = []*dirState{{path: "", root: root, children: map[string]struct{}{}}}
	r.recorded, r.owned = recorded, owned
	r.queue = newNeedQueue()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.ctx = ctx
	// Four goroutines: this one reads the channel and writes the files that come in; the
	// manifest goroutine compares the manifest with the destination (creating
	// directories, deleting what has gone) and queues the files needed; the needs
	// goroutine sends those with the signatures of their old copies; the pool writes
	// small files. The sender sends data as soon as it learns of a need, so the files
	// flow while the manifest is still being worked through.
	sigDone := make(chan error, 1)
	go func() { sigDone <- r.sendNeeds(ctx) }()
	mq := make(chan manifestMsg, 4)
	r.manifest = mq
	manDone := make(chan error, 1)
	r.recvCtx, r.wake = context.WithCancel(ctx)
	defer r.wake()
	go func() {
		err := r.walkManifest(ctx, mq)
		if err != nil {
			cancel()
		}
		manDone <- err
	}()
	r.pool = newWritePool(r, poolWorkers())
	err = r.run(ctx)
	if err != nil {
		cancel()
	}
	if r.cur != nil {
		r.cur.abort()
		r.cur = nil
	}
	if r.job != nil {
		r.pool.putBuf(r.job.data)
		r.job = nil
	}
	if !r.manifestClosed {
		close(mq)
	}
	if merr := <-manDone; merr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		err = merr
	}
	if perr := r.pool.finish(); err == nil {
		err = perr
	}
	r.queue.close()
	if err != nil {
		cancel()
		<-sigDone
		return err
	}
	if err := <-sigDone; err != nil {
		return err
	}
	r.mu.Lock()
	walked := r.manifestDone
	r.mu.Unlock()
	if !walked {
		return nil // the sender stood down before the manifest: nothing was touched
	}
	// The marker names what this sync wrote: the manifest (see markIntent).
	if r.inOld != len(r.recorded) || !r.owned && !r.marked {
		if err := writeMarker(r.root, r.token, r.paths, r.fsync); err != nil {
			return err
		}
	}
	// Directory modes last, deepest first: a read-only directory is written into first.
	for i := len(r.dirMode) - 1; i >= 0; i-- {
		f := r.dirMode[i]
		if err := r.root.Chmod(f.path, fileMode(f.mode)); err != nil {
			return err
		}
	}
	r.res.deleted, r.res.written, r.res.kept = r.deleted.Load(), r.written.Load(), r.kept.Load()
	if r.owned {
		r.res.flags |= resultOwned
	}
	return c.sendRaw(ctx, encodeResult(&r.res))
}

// manifestMsg is a MANIFEST body, or the MANIFEST_END count, for walkManifest.
type manifestMsg struct {
	body  []byte
	end   bool
	count uint64
}

// run reads the channel: manifest messages go to the manifest goroutine, data is written.
// It returns once the manifest is done and every file asked for is written.
func (r *treeReceiver) run(ctx context.Context) error {
	endSeen := false
	for {
		if endSeen && r.finished() {
			break
		}
		typ, body, err := r.c.recv(r.recvCtx)
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() == nil {
				continue // woken: the manifest goroutine is done and nothing is needed
			}
			if isEOF(err) {
				if !endSeen && r.nothingYet {
					return nil // the sender stood down: another destination is this one
				}
				return errors.New("rsync: sender closed the channel before the end of the sync")
			}
			return err
		}
		r.nothingYet = false
		switch {
		case typ == msgManifest && !endSeen:
			b := append([]byte(nil), body...) // body is only valid until the next recv
			select {
			case r.manifest <- manifestMsg{body: b}:
			case <-ctx.Done():
				return ctx.Err()
			}
		case typ == msgManifestEnd && !endSeen:
			rb := &rbuf{b: body}
			n := rb.uvarint()
			if rb.err != nil || len(rb.b) != 0 {
				return protoErrf("bad manifest end")
			}
			select {
			case r.manifest <- manifestMsg{end: true, count: n}:
			case <-ctx.Done():
				return ctx.Err()
			}
			close(r.manifest)
			r.manifestClosed = true
			endSeen = true
		case typ == msgData && endSeen:
			if err := decodeRecords(body, func(rec *record) error { return r.record(rec) }); err != nil {
				return err
			}
		default:
			return protoErrf("unexpected message type %#x (manifest end seen: %v)", typ, endSeen)
		}
	}
	if r.cur != nil || r.job != nil {
		return protoErrf("last file not finished")
	}
	return nil
}

// closeStack closes the directories the manifest walk has open.
func (r *treeReceiver) closeStack() {
	for _, d := range r.stack {
		if d.path != "" {
			d.root.Close()
		}
	}
	r.stack = nil
}

// finished reports whether the manifest is done and every file it needed has come.
func (r *treeReceiver) finished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifestDone && r.outstanding == 0
}

// walkManifest works through the manifest messages that run hands over. If the queue
// closes before the end of the manifest (the sender stood down, or failed), it returns
// without touching anything more: without the whole manifest, nothing may be deleted.
func (r *treeReceiver) walkManifest(ctx context.Context, mq <-chan manifestMsg) error {
	var end *manifestMsg
	for m := range mq {
		if m.end {
			end = &m
			break
		}
		rb := &rbuf{b: m.body}
		for !rb.empty() {
			e := decodeEntry(rb, r.prev)
			if rb.err != nil {
				break
			}
			if err := r.entry(&e); err != nil {
				return err
			}
		}
		if rb.err == nil {
			rb.err = ctx.Err()
		}
		if rb.err != nil {
			r.closeStack()
			return rb.err
		}
	}
	if end == nil {
		r.closeStack()
		return nil
	}
	if end.count != r.count {
		r.closeStack()
		return protoErrf("manifest end: sender counts %d entries, receiver got %d", end.count, r.count)
	}
	if err := r.markIntent(); err != nil {
		r.closeStack()
		return err
	}
	for len(r.stack) > 0 {
		if err := r.popDir(); err != nil {
			r.closeStack()
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.manifestDone = true
	if r.outstanding == 0 {
		r.wake()
	}
	return nil
}

// entry handles one manifest entry.
func (r *treeReceiver) entry(e *entry) error {
	if err := checkPath(e.path); err != nil {
		return err
	}
	if r.count > 0 && comparePaths(r.prev, e.path) >= 0 {
		return &PathError{Path: e.path, Reason: fmt.Sprintf("out of order (after %q)", r.prev)}
	}
	if r.count >= maxEntries {
		return protoErrf("more than %d entries", maxEntries)
	}
	index := r.count
	r.prev = e.path
	r.count++
	r.paths = append(r.paths, e.path)
	if _, ok := r.recorded[e.path]; ok {
		r.inOld++
	}
	parent, base := parentOf(e.path), baseOf(e.path)
	for {
		top := r.stack[len(r.stack)-1]
		if top.path == parent {
			break
		}
		if isUnder(parent, top.path) {
			// The parent is below the directory we are in but is not a directory of the
			// manifest: it may be a file or a symlink (made by this very sync, even).
			return &PathError{Path: e.path, Reason: "parent is not a directory of the manifest"}
		}
		// Done with top: the manifest's order brings nothing more below it.
		if err := r.popDir(); err != nil {
			return err
		}
	}
	top := r.stack[len(r.stack)-1]
	top.children[base] = struct{}{}
	// In a directory this sync made, everything is new: no need to look.
	var fi fs.FileInfo
	var err error
	exists := false
	if !top.fresh {
		fi, err = top.root.Lstat(base)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		exists = err == nil
	}
	switch e.kind {
	case entDir:
		if exists && !fi.IsDir() {
			if err := top.root.Remove(base); err != nil {
				return err
			}
			r.deleted.Add(1)
			exists = false
		}
		fresh := false
		if !exists {
			err := top.root.Mkdir(base, 0o700)
			fresh = err == nil
			if errors.Is(err, fs.ErrExist) {
				// Made meanwhile (by another sync of this directory): use it if it is one.
				if fi, err = top.root.Lstat(base); err == nil && !fi.IsDir() {
					err = fmt.Errorf("rsync: %s: not a directory", e.path)
				}
			}
			if err != nil {
				return err
			}
			r.dirMode = append(r.dirMode, dirFix{e.path, e.mode})
		} else if cur := unixMode(fi.Mode()); cur != e.mode || cur&0o700 != 0o700 {
			// Writable for the sync (a read-only directory of the last one, say); its
			// mode is set at the end.
			if cur&0o700 != 0o700 {
				if err := top.root.Chmod(base, fileMode(cur|0o700)); err != nil {
					return err
				}
			}
			r.dirMode = append(r.dirMode, dirFix{e.path, e.mode})
		}
		sub, err := top.root.OpenRoot(base)
		if err != nil {
			return err
		}
		r.stack = append(r.stack, &dirState{path: e.path, root: sub, fresh: fresh, children: map[string]struct{}{}})
		if len(r.stack) > maxDepth+1 {
			return &PathError{Path: e.path, Reason: "too deep"}
		}
	case entLink:
		if err := checkLinkTarget(e.target); err != nil {
			return &PathError{Path: e.path, Reason: err.(*PathError).Reason}
		}
		if exists && fi.Mode()&fs.ModeSymlink != 0 {
			if t, err := top.root.Readlink(base); err == nil && t == e.target {
				return nil
			}
		}
		tmp := tempName(r.token, base)
		if err := top.root.Symlink(e.target, tmp); err != nil {
			return err
		}
		if err := r.replace(top.root, tmp, base, e.path, exists && fi.IsDir()); err != nil {
			top.root.Remove(tmp)
			return err
		}
	case entFile:
		if exists && fi.Mode().IsRegular() && fi.Size() == e.size && sameMtime(fi.ModTime(), e.mtime) {
			if unixMode(fi.Mode()) != e.mode {
				if err := top.root.Chmod(base, fileMode(e.mode)); err != nil {
					return err
				}
			}
			return nil
		}
		p := &pending{path: e.path, size: e.size, mode: e.mode, mtime: e.mtime,
			basis:    exists && fi.Mode().IsRegular() && fi.Size() > 0,
			dirInWay: exists && fi.IsDir()}
		r.mu.Lock()
		r.pending[index] = p
		r.outstanding++
		r.mu.Unlock()
		r.queue.push(index)
	default:
		return protoErrf("entry %s: kind %#x", e.path, e.kind)
	}
	return nil
}

// markIntent writes, once the whole manifest is known, a marker naming both what the old
// marker named and the manifest, when the manifest has entries the old marker does not
// name: a sync cut off from here on leaves none of what it wrote unnamed. Files written
// while the manifest was still coming in are unnamed until then. Once the sync is done,
// the marker is made to name the manifest alone (receiveTree). A sync that changes
// nothing writes no marker.
func (r *treeReceiver) markIntent() error {
	if r.inOld == len(r.paths) {
		return nil
	}
	all := append([]string(nil), r.paths...)
	if r.inOld < len(r.recorded) {
		now := make(map[string]struct{}, len(r.paths))
		for _, p := range r.paths {
			now[p] = struct{}{}
		}
		for p := range r.recorded {
			if _, ok := now[p]; !ok {
				all = append(all, p)
			}
		}
	}
	if err := writeMarker(r.root, r.token, all, r.fsync); err != nil {
		return err
	}
	r.marked = true
	return nil
}

// mayDelete reports whether the entry rel of the destination, which the source does not
// have, may be deleted: never an excluded one; with Delete any other; else only one that
// the destination's marker names (an earlier sync wrote it).
func (r *treeReceiver) mayDelete(rel string, isDir bool) bool {
	if r.filter.Match(rel, isDir) {
		return false
	}
	if r.delete {
		return true
	}
	_, ok := r.recorded[rel]
	return ok
}

// isUnder reports whether p is below dir ("" is the root, above everything).
func isUnder(p, dir string) bool {
	return dir == "" || strings.HasPrefix(p, dir+"/")
}

// sameMtime compares a file's mtime with the manifest's, allowing for file systems
// that keep whole seconds only.
func sameMtime(t time.Time, ns int64) bool {
	if t.UnixNano() == ns {
		return true
	}
	return t.Nanosecond() == 0 && t.Unix() == time.Unix(0, ns).Unix()
}

// replace renames tmp over name in dir (rel in the tree), removing a directory in the
// way first (removeInWay). A directory that appeared since the manifest walk looked is
// removed all the same.
func (r *treeReceiver) replace(dir *os.Root, tmp, name, rel string, isDir bool) error {
	if isDir {
		if err := r.removeInWay(dir, name, rel); err != nil {
			return err
		}
	}
	err := dir.Rename(tmp, name)
	if err != nil && !isDir {
		if fi, lerr := dir.Lstat(name); lerr == nil && fi.IsDir() {
			return r.replace(dir, tmp, name, rel, true)
		}
	}
	return err
}

// removeInWay removes the directory name of dir (rel in the tree) where the source has
// a file or a symlink, with what is in it that may be deleted (mayDelete); it fails,
// naming the directory, when anything stays in it.
func (r *treeReceiver) removeInWay(dir *os.Root, name, rel string) error {
	if err := r.deleteTree(dir, name, rel); err != nil {
		return err
	}
	if _, err := dir.Lstat(name); err == nil {
		return fmt.Errorf("rsync: %q: the source has a file or symlink where the destination has a directory, which holds entries no earlier sync wrote (deleted only with --delete) or excluded ones (never deleted)", rel)
	}
	return nil
}

// popDir leaves the directory on top of the stack: it deletes what the manifest does not
// have there and may be deleted (mayDelete), counts what it keeps, and removes the stale
// temp files.
func (r *treeReceiver) popDir() error {
	d := r.stack[len(r.stack)-1]
	r.stack = r.stack[:len(r.stack)-1]
	if d.path != "" {
		defer d.root.Close()
	}
	if d.fresh {
		return nil // nothing in it but what the manifest has
	}
	f, err := d.root.Open(".")
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, de := range ents {
		name := de.Name()
		if _, ok := d.children[name]; ok {
			continue
		}
		if strings.HasPrefix(name, tempPrefix) {
			if staleTemp(name) {
				d.root.Remove(name)
			}
			continue
		}
		if d.path == "" && name == markerName {
			continue
		}
		rel := name
		if d.path != "" {
			rel = d.path + "/" + name
		}
		if !r.mayDelete(rel, de.IsDir()) {
			if !r.filter.Match(rel, de.IsDir()) {
				r.kept.Add(1)
			}
			continue
		}
		if de.IsDir() {
			if err := r.deleteTree(d.root, name, rel); err != nil {
				return err
			}
			continue
		}
		if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		r.deleted.Add(1)
	}
	return nil
}

// deleteTree deletes the directory name of dir (rel in the tree) and everything in it
// that may be deleted (mayDelete: not excluded entries; without Delete only what the
// marker names); a directory that keeps some stays.
func (r *treeReceiver) deleteTree(dir *os.Root, name, rel string) error {
	sub, err := dir.OpenRoot(name)
	if err != nil {
		return err
	}
	f, err := sub.Open(".")
	if err != nil {
		sub.Close()
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		sub.Close()
		return err
	}
	for _, de := range ents {
		crel := rel + "/" + de.Name()
		if strings.HasPrefix(de.Name(), tempPrefix) {
			if staleTemp(de.Name()) {
				sub.Remove(de.Name())
			}
			continue
		}
		if !r.mayDelete(crel, de.IsDir()) {
			if !r.filter.Match(crel, de.IsDir()) {
				r.kept.Add(1)
			}
			continue
		}
		if de.IsDir() {
			if err := r.deleteTree(sub, de.Name(), crel); err != nil {
				sub.Close()
				return err
			}
			continue
		}
		if err := sub.Remove(de.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			sub.Close()
			return err
		}
		r.deleted.Add(1)
	}
	sub.Close()
	if err := dir.Remove(name); err == nil {
		r.deleted.Add(1)
	} else if !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// sendNeeds sends what the manifest walk found needed, with the signatures of the old
// copies, batching needs while more are queued.
func (r *treeReceiver) sendNeeds(ctx context.Context) error {
	// A need waits up to needDelay for others to share its message: one message per
	// need would cost a message per file on the sender's side too.
	const needDelay = 2 * time.Millisecond
	msg := newMsg(msgNeed, bodyGoal)
	var first time.Time // when the batch's first need was queued
	send := func() error {
		err := r.c.sendRaw(ctx, msg)
		msg = msg[:2]
		return err
	}
	for {
		wait := time.Duration(-1)
		if len(msg) > 2 {
			wait = max(needDelay-time.Since(first), 0)
		}
		index, st := r.queue.popWait(ctx, wait)
		switch st {
		case popCancelled:
			return ctx.Err()
		case popTimeout:
			if err := send(); err != nil {
				return err
			}
			continue
		case popClosed:
			if len(msg) > 2 {
				return send()
			}
			return nil
		}
		r.mu.Lock()
		p := r.pending[index]
		r.mu.Unlock()
		var sig *signature
		if p != nil && p.basis {
			sig = r.signatureOf(p.path)
		}
		r.mu.Lock()
		if p != nil {
			p.sig = sig
		}
		walked := r.manifestDone
		r.mu.Unlock()
		if len(msg) == 2 {
			first = time.Now()
		}
		encodeNeed(&msg, index, sig)
		if len(msg) >= bodyGoal || walked && r.queue.len() == 0 {
			if err := send(); err != nil {
				return err
			}
		}
	}
}

// signatureOf returns the signature of the old file at path, or nil if it cannot be read
// (the file is then sent whole).
func (r *treeReceiver) signatureOf(path string) *signature {
	f, err := r.root.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	sig, err := makeSignature(bufio.NewReaderSize(f, 64<<10), fi.Size())
	if err != nil {
		return nil
	}
	return sig
}

// record applies one data record.
func (r *treeReceiver) record(rec *record) error {
	switch rec.tag {
	case recFile, recSkip:
		if r.cur != nil || r.job != nil {
			return protoErrf("file not finished before the next")
		}
		if err := r.pool.Err(); err != nil {
			return err
		}
		r.mu.Lock()
		p := r.pending[rec.index]
		if p != nil {
			delete(r.pending, rec.index)
		}
		sig := (*signature)(nil)
		if p != nil {
			sig = p.sig
		}
		r.mu.Unlock()
		if p == nil {
			return protoErrf("data for entry %d, which was not asked for", rec.index)
		}
		if rec.tag == recSkip {
			r.done()
			return nil
		}
		if sig == nil && p.size <= smallFile {
			r.job = &writeJob{p: p, index: rec.index, data: r.pool.getBuf()}
			return nil
		}
		return r.startFile(p, rec.index, sig)
	case recLit, recCopy:
		if j := r.job; j != nil {
			if rec.tag == recCopy {
				return protoErrf("block copy for a file sent whole")
			}
			if len(j.data)+len(rec.data) <= 2*smallFile {
				j.data = append(j.data, rec.data...)
				return nil
			}
			// Larger than announced: stream it after all.
			r.job = nil
			err := r.startFile(j.p, j.index, nil)
			if err == nil {
				err = r.cur.literal(j.data)
			}
			r.pool.putBuf(j.data)
			if err != nil {
				return err
			}
		}
		if r.cur == nil {
			return protoErrf("data record outside a file")
		}
		if rec.tag == recLit {
			return r.cur.literal(rec.data)
		}
		return r.cur.copyBlocks(rec.first, rec.count)
	case recEnd:
		if j := r.job; j != nil {
			r.job = nil
			j.sum = append([]byte(nil), rec.data...)
			r.done()
			return r.pool.submit(r.ctx, j)
		}
		w := r.cur
		if w == nil {
			return protoErrf("end record outside a file")
		}
		r.cur = nil
		ok, err := w.finish(rec.data, r.fsync)
		if err != nil {
			return err
		}
		if !ok {
			// A delta that does not check out (the old file changed under us, or a false
			// match): ask for the whole file, once.
			if w.sig == nil || w.p.redone {
				return fmt.Errorf("rsync: %s: SHA-256 of the received file does not match the sender's", w.p.path)
			}
			w.p.redone, w.p.basis, w.p.sig = true, false, nil
			r.mu.Lock()
			r.pending[w.index] = w.p
			r.mu.Unlock()
			r.res.redone++
			r.queue.push(w.index)
			return nil
		}
		if err := w.commit(r); err != nil {
			return err
		}
		r.written.Add(1)
		r.done()
		return nil
	}
	return protoErrf("unknown record %#x", rec.tag)
}

// writeBufs are the buffers of a fileWriter, reused from one file to the next.
type writeBufs struct {
	bw      *bufio.Writer
	copyBuf []byte
}

// done counts a file asked for as received.
func (r *treeReceiver) done() {
	r.mu.Lock()
	r.outstanding--
	r.mu.Unlock()
}

// startFile starts writing the file p (entry index) in the receiving goroutine.
func (r *treeReceiver) startFile(p *pending, index uint64, sig *signature) error {
	dir, err := r.dirs.get(parentOf(p.path))
	if err != nil {
		return err
	}
	w, err := newFileWriter(dir, r.token, baseOf(p.path), baseOf(p.path), sig, &r.bufs)
	if err != nil {
		return err
	}
	w.p, w.index = p, index
	r.cur = w
	return nil
}

// fileWriter writes one incoming file to a temp file next to its final place.
type fileWriter struct {
	dir   *os.Root
	tmp   string
	name  string
	f     *os.File
	bw    *bufio.Writer
	h     hash.Hash
	basis *os.File
	sig   *signature
	bufs  *writeBufs
	p     *pending
	index uint64
}

// newFileWriter starts the file name in dir; with sig, the file basisName of dir is the
// basis that block copies read from.
func newFileWriter(dir *os.Root, token, name, basisName string, sig *signature, bufs *writeBufs) (*fileWriter, error) {
	w := &fileWriter{dir: dir, name: name, sig: sig, h: sha256.New(), bufs: bufs}
	if sig != nil {
		b, err := dir.OpenFile(basisName, os.O_RDONLY|oNoFollow, 0)
		if err != nil {
			return nil, fmt.Errorf("rsync: basis of %s: %w", name, err)
		}
		w.basis = b
	}
	w.tmp = tempName(token, name)
	f, err := dir.OpenFile(w.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if w.basis != nil {
			w.basis.Close()
		}
		return nil, err
	}
	w.f = f
	if bufs.bw == nil {
		bufs.bw = bufio.NewWriterSize(f, 256<<10)
	} else {
		bufs.bw.Reset(f)
	}
	w.bw = bufs.bw
	return w, nil
}

func (w *fileWriter) literal(p []byte) error {
	w.h.Write(p)
	_, err := w.bw.Write(p)
	return err
}

func (w *fileWriter) copyBlocks(first, count uint64) error {
	if w.sig == nil {
		return protoErrf("block copy for a file sent whole")
	}
	if first+count > uint64(w.sig.blocks()) {
		return protoErrf("blocks %d+%d of a basis of %d", first, count, w.sig.blocks())
	}
	off := int64(first) * int64(w.sig.blockSize)
	n := min(int64(count)*int64(w.sig.blockSize), w.sig.size-off)
	if w.bufs.copyBuf == nil {
		w.bufs.copyBuf = make([]byte, 256<<10)
	}
	buf := w.bufs.copyBuf
	for n > 0 {
		m := int(min(int64(len(buf)), n))
		k, err := w.basis.ReadAt(buf[:m], off)
		if k < m {
			if err == nil || err == io.EOF {
				err = errBasisChanged
			}
			return err
		}
		w.h.Write(buf[:m])
		if _, err := w.bw.Write(buf[:m]); err != nil {
			return err
		}
		off += int64(m)
		n -= int64(m)
	}
	return nil
}

// finish completes the temp file and reports whether its SHA-256 is sum. On a mismatch
// (or an error) the temp file is gone.
func (w *fileWriter) finish(sum []byte, fsync bool) (bool, error) {
	if w.basis != nil {
		w.basis.Close()
		w.basis = nil
	}
	err := w.bw.Flush()
	if err == nil && string(w.h.Sum(nil)) != string(sum) {
		w.abort()
		return false, nil
	}
	if err == nil {
		err = w.f.Chmod(fileMode(w.p.mode))
	}
	if err == nil && fsync {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		w.dir.Remove(w.tmp)
		return false, err
	}
	return true, nil
}

// commit sets the mtime and renames the temp file into place.
func (w *fileWriter) commit(r *treeReceiver) error {
	mt := time.Unix(0, w.p.mtime)
	err := w.dir.Chtimes(w.tmp, time.Time{}, mt)
	if err == nil {
		err = r.replace(w.dir, w.tmp, w.name, w.p.path, w.p.dirInWay)
	}
	if err != nil {
		w.dir.Remove(w.tmp)
	}
	return err
}

// abort removes the temp file.
func (w *fileWriter) abort() {
	if w.basis != nil {
		w.basis.Close()
		w.basis = nil
	}
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	w.dir.Remove(w.tmp)
}

// dirCache keeps directories of the destination open for the data phase, where files
// come in manifest order.
type dirCache struct {
	root *os.Root
	m    map[string]*os.Root
}

func (d *dirCache) get(path string) (*os.Root, error) {
	if path == "" {
		return d.root, nil
	}
	if r, ok := d.m[path]; ok {
		return r, nil
	}
	if len(d.m) >= 64 {
		d.closeAll()
	}
	r, err := d.root.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	if d.m == nil {
		d.m = map[string]*os.Root{}
	}
	d.m[path] = r
	return r, nil
}

func (d *dirCache) closeAll() {
	for _, r := range d.m {
		r.Close()
	}
	d.m = nil
}

// needQueue is an unbounded queue of manifest indices from the manifest walk to the
// goroutine that sends needs: the walk must never wait on the network, or the sender,
// waiting for the walk to read its data, and the walk would wait on each other.
type needQueue struct {
	mu     sync.Mutex
	q      []uint64
	closed bool
	sig    chan struct{}
}

func newNeedQueue() *needQueue { return &needQueue{sig: make(chan struct{}, 1)} }

func (q *needQueue) push(i uint64) {
	q.mu.Lock()
	q.q = append(q.q, i)
	q.mu.Unlock()
	select {
	case q.sig <- struct{}{}:
	default:
	}
}

func (q *needQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.sig <- struct{}{}:
	default:
	}
}

func (q *needQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q)
}

// Outcomes of popWait.
const (
	popOK = iota
	popClosed
	popTimeout
	popCancelled
)

// popWait returns the next index (popOK); popClosed once the queue is closed and
// drained; popTimeout after wait (if not negative) without one; popCancelled when ctx ends.
func (q *needQueue) popWait(ctx context.Context, wait time.Duration) (uint64, int) {
	var timer <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		q.mu.Lock()
		if len(q.q) > 0 {
			i := q.q[0]
			q.q = q.q[1:]
			q.mu.Unlock()
			return i, popOK
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return 0, popClosed
		}
		select {
		case <-q.sig:
		case <-timer:
			return 0, popTimeout
		case <-ctx.Done():
			return 0, popCancelled
		}
	}
}
