package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// DurationsVersion is the version of the durations file format.
const DurationsVersion = 1

// DefaultEstimate is the estimate for a test when nothing is known of it or its neighbours:
// most Go tests take milliseconds.
const DefaultEstimate = 10 * time.Millisecond

// Durations remembers how long tests took, between runs. The file is small, stable JSON
// (so CI can cache it):
//
//	{"version":1,"tests":{"example.com/pkg":{"TestA":0.012,"TestB":1.5}},"startup":{"example.com/pkg":0.004}}
//
// Times are seconds. It is safe for concurrent use.
type Durations struct {
	mu      sync.Mutex
	Version int                           `json:"version"`
	Tests   map[string]map[string]float64 `json:"tests"`
	Startup map[string]float64            `json:"startup,omitempty"`
	// Together lists packages that must not be split: they ran top-level tests their
	// binary does not list (a nested testing.RunTests, which a -test.run would filter).
	Together map[string]bool `json:"together,omitempty"`
	// Failed lists, by package, the tests (subtests by their full names) whose last run
	// failed; "" stands for the package itself (it did not build, or failed outside its
	// tests). They go first in the next run, and --lf runs only them.
	Failed map[string]map[string]bool `json:"failed,omitempty"`

	// What this run recorded (for SaveShard).
	fresh         map[string]map[string]bool
	freshStartup  map[string]bool
	freshTogether map[string]bool
}

// NewDurations returns an empty store.
func NewDurations() *Durations {
	return &Durations{Version: DurationsVersion, Tests: map[string]map[string]float64{}, Startup: map[string]float64{}}
}

// LoadDurations reads a durations file. A missing file is an empty store, not an error.
func LoadDurations(path string) (*Durations, error) {
	d := NewDurations()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("durations file %s: %v (expected a file of godist's JSON durations format)", path, pe.Err)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("durations file %s: %v (expected godist's JSON durations format; delete the file to start afresh)", path, err)
	}
	if d.Version != DurationsVersion {
		return NewDurations(), nil
	}
	if d.Tests == nil {
		d.Tests = map[string]map[string]float64{}
	}
	if d.Startup == nil {
		d.Startup = map[string]float64{}
	}
	return d, nil
}

// Save writes the store atomically.
func (d *Durations) Save(path string) error {
	d.mu.Lock()
	b, err := json.MarshalIndent(d, "", " ")
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".durations-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Record stores how long a test took.
func (d *Durations) Record(pkg, test string, elapsed time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.Tests[pkg]
	if m == nil {
		m = map[string]float64{}
		d.Tests[pkg] = m
	}
	m[test] = elapsed.Seconds()
	if d.fresh == nil {
		d.fresh = map[string]map[string]bool{}
	}
	if d.fresh[pkg] == nil {
		d.fresh[pkg] = map[string]bool{}
	}
	d.fresh[pkg][test] = true
}

// SetFailed records how a test (or, test "", the package itself) ended last.
func (d *Durations) SetFailed(pkg, test string, failed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !failed {
		if m := d.Failed[pkg]; m != nil {
			delete(m, test)
			if len(m) == 0 {
				delete(d.Failed, pkg)
			}
		}
		return
	}
	if d.Failed == nil {
		d.Failed = map[string]map[string]bool{}
	}
	if d.Failed[pkg] == nil {
		d.Failed[pkg] = map[string]bool{}
	}
	d.Failed[pkg][test] = true
}

// FailedTests returns the tests of pkg that failed last (a copy; "" for the package).
func (d *Durations) FailedTests(pkg string) map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]bool{}
	for t := range d.Failed[pkg] {
		out[t] = true
	}
	return out
}

// FailedPackages lists the packages with a failure recorded.
func (d *Durations) FailedPackages() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.Failed))
	for p := range d.Failed {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// HasTest reports whether a duration of pkg's top-level test was recorded.
func (d *Durations) HasTest(pkg, test string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.Tests[pkg][test]
	return ok
}

// KeepTogether remembers that pkg must run in one process (see Together).
func (d *Durations) KeepTogether(pkg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Together == nil {
		d.Together = map[string]bool{}
	}
	d.Together[pkg] = true
	if d.freshTogether == nil {
		d.freshTogether = map[string]bool{}
	}
	d.freshTogether[pkg] = true
}

// MustKeepTogether reports whether pkg must run in one process.
func (d *Durations) MustKeepTogether(pkg string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.Together[pkg]
}

// Known reports whether anything of pkg's tests was recorded: a package that never ran is
// not split over processes on guesses.
func (d *Durations) Known(pkg string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.Tests[pkg]) > 0
}

// RecordStartup stores what starting one process of pkg costs.
func (d *Durations) RecordStartup(pkg string, cost time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Startup[pkg] = cost.Seconds()
	if d.freshStartup == nil {
		d.freshStartup = map[string]bool{}
	}
	d.freshStartup[pkg] = true
}

// Estimates returns an estimate for each of tests of pkg: the recorded time, or else the
// median of the package's recorded tests, or else the median over all packages, or else
// DefaultEstimate; and the estimated process start-up cost of pkg.
func (d *Durations) Estimates(pkg string, tests []string) ([]time.Duration, time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	known := d.Tests[pkg]
	var fallback time.Duration // a median costs a sort: only for a test with no record
	est := make([]time.Duration, len(tests))
	for i, t := range tests {
		if s, ok := known[t]; ok {
			est[i] = secs(s)
			continue
		}
		if fallback == 0 {
			fallback = DefaultEstimate
			if len(known) > 0 {
				fallback = median(known)
			} else if all := d.allMedian(); all > 0 {
				fallback = all
			}
		}
		est[i] = fallback
	}
	return est, secs(d.Startup[pkg])
}

func (d *Durations) allMedian() time.Duration {
	var all []float64
	for _, m := range d.Tests {
		for _, s := range m {
			all = append(all, s)
		}
	}
	if len(all) == 0 {
		return 0
	}
	sort.Float64s(all)
	return max(secs(all[len(all)/2]), time.Microsecond)
}

func median(m map[string]float64) time.Duration {
	v := make([]float64, 0, len(m))
	for _, s := range m {
		v = append(v, s)
	}
	sort.Float64s(v)
	return max(secs(v[len(v)/2]), time.Microsecond)
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// SaveShard saves what a --shard job measured without changing the file that every job of
// the run splits by: the job's own records go to a side file next to path, named by the
// digest of the split (SplitDigest) and the part. Once the side files of all n parts of
// that split are there, they are merged into path and removed (with those of splits that
// are no longer current), so the next run of the n jobs splits by what all of them
// measured. Running the n jobs one after another on one machine therefore gives each the
// same input, and every test runs exactly once.
func (d *Durations) SaveShard(path string, i, n int, digest string) error {
	d.mu.Lock()
	side := &Durations{Version: DurationsVersion, Tests: map[string]map[string]float64{}, Startup: map[string]float64{}}
	for pkg, tests := range d.fresh {
		for t := range tests {
			if side.Tests[pkg] == nil {
				side.Tests[pkg] = map[string]float64{}
			}
			side.Tests[pkg][t] = d.Tests[pkg][t]
		}
	}
	for pkg := range d.freshStartup {
		side.Startup[pkg] = d.Startup[pkg]
	}
	for pkg := range d.freshTogether {
		if side.Together == nil {
			side.Together = map[string]bool{}
		}
		side.Together[pkg] = true
	}
	d.mu.Unlock()
	prefix := path + ".shard-" + digest + "-"
	if err := side.Save(fmt.Sprintf("%s%dof%d", prefix, i, n)); err != nil {
		return err
	}
	parts := make([]*Durations, 0, n)
	for k := 1; k <= n; k++ {
		p, err := LoadDurations(fmt.Sprintf("%s%dof%d", prefix, k, n))
		if err != nil {
			return err
		}
		if _, err := os.Stat(fmt.Sprintf("%s%dof%d", prefix, k, n)); err != nil {
			return nil // not all parts have run yet
		}
		parts = append(parts, p)
	}
	main, err := LoadDurations(path)
	if err != nil {
		main = NewDurations()
	}
	for _, p := range parts {
		for pkg, tests := range p.Tests {
			if main.Tests[pkg] == nil {
				main.Tests[pkg] = map[string]float64{}
			}
			for t, s := range tests {
				main.Tests[pkg][t] = s
			}
		}
		for pkg, s := range p.Startup {
			main.Startup[pkg] = s
		}
		for pkg := range p.Together {
			if main.Together == nil {
				main.Together = map[string]bool{}
			}
			main.Together[pkg] = true
		}
	}
	if err := main.Save(path); err != nil {
		return err
	}
	olds, _ := filepath.Glob(globQuote(path) + ".shard-*")
	for _, f := range olds {
		os.Remove(f)
	}
	return nil
}

// globQuote escapes the characters filepath.Glob would read as a pattern.
func globQuote(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}
