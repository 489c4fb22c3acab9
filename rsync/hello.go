package rsync

// hello is the sender's first message: what to do, where.
type hello struct {
	version uint64
	mode    uint64 // modeTree or modeBlob
	codecs  uint64 // codecs the sender decodes
	// modeTree
	flags   uint64 // helloDelete, helloFsync
	dest    string
	exclude []string
	// modeBlob
	cacheDir string
	hash     []byte // SHA-256 of the blob
	size     int64
	perm     uint32
	name     string   // the blob's name: its previous version is a basis
	basis    [][]byte // SHA-256 of blobs to use as basis, in order of preference
}

const (
	maxBasis   = 16
	maxNameArg = 1024
)

func encodeHello(h *hello) []byte {
	b := newMsg(msgHello, 256)
	b.uvarint(h.version)
	b.uvarint(h.mode)
	b.uvarint(h.codecs)
	switch h.mode {
	case modeTree:
		b.uvarint(h.flags)
		b.str(h.dest)
		b.uvarint(uint64(len(h.exclude)))
		for _, p := range h.exclude {
			b.str(p)
		}
	case modeBlob:
		b.str(h.cacheDir)
		b.raw(h.hash)
		b.uvarint(uint64(h.size))
		b.uvarint(uint64(h.perm))
		b.str(h.name)
		b.uvarint(uint64(len(h.basis)))
		for _, x := range h.basis {
			b.raw(x)
		}
	}
	return b
}

// decodeHello reads a hello body. A version other than ours is returned as it is (the
// caller reports it) with whatever followed left unread.
func decodeHello(body []byte) (*hello, error) {
	r := &rbuf{b: body}
	h := &hello{}
	h.version = r.uvarint()
	if r.err == nil && h.version != protocolVersion {
		return h, nil
	}
	h.mode = r.uvarint()
	h.codecs = r.uvarint()
	switch h.mode {
	case modeTree:
		h.flags = r.uvarint()
		h.dest = r.str(maxDestLen, "destination")
		n := r.uint(maxPatterns, "pattern count")
		for range n {
			if r.err != nil {
				break
			}
			h.exclude = append(h.exclude, r.str(maxPatternLen, "pattern"))
		}
	case modeBlob:
		h.cacheDir = r.str(maxDestLen, "cache directory")
		h.hash = r.fixed(shaLen)
		h.size = int64(r.uint(maxFileSize, "size"))
		h.perm = uint32(r.uint(0o7777, "mode"))
		h.name = r.str(maxNameArg, "name")
		n := r.uint(maxBasis, "basis count")
		for range n {
			h.basis = append(h.basis, r.fixed(shaLen))
		}
	default:
		r.fail("unknown mode %d", h.mode)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the hello", len(r.b))
	}
	return h, r.err
}

// reply is the receiver's answer to the hello.
type reply struct {
	version  uint64
	codecs   uint64 // codecs the receiver decodes
	identity string // names the destination directory (or blob cache) on its machine; "" unknown
	// modeBlob: blobHave or blobNeed; modeTree: treeReady or treeRefused
	state uint64
	path  string // where the blob is (blobHave); why the destination is refused (treeRefused)
}

func encodeReply(rp *reply) []byte {
	b := newMsg(msgReply, 128)
	b.uvarint(rp.version)
	b.uvarint(rp.codecs)
	b.str(rp.identity)
	b.uvarint(rp.state)
	b.str(rp.path)
	return b
}

func decodeReply(body []byte) (*reply, error) {
	r := &rbuf{b: body}
	rp := &reply{}
	rp.version = r.uvarint()
	if r.err == nil && rp.version != protocolVersion {
		return rp, nil
	}
	rp.codecs = r.uvarint()
	rp.identity = r.str(maxIdentity, "identity")
	rp.state = r.uint(treeRefused, "state")
	rp.path = r.str(maxPathLen, "path")
	return rp, r.err
}

// result is the receiver's last message.
type result struct {
	deleted uint64 // entries deleted
	written uint64 // files written
	redone  uint64 // files sent again whole after a delta did not check out
	kept    uint64 // entries the source does not have, left in place
	flags   uint64 // resultOwned
	path    string // blobs: where the blob is
}

func encodeResult(rs *result) []byte {
	b := newMsg(msgResult, 32)
	b.uvarint(rs.deleted)
	b.uvarint(rs.written)
	b.uvarint(rs.redone)
	b.uvarint(rs.kept)
	b.uvarint(rs.flags)
	b.str(rs.path)
	return b
}

func decodeResult(body []byte) (*result, error) {
	r := &rbuf{b: body}
	rs := &result{}
	rs.deleted = r.uvarint()
	rs.written = r.uvarint()
	rs.redone = r.uvarint()
	rs.kept = r.uvarint()
	rs.flags = r.uvarint()
	rs.path = r.str(maxPathLen, "path")
	return rs, r.err
}

// need is one file the receiver asks for: its manifest index and, when it has an old copy
// to use as basis, that copy's signature.
type need struct {
	index uint64
	sig   *signature // nil: send it whole
}

func encodeNeed(b *wbuf, index uint64, sig *signature) {
	b.uvarint(index)
	if sig == nil {
		b.uvarint(0)
		return
	}
	b.uvarint(uint64(sig.blockSize))
	encodeSignature(b, sig)
}

// decodeNeeds calls fn for each need of a NEED body.
func decodeNeeds(body []byte, fn func(need) error) error {
	r := &rbuf{b: body}
	for !r.empty() {
		var nd need
		nd.index = r.uvarint()
		bs := r.uint(maxBlock, "block size")
		if bs != 0 {
			nd.sig = decodeSignature(r, int(bs))
		}
		if r.err != nil {
			break
		}
		if err := fn(nd); err != nil {
			return err
		}
	}
	return r.err
}

// record is one record of a DATA body.
type record struct {
	tag   byte
	index uint64 // recFile, recSkip
	data  []byte // recLit (aliases the body), recEnd (the SHA-256)
	first uint64 // recCopy
	count uint64 // recCopy
}

const recSkip = 'S' // uvarint index: the file vanished on the sender; leave it

// decodeRecords calls fn for each record of a DATA body.
func decodeRecords(body []byte, fn func(*record) error) error {
	r := &rbuf{b: body}
	var rec record
	for !r.empty() {
		rec = record{tag: r.byte()}
		switch rec.tag {
		case recFile, recSkip:
			rec.index = r.uvarint()
		case recLit:
			rec.data = r.bytes(maxLit, "literal")
			if r.err == nil && len(rec.data) == 0 {
				r.fail("empty literal")
			}
		case recCopy:
			rec.first = r.uint(maxBlocks, "block")
			rec.count = r.uint(maxBlocks, "block count")
			if r.err == nil && rec.count == 0 {
				r.fail("copy of no blocks")
			}
		case recEnd:
			rec.data = r.fixed(shaLen)
		default:
			r.fail("unknown record %#x", rec.tag)
		}
		if r.err != nil {
			break
		}
		if err := fn(&rec); err != nil {
			return err
		}
	}
	return r.err
}
