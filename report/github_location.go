package report

import (
	"regexp"
	"strconv"
	"strings"
)

// srcLoc is a place in a source file named by test or build output.
type srcLoc struct {
	file      string // as written: a base name (t.Log), or a path (panic frame, -test.fullpath, build output)
	line, col int    // col is 0 when not given
	msg       string // the message it comes with, continuation lines included
}

var (
	// logLineRE matches a t.Log/t.Error/t.Fatal/t.Skip line: "    file_test.go:123: message".
	logLineRE = regexp.MustCompile(`^\s+(\S.*?\.go):([0-9]+): ?(.*)$`)
	// frameRE matches the file line of a goroutine stack frame: "\t/dir/file.go:45 +0x1d".
	frameRE = regexp.MustCompile(`^\t(\S.*?\.go):([0-9]+)(?: \+0x[0-9a-f]+)?$`)
	// buildLineRE matches a compiler error: "dir/file.go:12:3: message".
	buildLineRE = regexp.MustCompile(`^(\S.*?\.go):([0-9]+)(?::([0-9]+))?: (.*)$`)
)

// lastLogLine finds the last t.Log-style line of a test's own output: t.Fatal, t.Skip and
// FailNow end the test, so what it logged last is most often why it failed or skipped
// (the first line is as often a t.Log before the failure). Its message takes the
// continuation lines that follow, indented deeper.
func lastLogLine(lines []string) (srcLoc, bool) {
	at := -1
	var loc srcLoc
	for i, l := range lines {
		m := logLineRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[2])
		if err != nil || n <= 0 {
			continue
		}
		at, loc = i, srcLoc{file: m[1], line: n, msg: m[3]}
	}
	if at < 0 {
		return srcLoc{}, false
	}
	indent := len(lines[at]) - len(strings.TrimLeft(lines[at], " \t"))
	var msg []string
	if loc.msg != "" {
		msg = append(msg, loc.msg)
	}
	for _, l := range lines[at+1:] {
		trimmed := strings.TrimLeft(l, " \t")
		if trimmed == "" || len(l)-len(trimmed) <= indent {
			break
		}
		msg = append(msg, trimmed)
	}
	loc.msg = strings.Join(msg, "\n")
	return loc, true
}

// panicLine returns the index of the first line that starts a panic or a runtime fatal
// error ("panic: boom", "fatal error: concurrent map writes"), or -1.
func panicLine(lines []string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return i
		}
	}
	return -1
}

// panicLoc finds where a panic happened: the first stack frame after the panic line whose
// file inPkg accepts. Its message is the panic line.
func panicLoc(lines []string, inPkg func(file string) bool) (srcLoc, bool) {
	at := panicLine(lines)
	if at < 0 {
		return srcLoc{}, false
	}
	for _, l := range lines[at+1:] {
		m := frameRE.FindStringSubmatch(l)
		if m == nil || !inPkg(m[1]) {
			continue
		}
		n, err := strconv.Atoi(m[2])
		if err != nil || n <= 0 {
			continue
		}
		return srcLoc{file: m[1], line: n, msg: lines[at]}, true
	}
	return srcLoc{msg: lines[at]}, false
}

// buildErrors lists the compiler errors of a build's output.
func buildErrors(output []string) []srcLoc {
	var locs []srcLoc
	for _, l := range strings.Split(strings.Join(output, ""), "\n") {
		m := buildLineRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[2])
		if err != nil || n <= 0 {
			continue
		}
		col, _ := strconv.Atoi(m[3])
		locs = append(locs, srcLoc{file: m[1], line: n, col: col, msg: m[4]})
	}
	return locs
}

// failureMessage is the one-line reason a failed attempt gives: its panic line, or its
// last log line ("file_test.go:12: message"), or def.
func failureMessage(lines []string, def string) string {
	if i := panicLine(lines); i >= 0 {
		return lines[i]
	}
	if loc, ok := lastLogLine(lines); ok {
		msg, _, _ := strings.Cut(loc.msg, "\n")
		return loc.file + ":" + strconv.Itoa(loc.line) + ": " + msg
	}
	return def
}

// failureReason is the one line that says why a test failed, for the job summary: its
// panic line, else the first line of its last log line's message (loc, when found says
// it was), else "".
func failureReason(lines []string, loc srcLoc, found bool) string {
	if i := panicLine(lines); i >= 0 {
		return strings.TrimSpace(lines[i])
	}
	if found {
		msg, _, _ := strings.Cut(loc.msg, "\n")
		return strings.TrimSpace(msg)
	}
	return ""
}
