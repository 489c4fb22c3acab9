//go:build !linux && !darwin && !freebsd && !netbsd

package filesum

import (
	"os"
	"time"
)

// ChangeTime is fi's status change time; ok is false: this platform's is not read.
func ChangeTime(os.FileInfo) (time.Time, bool) { return time.Time{}, false }
