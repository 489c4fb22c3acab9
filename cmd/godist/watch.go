package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/godist/godist/runner"
)

// debounce is how long the files must be quiet after a change before a run starts: an
// editor's save, a git checkout or a code generator writes many files at once.
const debounce = 200 * time.Millisecond

// watch is godist --watch: a run, then on every change of the module's files (debounced)
// another, in which the result cache leaves only what the change affects to run and the
// failed tests go first. The gateways stay up from one run to the next. Keys, on a
// terminal: r runs everything again, f runs the failed tests, q quits. It returns when q
// is pressed, ctx ends (Ctrl-C) or stdin ends; every worker is stopped first.
func watch(ctx context.Context, o *rootOptions, pkgs, testArgs []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := o.config(pkgs, testArgs) // the command line's errors, before anything starts
	if err != nil {
		return err
	}
	root, err := moduleRoot(cfg.Dir)
	if err != nil {
		return usagef("--watch: %v", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("--watch: %v", err)
	}
	defer w.Close()
	if err := watchTree(w, root); err != nil {
		return fmt.Errorf("--watch: %v", err)
	}
	ignore := watchIgnored(o, root)

	sess := runner.NewSession("", cfg.Keepalive)
	defer sess.Close()

	keys, restore := readKeys(stdin)
	defer restore()

	next := runOverrides{session: sess}
	for {
		runCtx, cancel := context.WithCancel(ctx)
		quit := make(chan struct{})
		pending := make(chan byte, 1) // r or f pressed during the run: the next run's
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			// q during a run stops it, and the watch.
			for {
				select {
				case k := <-keys:
					switch k {
					case 'q':
						close(quit)
						cancel()
						return
					case 'r', 'f':
						select {
						case <-pending:
						default:
						}
						pending <- k
					}
				case <-runCtx.Done():
					return
				}
			}
		}()
		err := runTests(runCtx, o, pkgs, testArgs, stdout, stderr, next)
		cancel()
		<-watched
		select {
		case <-quit:
			return nil
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *usageError
		if errors.As(err, &ue) {
			return err
		}
		var rre *runner.RunError
		switch {
		case errors.As(err, &rre):
			fmt.Fprintln(stderr, oneLine(err.Error())) // it says "godist: " itself
		case err != nil && !isStatus(err):
			fmt.Fprintln(stderr, "godist: "+oneLine(err.Error()))
		}
		fmt.Fprintln(stderr, "godist --watch: waiting for changes (r: run all, f: run failed, q: quit)")
		next = runOverrides{session: sess}
		select {
		case k := <-pending:
			next.fresh, next.lastFailed = k == 'r', k == 'f'
			continue
		default:
		}
		quitNow, err := waitForChange(ctx, w, keys, ignore, &next, stderr)
		if quitNow || err != nil {
			return err
		}
	}
}

// waitForChange waits for what starts the next run: a change of the files (debounced),
// or r or f (which it notes in next). It reports q, or an end (ctx, the watcher).
func waitForChange(ctx context.Context, w *fsnotify.Watcher, keys <-chan byte, ignore func(string) bool, next *runOverrides, stderr io.Writer) (quit bool, err error) {
	var timer <-chan time.Time
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case k := <-keys:
			switch k {
			case 'q':
				return true, nil
			case 'r':
				next.fresh = true
				return false, nil
			case 'f':
				next.lastFailed = true
				return false, nil
			}
		case ev, ok := <-w.Events:
			if !ok {
				return true, errors.New("--watch: the file watcher stopped")
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && !ignore(ev.Name) {
					watchTree(w, ev.Name) // a new directory: watch it too
				}
			}
			if ignore(ev.Name) || ev.Op == fsnotify.Chmod {
				continue
			}
			if t == nil {
				t = time.NewTimer(debounce)
			} else {
				t.Reset(debounce)
			}
			timer = t.C
		case err, ok := <-w.Errors:
			if ok {
				fmt.Fprintln(stderr, "godist --watch: "+oneLine(err.Error()))
			}
		case <-timer:
			return false, nil
		}
	}
}

// isStatus reports whether err is only a run's exit status (tests failed).
func isStatus(err error) bool {
	var se *statusError
	return errors.As(err, &se)
}

// moduleRoot is the directory of the go.mod that dir (or the current directory) is in.
func moduleRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("no go.mod here or above: run it in a Go module")
		}
		d = up
	}
}

// watchTree watches dir and every directory below it that is not hidden (.git, .cache)
// or a testdata-less vendor tree.
func watchTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // gone meanwhile, or not readable: not ours to watch
		}
		if !d.IsDir() {
			return nil
		}
		if path != dir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if err := w.Add(path); err != nil {
			return fmt.Errorf("watching %s: %v", path, err)
		}
		return nil
	})
}

// watchIgnored tells the files whose changes start no run: hidden ones, editors' backup
// and swap files, and what godist itself writes into the tree (its output files).
func watchIgnored(o *rootOptions, root string) func(string) bool {
	own := map[string]bool{}
	for _, f := range []string{o.jsonfile, o.junitfile, o.coverprofile, o.durations} {
		if f != "" {
			own[absIn(o.dir, f)] = true
		}
	}
	return func(path string) bool {
		if own[path] {
			return true
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return true
		}
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			if strings.HasPrefix(part, ".") && part != "." && part != ".." {
				return true
			}
		}
		base := filepath.Base(path)
		return strings.HasSuffix(base, "~") || strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx") ||
			base == "4913" || strings.HasPrefix(base, "#")
	}
}
