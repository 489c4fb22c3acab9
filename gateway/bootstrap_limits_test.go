package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/internal/sshdtest"
	"github.com/godist/godist/xspec"
)

// The far side of a bootstrap is not trusted to be quick or quiet: each test here is a
// fault found by injecting it (issue 10), with an upper bound on how long the start may
// take to fail.

// startExecT starts spec (an exec= gateway) with a fresh cache and this test binary as the
// worker, and returns what Start said and how long it took. within bounds the start from
// outside: a start that needs it has hung.
func startExecT(t *testing.T, spec string, opts Options, within time.Duration) (*Gateway, time.Duration, error) {
	t.Helper()
	s, err := xspec.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if opts.Binaries == nil {
		opts.Binaries = testBinaries(t)
	}
	opts.Env = append(opts.Env, workerEnv+"=1")
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	start := time.Now()
	g, err := Start(ctx, "gw0", s, opts)
	took := time.Since(start)
	if g != nil {
		t.Cleanup(func() { g.Close() })
	}
	if ctx.Err() != nil {
		t.Fatalf("%s: Start still there after %v (hung): %v", spec, within, err)
	}
	return g, took, err
}

// script writes an executable sh script into a temporary directory and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shell")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// oneLine fails t unless err is a one-line error that says want.
func oneLine(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("started; want an error saying %q", want)
	}
	t.Logf("error: %v", err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not say %q", err, w)
		}
	}
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// A login shell's banner without a final newline ran into the shell's first answer, which
// was then never recognised: godist hung for ever. Long banners and ones with control
// characters do not stop the bootstrap either.
func TestBootstrapBannerWithoutNewline(t *testing.T) {
	motd := script(t, `i=0; while [ $i -lt 500 ]; do echo "message of the day, line $i"; i=$((i+1)); done; exec sh`)
	escapes := script(t, `printf '\033[1mWelcome\033[0m\r\n\r\nLast login: today\r'; exec sh`)
	for name, spec := range map[string]string{
		"no newline":       `exec=sh -c "printf Welcome; exec sh"`,
		"500 lines":        "exec=" + motd,
		"escapes, CR, CR?": "exec=" + escapes,
	} {
		t.Run(name, func(t *testing.T) {
			g, _, err := startExecT(t, spec, Options{}, 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if err := callFn(t, g, "echo", "past the banner", &got); err != nil || got != "past the banner" {
				t.Fatalf("echo: %q, %v", got, err)
			}
		})
	}
}

// A command that never answers (exec=sleep 1000, a shell whose banner is all it says)
// held the start, and with it the run, for ever: each answer must come within the
// bootstrap timeout, and the error quotes what the far side printed.
func TestBootstrapTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	opts := Options{BootstrapTimeout: timeout}
	cases := []struct {
		name, spec string
		want       []string
	}{
		{"silent", "exec=sleep 1000",
			[]string{`gateway gw0 (exec=sleep 1000): bootstrap: no answer from the shell within 500ms (it printed nothing)`}},
		{"banner only", `exec=sh -c "printf Welcome; exec sleep 1000"`,
			[]string{`gateway gw0 (exec=sh -c "printf Welcome; exec sleep 1000"): bootstrap: no answer from the shell within 500ms (it printed: "Welcome")`}},
		{"no SEND", "exec=" + script(t, `read l; printf '\nGODIST-BOOT1 NEED Linux x86_64\n'; exec sleep 1000`),
			[]string{"bootstrap: installing the worker: no answer from the shell within 500ms"}},
		{"binary not taken", "exec=" + script(t, `read l; printf '\nGODIST-BOOT1 NEED Linux x86_64\n'; read l; printf '\nGODIST-BOOT1 SEND\n'; exec sleep 1000`),
			[]string{"bootstrap: sending the worker binary: the shell took no more of it within 500ms (", " bytes sent)"}},
		{"no HAVE after the binary", "exec=" + script(t, `read l; printf '\nGODIST-BOOT1 NEED Linux x86_64\n'; read l; printf '\nGODIST-BOOT1 SEND\n'; exec cat >/dev/null`),
			[]string{"bootstrap: installing the worker: no answer from the shell within 500ms"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, took, err := startExecT(t, c.spec, opts, 20*time.Second)
			oneLine(t, err, c.want...)
			if !errors.Is(err, ErrBootstrapTimeout) {
				t.Errorf("error %q is not ErrBootstrapTimeout", err)
			}
			if took > 10*time.Second {
				t.Errorf("failed after %v; the timeout is %v", took, timeout)
			}
		})
	}
}

// The default timeout is bounded: nothing waits for ever by default.
func TestBootstrapDefaultTimeout(t *testing.T) {
	b := newBooter(nopRWC{}, &bootstrapConfig{})
	if b.timeout != DefaultBootstrapTimeout || DefaultBootstrapTimeout <= 0 || DefaultBootstrapTimeout > time.Minute {
		t.Errorf("default timeout %v (DefaultBootstrapTimeout %v)", b.timeout, DefaultBootstrapTimeout)
	}
}

type nopRWC struct{}

func (nopRWC) Read([]byte) (int, error)      { return 0, errors.New("nop") }
func (nopRWC) Write([]byte) (int, error)     { return 0, errors.New("nop") }
func (nopRWC) Close() error                  { return nil }
func (e *endless) Close() error              { return nil }
func (e *endless) Write([]byte) (int, error) { return 0, errors.New("read only") }

// endless is a far side that prints pattern for ever; it counts what was read of it.
type endless struct {
	pattern string
	n       int
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n > 16<<20 {
		return 0, errors.New("16 MiB read: the reader has no bound")
	}
	for i := range p {
		p[i] = e.pattern[(e.n+i)%len(e.pattern)]
	}
	e.n += len(p)
	return len(p), nil
}

// 300 MB of banner drove the master to 607 MB: it reads at most 64 KiB (and one buffer)
// before an answer, then fails with a one-line error quoting the start.
func TestBootstrapBannerBounded(t *testing.T) {
	for name, pattern := range map[string]string{
		"one endless line": "x",
		"endless lines":    "motd\n",
		"binary":           "\x00\xff\x1b[2J\r\n\xe2\x80",
	} {
		t.Run(name, func(t *testing.T) {
			far := &endless{pattern: pattern}
			b := newBooter(far, &bootstrapConfig{timeout: time.Minute})
			_, _, err := b.ask(context.Background(), "", "")
			oneLine(t, err, "bootstrap: the shell printed more than 64 KiB without answering (it printed: ")
			if far.n > maxBanner+8<<10 {
				t.Errorf("read %d bytes of banner, want at most %d", far.n, maxBanner+8<<10)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error of %d bytes: %.400q", len(err.Error()), err)
			}
		})
	}
	// And end to end, with a real shell behind 5 MB of banner.
	_, took, err := startExecT(t, "exec="+script(t, `head -c 5000000 /dev/zero | tr '\000' x; exec sh`), Options{}, 20*time.Second)
	oneLine(t, err, `bootstrap: the shell printed more than 64 KiB without answering (it printed: "xxxxxxxx`)
	if took > 10*time.Second {
		t.Errorf("failed after %v", took)
	}
}

// helloBytes is what a worker's channel session says first: its hello.
func helloBytes(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if s, err := channel.NewSession(context.Background(), a, false, channel.DefaultConfig()); err == nil {
			s.Close()
		}
	}()
	defer func() {
		a.Close()
		b.Close()
		<-done
	}()
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64<<10)
	n, err := b.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// After the bootstrap, the channel handshake and the worker's Info are bounded too: a far
// side that says HAVE and then nothing, garbage, or a hello and nothing more fails within
// the channel's HandshakeTimeout, saying so.
func TestHandshakeAfterBootstrapBounded(t *testing.T) {
	hello := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(hello, helloBytes(t), 0o644); err != nil {
		t.Fatal(err)
	}
	have := `read l; printf '\nGODIST-BOOT1 HAVE Linux x86_64\n'; `
	cases := []struct {
		name, body string
		want       []string
	}{
		{"no hello", have + "exec sleep 1000", []string{"channel: handshake failed: timed out after 300ms"}},
		{"garbage", have + `printf 'HTTP/1.0 400 Bad Request\r\n\r\n'; exec sleep 1000`, []string{`channel: handshake: peer did not send the protocol magic (got "HTTP/1.0 400")`}},
		{"hello, then nothing", have + "cat " + hello + "; exec sleep 1000", []string{"the worker said hello but sent no Info within 300ms"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := channel.DefaultConfig()
			cfg.HandshakeTimeout = 300 * time.Millisecond
			_, took, err := startExecT(t, "exec="+script(t, c.body), Options{Config: cfg, BootstrapTimeout: 5 * time.Second}, 20*time.Second)
			oneLine(t, err, append([]string{"gateway gw0 (exec="}, c.want...)...)
			if took > 5*time.Second {
				t.Errorf("failed after %v; the handshake timeout is 300ms", took)
			}
		})
	}
}

// The watchdog closes the stream once a step runs out of time, once.
func TestWatchdog(t *testing.T) {
	closed := make(chan struct{}, 2)
	w := newWatchdog(50*time.Millisecond, func() { closed <- struct{}{} })
	w.arm()
	if w.disarm() {
		t.Fatal("fired at once")
	}
	w.arm()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("not closed after its time ran out")
	}
	if !w.disarm() {
		t.Error("disarm does not say it fired")
	}
	w.arm() // a fired watchdog stays fired and closes nothing more
	if !w.disarm() {
		t.Error("re-armed after it fired")
	}
	if len(closed) != 0 {
		t.Error("closed twice")
	}
}

// readBootLine's answer past a banner that has no newline is found (the shell starts each
// answer on a line of its own).
func TestReadBootLineSkipsBanner(t *testing.T) {
	verb, rest, seen, err := readBootLine(bufio.NewReader(strings.NewReader("Welcome\nGODIST-BOOT1 HAVE Linux x86_64\r\n")), maxBanner)
	if err != nil || verb != "HAVE" || rest != "Linux x86_64" || string(seen) != "Welcome\n" {
		t.Errorf("got %q %q %q %v", verb, rest, seen, err)
	}
}

// The same over a real sshd, whose ForceCommand plays a chatty or silent login: a banner
// without a newline before the shell, a command that never answers, a banner and then
// silence. (The silent ones read their input to its end, so that they end with the
// session: sshd leaves a command that does not running after its session closed.)
func TestSSHBootstrapBannerAndTimeout(t *testing.T) {
	cases := []struct {
		name, force string
		want        string // the end of the error; "": the worker starts
	}{
		{"banner without newline", `ForceCommand printf 'Welcome to the host'; exec $SSH_ORIGINAL_COMMAND`, ""},
		{"silent", `ForceCommand exec cat >/dev/null`, "): bootstrap: no answer from the shell within 1s (it printed nothing)"},
		{"banner, then silence", `ForceCommand printf 'Welcome'; exec cat >/dev/null`, `): bootstrap: no answer from the shell within 1s (it printed: "Welcome")`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := sshdtest.Start(t, sshdtest.Options{Config: []string{c.force}})
			sshUse(t, s.Home)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			g, err := Start(ctx, "gw0", sshSpec(t, s.Alias), Options{Binaries: testBinaries(t), Env: []string{workerEnv + "=1"}, BootstrapTimeout: time.Second})
			if g != nil {
				defer g.Close()
			}
			if ctx.Err() != nil {
				t.Fatalf("Start still there after 30s (hung): %v", err)
			}
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				var got string
				if err := callFn(t, g, "echo", "past the banner", &got); err != nil || got != "past the banner" {
					t.Fatalf("echo: %q, %v", got, err)
				}
				return
			}
			oneLine(t, err, "gateway gw0 (ssh="+s.Alias+")")
			if !strings.HasSuffix(err.Error(), c.want) {
				t.Errorf("error %q\ndoes not end in %q", err, c.want)
			}
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("failed after %v; the timeout is 1s", took)
			}
		})
	}
}
