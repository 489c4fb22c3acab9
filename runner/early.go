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

// guessedBinDir is where the run's binaries will be built, guessed before go list has
// said which module the packages are in: the binary directory of the nearest go.mod's
// module (moduleRootOf). Both the early build and the up-to-date check start from it;
// buildLocked compares it with the directory of the module go list found.
type guessedBinDir struct {
	root, keep string
	pl         string // the one platform of the run
}

// guessBinDir is the guess, nil where the run cannot start before go list (not the
// pipeline's path, no module root found, no user cache for the binaries).
func (r *runner) guessBinDir(bopts gobuild.Options) *guessedBinDir {
	if !r.canStartFromRecord() {
		return nil
	}
	root := moduleRootOf(r.cfg.Dir)
	if root == "" {
		return nil
	}
	pl := r.platforms()[0]
	keep := binDirOf(root, "", pl, bopts)
	if !filepath.IsAbs(keep) {
		return nil
	}
	return &guessedBinDir{root: root, keep: keep, pl: pl}
}

// startEarly starts the early build into g's directory when the run can take it: no
// durations recorded (the build would order packages by them). It is a guess: every
// failure only means no early build.
func (r *runner) startEarly(ctx context.Context, bopts gobuild.Options, g *guessedBinDir) {
	if g == nil || len(r.durations.Tests) > 0 || len(r.durations.Failed) > 0 {
		return
	}
	unlock, err := lockDir(g.keep)
	if err != nil {
		return
	}
	b, err := gobuild.StartEarly(ctx, platformOptions(bopts, g.pl), r.cfg.Patterns, g.keep)
	if err != nil {
		unlock()
		return
	}
	tracef("early build (go test -c on the patterns)")
	r.early = &earlyBuild{b: b, keep: g.keep, unlock: unlock}
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
