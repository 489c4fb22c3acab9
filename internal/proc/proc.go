// Package proc reads Linux's process table (/proc): which processes live, whose children
// they are, what they run. Tests use it to prove that nothing outlives its owner.
package proc

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// stat returns the state letter and parent pid of pid, ok false if there is no such process.
func stat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) == 0 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], ppid, true
}

// Alive reports whether pid is a running process (not a zombie).
func Alive(pid int) bool {
	state, _, ok := stat(pid)
	return ok && state != 'Z'
}

// Stopped reports whether pid is stopped by a signal (SIGSTOP and the like).
func Stopped(pid int) bool {
	state, _, ok := stat(pid)
	return ok && state == 'T'
}

// Parent is the parent pid of a live pid, 0 if there is none.
func Parent(pid int) int {
	state, ppid, ok := stat(pid)
	if !ok || state == 'Z' {
		return 0
	}
	return ppid
}

// pids lists every process id.
func pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Descendants lists the live processes below pid (not pid itself).
func Descendants(pid int) []int {
	parent := map[int]int{}
	for _, p := range pids() {
		if pp := Parent(p); pp != 0 {
			parent[p] = pp
		}
	}
	var out []int
	for p := range parent {
		for q, n := parent[p], 0; q != 0 && n < 64; q, n = parent[q], n+1 {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// Matching lists the live processes whose command line (arguments joined by spaces)
// contains every one of subs.
func Matching(subs ...string) []int {
	var out []int
	for _, p := range pids() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		all := true
		for _, s := range subs {
			if !strings.Contains(cmd, s) {
				all = false
				break
			}
		}
		if all && Alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// HasEnv reports whether the environment pid started with holds a variable named name.
func HasEnv(pid int, name string) bool {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return bytes.HasPrefix(b, []byte(name+"=")) || bytes.Contains(b, []byte("\x00"+name+"="))
}
