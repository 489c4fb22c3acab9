package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/godist/godist/gobuild"
)

// Building beside the first resolve. A run with no resolve record (the first in a checkout,
// or after its patterns or flags changed) would wait for go list before go test -c could
// start, and each loads every package: on a suite of a few tenths of a second that is a
// tenth of the run. So such a run starts go test -c on the patterns at once, beside go
// list, into the binary directory of the module it guesses (the nearest go.mod above the
// directory), and the pipeline's build takes that go command over once go list has
// answered (gobuild.Early). Nothing of it is seen before: its events and binaries reach
// the run through the build, which has the packages by then. Where the guess was wrong (a
// workspace, another module's packages), the packages do not fit one go command (two
// binaries of one name), or the run takes another path, the early go command is stopped
// and the run builds as it would have.

// earlyBuild is a go test -c started beside go list, and the lock of its binary directory.
type earlyBuild struct {
	b      *gobuild.Early
	keep   string // the binary directory it builds into
	unlock func()
}

// startEarly starts the early build when the run can take it: the pipeline's path, no
// durations recorded (the build would order packages by them), a user cache for the
// binaries. It is a guess: every failure only means no early build.
func (r *runner) startEarly(ctx context.Context, bopts gobuild.Options) {
	if !r.canStartFromRecord() || len(r.durations.Tests) > 0 || len(r.durations.Failed) > 0 {
		return
	}
	root := moduleRootOf(r.cfg.Dir)
	if root == "" {
		return
	}
	pl := r.platforms()[0]
	saved := r.moduleRoot
	r.moduleRoot = root
	keep := r.binDir("", pl, bopts)
	r.moduleRoot = saved
	if keep == "" || !filepath.IsAbs(keep) {
		return
	}
	unlock, err := lockDir(keep)
	if err != nil {
		return
	}
	b, err := gobuild.StartEarly(ctx, platformOptions(bopts, pl), r.cfg.Patterns, keep)
	if err != nil {
		unlock()
		return
	}
	tracef("early build (go test -c on the patterns)")
	r.early = &earlyBuild{b: b, keep: keep, unlock: unlock}
}

// takeEarly gives buildLocked the early build of keep, with its lock held; nil if there is
// none for keep (one for another directory is stopped).
func (r *runner) takeEarly(keep string) *earlyBuild {
	e := r.early
	if e == nil {
		return nil
	}
	r.early = nil
	if e.keep != keep {
		e.b.Abandon()
		e.unlock()
		return nil
	}
	return e
}

// abandonEarly stops an early build the run did not take.
func (r *runner) abandonEarly() {
	if e := r.early; e != nil {
		r.early = nil
		e.b.Abandon()
		e.unlock()
	}
}

// moduleRootOf is the directory of the nearest go.mod at or above dir, "" if none or if
// go would take a workspace (GOWORK, a go.work at or above it) or another go.mod
// (-modfile) instead.
func moduleRootOf(dir string) string {
	work := os.Getenv("GOWORK")
	if work != "" && work != "off" {
		return ""
	}
	if strings.Contains(os.Getenv("GOFLAGS"), "-modfile") {
		return ""
	}
	d, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	root := ""
	for {
		if root == "" {
			if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
				root = d
			}
		}
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil && work != "off" {
			return ""
		}
		up := filepath.Dir(d)
		if up == d {
			return root
		}
		d = up
	}
}

// platformOptions are bopts for building for platform pl.
func platformOptions(bopts gobuild.Options, pl string) gobuild.Options {
	if pl != hostPlatform() {
		goos, goarch, _ := strings.Cut(pl, "/")
		bopts.Env = []string{"GOOS=" + goos, "GOARCH=" + goarch}
	}
	return bopts
}
