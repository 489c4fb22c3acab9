package rsync

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// memSink applies a delta in memory against a basis.
type memSink struct {
	basis []byte
	sig   *signature
	out   []byte
	err   error
}

func (m *memSink) literal(p []byte) error { m.out = append(m.out, p...); return nil }
func (m *memSink) copyBlocks(first, count int) error {
	if first+count > m.sig.blocks() {
		m.err = errProto
		return m.err
	}
	off := first * m.sig.blockSize
	end := min(off+count*m.sig.blockSize, len(m.basis))
	m.out = append(m.out, m.basis[off:end]...)
	return nil
}

// roundTrip computes the delta of next against old's signature and applies it.
func roundTrip(t testing.TB, old, next []byte) ([]byte, deltaStats) {
	sig, err := makeSignature(bytes.NewReader(old), int64(len(old)))
	if err != nil {
		t.Fatal(err)
	}
	// Through the wire encoding, as the sender gets it.
	var b wbuf
	encodeSignature(&b, sig)
	r := &rbuf{b: b}
	sig2 := decodeSignature(r, sig.blockSize)
	if r.err != nil || len(r.b) != 0 {
		t.Fatalf("signature round trip: %v", r.err)
	}
	sink := &memSink{basis: old, sig: sig2}
	h := sha256.New()
	var scratch []byte
	st, err := computeDelta(bytes.NewReader(next), sig2, sink, h, &scratch)
	if err != nil || sink.err != nil {
		t.Fatal(err, sink.err)
	}
	if want := sha256.Sum256(next); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("hash of what was read differs")
	}
	return sink.out, st
}

func TestDeltaRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	base := random(200000)
	cases := map[string][2][]byte{
		"empty to empty":      {nil, nil},
		"empty to data":       {nil, random(5000)},
		"data to empty":       {random(5000), nil},
		"same":                {base, base},
		"tiny":                {[]byte("a"), []byte("b")},
		"insert at start":     {base, append([]byte("xyz"), base...)},
		"append":              {base, append(slices.Clone(base), random(777)...)},
		"truncate":            {base, base[:123456]},
		"delete middle":       {base, append(slices.Clone(base[:50000]), base[60001:]...)},
		"blocks reordered":    {base, append(slices.Clone(base[100000:]), base[:100000]...)},
		"zeros":               {make([]byte, 100000), make([]byte, 100003)},
		"short last block":    {base[:100001], base[:100001]},
		"repeated blocks":     {bytes.Repeat([]byte("abcdefgh"), 20000), bytes.Repeat([]byte("abcdefgh"), 20001)},
		"unrelated":           {base, random(200000)},
		"larger than window":  {random(1 << 20), random(1 << 20)},
		"text with one edit":  {[]byte(strings.Repeat("line of text\n", 50000)), []byte(strings.Repeat("line of text\n", 25000) + "changed\n" + strings.Repeat("line of text\n", 25000))},
		"old shorter than bs": {[]byte("short"), []byte("short and longer")},
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := cases[n]
		got, st := roundTrip(t, c[0], c[1])
		if !bytes.Equal(got, c[1]) {
			t.Errorf("%s: delta does not rebuild the file (%d bytes, want %d)", n, len(got), len(c[1]))
			continue
		}
		if st.literal+st.matched != int64(len(c[1])) {
			t.Errorf("%s: literal %d + matched %d != %d", n, st.literal, st.matched, len(c[1]))
		}
		switch n {
		case "same", "short last block":
			if st.literal > int64(blockSizeFor(int64(len(c[0])))) {
				t.Errorf("%s: %d literal bytes", n, st.literal)
			}
		case "insert at start", "append", "delete middle", "blocks reordered":
			if st.literal > 2*int64(blockSizeFor(int64(len(c[0]))))+1000 {
				t.Errorf("%s: %d literal bytes", n, st.literal)
			}
		}
	}
}

func TestBlockSize(t *testing.T) {
	for size, want := range map[int64]int{0: minBlock, 1000: minBlock, 1 << 20: 1024, 5 << 20: 2296, 1 << 40: maxBlock} {
		if got := blockSizeFor(size); got != want {
			t.Errorf("blockSizeFor(%d) = %d, want %d", size, got, want)
		}
	}
	// The signature of any size stays under its bound.
	for _, size := range []int64{1 << 30, 1 << 36, 1 << 40, 1 << 44} {
		bs := int64(blockSizeFor(size))
		if n := (size + bs - 1) / bs; n*sigEntry > maxSigBytes && bs < maxBlock {
			t.Errorf("size %d: %d blocks of %d", size, n, bs)
		}
	}
}

// The rolling checksum rolled equals the checksum computed afresh.
func TestRollingChecksum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	const n = 700
	s1, s2 := weakSum(data[:n])
	for p := 0; p+n < len(data); p++ {
		out, in := uint32(data[p]), uint32(data[p+n])
		s1 = s1 - out + in
		s2 = s2 - n*out + s1
		f1, f2 := weakSum(data[p+1 : p+1+n])
		if weakOf(s1, s2) != weakOf(f1, f2) {
			t.Fatalf("at %d: rolled %x, fresh %x", p+1, weakOf(s1, s2), weakOf(f1, f2))
		}
	}
}
