package rsync

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawSender is a hand-made sender that says whatever a test wants.
type rawSender struct {
	t *testing.T
	c *conn
}

func newRawSender(t *testing.T, p *peer, h *hello) *rawSender {
	t.Helper()
	ctx := context.Background()
	ch, err := p.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	s := &rawSender{t: t, c: &conn{ch: ch}}
	if err := s.c.sendRaw(ctx, encodeHello(h)); err != nil {
		t.Fatal(err)
	}
	return s
}

// manifest sends entries as they are (no checks) and the end count.
func (s *rawSender) manifest(ents []entry) {
	msg := newMsg(msgManifest, 1024)
	prev := ""
	for i := range ents {
		encodeEntry(&msg, prev, &ents[i])
		prev = ents[i].path
	}
	ctx := context.Background()
	if len(ents) > 0 {
		s.c.sendRaw(ctx, msg)
	}
	end := newMsg(msgManifestEnd, 8)
	end.uvarint(uint64(len(ents)))
	s.c.sendRaw(ctx, end)
}

// needs reads messages until the receiver asked for n files, and returns their indices;
// it stops early at the receiver's end.
func (s *rawSender) needs(n int) []uint64 {
	var got []uint64
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(got) < n {
		typ, body, err := s.c.recv(ctx)
		if err != nil {
			return got
		}
		if typ == msgNeed {
			decodeNeeds(body, func(nd need) error { got = append(got, nd.index); return nil })
		}
	}
	return got
}

func (s *rawSender) data(recs func(b *wbuf)) {
	msg := newMsg(msgData, 1024)
	recs(&msg)
	s.c.sendRaw(context.Background(), msg)
}

func fileRecs(index uint64, content []byte) func(b *wbuf) {
	return func(b *wbuf) {
		b.byte(recFile)
		b.uvarint(index)
		if len(content) > 0 {
			b.byte(recLit)
			b.bytes(content)
		}
		sum := sha256.Sum256(content)
		b.byte(recEnd)
		b.raw(sum[:])
	}
}

// sandbox is a directory holding the destination and, next to it, a directory "outside"
// with a file, which nothing may touch.
type sandbox struct {
	base, dst, outside string
	before             map[string]string
}

func newSandbox(t *testing.T) *sandbox {
	base := t.TempDir()
	s := &sandbox{base: base, dst: filepath.Join(base, "dst"), outside: filepath.Join(base, "outside")}
	writeFile(t, filepath.Join(s.outside, "precious"), []byte("keep me"), 0o644)
	os.MkdirAll(s.dst, 0o755)
	s.before = snapshot(t, base, func(rel string) bool { return rel == "dst" })
	return s
}

// check fails t if anything outside the destination changed.
func (s *sandbox) check(t *testing.T) {
	t.Helper()
	after := snapshot(t, s.base, func(rel string) bool { return rel == "dst" })
	if len(after) != len(s.before) {
		t.Errorf("entries outside the destination: before %v, after %v", keys(s.before), keys(after))
	}
	for k, v := range s.before {
		if after[k] != v {
			t.Errorf("%s changed outside the destination", k)
		}
	}
	if _, err := os.Stat("/evil"); err == nil {
		t.Errorf("/evil exists")
	}
	noTemps(t, s.dst)
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func file(path, content string) entry {
	return entry{path: path, kind: entFile, mode: 0o644, size: int64(len(content)), mtime: 1e18}
}
func dir(path string) entry { return entry{path: path, kind: entDir, mode: 0o755} }
func link(path, target string) entry {
	return entry{path: path, kind: entLink, mode: 0o777, target: target}
}
func treeHello(dst string) *hello {
	return &hello{version: protocolVersion, mode: modeTree, codecs: codecsAll, flags: helloDelete, dest: dst}
}
func evilContent(index uint64) []byte { return []byte("evil") }

// The receiver refuses every hostile manifest a sender may make up, and nothing is
// written outside the destination.
func TestHostileManifests(t *testing.T) {
	rel := func(s *sandbox) string { r, _ := filepath.Rel(s.dst, filepath.Join(s.outside, "precious")); return r }
	cases := []struct {
		name  string
		ents  func(s *sandbox) []entry
		setup func(t *testing.T, s *sandbox) // the destination's state before
	}{
		{"absolute", func(s *sandbox) []entry { return []entry{file("/evil", "x")} }, nil},
		{"absolute outside", func(s *sandbox) []entry { return []entry{file(filepath.Join(s.outside, "precious"), "x")} }, nil},
		{"dotdot", func(s *sandbox) []entry { return []entry{file("../outside/precious", "x")} }, nil},
		{"dotdot inside", func(s *sandbox) []entry { return []entry{dir("a"), file("a/../../evil", "x")} }, nil},
		{"dotdot to outside", func(s *sandbox) []entry { return []entry{file(rel(s), "x")} }, nil},
		{"lone dotdot", func(s *sandbox) []entry { return []entry{dir("..")} }, nil},
		{"dot", func(s *sandbox) []entry { return []entry{dir(".")} }, nil},
		{"dot component", func(s *sandbox) []entry { return []entry{dir("a"), file("a/./b", "x")} }, nil},
		{"empty component", func(s *sandbox) []entry { return []entry{dir("a"), file("a//b", "x")} }, nil},
		{"trailing slash", func(s *sandbox) []entry { return []entry{dir("a/")} }, nil},
		{"empty path", func(s *sandbox) []entry { return []entry{file("", "x")} }, nil},
		{"NUL", func(s *sandbox) []entry { return []entry{file("evil\x00/../../x", "x")} }, nil},
		{"sync marker", func(s *sandbox) []entry { return []entry{file(markerName, "x")} }, nil},
		{"reserved temp name", func(s *sandbox) []entry { return []entry{file(tempPrefix+"1.a.b.c", "x")} }, nil},
		{"component too long", func(s *sandbox) []entry { return []entry{file(strings.Repeat("x", 256), "x")} }, nil},
		{"path too long", func(s *sandbox) []entry {
			return []entry{file(strings.Repeat("abcdefgh/", 460)+"x", "x")}
		}, nil},
		{"through a symlink made by this sync", func(s *sandbox) []entry {
			return []entry{link("l", s.outside), file("l/evil", "x")}
		}, nil},
		{"through a relative symlink made by this sync", func(s *sandbox) []entry {
			return []entry{link("l", "../outside"), file("l/precious", "x")}
		}, nil},
		{"through a symlink to a directory of the tree", func(s *sandbox) []entry {
			return []entry{dir("a"), link("l", "a"), file("l/x", "x")}
		}, nil},
		{"through a file", func(s *sandbox) []entry { return []entry{file("f", "x"), file("f/evil", "x")} }, nil},
		{"undeclared parent", func(s *sandbox) []entry { return []entry{file("nodir/evil", "x")} }, nil},
		{"undeclared parent that is an existing symlink", func(s *sandbox) []entry {
			return []entry{file("l/evil", "x")}
		}, func(t *testing.T, s *sandbox) { os.Symlink(s.outside, filepath.Join(s.dst, "l")) }},
		{"duplicate", func(s *sandbox) []entry { return []entry{file("a", "x"), file("a", "y")} }, nil},
		{"dir then symlink of the same name", func(s *sandbox) []entry {
			return []entry{dir("a"), link("a", s.outside), file("a/evil", "x")}
		}, nil},
		{"out of order", func(s *sandbox) []entry { return []entry{file("b", "x"), file("a", "y")} }, nil},
		{"out of order across directories", func(s *sandbox) []entry {
			return []entry{dir("a"), file("a/x", "x"), file("b", "x"), file("a/y", "x")}
		}, nil},
		{"symlink target with NUL", func(s *sandbox) []entry { return []entry{link("l", "a\x00b")} }, nil},
		{"empty symlink target", func(s *sandbox) []entry { return []entry{link("l", "")} }, nil},
		{"unknown kind", func(s *sandbox) []entry { return []entry{{path: "x", kind: 'z'}} }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t)
			s := newSandbox(t)
			if tc.setup != nil {
				tc.setup(t, s)
				s.before = snapshot(t, s.base, func(rel string) bool { return rel == "dst" })
			}
			ents := tc.ents(s)
			rs := newRawSender(t, p, treeHello(s.dst))
			rs.manifest(ents)
			// Answer whatever it needs with evil content.
			for _, i := range rs.needs(len(ents)) {
				rs.data(fileRecs(i, evilContent(i)))
			}
			errs := p.receiverErrs(1)
			if errs[0] == nil {
				t.Fatalf("receiver accepted %+v", ents)
			}
			t.Logf("refused: %v", errs[0])
			s.check(t)
		})
	}
}

// Hostile but harmless: the destination has symlinks where the manifest has directories
// and files; the receiver replaces the links and writes nothing through them.
func TestHostileDestinationSymlinks(t *testing.T) {
	p := newPeer(t)
	s := newSandbox(t)
	os.Symlink(s.outside, filepath.Join(s.dst, "d"))
	os.Symlink(filepath.Join(s.outside, "precious"), filepath.Join(s.dst, "f"))
	os.Symlink("../outside", filepath.Join(s.dst, "r"))
	s.before = snapshot(t, s.base, func(rel string) bool { return rel == "dst" })
	ents := []entry{dir("d"), file("d/precious", "evil"), file("f", "evil"), dir("r"), file("r/precious", "evil")}
	rs := newRawSender(t, p, treeHello(s.dst))
	rs.manifest(ents)
	for _, i := range rs.needs(3) {
		rs.data(fileRecs(i, []byte("evil")))
	}
	if errs := p.receiverErrs(1); errs[0] != nil {
		t.Fatal(errs[0])
	}
	s.check(t)
	for _, f := range []string{"d/precious", "f", "r/precious"} {
		fi, err := os.Lstat(filepath.Join(s.dst, f))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v %v, want a regular file in the destination", f, fi, err)
		}
	}
}

// Hostile data records: each is refused, and leaves no file in place and no temp file.
func TestHostileData(t *testing.T) {
	sum := func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	cases := []struct {
		name string
		recs func(b *wbuf)
	}{
		{"not asked for", func(b *wbuf) { fileRecs(7, []byte("x"))(b) }},
		{"literal outside a file", func(b *wbuf) { b.byte(recLit); b.bytes([]byte("x")) }},
		{"end outside a file", func(b *wbuf) { b.byte(recEnd); b.raw(sum(nil)) }},
		{"copy without a basis", func(b *wbuf) { b.byte(recFile); b.uvarint(0); b.byte(recCopy); b.uvarint(0); b.uvarint(1) }},
		{"wrong checksum", func(b *wbuf) {
			b.byte(recFile)
			b.uvarint(0)
			b.byte(recLit)
			b.bytes([]byte("evil"))
			b.byte(recEnd)
			b.raw(sum([]byte("good")))
		}},
		{"file inside a file", func(b *wbuf) { b.byte(recFile); b.uvarint(0); b.byte(recFile); b.uvarint(0) }},
		{"unknown record", func(b *wbuf) { b.byte('?') }},
		{"truncated literal", func(b *wbuf) { b.byte(recFile); b.uvarint(0); b.byte(recLit); b.uvarint(100); b.raw([]byte("short")) }},
		{"huge literal length", func(b *wbuf) { b.byte(recFile); b.uvarint(0); b.byte(recLit); b.uvarint(1 << 40) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t)
			s := newSandbox(t)
			rs := newRawSender(t, p, treeHello(s.dst))
			rs.manifest([]entry{file("a", "good")})
			rs.needs(1)
			rs.data(tc.recs)
			errs := p.receiverErrs(1)
			if errs[0] == nil {
				t.Fatal("receiver accepted it")
			}
			t.Logf("refused: %v", errs[0])
			if _, err := os.Lstat(filepath.Join(s.dst, "a")); err == nil {
				t.Errorf("a file is in place")
			}
			s.check(t)
		})
	}
}

// A copy that reaches past the basis is refused; so is a basis index beyond it.
func TestHostileBlockCopies(t *testing.T) {
	p := newPeer(t)
	s := newSandbox(t)
	old := bytesRepeat("0123456789abcdef", 4096) // 64 KiB: a basis of several blocks
	writeFile(t, filepath.Join(s.dst, "a"), old, 0o644)
	s.before = snapshot(t, s.base, func(rel string) bool { return rel == "dst" })
	rs := newRawSender(t, p, treeHello(s.dst))
	rs.manifest([]entry{file("a", "new")})
	rs.needs(1)
	rs.data(func(b *wbuf) { b.byte(recFile); b.uvarint(0); b.byte(recCopy); b.uvarint(1); b.uvarint(1 << 20) })
	if errs := p.receiverErrs(1); errs[0] == nil {
		t.Fatal("receiver accepted a copy past the basis")
	}
	s.check(t)
	if b, _ := os.ReadFile(filepath.Join(s.dst, "a")); string(b) != string(old) {
		t.Errorf("the old file was changed")
	}
}

// Hellos that are not: bad versions, modes, lengths.
func TestHostileHellos(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"next version", func() []byte { h := treeHello("x"); h.version = protocolVersion + 1; return encodeHello(h) }()},
		{"unknown mode", func() []byte { h := treeHello("x"); h.mode = 9; return encodeHello(h) }()},
		{"trailing bytes", append(encodeHello(treeHello("x")), 0)},
		{"not a hello", []byte{msgData, 0}},
		{"empty", []byte{}},
		{"bad flags", []byte{msgHello, 0x80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t)
			ch, err := p.open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ch.Send(context.Background(), tc.msg)
			if errs := p.receiverErrs(1); errs[0] == nil {
				t.Fatal("receiver accepted it")
			} else {
				t.Logf("refused: %v", errs[0])
			}
		})
	}
}
