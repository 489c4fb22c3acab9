package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

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
//
// The far side is not trusted to be quick or quiet. A login shell may print a banner, with
// or without a final newline, so each answer starts with a newline of its own and the
// master skips other lines, but no more than maxBanner bytes before an answer; and each
// step (an answer, each piece of the binary taken) must come within the bootstrap timeout
// (Options.BootstrapTimeout), or the stream is closed and the start fails.

// bootMagic starts every line the bootstrap scripts print.
const bootMagic = "GODIST-BOOT1"

// DefaultBootstrapTimeout is how long the bootstrap waits for each answer of the far side
// (and for it to take each piece of the worker binary) unless Options.BootstrapTimeout
// says otherwise.
const DefaultBootstrapTimeout = 30 * time.Second

// maxBanner is how many bytes of the far side's output the bootstrap reads while it waits
// for one answer, the answer's own line included: a shell that prints more is refused.
const maxBanner = 64 << 10

// maxQuoted is how much of what the far side printed an error quotes.
const maxQuoted = 64

// ErrBootstrapTimeout is the cause (BootstrapError.Err) of a bootstrap whose far side did
// not answer, or stopped taking the worker binary, within the bootstrap timeout.
var ErrBootstrapTimeout = errors.New("gateway: bootstrap timed out")

// bootstrapConfig says what the worker on the far side needs.
type bootstrapConfig struct {
	spec *xspec.Spec
	env  []string // NAME=VALUE for the worker, after the spec's env: keys
	// binaries finds the worker binary for a platform; nil = the process default.
	binaries *Binaries
	// timeout bounds each step of the far side; 0 = DefaultBootstrapTimeout.
	timeout time.Duration
}

// BootstrapError is a far side that did not come up as a worker.
type BootstrapError struct {
	Step string // what the bootstrap was doing, or "chdir DIR"; "" while waiting for the shell's first answer
	Msg  string // why it failed, one line
	Err  error  // the stream's error behind Msg, or ErrBootstrapTimeout, if any
}

// Error is one line: "bootstrap: STEP: MSG", or "bootstrap: MSG" without a step.
func (e *BootstrapError) Error() string {
	if e.Step == "" {
		return "bootstrap: " + e.Msg
	}
	return "bootstrap: " + e.Step + ": " + e.Msg
}
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
	return fmt.Sprintf(`if ! e=$(mkdir -p -- %s 2>&1) || ! e=$(cd -- %s 2>&1); then %s; exit 1; fi; cd -- %s || exit 1; `,
		q, q, say("NOCHDIR ${e#mkdir: }"), q)
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

// say is the shell that prints the answer "GODIST-BOOT1 WORDS" on a line of its own: after
// a newline, which ends whatever a banner left unfinished ("Welcome" without one). words
// may hold expansions ($p) but no double quote.
func say(words string) string {
	return fmt.Sprintf(`printf '\n%%s\n' "%s %s"`, bootMagic, words)
}

// bootstrap runs the bootstrap over rwc and returns the stream to the worker (which may
// hold bytes already read) and how many bytes of binary it shipped. Each step of the far
// side must come within cfg.timeout; ctx ends it at any time.
func bootstrap(ctx context.Context, rwc io.ReadWriteCloser, cfg *bootstrapConfig) (io.ReadWriteCloser, int64, error) {
	bins := cfg.binaries
	if bins == nil {
		bins = DefaultBinaries()
	}
	stop := context.AfterFunc(ctx, func() { rwc.Close() })
	defer stop()
	b := newBooter(rwc, cfg)
	defer b.wd.disarm()
	// Guess that the far side is this machine's platform: then a warm cache costs one
	// round trip.
	guess, err := bins.Host()
	if err != nil {
		return nil, 0, err
	}
	dir := `d="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/godist"`
	line1 := fmt.Sprintf(`%s; p=$(uname -sm 2>/dev/null); b="$d/godist-%s"; if [ "$p" = %s ] && [ -x "$b" ]; then %s%s; %s; fi; %s`+"\n",
		dir, guess.Hash, shellQuote(guess.Uname()), chdirLine(cfg), say("HAVE $p"), execLine(cfg), say("NEED $p"))
	verb, uname, err := b.ask(ctx, "", line1)
	if err != nil {
		return nil, 0, err
	}
	stream := &bufferedRWC{r: b.br, rwc: rwc}
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
	fail := func(why string) string { return "{ " + say("FAIL "+why) + "; exit 1; }" }
	line2 := fmt.Sprintf(`%s; b="$d/godist-%s"; t="$d/.godist-%s.$$"; mkdir -p "$d" && : > "$t" || %s; %s; head -c %d > "$t" || %s; `+
		`if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum "$t"); if [ "${s%%%% *}" != %s ]; then rm -f "$t"; %s; fi; fi; `+
		`chmod 755 "$t" && mv -f "$t" "$b" || { rm -f "$t"; %s; }; %s%s; %s`+"\n",
		dir, bin.Hash, bin.Hash, fail("cannot write $t"), say("SEND"), bin.Size, fail("cannot write $t"),
		bin.Hash, fail("checksum"), fail("cannot install $b"), chdirLine(cfg), say("HAVE $p"), execLine(cfg))
	// Only once the shell has read its whole line and runs head may the binary follow: a
	// shell may read ahead on a pipe (dash reads blocks of 8 KiB).
	if verb, _, err = b.ask(ctx, "installing the worker", line2); err != nil {
		return nil, 0, err
	} else if verb != "SEND" {
		return nil, 0, &BootstrapError{Step: "installing the worker", Msg: fmt.Sprintf("unexpected %q", verb)}
	}
	n, err := b.send(ctx, f, bin.Size)
	if err != nil {
		return nil, n, err
	}
	if verb, _, err = b.ask(ctx, "installing the worker", ""); err != nil {
		return nil, n, err
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

// booter is the master's side of one bootstrap: it writes to the far side and reads its
// answers, each step under the watchdog.
type booter struct {
	rwc     io.ReadWriteCloser
	br      *bufio.Reader
	cfg     *bootstrapConfig
	timeout time.Duration
	wd      *watchdog
}

func newBooter(rwc io.ReadWriteCloser, cfg *bootstrapConfig) *booter {
	timeout := cfg.timeout
	if timeout <= 0 {
		timeout = DefaultBootstrapTimeout
	}
	return &booter{rwc: rwc, br: bufio.NewReaderSize(rwc, 4096), cfg: cfg, timeout: timeout,
		wd: newWatchdog(timeout, func() { rwc.Close() })}
}

// ask writes line (if not "") and reads the far side's answer to it, within the timeout.
// step names the step in errors ("" for the first answer). FAIL and NOCHDIR answers are
// errors.
func (b *booter) ask(ctx context.Context, step, line string) (verb, rest string, err error) {
	b.wd.arm()
	var werr error
	if line != "" {
		_, werr = io.WriteString(b.rwc, line)
	}
	var seen []byte
	if werr == nil {
		verb, rest, seen, err = readBootLine(b.br, maxBanner)
	}
	timedOut := b.wd.disarm()
	waiting := step
	if waiting == "" {
		waiting = "waiting for the shell"
	}
	switch {
	case ctx.Err() != nil:
		return "", "", ctx.Err()
	case timedOut:
		return "", "", &BootstrapError{Step: step, Msg: fmt.Sprintf("no answer from the shell within %v (%s)", b.timeout, printed(seen)), Err: ErrBootstrapTimeout}
	case werr != nil:
		return "", "", writeError(werr)
	case errors.Is(err, errTooMuchOutput):
		return "", "", &BootstrapError{Step: step, Msg: fmt.Sprintf("the shell printed more than %d KiB without answering (%s)", maxBanner>>10, printed(seen))}
	case errors.Is(err, io.EOF):
		msg := "the stream ended (is there a POSIX sh at the other end?)"
		if len(seen) > 0 {
			msg = fmt.Sprintf("the stream ended (is there a POSIX sh at the other end? %s)", printed(seen))
		}
		return "", "", &BootstrapError{Step: waiting, Msg: msg, Err: err}
	case err != nil:
		return "", "", &BootstrapError{Step: waiting, Msg: errnoOf(err).Error(), Err: err}
	case verb == "FAIL":
		return "", "", &BootstrapError{Step: "installing the worker", Msg: printable(rest)}
	case verb == "NOCHDIR":
		step := "chdir"
		if b.cfg.spec != nil && b.cfg.spec.Chdir != "" {
			step += " " + b.cfg.spec.Chdir
		}
		return "", "", &BootstrapError{Step: step, Msg: printable(rest)}
	}
	return verb, rest, nil
}

// send writes the worker binary, size bytes from f, each piece of it within the timeout.
func (b *booter) send(ctx context.Context, f io.Reader, size int64) (int64, error) {
	const step = "sending the worker binary"
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, rerr := f.Read(buf)
		if m > 0 {
			b.wd.arm()
			w, werr := b.rwc.Write(buf[:m])
			n += int64(w)
			if b.wd.disarm() && ctx.Err() == nil {
				return n, &BootstrapError{Step: step, Msg: fmt.Sprintf("the shell took no more of it within %v (%d of %d bytes sent)", b.timeout, n, size), Err: ErrBootstrapTimeout}
			}
			if werr != nil {
				return n, ctxOr(ctx, &BootstrapError{Step: step, Msg: errnoOf(werr).Error(), Err: werr})
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, ctxOr(ctx, &BootstrapError{Step: step, Msg: errnoOf(rerr).Error(), Err: rerr})
		}
	}
}

// printed says what the far side printed besides its answers, quoted: "it printed nothing"
// or `it printed: "Welcome"`.
func printed(seen []byte) string {
	switch {
	case len(seen) == 0:
		return "it printed nothing"
	case len(seen) > maxQuoted:
		return fmt.Sprintf("it printed: %q...", seen[:maxQuoted])
	}
	return fmt.Sprintf("it printed: %q", seen)
}

// printable is a message of the far side as an error may say it: as it is, or quoted if
// it holds control characters (a carriage return, an escape sequence) or invalid UTF-8.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r >= 0x80 && !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// errTooMuchOutput is a far side that printed more than the limit without answering.
var errTooMuchOutput = errors.New("too much output before the answer")

// readBootLine reads lines until one starts with bootMagic (a login shell may print a
// banner first) and returns its verb and the rest, reading at most limit bytes, that line
// included (errTooMuchOutput). seen is the start of the other lines, up to maxQuoted+1
// bytes (empty lines left out), and on an error the unfinished line too.
func readBootLine(br *bufio.Reader, limit int) (verb, rest string, seen []byte, err error) {
	keep := func(b []byte) {
		if len(bytes.TrimRight(b, "\r\n")) == 0 {
			return
		}
		if room := maxQuoted + 1 - len(seen); room > 0 {
			seen = append(seen, b[:min(room, len(b))]...)
		}
	}
	var line []byte // bounded by limit plus one buffer
	n := 0
	for {
		frag, err := br.ReadSlice('\n')
		n += len(frag)
		line = append(line, frag...)
		if n > limit {
			keep(line)
			return "", "", seen, errTooMuchOutput
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			keep(line)
			return "", "", seen, err
		}
		if r, ok := strings.CutPrefix(strings.TrimRight(string(line), "\r\n"), bootMagic+" "); ok {
			verb, rest, _ = strings.Cut(r, " ")
			return verb, rest, seen, nil
		}
		keep(line)
		line = line[:0]
	}
}

// watchdog closes the stream when one step of the far side takes longer than d. Safe for
// concurrent use.
type watchdog struct {
	d     time.Duration
	close func()

	mu    sync.Mutex
	t     *time.Timer
	gen   int // of the current arm
	armed bool
	fired bool
}

func newWatchdog(d time.Duration, close func()) *watchdog { return &watchdog{d: d, close: close} }

// arm starts the clock of a step.
func (w *watchdog) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired {
		return
	}
	if w.t != nil {
		w.t.Stop()
	}
	w.gen++
	gen := w.gen
	w.armed = true
	w.t = time.AfterFunc(w.d, func() {
		w.mu.Lock()
		if w.fired || !w.armed || w.gen != gen {
			w.mu.Unlock()
			return
		}
		w.fired = true
		w.mu.Unlock()
		w.close()
	})
}

// disarm stops the clock and reports whether it ran out (then the stream was closed,
// now or at an earlier step).
func (w *watchdog) disarm() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if w.t != nil {
		w.t.Stop()
	}
	return w.fired
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

// explainBoot is explain for a failed bootstrap. After a timeout the master closed the
// stream itself, so how the link ended then says nothing; what the far side wrote to
// stderr may.
func (g *Gateway) explainBoot(err error) error {
	if !errors.Is(err, ErrBootstrapTimeout) {
		return g.explain(err)
	}
	if l := g.link.stderr.LastLine(); l != "" {
		return fmt.Errorf("%w; stderr: %s", err, l)
	}
	return err
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
