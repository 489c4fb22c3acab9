package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"

	"github.com/godist/godist/gobuild"
)

// Resolving beside the build. go list costs a warm run a go command's start-up and a load
// of every package before go test -c may start. So a run that resolved the same patterns
// with the same flags before starts from what that run resolved, at once, and go list runs
// beside it; the first binary go reports, or the build's end, waits for go list's answer.
// Should the packages differ (a package or test file added, an import broken), the run
// is abandoned before anything of it was written, and run again from go list's answer.

// errStaleResolve abandons a run that started from a resolve record go list disagrees with.
var errStaleResolve = errors.New("the packages changed since the last run")

const resolveRecordVersion = 1

type resolveRecord struct {
	Version  int               `json:"version"`
	Key      string            `json:"key"`
	Packages []gobuild.Package `json:"packages"`
}

// resolveKey names what decides go list's answer besides the files: the directory, the
// patterns, the build flags and the go command's environment.
func resolveKey(cfg Config, bopts gobuild.Options) string {
	dir, _ := filepath.Abs(cfg.Dir)
	h := sha256.New()
	env := []string{}
	for _, k := range []string{"GOFLAGS", "GOOS", "GOARCH", "GOWORK", "GO111MODULE", "CGO_ENABLED", "GOEXPERIMENT", "GOTOOLCHAIN", "GOPATH", "GOROOT", "PATH"} {
		env = append(env, k+"="+os.Getenv(k))
	}
	fmt.Fprintf(h, "%d\x00%s\x00%q\x00%q\x00%s\x00%v\x00%v\x00%s\x00%q\x00%s", resolveRecordVersion, dir, cfg.Patterns, bopts.Flags,
		bopts.Tags, bopts.Race, bopts.Cover, bopts.Vet, env, runtime.Version())
	return hex.EncodeToString(h.Sum(nil))
}

func (r *runner) resolveRecordPath(key string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "godist", "resolve", key[:32]+".json")
}

// loadResolveRecord is what the last run of the same resolve found, nil if none.
func (r *runner) loadResolveRecord(key string) []gobuild.Package {
	path := r.resolveRecordPath(key)
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var rec resolveRecord
	if json.Unmarshal(data, &rec) != nil || rec.Version != resolveRecordVersion || rec.Key != key || len(rec.Packages) == 0 {
		return nil
	}
	return rec.Packages
}

func (r *runner) saveResolveRecord(key string, pkgs []gobuild.Package) {
	path := r.resolveRecordPath(key)
	if path == "" || len(pkgs) == 0 {
		return
	}
	data, err := json.Marshal(resolveRecord{Version: resolveRecordVersion, Key: key, Packages: pkgs})
	if err == nil {
		writeFileAtomic(path, data)
	}
}

// resolveCheck is go list's answer to a run that started from a record.
type resolveCheck struct {
	once    sync.Once
	ch      chan resolved
	started []gobuild.Package // what the run started from
	ok      bool
	got     resolved
	abandon context.CancelFunc // stops the run's build when the answer is no
}

type resolved struct {
	pkgs []gobuild.Package
	err  error
}

// confirmed waits for go list's answer and reports whether it is what the run started
// from; if not, the run's build is stopped.
func (c *resolveCheck) confirmed() bool {
	if c == nil {
		return true
	}
	c.once.Do(func() {
		c.got = <-c.ch
		c.ok = c.got.err == nil && reflect.DeepEqual(c.got.pkgs, c.started)
		if !c.ok {
			c.abandon()
		}
	})
	return c.ok
}

// canStartFromRecord says whether the run takes the pipeline (one platform, no shard, no
// -list), the only path that checks go list's answer before it writes anything.
func (r *runner) canStartFromRecord() bool {
	c := r.cfg
	return len(r.platforms()) == 1 && c.ShardN == 0 && c.List == "" && !c.LastFailed
}
