package chaos

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kind is a kind of fault.
type Kind string

const (
	KillWorker      Kind = "kill-worker"       // SIGKILL a worker process (local or remote)
	StopWorker      Kind = "stop-worker"       // SIGSTOP a worker process (its transport stays up)
	KillTest        Kind = "kill-test"         // SIGKILL a test process
	KillSession     Kind = "kill-sshd-session" // SIGKILL the sshd process of an ssh connection
	CutLink         Kind = "cut-link"          // close every connection of a Proxy
	FreezeLink      Kind = "freeze-link"       // a Proxy stops forwarding, closing nothing
	StopSession     Kind = "stop-sshd-session" // SIGSTOP the sshd processes of an ssh host's connections
	KillMaster      Kind = "kill-master"       // SIGKILL godist
	InterruptMaster Kind = "interrupt-master"  // SIGINT godist
)

// Kinds are every kind of fault.
var Kinds = []Kind{KillWorker, StopWorker, KillTest, KillSession, CutLink, FreezeLink, StopSession, KillMaster, InterruptMaster}

// linkFault says whether k cuts or freezes a link (whose detection is timed).
func (k Kind) linkFault() bool {
	return k == KillSession || k == CutLink || k == FreezeLink || k == StopSession
}

// Fault is one fault of a run: what, on which link (link faults; LinkSSH or LinkProxy for
// the sshd ones; LinkProxy or LinkSocket for cuts and freezes of a Proxy, LinkExec for
// those of exec='s ssh process: SIGKILL, SIGSTOP), and when: once AfterMarks
// tests have started (their marker files are there), or else Delay after godist started.
type Fault struct {
	Kind       Kind
	Link       Link
	AfterMarks int
	Delay      time.Duration
	// MarkFrom, if set, counts only the tests that started on gateways of that link (for
	// AfterMarks, and the test or worker a kill picks): a fault that must hit a gateway
	// while it holds work.
	MarkFrom Link
	// Test, if set, is the marked test (or subtest) whose process a kill or stop picks,
	// or whose worker or sshd session; AfterMarks then counts its markers only.
	Test string
}

func (f Fault) String() string {
	s := string(f.Kind)
	if f.Link != "" {
		s += "@" + string(f.Link)
	}
	if f.Test != "" {
		s += "(" + f.Test + ")"
	}
	if f.AfterMarks > 0 {
		from := ""
		if f.MarkFrom != "" {
			from = " on " + string(f.MarkFrom)
		}
		return fmt.Sprintf("%s after %d tests started%s", s, f.AfterMarks, from)
	}
	return fmt.Sprintf("%s at %v", s, f.Delay)
}

// ParseFault reads a fault as Fault.String abbreviates it: KIND[@LINK][(TEST)]+MARKS (once
// MARKS tests have started) or KIND[@LINK][(TEST)]=DELAY (DELAY after the start).
func ParseFault(v string) (Fault, error) {
	var f Fault
	spec, when, after := v, "", false
	if i := strings.IndexAny(v, "+="); i >= 0 {
		spec, when, after = v[:i], v[i+1:], v[i] == '+'
	}
	if i := strings.IndexByte(spec, '('); i >= 0 && strings.HasSuffix(spec, ")") {
		spec, f.Test = spec[:i], spec[i+1:len(spec)-1]
	}
	kind, link, _ := strings.Cut(spec, "@")
	f.Kind, f.Link = Kind(kind), Link(link)
	if !slices.Contains(Kinds, f.Kind) {
		return f, fmt.Errorf("unknown fault kind %q (expected one of %v)", kind, Kinds)
	}
	var err error
	switch {
	case when == "":
		return f, fmt.Errorf("fault %q: expected +MARKS or =DELAY after it", v)
	case after:
		_, err = fmt.Sscanf(when, "%d", &f.AfterMarks)
	default:
		f.Delay, err = time.ParseDuration(when)
	}
	if err != nil {
		return f, fmt.Errorf("fault %q: %v", v, err)
	}
	return f, nil
}

// Result is what one run found.
type Result struct {
	Lost, Doubled, Wrong, Hung, Orphans int
	// Crashes are the tests that failed as crashes of their own process, killed by a
	// fault (and reported so, with godist's crash note).
	Crashes int
	// Detect are the times from each link fault to godist's note that a gateway of the
	// link was lost (link faults whose gateways were lost).
	Detect []time.Duration
	// Problems say what went wrong, one line each; Notes what happened (faults injected,
	// and faults that found nothing to hit).
	Problems, Notes []string
	Exit            int
	Elapsed         time.Duration
	LogDir          string
	Aborted         bool // ctx ended: the run was cut short by the harness and checks nothing
}

// Bad says whether the run found anything wrong.
func (r *Result) Bad() bool { return len(r.Problems) > 0 }

func (r *Result) problem(count *int, format string, args ...any) {
	if count != nil {
		*count++
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// injected is a fault as it was applied.
type injected struct {
	Fault
	at      time.Time
	what    string   // what it hit
	missed  bool     // nothing to hit (the run was over, or no such process)
	killed  int      // the test process of KillTest
	stopped []int    // processes SIGSTOPped
	gws     []string // the gateways a stopped worker serves (when known)
	proxy   *Proxy   // frozen
}

// Run runs godist once on the module over Config.Gateways with faults injected, logs
// under dir, and checks the run.
func (h *Harness) Run(ctx context.Context, dir string, faults []Fault) *Result {
	return h.RunOn(ctx, dir, h.cfg.Gateways, faults)
}

// RunOn is Run over the gateways of links.
func (h *Harness) RunOn(ctx context.Context, dir string, links []Link, faults []Fault) *Result {
	res := &Result{LogDir: dir}
	specs, ids := h.gateways(links)
	os.RemoveAll(h.marks)
	os.MkdirAll(h.marks, 0o755)
	os.MkdirAll(dir, 0o755)
	jf := filepath.Join(dir, "run.json")
	args := []string{"--keepalive", h.cfg.Keepalive.String(), "--jsonfile", jf, "--durations", h.durations,
		"-count=1", "-timeout", "2m"}
	for _, s := range specs {
		args = append(args, "--tx", s)
	}
	args = append(args, h.packages()...)
	logf, err := os.Create(filepath.Join(dir, "godist.log"))
	if err != nil {
		res.problem(nil, "chaos: %v", err)
		return res
	}
	defer logf.Close()
	fmt.Fprintf(logf, "# godist %s\n# faults: %v\n", strings.Join(args, " "), faults)
	cmd := exec.Command(h.cfg.Godist, args...)
	cmd.Dir = h.Mod
	cmd.Env = append(append(os.Environ(), "HOME="+h.home, "SSH_AUTH_SOCK=", "NO_COLOR=1", "GODIST_CACHE_DIR=off"), h.goEnv...)
	// godist's notes go to stdout (stderr with -json): both are read, line by line.
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	var log lineLog
	var logMu sync.Mutex
	lw := writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logf.Write(p) })
	start := time.Now()
	if err := cmd.Start(); err != nil {
		res.problem(nil, "chaos: starting godist: %v", err)
		return res
	}
	master := cmd.Process.Pid
	var copiers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		copiers.Add(1)
		go func() { defer copiers.Done(); copyLines(r, lw, &log) }()
	}
	exited := make(chan struct{})
	go func() {
		copiers.Wait()
		cmd.Wait()
		close(exited)
	}()

	var injMu sync.Mutex
	var inj []*injected
	var wg sync.WaitGroup
	for _, f := range faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := h.inject(f, ids, master, start, exited)
			injMu.Lock()
			inj = append(inj, i)
			injMu.Unlock()
		}()
	}
	select {
	case <-exited:
	case <-time.After(h.cfg.RunBound):
		res.problem(&res.Hung, "hung: godist still running after %v; killed (its goroutines are in the log)", h.cfg.RunBound)
		cmd.Process.Signal(syscall.SIGQUIT) // the Go runtime prints every goroutine, then exits
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	case <-ctx.Done():
		cmd.Process.Kill()
		<-exited
	}
	if ctx.Err() != nil {
		// The harness itself was stopped: this run proves nothing either way.
		res.Aborted = true
		wg.Wait()
		h.endFreezes(inj)
		h.checkOrphans(res, master, lw)
		return res
	}
	res.Elapsed = time.Since(start)
	wg.Wait()
	res.Exit = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Exit = 128 + int(ws.Signal())
	}
	for _, i := range inj {
		line := fmt.Sprintf("fault %v: ", i.Fault)
		if i.missed {
			line += "missed (" + i.what + ")"
		} else {
			line += fmt.Sprintf("at +%.2fs, %s", i.at.Sub(start).Seconds(), i.what)
		}
		res.Notes = append(res.Notes, line)
		fmt.Fprintln(lw, "# "+line)
	}
	h.endFreezes(inj)
	h.checkOrphans(res, master, lw)
	data, err := os.ReadFile(jf)
	if err != nil && !h.masterFault(inj) {
		res.problem(&res.Lost, "no --jsonfile: %v", err)
	}
	h.check(res, ParseOutcome(data), inj)
	h.detection(res, ids, inj, log.snapshot())
	fmt.Fprintf(lw, "# exit %d after %.2fs; problems: %q\n", res.Exit, res.Elapsed.Seconds(), res.Problems)
	return res
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (h *Harness) masterFault(inj []*injected) bool {
	for _, i := range inj {
		if !i.missed && (i.Kind == KillMaster || i.Kind == InterruptMaster) {
			return true
		}
	}
	return false
}

// inject waits for f's moment and applies it, unless godist has exited first.
func (h *Harness) inject(f Fault, ids map[Link][]string, master int, start time.Time, exited <-chan struct{}) *injected {
	i := &injected{Fault: f}
	marks := func() []Mark {
		var out []Mark
		for _, m := range readMarks(h.marks) {
			if (f.MarkFrom == "" || slices.Contains(ids[f.MarkFrom], m.Worker)) && (f.Test == "" || m.Test == f.Test) {
				out = append(out, m)
			}
		}
		return out
	}
	var candidates []Mark
	if f.AfterMarks > 0 {
		for {
			candidates = marks()
			if len(candidates) >= f.AfterMarks {
				break
			}
			select {
			case <-exited:
				i.missed, i.what = true, fmt.Sprintf("the run ended after %d tests started", len(candidates))
				return i
			case <-time.After(10 * time.Millisecond):
			}
		}
	} else {
		select {
		case <-exited:
			i.missed, i.what = true, "the run ended first"
			return i
		case <-time.After(time.Until(start.Add(f.Delay))):
		}
	}
	select {
	case <-exited:
		i.missed, i.what = true, "the run ended first"
		return i
	default:
	}
	t := table()
	// The newest marks first: the tests most likely still running.
	latest := func(ok func(m Mark, p procInfo) bool) (Mark, procInfo, bool) {
		ms := marks()
		for j := len(ms) - 1; j >= 0; j-- {
			if p, live := t[ms[j].PID]; live && p.state != 'Z' && p.isTestProcess() && ok(ms[j], p) {
				return ms[j], p, true
			}
		}
		return Mark{}, procInfo{}, false
	}
	self := os.Getpid()
	mine := func(pid int) bool {
		for _, a := range ancestors(t, pid) {
			if a == self {
				return true
			}
		}
		return false
	}
	sshd := map[Link]int{LinkSSH: h.sshd[0].PID(), LinkProxy: h.sshd[1].PID()}
	i.at = time.Now()
	switch f.Kind {
	case KillMaster, InterruptMaster:
		sig := syscall.SIGKILL
		if f.Kind == InterruptMaster {
			sig = syscall.SIGINT
		}
		kill(master, sig)
		i.what = fmt.Sprintf("%v to godist %d", sig, master)
	case KillTest:
		m, p, ok := latest(func(Mark, procInfo) bool { return true })
		if !ok || !mine(p.pid) {
			i.missed, i.what = true, "no marked test process running"
			return i
		}
		kill(p.pid, syscall.SIGKILL)
		i.killed = p.pid
		i.what = fmt.Sprintf("killed test process %d (%s %s on %s)", p.pid, m.Package, m.Test, m.Worker)
	case KillWorker, StopWorker:
		var w procInfo
		if m, p, ok := latest(func(_ Mark, p procInfo) bool { return t[p.ppid].isWorker() }); ok {
			w = t[p.ppid]
			i.gws = []string{m.Worker}
			if slices.Contains(ids[LinkLocal], m.Worker) {
				i.gws = ids[LinkLocal] // one worker process serves them all
			}
		} else if f.Test == "" && f.MarkFrom == "" {
			for _, q := range below(t, self) {
				if q.isWorker() && q.state != 'Z' {
					w = q
					break
				}
			}
		}
		if w.pid == 0 || !mine(w.pid) {
			i.missed, i.what = true, "no worker running"
			return i
		}
		of := ""
		if len(i.gws) > 0 {
			of = " of " + strings.Join(i.gws, ",")
		}
		if f.Kind == StopWorker {
			kill(w.pid, syscall.SIGSTOP)
			i.stopped = append(i.stopped, w.pid)
			i.what = "stopped worker" + of + " " + w.String()
			break
		}
		kill(w.pid, syscall.SIGKILL)
		i.what = "killed worker" + of + " " + w.String()
	case KillSession, StopSession:
		root := sshd[f.Link]
		var conns []procInfo // the sshd processes right under the listener
		for _, p := range t {
			if p.ppid == root && p.state != 'Z' {
				conns = append(conns, p)
			}
		}
		if len(conns) == 0 {
			i.missed, i.what = true, "no ssh connection to "+string(f.Link)
			return i
		}
		if f.Kind == KillSession {
			// The connection of a worker whose test runs, if one does; else any.
			c := conns[0]
			if _, p, ok := latest(func(_ Mark, p procInfo) bool { return slices.Contains(ancestors(t, p.pid), root) }); ok {
				for _, a := range ancestors(t, p.pid) {
					if t[a].ppid == root {
						c = t[a]
					}
				}
			}
			kill(c.pid, syscall.SIGKILL)
			i.what = "killed sshd session " + c.String()
			break
		}
		// Stop every process of the connections that is not a worker or below one: the
		// sshd processes (and the shells between them and the workers).
		var names []string
		for _, p := range below(t, root) {
			inWorker := p.isWorker()
			for _, a := range ancestors(t, p.pid) {
				if t[a].isWorker() {
					inWorker = true
				}
			}
			if !inWorker && p.state != 'Z' {
				kill(p.pid, syscall.SIGSTOP)
				i.stopped = append(i.stopped, p.pid)
				names = append(names, fmt.Sprint(p.pid))
			}
		}
		i.what = "stopped sshd session processes " + strings.Join(names, ",")
	case CutLink, FreezeLink:
		if f.Link == LinkExec {
			var relay procInfo
			for _, p := range below(t, master) {
				if len(p.args) > 0 && p.args[0] == "ssh" && p.state != 'Z' {
					relay = p
				}
			}
			if relay.pid == 0 {
				i.missed, i.what = true, "no ssh process of exec= running"
				return i
			}
			if f.Kind == CutLink {
				kill(relay.pid, syscall.SIGKILL)
				i.what = "killed exec='s " + relay.String()
			} else {
				kill(relay.pid, syscall.SIGSTOP)
				i.stopped = append(i.stopped, relay.pid)
				i.what = "stopped exec='s " + relay.String()
			}
			break
		}
		p := h.sshProxy
		if f.Link == LinkSocket {
			p = h.sockProxy
		}
		if f.Kind == CutLink {
			i.what = fmt.Sprintf("cut %d connection ends of the %s proxy", p.Conns(), f.Link)
			p.Cut()
		} else {
			i.what = fmt.Sprintf("froze %d connection ends of the %s proxy", p.Conns(), f.Link)
			p.Freeze()
			i.proxy = p
		}
	}
	return i
}

// endFreezes ends the freezes of a finished run: stopped processes continue, frozen
// proxies drop their connections (the link comes back as a new one would).
func (h *Harness) endFreezes(inj []*injected) {
	for _, i := range inj {
		for _, pid := range i.stopped {
			kill(pid, syscall.SIGCONT)
		}
		if i.proxy != nil {
			i.proxy.Cut()
		}
	}
}

// checkOrphans waits, within a bound, until nothing the run started is left: no process
// below the harness but its own servers, none below the sshds and the serve. Orphans
// that end in time are reaped; what is left then is counted, said, and killed.
func (h *Harness) checkOrphans(res *Result, master int, w fmtWriter) {
	bound := 2*h.cfg.Keepalive + 10*time.Second
	self := os.Getpid()
	leftovers := func() []procInfo {
		reapOrphans(h.ours)
		var out []procInfo
		for _, p := range below(table(), self) {
			if h.ours[p.pid] || p.state == 'Z' && p.ppid != self {
				continue
			}
			out = append(out, p)
		}
		return out
	}
	began := time.Now()
	deadline := began.Add(bound)
	var left, first []procInfo
	for {
		left = leftovers()
		if first == nil {
			first = left
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(first) > 0 {
		var names []string
		for _, p := range first {
			names = append(names, p.String())
		}
		fmt.Fprintf(w, "# %d process(es) still there when godist exited, gone after %.2fs: %s\n", len(first), time.Since(began).Seconds(), strings.Join(names, "; "))
	}
	if len(left) == 0 {
		return
	}
	var names []string
	for _, p := range left {
		names = append(names, p.String())
	}
	res.Orphans += len(left)
	res.problem(nil, "orphans: %d process(es) left %v after godist exited: %s", len(left), bound, strings.Join(names, "; "))
	for _, p := range left {
		kill(p.pid, syscall.SIGCONT)
		kill(p.pid, syscall.SIGKILL)
	}
	deadline = time.Now().Add(10 * time.Second)
	for len(leftovers()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

type fmtWriter interface{ Write([]byte) (int, error) }

// check holds the run's outcome to go test's.
func (h *Harness) check(res *Result, got Outcome, inj []*injected) {
	masterGone := h.masterFault(inj)
	// The tests whose process a fault killed (and so their package) may fail, as
	// crashes of that test.
	crashed := map[string]bool{}
	for _, i := range inj {
		if i.Kind != KillTest || i.missed {
			continue
		}
		for _, m := range readMarks(h.marks) {
			if m.PID == i.killed {
				crashed[parentOf(key(m.Package, m.Test))] = true // the top-level test crashes
				crashed[m.Package] = true
			}
		}
	}
	for _, k := range sortedKeys(h.Expected) {
		want, acts := h.Expected[k], got.Actions[k]
		if len(acts) > 1 {
			res.problem(&res.Doubled, "doubled: %s ends %v (on %v)", k, acts, got.Workers[k])
			continue
		}
		if masterGone {
			if len(acts) == 1 && (acts[0] == "pass" || acts[0] == "skip") && acts[0] != want {
				res.problem(&res.Wrong, "wrong: %s is %s after the master was stopped; go test says %s", k, acts[0], want)
			}
			continue
		}
		excused := crashed[k]
		sub := parentOf(k) != k && crashed[parentOf(k)] // a subtest of a crashed test
		switch {
		case len(acts) == 0 && sub:
			// A subtest of a crashed test need not have run.
		case len(acts) == 0:
			res.problem(&res.Lost, "lost: %s has no result (go test: %s)", k, want)
		case acts[0] == want:
		case acts[0] == "fail" && sub:
		case acts[0] == "fail" && excused:
			if !strings.Contains(k, " ") {
				break // its package
			}
			if !strings.Contains(got.Output[k], crashNote) {
				res.problem(&res.Wrong, "wrong: %s, whose process was killed, failed without the crash note %q", k, crashNote)
			}
			res.Crashes++
		default:
			res.problem(&res.Wrong, "wrong: %s is %s on %v; go test says %s", k, acts[0], got.Workers[k], want)
		}
	}
	for _, k := range sortedKeys(got.Actions) {
		if _, ok := h.Expected[k]; !ok {
			res.problem(&res.Wrong, "wrong: %s ends %v, and go test does not run it", k, got.Actions[k])
		}
	}
	switch {
	case masterGone && res.Exit == 0:
		res.problem(&res.Wrong, "wrong: exit status 0 after the master was stopped")
	case !masterGone && res.Exit != h.ExpectedExit && res.Hung == 0:
		res.problem(&res.Wrong, "wrong: exit status %d; go test's is %d", res.Exit, h.ExpectedExit)
	}
}

// detection times each link fault and stopped worker: from its injection to godist's
// first note, after it, that a gateway of its link (or the worker's) was lost.
func (h *Harness) detection(res *Result, gws map[Link][]string, inj []*injected, lines []timedLine) {
	for _, i := range inj {
		if !i.Kind.linkFault() && !(i.Kind == StopWorker && len(i.gws) > 0) || i.missed {
			continue
		}
		ids := map[string]bool{}
		for _, id := range append(gws[i.Link], i.gws...) {
			ids[id] = true
		}
		for _, l := range lines {
			if l.at.Before(i.at) {
				continue
			}
			m := lostLine.FindStringSubmatch(l.text)
			if m == nil || !ids[m[1]] && !ids[m[2]] {
				continue
			}
			d := l.at.Sub(i.at)
			res.Detect = append(res.Detect, d)
			if d > h.cfg.Keepalive+2*time.Second {
				res.problem(nil, "slow detection: %v found after %v (bound %v): %s", i.Fault, d.Round(time.Millisecond), h.cfg.Keepalive, l.text)
			}
			break
		}
	}
}
