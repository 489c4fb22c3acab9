package runner

import (
	"context"
	"encoding/json"
	"github.com/godist/godist/internal/filesum"
	"os"
	"path/filepath"
	"sync"

	"github.com/godist/godist/gobuild"
	"github.com/godist/godist/gotest"
)

// listCache keeps what test binaries list (-test.list .), by the sha256 of the binary, in
// files under dir: a binary that did not change is not run again just to list it (its
// TestMain may be costly). A binary lists the same tests whatever the run, so the key is
// its content alone. Without a dir, nothing is kept.
type listCache struct {
	dir string
}

// listCacheVersion changes when the files' format does.
const listCacheVersion = 1

type listEntry struct {
	Version int         `json:"version"`
	List    gotest.List `json:"list"`
}

// get returns the list of b, from the cache or by calling list (whose good result is kept).
func (c listCache) get(ctx context.Context, b gobuild.Binary, list func() (gotest.List, error)) (gotest.List, error) {
	if c.dir == "" {
		return list()
	}
	sum, err := binarySum(b.Path)
	if err != nil {
		return list()
	}
	file := filepath.Join(c.dir, sum[:2], sum+".json")
	if data, err := os.ReadFile(file); err == nil {
		var e listEntry
		if json.Unmarshal(data, &e) == nil && e.Version == listCacheVersion {
			return e.List, nil
		}
	}
	l, err := list()
	if err != nil {
		return l, err
	}
	if data, err := json.Marshal(listEntry{Version: listCacheVersion, List: l}); err == nil {
		writeFileAtomic(file, data)
	}
	return l, nil
}

// writeFileAtomic writes data to file by a rename, so that a concurrent reader never sees
// it half written; errors leave no file (the cache is only a cache).
func writeFileAtomic(file string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".list-*")
	if err != nil {
		return
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

// sums remembers the sha256 of binaries by path, and by file (inode, size and time: the
// hard links of one binary in the kept, speculative and own directories are one file), so
// that nothing is hashed twice in a run.
var sums sync.Map // path, or fileKey -> string

type fileKey struct {
	ino, size, mtime int64
}

// binarySum names the content of the run's binary at path (its Go build ID, else its
// sha256), once.
func binarySum(path string) (string, error) {
	if v, ok := sums.Load(path); ok {
		return v.(string), nil
	}
	var fk fileKey
	if fi, err := os.Stat(path); err == nil {
		if ino := filesum.Inode(fi); ino != 0 {
			fk = fileKey{int64(ino), fi.Size(), fi.ModTime().UnixNano()}
			if v, ok := sums.Load(fk); ok {
				sums.Store(path, v)
				return v.(string), nil
			}
		}
	}
	sum, err := filesum.ContentID(path)
	if err == nil {
		sums.Store(path, sum)
		if fk != (fileKey{}) {
			sums.Store(fk, sum)
		}
	}
	return sum, err
}
