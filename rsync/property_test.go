package rsync

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// treeGen makes and mutates random trees: files of many sizes and modes, directories,
// symlinks (inside the tree, dangling, absolute, escaping), and edits of every kind:
// content changed in place, appended, truncated, shifted; modes; deletions; a file
// becoming a directory or a symlink and back.
type treeGen struct {
	rng  *rand.Rand
	root string
	tick time.Time // distinct mtimes: the tests need not sleep
}

var fileModes = []os.FileMode{0o644, 0o600, 0o755, 0o700, 0o444, 0o640, 0o750}
var dirModes = []os.FileMode{0o755, 0o700, 0o750, 0o775}

func (g *treeGen) name() string {
	const letters = "abcdefghij_-.XYZ 0123~é"
	n := 1 + g.rng.IntN(8)
	var b strings.Builder
	for range n {
		r := []rune(letters)
		b.WriteRune(r[g.rng.IntN(len(r))])
	}
	s := b.String()
	if s == "." || s == ".." || strings.HasPrefix(s, tempPrefix) {
		return "n" + s
	}
	return s
}

func (g *treeGen) content(size int) []byte {
	b := make([]byte, size)
	switch g.rng.IntN(3) {
	case 0: // random
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
	case 1: // text-like
		for i := range b {
			b[i] = "abc def\n"[g.rng.IntN(8)]
		}
	default: // runs
		for i := 0; i < len(b); {
			c, n := byte(g.rng.Uint32()), 1+g.rng.IntN(300)
			for ; n > 0 && i < len(b); n-- {
				b[i] = c
				i++
			}
		}
	}
	return b
}

func (g *treeGen) size() int {
	switch g.rng.IntN(10) {
	case 0:
		return 0
	case 1, 2:
		return g.rng.IntN(100)
	case 3, 4, 5, 6:
		return g.rng.IntN(8 << 10)
	case 7, 8:
		return g.rng.IntN(300 << 10)
	default:
		return 300<<10 + g.rng.IntN(1<<20)
	}
}

func (g *treeGen) touch(path string) {
	g.tick = g.tick.Add(time.Second + time.Duration(g.rng.IntN(1e9)))
	os.Chtimes(path, time.Time{}, g.tick)
}

func (g *treeGen) writeFile(path string) {
	os.RemoveAll(path)
	if err := os.WriteFile(path, g.content(g.size()), 0o600); err != nil {
		panic(err)
	}
	os.Chmod(path, fileModes[g.rng.IntN(len(fileModes))])
	g.touch(path)
}

func (g *treeGen) symlink(path string) {
	os.RemoveAll(path)
	targets := []string{"a", "../x", "/etc/hostname", "sub/file", ".", "../../../../outside", "dangling-target"}
	os.Symlink(targets[g.rng.IntN(len(targets))], path)
}

// populate fills dir (depth levels deep at most) with random entries.
func (g *treeGen) populate(dir string, depth int) {
	n := g.rng.IntN(8)
	for range n {
		p := filepath.Join(dir, g.name())
		switch k := g.rng.IntN(10); {
		case k < 6:
			g.writeFile(p)
		case k < 8 && depth > 0:
			os.RemoveAll(p)
			os.Mkdir(p, 0o755)
			g.populate(p, depth-1)
			os.Chmod(p, dirModes[g.rng.IntN(len(dirModes))])
		default:
			g.symlink(p)
		}
	}
}

// entries lists the tree's paths (not the root).
func (g *treeGen) entries() []string {
	var out []string
	filepath.WalkDir(g.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != g.root {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// mutate applies a few random edits.
func (g *treeGen) mutate() {
	ents := g.entries()
	if len(ents) == 0 {
		g.populate(g.root, 2)
		return
	}
	for range 1 + g.rng.IntN(6) {
		p := ents[g.rng.IntN(len(ents))]
		fi, err := os.Lstat(p)
		if err != nil {
			continue // deleted by an earlier edit
		}
		switch k := g.rng.IntN(12); {
		case fi.Mode().IsRegular() && k < 5:
			g.edit(p, fi)
		case k == 5:
			os.RemoveAll(p)
		case k == 6 && fi.IsDir():
			g.populate(p, 1)
		case k == 7 && fi.IsDir():
			os.Chmod(p, dirModes[g.rng.IntN(len(dirModes))])
		case k == 7 && fi.Mode().IsRegular():
			os.Chmod(p, fileModes[g.rng.IntN(len(fileModes))])
		case k == 8: // becomes a directory
			os.RemoveAll(p)
			os.Mkdir(p, 0o755)
			g.populate(p, 1)
		case k == 9:
			g.symlink(p)
		case k == 10:
			g.writeFile(p)
		default:
			g.populate(g.root, 1)
		}
	}
}

// edit changes a file's content the ways that matter to deltas.
func (g *treeGen) edit(p string, fi fs.FileInfo) {
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	switch g.rng.IntN(5) {
	case 0: // overwrite a stretch
		if len(b) > 0 {
			i := g.rng.IntN(len(b))
			copy(b[i:], g.content(1+g.rng.IntN(2000)))
		}
	case 1: // insert
		i := g.rng.IntN(len(b) + 1)
		b = append(b[:i:i], append(g.content(1+g.rng.IntN(3000)), b[i:]...)...)
	case 2: // delete a stretch
		if len(b) > 0 {
			i := g.rng.IntN(len(b))
			j := min(len(b), i+1+g.rng.IntN(5000))
			b = append(b[:i:i], b[j:]...)
		}
	case 3: // append
		b = append(b, g.content(g.rng.IntN(5000))...)
	default: // same size, same content, new mtime: must stay the same
	}
	mode := fi.Mode().Perm()
	os.Chmod(p, 0o600)
	os.WriteFile(p, b, 0o600)
	os.Chmod(p, mode)
	g.touch(p)
}

// Property: after each sync, every destination is the source, entry for entry (kind,
// mode, content, symlink target, file mtime), through rounds of random mutations, with
// deltas against whatever the destination had; in a tree only godist wrote, a sync
// without Delete deletes all that the source lost.
func TestSyncRandomTrees(t *testing.T) {
	seeds := 12
	rounds := 6
	if testing.Short() {
		seeds, rounds = 3, 3
	}
	p := newPeer(t)
	ctx := context.Background()
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			g := &treeGen{rng: rand.New(rand.NewPCG(uint64(seed), 99)), root: t.TempDir(), tick: time.Unix(1.7e9, 0)}
			g.populate(g.root, 3)
			base := t.TempDir()
			dsts := []string{filepath.Join(base, "one"), filepath.Join(base, "two")}
			// The second destination starts with unrelated content, all to be replaced.
			other := &treeGen{rng: rand.New(rand.NewPCG(uint64(seed), 7)), root: dsts[1], tick: time.Unix(1.6e9, 0)}
			os.MkdirAll(dsts[1], 0o755)
			other.populate(dsts[1], 2)
			var sent, deleted int
			var matched int64
			for round := range rounds {
				// Delete only for the first round, which replaces the unrelated content:
				// after it, both trees are godist's and what it deletes unasked (what it
				// wrote) must be all the source lost.
				opts := Options{Delete: round == 0, Compress: round%2 == 0}
				st, err := Sync(ctx, g.root, []Dest{dest(p, dsts[0]), dest(p, dsts[1])}, opts)
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				sent += st[0].FilesSent + st[1].FilesSent
				deleted += st[0].Deleted + st[1].Deleted
				matched += st[0].Matched
				for i, d := range dsts {
					sameTree(t, g.root, d, nil)
					noTemps(t, d)
					if st[i].SameAs != -1 {
						t.Errorf("round %d: destination %d reported as the same place as %d", round, i, st[i].SameAs)
					}
				}
				// Again without changes: nothing is sent.
				st, err = Sync(ctx, g.root, []Dest{dest(p, dsts[0])}, opts)
				if err != nil {
					t.Fatal(err)
				}
				if st[0].FilesSent != 0 || st[0].Deleted != 0 {
					t.Errorf("round %d: a sync of an unchanged tree sent %d files, deleted %d", round, st[0].FilesSent, st[0].Deleted)
				}
				g.mutate()
			}
			if sent == 0 || deleted == 0 {
				t.Errorf("the rounds sent %d files and deleted %d entries: the generator does too little", sent, deleted)
			}
			t.Logf("%d files sent, %d entries deleted, %d bytes matched from old copies", sent, deleted, matched)
		})
	}
}
