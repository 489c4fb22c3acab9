package rsync

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"math"
	"math/bits"
)

// The rsync algorithm (Tridgell & Mackerras): the receiver cuts its old copy of a file
// (the basis) into blocks and sends a signature of each, a weak rolling checksum and a
// strong hash; the sender slides a window over the new file, one byte at a time, rolling
// the weak checksum in O(1), and where weak and strong match a block it sends a reference
// to that block instead of the data. Everything else goes as literal data. A SHA-256 of
// the whole file, checked by the receiver, catches the rare false match.

const (
	minBlock  = 512
	maxBlock  = 1 << 20
	strongLen = 8 // bytes of SHA-256 kept per block
	// maxSigBytes bounds the signature of one file: large files get larger blocks.
	maxSigBytes = 8 << 20
	sigEntry    = 4 + strongLen
	maxBlocks   = maxSigBytes / sigEntry
)

// blockSizeFor picks the block size for a basis of size bytes: about its square root
// (rsync's choice: the signature and the literal data around each change then cost
// about the same), a multiple of 8, within [minBlock, maxBlock], and large enough that the
// signature stays under maxSigBytes.
func blockSizeFor(size int64) int {
	bs := int64(math.Sqrt(float64(size)))
	bs = (bs + 7) &^ 7
	if need := (size + maxBlocks - 1) / maxBlocks; bs < need {
		bs = (need + 7) &^ 7
	}
	return int(min(max(bs, minBlock), maxBlock))
}

// signature is the receiver's description of its basis.
type signature struct {
	blockSize int
	size      int64    // of the basis
	weak      []uint32 // per block
	strong    []byte   // strongLen bytes per block
}

func (s *signature) blocks() int { return len(s.weak) }

// lastLen is the length of the basis's last block.
func (s *signature) lastLen() int {
	if len(s.weak) == 0 {
		return 0
	}
	return int(s.size - int64(len(s.weak)-1)*int64(s.blockSize))
}

// weakSum is the rolling checksum of p: s1 = Σ p[i], s2 = Σ (len-i)·p[i], both mod 2^16.
func weakSum(p []byte) (s1, s2 uint32) {
	n := uint32(len(p))
	for i, c := range p {
		s1 += uint32(c)
		s2 += (n - uint32(i)) * uint32(c)
	}
	return s1, s2
}

func weakOf(s1, s2 uint32) uint32 { return s1&0xffff | s2<<16 }

func strongSum(p []byte, out []byte) {
	h := sha256.Sum256(p)
	copy(out, h[:strongLen])
}

// makeSignature reads the basis r of the given size and returns its signature.
func makeSignature(r io.Reader, size int64) (*signature, error) {
	bs := blockSizeFor(size)
	n := int((size + int64(bs) - 1) / int64(bs))
	sig := &signature{blockSize: bs, size: size, weak: make([]uint32, 0, n), strong: make([]byte, 0, n*strongLen)}
	buf := make([]byte, bs)
	var left = size
	for left > 0 {
		m := int(min(int64(bs), left))
		if _, err := io.ReadFull(r, buf[:m]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, errBasisChanged
			}
			return nil, err
		}
		s1, s2 := weakSum(buf[:m])
		sig.weak = append(sig.weak, weakOf(s1, s2))
		var st [strongLen]byte
		strongSum(buf[:m], st[:])
		sig.strong = append(sig.strong, st[:]...)
		left -= int64(m)
	}
	return sig, nil
}

var errBasisChanged = errors.New("rsync: basis file changed while it was read")

// encodeSignature appends sig to b (after the need's index and block size).
func encodeSignature(b *wbuf, sig *signature) {
	b.uvarint(uint64(sig.size))
	for i, w := range sig.weak {
		b.u32le(w)
		b.raw(sig.strong[i*strongLen : (i+1)*strongLen])
	}
}

// decodeSignature reads a signature of blockSize written by encodeSignature.
func decodeSignature(r *rbuf, blockSize int) *signature {
	if blockSize < minBlock || blockSize > maxBlock {
		r.fail("block size %d out of range", blockSize)
		return nil
	}
	size := int64(r.uint(maxFileSize, "basis size"))
	n := (size + int64(blockSize) - 1) / int64(blockSize)
	if n > maxBlocks {
		r.fail("signature of %d blocks (max %d)", n, maxBlocks)
		return nil
	}
	data := r.fixed(int(n) * sigEntry)
	if r.err != nil {
		return nil
	}
	sig := &signature{blockSize: blockSize, size: size, weak: make([]uint32, n), strong: make([]byte, int(n)*strongLen)}
	for i := range int(n) {
		e := data[i*sigEntry:]
		sig.weak[i] = binary.LittleEndian.Uint32(e)
		copy(sig.strong[i*strongLen:], e[4:sigEntry])
	}
	return sig
}

// blockTable finds blocks by weak checksum: open addressing, a slot per block, linear
// probing; blocks with equal checksums take several slots.
type blockTable struct {
	slots []int32 // block index + 1; 0 is empty
	shift uint
}

func newBlockTable(sig *signature) *blockTable {
	n := max(sig.blocks()*2, 16)
	size := 1 << bits.Len(uint(n-1))
	t := &blockTable{slots: make([]int32, size), shift: uint(32 - bits.Len(uint(size-1)))}
	mask := uint32(size - 1)
	for i, w := range sig.weak {
		j := t.home(w)
		for t.slots[j] != 0 {
			j = (j + 1) & mask
		}
		t.slots[j] = int32(i + 1)
	}
	return t
}

func (t *blockTable) home(w uint32) uint32 { return (w * 0x9E3779B1) >> t.shift }

// deltaSink receives a delta: literal data and references to runs of basis blocks.
type deltaSink interface {
	literal(p []byte) error
	copyBlocks(first, count int) error
}

// deltaStats counts what a delta made of a file.
type deltaStats struct {
	literal int64 // bytes sent as literal data
	matched int64 // bytes taken from the basis
}

// computeDelta reads the new file from r and describes it to sink against sig (nil: all
// literal), writing everything read to h. Memory: one window of about maxLit + 2 blocks +
// 256 KiB, whatever the file's size, kept in *scratch for the next call.
func computeDelta(r io.Reader, sig *signature, sink deltaSink, h hash.Hash, scratch *[]byte) (deltaStats, error) {
	var st deltaStats
	if sig == nil || sig.blocks() == 0 {
		if cap(*scratch) < maxLit {
			*scratch = make([]byte, maxLit)
		}
		buf := (*scratch)[:maxLit]
		for {
			n, err := io.ReadFull(r, buf)
			if n > 0 {
				h.Write(buf[:n])
				st.literal += int64(n)
				if err := sink.literal(buf[:n]); err != nil {
					return st, err
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return st, nil
			}
			if err != nil {
				return st, err
			}
		}
	}
	bs := sig.blockSize
	tab := newBlockTable(sig)
	mask := uint32(len(tab.slots) - 1)
	const readChunk = 256 << 10
	if cap(*scratch) < maxLit+2*bs+readChunk {
		*scratch = make([]byte, maxLit+2*bs+readChunk)
	}
	buf := (*scratch)[:maxLit+2*bs+readChunk]
	var (
		end, p, lit int // valid data buf[:end]; window buf[p:p+bs]; pending literal buf[lit:p]
		eof         bool
		have        bool // s1, s2 hold the window's sums
		s1, s2      uint32
		next        = -1 // block expected after the last match
		runFirst    = -1 // pending run of copied blocks
		runCount    int
		strong      [strongLen]byte
	)
	flushRun := func() error {
		if runCount == 0 {
			return nil
		}
		err := sink.copyBlocks(runFirst, runCount)
		runFirst, runCount = -1, 0
		return err
	}
	flushLit := func(to int) error {
		if to == lit {
			return nil
		}
		if err := flushRun(); err != nil {
			return err
		}
		st.literal += int64(to - lit)
		err := sink.literal(buf[lit:to])
		lit = to
		return err
	}
	addCopy := func(b int, n int) error {
		if runCount > 0 && runFirst+runCount == b {
			runCount++
		} else {
			if err := flushRun(); err != nil {
				return err
			}
			runFirst, runCount = b, 1
		}
		st.matched += int64(n)
		return nil
	}
	// matchAt looks for a block equal to buf[p:p+n] whose weak checksum is w.
	matchAt := func(w uint32, n int) int {
		strongDone := false
		check := func(b int) bool {
			if sig.weak[b] != w || sig.blockLen(b) != n {
				return false
			}
			if !strongDone {
				strongSum(buf[p:p+n], strong[:])
				strongDone = true
			}
			return string(sig.strong[b*strongLen:(b+1)*strongLen]) == string(strong[:])
		}
		if next >= 0 && next < sig.blocks() && check(next) {
			return next
		}
		for j := tab.home(w); tab.slots[j] != 0; j = (j + 1) & mask {
			if b := int(tab.slots[j] - 1); check(b) {
				return b
			}
		}
		return -1
	}
	for {
		// Keep a window and one byte beyond it in the buffer, reading as needed.
		if end-p <= bs && !eof {
			if lit > 0 {
				copy(buf, buf[lit:end])
				end -= lit
				p -= lit
				lit = 0
			}
			n, err := io.ReadAtLeast(r, buf[end:], min(bs+1, len(buf)-end))
			if n > 0 {
				h.Write(buf[end : end+n])
				end += n
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				eof = true
			} else if err != nil {
				return st, err
			}
			continue
		}
		if end-p < bs {
			break
		}
		if !have {
			s1, s2 = weakSum(buf[p : p+bs])
			have = true
		}
		if b := matchAt(weakOf(s1, s2), bs); b >= 0 {
			if err := flushLit(p); err != nil {
				return st, err
			}
			if err := addCopy(b, bs); err != nil {
				return st, err
			}
			p += bs
			lit = p
			next = b + 1
			have = false
			continue
		}
		if p-lit >= maxLit {
			if err := flushLit(p); err != nil {
				return st, err
			}
		}
		if end-p == bs {
			break // at EOF: the window cannot move
		}
		out, in := uint32(buf[p]), uint32(buf[p+bs])
		s1 = s1 - out + in
		s2 = s2 - uint32(bs)*out + s1
		p++
	}
	// The tail, shorter than a block, may be the basis's last block.
	if tail := end - p; tail > 0 && tail == sig.lastLen() && tail < bs {
		t1, t2 := weakSum(buf[p:end])
		if b := matchAt(weakOf(t1, t2), tail); b >= 0 {
			if err := flushLit(p); err != nil {
				return st, err
			}
			if err := addCopy(b, tail); err != nil {
				return st, err
			}
			p = end
			lit = end
		}
	}
	for lit < end {
		if err := flushLit(min(end, lit+maxLit)); err != nil {
			return st, err
		}
	}
	return st, flushRun()
}

// blockLen is the length of block b of the basis.
func (s *signature) blockLen(b int) int {
	if b == len(s.weak)-1 {
		return s.lastLen()
	}
	return s.blockSize
}
