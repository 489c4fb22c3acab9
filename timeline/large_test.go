package timeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/chromiumtest"
	"github.com/godist/godist/ledger"
)

// The page of a run of 50,000 tests on 64 gateways stays small and complete: every
// process has its bar, every test is in a mark, and the file is a few megabytes. With
// GODIST_TIMELINE_OUT=DIR the pages are kept there (bench/timeline.sh measures them).
func TestLargeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cases := []struct {
		name  string
		procs int
		dur   func(int) float64
		maxMB float64
	}{
		{"realistic", 2000, realisticMs, 3},
		{"uniform", 2000, uniformMs, 3},
		{"small-batches", 10000, realisticMs, 7},
	}
	groups := regexp.MustCompile(`<g class="p" `)
	marks := regexp.MustCompile(`<rect class="t [a-z ]*"[^>]* data-n="(\d+)"`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := bigRun(64, 500, c.procs, 50000, c.dur).Write(&b); err != nil {
				t.Fatal(err)
			}
			page := b.Bytes()
			if n := len(groups.FindAllIndex(page, -1)); n != c.procs {
				t.Errorf("%d process bars, want %d", n, c.procs)
			}
			n, m := 0, 0
			for _, sub := range marks.FindAllSubmatch(page, -1) {
				k, _ := strconv.Atoi(string(sub[1]))
				n += k
				m++
			}
			if n != 50000 {
				t.Errorf("the marks hold %d tests, want 50000", n)
			}
			mb := float64(len(page)) / (1 << 20)
			t.Logf("%s: %.2f MB, %d test marks, %d process bars", c.name, mb, m, c.procs)
			if mb > c.maxMB {
				t.Errorf("%.2f MB, want at most %v", mb, c.maxMB)
			}
			if dir := os.Getenv("GODIST_TIMELINE_OUT"); dir != "" {
				if err := os.WriteFile(filepath.Join(dir, "timeline-50k-"+c.name+".html"), page, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// The large page opens in Chromium without a JavaScript error, and the hover lights the
// processes of a package across the lanes.
func TestLargeRunInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	chromiumtest.Path(t)
	page := filepath.Join(t.TempDir(), "timeline.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := bigRun(64, 500, 2000, 50000, realisticMs).Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dom := chromiumtest.DumpDOM(context.Background(), t, page, "g.p rect")
	if dom.Errors != 0 || dom.Resources != 0 {
		t.Errorf("%d JavaScript errors (last: %s), %d resources fetched; want none", dom.Errors, dom.LastError, dom.Resources)
	}
	// bigRun hands process p the package p%500: 2000 processes, 4 of each package.
	if dom.Hovered != 4 {
		t.Errorf("hovering a process lit %d, want the 4 of its package", dom.Hovered)
	}
	chromiumtest.Screenshot(context.Background(), t, page, chromiumtest.ArtifactPath(t, "timeline-50k.png"), 1800, 1300)
}

// The Recorder takes calls from many goroutines while another writes the page.
func TestRecorderConcurrent(t *testing.T) {
	r := New(Options{Gateways: []string{"gw0", "gw1", "gw2", "gw3"}})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "gw" + strconv.Itoa(g)
			r.WorkerState(id, "ready")
			for i := 0; i < 200; i++ {
				start := at(float64(i))
				r.Event(gotest.Event{Time: &start, Action: "run", Package: "ex/a", Test: "TestX", Worker: id})
				end := at(float64(i) + 0.5)
				r.Event(gotest.Event{Time: &end, Action: "pass", Package: "ex/a", Test: "TestX", Worker: id})
				r.Process(ledger.Process{Worker: id, Package: "ex/a", Start: start, End: end, Exit: "ok"})
			}
			r.WorkerState(id, "done")
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5; i++ {
			var b bytes.Buffer
			if err := r.Write(&b); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	a := analyze(r.Snapshot())
	if a.Procs != 800 || a.Tests[Pass] != 800 {
		t.Errorf("%d processes, %d passed tests; want 800 each", a.Procs, a.Tests[Pass])
	}
}

// BenchmarkWrite50k is the time to lay out and write the page of 50,000 tests on 64
// gateways (the Recorder already holds the run).
func BenchmarkWrite50k(b *testing.B) {
	r := bigRun(64, 500, 2000, 50000, realisticMs)
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := r.Write(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/(1<<20), "MB")
}
