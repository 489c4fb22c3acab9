package gateway

import (
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestResolveSSH(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	config := `
# comment
Host build1
	HostName build1.example.com
	Port 2222
	User alice
	IdentityFile ~/.ssh/build_key
	IdentityFile %d/.ssh/%h-%r-%p
	IdentitiesOnly yes
	ProxyJump bastion
	UserKnownHostsFile ~/.ssh/kh1 /abs/kh2
	StrictHostKeyChecking accept-new
	ConnectTimeout 7

Host pct
	HostName %h.internal

Host nojump
	ProxyJump none
	UserKnownHostsFile none
	GlobalKnownHostsFile none
	StrictHostKeyChecking no

Host *
	User everyone
	Port 22022
`
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(config), 0o600)
	getenv := func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
	r, err := resolveSSHWith(getenv, "build1", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := &sshConfigResolved{
		Alias: "build1", HostName: "build1.example.com", Port: 2222, User: "alice",
		IdentityFiles:         []string{home + "/.ssh/build_key", home + "/.ssh/build1.example.com-alice-2222"},
		IdentitiesOnly:        true,
		ProxyJump:             "bastion",
		UserKnownHostsFiles:   []string{home + "/.ssh/kh1", "/abs/kh2"},
		GlobalKnownHostsFiles: []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"},
		StrictHostKeyChecking: "accept-new",
		ConnectTimeout:        7 * time.Second,
		ConfigFile:            filepath.Join(home, ".ssh", "config"),
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("build1:\n got %+v\nwant %+v", r, want)
	}
	if got := r.String(); got != "build1 (alice@build1.example.com:2222)" {
		t.Errorf("String() = %q", got)
	}

	// The spec's user and port win over the config.
	r, _ = resolveSSHWith(getenv, "build1", "bob", 22)
	if r.User != "bob" || r.Port != 22 {
		t.Errorf("explicit user@ and :port: got %s@...:%d", r.User, r.Port)
	}

	// A host of no Host block but "*": the defaults of ssh and of the * block.
	r, _ = resolveSSHWith(getenv, "10.0.0.7", "", 0)
	if r.HostName != "10.0.0.7" || r.Port != 22022 || r.User != "everyone" || r.ProxyJump != "" ||
		!r.DefaultIdentities || len(r.IdentityFiles) != 3 || r.IdentityFiles[0] != home+"/.ssh/id_ed25519" ||
		!reflect.DeepEqual(r.UserKnownHostsFiles, []string{home + "/.ssh/known_hosts"}) || r.StrictHostKeyChecking != "yes" {
		t.Errorf("defaults: %+v", r)
	}
	if r.String() != "everyone@10.0.0.7:22022" {
		t.Errorf("String() = %q", r.String())
	}

	r, _ = resolveSSHWith(getenv, "pct", "", 0)
	if r.HostName != "pct.internal" {
		t.Errorf("HostName %%h: %q", r.HostName)
	}
	r, _ = resolveSSHWith(getenv, "nojump", "", 0)
	if r.ProxyJump != "" || r.UserKnownHostsFiles != nil || r.GlobalKnownHostsFiles != nil || r.StrictHostKeyChecking != "no" {
		t.Errorf("none values: %+v", r)
	}

	// No config at all: the local user, port 22.
	empty := t.TempDir()
	r, err = resolveSSHWith(func(k string) string {
		if k == "HOME" {
			return empty
		}
		return ""
	}, "h", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := user.Current()
	if r.User != u.Username || r.Port != 22 || r.ConfigFile != "" {
		t.Errorf("no config: %+v", r)
	}
}

func TestResolveSSHBadValues(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{"Host h\n\tPort 99999\n", `Port "99999": expected a port number`},
		{"Host h\n\tPort x\n", `Port "x"`},
		{"Host h\n\tStrictHostKeyChecking maybe\n", `StrictHostKeyChecking "maybe"`},
		{"Host h\n\tIdentitiesOnly sure\n", `IdentitiesOnly "sure"`},
		{"Host h\n\tConnectTimeout soon\n", `ConnectTimeout "soon"`},
		{"Host h\n\tMatch\n", `Match`},
	} {
		home := t.TempDir()
		os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
		os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(tc.config), 0o600)
		_, err := resolveSSHWith(func(k string) string {
			if k == "HOME" {
				return home
			}
			return ""
		}, "h", "", 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: got %v, want one line containing %q", tc.config, err, tc.want)
		}
	}
}

func TestParseProxyJump(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []sshJump
		err  string
	}{
		{"bastion", []sshJump{{Host: "bastion"}}, ""},
		{"alice@bastion:2222", []sshJump{{User: "alice", Host: "bastion", Port: 2222}}, ""},
		{"a, b@c:1", []sshJump{{Host: "a"}, {User: "b", Host: "c", Port: 1}}, ""},
		{"ssh://u@[::1]:22", []sshJump{{User: "u", Host: "::1", Port: 22}}, ""},
		{"[fe80::1%eth0]", []sshJump{{Host: "fe80::1%eth0"}}, ""},
		{"a,,b", nil, "empty hop"},
		{"@a", nil, "empty user"},
		{"a:0", nil, "bad port"},
		{"a:http", nil, "bad port"},
		{"::1", nil, "brackets"},
		{"[::1", nil, "missing ']'"},
		{"-oProxyCommand=x", nil, "bad host"},
	} {
		got, err := parseProxyJump(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestExpandPercent(t *testing.T) {
	tok := map[byte]string{'h': "host", 'p': "22"}
	for in, want := range map[string]string{
		"plain":      "plain",
		"%h:%p":      "host:22",
		"100%%":      "100%",
		"%x%h":       "%xhost",
		"trailing %": "trailing %",
	} {
		if got := expandPercent(in, tok); got != want {
			t.Errorf("expandPercent(%q) = %q, want %q", in, got, want)
		}
	}
}
