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
}

// RecordStartup stores what starting one process of pkg costs.
func (d *Durations) RecordStartup(pkg string, cost time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Startup[pkg] = cost.Seconds()
}

// Estimates returns an estimate for each of tests of pkg: the recorded time, or else the
// median of the package's recorded tests, or else the median over all packages, or else
// DefaultEstimate; and the estimated process start-up cost of pkg.
func (d *Durations) Estimates(pkg string, tests []string) ([]time.Duration, time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	known := d.Tests[pkg]
	fallback := DefaultEstimate
	if len(known) > 0 {
		fallback = median(known)
	} else if all := d.allMedian(); all > 0 {
		fallback = all
	}
	est := make([]time.Duration, len(tests))
	for i, t := range tests {
		if s, ok := known[t]; ok {
			est[i] = secs(s)
		} else {
			est[i] = fallback
		}
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
