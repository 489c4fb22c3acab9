package xspec

import (
	"fmt"
	"strconv"
	"strings"
)

// Gateway is one worker's gateway: a spec with Count N gives N of them.
type Gateway struct {
	ID    string // unique among the gateways of one Expand
	Spec  *Spec  // shared by the gateways of one spec
	Index int    // 0..Spec.Count-1: which of its spec's gateways this is
}

// Expand turns specs, in command-line order, into one Gateway per worker,
// in the same order, and checks the ids and via= keys across specs (see
// "Gateway ids" in the package comment). The specs must come from Parse.
// Its errors are *Error, about the spec at fault.
func Expand(specs []*Spec) ([]Gateway, error) {
	var gws []Gateway
	byID := map[string]int{} // id -> index in gws
	baseCount := map[string]int{}
	for k, sp := range specs {
		if sp == nil {
			return nil, &Error{Msg: fmt.Sprintf("spec %d is nil (expected a spec from Parse)", k)}
		}
		if sp.Count < 1 || sp.Count > MaxCount {
			return nil, &Error{Spec: raw(sp), Msg: fmt.Sprintf("count %d is out of range (expected 1..%d)", sp.Count, MaxCount)}
		}
		if sp.ID != "" && sp.Count > 1 {
			baseCount[sp.ID] = sp.Count
		}
		for i := 0; i < sp.Count; i++ {
			id := gatewayID(sp, i, len(gws))
			if prev, dup := byID[id]; dup {
				return nil, &Error{Spec: raw(sp), Pos: keyPos(sp, "id"),
					Msg: fmt.Sprintf("duplicate gateway id %q (also the id of a gateway of %q)", id, raw(gws[prev].Spec))}
			}
			byID[id] = len(gws)
			gws = append(gws, Gateway{ID: id, Spec: sp, Index: i})
		}
	}

	// via: each spec has at most one edge, to the spec of its via gateway.
	next := make(map[*Spec]*Spec)
	for _, sp := range specs {
		if sp.Via == "" {
			continue
		}
		j, ok := byID[sp.Via]
		if !ok {
			msg := fmt.Sprintf("via=%q names no gateway (expected one of the ids %s)", sp.Via, idList(gws))
			if n := baseCount[sp.Via]; n > 0 {
				msg = fmt.Sprintf("via=%q names %d gateways (expected one of them: %s-0 .. %s-%d)", sp.Via, n, sp.Via, sp.Via, n-1)
			}
			return nil, &Error{Spec: raw(sp), Pos: keyPos(sp, "via"), Msg: msg}
		}
		if gws[j].Spec == sp {
			return nil, &Error{Spec: raw(sp), Pos: keyPos(sp, "via"),
				Msg: fmt.Sprintf("via=%q names a gateway of this same spec (expected the id of another spec's gateway)", sp.Via)}
		}
		next[sp] = gws[j].Spec
	}
	done := map[*Spec]bool{}
	for _, sp := range specs {
		onPath := map[*Spec]bool{}
		for s := sp; s != nil && !done[s]; s = next[s] {
			if onPath[s] {
				cycle := []string{strconv.Quote(raw(s))}
				for t := next[s]; ; t = next[t] {
					cycle = append(cycle, strconv.Quote(raw(t)))
					if t == s {
						break
					}
				}
				return nil, &Error{Spec: raw(s), Pos: keyPos(s, "via"),
					Msg: fmt.Sprintf("via=%q makes a cycle %s (expected a chain that ends at a gateway without via=)", s.Via, strings.Join(cycle, " -> "))}
			}
			onPath[s] = true
		}
		for s := range onPath {
			done[s] = true
		}
	}
	return gws, nil
}

func gatewayID(sp *Spec, i, k int) string {
	switch {
	case sp.ID == "":
		return "gw" + strconv.Itoa(k)
	case sp.Count == 1:
		return sp.ID
	default:
		return sp.ID + "-" + strconv.Itoa(i)
	}
}

func raw(sp *Spec) string {
	if sp.Raw != "" {
		return sp.Raw
	}
	return sp.String()
}

// keyPos returns the offset of key in the spec's text, or 0.
// Keys can be found by plain search: no value contains "//KEY=".
func keyPos(sp *Spec, key string) int {
	if i := strings.Index(raw(sp), "//"+key+"="); i >= 0 {
		return i + 2
	}
	return 0
}

func idList(gws []Gateway) string {
	const max = 8
	var ids []string
	for i, g := range gws {
		if i == max {
			ids = append(ids, fmt.Sprintf("... (%d in all)", len(gws)))
			break
		}
		ids = append(ids, g.ID)
	}
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, ", ")
}
