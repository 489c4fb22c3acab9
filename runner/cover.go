package runner

import (
	"bytes"
	"context"
	"github.com/godist/godist/ledger"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Coverage across processes: every test process of a package writes its counters into the
// package's own directory (-test.gocoverdir), and when the package ends `go tool covdata`
// merges them, so the percentage is that of all its tests, as go test -cover reports it.

// coverDir is the counter directory of a package scope, made on first use.
func (r *runner) coverDir(s ledger.Scope) string {
	if r.coverRoot == "" {
		return ""
	}
	dir := filepath.Join(r.coverRoot, hashString(s.Package+"\x00"+s.Worker))
	os.MkdirAll(dir, 0o755)
	return dir
}

var coverageLine = regexp.MustCompile(`coverage: [0-9.]+% of statements`)

// coverPercent merges the counters of one package and returns go test's
// "coverage: N% of statements" text, or "" when there are none.
func coverPercent(ctx context.Context, dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return ""
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "covdata", "percent", "-i="+dir).Output()
	if err != nil {
		return ""
	}
	return coverageLine.FindString(string(out))
}

// writeCoverProfile merges every package's counters into one text profile, as
// go test -coverprofile writes it.
func (r *runner) writeCoverProfile(ctx context.Context, path string) error {
	ents, err := os.ReadDir(r.coverRoot)
	if err != nil {
		return err
	}
	var dirs []string
	for _, e := range ents {
		d := filepath.Join(r.coverRoot, e.Name())
		if sub, _ := os.ReadDir(d); len(sub) > 0 {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return os.WriteFile(path, []byte("mode: set\n"), 0o644)
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "covdata", "textfmt", "-i="+strings.Join(dirs, ","), "-o", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return &coverError{strings.TrimSpace(stderr.String())}
	}
	return nil
}

type coverError struct{ msg string }

func (e *coverError) Error() string { return "go tool covdata: " + e.msg }

// coverage is the ledger's Coverage: the merged figure of a scope's processes.
func (r *runner) coverage(ctx context.Context, s ledger.Scope) string {
	if r.coverRoot == "" {
		return ""
	}
	return coverPercent(ctx, r.coverDir(s))
}
