package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/serve"
)

type serveOptions struct {
	listen         string
	hostKey        string
	authorizedKeys string
}

func newServeCommand(stderr io.Writer) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve --listen ADDR [--host-key FILE] [--authorized-keys FILE]",
		Short: "Run godist workers for socket= gateways (an SSH-protocol server)",
		Long: `godist serve is the server behind --tx socket=HOST:PORT. It speaks the SSH protocol,
lets in only the public keys of the authorized-keys file (read again at every connection),
and runs nothing but godist workers: this binary, as "godist worker", one per session.

--listen ADDR: ":PORT" (or "PORT") binds 127.0.0.1 only; name the address to bind others,
"0.0.0.0:PORT" or "[::]:PORT" for every interface. PORT 0 picks a free port.

--host-key FILE: an unencrypted private key (default
${XDG_CONFIG_HOME:-~/.config}/godist/serve_host_ed25519_key, made on first start, mode 600).
Its fingerprint and the line for clients' ~/.ssh/known_hosts are printed at start.

--authorized-keys FILE: default ~/.ssh/authorized_keys. A key with options other than
restrictions serve applies anyway (restrict, no-pty, no-port-forwarding, ...) is skipped
with a warning: command=, from=, environment= and the like are not honoured, so such keys
are not let in at all.

Workers start in $HOME (chdir= of the spec is relative to it) with this process's
environment and the spec's env: keys. SIGINT or SIGTERM stops accepting, ends every
session (workers get 5s to exit, then are killed) and exits 0.`,
		Example: `  godist serve --listen :7000
  godist --tx 4*socket=buildhost:7000 ./...`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("serve: unexpected argument %q (serve takes only flags)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), o, stderr)
		},
	}
	cmd.SetFlagErrorFunc(wrapFlagError)
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "", "listen on `ADDR` (HOST:PORT; :PORT binds 127.0.0.1)")
	f.StringVar(&o.hostKey, "host-key", "", "host private key `FILE` (made if missing; default ${XDG_CONFIG_HOME:-~/.config}/godist/serve_host_ed25519_key)")
	f.StringVar(&o.authorizedKeys, "authorized-keys", "", "public keys allowed in, authorized_keys `FILE` (default ~/.ssh/authorized_keys)")
	return cmd
}

// runServe serves until ctx ends (SIGINT, SIGTERM), then returns nil once every worker is
// gone.
func runServe(ctx context.Context, o serveOptions, stderr io.Writer) error {
	if o.listen == "" {
		return usagef("serve: --listen ADDR is required (e.g. --listen :7000)")
	}
	addr, err := serve.ParseListenAddr(o.listen)
	if err != nil {
		return usagef("serve --listen: %v", err)
	}
	// Its workers could not be started, nor killed with all they start.
	if err := child.Supported(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if o.hostKey == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return usagef("serve: no --host-key and no default place for it: %v", err)
		}
		o.hostKey = filepath.Join(dir, "godist", "serve_host_ed25519_key")
	}
	if o.authorizedKeys == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return usagef("serve: no --authorized-keys and no home directory: %v", err)
		}
		o.authorizedKeys = filepath.Join(home, ".ssh", "authorized_keys")
	}
	signer, created, err := serve.LoadOrCreateHostKey(o.hostKey)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("serve --host-key %s: %v (expected an ed25519 private key file, or none there: it is made)", o.hostKey, pe.Err)
	} else if err != nil {
		return fmt.Errorf("serve: host key: %w", err)
	}
	keys, warnings, err := serve.ReadAuthorizedKeys(o.authorizedKeys)
	if errors.As(err, &pe) {
		return fmt.Errorf("serve --authorized-keys %s: %v (expected an authorized_keys file of the keys to let in)", o.authorizedKeys, pe.Err)
	} else if err != nil {
		return fmt.Errorf("serve: authorized keys: %w", err)
	}
	say := func(format string, args ...any) { fmt.Fprintf(stderr, "godist serve: "+format+"\n", args...) }
	for _, w := range warnings {
		say("warning: %s", w)
	}
	if len(keys) == 0 {
		say("warning: no usable key in %s: every client is refused until one is added", o.authorizedKeys)
	}
	logger := log.New(stderr, "godist serve: ", log.LstdFlags|log.Lmsgprefix)
	srv, err := serve.New(&serve.Config{
		HostKey:            signer,
		AuthorizedKeysFile: o.authorizedKeys,
		Logf:               logger.Printf,
	})
	if err != nil {
		return err
	}
	l, err := srv.Listen(ctx, addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	pub := signer.PublicKey()
	made := ""
	if created {
		made = ", new"
	}
	say("host key %s (%s %s%s)", o.hostKey, pub.Type(), ssh.FingerprintSHA256(pub), made)
	host, _, _ := net.SplitHostPort(addr)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	scope := "loopback only"
	if serve.IsWildcard(addr) {
		scope = "every interface"
		if h, err := os.Hostname(); err == nil {
			host = h // a guess at the name clients use
		}
	} else if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		scope = host
	}
	say("listening on %s (%s); %d keys of %s let in", l.Addr(), scope, len(keys), o.authorizedKeys)
	say("known_hosts line for clients: %s", serve.KnownHostsLine(host, port, pub))
	err = srv.Serve(ctx, l)
	say("stopped")
	return err
}
