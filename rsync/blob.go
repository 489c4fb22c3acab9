package rsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// BlobOptions configure PutBlob.
type BlobOptions struct {
	// CacheDir is the blob cache on the receiver's machine; "" means
	// ${XDG_CACHE_HOME:-$HOME/.cache}/godist/blobs there.
	CacheDir string
	// Name names the blob's lineage ("the test binary of package P", say). The receiver
	// remembers the last blob put under a name, and the next put under it goes as a delta
	// against that one: a rebuilt binary travels as the blocks that changed.
	Name string
	// Basis lists hex SHA-256s of blobs the receiver may have, to use as basis, before
	// the one remembered under Name.
	Basis []string
	// Compress compresses the data sent with zstd where it helps.
	Compress bool
}

// PutBlob stores the local file at localPath in the receiver's blob cache under its
// SHA-256 (hex) and returns its path there. Nothing is sent when the cache has it; else it
// goes as a delta against a basis blob (see BlobOptions) or whole. The blob keeps the
// file's permission bits. Concurrent puts of one blob to one cache are safe (each writes a
// temp file and renames it). Blobs are never evicted by PutBlob.
func PutBlob(ctx context.Context, open Opener, localPath string, opts BlobOptions) (string, Stats, error) {
	st := Stats{SameAs: -1}
	start := time.Now()
	defer func() { st.Duration = time.Since(start) }()
	f, err := os.Open(localPath)
	if err != nil {
		return "", st, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", st, err
	}
	if !fi.Mode().IsRegular() {
		return "", st, fmt.Errorf("rsync: %s is not a regular file", localPath)
	}
	sum, err := hashReader(f)
	if err != nil {
		return "", st, err
	}
	if len(opts.CacheDir) > maxDestLen || len(opts.Name) > maxNameArg || len(opts.Basis) > maxBasis {
		return "", st, errors.New("rsync: blob options over their limits")
	}
	var basis [][]byte
	for _, b := range opts.Basis {
		x, err := hex.DecodeString(b)
		if err != nil || len(x) != shaLen {
			return "", st, fmt.Errorf("rsync: basis %q is not a hex SHA-256", b)
		}
		basis = append(basis, x)
	}
	ch, err := open(ctx)
	if err != nil {
		return "", st, err
	}
	defer ch.Close()
	c := &conn{ch: ch}
	defer c.close()
	defer func() { st.BytesSent, st.BytesReceived = c.bytesSent(), c.received }()
	h := &hello{version: protocolVersion, mode: modeBlob, codecs: codecsAll, cacheDir: opts.CacheDir,
		hash: sum, size: fi.Size(), perm: unixMode(fi.Mode()), name: opts.Name, basis: basis}
	if err := c.sendRaw(ctx, encodeHello(h)); err != nil {
		return "", st, err
	}
	rp, err := recvReply(ctx, c)
	if err != nil {
		return "", st, err
	}
	st.Files = 1
	if rp.state == blobHave {
		return rp.path, st, nil
	}
	c.compress = opts.Compress && rp.codecs&codecZstd != 0
	w := &dataWriter{c: c, msg: newMsg(msgData, bodyGoal+maxLit+64)}
	for {
		typ, body, err := c.recv(ctx)
		if err != nil {
			if isEOF(err) {
				err = errors.New("rsync: receiver closed the channel before it was done")
			}
			return "", st, err
		}
		switch typ {
		case msgNeed:
			err = decodeNeeds(body, func(nd need) error {
				if nd.index != 0 {
					return protoErrf("receiver needs entry %d of a blob", nd.index)
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					return err
				}
				w.ctx = ctx
				w.msg.byte(recFile)
				w.msg.uvarint(0)
				hs := sha256.New()
				ds, err := computeDelta(f, nd.sig, w, hs, &w.scratch)
				if err != nil {
					return err
				}
				if string(hs.Sum(nil)) != string(sum) {
					return fmt.Errorf("rsync: %s changed while it was sent", localPath)
				}
				w.msg.byte(recEnd)
				w.msg.raw(sum)
				st.FilesSent++
				st.Literal += ds.literal
				st.Matched += ds.matched
				return w.flush(ctx)
			})
		case msgResult:
			var rs *result
			if rs, err = decodeResult(body); err == nil {
				st.Redone = int(rs.redone)
				return rs.path, st, nil
			}
		default:
			err = protoErrf("unexpected message type %#x from the receiver", typ)
		}
		if err != nil {
			return "", st, err
		}
	}
}

func hashReader(r io.Reader) ([]byte, error) {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, r, make([]byte, 256<<10)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// DefaultBlobDir is the blob cache of this machine: ${XDG_CACHE_HOME:-$HOME/.cache}/godist/blobs.
func DefaultBlobDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "godist", "blobs"), nil
	}
	home := os.Getenv("HOME")
	if home == "" {
		return "", errors.New("rsync: neither XDG_CACHE_HOME nor HOME is set")
	}
	return filepath.Join(home, ".cache", "godist", "blobs"), nil
}

// nameFile is the file of the cache that holds the hash of the last blob put under name.
func nameFile(name string) string {
	s := sha256.Sum256([]byte(name))
	return "name-" + hex.EncodeToString(s[:16])
}

func receiveBlob(ctx context.Context, c *conn, h *hello) error {
	dir := h.cacheDir
	if dir == "" {
		var err error
		if dir, err = DefaultBlobDir(); err != nil {
			return err
		}
	}
	root, err := openDest(dir)
	if err != nil {
		return fmt.Errorf("rsync: blob cache %s: %w", dir, err)
	}
	defer root.Close()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	token := newToken()
	liveTokens.Store(token, struct{}{})
	defer liveTokens.Delete(token)
	name := hex.EncodeToString(h.hash)
	path := filepath.Join(abs, name)
	rp := &reply{version: protocolVersion, codecs: codecsAll, identity: placeID(root), state: blobNeed}
	if fi, err := root.Lstat(name); err == nil && fi.Mode().IsRegular() && fi.Size() == h.size {
		if unixMode(fi.Mode()) != h.perm {
			if err := root.Chmod(name, fileMode(h.perm)); err != nil {
				return err
			}
		}
		rp.state, rp.path = blobHave, path
		if err := c.sendRaw(ctx, encodeReply(rp)); err != nil {
			return err
		}
		return rememberBlob(root, token, h.name, name)
	}
	if err := c.sendRaw(ctx, encodeReply(rp)); err != nil {
		return err
	}
	cleanStaleTemps(root)
	// The basis: the blobs the sender names, then the last one of this name.
	candidates := make([]string, 0, len(h.basis)+1)
	for _, b := range h.basis {
		candidates = append(candidates, hex.EncodeToString(b))
	}
	if h.name != "" {
		if b, err := root.ReadFile(nameFile(h.name)); err == nil {
			if s := strings.TrimSpace(string(b)); len(s) == 2*shaLen && s != name {
				if _, err := hex.DecodeString(s); err == nil {
					candidates = append(candidates, s)
				}
			}
		}
	}
	var sig *signature
	var basisName string
	for _, cand := range candidates {
		if s := signatureIn(root, cand); s != nil {
			sig, basisName = s, cand
			break
		}
	}
	var bufs writeBufs
	res := result{path: path}
	for attempt := 0; ; attempt++ {
		msg := newMsg(msgNeed, 64)
		encodeNeed(&msg, 0, sig)
		if err := c.sendRaw(ctx, msg); err != nil {
			return err
		}
		ok, err := receiveBlobData(ctx, c, root, token, name, basisName, h, sig, &bufs)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if sig == nil || attempt > 0 {
			return fmt.Errorf("rsync: blob %s: received data does not match its SHA-256", name)
		}
		sig, basisName = nil, ""
		res.redone++
	}
	res.written = 1
	if err := rememberBlob(root, token, h.name, name); err != nil {
		return err
	}
	return c.sendRaw(ctx, encodeResult(&res))
}

// signatureIn returns the signature of the blob named hexName in root, or nil.
func signatureIn(root *os.Root, hexName string) *signature {
	f, err := root.OpenFile(hexName, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil
	}
	sig, err := makeSignature(io.Reader(f), fi.Size())
	if err != nil {
		return nil
	}
	return sig
}

// receiveBlobData writes the blob's records to a temp file and renames it to name if its
// SHA-256 is the announced one. It reports false (and leaves nothing) on a mismatch.
func receiveBlobData(ctx context.Context, c *conn, root *os.Root, token, name, basis string, h *hello, sig *signature, bufs *writeBufs) (bool, error) {
	var w *fileWriter
	defer func() {
		if w != nil {
			w.abort()
		}
	}()
	done, ok := false, false
	for !done {
		typ, body, err := c.recv(ctx)
		if err != nil {
			if isEOF(err) {
				err = errors.New("rsync: sender closed the channel before the end of the blob")
			}
			return false, err
		}
		if typ != msgData {
			return false, protoErrf("unexpected message type %#x", typ)
		}
		err = decodeRecords(body, func(rec *record) error {
			if done {
				return protoErrf("data after the end of the blob")
			}
			switch rec.tag {
			case recFile:
				if w != nil || rec.index != 0 {
					return protoErrf("unexpected file record %d", rec.index)
				}
				var err error
				if w, err = newFileWriter(root, token, name, basis, sig, bufs); err != nil {
					return err
				}
				w.p = &pending{path: name, mode: h.perm, mtime: time.Now().UnixNano()}
				return nil
			case recLit, recCopy:
				if w == nil {
					return protoErrf("data record outside the blob")
				}
				if rec.tag == recLit {
					return w.literal(rec.data)
				}
				return w.copyBlocks(rec.first, rec.count)
			case recEnd:
				if w == nil {
					return protoErrf("end record outside the blob")
				}
				done = true
				if string(rec.data) != string(h.hash) {
					return protoErrf("blob ends with a SHA-256 other than the announced one")
				}
				fin, err := w.finish(rec.data, false)
				if err != nil || !fin {
					w = nil // finish removed the temp file
					return err
				}
				if err := root.Rename(w.tmp, name); err != nil {
					root.Remove(w.tmp)
					w = nil
					return err
				}
				w, ok = nil, true
				return nil
			}
			return protoErrf("unexpected record %#x in a blob", rec.tag)
		})
		if err != nil {
			return false, err
		}
	}
	return ok, nil
}

// rememberBlob records blob as the last one put under name.
func rememberBlob(root *os.Root, token, name, blob string) error {
	if name == "" {
		return nil
	}
	nf := nameFile(name)
	tmp := tempName(token, nf)
	if err := root.WriteFile(tmp, []byte(blob+"\n"), 0o644); err != nil {
		return err
	}
	if err := root.Rename(tmp, nf); err != nil {
		root.Remove(tmp)
		return err
	}
	return nil
}

// cleanStaleTemps removes temp files of dead syncs from the directory root.
func cleanStaleTemps(root *os.Root) {
	f, err := root.Open(".")
	if err != nil {
		return
	}
	defer f.Close()
	for {
		ents, err := f.ReadDir(256)
		for _, de := range ents {
			if strings.HasPrefix(de.Name(), tempPrefix) && staleTemp(de.Name()) {
				root.Remove(de.Name())
			}
		}
		if err != nil || len(ents) == 0 {
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, fs.ErrNotExist) {
				return
			}
			return
		}
	}
}
