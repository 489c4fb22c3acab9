package xspec

import (
	"errors"
	"strings"
	"testing"
)

func mustParseAll(t *testing.T, in ...string) []*Spec {
	t.Helper()
	specs := make([]*Spec, len(in))
	for i, s := range in {
		sp, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		specs[i] = sp
	}
	return specs
}

func TestExpand(t *testing.T) {
	tests := []struct {
		in   []string
		ids  []string
		idx  []int
		spec []int // index into in of each gateway's spec
	}{
		{nil, nil, nil, nil},
		{[]string{"popen"}, []string{"gw0"}, []int{0}, []int{0}},
		{[]string{"3*popen"}, []string{"gw0", "gw1", "gw2"}, []int{0, 1, 2}, []int{0, 0, 0}},
		{[]string{"popen", "popen//id=x", "popen"}, []string{"gw0", "x", "gw2"}, []int{0, 0, 0}, []int{0, 1, 2}},
		{[]string{"2*popen//id=w", "popen"}, []string{"w-0", "w-1", "gw2"}, []int{0, 1, 0}, []int{0, 0, 1}},
		{[]string{"2*popen", "1*popen//id=one", "2*exec=sh//id=e"}, []string{"gw0", "gw1", "one", "e-0", "e-1"}, []int{0, 1, 0, 0, 1}, []int{0, 0, 1, 2, 2}},
		// via: to a generated id, to a given id, to one of a counted spec, chains.
		{[]string{"ssh=h", "popen//via=gw0"}, []string{"gw0", "gw1"}, []int{0, 0}, []int{0, 1}},
		{[]string{"2*popen//via=hop", "ssh=h//id=hop"}, []string{"gw0", "gw1", "hop"}, []int{0, 1, 0}, []int{0, 0, 1}},
		{[]string{"2*ssh=h//id=j", "popen//via=j-1"}, []string{"j-0", "j-1", "gw2"}, []int{0, 1, 0}, []int{0, 0, 1}},
		{[]string{"popen//id=a//via=b", "popen//id=b//via=c", "popen//id=c", "popen//via=a"}, []string{"a", "b", "c", "gw3"}, []int{0, 0, 0, 0}, []int{0, 1, 2, 3}},
	}
	for _, tt := range tests {
		specs := mustParseAll(t, tt.in...)
		gws, err := Expand(specs)
		if err != nil {
			t.Errorf("Expand(%q): %v", tt.in, err)
			continue
		}
		if len(gws) != len(tt.ids) {
			t.Errorf("Expand(%q): %d gateways, want %d", tt.in, len(gws), len(tt.ids))
			continue
		}
		for i, g := range gws {
			if g.ID != tt.ids[i] || g.Index != tt.idx[i] || g.Spec != specs[tt.spec[i]] {
				t.Errorf("Expand(%q)[%d] = {%s %d %q}, want {%s %d %q}", tt.in, i, g.ID, g.Index, g.Spec.Raw, tt.ids[i], tt.idx[i], tt.in[tt.spec[i]])
			}
		}
	}
}

func TestExpandErrors(t *testing.T) {
	tests := []struct {
		in   []string
		spec string // the spec the error is about
		pos  int
		want string
	}{
		{[]string{"popen//id=a", "ssh=h//id=a"}, "ssh=h//id=a", 7, `duplicate gateway id "a" (also the id of a gateway of "popen//id=a")`},
		{[]string{"popen", "popen//id=gw0"}, "popen//id=gw0", 7, `duplicate gateway id "gw0" (also the id of a gateway of "popen")`},
		{[]string{"popen//id=gw1", "popen"}, "popen", 0, `duplicate gateway id "gw1" (also the id of a gateway of "popen//id=gw1")`},
		{[]string{"2*popen//id=w", "popen//id=w-1"}, "popen//id=w-1", 7, `duplicate gateway id "w-1"`},
		{[]string{"popen//id=w-1", "2*popen//id=w"}, "2*popen//id=w", 9, `duplicate gateway id "w-1"`},
		{[]string{"popen//via=nope", "popen//id=x"}, "popen//via=nope", 7, `via="nope" names no gateway (expected one of the ids gw0, x)`},
		{[]string{"popen//id=a//via=a"}, "popen//id=a//via=a", 13, `via="a" names a gateway of this same spec`},
		{[]string{"popen//via=gw0"}, "popen//via=gw0", 7, `via="gw0" names a gateway of this same spec`},
		{[]string{"2*popen//id=w//via=w-1"}, "2*popen//id=w//via=w-1", 15, `via="w-1" names a gateway of this same spec`},
		{[]string{"2*ssh=h//id=w", "popen//via=w"}, "popen//via=w", 7, `via="w" names 2 gateways (expected one of them: w-0 .. w-1)`},
		{[]string{"popen//id=a//via=b", "popen//id=b//via=a"}, "popen//id=a//via=b", 13,
			`via="b" makes a cycle "popen//id=a//via=b" -> "popen//id=b//via=a" -> "popen//id=a//via=b"`},
		{[]string{"popen//via=a", "popen//id=a//via=b", "popen//id=b//via=c", "popen//id=c//via=a"}, "popen//id=a//via=b", 13,
			`makes a cycle "popen//id=a//via=b" -> "popen//id=b//via=c" -> "popen//id=c//via=a" -> "popen//id=a//via=b"`},
	}
	for _, tt := range tests {
		_, err := Expand(mustParseAll(t, tt.in...))
		if err == nil {
			t.Errorf("Expand(%q) succeeded, want %q", tt.in, tt.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Expand(%q): error %T, want *Error", tt.in, err)
			continue
		}
		if e.Spec != tt.spec || e.Pos != tt.pos || !strings.Contains(e.Msg, tt.want) {
			t.Errorf("Expand(%q) = %+v\nwant Spec %q, Pos %d, Msg containing %q", tt.in, *e, tt.spec, tt.pos, tt.want)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("Expand(%q): error has more than one line: %q", tt.in, err)
		}
	}
}

func TestExpandBadInput(t *testing.T) {
	if _, err := Expand([]*Spec{nil}); err == nil {
		t.Error("Expand(nil spec) succeeded")
	}
	if _, err := Expand([]*Spec{{Type: TypePopen}}); err == nil || !strings.Contains(err.Error(), "count 0") {
		t.Errorf("Expand(count 0) = %v", err)
	}
	if _, err := Expand([]*Spec{{Type: TypePopen, Count: MaxCount + 1}}); err == nil {
		t.Error("Expand(count > MaxCount) succeeded")
	}
}
