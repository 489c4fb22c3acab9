package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// sshAuth is the public keys one connection offers: keys of the ssh-agent at
// SSH_AUTH_SOCK and unencrypted identity files. What could not be used is kept as notes for
// the error message when authentication fails.
type sshAuth struct {
	res       *sshConfigResolved
	agentConn net.Conn
	signers   []ssh.Signer
	offered   []string // what signers are, for messages
	skipped   []string // what was not offered, and why

	mu        sync.Mutex
	attempted bool // the server asked for public keys
}

// newSSHAuth gathers the keys for res. It does not fail: a missing agent or an unreadable
// key becomes a note.
func newSSHAuth(res *sshConfigResolved, getenv func(string) string) *sshAuth {
	a := &sshAuth{res: res}
	var agentSigners []ssh.Signer
	if sock := getenv("SSH_AUTH_SOCK"); sock != "" {
		c, err := net.Dial("unix", sock)
		if err != nil {
			a.skipped = append(a.skipped, fmt.Sprintf("the ssh-agent (%v)", err))
		} else {
			a.agentConn = c
			if agentSigners, err = agent.NewClient(c).Signers(); err != nil {
				a.skipped = append(a.skipped, fmt.Sprintf("the ssh-agent at %s (%v)", sock, err))
			}
		}
	}
	fromAgent := func(pub ssh.PublicKey) ssh.Signer {
		if pub == nil {
			return nil
		}
		for _, s := range agentSigners {
			if bytes.Equal(s.PublicKey().Marshal(), pub.Marshal()) {
				return s
			}
		}
		return nil
	}
	used := map[string]bool{}
	add := func(s ssh.Signer, what string) {
		k := string(s.PublicKey().Marshal())
		if used[k] {
			return
		}
		used[k] = true
		a.signers = append(a.signers, s)
		a.offered = append(a.offered, what)
	}
	for _, file := range res.IdentityFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && res.DefaultIdentities {
				continue
			}
			if errors.Is(err, os.ErrNotExist) {
				// The agent may hold the key of a private key file that is not here.
				if s := fromAgent(readPublicKey(file + ".pub")); s != nil {
					add(s, "agent key for "+file)
					continue
				}
				a.skipped = append(a.skipped, file+" (no such file)")
				continue
			}
			a.skipped = append(a.skipped, fmt.Sprintf("%s (%v)", file, err))
			continue
		}
		signer, err := ssh.ParsePrivateKey(b)
		var pme *ssh.PassphraseMissingError
		switch {
		case err == nil:
			if s := fromAgent(signer.PublicKey()); s != nil {
				signer = s
			}
			add(signer, file)
		case errors.As(err, &pme):
			pub := pme.PublicKey
			if pub == nil {
				pub = readPublicKey(file + ".pub")
			}
			if s := fromAgent(pub); s != nil {
				add(s, "agent key for "+file)
			} else {
				a.skipped = append(a.skipped, file+" (encrypted and not in the ssh-agent)")
			}
		default:
			a.skipped = append(a.skipped, fmt.Sprintf("%s (%v)", file, err))
		}
	}
	if !res.IdentitiesOnly {
		for _, s := range agentSigners {
			add(s, "agent key "+s.PublicKey().Type()+" "+ssh.FingerprintSHA256(s.PublicKey()))
		}
	}
	return a
}

func readPublicKey(file string) ssh.PublicKey {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return k
}

func (a *sshAuth) method() ssh.AuthMethod {
	return ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		a.mu.Lock()
		a.attempted = true
		a.mu.Unlock()
		return a.signers, nil
	})
}

// failed reports whether a handshake error came after the server asked for keys, that is
// whether authentication (rather than the key exchange) failed.
func (a *sshAuth) failed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.attempted
}

// explain says what was offered and what was skipped.
func (a *sshAuth) explain() string {
	var parts []string
	if len(a.offered) == 0 {
		parts = append(parts, "no keys to offer")
		if a.res.DefaultIdentities && a.agentConn == nil {
			parts = append(parts, "no ssh-agent (SSH_AUTH_SOCK) and none of "+strings.Join(a.res.IdentityFiles, ", ")+" exist")
		}
	} else {
		parts = append(parts, "offered "+strings.Join(a.offered, ", "))
	}
	if len(a.skipped) > 0 {
		parts = append(parts, "skipped "+strings.Join(a.skipped, ", "))
	}
	return strings.Join(parts, "; ")
}

// close lets go of the agent; call it when the handshake is over.
func (a *sshAuth) close() {
	if a.agentConn != nil {
		a.agentConn.Close()
	}
}
