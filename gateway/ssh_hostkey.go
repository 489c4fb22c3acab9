package gateway

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshHostKeyError is a host key refused: not in known_hosts, different from the one
// recorded there, or revoked.
type sshHostKeyError struct {
	Host        string   // host:port as looked up in known_hosts
	KeyType     string   // the key the host presented
	Fingerprint string   // its SHA256 fingerprint, "SHA256:..."
	Files       []string // the known_hosts files consulted (user files first)
	// Recorded is where a different key for the host is recorded (changed key), or the
	// revocation (Revoked); nil for an unknown host.
	Recorded *knownhosts.KnownKey
	Revoked  bool
	// Serve is set for a godist serve (socket=), which prints its known_hosts line at
	// start (cmd/godist/serve.go): the hint names that line.
	Serve bool
}

// serveLine is how godist serve's line for the host starts, as it prints it at start
// (cmd/godist/serve.go): "godist serve: known_hosts line for clients: [HOST]:PORT TYPE".
func (e *sshHostKeyError) serveLine() string {
	return fmt.Sprintf("\"godist serve: known_hosts line for clients: %s %s ...\"", knownhosts.Normalize(e.Host), e.KeyType)
}

func (e *sshHostKeyError) Error() string { return "ssh: " + e.detail() }

func (e *sshHostKeyError) detail() string {
	key := fmt.Sprintf("host key for %s (%s %s)", e.Host, e.KeyType, e.Fingerprint)
	switch {
	case e.Revoked:
		return fmt.Sprintf("%s is marked revoked in %s:%d", key, e.Recorded.Filename, e.Recorded.Line)
	case e.Recorded != nil && e.Serve:
		return fmt.Sprintf("%s does not match the key recorded in %s:%d (possible man-in-the-middle; if that godist serve has a new host key, replace line %d with the one it printed at start: %s)",
			key, e.Recorded.Filename, e.Recorded.Line, e.Recorded.Line, e.serveLine())
	case e.Recorded != nil:
		return fmt.Sprintf("%s does not match the key recorded in %s:%d (possible man-in-the-middle)", key, e.Recorded.Filename, e.Recorded.Line)
	default:
		files := strings.Join(e.Files, ", ")
		if files == "" {
			files = "any known_hosts file (UserKnownHostsFile is none)"
		}
		if e.Serve && len(e.Files) > 0 {
			return fmt.Sprintf("%s is not in %s; if that is the host key godist serve printed at start, add to %s the line it printed with it: %s",
				key, files, e.Files[0], e.serveLine())
		}
		return fmt.Sprintf("%s is not in %s; add it with ssh-keyscan or connect once with ssh", key, files)
	}
}

// sshHostKeys checks the host keys of one host against its known_hosts files.
type sshHostKeys struct {
	res   *sshConfigResolved
	files []string // files that exist, user files first
	db    ssh.HostKeyCallback
	logf  func(format string, args ...any)

	mu       sync.Mutex
	accepted bool // the last check passed (read by the caller after a handshake)
}

// newSSHHostKeys reads the known_hosts files of res. Missing files count as empty.
func newSSHHostKeys(res *sshConfigResolved, logf func(string, ...any)) (*sshHostKeys, error) {
	h := &sshHostKeys{res: res, logf: logf}
	for _, f := range append(append([]string(nil), res.UserKnownHostsFiles...), res.GlobalKnownHostsFiles...) {
		if _, err := os.Stat(f); err == nil {
			h.files = append(h.files, f)
		}
	}
	if len(h.files) > 0 {
		db, err := knownhosts.New(h.files...)
		if err != nil {
			return nil, hostErrorf(res, "reading known_hosts: %v", err)
		}
		h.db = db
	}
	return h, nil
}

// probeKey is a key no known_hosts file holds: looking it up lists the keys recorded for a
// host.
var probeKey = func() ssh.PublicKey {
	k, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		panic(err)
	}
	return k
}()

// algorithms are the host key algorithms to ask the server for: those of the keys recorded
// for its address, so that a server with several host keys presents one we can check
// (left to itself the client prefers ECDSA, and a host known only by its ed25519 key would
// fail as a mismatch). nil when nothing is recorded.
func (h *sshHostKeys) algorithms(addr string) []string {
	if h.db == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := h.db(addr, fakeAddr{}, probeKey); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

type fakeAddr struct{}

func (fakeAddr) Network() string { return "tcp" }
func (fakeAddr) String() string  { return "0.0.0.0:0" }

// check is the ssh.HostKeyCallback.
func (h *sshHostKeys) check(hostport string, remote net.Addr, key ssh.PublicKey) error {
	err := error(&knownhosts.KeyError{})
	if h.db != nil {
		err = h.db(hostport, remote, key)
	}
	if err == nil {
		h.setAccepted()
		return nil
	}
	herr := &sshHostKeyError{Host: hostport, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), Files: h.files, Serve: h.res.Serve}
	if len(h.files) == 0 {
		herr.Files = h.res.UserKnownHostsFiles
	}
	var re *knownhosts.RevokedError
	var ke *knownhosts.KeyError
	switch {
	case errors.As(err, &re):
		herr.Revoked, herr.Recorded = true, &re.Revoked
		return herr
	case errors.As(err, &ke):
	default:
		return hostErrorf(h.res, "checking host key: %v", err)
	}
	if len(ke.Want) > 0 {
		herr.Recorded = &ke.Want[0]
		for i := range ke.Want {
			if ke.Want[i].Key.Type() == key.Type() {
				herr.Recorded = &ke.Want[i]
				break
			}
		}
	}
	switch h.res.StrictHostKeyChecking {
	case "no":
		what := "which is not in known_hosts"
		if herr.Recorded != nil {
			what = fmt.Sprintf("which differs from the key recorded in %s:%d", herr.Recorded.Filename, herr.Recorded.Line)
		}
		h.logf("ssh: warning: accepting host key for %s (%s %s), %s, because StrictHostKeyChecking is no for %s", hostport, herr.KeyType, herr.Fingerprint, what, h.res)
		h.setAccepted()
		return nil
	case "accept-new":
		if herr.Recorded != nil {
			return herr
		}
		if len(h.res.UserKnownHostsFiles) == 0 {
			return herr
		}
		file := h.res.UserKnownHostsFiles[0]
		if err := appendKnownHost(file, hostport, key); err != nil {
			return hostErrorf(h.res, "StrictHostKeyChecking=accept-new: adding the host key to %s: %v", file, err)
		}
		h.logf("ssh: added host key for %s (%s %s) to %s (StrictHostKeyChecking=accept-new)", hostport, herr.KeyType, herr.Fingerprint, file)
		h.setAccepted()
		return nil
	}
	return herr
}

func (h *sshHostKeys) setAccepted() {
	h.mu.Lock()
	h.accepted = true
	h.mu.Unlock()
}

func (h *sshHostKeys) wasAccepted() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accepted
}

var knownHostsMu sync.Mutex // appends to known_hosts files, within this process

func appendKnownHost(file, hostport string, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
