//go:build linux

package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// event is the part of a go test -json event (with godist's Worker) the checks read.
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Output  string
	Worker  string
}

// Outcome is a run's terminal actions: for each test ("PKG TEST") and package ("PKG"),
// the pass, fail or skip actions in the order they came, and each test's output.
type Outcome struct {
	Actions map[string][]string
	Workers map[string][]string // who reported each action of Actions
	Output  map[string]string
}

func isTerminal(a string) bool { return a == "pass" || a == "fail" || a == "skip" }

// key names a test or package in an Outcome.
func key(pkg, test string) string {
	if test == "" {
		return pkg
	}
	return pkg + " " + test
}

// ParseOutcome reads a go test -json stream. A last line cut short (a master killed
// while it wrote) is ignored, as is anything that is not an event.
func ParseOutcome(data []byte) Outcome {
	o := Outcome{Actions: map[string][]string{}, Workers: map[string][]string{}, Output: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Package == "" {
			continue
		}
		k := key(e.Package, e.Test)
		switch {
		case e.Action == "output":
			o.Output[k] += e.Output
		case isTerminal(e.Action):
			o.Actions[k] = append(o.Actions[k], e.Action)
			o.Workers[k] = append(o.Workers[k], e.Worker)
		}
	}
	return o
}

// crashNote starts the line godist adds to the output of a test whose process died
// under it (runner/batch.go).
const crashNote = "=== godist: test process "

// parentOf is the top-level test of a subtest key ("PKG TestA/x" -> "PKG TestA"), the key
// itself for a top-level test or a package (whose path may hold slashes too).
func parentOf(k string) string {
	pkg, test, ok := strings.Cut(k, " ")
	if !ok {
		return k
	}
	top, _, _ := strings.Cut(test, "/")
	return pkg + " " + top
}
