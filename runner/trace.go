package runner

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// GODIST_TRACE=1 prints, on stderr, when each phase of a run starts and ends (resolve,
// gateways, each binary linked, listed, each batch): what bench/REALWORLD.md breaks a first
// run down by.
var (
	traceOn    = os.Getenv("GODIST_TRACE") != ""
	traceStart = time.Now()
	traceMu    sync.Mutex
)

func tracef(format string, args ...any) {
	if !traceOn {
		return
	}
	traceMu.Lock()
	defer traceMu.Unlock()
	fmt.Fprintf(os.Stderr, "godist-trace %7.3fs %s\n", time.Since(traceStart).Seconds(), fmt.Sprintf(format, args...))
}
