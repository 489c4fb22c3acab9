package chaos

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/godist/godist/internal/sshdtest"
)

// Config says what the harness runs and how.
type Config struct {
	Godist    string        // the godist binary under test (built CGO_ENABLED=0)
	Fixtures  string        // the fixtures module, whose FixturePackages the runs test
	Work      string        // a directory of the harness's own: module, markers, logs
	Keepalive time.Duration // godist's --keepalive in every run
	// RunBound is how long a run may take before it counts as hung and is killed
	// (0: 90 s).
	RunBound time.Duration
	// Packages are the package patterns each run tests (nil: ./...).
	Packages []string
	// Gateways picks the gateways of each run among Links (nil: all of them, two workers
	// each where a link serves several, as Setup lists them).
	Gateways []Link
}

// Link names a kind of gateway the harness provides, and so what a link fault hits.
type Link string

const (
	LinkLocal  Link = "local"  // 2*popen: one local worker process serving two gateways
	LinkSSH    Link = "ssh"    // 2*ssh= straight to the first sshd
	LinkProxy  Link = "proxy"  // 2*ssh= to the second sshd, through a Proxy
	LinkSocket Link = "socket" // socket= to a godist serve, through a Proxy
	LinkExec   Link = "exec"   // exec= running OpenSSH's ssh to the first sshd: a pipe link
	// LinkVia is popen via=hop, a worker started on the host of gateway "hop" (ssh= to
	// the second sshd, through its Proxy, counted as LinkProxy's), its bytes relayed by
	// the hop's worker.
	LinkVia Link = "via"
)

// Harness is the infrastructure the runs share: two sshds, a godist serve, the proxies in
// front of the second sshd and the serve, a HOME whose ~/.ssh reaches them all, the chaos
// module and go test's outcome of it. Close stops everything.
type Harness struct {
	cfg       Config
	Mod       string // the chaos module
	marks     string
	home      string
	sshd      [2]*sshdtest.Server
	stops     []func()
	sshProxy  *Proxy
	sockProxy *Proxy
	serve     *exec.Cmd
	serveDone chan struct{}
	ours      map[int]bool // processes started here that the harness waits for itself
	goEnv     []string

	Expected     map[string]string // go test's terminal action per test and package
	ExpectedExit int
	durations    string
}

// Setup starts the shared infrastructure and computes go test's outcome of the module.
// On error everything it started is stopped.
func Setup(ctx context.Context, cfg Config) (h *Harness, err error) {
	if cfg.RunBound == 0 {
		cfg.RunBound = 90 * time.Second
	}
	if cfg.Keepalive == 0 {
		cfg.Keepalive = 3 * time.Second
	}
	if len(cfg.Gateways) == 0 {
		cfg.Gateways = []Link{LinkLocal, LinkSSH, LinkProxy, LinkSocket, LinkExec, LinkVia}
	}
	h = &Harness{cfg: cfg, Mod: filepath.Join(cfg.Work, "mod"), marks: filepath.Join(cfg.Work, "marks"),
		home: filepath.Join(cfg.Work, "home"), ours: map[int]bool{},
		durations: filepath.Join(cfg.Work, "durations.json")}
	defer func() {
		if err != nil {
			h.Close()
			h = nil
		}
	}()
	if err := WriteModule(h.Mod, cfg.Fixtures, h.marks); err != nil {
		return h, err
	}
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.CommandContext(ctx, "go", "env", v).Output()
		if err != nil {
			return h, fmt.Errorf("go env %s: %v", v, err)
		}
		h.goEnv = append(h.goEnv, v+"="+strings.TrimSpace(string(out)))
	}
	if err := h.expect(ctx); err != nil {
		return h, err
	}
	if err := os.MkdirAll(filepath.Join(h.home, ".ssh"), 0o700); err != nil {
		return h, err
	}
	var config, known bytes.Buffer
	for i := range h.sshd {
		s, stop, err := sshdtest.StartProgram(sshdtest.Options{LogLevel: "ERROR"})
		if err != nil {
			return h, err
		}
		h.sshd[i], h.stops = s, append(h.stops, stop)
		h.ours[s.PID()] = true
		known.WriteString(s.KnownHostsLine() + "\n")
	}
	config.WriteString(h.sshd[0].ConfigEntry("h1"))
	if h.sshProxy, err = NewProxy(h.sshd[1].Addr); err != nil {
		return h, err
	}
	// h2 is the second sshd reached through the proxy: its port, the sshd's host key.
	proxyPort := h.sshProxy.Addr[strings.LastIndexByte(h.sshProxy.Addr, ':')+1:]
	config.WriteString(strings.Replace(h.sshd[1].ConfigEntry("h2"), fmt.Sprintf("Port %d", h.sshd[1].Port), "Port "+proxyPort, 1))
	known.WriteString("[127.0.0.1]:" + proxyPort + " " + h.sshd[1].HostKey + "\n")
	if err := h.startServe(ctx, &known); err != nil {
		return h, err
	}
	// Both ends of the proxied entries read this HOME's files.
	config.WriteString("Host *\n\tUserKnownHostsFile " + filepath.Join(h.home, ".ssh", "known_hosts") + "\n")
	cfgText := strings.ReplaceAll(config.String(), filepath.Join(h.sshd[0].Home, ".ssh", "known_hosts"), filepath.Join(h.home, ".ssh", "known_hosts"))
	cfgText = strings.ReplaceAll(cfgText, filepath.Join(h.sshd[1].Home, ".ssh", "known_hosts"), filepath.Join(h.home, ".ssh", "known_hosts"))
	if err := os.WriteFile(filepath.Join(h.home, ".ssh", "config"), []byte(cfgText), 0o600); err != nil {
		return h, err
	}
	if err := os.WriteFile(filepath.Join(h.home, ".ssh", "known_hosts"), known.Bytes(), 0o600); err != nil {
		return h, err
	}
	for _, l := range cfg.Gateways {
		if !slices.Contains([]Link{LinkLocal, LinkSSH, LinkProxy, LinkSocket, LinkExec, LinkVia}, l) {
			return h, fmt.Errorf("chaos: unknown link %q", l)
		}
	}
	return h, nil
}

// startServe starts a godist serve on a free port that lets in the first sshd's user key,
// and the proxy in front of it, whose address known gets the serve's host key for.
func (h *Harness) startServe(ctx context.Context, known *bytes.Buffer) error {
	dir := filepath.Join(h.cfg.Work, "serve")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// socket= authenticates with ~/.ssh/id_ed25519 of h.home: a key of its own.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "chaos")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.home, ".ssh", "id_ed25519"), pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	keys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(keys, ssh.MarshalAuthorizedKey(spub), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(h.cfg.Godist, "serve", "--listen", "127.0.0.1:0", "--host-key", filepath.Join(dir, "host_key"), "--authorized-keys", keys)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "HOME="+dir), h.goEnv...)
	// Its own process group and death with the harness, as sshd's (sshdtest).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	h.serve, h.serveDone = cmd, make(chan struct{})
	h.ours[cmd.Process.Pid] = true
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		cmd.Wait()
		close(h.serveDone)
	}()
	listening := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+) `)
	knownLine := regexp.MustCompile(`known_hosts line for clients: \S+ (.+)$`)
	var addr, key string
	deadline := time.After(30 * time.Second)
	for addr == "" || key == "" {
		select {
		case l := <-lines:
			if m := listening.FindStringSubmatch(l); m != nil {
				addr = m[1]
			}
			if m := knownLine.FindStringSubmatch(l); m != nil {
				key = m[1]
			}
		case <-h.serveDone:
			return errors.New("chaos: godist serve exited at start")
		case <-deadline:
			return errors.New("chaos: godist serve did not say where it listens within 30s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if h.sockProxy, err = NewProxy(addr); err != nil {
		return err
	}
	port := h.sockProxy.Addr[strings.LastIndexByte(h.sockProxy.Addr, ':')+1:]
	known.WriteString("[127.0.0.1]:" + port + " " + key + "\n")
	return nil
}

// expect runs go test -json once on the module: the outcome every run is held to.
func (h *Harness) expect(ctx context.Context) error {
	args := append([]string{"test", "-json", "-count=1"}, h.packages()...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = h.Mod
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		h.ExpectedExit = ee.ExitCode()
	case err != nil:
		return fmt.Errorf("go test: %v", err)
	}
	o := ParseOutcome(out)
	h.Expected = map[string]string{}
	for k, acts := range o.Actions {
		if len(acts) != 1 {
			return fmt.Errorf("go test: %s ends %v, not once: the suite is not deterministic", k, acts)
		}
		h.Expected[k] = acts[0]
	}
	if len(h.Expected) == 0 {
		return fmt.Errorf("go test reported nothing:\n%s", out)
	}
	return nil
}

func (h *Harness) packages() []string {
	if len(h.cfg.Packages) > 0 {
		return h.cfg.Packages
	}
	return []string{"./..."}
}

// gateways are the --tx specs of links, in order, and the gateway ids of each link.
func (h *Harness) gateways(links []Link) (specs []string, ids map[Link][]string) {
	ids = map[Link][]string{}
	n := 0
	add := func(l Link, count int, spec string) {
		specs = append(specs, spec)
		for range count {
			ids[l] = append(ids[l], fmt.Sprintf("gw%d", n))
			n++
		}
	}
	for _, l := range links {
		switch l {
		case LinkLocal:
			add(l, 2, "2*popen")
		case LinkSSH:
			add(l, 2, "2*ssh=h1")
		case LinkProxy:
			add(l, 2, "2*ssh=h2")
		case LinkSocket:
			add(l, 1, "socket="+h.sockProxy.Addr)
		case LinkExec:
			add(l, 1, "exec=ssh -F "+filepath.Join(h.home, ".ssh", "config")+" h1 sh")
		case LinkVia:
			// The hop is the second sshd's, behind its proxy: its id goes with that link.
			specs = append(specs, "ssh=h2//id=hop")
			ids[LinkProxy] = append(ids[LinkProxy], "hop")
			n++
			add(l, 1, "popen//via=hop")
		}
	}
	return specs, ids
}

// Close stops the serve, the proxies and the sshds, and removes nothing of Work.
func (h *Harness) Close() {
	if h.serve != nil && h.serve.Process != nil {
		h.serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.serveDone:
		case <-time.After(10 * time.Second):
			h.serve.Process.Kill()
			<-h.serveDone
		}
	}
	for _, p := range []*Proxy{h.sshProxy, h.sockProxy} {
		if p != nil {
			p.Close()
		}
	}
	for i := len(h.stops) - 1; i >= 0; i-- {
		h.stops[i]()
	}
	h.stops = nil
}

// lineLog is godist's stderr, each line with the time it came.
type lineLog struct {
	mu    sync.Mutex
	lines []timedLine
}

type timedLine struct {
	at   time.Time
	text string
}

func (l *lineLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, timedLine{time.Now(), s})
	l.mu.Unlock()
}

func (l *lineLog) snapshot() []timedLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]timedLine(nil), l.lines...)
}

// lostLine matches godist's notes that a gateway was lost (runner/drive.go, batch.go).
var lostLine = regexp.MustCompile(`\bgateway (\S+) lost\b|\b(\S+) was lost\b`)

// sortedKeys is m's keys in order, for stable reports.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// copyLines feeds r's lines to log and w.
func copyLines(r io.Reader, w io.Writer, log *lineLog) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		log.add(sc.Text())
		fmt.Fprintln(w, sc.Text())
	}
}
