package xspec

import (
	"strconv"
	"strings"
)

// Limits of docker= values, as docker's own reference grammar has them.
const (
	MaxImageLen   = 255 // the longest IMAGE name (without its tag and digest)
	MaxTagLen     = 128
	MaxNetworkLen = 128
)

// image checks a docker= IMAGE that starts at off in p.s: a reference as docker takes it,
// [REGISTRY[:PORT]/]NAME[:TAG][@ALGORITHM:HEX], or an image id. It never starts with '-',
// so no docker client can take it for an option.
func (p *parser) image(off int, ref string) *Error {
	bad := func(at int, why string) *Error {
		return p.errf(off+at, "bad image %q: %s (expected %s)", ref, why, dockerTarget)
	}
	name := ref
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		name = ref[:i]
		if why := checkDigest(ref[i+1:]); why != "" {
			return bad(i+1, why)
		}
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i:], "/") {
		tag := name[i+1:]
		if why := checkTag(tag); why != "" {
			return bad(i+1, why)
		}
		name = name[:i]
	}
	if name == "" {
		return bad(0, "no name")
	}
	if len(name) > MaxImageLen {
		return bad(0, "the name is longer than 255 bytes")
	}
	comps := strings.Split(name, "/")
	at := 0
	if len(comps) > 1 && (strings.ContainsAny(comps[0], ".:") || comps[0] == "localhost") {
		if why := checkRegistry(comps[0]); why != "" {
			return bad(0, why)
		}
		at = len(comps[0]) + 1
		comps = comps[1:]
	}
	for _, c := range comps {
		if why := checkPathComponent(c); why != "" {
			return bad(at, why)
		}
		at += len(c) + 1
	}
	return nil
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' || isDigit(c) }

// checkPathComponent: lower-case letters and digits, runs of them joined by one '.', one
// or two '_', or any number of '-'.
func checkPathComponent(c string) string {
	if c == "" {
		return "an empty name component"
	}
	if !isLower(c[0]) || !isLower(c[len(c)-1]) {
		return "name component " + strconv.Quote(c) + " must start and end with a lower-case letter or digit"
	}
	for i := 0; i < len(c); i++ {
		if isLower(c[i]) {
			continue
		}
		j := i
		for j < len(c) && !isLower(c[j]) {
			j++
		}
		sep := c[i:j]
		if sep != "." && sep != "_" && sep != "__" && strings.Trim(sep, "-") != "" {
			return "name component " + strconv.Quote(c) + " has " + strconv.Quote(sep) + " (lower-case letters and digits, joined by '.', '_', '__' or dashes)"
		}
		i = j - 1
	}
	return ""
}

// checkRegistry: host name components of letters, digits and inner '-', joined by '.',
// then an optional :PORT.
func checkRegistry(r string) string {
	host, port, hasPort := strings.Cut(r, ":")
	if hasPort {
		if _, ok := parsePort(port); !ok {
			return "registry " + strconv.Quote(r) + " has a bad port (expected 1..65535)"
		}
	}
	for _, h := range strings.Split(host, ".") {
		ok := h != "" && h[0] != '-' && h[len(h)-1] != '-'
		for i := 0; ok && i < len(h); i++ {
			ok = isLetter(h[i]) || isDigit(h[i]) || h[i] == '-'
		}
		if !ok {
			return "registry " + strconv.Quote(r) + " is not a host name (letters, digits, '-', joined by '.')"
		}
	}
	return ""
}

// checkTag: 1 to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'.
func checkTag(t string) string {
	if t == "" {
		return "an empty tag after \":\""
	}
	if len(t) > MaxTagLen {
		return "the tag is longer than 128 bytes"
	}
	if t[0] == '.' || t[0] == '-' {
		return "tag " + strconv.Quote(t) + " starts with " + strconv.Quote(t[:1])
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !isLetter(c) && !isDigit(c) && c != '_' && c != '.' && c != '-' {
			return "tag " + strconv.Quote(t) + " has " + strconv.Quote(t[i:i+1]) + " (letters, digits, '_', '.', '-')"
		}
	}
	return ""
}

// checkDigest: ALGORITHM:HEX, ALGORITHM lower-case letters and digits (joined by one of
// '+._-'), HEX at least 32 lower-case hexadecimal digits (sha256: exactly 64).
func checkDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || alg == "" || hex == "" {
		return "digest " + strconv.Quote(d) + " is not ALGORITHM:HEX"
	}
	prevSep := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		sep := strings.IndexByte("+._-", c) >= 0
		if !isLower(c) && !sep || sep && prevSep {
			return "digest algorithm " + strconv.Quote(alg) + " is not lower-case letters and digits"
		}
		prevSep = sep
	}
	if prevSep {
		return "digest algorithm " + strconv.Quote(alg) + " is not lower-case letters and digits"
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; !isDigit(c) && (c < 'a' || c > 'f') {
			return "digest " + strconv.Quote(d) + " is not lower-case hexadecimal after \":\""
		}
	}
	if len(hex) < 32 || alg == "sha256" && len(hex) != 64 {
		return "digest " + strconv.Quote(d) + " has the wrong length"
	}
	return ""
}

// network checks network=NAME: a docker network's name ("none", "host", "bridge" or one
// made with docker network create). Another container's network (docker's
// container:NAME) is refused: its containers would share that container's hostname, and
// with it what godist takes for one host.
func (p *parser) network(v string, off int) *Error {
	if strings.HasPrefix(v, "container:") {
		return p.errf(off, "network %q is not accepted: containers that share another's network share its hostname, which godist takes for the host (expected network=NAME, a docker network)", v)
	}
	ok := len(v) <= MaxNetworkLen && (isLetter(v[0]) || isDigit(v[0]))
	for i := 0; ok && i < len(v); i++ {
		ok = isWord(v[i])
	}
	if !ok {
		return p.errf(off, "bad network %q (expected network=NAME, NAME of letters, digits, '.', '-', '_' starting with a letter or digit, at most %d bytes)", v, MaxNetworkLen)
	}
	return nil
}
