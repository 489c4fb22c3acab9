package chaos

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// BecomeSubreaper makes this process a child subreaper (PR_SET_CHILD_SUBREAPER): every
// process below it that loses its parent is re-parented to it instead of to init, so
// that what a fault leaves behind can be found, counted and reaped.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// procInfo is one line of the process table.
type procInfo struct {
	pid, ppid int
	state     byte
	args      []string
}

// table reads /proc: every process, by pid.
func table() map[int]procInfo {
	ents, _ := os.ReadDir("/proc")
	out := make(map[int]procInfo, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] == "" {
			continue
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		p := procInfo{pid: pid, ppid: ppid, state: f[0][0]}
		if c, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil {
			p.args = strings.Split(strings.TrimRight(string(c), "\x00"), "\x00")
		}
		out[pid] = p
	}
	return out
}

// below lists the processes of t under root (not root itself), zombies included.
func below(t map[int]procInfo, root int) []procInfo {
	var out []procInfo
	for _, p := range t {
		for q, n := p.ppid, 0; q > 1 && n < 64; q, n = t[q].ppid, n+1 {
			if q == root {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// ancestors is pid's chain of parents in t, nearest first, up to (not including) init.
func ancestors(t map[int]procInfo, pid int) []int {
	var out []int
	for q, n := t[pid].ppid, 0; q > 1 && n < 64; q, n = t[q].ppid, n+1 {
		out = append(out, q)
	}
	return out
}

// isTestProcess says whether p runs a test binary as godist workers start them.
func (p procInfo) isTestProcess() bool {
	for _, a := range p.args {
		if a == "-test.v=test2json" {
			return true
		}
	}
	return false
}

// isWorker says whether p is a godist worker (`godist worker ...`).
func (p procInfo) isWorker() bool { return len(p.args) >= 2 && p.args[1] == "worker" }

func (p procInfo) String() string {
	return strconv.Itoa(p.pid) + " (" + string(p.state) + ") " + strings.Join(p.args, " ")
}

// reapOrphans waits for the zombies among this process's children that are not in
// ours (the processes the harness started itself and waits for through os/exec):
// orphans re-parented here that have ended. It returns how many it reaped. It must not
// run while the harness starts commands it has not yet recorded in ours.
func reapOrphans(ours map[int]bool) int {
	self := os.Getpid()
	n := 0
	for _, p := range table() {
		if p.ppid != self || ours[p.pid] || p.state != 'Z' {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(p.pid, &ws, unix.WNOHANG, nil); err == nil && got == p.pid {
			n++
		}
	}
	return n
}

// kill sends sig to pid, ignoring a process that is already gone.
func kill(pid int, sig syscall.Signal) error {
	err := syscall.Kill(pid, sig)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}
