package ledger

import (
	"encoding/json"
	"io"

	"github.com/godist/godist/gotest"
)

// JSON is an Observer that writes the event stream as go test -json does, one object a
// line (with the Worker field). The first write error stops it; Err reports it.
type JSON struct {
	Events
	w   io.Writer
	err error
}

// NewJSON returns a JSON observer writing to w.
func NewJSON(w io.Writer) *JSON {
	j := &JSON{w: w}
	j.Events = j.write
	return j
}

func (j *JSON) write(e gotest.Event) {
	if j.err != nil {
		return
	}
	b, err := json.Marshal(e)
	if err == nil {
		_, err = j.w.Write(append(b, '\n'))
	}
	j.err = err
}

// Err is the first write error, if any.
func (j *JSON) Err() error { return j.err }
