package proto

import (
	"reflect"
	"strings"
	"testing"
)

// The wire is pinned: every field of every message has an explicit CBOR key, and the keys
// are these. Changing one is an incompatible change: bump Version and PROTOCOL.md.
func TestMessageKeysPinned(t *testing.T) {
	want := map[string]string{
		"Info":         "GOOS=1 GOARCH=2 Hostname=3 PID=4 Cwd=5 NCPU=6 Version=7 CacheDir=8 Proto=9 EnvSums=10",
		"RunRequest":   "Path=1 Args=2 Dir=3 Env=4 KillAfter=5 TestLog=6",
		"RunControl":   "Kill=1",
		"RunMessage":   "Out=1 Exit=2",
		"RunExit":      "Code=1 Signal=2 Killed=3 Err=4 Elapsed=5 TestLog=6",
		"SpawnRequest": "Spec=1 Env=2",
	}
	for _, v := range []any{Info{}, RunRequest{}, RunControl{}, RunMessage{}, RunExit{}, SpawnRequest{}} {
		typ := reflect.TypeOf(v)
		var got []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("cbor")
			key, opts, _ := strings.Cut(tag, ",")
			if key == "" || !strings.Contains(opts, "keyasint") {
				t.Errorf("%s.%s has no integer CBOR key (tag %q)", typ.Name(), f.Name, tag)
			}
			got = append(got, f.Name+"="+key)
		}
		if g := strings.Join(got, " "); g != want[typ.Name()] {
			t.Errorf("%s keys:\n got %s\nwant %s", typ.Name(), g, want[typ.Name()])
		}
	}
	names := map[string]string{InfoFunc: "godist.rinfo", RunFunc: "godist.run", SpawnFunc: "godist.spawn"}
	for got, want := range names {
		if got != want {
			t.Errorf("function name %q, want %q", got, want)
		}
	}
	if Version != 1 {
		t.Errorf("Version %d: update this test with PROTOCOL.md", Version)
	}
}
