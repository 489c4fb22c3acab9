package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/godist/godist/xspec"
)

// The bootstrap turns any byte stream that reaches a POSIX shell into a worker, with
// nothing installed on the far side but sh: no Go, no godist, not even libc.
//
//  1. The master writes one line of shell: find the cache directory
//     (${XDG_CACHE_HOME:-$HOME/.cache}/godist), report `uname -sm`, and if the worker binary
//     the master expects there (godist-<sha256>) is present, exec it at once.
//  2. The shell answers with one line: "GODIST-BOOT1 HAVE <os> <arch>" (the worker now
//     speaks the channel protocol) or "GODIST-BOOT1 NEED <os> <arch>".
//  3. On NEED the master picks (or cross-builds) a static worker for that platform and
//     writes a second line: read exactly N bytes with head -c into a temporary file,
//     check its sha256 where sha256sum exists, chmod, rename it into the cache, exec it.
//
// Before it says HAVE the shell makes the spec's chdir= directory if it is missing and
// enters it; when it cannot it answers "GODIST-BOOT1 NOCHDIR <why>" (mkdir's or cd's own
// message) instead and exits. "GODIST-BOOT1 FAIL <why>" is a failed install.
//
// A shell may read ahead on a pipe (dash reads 8 KiB blocks), so the master never sends
// anything the shell might swallow: after each line it waits for the shell's answer, and
// the binary goes only once the shell said SEND, from inside the line, right before head.

// bootMagic starts every line the bootstrap scripts print.
const bootMagic = "GODIST-BOOT1"

// bootstrapConfig says what the worker on the far side needs.
type bootstrapConfig struct {
	spec *xspec.Spec
	env  []string // NAME=VALUE for the worker, after the spec's env: keys
	// binaries finds the worker binary for a platform; nil = the process default.
	binaries *Binaries
}

// BootstrapError is a far side that did not come up as a worker.
type BootstrapError struct {
	Step string // what the bootstrap was doing, or "chdir DIR"
	Msg  string // why it failed, one line
	Err  error  // the stream's error behind Msg, if any
}

func (e *BootstrapError) Error() string { return "bootstrap: " + e.Step + ": " + e.Msg }
func (e *BootstrapError) Unwrap() error { return e.Err }

// writeError is a failed write of the bootstrap to the shell.
func writeError(err error) *BootstrapError {
	return &BootstrapError{Step: "writing to the shell", Msg: errnoOf(err).Error(), Err: err}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// chdirLine is the shell that makes the spec's working directory if it is missing and
// enters it, or reports why not ("GODIST-BOOT1 NOCHDIR <mkdir's or cd's message>") and
// exits. It runs before the shell says HAVE: after that the master expects a worker.
func chdirLine(cfg *bootstrapConfig) string {
	if cfg.spec == nil || cfg.spec.Chdir == "" {
		return ""
	}
	q := shellQuote(cfg.spec.Chdir)
	return fmt.Sprintf(`if ! e=$(mkdir -p -- %s 2>&1) || ! e=$(cd -- %s 2>&1); then printf '%%s\n' "%s NOCHDIR ${e#mkdir: }"; exit 1; fi; cd -- %s || exit 1; `,
		q, q, bootMagic, q)
}

// execLine is the shell that starts the worker binary in $b with the spec's niceness and
// environment (chdirLine has entered its working directory).
func execLine(cfg *bootstrapConfig) string {
	var b strings.Builder
	var env []string
	if cfg.spec != nil {
		env = append(env, cfg.spec.EnvList()...)
	}
	env = append(env, cfg.env...)
	for _, kv := range env {
		name, val, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "%s=%s; export %s; ", name, shellQuote(val), name)
	}
	args := ""
	if cfg.spec != nil && cfg.spec.HasNice {
		args = " --nice " + strconv.Itoa(cfg.spec.Nice)
	}
	fmt.Fprintf(&b, `exec "$b" worker%s`, args)
	return b.String()
}

// bootstrap runs the bootstrap over rwc and returns the stream to the worker (which may
// hold bytes already read) and how many bytes of binary it shipped.
func bootstrap(ctx context.Context, rwc io.ReadWriteCloser, cfg *bootstrapConfig) (io.ReadWriteCloser, int64, error) {
	bins := cfg.binaries
	if bins == nil {
		bins = DefaultBinaries()
	}
	stop := context.AfterFunc(ctx, func() { rwc.Close() })
	defer stop()
	br := bufio.NewReaderSize(rwc, 4096)
	// Guess that the far side is this machine's platform: then a warm cache costs one
	// round trip.
	guess, err := bins.Host()
	if err != nil {
		return nil, 0, err
	}
	dir := `d="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/godist"`
	line1 := fmt.Sprintf(`%s; p=$(uname -sm 2>/dev/null); b="$d/godist-%s"; if [ "$p" = %s ] && [ -x "$b" ]; then %secho "%s HAVE $p"; %s; fi; echo "%s NEED $p"`+"\n",
		dir, guess.Hash, shellQuote(guess.Uname()), chdirLine(cfg), bootMagic, execLine(cfg), bootMagic)
	if _, err := io.WriteString(rwc, line1); err != nil {
		return nil, 0, ctxOr(ctx, writeError(err))
	}
	read := func() (verb, rest string, err error) {
		verb, rest, err = readBootLine(br)
		if err == nil && verb == "NOCHDIR" {
			step := "chdir"
			if cfg.spec != nil && cfg.spec.Chdir != "" {
				step += " " + cfg.spec.Chdir
			}
			return "", "", &BootstrapError{Step: step, Msg: rest}
		}
		return verb, rest, err
	}
	verb, uname, err := read()
	if err != nil {
		return nil, 0, ctxOr(ctx, err)
	}
	stream := &bufferedRWC{r: br, rwc: rwc}
	if verb == "HAVE" {
		return stream, 0, nil
	}
	if verb != "NEED" {
		return nil, 0, &BootstrapError{Step: "first answer", Msg: fmt.Sprintf("unexpected %q", verb)}
	}
	goos, goarch, err := platformOf(uname)
	if err != nil {
		return nil, 0, err
	}
	bin, err := bins.For(ctx, goos, goarch)
	if err != nil {
		return nil, 0, err
	}
	f, err := bin.Open()
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	line2 := fmt.Sprintf(`%s; b="$d/godist-%s"; t="$d/.godist-%s.$$"; mkdir -p "$d" && : > "$t" || { echo "%s FAIL cannot write $t"; exit 1; }; echo "%s SEND"; head -c %d > "$t" || { echo "%s FAIL cannot write $t"; exit 1; }; `+
		`if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum "$t"); if [ "${s%%%% *}" != %s ]; then rm -f "$t"; echo "%s FAIL checksum"; exit 1; fi; fi; `+
		`chmod 755 "$t" && mv -f "$t" "$b" || { rm -f "$t"; echo "%s FAIL cannot install $b"; exit 1; }; %secho "%s HAVE $p"; %s`+"\n",
		dir, bin.Hash, bin.Hash, bootMagic, bootMagic, bin.Size, bootMagic, bin.Hash, bootMagic, bootMagic, chdirLine(cfg), bootMagic, execLine(cfg))
	if _, err := io.WriteString(rwc, line2); err != nil {
		return nil, 0, ctxOr(ctx, writeError(err))
	}
	// Only once the shell has read its whole line and runs head may the binary follow: a
	// shell may read ahead on a pipe (dash reads blocks of 8 KiB).
	if verb, _, err = read(); err != nil {
		return nil, 0, ctxOr(ctx, err)
	} else if verb != "SEND" {
		return nil, 0, &BootstrapError{Step: "installing the worker", Msg: fmt.Sprintf("unexpected %q", verb)}
	}
	n, err := io.Copy(rwc, f)
	if err != nil {
		return nil, n, ctxOr(ctx, &BootstrapError{Step: "sending the worker binary", Msg: errnoOf(err).Error(), Err: err})
	}
	verb, _, err = read()
	if err != nil {
		return nil, n, ctxOr(ctx, err)
	}
	if verb != "HAVE" {
		return nil, n, &BootstrapError{Step: "installing the worker", Msg: fmt.Sprintf("unexpected %q", verb)}
	}
	return stream, n, nil
}

func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// readBootLine reads lines until one starts with bootMagic (a login shell may print a
// banner first) and returns its verb and the rest.
func readBootLine(br *bufio.Reader) (verb, rest string, err error) {
	for i := 0; i < 100; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", "", &BootstrapError{Step: "waiting for the shell", Msg: "the stream ended (is there a POSIX sh at the other end?)", Err: err}
			}
			return "", "", &BootstrapError{Step: "waiting for the shell", Msg: errnoOf(err).Error(), Err: err}
		}
		line = strings.TrimRight(line, "\r\n")
		if rest, ok := strings.CutPrefix(line, bootMagic+" "); ok {
			verb, rest, _ = strings.Cut(rest, " ")
			if verb == "FAIL" {
				return "", "", &BootstrapError{Step: "installing the worker", Msg: rest}
			}
			return verb, rest, nil
		}
	}
	return "", "", &BootstrapError{Step: "waiting for the shell", Msg: "no answer after 100 lines of other output"}
}

// platformOf maps `uname -sm` to GOOS and GOARCH.
func platformOf(uname string) (string, string, error) {
	sys, mach, _ := strings.Cut(strings.TrimSpace(uname), " ")
	goos := map[string]string{"Linux": "linux", "Darwin": "darwin", "FreeBSD": "freebsd", "OpenBSD": "openbsd", "NetBSD": "netbsd"}[sys]
	goarch := map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
		"i386": "386", "i486": "386", "i586": "386", "i686": "386", "armv6l": "arm", "armv7l": "arm",
		"riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x", "mips64": "mips64", "loongarch64": "loong64"}[mach]
	if goos == "" || goarch == "" {
		return "", "", &BootstrapError{Step: "platform", Msg: fmt.Sprintf("uname -sm says %q; supported: Linux, Darwin, FreeBSD, OpenBSD, NetBSD on x86_64, aarch64, i686, armv7l, riscv64, ppc64le, s390x", uname)}
	}
	return goos, goarch, nil
}

// unameOf is the inverse of platformOf, for the one-round-trip guess.
func unameOf(goos, goarch string) string {
	sys := map[string]string{"linux": "Linux", "darwin": "Darwin", "freebsd": "FreeBSD", "openbsd": "OpenBSD", "netbsd": "NetBSD"}[goos]
	mach := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm": "armv7l", "riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x"}[goarch]
	if goos == "darwin" && goarch == "arm64" {
		mach = "arm64"
	}
	return sys + " " + mach
}

// bufferedRWC reads through the bootstrap's buffered reader (which may already hold the
// worker's first bytes) and writes and closes the underlying stream.
type bufferedRWC struct {
	r   *bufio.Reader
	rwc io.ReadWriteCloser
}

func (b *bufferedRWC) Read(p []byte) (int, error)  { return b.r.Read(p) }
func (b *bufferedRWC) Write(p []byte) (int, error) { return b.rwc.Write(p) }
func (b *bufferedRWC) Close() error                { return b.rwc.Close() }
