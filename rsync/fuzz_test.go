package rsync

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func manifestBody(ents ...entry) []byte {
	var b wbuf
	prev := ""
	for i := range ents {
		encodeEntry(&b, prev, &ents[i])
		prev = ents[i].path
	}
	return b
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add(manifestBody(dir("a"), file("a/b", "xyz"), link("a/c", "../b")))
	f.Add(manifestBody(file("x", "")))
	f.Add([]byte{0, 1, 'a', 'z'})
	f.Fuzz(func(t *testing.T, body []byte) {
		r := &rbuf{b: body}
		prev := ""
		var ents []entry
		for !r.empty() && len(ents) < 1000 {
			e := decodeEntry(r, prev)
			if r.err != nil {
				break
			}
			checkPath(e.path) // must not panic
			if e.kind == entLink {
				checkLinkTarget(e.target)
			}
			ents = append(ents, e)
			prev = e.path
		}
		// What decodes re-encodes to the same entries.
		r2 := &rbuf{b: manifestBody(ents...)}
		prev = ""
		for i := range ents {
			e := decodeEntry(r2, prev)
			if r2.err != nil || e != ents[i] {
				t.Fatalf("entry %d: %+v, re-decoded %+v (%v)", i, ents[i], e, r2.err)
			}
			prev = e.path
		}
	})
}

func FuzzDecodeRecords(f *testing.F) {
	var b wbuf
	fileRecs(3, []byte("hello"))(&b)
	b.byte(recCopy)
	b.uvarint(1)
	b.uvarint(2)
	b.byte(recSkip)
	b.uvarint(9)
	f.Add([]byte(b))
	f.Add([]byte{recLit, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		decodeRecords(body, func(rec *record) error {
			if rec.tag == recLit && (len(rec.data) == 0 || len(rec.data) > maxLit) {
				t.Fatalf("literal of %d bytes", len(rec.data))
			}
			if rec.tag == recEnd && len(rec.data) != shaLen {
				t.Fatalf("end with %d bytes", len(rec.data))
			}
			return nil
		})
	})
}

func FuzzDecodeNeeds(f *testing.F) {
	sig, _ := makeSignature(bytes.NewReader(bytesRepeat("abc", 1000)), 3000)
	var b wbuf
	encodeNeed(&b, 4, sig)
	encodeNeed(&b, 5, nil)
	f.Add([]byte(b))
	f.Fuzz(func(t *testing.T, body []byte) {
		decodeNeeds(body, func(nd need) error {
			if nd.sig != nil {
				if nd.sig.blockSize < minBlock || nd.sig.blockSize > maxBlock || nd.sig.blocks() > maxBlocks ||
					len(nd.sig.strong) != nd.sig.blocks()*strongLen {
					t.Fatalf("bad signature accepted: %d blocks of %d", nd.sig.blocks(), nd.sig.blockSize)
				}
				// A hostile signature is harmless to the delta computation.
				var scratch []byte
				computeDelta(strings.NewReader("some new content for the file"), nd.sig, &memSink{sig: nd.sig}, nopHash{}, &scratch)
			}
			return nil
		})
	})
}

type nopHash struct{}

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }
func (nopHash) Sum(b []byte) []byte         { return b }
func (nopHash) Reset()                      {}
func (nopHash) Size() int                   { return 0 }
func (nopHash) BlockSize() int              { return 64 }

func FuzzDecodeHello(f *testing.F) {
	h := treeHello("/some/dest")
	h.exclude = []string{"*.o", "!keep.o"}
	f.Add(encodeHello(h)[2:])
	f.Add(encodeHello(&hello{version: 1, mode: modeBlob, hash: make([]byte, 32), basis: [][]byte{make([]byte, 32)}, name: "n"})[2:])
	f.Add(encodeReply(&reply{version: 1, identity: "boot=x"})[2:])
	f.Add(encodeResult(&result{deleted: 3, path: "/x"})[2:])
	f.Fuzz(func(t *testing.T, body []byte) {
		if h, err := decodeHello(body); err == nil && h.version == protocolVersion {
			if h.mode == modeTree {
				NewFilter(h.exclude)
			}
			if got, err := decodeHello(encodeHello(h)[2:]); err != nil || got.dest != h.dest || len(got.exclude) != len(h.exclude) {
				t.Fatalf("hello does not round-trip: %+v %v", got, err)
			}
		}
		decodeReply(body)
		decodeResult(body)
	})
}

func FuzzOpenMsg(f *testing.F) {
	f.Add(compressMsg(append([]byte{msgData, 0}, bytesRepeat("compressible ", 100)...)))
	f.Add([]byte{msgNeed, flagZstd, 0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, msg []byte) {
		var scratch []byte
		_, body, err := openMsg(msg, &scratch)
		if err == nil && len(body) > maxNeedBody {
			t.Fatalf("body of %d bytes", len(body))
		}
	})
}

func FuzzFilter(f *testing.F) {
	f.Add("*.o", "a/b.o", true)
	f.Add("a/**/b", "a/x/y/b", false)
	f.Add("[!a-z]?\\*", "Q1*", false)
	f.Add("**/**/**/**/**/**/**/**/x", strings.Repeat("a/", 30)+"y", false)
	f.Add("*a*a*a*a*a*a*a*a*b", strings.Repeat("a", 60), false)
	f.Fuzz(func(t *testing.T, pat, p string, isDir bool) {
		flt, err := NewFilter([]string{pat})
		if err != nil {
			return
		}
		flt.Match(p, isDir)
		flt.Excluded(p, isDir)
		// A plain name excludes itself at any depth.
		if pat != "" && !strings.ContainsAny(pat, "*?[\\!#/ ") && checkPath(pat) == nil {
			if !flt.Match(pat, false) || !flt.Match("d/"+pat, false) {
				t.Fatalf("%q does not match itself", pat)
			}
		}
	})
}

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../b", "/abs", "C:x", "a\\b", "a//b", ".", "é/ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkPath(p) != nil {
			return
		}
		if path.Clean(p) != p || strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") {
			t.Fatalf("unclean %q accepted", p)
		}
		if j := filepath.Join("/root", p); !strings.HasPrefix(j, "/root/") {
			t.Fatalf("%q leaves the root: %s", p, j)
		}
	})
}

func FuzzDelta(f *testing.F) {
	f.Add([]byte("the old version of the file"), []byte("the new version of the file"))
	f.Add(bytesRepeat("x", 3000), bytesRepeat("x", 3001))
	f.Fuzz(func(t *testing.T, old, next []byte) {
		got, _ := roundTrip(t, old, next)
		if !bytes.Equal(got, next) {
			t.Fatalf("delta does not rebuild the file")
		}
	})
}

// FuzzManifestWalk feeds decoded manifests to the receiver's walk over a real directory:
// whatever it accepts or refuses, nothing appears outside the destination.
func FuzzManifestWalk(f *testing.F) {
	f.Add(manifestBody(dir("a"), link("a/l", "../.."), file("a/l/x", "")))
	f.Add(manifestBody(link("l", "/"), dir("l")))
	f.Add(manifestBody(dir("a"), dir("a/b"), file("a/b/c", ""), file("d", "")))
	f.Fuzz(func(t *testing.T, body []byte) {
		base := t.TempDir()
		dst := filepath.Join(base, "dst")
		os.Mkdir(dst, 0o755)
		os.WriteFile(filepath.Join(base, "outside"), []byte("x"), 0o644)
		root, err := os.OpenRoot(dst)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		r := &treeReceiver{root: root, filter: &Filter{}, delete: true, token: newToken(),
			pending: map[uint64]*pending{}, queue: newNeedQueue()}
		r.stack = []*dirState{{path: "", root: root, children: map[string]struct{}{}}}
		r.ctx = context.Background()
		rb := &rbuf{b: body}
		for n := 0; !rb.empty() && n < 200; n++ {
			e := decodeEntry(rb, r.prev)
			if rb.err != nil || r.entry(&e) != nil {
				break
			}
		}
		r.closeStack()
		ents, _ := os.ReadDir(base)
		if len(ents) != 2 {
			t.Fatalf("entries next to the destination: %v", ents)
		}
		if b, _ := os.ReadFile(filepath.Join(base, "outside")); string(b) != "x" {
			t.Fatal("outside changed")
		}
	})
}

// markerBytes is the marker naming paths.
func markerBytes(paths []string) []byte {
	var b bytes.Buffer
	encodeMarker(&b, paths)
	return b.Bytes()
}

// FuzzParseMarker: whatever a marker file holds, parsing it gives errNotMarker or paths
// that checkPath accepts and that a marker written from them gives back.
func FuzzParseMarker(f *testing.F) {
	f.Add(markerBytes([]string{"a", "b/c", "new\nline", `back\slash`, "\xff"}))
	f.Add([]byte(markerHeader + "\n\"a\"\n`b`\n"))
	f.Add([]byte("not a marker"))
	f.Fuzz(func(t *testing.T, b []byte) {
		paths, err := parseMarker(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, errNotMarker) {
				t.Fatalf("error is not errNotMarker: %v", err)
			}
			return
		}
		var list []string
		for p := range paths {
			if err := checkPath(p); err != nil {
				t.Fatalf("marker gave %q: %v", p, err)
			}
			list = append(list, p)
		}
		again, err := parseMarker(bytes.NewReader(markerBytes(list)))
		if err != nil || len(again) != len(paths) {
			t.Fatalf("round trip: %v, %d of %d paths", err, len(again), len(paths))
		}
		for p := range paths {
			if _, ok := again[p]; !ok {
				t.Fatalf("round trip lost %q", p)
			}
		}
	})
}

// FuzzMarkerPath: every path a manifest may carry survives the marker.
func FuzzMarkerPath(f *testing.F) {
	for _, s := range []string{"a", "a\nb", "\"quoted\"", `c:\d`, "\x00", "\xff\xfe", "a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkPath(p) != nil {
			return
		}
		got, err := parseMarker(bytes.NewReader(markerBytes([]string{p})))
		if _, ok := got[p]; err != nil || !ok || len(got) != 1 {
			t.Fatalf("%q: %v %v", p, got, err)
		}
	})
}

// FuzzResolveDest: in a directory without symlinks, a relative destination climbs out
// exactly when its clean form starts with "..", and resolves to its lexical place.
func FuzzResolveDest(f *testing.F) {
	for _, s := range []string{"a", "..", "../..", "a/../../b", "a/..", "./a//b/", "/abs/../x", "a/b/../../.."} {
		f.Add(s)
	}
	cwd, err := filepath.EvalSymlinks(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if p == "" || strings.IndexByte(p, 0) >= 0 {
			return
		}
		got, climbs, err := resolveDest(cwd, p)
		if err != nil {
			return // a name too long, say
		}
		want := filepath.Join(cwd, p)
		if filepath.IsAbs(p) {
			want = filepath.Clean(p)
		}
		if got != want {
			t.Fatalf("%q resolves to %q, want %q", p, got, want)
		}
		c := filepath.Clean(p)
		wantClimbs := !filepath.IsAbs(p) && (c == ".." || strings.HasPrefix(c, "../"))
		if climbs != wantClimbs {
			t.Fatalf("%q: climbs %v, want %v", p, climbs, wantClimbs)
		}
	})
}
