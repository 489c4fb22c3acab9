package difftest

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// Failed is a module whose check could not be made, for the table.
type Failed struct {
	Module Module
	Err    error
}

// WriteTable writes one markdown table: a row per module with its packages and tests (as
// go test's first run reports them), its differences, its flaky tests, the tests whose
// subtests' names vary, the tests godist re-ran after a crash, and the wall time of each
// run (build included); then a row per module that could not be checked.
func WriteTable(w io.Writer, results []*Result, failed []Failed) {
	fmt.Fprintln(w, "| module | packages | tests | differences | flaky | names vary | re-run after crash | go test 1st | go test 2nd | godist 1st | godist 2nd |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s |\n", r.Module.Name(), r.Packages, r.Tests,
			r.Differences(), len(r.Flaky), len(r.Varying), len(r.Rerun), wall(r.GoTest, 0), wall(r.GoTest, 1), wall(r.Godist, 0), wall(r.Godist, 1))
	}
	for _, f := range failed {
		fmt.Fprintf(w, "| %s | | | not checked: %s | | | | | | | |\n", f.Module.Name(), oneLine(f.Err.Error()))
	}
}

func wall(runs []Run, i int) string {
	if i >= len(runs) {
		return ""
	}
	if runs[i].Err != nil {
		return "did not finish"
	}
	return fmt.Sprintf("%.1f s", runs[i].Wall.Seconds())
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", `\|`)
}

// WriteDetails writes, per module, its shape, every run (command, exit status, time), every
// difference, the flaky tests, the tests godist re-ran after a crash and the ignored
// packages.
func WriteDetails(w io.Writer, results []*Result, failed []Failed) {
	for _, r := range results {
		fmt.Fprintf(w, "## %s\n\n", r.Module.Name())
		if r.Module.Shape != "" {
			fmt.Fprintf(w, "%s.\n\n", r.Module.Shape)
		}
		fmt.Fprintf(w, "%d packages, %d tests (subtests included) under go test.", r.Packages, r.Tests)
		if r.Load[0] != "" {
			fmt.Fprintf(w, " Load average %s before the runs, %s after (%d CPUs: above that, the times are stretched).", r.Load[0], r.Load[1], runtime.NumCPU())
		}
		fmt.Fprint(w, "\n\n")
		for i, run := range r.GoTest {
			writeRun(w, fmt.Sprintf("go test %d", i+1), run)
		}
		for i, run := range r.Godist {
			writeRun(w, fmt.Sprintf("godist %d", i+1), run)
		}
		fmt.Fprintln(w)
		section(w, "Differences", len(r.Diffs), func() {
			for _, d := range r.Diffs {
				fmt.Fprintf(w, "- %s\n", d)
			}
		})
		section(w, "Flaky under go test (not compared)", len(r.Flaky), func() {
			for _, f := range r.Flaky {
				fmt.Fprintf(w, "- %s\n", f)
			}
		})
		section(w, "Tests whose subtest names vary between runs", len(r.Varying), func() {
			for _, v := range r.Varying {
				fmt.Fprintf(w, "- %s\n", v)
			}
		})
		section(w, "Re-run by godist after a crash (go test never reached them)", len(r.Rerun), func() {
			for _, k := range r.Rerun {
				fmt.Fprintf(w, "- %s\n", k)
			}
		})
		section(w, "Ignored packages", len(r.Ignored), func() {
			for _, s := range r.Ignored {
				fmt.Fprintf(w, "- %s\n", s)
			}
		})
	}
	for _, f := range failed {
		fmt.Fprintf(w, "## %s\n\nnot checked: %v\n\n", f.Module.Name(), f.Err)
	}
}

func writeRun(w io.Writer, name string, run Run) {
	status := fmt.Sprintf("exit %d", run.Exit)
	if run.Err != nil {
		status = run.Err.Error()
	}
	fmt.Fprintf(w, "- %s: `%s`: %s, %s\n", name, run.Command, status, run.Wall.Round(time.Millisecond))
}

func section(w io.Writer, title string, n int, body func()) {
	if n == 0 {
		fmt.Fprintf(w, "%s: none.\n\n", title)
		return
	}
	fmt.Fprintf(w, "%s (%d):\n\n", title, n)
	body()
	fmt.Fprintln(w)
}
