// Package resultcache keeps the results of test packages that passed, to be reused while
// nothing they depend on has changed, as go test's cache does: keyed by the test binary's
// content and the cacheable flags, and valid while the environment variables and files
// the tests read (their -test.testlogfile) are unchanged. Unlike go test's, file inputs are
// compared by content, not modification time, so a fresh checkout still hits; and the
// cache is a plain directory that CI can save and restore.
//
// Layout: DIR/godist-results (a marker: the directory is godist's), DIR/XX/KEY.res, each
// entry one zstd-compressed CBOR document (RFC 8949, fxamacker/cbor: a package's thousands
// of events decode several times faster than from JSON), written by a rename. Only files of that shape
// are ever removed (Trim, Clear).
package resultcache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/godist/godist/gotest"
)

// Version of the entry format; entries of another version are misses.
const Version = 1

// DefaultMax is the size the cache is trimmed to after a run unless told otherwise.
const DefaultMax = 1 << 30

const (
	marker = "godist-results"
	suffix = ".res"
)

// Input is one thing a package's tests read: Op "env" (Name is the variable), "file"
// (content), "dir" (its listing), "stat" (existence, type, size). Sum is what it was.
type Input struct {
	Op   string `json:"op"`
	Name string `json:"name"`
	Sum  string `json:"sum"`
}

// Entry is a package's recorded result.
type Entry struct {
	Version int    `json:"version"`
	Package string `json:"package"`
	// Worker is the gateway it ran on; Remote says that gateway was not this machine
	// (its env inputs were read there).
	Worker string  `json:"worker"`
	Remote bool    `json:"remote,omitempty"`
	Inputs []Input `json:"inputs"`
	// Events are the package's events as the run wrote them, from its first to the last
	// before its end (the end, "PASS", coverage and "ok" lines, is written anew).
	Events []gotest.Event `json:"events"`
	// Cover is go test's "coverage: N% of statements" text, CoverFiles the counter and
	// meta-data files of its processes (-test.gocoverdir), to merge into -coverprofile.
	Cover      string            `json:"cover,omitempty"`
	CoverFiles map[string][]byte `json:"cover_files,omitempty"`
	Elapsed    float64           `json:"elapsed"`
	Saved      time.Time         `json:"saved"`

	rawEvents cbor.RawMessage // Events as read, until LoadEvents decodes them
}

// LoadEvents decodes the events of an entry that Get returned (checking an entry's inputs
// does not need them, and a package's events can be many).
func (e *Entry) LoadEvents() error {
	if e.rawEvents == nil {
		return nil
	}
	var evs []gotest.Event
	if err := cborDec.Unmarshal(e.rawEvents, &evs); err != nil {
		return fmt.Errorf("result cache entry: %v", err)
	}
	e.Events, e.rawEvents = evs, nil
	return nil
}

// Cache is a result cache directory.
type Cache struct {
	dir string
}

// Open returns the cache at dir, creating it (and its marker) if need be. It refuses a
// directory that has files and no marker: something else's, which Trim and Clear would
// otherwise walk.
func Open(dir string) (*Cache, error) {
	if dir == "" {
		return nil, errors.New("result cache: no directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("result cache %s: %v", dir, err)
	}
	if _, err := os.Stat(filepath.Join(abs, marker)); err == nil {
		return &Cache{dir: abs}, nil
	}
	ents, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("result cache %s: %v", dir, err)
	case len(ents) > 0:
		return nil, fmt.Errorf("result cache %s: the directory is not empty and not godist's (no %s file in it); give an empty or new directory", dir, marker)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("result cache %s: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(abs, marker), []byte("godist test result cache; `godist cache clean` empties it\n"), 0o644); err != nil {
		return nil, fmt.Errorf("result cache %s: %v", dir, err)
	}
	return &Cache{dir: abs}, nil
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Key is the key of a package's result: the hash of its parts (binary sum, flags, ...).
func Key(parts ...string) string {
	h := sha256.New()
	fmt.Fprintf(h, "godist result v%d\n", Version)
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Cache) file(key string) string {
	return filepath.Join(c.dir, key[:2], key+suffix)
}

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	decoder, _ = zstd.NewReader(nil)
	// cborDec bounds what a damaged or hostile entry can make the decoder allocate.
	cborDec, _ = cbor.DecOptions{MaxArrayElements: 1 << 24, MaxMapPairs: 1 << 24, MaxNestedLevels: 16}.DecMode()
)

// Get returns the entry under key, if there is a readable one of this version. A hit
// refreshes the entry's time, so that Trim removes what was least recently used.
func (c *Cache) Get(key string) (*Entry, bool) {
	if !validKey(key) {
		return nil, false
	}
	f := c.file(key)
	data, err := os.ReadFile(f)
	if err != nil {
		return nil, false
	}
	e, err := Decode(data)
	if err != nil {
		return nil, false
	}
	now := time.Now()
	os.Chtimes(f, now, now)
	return e, true
}

// Decode reads an entry as Put writes it; its events are decoded by LoadEvents.
func Decode(data []byte) (*Entry, error) {
	raw, err := decoder.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("result cache entry: %v", err)
	}
	type plain Entry // without its methods
	var doc struct {
		plain
		Events cbor.RawMessage `json:"events"`
	}
	if err := cborDec.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("result cache entry: %v", err)
	}
	e := Entry(doc.plain)
	if e.Version != Version {
		return nil, fmt.Errorf("result cache entry: version %d, want %d", e.Version, Version)
	}
	e.rawEvents = doc.Events
	return &e, nil
}

// Put stores e under key, atomically (a reader sees the old entry or the new one).
func (c *Cache) Put(key string, e *Entry) error {
	if !validKey(key) {
		return fmt.Errorf("result cache: bad key %q", key)
	}
	e.Version = Version
	if e.Saved.IsZero() {
		e.Saved = time.Now()
	}
	// Times are written anew on replay: not kept.
	evs := make([]gotest.Event, len(e.Events))
	for i, ev := range e.Events {
		ev.Time = nil
		evs[i] = ev
	}
	stored := *e
	stored.Events = evs
	raw, err := cbor.Marshal(&stored)
	if err != nil {
		return err
	}
	data := encoder.EncodeAll(raw, nil)
	f := c.file(key)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f), ".tmp-*"+suffix)
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), f); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func validKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	_, err := hex.DecodeString(k)
	return err == nil
}

// Stats is what a cache holds.
type Stats struct {
	Entries int
	Bytes   int64
}

type ownFile struct {
	path string
	size int64
	mod  time.Time
}

// own lists the files of the cache that are godist's: DIR/XX/KEY.res, and temporary files
// of a Put (.tmp-*.res) older than an hour (a Put that died).
func (c *Cache) own() ([]ownFile, error) {
	var out []ownFile
	subs, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if !s.IsDir() || len(s.Name()) != 2 || !isHex(s.Name()) {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(c.dir, s.Name()))
		if err != nil {
			continue
		}
		for _, e := range ents {
			name := e.Name()
			if !e.Type().IsRegular() || !strings.HasSuffix(name, suffix) {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			key := strings.TrimSuffix(name, suffix)
			isEntry := validKey(key) && key[:2] == s.Name()
			isStaleTmp := strings.HasPrefix(name, ".tmp-") && time.Since(info.ModTime()) > time.Hour
			if isEntry || isStaleTmp {
				out = append(out, ownFile{filepath.Join(c.dir, s.Name(), name), info.Size(), info.ModTime()})
			}
		}
	}
	return out, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// Stat counts the entries and their size.
func (c *Cache) Stat() (Stats, error) {
	files, err := c.own()
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	for _, f := range files {
		s.Entries++
		s.Bytes += f.size
	}
	return s, nil
}

// Trim removes the least recently used entries until the cache holds at most max bytes;
// it returns what it removed. It removes nothing but godist's own entry files.
func (c *Cache) Trim(max int64) (removed Stats, err error) {
	files, err := c.own()
	if err != nil {
		return removed, err
	}
	var total int64
	for _, f := range files {
		total += f.size
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	for _, f := range files {
		if total <= max {
			break
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		total -= f.size
		removed.Entries++
		removed.Bytes += f.size
		os.Remove(filepath.Dir(f.path)) // only if it is empty now
	}
	return removed, nil
}

// Clear removes every entry (only godist's own files, and the directories they leave
// empty); the directory and its marker stay.
func (c *Cache) Clear() (Stats, error) {
	return c.Trim(-1)
}
