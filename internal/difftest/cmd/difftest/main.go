// Command difftest runs go test -json and godist on the same modules and compares them test
// by test (see package difftest). It prints one markdown table and writes the details.
//
//	difftest -godist BIN [-fixtures DIR] [-details FILE] [-work DIR] [module ...]
//
// Modules are named by path or path@version (the known ones: difftest.Modules), or
// "fixtures" for godist's fixtures module; with none, all of them. Exit status: 0 no
// differences, 1 differences or modules that could not be checked, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godist/godist/internal/difftest"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("difftest", flag.ContinueOnError)
	godist := fs.String("godist", "", "the godist binary to check (required)")
	fixtures := fs.String("fixtures", "", "godist's fixtures module, for the module name \"fixtures\" (default: ./fixtures)")
	details := fs.String("details", "", "write the details (markdown) to this file (default: standard error)")
	work := fs.String("work", "", "keep the copies and streams of every run under this directory (default: a temporary one, removed)")
	workers := fs.Int("n", 2, "godist -n")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on each go test and godist run")
	quiet := fs.Bool("q", false, "no progress lines")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: difftest -godist BIN [flags] [module[@version] | fixtures ...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *godist == "" {
		fmt.Fprintln(os.Stderr, "difftest: -godist BIN is required (go build -o BIN ./cmd/godist)")
		return 2
	}
	if *fixtures == "" {
		*fixtures = "fixtures"
	}
	names := fs.Args()
	if len(names) == 0 {
		names = append(names, "fixtures")
		for _, m := range difftest.Modules {
			names = append(names, m.Path)
		}
	}
	var mods []difftest.Module
	for _, n := range names {
		if n == "fixtures" {
			dir, err := filepath.Abs(*fixtures)
			if err == nil {
				_, err = os.Stat(filepath.Join(dir, "go.mod"))
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "difftest: fixtures: no module at %s (give -fixtures DIR)\n", *fixtures)
				return 2
			}
			mods = append(mods, difftest.Fixtures(dir))
			continue
		}
		m, ok := difftest.Lookup(n)
		if !ok {
			fmt.Fprintf(os.Stderr, "difftest: unknown module %q: give path@version, or one of %s\n", n, known())
			return 2
		}
		mods = append(mods, m)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := *work
	if root == "" {
		dir, err := os.MkdirTemp("", "difftest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "difftest:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		root = dir
	} else if err := os.MkdirAll(root, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "difftest:", err)
		return 1
	}
	cfg := difftest.Config{Godist: *godist, Workers: *workers, RunTimeout: *timeout}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	var results []*difftest.Result
	var failed []difftest.Failed
	for i, m := range mods {
		cfg.WorkDir = filepath.Join(root, fmt.Sprintf("%02d-%s", i, strings.NewReplacer("/", "_", "@", "_").Replace(m.Name())))
		if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "difftest:", err)
			return 1
		}
		if !*quiet {
			fmt.Fprintf(os.Stderr, "difftest: == %s\n", m.Name())
		}
		res, err := difftest.Check(ctx, cfg, m)
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "difftest: interrupted")
			return 1
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = append(failed, difftest.Failed{Module: m, Err: err})
			continue
		}
		if !*quiet {
			fmt.Fprintf(os.Stderr, "difftest: %s: %d tests, %d differences, %d flaky\n", m.Name(), res.Tests, res.Differences(), len(res.Flaky))
		}
		results = append(results, res)
	}

	out := os.Stderr
	if *details != "" {
		f, err := os.Create(*details)
		if err != nil {
			fmt.Fprintln(os.Stderr, "difftest:", err)
			return 1
		}
		defer f.Close()
		out = f
	}
	fmt.Fprintf(out, "# difftest details\n\ngodist: %s, -n %d\n\n", *godist, *workers)
	difftest.WriteDetails(out, results, failed)
	difftest.WriteTable(os.Stdout, results, failed)
	if len(failed) > 0 {
		return 1
	}
	for _, r := range results {
		if r.Differences() > 0 {
			return 1
		}
	}
	return 0
}

func known() string {
	var names []string
	for _, m := range difftest.Modules {
		names = append(names, m.Path)
	}
	return strings.Join(names, ", ")
}
