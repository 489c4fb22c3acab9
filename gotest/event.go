// Package gotest knows the protocol of Go test binaries: how to ask one for its tests, how
// to run a chosen set of them, and how to turn its -test.v=test2json output into the event
// stream that `go test -json` writes.
package gotest

import "time"

// Actions of an Event, as `go test -json` and `go tool test2json` write them.
const (
	ActionStart       = "start"
	ActionRun         = "run"
	ActionPause       = "pause"
	ActionCont        = "cont"
	ActionPass        = "pass"
	ActionFail        = "fail"
	ActionSkip        = "skip"
	ActionOutput      = "output"
	ActionBench       = "bench"
	ActionAttr        = "attr"
	ActionArtifacts   = "artifacts"
	ActionBuildOutput = "build-output"
	ActionBuildFail   = "build-fail"
)

// Event is one line of a `go test -json` stream, plus the gateway that produced it.
// Field order and omitempty rules follow cmd/test2json so that a stream godist writes is
// byte-compatible with what go test writes, except for the added Worker field.
type Event struct {
	ImportPath  string     `json:",omitempty"`
	Time        *time.Time `json:",omitempty"`
	Action      string
	Package     string   `json:",omitempty"`
	Test        string   `json:",omitempty"`
	Elapsed     *float64 `json:",omitempty"`
	Output      string   `json:",omitempty"`
	FailedBuild string   `json:",omitempty"`
	Key         string   `json:",omitempty"`
	Value       string   `json:",omitempty"`
	Path        string   `json:",omitempty"`
	Worker      string   `json:",omitempty"`
}

// IsTerminal reports whether the action ends a test or a package.
func IsTerminal(action string) bool {
	return action == ActionPass || action == ActionFail || action == ActionSkip
}

// StoppedPrefix begins the output line that godist writes for a test or package that did
// not run to its end because the run stopped (-x, --maxfail, an interrupt): such a test or
// package ends "fail", never "pass" or "skip", and this line says why. Reporters count it
// as not run rather than failed.
const StoppedPrefix = "=== godist: stopped before the end: "
