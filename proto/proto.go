// Package proto is godist's application protocol: the names of the functions a worker
// serves, and the messages the master and a worker exchange on their channels, each with
// explicit CBOR keys. PROTOCOL.md in this directory writes it down; const_test.go pins it.
//
// It sits on top of the channel protocol (package channel, which has its own version and
// handshake) and below both sides: the master's transports (gateway) and runner, and the
// worker side (worker), import it; it imports nothing of godist.
//
// Version changes whenever a message or a function's meaning changes incompatibly. A
// worker reports it in Info; the master compares it at connect and refuses a worker that
// speaks another (a godist serve of another release), naming both versions.
package proto

import (
	"fmt"
	"time"
)

// Version is the application protocol's version.
const Version = 1

// Release is the godist release of this binary, which a worker reports in Info ("dev" for
// a build from source; a release build sets it with -ldflags -X).
var Release = "dev"

// The functions a worker serves, by the name the master opens a channel with.
const (
	// InfoFunc answers with the worker's Info.
	InfoFunc = "godist.rinfo"
	// RunFunc runs one test process: RunRequest in, RunMessages out.
	RunFunc = "godist.run"
	// SpawnFunc is a hop's side of via=: SpawnRequest in, then the inner gateway's bytes.
	SpawnFunc = "godist.spawn"
)

// The environment a socket= gateway asks godist serve to start its worker with: the
// working directory (chdir=) and niceness (nice=), which serve applies and does not pass
// on.
const (
	EnvServeChdir = "GODIST_SERVE_CHDIR"
	EnvServeNice  = "GODIST_SERVE_NICE"
)

// Info is what a worker reports about itself (execnet's rinfo), the answer on InfoFunc.
type Info struct {
	GOOS     string `cbor:"1,keyasint" json:"goos"`
	GOARCH   string `cbor:"2,keyasint" json:"goarch"`
	Hostname string `cbor:"3,keyasint" json:"hostname"`
	PID      int    `cbor:"4,keyasint" json:"pid"`
	Cwd      string `cbor:"5,keyasint" json:"cwd"`
	NCPU     int    `cbor:"6,keyasint" json:"ncpu"`
	// Version is the godist release of the worker binary ("dev" for a build from source).
	Version string `cbor:"7,keyasint" json:"version"`
	// CacheDir is the worker's user cache (${XDG_CACHE_HOME:-$HOME/.cache}), "" if none.
	CacheDir string `cbor:"8,keyasint,omitempty" json:"cache_dir,omitempty"`
	// Proto is the application protocol the worker speaks (Version). A worker too old
	// to send it sends 0.
	Proto int `cbor:"9,keyasint" json:"proto"`
	// EnvSums are the sha256 (hex) of the value of every variable of the worker's
	// environment, by name: what a test process there reads, for the master's result cache
	// to tell whether it changed. A worker too old to send it sends none.
	EnvSums map[string]string `cbor:"10,keyasint,omitempty" json:"-"`
}

// RunRequest asks the worker to run one process; it is the first message on a RunFunc
// channel.
type RunRequest struct {
	Path string   `cbor:"1,keyasint"`           // executable
	Args []string `cbor:"2,keyasint,omitempty"` // arguments, without argv[0]
	Dir  string   `cbor:"3,keyasint,omitempty"` // working directory
	Env  []string `cbor:"4,keyasint,omitempty"` // added to the worker's own environment
	// KillAfter, if positive, kills the process group that long after the start, as a
	// last resort behind the test binary's own -test.timeout.
	KillAfter time.Duration `cbor:"5,keyasint,omitempty"`
	// TestLog asks the worker to run the process with -test.testlogfile (a file of its
	// own) and to send the log back in the Exit: the files and variables the tests read.
	TestLog bool `cbor:"6,keyasint,omitempty"`
}

// RunControl is what the master may send on a RunFunc channel after the RunRequest.
type RunControl struct {
	Kill bool `cbor:"1,keyasint,omitempty"`
}

// RunMessage is what the worker sends on a RunFunc channel: output chunks in order, then
// one Exit.
type RunMessage struct {
	Out  []byte   `cbor:"1,keyasint,omitempty"`
	Exit *RunExit `cbor:"2,keyasint,omitempty"`
}

// RunExit says how the process ended.
type RunExit struct {
	Code    int           `cbor:"1,keyasint"`           // exit code; -1 when killed by a signal or not started
	Signal  string        `cbor:"2,keyasint,omitempty"` // the signal that ended it, if any
	Killed  string        `cbor:"3,keyasint,omitempty"` // why the worker killed it ("timeout", "requested")
	Err     string        `cbor:"4,keyasint,omitempty"` // the process could not be started
	Elapsed time.Duration `cbor:"5,keyasint,omitempty"`
	// TestLog is the process's test log, when the request asked for it and the log was
	// at most MaxTestLog bytes (else empty).
	TestLog []byte `cbor:"6,keyasint,omitempty"`
}

// MaxTestLog is the largest test log a worker sends back.
const MaxTestLog = 8 << 20

// SpawnRequest is the first message on a SpawnFunc channel.
type SpawnRequest struct {
	Spec string   `cbor:"1,keyasint"`           // the inner gateway's spec, as given
	Env  []string `cbor:"2,keyasint,omitempty"` // for the worker (popen) or the bootstrap (others)
}

// Success reports whether the process exited with status 0.
func (e *RunExit) Success() bool { return e.Code == 0 && e.Err == "" }

// String says how the process ended, as go test would ("exit status 3", "signal: killed").
func (e *RunExit) String() string {
	switch {
	case e.Err != "":
		return "could not start: " + e.Err
	case e.Killed != "":
		return fmt.Sprintf("killed (%s)", e.Killed)
	case e.Signal != "":
		return "signal: " + e.Signal
	default:
		return fmt.Sprintf("exit status %d", e.Code)
	}
}
