package xspec

import (
	"errors"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		in        string
		want      Spec // Raw is filled in from in
		canonical string
	}{
		{"popen", Spec{Count: 1, Type: "popen"}, "popen"},
		{"1*popen", Spec{Count: 1, Type: "popen"}, "popen"},
		{"4*popen", Spec{Count: 4, Type: "popen"}, "4*popen"},
		{"0004*popen", Spec{Count: 4, Type: "popen"}, "4*popen"},
		{"1024*popen", Spec{Count: 1024, Type: "popen"}, "1024*popen"},
		{"popen//id=w1", Spec{Count: 1, Type: "popen", ID: "w1"}, "popen//id=w1"},
		{"popen//nice=-20", Spec{Count: 1, Type: "popen", Nice: -20, HasNice: true}, "popen//nice=-20"},
		{"popen//nice=0", Spec{Count: 1, Type: "popen", HasNice: true}, "popen//nice=0"},
		{"popen//nice=+19", Spec{Count: 1, Type: "popen", Nice: 19, HasNice: true}, "popen//nice=19"},
		{"popen//goos=linux", Spec{Count: 1, Type: "popen", GOOS: "linux"}, "popen//goos=linux"},
		{"popen//goarch=riscv64", Spec{Count: 1, Type: "popen", GOARCH: "riscv64"}, "popen//goarch=riscv64"},
		{"popen//goarch=wasm//goos=wasip1", Spec{Count: 1, Type: "popen", GOOS: "wasip1", GOARCH: "wasm"}, "popen//goos=wasip1//goarch=wasm"},
		{
			"popen//env:B=2//env:A=//env:_x1=a=b c//id=p",
			Spec{Count: 1, Type: "popen", ID: "p", Env: map[string]string{"A": "", "B": "2", "_x1": "a=b c"}},
			"popen//id=p//env:A=//env:B=2//env:_x1=a=b c",
		},
		{
			"popen//env:GOPROXY=https://proxy.golang.org,direct",
			Spec{Count: 1, Type: "popen", Env: map[string]string{"GOPROXY": "https://proxy.golang.org,direct"}},
			"popen//env:GOPROXY=https://proxy.golang.org,direct",
		},
		{"popen//chdir=/srv//work/", Spec{Count: 1, Type: "popen", Chdir: "/srv//work/"}, "popen//chdir=/srv//work/"},
		{"popen//chdir=/tmp///id=x", Spec{Count: 1, Type: "popen", Chdir: "/tmp/", ID: "x"}, "popen//id=x//chdir=/tmp/"},
		{"popen//chdir=relative dir", Spec{Count: 1, Type: "popen", Chdir: "relative dir"}, "popen//chdir=relative dir"},
		{"popen//chdir=/ünïcödé", Spec{Count: 1, Type: "popen", Chdir: "/ünïcödé"}, "popen//chdir=/ünïcödé"},
		{"ssh=build1", Spec{Count: 1, Type: "ssh", Target: "build1", Host: "build1"}, "ssh=build1"},
		{"ssh=my_alias", Spec{Count: 1, Type: "ssh", Target: "my_alias", Host: "my_alias"}, "ssh=my_alias"},
		{
			"ssh=alice@build1.example.com:2222",
			Spec{Count: 1, Type: "ssh", Target: "alice@build1.example.com:2222", User: "alice", Host: "build1.example.com", Port: 2222},
			"ssh=alice@build1.example.com:2222",
		},
		{"ssh=10.0.0.1:22", Spec{Count: 1, Type: "ssh", Target: "10.0.0.1:22", Host: "10.0.0.1", Port: 22}, "ssh=10.0.0.1:22"},
		{"ssh=[::1]", Spec{Count: 1, Type: "ssh", Target: "[::1]", Host: "::1"}, "ssh=[::1]"},
		{"ssh=bob@[2001:db8::1]:65535", Spec{Count: 1, Type: "ssh", Target: "bob@[2001:db8::1]:65535", User: "bob", Host: "2001:db8::1", Port: 65535}, "ssh=bob@[2001:db8::1]:65535"},
		{"ssh=[fe80::1%eth0]:22", Spec{Count: 1, Type: "ssh", Target: "[fe80::1%eth0]:22", Host: "fe80::1%eth0", Port: 22}, "ssh=[fe80::1%eth0]:22"},
		{
			"2*ssh=h//chdir=/w//nice=5//env:GOFLAGS=-mod=mod//via=hop//goos=linux//goarch=arm64//id=h",
			Spec{Count: 2, Type: "ssh", Target: "h", Host: "h", ID: "h", Chdir: "/w", Nice: 5, HasNice: true,
				Env: map[string]string{"GOFLAGS": "-mod=mod"}, Via: "hop", GOOS: "linux", GOARCH: "arm64"},
			"2*ssh=h//id=h//chdir=/w//nice=5//env:GOFLAGS=-mod=mod//via=hop//goos=linux//goarch=arm64",
		},
		{"socket=10.0.0.7:8022", Spec{Count: 1, Type: "socket", Target: "10.0.0.7:8022", Host: "10.0.0.7", Port: 8022}, "socket=10.0.0.7:8022"},
		{"socket=[::1]:1", Spec{Count: 1, Type: "socket", Target: "[::1]:1", Host: "::1", Port: 1}, "socket=[::1]:1"},
		{"socket=localhost:80//id=s", Spec{Count: 1, Type: "socket", Target: "localhost:80", Host: "localhost", Port: 80, ID: "s"}, "socket=localhost:80//id=s"},
		{
			"exec=kubectl exec -i pod-0 -- sh",
			Spec{Count: 1, Type: "exec", Target: "kubectl exec -i pod-0 -- sh"},
			"exec=kubectl exec -i pod-0 -- sh",
		},
		{
			"exec=docker exec -i ctr sh//id=d//env:X=1",
			Spec{Count: 1, Type: "exec", Target: "docker exec -i ctr sh", ID: "d", Env: map[string]string{"X": "1"}},
			"exec=docker exec -i ctr sh//id=d//env:X=1",
		},
		{
			// '=', '*' and '/' in the command; "//" not followed by KEY= is literal.
			"3*exec=sh -c 'curl -s https://host:80/a?b=c | X=1 sh' /a//b/ //=x // //Up. ///",
			Spec{Count: 3, Type: "exec", Target: "sh -c 'curl -s https://host:80/a?b=c | X=1 sh' /a//b/ //=x // //Up. ///"},
			"3*exec=sh -c 'curl -s https://host:80/a?b=c | X=1 sh' /a//b/ //=x // //Up. ///",
		},
		{"exec=a*b", Spec{Count: 1, Type: "exec", Target: "a*b"}, "exec=a*b"},
		{"exec=cmd///id=x", Spec{Count: 1, Type: "exec", Target: "cmd/", ID: "x"}, "exec=cmd///id=x"},
		{"exec= sh ", Spec{Count: 1, Type: "exec", Target: " sh "}, "exec= sh "},
		{"docker=busybox", Spec{Count: 1, Type: "docker", Target: "busybox"}, "docker=busybox"},
		{
			"4*docker=registry.example.com:5000/team/go_lang-x__y.z:1.26-rc.1@sha256:" + strings.Repeat("ab", 32) + "//pull=never//network=my-net_1.x//chdir=/w//id=d",
			Spec{Count: 4, Type: "docker", Target: "registry.example.com:5000/team/go_lang-x__y.z:1.26-rc.1@sha256:" + strings.Repeat("ab", 32),
				ID: "d", Chdir: "/w", Network: "my-net_1.x", Pull: "never"},
			"4*docker=registry.example.com:5000/team/go_lang-x__y.z:1.26-rc.1@sha256:" + strings.Repeat("ab", 32) + "//id=d//chdir=/w//network=my-net_1.x//pull=never",
		},
		{"docker=localhost/img//network=host//pull=always", Spec{Count: 1, Type: "docker", Target: "localhost/img", Network: "host", Pull: "always"}, "docker=localhost/img//network=host//pull=always"},
		{"docker=sha256:" + strings.Repeat("0", 64), Spec{Count: 1, Type: "docker", Target: "sha256:" + strings.Repeat("0", 64)}, "docker=sha256:" + strings.Repeat("0", 64)},
		{"docker=Host.Example:1/a---b", Spec{Count: 1, Type: "docker", Target: "Host.Example:1/a---b"}, "docker=Host.Example:1/a---b"},
		{"docker=a:Tag_1//env:X=1//goarch=386", Spec{Count: 1, Type: "docker", Target: "a:Tag_1", Env: map[string]string{"X": "1"}, GOARCH: "386"}, "docker=a:Tag_1//env:X=1//goarch=386"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		want := tt.want
		want.Raw = tt.in
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.in, *got, want)
		}
		if s := got.String(); s != tt.canonical {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, s, tt.canonical)
		}
		checkRoundTrip(t, got)
	}
}

func checkRoundTrip(t *testing.T, sp *Spec) {
	t.Helper()
	s := sp.String()
	again, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q) ok, but its String %q: %v", sp.Raw, s, err)
	}
	if again.Raw != s {
		t.Fatalf("Raw = %q, want %q", again.Raw, s)
	}
	a, b := *sp, *again
	a.Raw, b.Raw = "", ""
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("round trip of %q through %q\n got %+v\nwant %+v", sp.Raw, s, b, a)
	}
	if s2 := again.String(); s2 != s {
		t.Fatalf("String not stable: %q then %q", s, s2)
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the message
		pos  int
	}{
		{"", "empty spec", 0},
		{"foo", `unknown gateway type "foo" (expected popen, ssh=HOST`, 0},
		{"POPEN", `unknown gateway type "POPEN"`, 0},
		{"2*foo=x", `unknown gateway type "foo"`, 2},
		{"=x", "missing gateway type", 0},
		{"//id=x", "missing gateway type", 0},
		{"2*", "missing gateway type", 2},
		{"ssh", "ssh needs a value (expected ssh=[USER@]HOST[:PORT])", 3},
		{"ssh//id=x", "ssh needs a value", 3},
		{"ssh=", `empty value after "ssh=" (expected ssh=[USER@]HOST[:PORT])`, 4},
		{"ssh=//id=x", `empty value after "ssh="`, 4},
		{"socket=", `empty value after "socket=" (expected socket=HOST:PORT)`, 7},
		{"exec=", `empty command after "exec=" (expected exec=COMMAND)`, 5},
		{"exec=   ", `empty command`, 5},
		{"exec=//id=x", `empty command`, 5},
		{"exec", "exec needs a value (expected exec=COMMAND)", 4},
		{"0*popen", "count 0 makes no gateways (expected 1..1024)", 0},
		{"x*popen", `bad count "x" (expected a whole number 1..1024 before "*")`, 0},
		{"-1*popen", `bad count "-1"`, 0},
		{" 2*popen", `bad count " 2"`, 0},
		{"*popen", `missing count before "*"`, 0},
		{"1025*popen", "count 1025 is too large (expected 1..1024)", 0},
		{"99999999999999999999999*popen", "is too large", 0},
		{"popen*2", `bad count "popen"`, 0},
		{"popen//foo=1", `unknown key "foo" (accepted: id, chdir, nice, env:NAME, via, goos, goarch; for docker=: network, pull)`, 7},
		{"popen//ID=1", `unknown key "ID"`, 7},
		{"exec=sh//chdri=/tmp", `unknown key "chdri"`, 9},
		{"popen//chdir=/x//foo-bar=1", `unknown key "foo-bar"`, 17},
		{"popen//env=1", `key "env" needs a variable name (expected env:NAME=VALUE)`, 7},
		{"popen//id=a//id=b", `duplicate key "id"`, 13},
		{"popen//nice=1//nice=1", `duplicate key "nice"`, 15},
		{"popen//env:A=1//env:B=2//env:A=1", `duplicate key "env:A"`, 25},
		{"popen//id", `missing "=" after key "id" (expected //KEY=VALUE)`, 7},
		{"popen//foo", `missing "=" after key "foo"`, 7},
		{"ssh=h//x//id=1", `missing "=" after key "x"`, 7},
		{"popen//", `empty key after "//"`, 7},
		{"popen////id=1", `empty key after "//"`, 7},
		{"popen//id=1//", `bad character '/' in id "1//"`, 11},
		{"popen//=1", `empty key before "="`, 7},
		{"popen//id=", `empty value for key "id" (expected id=ID)`, 10},
		{"popen//chdir=", `empty value for key "chdir" (expected chdir=DIR)`, 13},
		{"popen//nice=", `empty value for key "nice"`, 12},
		{"popen//via=", `empty value for key "via"`, 11},
		{"popen//goos=", `empty value for key "goos"`, 12},
		{"popen//nice=x", `nice "x" is not an integer (expected -20..19)`, 12},
		{"popen//nice=1.5", `nice "1.5" is not an integer`, 12},
		{"popen//nice=-21", "nice -21 is out of range (expected -20..19)", 12},
		{"popen//nice=20", "nice 20 is out of range", 12},
		{"popen//nice=99999999999999999999", "is not an integer", 12},
		{"popen//env:=x", `bad environment variable name "" (expected env:NAME=VALUE`, 11},
		{"popen//env:1A=x", `bad environment variable name "1A"`, 11},
		{"popen//env:A-B=x", `bad environment variable name "A-B"`, 11},
		{"popen//env:A", `missing "=" after key "env:A"`, 7},
		{"popen//goos=linx", `unknown goos "linx" (expected one of aix, android, darwin`, 12},
		{"popen//goarch=x86", `unknown goarch "x86" (expected one of 386, amd64`, 14},
		{"popen//goos=windows//goarch=mips", "goos=windows with goarch=mips is not a Go port", 21},
		{"popen//goarch=wasm//goos=linux", "goos=linux with goarch=wasm is not a Go port", 7},
		{"popen//id=-x", `id "-x" must start with a letter or digit`, 10},
		{"popen//id=a b", `bad character ' ' in id "a b"`, 11},
		{"popen//via=a:b", `bad character ':' in via "a:b"`, 12},
		{"popen//id=" + strings.Repeat("a", 65), "is longer than 64 bytes", 10},
		{"popen=foo", `popen takes no value, got "=foo" (expected popen[//KEY=VALUE]...)`, 5},
		{"popen=foo//id=x", `popen takes no value, got "=foo"`, 5},
		{"popen/x", `unexpected "/x" after popen (expected //KEY=VALUE)`, 5},
		{"ssh=h:0", `bad port "0" (expected 1..65535)`, 6},
		{"ssh=h:65536", `bad port "65536"`, 6},
		{"ssh=h:", `bad port ""`, 6},
		{"ssh=h:x", `bad port "x"`, 6},
		{"ssh=h:-1", `bad port "-1"`, 6},
		{"ssh=h:+22", `bad port "+22"`, 6},
		{"ssh=h:000022", `bad port "000022"`, 6},
		{"ssh=[::1]:0", `bad port "0"`, 10},
		{"socket=host", `socket needs a port, got "host" (expected socket=HOST:PORT)`, 7},
		{"socket=[::1]", `socket needs a port`, 7},
		{"socket=u@host:1", `socket takes no user, got "u@"`, 7},
		{"ssh=::1", `IPv6 address "::1" needs brackets`, 4},
		{"ssh=u@2001:db8::1:22", `IPv6 address "2001:db8::1:22" needs brackets`, 6},
		{"ssh=[::1", `missing "]" in "[::1"`, 4},
		{"ssh=[host]:22", `bad IPv6 address "[host]"`, 4},
		{"ssh=[1.2.3.4]:22", `bad IPv6 address "[1.2.3.4]"`, 4},
		{"ssh=[fe80::1%a b]", `bad IPv6 address`, 4},
		{"ssh=[::1]22", `unexpected "22" after "[::1]" (expected :PORT)`, 9},
		{"ssh=@h", `empty user`, 4},
		{"ssh=u@", `empty host`, 6},
		{"ssh=u@:22", `empty host`, 6},
		{"ssh=a@b@c", `bad character '@' in host "b@c"`, 7},
		{"ssh=-oProxyCommand=x", `host "-oProxyCommand=x" starts with "-"`, 4},
		{"ssh=-l@h", `user "-l" starts with "-"`, 4},
		{"ssh=h st", `bad character ' ' in host "h st"`, 5},
		{"ssh=h/x", `bad character '/' in host "h/x"`, 5},
		{"ssh=hé", `bad character 'é' in host "hé"`, 5},
		{"popen\x00", `control character '\x00' at byte 5`, 5},
		{"exec=sh\n", `control character '\n' at byte 7`, 7},
		{"exec=a\tb", `control character '\t'`, 6},
		{"exec=a\x7fb", `control character '\x7f'`, 6},
		{"exec=a\u0085b", `control character '\u0085'`, 6},
		{"exec=a\u202eb", `non-printing character '\u202e'`, 6},
		{"exec=a\u2028b", `non-printing character '\u2028'`, 6},
		{"exec=a\xffb", "invalid UTF-8 at byte 6", 6},
		{"docker", "docker needs a value (expected docker=[REGISTRY/]NAME[:TAG][@DIGEST])", 6},
		{"docker=", `empty value after "docker="`, 7},
		{"docker=//pull=never", `empty value after "docker="`, 7},
		{"docker=-v/:/host", `bad image "-v/:/host": name component "-v" must start and end with a lower-case letter or digit`, 7},
		{"docker=--privileged", `bad image "--privileged"`, 7},
		{"docker=Busybox", `name component "Busybox" must start and end`, 7},
		{"docker=bad image", `name component "bad image" has " "`, 7},
		{"docker=a..b", `name component "a..b" has ".."`, 7},
		{"docker=a___b", `has "___"`, 7},
		{"docker=a/", `an empty name component`, 9},
		{"docker=/a", `an empty name component`, 7},
		{"docker=a/b/", `an empty name component`, 11},
		{"docker=a:", `an empty tag after ":"`, 9},
		{"docker=a:-x", `tag "-x" starts with "-"`, 9},
		{"docker=a:x!", `tag "x!" has "!"`, 9},
		{"docker=a:" + strings.Repeat("t", 129), `the tag is longer than 128 bytes`, 9},
		{"docker=" + strings.Repeat("a", 256), `the name is longer than 255 bytes`, 7},
		{"docker=a@sha256:12", `digest "sha256:12" has the wrong length`, 9},
		{"docker=a@sha256", `digest "sha256" is not ALGORITHM:HEX`, 9},
		{"docker=a@SHA256:" + strings.Repeat("0", 64), `digest algorithm "SHA256"`, 9},
		{"docker=a@sha256:" + strings.Repeat("G", 64), `not lower-case hexadecimal`, 9},
		{"docker=:tag", `no name`, 7},
		{"docker=ex_ample.com/a", `registry "ex_ample.com" is not a host name`, 7},
		{"docker=host:0/a", `registry "host:0" has a bad port`, 7},
		{"docker=a/b:c/d", `has ":"`, 9},
		{"docker=a//b", `missing "=" after key "b"`, 10},
		{"docker=a//network=", `empty value for key "network" (expected network=NETWORK)`, 18},
		{"docker=a//network=-x", `bad network "-x"`, 18},
		{"docker=a//network=container:", `network "container:" is not accepted: containers that share another's network share its hostname`, 18},
		{"docker=a//network=container:c1", `network "container:c1" is not accepted`, 18},
		{"docker=a//network=a b", `bad network "a b"`, 18},
		{"docker=a//pull=sometimes", `unknown pull "sometimes" (expected missing, always or never)`, 15},
		{"docker=a//pull=never//pull=never", `duplicate key "pull"`, 22},
		{"popen//pull=never", `key "pull" is for docker=IMAGE gateways only (this spec is popen)`, 7},
		{"exec=sh//network=none", `key "network" is for docker=IMAGE gateways only (this spec is exec)`, 9},
		{"ssh=h//id=x//network=none", `key "network" is for docker=IMAGE gateways only`, 13},
	}
	for _, tt := range tests {
		sp, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want error containing %q", tt.in, *sp, tt.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) error %T, want *Error", tt.in, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.want) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", tt.in, msg, tt.want)
		}
		if e.Pos != tt.pos {
			t.Errorf("Parse(%q): Pos = %d, want %d (%s)", tt.in, e.Pos, tt.pos, msg)
		}
		checkErrorShape(t, tt.in, err)
	}
}

func checkErrorShape(t *testing.T, in string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse(%q) error %T, want *Error", in, err)
	}
	msg := err.Error()
	if prefix := `xspec: ` + strconv.Quote(in) + `: `; !strings.HasPrefix(msg, prefix) {
		t.Fatalf("Parse(%q) = %q, want prefix %q", in, msg, prefix)
	}
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("Parse(%q): error has more than one line: %q", in, msg)
	}
	if e.Spec != in || e.Pos < 0 || e.Pos > len(in) {
		t.Fatalf("Parse(%q): Error{Spec: %q, Pos: %d}", in, e.Spec, e.Pos)
	}
}

func TestErrorExample(t *testing.T) {
	_, err := Parse("popen//foo=1")
	want := `xspec: "popen//foo=1": unknown key "foo" (accepted: id, chdir, nice, env:NAME, via, goos, goarch; for docker=: network, pull)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestEnvList(t *testing.T) {
	sp, err := Parse("popen//env:B=2//env:A=x=y//env:C=")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sp.EnvList(), []string{"A=x=y", "B=2", "C="}; !reflect.DeepEqual(got, want) {
		t.Errorf("EnvList() = %q, want %q", got, want)
	}
	if sp, _ := Parse("popen"); sp.EnvList() != nil {
		t.Errorf("EnvList() without env = %q, want nil", sp.EnvList())
	}
}

func TestPortsTable(t *testing.T) {
	if len(ports) < 40 || !isPort("linux", "amd64") || !isPort("windows", "arm64") || isPort("linux", "wasm") {
		t.Fatalf("ports table looks wrong: %d entries", len(ports))
	}
	for _, p := range ports {
		goos, goarch, _ := strings.Cut(p, "/")
		if _, err := Parse("popen//goos=" + goos + "//goarch=" + goarch); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestPlatform(t *testing.T) {
	s, _ := Parse("popen//goarch=386")
	if goos, goarch := s.Platform(); goos != runtime.GOOS || goarch != "386" {
		t.Errorf("popen//goarch=386: %s/%s", goos, goarch)
	}
	s, _ = Parse("popen")
	if goos, goarch := s.Platform(); goos != runtime.GOOS || goarch != runtime.GOARCH {
		t.Errorf("popen: %s/%s, want this machine's", goos, goarch)
	}
}
