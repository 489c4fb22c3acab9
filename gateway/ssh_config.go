package gateway

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// sshConfigResolved is what an ssh= HOST comes to after ~/.ssh/config.
type sshConfigResolved struct {
	Alias    string // HOST as given in the spec (or in a ProxyJump list)
	HostName string // HostName, or Alias
	Port     int    // the spec's port, else Port, else 22
	User     string // the spec's user, else User, else the local user

	// IdentityFiles are the IdentityFile entries, expanded, in order; with none in the
	// config they are the defaults ~/.ssh/id_ed25519, id_ecdsa, id_rsa, and
	// DefaultIdentities is set (a missing default file is no news).
	IdentityFiles     []string
	DefaultIdentities bool
	IdentitiesOnly    bool

	// ProxyJump is "" or a comma-separated list of jump hosts, [user@]host[:port] or
	// ssh://[user@]host[:port] each ("none" is turned into "").
	ProxyJump string

	// UserKnownHostsFiles are the files host keys are checked against and the first of
	// which StrictHostKeyChecking=accept-new adds to; GlobalKnownHostsFiles are checked too
	// when they exist. Both are expanded.
	UserKnownHostsFiles   []string
	GlobalKnownHostsFiles []string
	// StrictHostKeyChecking is "yes" (also for "ask": nobody is there to ask), "no"
	// ("off" too) or "accept-new".
	StrictHostKeyChecking string
	// Serve is set for a godist serve (socket=) rather than an sshd.
	Serve bool

	ConnectTimeout time.Duration // 0 = not set

	ConfigFile string // the file read, "" if there was none
}

// Addr is HostName:Port.
func (r *sshConfigResolved) Addr() string {
	return net.JoinHostPort(r.HostName, strconv.Itoa(r.Port))
}

// String names the host in messages: user@hostname:port, and the alias when it differs.
func (r *sshConfigResolved) String() string {
	s := r.User + "@" + r.Addr()
	if r.Alias != "" && r.Alias != r.HostName {
		s = r.Alias + " (" + s + ")"
	}
	return s
}

// key identifies the connections the pool may share between specs.
func (r *sshConfigResolved) key() string {
	return r.User + "@" + r.Addr() + " via " + r.ProxyJump
}

// resolveSSH resolves alias (the HOST of an ssh= spec) with $HOME/.ssh/config. A non-empty
// user and a non-zero port, from the spec, win over the config.
func resolveSSH(alias string, user string, port int) (*sshConfigResolved, error) {
	return resolveSSHWith(os.Getenv, alias, user, port)
}

// resolveSSHWith is resolveSSH with getenv for the environment (HOME, USER).
//
// Only the user's config is read, not /etc/ssh/ssh_config: the contract promises that
// godist reads $HOME/.ssh/config, and a system file's defaults for interactive use (such
// as GSSAPI) have no meaning here.
func resolveSSHWith(getenv func(string) string, alias string, specUser string, specPort int) (*sshConfigResolved, error) {
	home := getenv("HOME")
	if home == "" {
		if u, err := user.Current(); err == nil {
			home = u.HomeDir
		}
	}
	r := &sshConfigResolved{Alias: alias}
	cfg := &ssh_config.Config{}
	if home != "" {
		file := filepath.Join(home, ".ssh", "config")
		b, err := os.ReadFile(file)
		switch {
		case err == nil:
			if cfg, err = ssh_config.DecodeBytes(b); err != nil {
				return nil, fmt.Errorf("ssh: %s: %v", file, err)
			}
			r.ConfigFile = file
		case errors.Is(err, os.ErrNotExist):
		default:
			return nil, fmt.Errorf("ssh: %v", err)
		}
	}
	get := func(key string) (string, error) {
		v, err := cfg.Get(alias, key)
		if err != nil {
			return "", fmt.Errorf("ssh: %s: host %s: %s: %v", r.ConfigFile, alias, key, err)
		}
		return strings.TrimSpace(v), nil
	}
	getAll := func(key string) ([]string, error) {
		v, err := cfg.GetAll(alias, key)
		if err != nil {
			return nil, fmt.Errorf("ssh: %s: host %s: %s: %v", r.ConfigFile, alias, key, err)
		}
		return v, nil
	}
	bad := func(key, val, want string) error {
		return fmt.Errorf("ssh: %s: host %s: %s %q: expected %s", r.ConfigFile, alias, key, val, want)
	}

	localUser := getenv("USER")
	if u, err := user.Current(); err == nil {
		localUser = u.Username
	}

	v, err := get("HostName")
	if err != nil {
		return nil, err
	}
	r.HostName = alias
	if v != "" {
		r.HostName = expandPercent(v, map[byte]string{'h': alias})
	}

	r.Port = 22
	if v, err = get("Port"); err != nil {
		return nil, err
	}
	if v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return nil, bad("Port", v, "a port number 1..65535")
		}
		r.Port = p
	}
	if specPort != 0 {
		r.Port = specPort
	}

	r.User = localUser
	if v, err = get("User"); err != nil {
		return nil, err
	}
	if v != "" {
		r.User = v
	}
	if specUser != "" {
		r.User = specUser
	}

	tokens := map[byte]string{
		'd': home, 'u': localUser, 'h': r.HostName, 'p': strconv.Itoa(r.Port),
		'r': r.User, 'n': alias, 'l': hostnameShort(),
	}
	expand := func(p string) string {
		p = expandPercent(p, tokens)
		if p == "~" {
			p = home
		} else if strings.HasPrefix(p, "~/") {
			p = filepath.Join(home, p[2:])
		}
		return p
	}

	ids, err := getAll("IdentityFile")
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" && !strings.EqualFold(id, "none") {
			r.IdentityFiles = append(r.IdentityFiles, expand(id))
		}
	}
	if len(r.IdentityFiles) == 0 && len(ids) == 0 {
		r.DefaultIdentities = true
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			r.IdentityFiles = append(r.IdentityFiles, filepath.Join(home, ".ssh", n))
		}
	}
	if v, err = get("IdentitiesOnly"); err != nil {
		return nil, err
	}
	switch strings.ToLower(v) {
	case "", "no":
	case "yes":
		r.IdentitiesOnly = true
	default:
		return nil, bad("IdentitiesOnly", v, "yes or no")
	}

	if v, err = get("ProxyJump"); err != nil {
		return nil, err
	}
	if !strings.EqualFold(v, "none") {
		r.ProxyJump = v
	}

	if v, err = get("UserKnownHostsFile"); err != nil {
		return nil, err
	}
	if v == "" {
		v = "~/.ssh/known_hosts"
	}
	if !strings.EqualFold(v, "none") {
		for _, f := range strings.Fields(v) {
			r.UserKnownHostsFiles = append(r.UserKnownHostsFiles, expand(f))
		}
	}
	if v, err = get("GlobalKnownHostsFile"); err != nil {
		return nil, err
	}
	if v == "" {
		v = "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"
	}
	if !strings.EqualFold(v, "none") {
		for _, f := range strings.Fields(v) {
			r.GlobalKnownHostsFiles = append(r.GlobalKnownHostsFiles, expand(f))
		}
	}

	if v, err = get("StrictHostKeyChecking"); err != nil {
		return nil, err
	}
	switch strings.ToLower(v) {
	case "", "yes", "ask":
		r.StrictHostKeyChecking = "yes"
	case "no", "off":
		r.StrictHostKeyChecking = "no"
	case "accept-new":
		r.StrictHostKeyChecking = "accept-new"
	default:
		return nil, bad("StrictHostKeyChecking", v, "yes, no, off, ask or accept-new")
	}

	if v, err = get("ConnectTimeout"); err != nil {
		return nil, err
	}
	if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, bad("ConnectTimeout", v, "a number of seconds")
		}
		r.ConnectTimeout = time.Duration(n) * time.Second
	}
	return r, nil
}

// expandPercent replaces %X by tokens[X] and "%%" by "%"; unknown tokens stay as they are.
func expandPercent(s string, tokens map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+1 < len(s) {
			if s[i+1] == '%' {
				b.WriteString("%")
				i++
				continue
			}
			if v, ok := tokens[s[i+1]]; ok {
				b.WriteString(v)
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hostnameShort() string {
	h, _ := os.Hostname()
	if i := strings.IndexByte(h, '.'); i >= 0 {
		h = h[:i]
	}
	return h
}

// sshJump is one hop of a ProxyJump list.
type sshJump struct {
	User string
	Host string
	Port int
}

// parseProxyJump splits a ProxyJump value into its hops, in order (the first is dialled
// first).
func parseProxyJump(v string) ([]sshJump, error) {
	var hops []sshJump
	for _, h := range strings.Split(v, ",") {
		h = strings.TrimSpace(h)
		orig := h
		if h == "" {
			return nil, fmt.Errorf("ProxyJump %q: empty hop", v)
		}
		h = strings.TrimPrefix(h, "ssh://")
		var j sshJump
		if i := strings.LastIndexByte(h, '@'); i >= 0 {
			j.User, h = h[:i], h[i+1:]
			if j.User == "" {
				return nil, fmt.Errorf("ProxyJump hop %q: empty user", orig)
			}
		}
		host, port := h, ""
		if strings.HasPrefix(h, "[") {
			i := strings.IndexByte(h, ']')
			if i < 0 {
				return nil, fmt.Errorf("ProxyJump hop %q: missing ']'", orig)
			}
			host, h = h[1:i], h[i+1:]
			if h != "" {
				if h[0] != ':' {
					return nil, fmt.Errorf("ProxyJump hop %q: expected ':' after ']'", orig)
				}
				port = h[1:]
			}
		} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
			if strings.Count(h, ":") > 1 {
				return nil, fmt.Errorf("ProxyJump hop %q: write an IPv6 address in brackets", orig)
			}
			host, port = h[:i], h[i+1:]
		}
		if host == "" || strings.HasPrefix(host, "-") {
			return nil, fmt.Errorf("ProxyJump hop %q: bad host", orig)
		}
		j.Host = host
		if port != "" {
			p, err := strconv.Atoi(port)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("ProxyJump hop %q: bad port %q", orig, port)
			}
			j.Port = p
		}
		hops = append(hops, j)
	}
	return hops, nil
}
