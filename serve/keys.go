package serve

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// MaxAuthorizedKeysSize is the largest authorized-keys file the server reads (a file of
// 1 MiB holds thousands of keys).
const MaxAuthorizedKeysSize = 1 << 20

// AuthorizedKey is one usable key of an authorized-keys file.
type AuthorizedKey struct {
	Key     ssh.PublicKey
	Comment string
	Line    int // 1-based
}

// harmlessOptions are the authorized_keys options a key may carry and still be used: each
// only restricts (or grants) something godist serve never offers anyway — a pty, port and
// agent forwarding, X11, ~/.ssh/rc. Any other option (command=, from=, environment=,
// expiry-time=, cert-authority, permitopen=, principals=, tunnel=, no-touch-required,
// verify-required, ...) would ask the server to enforce or allow something it does not
// implement, so a key with one is skipped rather than accepted with more rights than the
// file gives it.
var harmlessOptions = map[string]bool{
	"restrict": true, "no-pty": true, "no-port-forwarding": true, "no-agent-forwarding": true,
	"no-x11-forwarding": true, "no-user-rc": true,
	"pty": true, "port-forwarding": true, "agent-forwarding": true, "x11-forwarding": true, "user-rc": true,
}

// ParseAuthorizedKeys parses the contents of an authorized_keys file, line by line. It
// returns the usable keys and a warning for each line that is neither blank, a comment nor
// a usable key: one that does not parse, or whose options godist serve does not honour
// (see harmlessOptions). file names the file in warnings.
func ParseAuthorizedKeys(file string, data []byte) (keys []AuthorizedKey, warnings []string) {
	for i, line := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, comment, options, rest, err := ssh.ParseAuthorizedKey(line)
		if err != nil || len(bytes.TrimSpace(rest)) > 0 {
			warnings = append(warnings, fmt.Sprintf("%s:%d: not a public key line; skipped", file, n))
			continue
		}
		var bad []string
		for _, o := range options {
			name, _, _ := strings.Cut(o, "=")
			if !harmlessOptions[strings.ToLower(name)] {
				bad = append(bad, name)
			}
		}
		if len(bad) > 0 {
			warnings = append(warnings, fmt.Sprintf("%s:%d: key %s has options godist serve does not honour (%s); skipped",
				file, n, ssh.FingerprintSHA256(key), strings.Join(bad, ", ")))
			continue
		}
		if _, ok := key.(*ssh.Certificate); ok {
			warnings = append(warnings, fmt.Sprintf("%s:%d: certificates are not supported; skipped", file, n))
			continue
		}
		keys = append(keys, AuthorizedKey{Key: key, Comment: comment, Line: n})
	}
	return keys, warnings
}

// ReadAuthorizedKeys reads and parses an authorized_keys file (at most
// MaxAuthorizedKeysSize bytes).
func ReadAuthorizedKeys(file string) ([]AuthorizedKey, []string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxAuthorizedKeysSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > MaxAuthorizedKeysSize {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", file, MaxAuthorizedKeysSize)
	}
	keys, warnings := ParseAuthorizedKeys(file, data)
	return keys, warnings, nil
}

// ErrKeyPermissions is returned by LoadOrCreateHostKey for a private key file that others
// may read.
var ErrKeyPermissions = errors.New("serve: host key file is readable by others (chmod 600 it)")

// LoadOrCreateHostKey reads the host key in file (an unencrypted private key, OpenSSH or
// PEM format). When file does not exist it makes a new ed25519 key there (mode 0600, its
// directory 0700 if new) and its public key in file.pub, and reports created.
func LoadOrCreateHostKey(file string) (signer ssh.Signer, created bool, err error) {
	st, err := os.Stat(file)
	switch {
	case err == nil:
		if st.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("%w: %s has mode %v", ErrKeyPermissions, file, st.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, false, err
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			var pme *ssh.PassphraseMissingError
			if errors.As(err, &pme) {
				return nil, false, fmt.Errorf("serve: host key %s is encrypted; give an unencrypted key", file)
			}
			return nil, false, fmt.Errorf("serve: host key %s: %v", file, err)
		}
		return s, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, false, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	host, _ := os.Hostname()
	block, err := ssh.MarshalPrivateKey(priv, "godist-serve@"+host)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, false, err
	}
	// O_EXCL: two servers starting at once must not overwrite each other's key.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateHostKey(file)
		}
		return nil, false, err
	}
	if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
		f.Close()
		os.Remove(file)
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		os.Remove(file)
		return nil, false, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, false, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, false, err
	}
	// The .pub file is a convenience; failing to write it does not matter.
	_ = os.WriteFile(file+".pub", append(bytes.TrimSpace(ssh.MarshalAuthorizedKey(sshPub)), []byte(" godist-serve@"+host+"\n")...), 0o644)
	return s, true, nil
}

// KnownHostsLine is the line for a client's known_hosts that names this server as clients
// reach it at host:port ("[host]:port KEYTYPE BASE64", or "host KEYTYPE BASE64" on port 22).
func KnownHostsLine(host, port string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(host, port))}, key)
}
