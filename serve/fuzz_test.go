package serve

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

const seedKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK6TAU498/EIGmc14DPlmnE/B32+JFVhEBB+DWqqkNHQ"

func FuzzParseAuthorizedKeys(f *testing.F) {
	for _, s := range []string{
		"", "#\n", seedKey, seedKey + " c\n" + seedKey, "restrict " + seedKey, `command="x" ` + seedKey,
		`from="a,b",no-pty ` + seedKey + " comment", "\x00\xff\n\r\n", `"` + seedKey, "ssh-rsa AAAA",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, warnings := ParseAuthorizedKeys("F", data)
		lines := bytes.Count(data, []byte("\n")) + 1
		if len(keys)+len(warnings) > lines {
			t.Fatalf("%d keys and %d warnings from %d lines", len(keys), len(warnings), lines)
		}
		prev := 0
		for _, k := range keys {
			if k.Line <= prev || k.Line > lines {
				t.Fatalf("key line %d after %d (of %d)", k.Line, prev, lines)
			}
			prev = k.Line
			// A key let in is a key of that line that parses alone, with harmless options.
			line := bytes.Split(data, []byte("\n"))[k.Line-1]
			again, _, options, _, err := ssh.ParseAuthorizedKey(line)
			if err != nil || !bytes.Equal(again.Marshal(), k.Key.Marshal()) {
				t.Fatalf("line %d %q: key does not parse again: %v", k.Line, line, err)
			}
			for _, o := range options {
				name, _, _ := strings.Cut(o, "=")
				if !harmlessOptions[strings.ToLower(name)] {
					t.Fatalf("line %d: key with option %q let in", k.Line, o)
				}
			}
		}
		for _, w := range warnings {
			if !strings.HasPrefix(w, "F:") || strings.ContainsAny(w, "\n") {
				t.Fatalf("warning %q", w)
			}
		}
	})
}

func FuzzParseListenAddr(f *testing.F) {
	for _, s := range []string{":7000", "7000", "0.0.0.0:1", "[::]:7000", "[fe80::1%eth0]:1", "localhost:22", "a:b:c", "[::1", ":99999", "x y:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, err := ParseListenAddr(s)
		if err != nil {
			if addr != "" {
				t.Fatalf("%q: error %v with address %q", s, err, addr)
			}
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%q gave %q, which does not split: %v", s, addr, err)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 || host == "" {
			t.Fatalf("%q gave %q", s, addr)
		}
		// A spec without a host never binds more than loopback.
		if !strings.Contains(s, ":") || strings.HasPrefix(s, ":") {
			if host != DefaultHost {
				t.Fatalf("%q binds %q, want %s", s, host, DefaultHost)
			}
		}
		// What it returns is taken back as it is.
		if again, err := ParseListenAddr(addr); err != nil || again != addr {
			t.Fatalf("%q -> %q -> %q, %v", s, addr, again, err)
		}
	})
}
