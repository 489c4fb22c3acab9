package xspec

import (
	"fmt"
	"net/netip"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Gateway types, the values of Spec.Type.
const (
	TypePopen  = "popen"
	TypeSSH    = "ssh"
	TypeSocket = "socket"
	TypeExec   = "exec"
	TypeDocker = "docker"
)

// Values of Spec.Pull, the docker= key pull=.
const (
	PullMissing = "missing" // pull IMAGE only when the engine does not have it (docker's default)
	PullAlways  = "always"  // pull IMAGE before every start
	PullNever   = "never"   // never pull: an IMAGE the engine lacks fails the start
)

// Limits.
const (
	MaxCount = 1024 // the largest N of "N*"
	MaxIDLen = 64   // the longest id= or via= value
	MinNice  = -20
	MaxNice  = 19
)

// Spec is one parsed gateway spec. Specs made by Parse are valid; other
// code should treat them as read-only.
type Spec struct {
	Raw    string // the spec as given to Parse
	Count  int    // N of "N*"; 1 if absent
	Type   string // TypePopen, TypeSSH, TypeSocket, TypeExec or TypeDocker
	Target string // text after "TYPE=": HOST, HOST:PORT, COMMAND or IMAGE; "" for popen

	// User, Host and Port are parsed from Target for ssh and socket specs.
	// Host has no brackets ("::1" for "[::1]:22"). Port is 0 when an ssh
	// target has none.
	User string
	Host string
	Port int

	ID      string            // id=; "" if not given
	Chdir   string            // chdir=
	Nice    int               // nice=, valid only if HasNice
	HasNice bool              // nice= was given
	Env     map[string]string // env:NAME=VALUE; nil if none given
	Via     string            // via=
	GOOS    string            // goos=
	GOARCH  string            // goarch=

	// Network and Pull are the docker= keys network= and pull= ("" if not given: the
	// gateway package then uses "none" and PullMissing). Other types refuse them.
	Network string
	Pull    string
}

// Error is the error of Parse and Expand. Its Error method gives one line
// that quotes the spec, names the wrong part and says what was expected.
type Error struct {
	Spec string // the spec, as given
	Pos  int    // byte offset in Spec of the wrong part (0 if it is the whole spec)
	Msg  string // what is wrong; user text in it is always quoted
}

func (e *Error) Error() string {
	return fmt.Sprintf("xspec: %q: %s", e.Spec, e.Msg)
}

const (
	grammar       = "[N*]TYPE[//KEY=VALUE]..."
	typesAccepted = "popen, ssh=HOST, socket=HOST:PORT, exec=COMMAND or docker=IMAGE"
	keysAccepted  = "id, chdir, nice, env:NAME, via, goos, goarch; for docker=: network, pull"
	sshTarget     = "ssh=[USER@]HOST[:PORT]"
	socketTarget  = "socket=HOST:PORT"
	execTarget    = "exec=COMMAND"
	dockerTarget  = "docker=[REGISTRY/]NAME[:TAG][@DIGEST]"
)

type parser struct {
	s string
}

func (p *parser) errf(pos int, format string, args ...any) *Error {
	return &Error{Spec: p.s, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses and validates one gateway spec. Its errors are *Error.
func Parse(s string) (*Spec, error) {
	sp, err := parse(s)
	if err != nil {
		return nil, err // not a typed nil
	}
	return sp, nil
}

func parse(s string) (*Spec, *Error) {
	p := &parser{s: s}
	if s == "" {
		return nil, p.errf(0, "empty spec (expected %s with TYPE %s)", grammar, typesAccepted)
	}
	if err := p.checkChars(); err != nil {
		return nil, err
	}
	sp := &Spec{Raw: s, Count: 1}

	pos := 0
	if i := strings.IndexAny(s, "*=/"); i >= 0 && s[i] == '*' {
		n, err := p.count(s[:i])
		if err != nil {
			return nil, err
		}
		sp.Count = n
		pos = i + 1
	}

	end, err := p.head(sp, pos)
	if err != nil {
		return nil, err
	}

	seen := map[string]int{}
	for end < len(s) { // s[end:] starts with "//"
		start := end + 2
		end = nextKey(s, start)
		if err := p.key(sp, start, s[start:end], seen); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{"network", "pull"} {
		if off, ok := seen[k]; ok && sp.Type != TypeDocker {
			return nil, p.errf(off, "key %q is for docker=IMAGE gateways only (this spec is %s)", k, sp.Type)
		}
	}
	if sp.GOOS != "" && sp.GOARCH != "" && !isPort(sp.GOOS, sp.GOARCH) {
		return nil, p.errf(seen["goarch"], "goos=%s with goarch=%s is not a Go port (expected a pair of `go tool dist list`)", sp.GOOS, sp.GOARCH)
	}
	return sp, nil
}

func (p *parser) checkChars() *Error {
	for i, r := range p.s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(p.s[i:]); size == 1 {
				return p.errf(i, "invalid UTF-8 at byte %d (expected UTF-8 text)", i)
			}
		}
		if unicode.IsControl(r) {
			return p.errf(i, "control character %q at byte %d (not allowed anywhere in a spec)", r, i)
		}
		if !unicode.IsGraphic(r) {
			return p.errf(i, "non-printing character %q at byte %d (not allowed anywhere in a spec)", r, i)
		}
	}
	return nil
}

func (p *parser) count(c string) (int, *Error) {
	n := 0
	for i := 0; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return 0, p.errf(0, "bad count %q (expected a whole number 1..%d before \"*\")", c, MaxCount)
		}
		if n <= MaxCount {
			n = n*10 + int(c[i]-'0')
		}
	}
	switch {
	case c == "":
		return 0, p.errf(0, "missing count before \"*\" (expected a whole number 1..%d)", MaxCount)
	case n < 1:
		return 0, p.errf(0, "count %s makes no gateways (expected 1..%d)", c, MaxCount)
	case n > MaxCount:
		return 0, p.errf(0, "count %s is too large (expected 1..%d)", c, MaxCount)
	}
	return n, nil
}

// head parses TYPE[=TARGET] starting at pos and returns where it ends:
// len(p.s) or the index of the "//" of the first key.
func (p *parser) head(sp *Spec, pos int) (int, *Error) {
	s := p.s
	rest := s[pos:]
	n := strings.IndexAny(rest, "=/")
	if n < 0 {
		n = len(rest)
	}
	name := rest[:n]
	after := pos + n // index of '=' or '/' after the type, or len(s)
	switch name {
	case TypePopen:
		if after < len(s) && s[after] == '=' {
			return 0, p.errf(after, "popen takes no value, got %q (expected popen[//KEY=VALUE]...)", s[after:strictEnd(s, after)])
		}
		if after < len(s) && !strings.HasPrefix(s[after:], "//") {
			return 0, p.errf(after, "unexpected %q after popen (expected //KEY=VALUE)", s[after:strictEnd(s, after)])
		}
		sp.Type = TypePopen
		return after, nil
	case TypeSSH, TypeSocket, TypeExec, TypeDocker:
	case "":
		return 0, p.errf(pos, "missing gateway type (expected %s)", typesAccepted)
	default:
		return 0, p.errf(pos, "unknown gateway type %q (expected %s)", name, typesAccepted)
	}
	sp.Type = name
	want := map[string]string{TypeSSH: sshTarget, TypeSocket: socketTarget, TypeExec: execTarget, TypeDocker: dockerTarget}[name]
	if after == len(s) || s[after] != '=' {
		return 0, p.errf(after, "%s needs a value (expected %s)", name, want)
	}
	start := after + 1
	var end int
	if name == TypeExec {
		end = nextKey(s, start)
	} else {
		end = strictEnd(s, start)
	}
	target := s[start:end]
	sp.Target = target
	if name == TypeExec {
		if strings.TrimSpace(target) == "" {
			return 0, p.errf(start, "empty command after \"exec=\" (expected %s)", execTarget)
		}
		return end, nil
	}
	if target == "" {
		return 0, p.errf(start, "empty value after %q (expected %s)", name+"=", want)
	}
	if name == TypeDocker {
		if err := p.image(start, target); err != nil {
			return 0, err
		}
		return end, nil
	}
	if err := p.hostPort(sp, start, target); err != nil {
		return 0, err
	}
	return end, nil
}

// strictEnd returns the index of the first "//" at or after from, or len(s).
func strictEnd(s string, from int) int {
	if i := strings.Index(s[from:], "//"); i >= 0 {
		return from + i
	}
	return len(s)
}

// nextKey returns the index of the first "//" at or after from that starts
// a key (is followed by a key-shaped word and '=', or by "env:"), or len(s).
func nextKey(s string, from int) int {
	for i := from; i+1 < len(s); i++ {
		if s[i] == '/' && s[i+1] == '/' && keyShaped(s[i+2:]) {
			return i
		}
	}
	return len(s)
}

func keyShaped(t string) bool {
	if strings.HasPrefix(t, "env:") {
		return true
	}
	if t == "" || !isLetter(t[0]) {
		return false
	}
	for i := 1; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '=':
			return true
		case isLetter(c) || isDigit(c) || c == '_' || c == '-':
		default:
			return false
		}
	}
	return false
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// isWord reports whether c may appear in a user, host name or id.
func isWord(c byte) bool { return isLetter(c) || isDigit(c) || c == '.' || c == '-' || c == '_' }

// hostPort parses an ssh or socket target that starts at off in p.s.
func (p *parser) hostPort(sp *Spec, off int, t string) *Error {
	want := sshTarget
	if sp.Type == TypeSocket {
		want = socketTarget
	}
	hostOff := off
	if i := strings.IndexByte(t, '@'); i >= 0 {
		if sp.Type == TypeSocket {
			return p.errf(off, "socket takes no user, got %q (expected %s)", t[:i+1], want)
		}
		user := t[:i]
		if err := p.word("user", user, off, want); err != nil {
			return err
		}
		sp.User = user
		hostOff = off + i + 1
		t = t[i+1:]
	}

	var host, port string
	hasPort := false
	if strings.HasPrefix(t, "[") {
		end := strings.IndexByte(t, ']')
		if end < 0 {
			return p.errf(hostOff, "missing \"]\" in %q (expected [IPV6]:PORT)", t)
		}
		host = t[1:end]
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() || !validZone(addr.Zone()) {
			return p.errf(hostOff, "bad IPv6 address %q (expected %s with an IPv6 HOST in brackets)", t[:end+1], want)
		}
		rest := t[end+1:]
		switch {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return p.errf(hostOff+end+1, "unexpected %q after %q (expected :PORT)", rest, t[:end+1])
		}
	} else {
		if strings.Count(t, ":") > 1 {
			return p.errf(hostOff, "IPv6 address %q needs brackets (expected [ADDR] or [ADDR]:PORT)", t)
		}
		host, port, hasPort = strings.Cut(t, ":")
		if err := p.word("host", host, hostOff, want); err != nil {
			return err
		}
	}
	sp.Host = host
	if hasPort {
		portOff := hostOff + len(t) - len(port)
		n, ok := parsePort(port)
		if !ok {
			return p.errf(portOff, "bad port %q (expected 1..65535)", port)
		}
		sp.Port = n
	} else if sp.Type == TypeSocket {
		return p.errf(off, "socket needs a port, got %q (expected %s)", sp.Target, want)
	}
	return nil
}

// word checks a user or host name.
func (p *parser) word(what, w string, off int, want string) *Error {
	if w == "" {
		return p.errf(off, "empty %s (expected %s)", what, want)
	}
	if w[0] == '-' {
		return p.errf(off, "%s %q starts with \"-\" (expected %s)", what, w, want)
	}
	for i, r := range w {
		if r >= utf8.RuneSelf || !isWord(byte(r)) {
			return p.errf(off+i, "bad character %q in %s %q (expected letters, digits, '.', '-', '_' in %s)", r, what, w, want)
		}
	}
	return nil
}

func validZone(z string) bool {
	for i := 0; i < len(z); i++ {
		if !isWord(z[i]) {
			return false
		}
	}
	return true
}

func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, 1 <= n && n <= 65535
}

// key parses one KEY=VALUE that starts at off in p.s.
func (p *parser) key(sp *Spec, off int, kv string, seen map[string]int) *Error {
	if kv == "" {
		return p.errf(off, "empty key after \"//\" (expected KEY=VALUE, KEY one of %s)", keysAccepted)
	}
	name, val, ok := strings.Cut(kv, "=")
	if !ok {
		return p.errf(off, "missing \"=\" after key %q (expected //KEY=VALUE)", kv)
	}
	if name == "" {
		return p.errf(off, "empty key before \"=\" (expected KEY=VALUE, KEY one of %s)", keysAccepted)
	}
	valOff := off + len(name) + 1
	known := strings.HasPrefix(name, "env:")
	switch name {
	case "id", "chdir", "nice", "via", "goos", "goarch", "network", "pull":
		known = true
	}
	if !known {
		if name == "env" {
			return p.errf(off, "key \"env\" needs a variable name (expected env:NAME=VALUE)")
		}
		return p.errf(off, "unknown key %q (accepted: %s)", name, keysAccepted)
	}
	if _, dup := seen[name]; dup {
		return p.errf(off, "duplicate key %q (each key may be given once)", name)
	}
	seen[name] = off

	if env, ok := strings.CutPrefix(name, "env:"); ok {
		if !validEnvName(env) {
			return p.errf(off+4, "bad environment variable name %q (expected env:NAME=VALUE, NAME matching [A-Za-z_][A-Za-z0-9_]*)", env)
		}
		if sp.Env == nil {
			sp.Env = map[string]string{}
		}
		sp.Env[env] = val
		return nil
	}
	if val == "" {
		return p.errf(valOff, "empty value for key %q (expected %s=%s)", name, name, keyValue[name])
	}
	switch name {
	case "id", "via":
		if err := p.id(name, val, valOff); err != nil {
			return err
		}
		if name == "id" {
			sp.ID = val
		} else {
			sp.Via = val
		}
	case "chdir":
		sp.Chdir = val
	case "nice":
		n, err := strconv.Atoi(val)
		if err != nil {
			return p.errf(valOff, "nice %q is not an integer (expected %d..%d)", val, MinNice, MaxNice)
		}
		if n < MinNice || n > MaxNice {
			return p.errf(valOff, "nice %d is out of range (expected %d..%d)", n, MinNice, MaxNice)
		}
		sp.Nice, sp.HasNice = n, true
	case "goos":
		if !goosSet[val] {
			return p.errf(valOff, "unknown goos %q (expected one of %s)", val, goosList)
		}
		sp.GOOS = val
	case "goarch":
		if !goarchSet[val] {
			return p.errf(valOff, "unknown goarch %q (expected one of %s)", val, goarchList)
		}
		sp.GOARCH = val
	case "network":
		if err := p.network(val, valOff); err != nil {
			return err
		}
		sp.Network = val
	case "pull":
		switch val {
		case PullMissing, PullAlways, PullNever:
		default:
			return p.errf(valOff, "unknown pull %q (expected %s, %s or %s)", val, PullMissing, PullAlways, PullNever)
		}
		sp.Pull = val
	}
	return nil
}

var keyValue = map[string]string{
	"id":      "ID",
	"chdir":   "DIR",
	"nice":    "INT",
	"via":     "ID",
	"goos":    "GOOS",
	"goarch":  "GOARCH",
	"network": "NETWORK",
	"pull":    "missing|always|never",
}

func (p *parser) id(key, v string, off int) *Error {
	if len(v) > MaxIDLen {
		return p.errf(off, "%s %q is longer than %d bytes", key, v, MaxIDLen)
	}
	if !isLetter(v[0]) && !isDigit(v[0]) {
		return p.errf(off, "%s %q must start with a letter or digit (expected letters, digits, '.', '-', '_')", key, v)
	}
	for i, r := range v {
		if r >= utf8.RuneSelf || !isWord(byte(r)) {
			return p.errf(off+i, "bad character %q in %s %q (expected letters, digits, '.', '-', '_')", r, key, v)
		}
	}
	return nil
}

func validEnvName(n string) bool {
	if n == "" || isDigit(n[0]) {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !isLetter(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// String returns the canonical form of s (see the package comment).
// For a Spec made by Parse, Parse(s.String()) returns a Spec equal to s
// except for Raw.
func (s *Spec) String() string {
	var b strings.Builder
	if s.Count > 1 {
		b.WriteString(strconv.Itoa(s.Count))
		b.WriteByte('*')
	}
	b.WriteString(s.Type)
	if s.Type != TypePopen {
		b.WriteByte('=')
		b.WriteString(s.Target)
	}
	kv := func(k, v string) {
		b.WriteString("//")
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	if s.ID != "" {
		kv("id", s.ID)
	}
	if s.Chdir != "" {
		kv("chdir", s.Chdir)
	}
	if s.HasNice {
		kv("nice", strconv.Itoa(s.Nice))
	}
	for _, n := range s.envNames() {
		kv("env:"+n, s.Env[n])
	}
	if s.Via != "" {
		kv("via", s.Via)
	}
	if s.GOOS != "" {
		kv("goos", s.GOOS)
	}
	if s.GOARCH != "" {
		kv("goarch", s.GOARCH)
	}
	if s.Network != "" {
		kv("network", s.Network)
	}
	if s.Pull != "" {
		kv("pull", s.Pull)
	}
	return b.String()
}

// EnvList returns the env: keys as "NAME=VALUE" strings, sorted by NAME, in
// the form of os.Environ and exec.Cmd.Env. It is nil when there are none.
func (s *Spec) EnvList() []string {
	var list []string
	for _, n := range s.envNames() {
		list = append(list, n+"="+s.Env[n])
	}
	return list
}

func (s *Spec) envNames() []string {
	names := make([]string, 0, len(s.Env))
	for n := range s.Env {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Platform is the GOOS and GOARCH the spec asks for with goos= and goarch=, this
// machine's where it does not say.
func (s *Spec) Platform() (goos, goarch string) {
	goos, goarch = runtime.GOOS, runtime.GOARCH
	if s.GOOS != "" {
		goos = s.GOOS
	}
	if s.GOARCH != "" {
		goarch = s.GOARCH
	}
	return goos, goarch
}
