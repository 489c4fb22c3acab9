package child

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Renice sets the niceness of every thread of process pid. Linux keeps a niceness per
// thread, and a new thread or child process inherits the one of the thread that made it,
// so setting it on all threads at once sets it for everything the process starts later.
// Elsewhere it sets the process's.
func Renice(pid, nice int) error {
	// Twice: a thread made while the first pass ran may have copied an old niceness.
	if err := renice(pid, nice); err != nil {
		return err
	}
	return renice(pid, nice)
}

func renice(pid, nice int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return setPriority(pid, nice)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := setPriority(tid, nice); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}
