package report

import (
	"sync"
	"time"

	"github.com/godist/godist/gotest"
)

// Tally counts a run as the Reporter's summary line does (see the package documentation),
// printing nothing: for what needs the totals when there is no Reporter (-json) or
// besides it (--post-run-command). It is an Observer of the stream; the zero value is
// ready to use; it is safe for concurrent use.
type Tally struct {
	mu    sync.Mutex
	model *runModel // without output
	total int
}

// Event takes the next event of the stream.
func (t *Tally) Event(e gotest.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.model == nil {
		t.model = newModel(false)
		t.model.dropOutput = true
	}
	t.model.event(e)
}

// SetTotal takes the number of top-level test units planned.
func (t *Tally) SetTotal(tests int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total = tests
}

// WorkerState and Note are of no use to a Tally.
func (t *Tally) WorkerState(string, string) {}
func (t *Tally) Note(string)                {}

// Summary is what the stream so far comes to, with elapsed as its time.
func (t *Tally) Summary(elapsed time.Duration) Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	var s Summary
	if t.model != nil {
		s = t.model.summary(t.total)
	} else if t.total > 0 {
		s.NotRun = t.total
	}
	s.Elapsed = elapsed
	return s
}
