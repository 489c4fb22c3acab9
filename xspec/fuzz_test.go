package xspec

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"popen",
		"4*popen//nice=10",
		"ssh=alice@build1:2222//chdir=/srv/work//env:GOFLAGS=-mod=mod",
		"ssh=[2001:db8::1]:22//goos=linux//goarch=arm64",
		"ssh=[fe80::1%eth0]",
		"socket=10.0.0.7:8022//id=rack7",
		"exec=kubectl exec -i pod-0 -- sh//id=k8s",
		"exec=sh -c 'curl https://x/a?b=c' /a//b///id=x",
		"2*popen//via=k8s",
		"popen//env:A=//env:B=x//y//env:C=a=b",
		"popen//chdir=/tmp///id=x//",
		"popen//foo=1",
		"popen////",
		"0*popen",
		"ssh=::1",
		"4*docker=registry.example.com:5000/team/go_lang:1.26@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef//pull=never//network=none",
		"docker=busybox//network=container:c1//chdir=/w",
		"docker=busybox//network=host//chdir=/w",
		"docker=-v/:/x",
		"popen//pull=never",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := Parse(s)
		if err != nil {
			if sp != nil {
				t.Fatalf("Parse(%q) returned a spec and an error", s)
			}
			checkErrorShape(t, s, err)
			return
		}
		if sp.Raw != s || sp.Count < 1 || sp.Count > MaxCount {
			t.Fatalf("Parse(%q) = %+v", s, *sp)
		}
		switch sp.Type {
		case TypePopen:
			if sp.Target != "" {
				t.Fatalf("popen with target: %+v", *sp)
			}
		case TypeSSH, TypeSocket, TypeExec, TypeDocker:
			if sp.Target == "" {
				t.Fatalf("%s without target: %+v", sp.Type, *sp)
			}
		default:
			t.Fatalf("Parse(%q): type %q", s, sp.Type)
		}
		if sp.Type == TypeSocket && sp.Port == 0 {
			t.Fatalf("socket without port: %+v", *sp)
		}
		checkDockerSpec(t, sp)
		checkRoundTrip(t, sp)

		// A spec on its own expands to Count gateways, unless via= names
		// something that cannot exist alone.
		gws, err := Expand([]*Spec{sp})
		if err == nil && len(gws) != sp.Count {
			t.Fatalf("Expand(%q): %d gateways", s, len(gws))
		}
		if err != nil && sp.Via == "" {
			t.Fatalf("Expand(%q): %v", s, err)
		}
	})
}

// TestParseTokens checks the properties of FuzzParse on specs assembled
// from grammar tokens, which byte-level fuzzing reaches only slowly.
func TestParseTokens(t *testing.T) {
	tokens := []string{
		"popen", "ssh=", "socket=", "exec=", "docker=", "2*", "0*", "*", "//", "/", "=", ":", "@", "[", "]", "%",
		"id=", "chdir=", "nice=", "via=", "goos=", "goarch=", "env:", "env", "ID=",
		"a", "Z", "_", "-", ".", "0", "7", "22", "-5", " ", "::1", "linux", "arm64", "wasm", "é",
		"network=", "pull=", "never", "missing", "container:", "__", "@sha256:", "localhost", "x.y:5000",
	}
	heads := []string{"popen", "3*popen", "ssh=h", "ssh=u@[::1]:2", "socket=h:1", "exec=sh", "exec=a//b/", "exec=/",
		"docker=a", "2*docker=r.io/a/b:t", "docker=", "docker=x.y:5000/"}
	keys := []string{"id=x", "id=", "chdir=", "chdir=/", "nice=", "via=", "goos=", "goarch=", "env:A=", "env:B=", "env:", "x=",
		"network=", "network=none", "pull=", "pull=never"}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	ok := 0
	for range n {
		var b strings.Builder
		if rng.IntN(2) == 0 { // free-form
			for range 1 + rng.IntN(12) {
				b.WriteString(tokens[rng.IntN(len(tokens))])
			}
		} else { // shaped like a spec, with random values
			b.WriteString(heads[rng.IntN(len(heads))])
			for range rng.IntN(5) {
				b.WriteString("//")
				b.WriteString(keys[rng.IntN(len(keys))])
				for range rng.IntN(4) {
					b.WriteString(tokens[rng.IntN(len(tokens))])
				}
			}
		}
		s := b.String()
		sp, err := Parse(s)
		if err != nil {
			checkErrorShape(t, s, err)
			continue
		}
		ok++
		checkRoundTrip(t, sp)
		checkDockerSpec(t, sp)
	}
	t.Logf("%d of %d token specs parsed", ok, n)
	if ok < n/100 {
		t.Fatalf("only %d of %d token specs parsed; the generator is too weak", ok, n)
	}
}

// checkDockerSpec checks what a parsed docker= spec promises the gateway package: an
// IMAGE that no docker client takes for an option and that holds no blank, and the
// docker-only keys on docker= specs alone.
func checkDockerSpec(t *testing.T, sp *Spec) {
	t.Helper()
	if sp.Type != TypeDocker {
		if sp.Network != "" || sp.Pull != "" {
			t.Fatalf("%s spec with docker keys: %+v", sp.Type, *sp)
		}
		return
	}
	if strings.HasPrefix(sp.Target, "-") || strings.ContainsAny(sp.Target, " \t") || strings.Contains(sp.Target, "//") {
		t.Fatalf("docker spec %q: IMAGE %q", sp.Raw, sp.Target)
	}
	if strings.HasPrefix(sp.Network, "-") || strings.ContainsAny(sp.Network, " /") {
		t.Fatalf("docker spec %q: network %q", sp.Raw, sp.Network)
	}
	switch sp.Pull {
	case "", PullMissing, PullAlways, PullNever:
	default:
		t.Fatalf("docker spec %q: pull %q", sp.Raw, sp.Pull)
	}
}
