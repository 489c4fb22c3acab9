package serve

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestParseAuthorizedKeys(t *testing.T) {
	k1, k2, k3 := newSigner(t).PublicKey(), newSigner(t).PublicKey(), newSigner(t).PublicKey()
	line := func(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }
	data := strings.Join([]string{
		"# a comment",
		"",
		line(k1) + " alice@example",
		"   " + line(k2) + "\r",
		`restrict,no-pty,NO-PORT-FORWARDING ` + line(k3) + " bob",
		`command="/bin/sh" ` + line(k1),
		`from="10.0.0.0/8",no-pty ` + line(k2),
		`cert-authority ` + line(k3),
		"ssh-ed25519 not-base64!",
		"garbage line",
		line(k1) + " trailing comment with spaces",
	}, "\n")
	keys, warnings := ParseAuthorizedKeys("AK", []byte(data))
	var got []string
	for _, k := range keys {
		got = append(got, ssh.FingerprintSHA256(k.Key)+"@"+strconv.Itoa(k.Line))
	}
	want := []string{
		ssh.FingerprintSHA256(k1) + "@3", ssh.FingerprintSHA256(k2) + "@4", ssh.FingerprintSHA256(k3) + "@5",
		ssh.FingerprintSHA256(k1) + "@11",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("keys %v, want %v", got, want)
	}
	if keys[0].Comment != "alice@example" {
		t.Errorf("comment %q", keys[0].Comment)
	}
	wantWarn := []string{
		"AK:6: key " + ssh.FingerprintSHA256(k1) + " has options godist serve does not honour (command); skipped",
		"AK:7: key " + ssh.FingerprintSHA256(k2) + " has options godist serve does not honour (from); skipped",
		"AK:8: key " + ssh.FingerprintSHA256(k3) + " has options godist serve does not honour (cert-authority); skipped",
		"AK:9: not a public key line; skipped",
		"AK:10: not a public key line; skipped",
	}
	if strings.Join(warnings, "\n") != strings.Join(wantWarn, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(wantWarn, "\n"))
	}
}

func TestReadAuthorizedKeysLimits(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := ReadAuthorizedKeys(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#\n"), MaxAuthorizedKeysSize), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadAuthorizedKeys(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a %d-byte file: %v", 2*MaxAuthorizedKeysSize, err)
	}
}

func TestLoadOrCreateHostKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "new", "dir", "key")
	s1, created, err := LoadOrCreateHostKey(file)
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	if s1.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type %s", s1.PublicKey().Type())
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	if st, _ := os.Stat(filepath.Dir(file)); st.Mode().Perm() != 0o700 {
		t.Errorf("new key directory mode %v, want 0700", st.Mode().Perm())
	}
	pub, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if k, _, _, _, err := ssh.ParseAuthorizedKey(pub); err != nil || !bytes.Equal(k.Marshal(), s1.PublicKey().Marshal()) {
		t.Errorf(".pub file %q does not hold the key: %v", pub, err)
	}
	// OpenSSH reads it.
	b, _ := os.ReadFile(file)
	if !bytes.HasPrefix(b, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("not in OpenSSH format: %.40q", b)
	}
	s2, created, err := LoadOrCreateHostKey(file)
	if err != nil || created || !bytes.Equal(s1.PublicKey().Marshal(), s2.PublicKey().Marshal()) {
		t.Fatalf("reload: %v, created %v, same key %v", err, created, err == nil && bytes.Equal(s1.PublicKey().Marshal(), s2.PublicKey().Marshal()))
	}
	os.Chmod(file, 0o644)
	if _, _, err := LoadOrCreateHostKey(file); !errors.Is(err, ErrKeyPermissions) {
		t.Errorf("a world-readable key: %v, want ErrKeyPermissions", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, _, err := LoadOrCreateHostKey(bad); err == nil {
		t.Error("garbage accepted as a host key")
	}
}

func TestKnownHostsLine(t *testing.T) {
	k := newSigner(t).PublicKey()
	b64 := strings.Fields(string(ssh.MarshalAuthorizedKey(k)))[1]
	for _, c := range []struct{ host, port, want string }{
		{"127.0.0.1", "7000", "[127.0.0.1]:7000 ssh-ed25519 " + b64},
		{"buildhost", "22", "buildhost ssh-ed25519 " + b64},
		{"::1", "7000", "[::1]:7000 ssh-ed25519 " + b64},
	} {
		if got := KnownHostsLine(c.host, c.port, k); got != c.want {
			t.Errorf("KnownHostsLine(%s, %s) = %q, want %q", c.host, c.port, got, c.want)
		}
	}
}

func TestParseListenAddr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{":7000", "127.0.0.1:7000"},
		{"7000", "127.0.0.1:7000"},
		{":0", "127.0.0.1:0"},
		{"127.0.0.1:7000", "127.0.0.1:7000"},
		{"0.0.0.0:7000", "0.0.0.0:7000"},
		{"[::]:7000", "[::]:7000"},
		{"[::1]:7000", "[::1]:7000"},
		{"localhost:7000", "localhost:7000"},
		{"build-1.example.com:22", "build-1.example.com:22"},
		{"127.0.0.1:007", "127.0.0.1:7"},
	} {
		got, err := ParseListenAddr(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseListenAddr(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", ":", "host:", ":65536", ":-1", ":ssh", "a b:1", "::1:7000", "[127.0.0.1]:7000",
		"[::1]", "host:1:2", "-host:1", "ho$t:1", ":1\n", "[::1]x:1", "héte:1"} {
		if got, err := ParseListenAddr(in); err == nil {
			t.Errorf("ParseListenAddr(%q) = %q, want an error", in, got)
		}
	}
	if !IsWildcard("0.0.0.0:1") || !IsWildcard("[::]:1") || IsWildcard("127.0.0.1:1") || IsWildcard("localhost:1") {
		t.Error("IsWildcard")
	}
}
