package proc

import (
	"os"
	"strconv"
)

// Cwd is the working directory of pid, "" if it cannot be read.
func Cwd(pid int) string {
	dir, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return ""
	}
	return dir
}
