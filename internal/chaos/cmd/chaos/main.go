//go:build linux

// Command chaos runs godist RUNS times under random faults (internal/chaos) and prints a
// line per bad run, the fault mix, and one final line:
//
//	runs=N lost=0 doubled=0 wrong=0 hung=0 orphans=0 max_detect_s=X
//
// Usage: chaos -godist BIN -fixtures DIR [-runs N] [-seed S] [-keepalive D] [-work DIR]
// Logs of bad runs stay under the work directory; good runs' are removed.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/godist/godist/internal/chaos"
)

func main() {
	godist := flag.String("godist", "", "the godist `BIN`ary to run (required)")
	fixtures := flag.String("fixtures", "", "the fixtures module `DIR` (required)")
	runs := flag.Int("runs", 200, "how many runs")
	seed := flag.Uint64("seed", 0, "random `SEED` (0: from the clock); the same seed injects the same faults")
	keepalive := flag.Duration("keepalive", 3*time.Second, "godist's --keepalive in every run")
	work := flag.String("work", "", "work `DIR` (default: a new temporary directory)")
	keep := flag.Bool("keep", false, "keep the logs of good runs too")
	var fixed []chaos.Fault
	flag.Func("fault", "inject `KIND[@LINK][(TEST)]+MARKS` or `KIND[@LINK][(TEST)]=DELAY` in every run instead of random faults (repeatable)", func(v string) error {
		f, err := chaos.ParseFault(v)
		fixed = append(fixed, f)
		return err
	})
	flag.Parse()
	if *godist == "" || *fixtures == "" || *runs < 1 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "chaos: usage: chaos -godist BIN -fixtures DIR [-runs N] [-seed S] [-keepalive D] [-work DIR]")
		os.Exit(2)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if err := chaos.BecomeSubreaper(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: becoming a child subreaper: %v\n", err)
		os.Exit(1)
	}
	if *work == "" {
		d, err := os.MkdirTemp("", "godist-chaos-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
			os.Exit(1)
		}
		*work = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	h, err := chaos.Setup(ctx, chaos.Config{Godist: abs(*godist), Fixtures: abs(*fixtures), Work: *work, Keepalive: *keepalive})
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		os.Exit(1)
	}
	defer h.Close()
	fmt.Printf("chaos: seed %d, keepalive %v, work %s, %d tests and packages expected\n", *seed, *keepalive, *work, len(h.Expected))
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	var total chaos.Result
	var maxDetect time.Duration
	var detects []time.Duration
	mix := map[string]int{}
	missed := map[string]int{}
	n := 0
	for ; n < *runs && ctx.Err() == nil; n++ {
		faults := fixed
		if len(faults) == 0 {
			faults = randomFaults(rng)
		}
		dir := filepath.Join(*work, "runs", fmt.Sprintf("%03d", n+1))
		r := h.Run(ctx, dir, faults)
		if r.Aborted {
			break
		}
		total.Lost += r.Lost
		total.Doubled += r.Doubled
		total.Wrong += r.Wrong
		total.Hung += r.Hung
		total.Orphans += r.Orphans
		for _, d := range r.Detect {
			detects = append(detects, d)
			maxDetect = max(maxDetect, d)
		}
		for _, note := range r.Notes {
			kind, _, _ := strings.Cut(strings.TrimPrefix(note, "fault "), " ")
			if strings.Contains(note, ": missed (") {
				missed[kind]++
			} else {
				mix[kind]++
			}
		}
		if r.Bad() {
			fmt.Printf("run %d: BAD (%v; exit %d after %.1fs; logs in %s): %s\n", n+1, faults, r.Exit, r.Elapsed.Seconds(), r.LogDir, strings.Join(r.Problems, " | "))
		} else {
			if !*keep {
				os.RemoveAll(dir)
			}
			fmt.Fprintf(os.Stderr, "run %d: ok (%v; exit %d after %.1fs)\n", n+1, faults, r.Exit, r.Elapsed.Seconds())
		}
	}
	kinds := make([]string, 0, len(mix)+len(missed))
	for k := range mix {
		kinds = append(kinds, k)
	}
	for k := range missed {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Printf("fault %-32s injected %4d  missed %4d\n", k, mix[k], missed[k])
	}
	if len(detects) > 0 {
		slices.Sort(detects)
		fmt.Printf("link faults detected: %d, median %.2fs, p90 %.2fs, max %.2fs\n", len(detects),
			detects[len(detects)/2].Seconds(), detects[len(detects)*9/10].Seconds(), maxDetect.Seconds())
	}
	fmt.Printf("runs=%d lost=%d doubled=%d wrong=%d hung=%d orphans=%d max_detect_s=%.2f\n",
		n, total.Lost, total.Doubled, total.Wrong, total.Hung, total.Orphans, maxDetect.Seconds())
}

// randomFaults picks a run's faults: one (most runs), two or three, each of a random
// kind, on a random link it applies to, at a random moment — once a random number of the
// marked tests have started, or a random delay after the start (start-up and sync
// included).
func randomFaults(rng *rand.Rand) []chaos.Fault {
	n := 1
	switch x := rng.IntN(20); {
	case x == 0:
		n = 3
	case x < 6:
		n = 2
	}
	var out []chaos.Fault
	for range n {
		f := chaos.Fault{Kind: chaos.Kinds[rng.IntN(len(chaos.Kinds))]}
		switch f.Kind {
		case chaos.KillSession, chaos.StopSession:
			f.Link = []chaos.Link{chaos.LinkSSH, chaos.LinkProxy}[rng.IntN(2)]
		case chaos.CutLink, chaos.FreezeLink:
			f.Link = []chaos.Link{chaos.LinkProxy, chaos.LinkSocket, chaos.LinkExec}[rng.IntN(3)]
		}
		if (f.Kind == chaos.KillWorker || f.Kind == chaos.StopWorker) && rng.IntN(2) == 0 {
			// The worker of a test on a given kind of gateway (else the newest test's).
			f.MarkFrom = []chaos.Link{chaos.LinkLocal, chaos.LinkSSH, chaos.LinkProxy, chaos.LinkSocket, chaos.LinkExec, chaos.LinkVia}[rng.IntN(6)]
		}
		if f.Kind == chaos.KillTest && rng.IntN(2) == 0 {
			f.Test = "TestLong" // one go test passes: it must turn into a crash
		}
		switch {
		case f.Test != "":
			f.AfterMarks = 1 + rng.IntN(chaos.MarkedPackages) // one TestLong a package
		case f.Kind == chaos.KillTest || rng.IntN(5) < 3:
			f.AfterMarks = 1 + rng.IntN(chaos.MarkedPackages*10)
		default:
			// Runs take 2-8 s: start-up, sync and the tests themselves.
			f.Delay = time.Duration(rng.IntN(3000)) * time.Millisecond
		}
		out = append(out, f)
	}
	return out
}
