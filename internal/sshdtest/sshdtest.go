// Package sshdtest runs a real OpenSSH sshd on 127.0.0.1 for tests: temporary host and user
// keys, a random free port, and a temporary HOME whose ~/.ssh/config names the server by a
// Host alias, so that both OpenSSH's ssh and godist reach it the way users reach theirs.
//
// With Options.Chroot the sessions of a dedicated test user (TestUser) are chrooted into a
// directory that holds nothing but a static busybox, /tmp, /dev/null and a home directory:
// the "zero-install" host, with no libc and no Go, that godist promises to work with.
// Chroot needs root (sshd only chroots when it runs as root) and TestUser, which the tests
// do not create: `make deps` does (useradd, see the Makefile), as the README says.
//
// Every Server is stopped by t.Cleanup: sshd, every process it started (connection children,
// shells and whatever they ran) and every file it made are gone when the test ends.
package sshdtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/proc"
)

// TestUser is the account whose sessions a chrooted Server confines.
const TestUser = "godisttest"

// RequireEnv is the environment variable that turns a missing sshd into a test failure:
// CI sets it so that the ssh tests cannot silently skip.
const RequireEnv = "GODIST_REQUIRE_SSHD"

// ChrootBase is where chroot directories are made. ChrootDirectory demands that every
// component of the path is owned by root and writable by no one else, which rules out the
// usual temporary directories (/tmp is world-writable).
const ChrootBase = "/var/lib/godist-sshdtest"

// Output runs cmd and returns its standard output, failing t with its standard error if
// it fails.
func Output(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v\nstderr: %s", cmd.Args, err, stderr.Bytes())
	}
	return string(out)
}

// DefaultApplets are the busybox applets a chroot gets as /bin/NAME symlinks: a POSIX shell
// and the utilities a bootstrap script may reasonably expect on any host.
var DefaultApplets = []string{
	"sh", "[", "[[", "test", "echo", "printf", "true", "false",
	"uname", "id", "env", "pwd", "ls", "cat", "head", "tail", "wc", "tr", "cut", "od", "dd",
	"mkdir", "rmdir", "rm", "mv", "cp", "ln", "chmod", "touch", "mktemp",
	"sha256sum", "sleep", "kill", "ps", "grep", "sed", "base64", "gzip", "gunzip", "tar",
}

// Options say what kind of server to start.
type Options struct {
	// Chroot confines the sessions of TestUser to a directory holding only a static busybox
	// (see the package comment). The server then serves TestUser, not the current user.
	Chroot bool
	// MaxSessions is sshd's MaxSessions, the number of sessions one connection may have
	// open at once; 0 leaves sshd's default (10).
	MaxSessions int
	// User is the account to log in as; "" means the current user, or TestUser with Chroot.
	// Without Chroot it must be the current user unless the test runs as root.
	User string
	// Applets are the busybox applets linked into a chroot's /bin; nil means DefaultApplets.
	Applets []string
	// LogLevel is sshd's LogLevel ("" = VERBOSE). The log is shown when the test fails.
	LogLevel string
	// HostKeyTypes are the host key types sshd gets, as ssh-keygen -t takes them; nil means
	// ed25519 only. The first is the one in known_hosts, HostKey and HostKeyFingerprint; the
	// others the server has but nobody has recorded (to test host key algorithm choice).
	HostKeyTypes []string
	// Config lines are appended to sshd_config as they are (before the Match block).
	Config []string

	// ListenAddr is the address sshd listens on ("" = 127.0.0.1). With another address,
	// Port must be given: a free port can only be found on this namespace's loopback.
	ListenAddr string
	// Port is the port sshd listens on (0 = a free port of 127.0.0.1, found at start).
	Port int
	// Exec is a command that sshd runs under, as in `ip netns exec NS` (nil = none): the
	// server process is that command's, which must exec sshd (not fork it) so that the
	// server's pid is sshd's.
	Exec []string
	// Dial reaches ListenAddr:Port for the readiness check (nil = net.DialTimeout from this
	// process): a server in another network namespace needs a dialler there.
	Dial func(network, addr string, timeout time.Duration) (net.Conn, error)
	// Alias is the Host alias of the server in Home/.ssh/config ("" = sshdtest-PORT).
	Alias string
}

// Server is a running sshd.
type Server struct {
	Addr string // "127.0.0.1:PORT"
	Host string // "127.0.0.1"
	Port int

	// Alias is the Host alias for this server in Home/.ssh/config.
	Alias string
	// Home is a temporary HOME whose .ssh holds config, known_hosts (with this server's
	// host key), and id_ed25519 (the user key the server accepts).
	Home         string
	User         string // the account sessions log in as
	KnownHosts   string // Home/.ssh/known_hosts
	IdentityFile string // Home/.ssh/id_ed25519
	ConfigFile   string // Home/.ssh/config
	// HostKey is the host's public key in authorized_keys form ("ssh-ed25519 AAAA...");
	// HostKeyFingerprint is its SHA256 fingerprint as ssh-keygen -l prints it ("SHA256:...").
	HostKey            string
	HostKeyFingerprint string
	// AuthorizedKeys is the file sshd reads the user's keys from; add lines to it to let
	// further keys in.
	AuthorizedKeys string

	// Chroot is the chroot directory on this machine ("" without Options.Chroot).
	Chroot string
	// RemoteHome is the session's home directory as sessions see it (inside the chroot
	// with Options.Chroot). Without a chroot it is a temporary directory that sshd sets as
	// HOME for sessions, so remote caches stay out of the real home directory.
	RemoteHome string

	dir      string
	hostKeys []string // private host key files
	proc     *child.Process
	log      *syncBuffer
	done     chan struct{} // closed when sshd has exited
	once     sync.Once
}

// Available reports whether sshd and ssh-keygen can be found, and if not why.
func Available() (bool, string) {
	if _, err := sshdPath(); err != nil {
		return false, err.Error()
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		return false, "ssh-keygen not found in PATH"
	}
	return true, ""
}

// ChrootAvailable reports whether a chrooted server (Options.Chroot) can be started here,
// beyond Available: it needs root and TestUser; and if not why.
func ChrootAvailable() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "a chrooted sshd needs root"
	}
	if err := checkTestUser(); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// Require skips the test when sshd is not available, or fails it when RequireEnv is set.
func Require(t testing.TB) {
	t.Helper()
	if ok, why := Available(); !ok {
		unavailable(t, why)
	}
}

func unavailable(t testing.TB, why string) { Unavailable(t, "sshdtest", why) }

// Unavailable ends t for a tool this machine lacks: a failure when RequireEnv is set (as
// CI sets it), a skip otherwise. who names the helper, why says what is missing.
func Unavailable(t testing.TB, who, why string) {
	t.Helper()
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s: %s (and %s is set)", who, why, RequireEnv)
	}
	t.Skipf("%s: %s (set %s to make this a failure)", who, why, RequireEnv)
}

func sshdPath() (string, error) {
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	// sshd re-executes itself and insists on an absolute path; LookPath gives one when
	// PATH has only absolute entries.
	p, err := exec.LookPath("sshd")
	if err != nil {
		return "", errors.New("sshd not found (looked in /usr/sbin, /usr/local/sbin, /sbin and PATH)")
	}
	return filepath.Abs(p)
}

// Start starts an sshd as opts say and registers its teardown with t.Cleanup. It calls
// Require first, so it skips (or fails) when sshd is missing; a chroot server also needs
// root.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	if opts.Chroot {
		if ok, why := ChrootAvailable(); !ok {
			unavailable(t, why)
		}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("sshdtest: sshd log of %s:\n%s", s.Alias, s.Log())
		}
		s.Close()
	})
	return s
}

// New starts an sshd as opts say, for a caller that is not a test (a command that sets up
// hosts for a benchmark); tests use Start. The caller must call Close, which stops sshd and
// every process it started and removes every file New made. On error nothing is left.
func New(opts Options) (*Server, error) {
	if opts.Chroot {
		if err := checkTestUser(); err != nil {
			return nil, err
		}
	}
	s, err := start(opts)
	if err != nil {
		if s != nil {
			s.Close()
		}
		return nil, err
	}
	return s, nil
}

// Close stops sshd and every process it started (Stop) and removes the server's files and
// chroot. Idempotent.
func (s *Server) Close() {
	s.stop()
	os.RemoveAll(s.dir)
	if s.Chroot != "" {
		os.RemoveAll(s.Chroot)
	}
}

// start makes the server; on error, the caller closes the Server it returns, if any.
func start(opts Options) (*Server, error) {
	sshd, err := sshdPath()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// sshd refuses to start without its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, err
		}
	}
	host := opts.ListenAddr
	if host == "" {
		host = "127.0.0.1"
	} else if opts.Port == 0 {
		return nil, fmt.Errorf("ListenAddr %s needs a Port", host)
	}
	// Not t.TempDir: its directories are mode 0700, and sshd reads the authorized keys as
	// the logging-in user, who may not be the one running the test.
	dir, err := os.MkdirTemp("", "sshdtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, Host: host, log: &syncBuffer{}, done: make(chan struct{})}
	if err := os.Chmod(dir, 0o755); err != nil {
		return s, err
	}

	cur, err := user.Current()
	if err != nil {
		return s, err
	}
	s.User = opts.User
	if s.User == "" {
		s.User = cur.Username
		if opts.Chroot {
			s.User = TestUser
		}
	}

	u, err := user.Lookup(s.User)
	if err != nil {
		return s, err
	}

	// Keys.
	s.Home = filepath.Join(dir, "home")
	sshDir := filepath.Join(s.Home, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return s, err
	}
	types := opts.HostKeyTypes
	if len(types) == 0 {
		types = []string{"ed25519"}
	}
	s.IdentityFile = filepath.Join(sshDir, "id_ed25519")
	if err := keygen(s.IdentityFile, "ed25519", "sshdtest-user"); err != nil {
		return s, err
	}
	for _, typ := range types {
		k := filepath.Join(dir, "ssh_host_"+typ+"_key")
		if err := keygen(k, typ, "sshdtest-host"); err != nil {
			return s, err
		}
		s.hostKeys = append(s.hostKeys, k)
	}
	hostKey := s.hostKeys[0]
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return s, err
	}
	f := strings.Fields(string(pub))
	if len(f) < 2 {
		return s, fmt.Errorf("unexpected host key file %s: %q", hostKey+".pub", pub)
	}
	s.HostKey = f[0] + " " + f[1]
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", hostKey+".pub").Output()
	if err != nil {
		return s, fmt.Errorf("ssh-keygen -l: %v", err)
	}
	if f := strings.Fields(string(out)); len(f) >= 2 {
		s.HostKeyFingerprint = f[1]
	}
	userPub, err := os.ReadFile(s.IdentityFile + ".pub")
	if err != nil {
		return s, err
	}
	s.AuthorizedKeys = filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(s.AuthorizedKeys, userPub, 0o644); err != nil {
		return s, err
	}

	if opts.Chroot {
		if s.Chroot, err = makeChroot(u, opts.Applets); err != nil {
			return s, err
		}
		s.RemoteHome = u.HomeDir
	} else {
		s.RemoteHome = filepath.Join(dir, "remote-home")
		if err := os.Mkdir(s.RemoteHome, 0o755); err != nil {
			return s, err
		}
		if err := chownTo(s.RemoteHome, u); err != nil {
			return s, err
		}
	}

	// A free port can be taken by someone else before sshd binds it: try a few.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return s, err
			}
		} else if attempt > 0 {
			break // a given port is the only one to try
		}
		if err := s.run(sshd, port, opts); err != nil {
			lastErr = err
			continue
		}
		lastErr = nil
		break
	}
	if lastErr != nil {
		return s, lastErr
	}

	s.Alias = opts.Alias
	if s.Alias == "" {
		s.Alias = fmt.Sprintf("sshdtest-%d", s.Port)
	}
	s.KnownHosts = filepath.Join(sshDir, "known_hosts")
	if err := os.WriteFile(s.KnownHosts, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
		return s, err
	}
	s.ConfigFile = filepath.Join(sshDir, "config")
	if err := os.WriteFile(s.ConfigFile, []byte(s.ConfigEntry(s.Alias)), 0o600); err != nil {
		return s, err
	}
	return s, nil
}

// run writes sshd_config for port and starts sshd, returning once it accepts connections.
func (s *Server) run(sshd string, port int, opts Options) error {
	logLevel := opts.LogLevel
	if logLevel == "" {
		logLevel = "VERBOSE"
	}
	var c strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&c, format+"\n", args...) }
	w("Port %d", port)
	w("ListenAddress %s", s.Host)
	for _, k := range s.hostKeys {
		w("HostKey %s", k)
	}
	pidFile := filepath.Join(s.dir, "sshd.pid")
	os.Remove(pidFile)
	w("PidFile %s", pidFile)
	w("AuthorizedKeysFile %s", s.AuthorizedKeys)
	w("AllowUsers %s", s.User)
	w("UsePAM no")
	w("StrictModes no")
	w("PasswordAuthentication no")
	w("KbdInteractiveAuthentication no")
	w("PubkeyAuthentication yes")
	w("PermitRootLogin prohibit-password")
	w("UseDNS no")
	w("PrintMotd no")
	w("PrintLastLog no")
	w("LogLevel %s", logLevel)
	if opts.MaxSessions > 0 {
		w("MaxSessions %d", opts.MaxSessions)
	}
	if s.Chroot == "" {
		w("SetEnv HOME=%s XDG_CACHE_HOME=%s", s.RemoteHome, filepath.Join(s.RemoteHome, ".cache"))
	}
	for _, l := range opts.Config {
		w("%s", l)
	}
	if s.Chroot != "" {
		w("Match User %s", s.User)
		w("\tChrootDirectory %s", s.Chroot)
	}
	cfg := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(c.String()), 0o644); err != nil {
		return err
	}
	// Check the configuration first: its errors are clearer than a dead process.
	if out, err := exec.Command(sshd, "-t", "-f", cfg).CombinedOutput(); err != nil {
		return fmt.Errorf("sshd -t -f %s: %v: %s", cfg, err, bytes.TrimSpace(out))
	}

	s.log.Reset()
	argv := append(append([]string(nil), opts.Exec...), sshd, "-D", "-e", "-f", cfg)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// sshd dies with the test binary even if that is killed (on Linux); its own process
	// group keeps a terminal's Ctrl-C from reaching it out of order.
	p, err := child.Start(cmd)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		p.Wait(nil)
		close(done)
	}()
	addr := net.JoinHostPort(s.Host, strconv.Itoa(port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("sshd exited at start: %s", lastLines(s.log.String(), 3))
		default:
		}
		// sshd writes its pid file once it listens; the banner check then makes sure the
		// port is really its own (another process may have taken it first).
		if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(p.Pid()) && banner(opts.Dial, addr) {
			break
		}
		if time.Now().After(deadline) {
			p.Kill()
			<-done
			return fmt.Errorf("sshd did not accept connections on %s within 15s: %s", addr, lastLines(s.log.String(), 3))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.proc, s.done = p, done
	s.Port, s.Addr = port, addr
	return nil
}

func keygen(file, typ, comment string) error {
	out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-C", comment, "-f", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen -t %s: %v: %s", typ, err, bytes.TrimSpace(out))
	}
	return nil
}

// banner reports whether addr, reached with dial (nil = net.DialTimeout), answers with an
// SSH identification string.
func banner(dial func(network, addr string, timeout time.Duration) (net.Conn, error), addr string) bool {
	if dial == nil {
		dial = net.DialTimeout
	}
	c, err := dial("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// KnownHostsLine is this server's line for a known_hosts file (the host alone on port 22,
// as OpenSSH writes it, else [host]:port).
func (s *Server) KnownHostsLine() string {
	if s.Port == 22 {
		return s.Host + " " + s.HostKey
	}
	return fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, s.HostKey)
}

// ConfigEntry is a Host block of ssh_config that names this server alias, with absolute
// paths to this server's identity file and known_hosts, so it works in any config file.
func (s *Server) ConfigEntry(alias string) string {
	return fmt.Sprintf(`Host %s
	HostName %s
	Port %d
	User %s
	IdentityFile %s
	IdentitiesOnly yes
	UserKnownHostsFile %s
	StrictHostKeyChecking yes
	BatchMode yes
	LogLevel ERROR
`, alias, s.Host, s.Port, s.User, s.IdentityFile, filepath.Join(s.Home, ".ssh", "known_hosts"))
}

// SSH is an OpenSSH `ssh -F HOME/.ssh/config ALIAS args...` command reaching this server,
// with Env as its environment (so no ssh-agent of the caller takes part).
func (s *Server) SSH(args ...string) *exec.Cmd {
	cmd := exec.Command("ssh", append([]string{"-F", s.ConfigFile, s.Alias}, args...)...)
	cmd.Env = append(os.Environ(), s.Env()...)
	return cmd
}

// Env is what a child process needs in its environment (added after os.Environ()) to reach
// this server as Alias: HOME, and an empty SSH_AUTH_SOCK so that the caller's ssh-agent,
// which may hold many keys, plays no part.
func (s *Server) Env() []string {
	return []string{"HOME=" + s.Home, "SSH_AUTH_SOCK="}
}

// Log is what sshd has logged so far.
func (s *Server) Log() string { return s.log.String() }

// PID is sshd's process id.
func (s *Server) PID() int { return s.proc.Pid() }

// Children are the processes sshd has started and that are still running: one or two per
// connection and every process of their sessions (that has not left sshd's process tree).
func (s *Server) Children() []int {
	select {
	case <-s.done:
		return nil
	default:
	}
	return proc.Descendants(s.proc.Pid())
}

// Stop stops sshd and every process it started. Idempotent; t.Cleanup calls it.
func (s *Server) Stop() { s.stop() }

func (s *Server) stop() {
	s.once.Do(func() {
		if s.proc == nil {
			return
		}
		// Stop the listener first so that no new children appear, then kill what is left,
		// again and again while processes of sessions may still be forking. sshd, stopped,
		// reaps none of its children meanwhile.
		s.proc.Suspend()
		for i := 0; i < 50; i++ {
			kids := proc.Descendants(s.proc.Pid())
			if len(kids) == 0 {
				break
			}
			for _, pid := range kids {
				child.KillPid(pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
		s.proc.Kill()
		<-s.done
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}
