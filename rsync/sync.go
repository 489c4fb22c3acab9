package rsync

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/godist/godist/channel"
)

// ReceiverFunc is the name under which workers register Receiver (gateway remote exec).
const ReceiverFunc = "godist.rsync"

// Opener opens a channel to a Receiver, e.g.
//
//	func(ctx context.Context) (*channel.Channel, error) { return gw.RemoteExec(ctx, rsync.ReceiverFunc) }
type Opener func(ctx context.Context) (*channel.Channel, error)

// Dest is one place to sync a tree to.
type Dest struct {
	// Name identifies the destination in errors and Progress (a gateway id, say).
	Name string
	// Open opens a channel to a Receiver. Sync closes the channel.
	Open Opener
	// Path is the destination directory on the receiver's machine; a relative path is
	// relative to the receiver's working directory. It is created if missing.
	Path string
}

// Options of Sync.
type Options struct {
	// Exclude holds gitignore-style patterns (see Filter): matching entries are not sent,
	// and are never deleted on the receiver.
	Exclude []string
	// Delete deletes every entry of the destination that the source does not have (except
	// the excluded ones), whoever wrote it: rsync --delete. Without it, a sync deletes
	// only what an earlier sync wrote there, as the destination's sync marker names it
	// (see Receiver), and keeps every other entry, counting it in Stats.Kept.
	Delete bool
	// Compress compresses file data and the manifest with zstd where the receiver
	// accepts it (it is negotiated) and where it makes them smaller.
	Compress bool
	// Fsync makes the receiver fsync each file before renaming it into place.
	Fsync bool
	// Progress, if not nil, is called as files are sent: after each file and once at the
	// end of each destination. Calls are serialized; it must not block for long.
	Progress func(Progress)
	// Warn, if not nil, is told about each source entry that cannot be synced (a socket,
	// a device, a path beyond the limits, a file it cannot read: an *EntryError), which
	// is then skipped: the destination keeps what it has there. Without Warn such an
	// entry fails the sync: nothing is ever left out in silence. Calls are serialized.
	Warn func(path string, err error)
}

// Progress reports how a destination's sync is going.
type Progress struct {
	Dest int    // index in the dests given to Sync
	Name string // Dest.Name
	Path string // the file just sent ("" for other updates)
	// FilesSent of FilesNeeded files (FilesNeeded grows as the receiver asks for them).
	FilesSent, FilesNeeded int
	// BytesDone is the size of the files sent so far; BytesSent what went on the wire.
	BytesDone, BytesSent int64
	Done                 bool // the destination is finished (successfully or not)
}

// Stats describe one destination's sync.
type Stats struct {
	Files     int // entries of the source tree (files, directories, symlinks)
	FilesSent int // files whose content was sent (whole or as a delta)
	Deleted   int // entries deleted on the receiver
	// Kept counts the entries of the destination that the source does not have and
	// that the sync left in place (without Options.Delete: those no earlier sync
	// wrote). A directory kept counts once, with what is in it.
	Kept int
	// Owned reports that the destination held the sync marker of an earlier sync: it
	// is a tree godist synced before.
	Owned     bool
	Skipped   int   // source entries that cannot be synced (see Options.Warn)
	Redone    int   // files sent again whole because their delta did not check out
	BytesSent int64 // bytes written to the channel's transport (messages and framing)
	// BytesReceived counts the receiver's messages (signatures, mostly) the same way.
	BytesReceived int64
	Literal       int64 // file bytes sent as literal data (before compression)
	Matched       int64 // file bytes the receiver took from its old copies
	// SameAs is the index of the destination that synced the same directory (the same
	// machine, the same directory), or -1. A destination that is the same place as an
	// earlier one is not synced twice: it gets the other's outcome.
	SameAs   int
	Duration time.Duration
}

// DestError is the failure of one destination.
type DestError struct {
	Index int
	Name  string
	Err   error
}

func (e *DestError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("rsync to %s: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("rsync to destination %d: %v", e.Index, e.Err)
}
func (e *DestError) Unwrap() error { return e.Err }

// Sync makes each destination a copy of the local directory src, all of them
// concurrently, and returns the stats of each (in the order of dests) with an error that
// joins a *DestError per failed destination.
//
// The tree is walked once. Each destination costs about one round trip when nothing
// changed: the sender sends the manifest (path, size, mtime, mode of each entry) at once
// and the receiver answers with the files it needs, sending for each the block
// signatures of its old copy; the sender then sends each as a delta (the rsync
// algorithm) or whole. Files are replaced atomically on the receiver; see Receiver.
//
// Each host once: destinations that turn out to be the same directory on the same
// machine (several gateways on one host) are synced once, the others reporting SameAs.
// This works where the receiver's machine has a boot id (Linux with /proc); elsewhere
// the caller should pass one destination per host and directory.
func Sync(ctx context.Context, src string, dests []Dest, opts Options) ([]Stats, error) {
	filter, err := NewFilter(opts.Exclude)
	if err != nil {
		return nil, err
	}
	s := &syncer{opts: opts, filter: filter, treeReady: make(chan struct{}), places: map[string]*place{}}
	var warn func(string, error) // nil: what cannot be synced is an error
	if opts.Warn != nil {
		warn = s.warn
	}
	s.warnf = warn
	go func() {
		s.tree, s.treeErr = walkTree(src, filter, warn)
		close(s.treeReady)
	}()
	stats := make([]Stats, len(dests))
	errs := make([]error, len(dests))
	var wg sync.WaitGroup
	for i := range dests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			stats[i], errs[i] = s.syncOne(ctx, i, dests[i])
			stats[i].Duration = time.Since(start)
			s.progress(Progress{Dest: i, Name: dests[i].Name, FilesSent: stats[i].FilesSent,
				BytesSent: stats[i].BytesSent, Done: true})
		}()
	}
	wg.Wait()
	<-s.treeReady
	if s.treeErr != nil {
		return stats, fmt.Errorf("rsync: %w", s.treeErr)
	}
	var all []error
	for i, err := range errs {
		if err != nil {
			all = append(all, &DestError{Index: i, Name: dests[i].Name, Err: err})
		}
	}
	return stats, errors.Join(all...)
}

type syncer struct {
	opts   Options
	filter *Filter

	treeReady chan struct{}
	tree      *tree
	treeErr   error

	mu     sync.Mutex
	places map[string]*place // by receiver identity

	progressMu sync.Mutex
	warnf      func(path string, err error) // s.warn, or nil without Options.Warn
}

// place is one destination directory that several dests may share.
type place struct {
	owner int
	done  chan struct{}
	stats Stats
	err   error
}

func (s *syncer) warn(path string, err error) {
	if s.opts.Warn == nil {
		return
	}
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	s.opts.Warn(path, err)
}

func (s *syncer) progress(p Progress) {
	if s.opts.Progress == nil {
		return
	}
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	s.opts.Progress(p)
}

func (s *syncer) syncOne(ctx context.Context, i int, d Dest) (st Stats, err error) {
	st.SameAs = -1
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := d.Open(ctx)
	if err != nil {
		return st, err
	}
	defer ch.Close()
	c := &conn{ch: ch}
	defer c.close()
	defer func() {
		st.BytesSent = c.bytesSent()
		st.BytesReceived = c.received
	}()
	var flags uint64
	if s.opts.Delete {
		flags |= helloDelete
	}
	if s.opts.Fsync {
		flags |= helloFsync
	}
	h := &hello{version: protocolVersion, mode: modeTree, codecs: codecsAll, flags: flags,
		dest: d.Path, exclude: s.filter.Patterns()}
	if len(d.Path) > maxDestLen {
		return st, fmt.Errorf("rsync: destination path too long")
	}
	if err := c.sendRaw(ctx, encodeHello(h)); err != nil {
		return st, err
	}
	rp, err := recvReply(ctx, c)
	if err != nil {
		return st, err
	}
	if rp.state == treeRefused {
		return st, &RefusedError{Dest: d.Path, Reason: rp.path}
	}
	// One sync per place: the first destination to claim it does the work.
	if rp.identity != "" {
		s.mu.Lock()
		p := s.places[rp.identity]
		if p == nil {
			p = &place{owner: i, done: make(chan struct{})}
			s.places[rp.identity] = p
			s.mu.Unlock()
			defer func() {
				p.stats, p.err = st, err
				close(p.done)
			}()
		} else {
			s.mu.Unlock()
			ch.Close() // nothing to do: the receiver ends at once
			select {
			case <-p.done:
			case <-ctx.Done():
				return st, ctx.Err()
			}
			st.SameAs, st.Files, st.Skipped, st.Deleted = p.owner, p.stats.Files, p.stats.Skipped, 0
			st.Kept, st.Owned = p.stats.Kept, p.stats.Owned
			if p.err != nil {
				return st, fmt.Errorf("same directory as destination %d, which failed: %w", p.owner, p.err)
			}
			return st, nil
		}
	}
	select {
	case <-s.treeReady:
	case <-ctx.Done():
		return st, ctx.Err()
	}
	if s.treeErr != nil {
		return st, s.treeErr
	}
	t := s.tree
	st.Files, st.Skipped = len(t.entries), t.skipped
	c.compress = s.opts.Compress && rp.codecs&codecZstd != 0
	manifest := t.msgs
	if c.compress {
		manifest = t.compressed()
	}
	for _, m := range manifest {
		if err := c.sendRaw(ctx, m); err != nil {
			return st, err
		}
	}

	// The reader takes needs and the result; the writer sends what is needed.
	needs := make(chan need, 64)
	var res *result
	var readErr error
	var needed int
	var neededMu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(needs)
		for {
			typ, body, err := c.recv(ctx)
			if err != nil {
				if isEOF(err) {
					err = errors.New("rsync: receiver closed the channel before it was done")
				}
				readErr = err
				cancel()
				return
			}
			switch typ {
			case msgNeed:
				err = decodeNeeds(body, func(nd need) error {
					if nd.index >= uint64(len(t.entries)) || t.entries[nd.index].kind != entFile {
						return protoErrf("receiver needs entry %d, which is not a file", nd.index)
					}
					neededMu.Lock()
					needed++
					neededMu.Unlock()
					select {
					case needs <- nd:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
			case msgResult:
				res, err = decodeResult(body)
				if err == nil {
					return
				}
			default:
				err = protoErrf("unexpected message type %#x from the receiver", typ)
			}
			if err != nil {
				readErr = err
				cancel()
				return
			}
		}
	}()
	w := &dataWriter{c: c, msg: newMsg(msgData, bodyGoal+maxLit+64), warn: s.warnf}
	var bytesDone int64
	writeErr := func() error {
		for nd := range needs {
			e := &t.entries[nd.index]
			ds, sent, err := w.sendFile(ctx, t.localPath(e.path), nd.index, nd.sig)
			if err != nil {
				return err
			}
			if !sent {
				st.Skipped++
			} else {
				st.FilesSent++
				st.Literal += ds.literal
				st.Matched += ds.matched
				bytesDone += e.size
			}
			if len(needs) == 0 {
				if err := w.flush(ctx); err != nil {
					return err
				}
			}
			neededMu.Lock()
			n := needed
			neededMu.Unlock()
			s.progress(Progress{Dest: i, Name: d.Name, Path: e.path, FilesSent: st.FilesSent, FilesNeeded: n,
				BytesDone: bytesDone, BytesSent: c.bytesSent()})
		}
		return nil
	}()
	if writeErr != nil {
		cancel()
	}
	<-readDone
	switch {
	case readErr != nil && !errors.Is(readErr, context.Canceled):
		// The receiver's error (or the channel's end) says more than our cancelled send.
		return st, readErr
	case writeErr != nil:
		return st, writeErr
	case readErr != nil:
		return st, readErr
	}
	st.Deleted = int(res.deleted)
	st.Redone = int(res.redone)
	st.Kept = int(res.kept)
	st.Owned = res.flags&resultOwned != 0
	return st, nil
}

func recvReply(ctx context.Context, c *conn) (*reply, error) {
	typ, body, err := c.recv(ctx)
	if err != nil {
		if isEOF(err) {
			err = errors.New("rsync: receiver closed the channel without answering")
		}
		return nil, err
	}
	if typ != msgReply {
		return nil, protoErrf("receiver answered with message type %#x", typ)
	}
	rp, err := decodeReply(body)
	if err != nil {
		return nil, err
	}
	if rp.version != protocolVersion {
		return nil, fmt.Errorf("rsync: receiver speaks protocol version %d, this sender %d", rp.version, protocolVersion)
	}
	return rp, nil
}

// dataWriter batches data records into DATA messages.
type dataWriter struct {
	warn    func(path string, err error)
	c       *conn
	ctx     context.Context
	msg     wbuf
	scratch []byte // computeDelta's window
}

func (w *dataWriter) flush(ctx context.Context) error {
	if len(w.msg) <= 2 {
		return nil
	}
	err := w.c.send(ctx, w.msg)
	w.msg = w.msg[:2]
	return err
}

func (w *dataWriter) maybeFlush() error {
	if len(w.msg) >= bodyGoal {
		return w.flush(w.ctx)
	}
	return nil
}

func (w *dataWriter) literal(p []byte) error {
	w.msg.byte(recLit)
	w.msg.bytes(p)
	return w.maybeFlush()
}

func (w *dataWriter) copyBlocks(first, count int) error {
	w.msg.byte(recCopy)
	w.msg.uvarint(uint64(first))
	w.msg.uvarint(uint64(count))
	return w.maybeFlush()
}

// sendFile sends the records of the file at path as entry index: a delta against sig, or
// whole. A file that vanished since the walk is sent as a skip record (sent = false).
func (w *dataWriter) sendFile(ctx context.Context, path string, index uint64, sig *signature) (deltaStats, bool, error) {
	w.ctx = ctx
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		// Gone (or replaced by a symlink) since the walk: the receiver keeps what it
		// has. Unreadable: an *EntryError, unless Warn takes it (then kept as well).
		if errors.Is(err, fs.ErrPermission) {
			reason := "cannot be read"
			var pe *fs.PathError
			if errors.As(err, &pe) {
				reason += ": " + pe.Err.Error()
			}
			err = &EntryError{Path: path, Reason: reason}
			if w.warn == nil {
				return deltaStats{}, false, err
			}
			w.warn(path, err)
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP) || errors.As(err, new(*EntryError)) {
			w.msg.byte(recSkip)
			w.msg.uvarint(index)
			return deltaStats{}, false, w.maybeFlush()
		}
		return deltaStats{}, false, err
	}
	defer f.Close()
	w.msg.byte(recFile)
	w.msg.uvarint(index)
	h := sha256.New()
	ds, err := computeDelta(f, sig, w, h, &w.scratch)
	if err != nil {
		return ds, false, err
	}
	w.msg.byte(recEnd)
	w.msg.raw(h.Sum(nil))
	return ds, true, w.maybeFlush()
}
