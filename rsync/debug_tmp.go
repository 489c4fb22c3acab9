package rsync

import (
	"fmt"
	"os"
	"time"
)

var dbgT0 = time.Now()
var dbgOn = os.Getenv("RSYNC_DEBUG") != ""

func dbg(format string, args ...any) {
	if dbgOn {
		fmt.Fprintf(os.Stderr, "%8.1fms "+format+"\n", append([]any{float64(time.Since(dbgT0).Microseconds()) / 1000}, args...)...)
	}
}
