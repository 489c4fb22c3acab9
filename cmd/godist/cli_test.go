package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/runner"
	"github.com/godist/godist/scheduler"
)

// Bad input gets one line on stderr saying what was wrong and what is accepted, exit
// status 2, and no stack trace; unless a case needs go list to find out (needsGo), it is
// found before anything is built: the go command on PATH is a fake that leaves a mark.
func TestBadInputIsOneLineAndStatus2(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	fakeBin := t.TempDir()
	mark := filepath.Join(t.TempDir(), "go-ran")
	if err := os.WriteFile(filepath.Join(fakeBin, "go"), []byte("#!/bin/sh\necho \"$@\" >> "+mark+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	badDurations := filepath.Join(t.TempDir(), "durations.json")
	if err := os.WriteFile(badDurations, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirDurations := t.TempDir()
	cases := []struct {
		args    []string
		want    string // in the error line
		needsGo bool   // found by go list, after the command line is taken
	}{
		{args: []string{"--bogus", "./pass"}, want: "unknown flag --bogus: not a godist or go test flag (pass flags for the test binaries after --)"},
		{args: []string{"-bogus", "./pass"}, want: "unknown flag -bogus: not a godist or go test flag (pass flags for the test binaries after --)"},
		{args: []string{"-nosuch", "./pass"}, want: "unknown flag -nosuch: not a godist or go test flag"},
		{args: []string{"./pass", "-nosuch=1"}, want: "unknown flag -nosuch:"},
		{args: []string{"-n4", "./pass"}, want: "unknown flag -n4: write -n 4 or -n=4"},
		{args: []string{"-vx", "./pass"}, want: "unknown flag -vx: write -v -x"},
		{args: []string{"---run", "X", "./pass"}, want: "bad flag syntax: ---run"},
		{args: []string{"-run"}, want: "flag needs a value: -run"},
		{args: []string{"-v=maybe", "./pass"}, want: `-v "maybe": expected true or false`},
		{args: []string{"-benchmem=2", "./pass"}, want: `-benchmem "2": expected true or false`},
		{args: []string{"--dist", "weird", "./pass"}, want: `--dist "weird": unknown mode (accepted: load, loadpkg, each)`},
		{args: []string{"--tx", "popen//foo=1", "./pass"}, want: `unknown key "foo" (accepted:`},
		{args: []string{"--tx", "0*popen", "./pass"}, want: `"0*popen"`},
		{args: []string{"--tx", "warp=x", "./pass"}, want: `"warp=x"`},
		{args: []string{"--tx", "ssh=", "./pass"}, want: `"ssh="`},
		{args: []string{"-n", "0", "./pass"}, want: "expected a number of workers from 1 to 1024, or auto"},
		{args: []string{"-n", "many", "./pass"}, want: "expected a number of workers"},
		{args: []string{"./shared/..."}, want: `package pattern "./shared/...": matched no packages`, needsGo: true},
		{args: []string{"example.com/none/..."}, want: "matched no packages", needsGo: true},
		{args: []string{"./nonexist"}, want: `package pattern "./nonexist"`, needsGo: true},
		{args: []string{"-timeout", "soon", "./pass"}, want: `-timeout "soon": expected a duration such as 30s or 10m`},
		{args: []string{"-timeout=-1s", "./pass"}, want: `-timeout "-1s": expected a duration`},
		{args: []string{"-count", "-2", "./pass"}, want: `-count "-2": expected a count of 1 or more`},
		{args: []string{"-count", "0", "./pass"}, want: `-count "0": expected a count of 1 or more (go test -count 0 runs only the examples)`},
		{args: []string{"-count=x", "./pass"}, want: `-count "x": expected a count of 1 or more`},
		{args: []string{"-parallel", "0", "./pass"}, want: `-parallel "0": expected a number of parallel tests of 1 or more`},
		{args: []string{"-parallel", "four", "./pass"}, want: `-parallel "four": expected a number of parallel tests`},
		{args: []string{"-cpu", "1,0", "./pass"}, want: `-cpu "1,0": expected a comma-separated list of GOMAXPROCS values of 1 or more`},
		{args: []string{"-cpu", "a", "./pass"}, want: `-cpu "a": expected`},
		{args: []string{"-benchtime", "0x", "./pass"}, want: `-benchtime "0x": expected a duration such as 1s, or Nx`},
		{args: []string{"-benchtime", "soon", "./pass"}, want: `-benchtime "soon": expected`},
		{args: []string{"-shuffle", "12abc", "./pass"}, want: `-shuffle "12abc": expected off, on, or an integer seed`},
		{args: []string{"-covermode", "some", "./pass"}, want: `-covermode "some": expected set, count or atomic`},
		{args: []string{"-race", "-covermode", "set", "./pass"}, want: "-covermode set: -race needs -covermode atomic"},
		{args: []string{"-vet", "bogus", "./pass"}, want: `-vet "bogus": expected off, all, or a comma-separated list of vet analyzers`},
		{args: []string{"-vet", "printf,,atomic", "./pass"}, want: `-vet "printf,,atomic": expected`},
		{args: []string{"-vet", "off,printf", "./pass"}, want: `-vet "off,printf": expected off alone`},
		{args: []string{"-mod", "vendored", "./pass"}, want: `-mod "vendored": expected a module download mode: readonly, vendor, mod`},
		{args: []string{"-compiler", "tcc", "./pass"}, want: `-compiler "tcc": expected a compiler: gc, gccgo`},
		{args: []string{"-buildvcs=sometimes", "./pass"}, want: `-buildvcs "sometimes": expected true, false or auto`},
		{args: []string{"-memprofilerate", "often", "./pass"}, want: `-memprofilerate "often": expected an integer`},
		{args: []string{"-C", "/nonexistent/dir", "./pass"}, want: "-C /nonexistent/dir: no such file or directory"},
		{args: []string{"-C", file, "./pass"}, want: "-C " + file + ": not a directory"},
		{args: []string{"-outputdir", "/nonexistent/dir", "-artifacts", "./pass"}, want: "-outputdir /nonexistent/dir: no such file or directory"},
		{args: []string{"-coverprofile", "/nonexistent/dir/c.out", "./pass"}, want: "-coverprofile: open /nonexistent/dir/c.out"},
		{args: []string{"-cpuprofile", "cpu.out", "./pass"}, want: "-cpuprofile is not supported (a package's tests run in several processes); pass -test.cpuprofile=FILE after --"},
		{args: []string{"-test.memprofile=m.out", "./pass"}, want: "-memprofile is not supported"},
		{args: []string{"-blockprofile", "b.out", "./pass"}, want: "-blockprofile is not supported"},
		{args: []string{"-mutexprofile", "m.out", "./pass"}, want: "-mutexprofile is not supported"},
		{args: []string{"-trace", "t.out", "./pass"}, want: "-trace is not supported"},
		{args: []string{"-fuzz", "FuzzX", "./fuzz"}, want: "-fuzz: run fuzzing with go test -fuzz (godist runs fuzz seeds as tests)"},
		{args: []string{"-fuzztime", "10s", "./fuzz"}, want: "-fuzztime: run fuzzing with go test -fuzz"},
		{args: []string{"-c", "./pass"}, want: "-c: godist builds test binaries to run them; use go test -c"},
		{args: []string{"-o", "x.test", "./pass"}, want: "-o: godist builds test binaries to run them"},
		{args: []string{"-exec", "echo", "./pass"}, want: "-exec: godist runs the test binaries on its gateways"},
		{args: []string{"-work", "./pass"}, want: "-work: godist builds in its own temporary directory"},
		{args: []string{"-p", "1", "./pass"}, want: "-p: godist runs one test process per worker; use -n N"},
		{args: []string{"-json", "--format", "dots", "./pass"}, want: "-json and --format dots: -json writes only the JSON stream to stdout"},
		{args: []string{"--junitfile", "/nonexistent/dir/j.xml", "./pass"}, want: "--junitfile: open /nonexistent/dir/j.xml"},
		{args: []string{"--jsonfile", "/nonexistent/dir/j.json", "./pass"}, want: "--jsonfile: open /nonexistent/dir/j.json"},
		{args: []string{"--timeline", "/nonexistent/dir/t.html", "./pass"}, want: "--timeline: open /nonexistent/dir/t.html"},
		{args: []string{"--timeline", ".", "./pass"}, want: "--timeline: open .: is a directory"},
		{args: []string{"--shard", "0/3", "./pass"}, want: `--shard "0/3": expected I/N, whole numbers with 1 <= I <= N`},
		{args: []string{"--shard", "x", "./pass"}, want: `--shard "x": expected I/N`},
		{args: []string{"--shard", "1/99999999999999999999", "./pass"}, want: `--shard "1/99999999999999999999": expected I/N`},
		{args: []string{"--maxfail", "-1", "./pass"}, want: "expected a number of failures of 1 or more"},
		{args: []string{"-x", "--maxfail", "3", "./pass"}, want: "-x is --maxfail 1"},
		{args: []string{"--rerun-fails", "-2", "./pass"}, want: "expected a number of re-runs from 0 to 100"},
		{args: []string{"--tx", "popen//via=nope", "./pass"}, want: `via="nope" names no gateway`},
		{args: []string{"ping"}, want: "give at least one --tx SPEC"},
		{args: []string{"rsync", "--tx", "popen"}, want: "want SRCDIR and DESTDIR"},
		{args: []string{"rsync", "--tx", "popen", ".", "../.."}, want: "climbs out of the gateway's working directory"},
		// This gateway cannot start, so a broken check could not write to / either.
		{args: []string{"rsync", "--tx", "exec=exit 7", ".", "/"}, want: "is /"},
		{args: []string{"--dist", "loadpkg", "-run", "X", "--shard", "1/0", "./pass"}, want: `--shard "1/0": expected I/N`},
		{args: []string{"--maxfail", "x", "./pass"}, want: `--maxfail "x": expected a number of failures`},
		{args: []string{"--slowest", "x", "./pass"}, want: `--slowest "x": expected a number of tests of 0 or more`},
		{args: []string{"--slowest", "-1", "./pass"}, want: `--slowest "-1": expected a number of tests of 0 or more`},
		{args: []string{"--rerun-fails", "1x", "./pass"}, want: `--rerun-fails "1x": expected a number of re-runs from 0 to 100`},
		{args: []string{"--rerun-fails=101", "./pass"}, want: `--rerun-fails "101": expected a number of re-runs from 0 to 100`},
		{args: []string{"-n", "99999999999999999999", "./pass"}, want: `-n "99999999999999999999": expected a number of workers from 1 to 1024, or auto`},
		{args: []string{"--tx", "popen//nice=abc", "./pass"}, want: `--tx "popen//nice=abc": nice "abc" is not an integer (expected -20..19)`},
		{args: []string{"--tx", "99999999999999999999*popen", "./pass"}, want: `--tx "99999999999999999999*popen": count 99999999999999999999 is too large (expected 1..1024)`},
		{args: []string{"--tx", "ssh=host:abc", "./pass"}, want: `--tx "ssh=host:abc": bad port "abc" (expected 1..65535)`},
		{args: []string{"--tx", "popen//goarch=vax", "./pass"}, want: `--tx "popen//goarch=vax": unknown goarch "vax" (expected one of`},
		{args: []string{"--tx", "popen//id=a", "--tx", "popen//id=a", "./pass"}, want: `duplicate gateway id "a"`},
		{args: []string{"--format", "fancy", "./pass"}, want: `--format "fancy": unknown format (accepted: `},
		{args: []string{"--cache-max", "5Q", "./pass"}, want: "--cache-max 5Q: expected a size in bytes, such as 500M, 2G or 0"},
		{args: []string{"--keepalive", "500ms", "./pass"}, want: "--keepalive 500ms: expected a duration of at least 1s, such as 3s or 15s (the default)"},
		{args: []string{"--keepalive", "soon", "./pass"}, want: "--keepalive soon: expected a duration of at least 1s"},
		{args: []string{"--durations", badDurations, "./pass"}, want: "durations file " + badDurations + ": ", needsGo: true},
		{args: []string{"--durations", dirDurations, "./pass"}, want: "durations file " + dirDurations + ": is a directory (expected a file of godist's JSON durations format)", needsGo: true},
		{args: []string{"ping", "--json=maybe", "--tx", "popen"}, want: `--json "maybe": expected true or false`},
		{args: []string{"ping", "--tx", "popen//x=1"}, want: `--tx "popen//x=1": unknown key "x"`},
		{args: []string{"rsync", "--delete=3", "--tx", "popen", ".", "d"}, want: `--delete "3": expected true or false`},
		{args: []string{"serve", "--listen", "nope"}, want: `serve --listen: listen address "nope": bad port "nope"`},
		{args: []string{"--post-run-command", "", "./pass"}, want: `--post-run-command "": no command (expected a command and its arguments, quoted as sh quotes them)`},
		{args: []string{"--post-run-command", "  # just a comment", "./pass"}, want: `no command (expected a command and its arguments`},
		{args: []string{"--post-run-command", "notify 'unclosed", "./pass"}, want: "--post-run-command \"notify 'unclosed\": reached EOF without closing quote `'` at column 8 (expected a command and its arguments, quoted as sh quotes them)"},
		{args: []string{"--post-run-command", `notify "unclosed`, "./pass"}, want: "reached EOF without closing quote `\"`"},
		{args: []string{"--post-run-command", "notify | tee log", "./pass"}, want: "a shell would be needed for this: run it with sh -c '...'"},
		{args: []string{"--post-run-command", "notify $TESTS_FAILED", "./pass"}, want: "a shell would be needed for this"},
		{args: []string{"--post-run-command", "notify > log", "./pass"}, want: "a shell would be needed for this"},
		{args: []string{"--post-run-command", "a; b", "./pass"}, want: "a shell would be needed for this"},
		{args: []string{"--post-run-command", "X=1 notify", "./pass"}, want: "a shell would be needed for this"},
		{args: []string{"--post-run-command", "notify `date`", "./pass"}, want: "a shell would be needed for this"},
		{args: []string{"--post-run-command", "(notify)", "./pass"}, want: "a shell would be needed for this"},
		{args: []string{"--post-run-command"}, want: "flag needs a value: --post-run-command"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			env := []string{"NO_COLOR=1"}
			if !c.needsGo {
				env = append(env, "PATH="+fakeBin+string(os.PathListSeparator)+os.Getenv("PATH"))
			}
			os.Remove(mark)
			stdout, stderr, code := runCmdEnv(t, dir, env, godistBin, c.args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2; stderr: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimRight(string(stderr), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "godist: ") {
				t.Errorf("stderr is not one godist: line:\n%s", stderr)
			}
			if !strings.Contains(string(stderr), c.want) {
				t.Errorf("stderr %q does not say %q", stderr, c.want)
			}
			if strings.Contains(string(stderr), "goroutine ") || strings.Contains(string(stderr), "panic") {
				t.Errorf("stack trace on stderr:\n%s", stderr)
			}
			if m := internalPrefix.FindString(string(stderr)); m != "" {
				t.Errorf("stderr holds the internal prefix %q: %s", m, stderr)
			}
			if len(stdout) != 0 {
				t.Errorf("stdout not empty on bad input:\n%s", stdout)
			}
			if ran, err := os.ReadFile(mark); err == nil {
				t.Errorf("the go command ran before the bad input was refused: go %s", ran)
			}
		})
	}
}

// internalPrefix matches what an error of one of godist's packages, or of the standard
// library, starts with when it reaches the user unexplained ("xspec: ", "scheduler: ",
// "strconv.ParseInt: ", pflag's "invalid argument"): a message in godist's words has
// none. (rsync and serve are also subcommands, whose messages may start "rsync: ".)
var internalPrefix = regexp.MustCompile(`(?:^|: )(xspec|scheduler|report|runner|gateway|gobuild|ledger|deploy|channel|proto|worker|resultcache|strconv\.[A-Za-z]+|json|pflag): |invalid argument `)

// runCmdEnv is runCmd with env added to the environment.
func runCmdEnv(t *testing.T, dir string, env []string, name string, args ...string) ([]byte, []byte, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return stdout.Bytes(), stderr.Bytes(), code
}

// goHelpFlags are the flags `go help TOPIC` lists, read from this machine's go, so that
// a flag a new Go release adds fails TestFlagsOfGoHelp until godist takes or refuses it.
func goHelpFlags(t *testing.T, topic string) []string {
	t.Helper()
	out, err := exec.Command("go", "help", topic).Output()
	if err != nil {
		t.Fatalf("go help %s: %v", topic, err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\t-([A-Za-z][A-Za-z0-9_-]*)`).FindAllStringSubmatch(string(out), -1) {
		names = append(names, m[1])
	}
	if len(names) < 5 {
		t.Fatalf("go help %s lists only %q: has its layout changed?", topic, names)
	}
	return names
}

// sampleValues are valid values of the go test flags that check theirs.
var sampleValues = map[string]string{
	"count": "2", "parallel": "2", "cpu": "1,2", "benchtime": "1x", "timeout": "1m",
	"shuffle": "on", "covermode": "atomic", "vet": "off", "mod": "mod", "compiler": "gc",
	"blockprofilerate": "1", "memprofilerate": "1", "mutexprofilefraction": "1", "n": "2",
}

// Every flag of go help testflag, go help test and go help build is taken (the command
// line gives a Config) or refused in one line that says what to do instead (pass it
// after --, or use go test); none is unknown to godist.
func TestFlagsOfGoHelp(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	var f pflag.FlagSet
	addRootFlags(&f, &rootOptions{})
	seen := map[string]bool{}
	for _, topic := range []string{"testflag", "test", "build"} {
		for _, name := range goHelpFlags(t, topic) {
			if seen[name] || name == "args" {
				continue // -args is --, tested in TestFlagConfig
			}
			seen[name] = true
			spellings := []string{"-" + name}
			if testBinaryFlags[name] {
				spellings = append(spellings, "-test."+name)
			}
			for _, flag := range spellings {
				t.Run(flag, func(t *testing.T) {
					args := []string{flag}
					g, isGo := goFlags[name]
					if isGo && g.refuse == "" && !g.bool || !isGo && len(name) == 1 && f.ShorthandLookup(name) != nil && f.ShorthandLookup(name).NoOptDefVal == "" {
						v, ok := sampleValues[name]
						if !ok {
							v = tmp // a directory, a file name, a pattern: all take it
						}
						args = append(args, v)
					}
					_, _, err := configFromArgs(append(args, "./..."))
					if !isGo {
						if len(name) != 1 || f.ShorthandLookup(name) == nil {
							t.Fatalf("%s: neither godist's nor in goFlags (%v)", flag, err)
						}
						if err != nil {
							t.Fatalf("%v: %v", args, err)
						}
						return
					}
					if g.refuse == "" {
						if err != nil {
							t.Fatalf("%v: %v", args, err)
						}
						return
					}
					msg := ""
					if err != nil {
						msg = err.Error()
					}
					var ue *usageError
					if !errors.As(err, &ue) || strings.Contains(msg, "\n") || strings.Contains(msg, "unknown flag") ||
						!strings.HasPrefix(msg, "-"+name) ||
						!strings.Contains(msg, "--") && !strings.Contains(msg, "go test") {
						t.Fatalf("%v: %q is not a one-line refusal of -%s saying to pass it after -- or use go test", args, msg, name)
					}
				})
			}
		}
	}
	// And goFlags has no flag go does not have, nor one godist registers wrongly.
	for name, g := range goFlags {
		if !seen[name] && name != "i" {
			t.Errorf("goFlags has -%s, which go help does not list", name)
		}
		fl := f.Lookup(name)
		if name == "v" {
			fl = f.ShorthandLookup("v")
		}
		switch {
		case g.refuse != "" && fl != nil:
			t.Errorf("-%s is refused but registered", name)
		case g.refuse == "" && fl == nil:
			t.Errorf("-%s is taken but not registered", name)
		case fl != nil && g.bool != (fl.NoOptDefVal != ""):
			t.Errorf("-%s: goFlags says bool=%v, its flag %q", name, g.bool, fl.NoOptDefVal)
		}
	}
	for name := range testBinaryFlags {
		if _, ok := goFlags[name]; !ok {
			t.Errorf("testBinaryFlags has -%s, goFlags does not", name)
		}
	}
}

// A command line becomes the Config it says, nothing run.
func TestFlagConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	realDir, _ := filepath.Abs(dir)
	wd, _ := os.Getwd()
	cases := []struct {
		args []string
		want func(c *runner.Config) // sets the fields the args change from the defaults
	}{
		{[]string{"-parallel", "4"}, func(c *runner.Config) { c.TestFlags = []string{"-test.parallel=4"} }},
		{[]string{"-parallel=4"}, func(c *runner.Config) { c.TestFlags = []string{"-test.parallel=4"} }},
		{[]string{"--parallel", "4"}, func(c *runner.Config) { c.TestFlags = []string{"-test.parallel=4"} }},
		{[]string{"-test.parallel", "4"}, func(c *runner.Config) { c.TestFlags = []string{"-test.parallel=4"} }},
		{[]string{"-vet", "off"}, func(c *runner.Config) { c.Vet = "off" }},
		{[]string{"-vet=printf,atomic"}, func(c *runner.Config) { c.Vet = "printf,atomic" }},
		{[]string{"-cpu", "1,2"}, func(c *runner.Config) { c.TestFlags = []string{"-test.cpu=1,2"} }},
		{[]string{"-benchtime", "1x"}, func(c *runner.Config) { c.TestFlags = []string{"-test.benchtime=1x"} }},
		{[]string{"-count", "2"}, func(c *runner.Config) { c.Count = 2 }},
		{[]string{"-count=1", "-run", "^TestA$", "-skip", "B"}, func(c *runner.Config) { c.Count, c.Run, c.Skip = 1, "^TestA$", "B" }},
		{[]string{"-bench", ".", "-benchmem"}, func(c *runner.Config) { c.Bench, c.TestFlags = ".", []string{"-test.benchmem"} }},
		{[]string{"-benchmem=false", "-fullpath"}, func(c *runner.Config) { c.TestFlags = []string{"-test.benchmem=false", "-test.fullpath"} }},
		{[]string{"-list", "Test.*"}, func(c *runner.Config) { c.List = "Test.*" }},
		{[]string{"-short", "-failfast", "-shuffle", "42", "-timeout", "0"}, func(c *runner.Config) {
			c.Short, c.Failfast, c.Shuffle, c.Timeout = true, true, "42", 0
		}},
		{[]string{"-short=false", "-timeout=1m30s"}, func(c *runner.Config) { c.Timeout = 90 * time.Second }},
		{[]string{"-run", "-x"}, func(c *runner.Config) { c.Run = "-x" }}, // go's flag: a value is the next argument
		{[]string{"-race", "-tags", "a,b", "-covermode", "atomic"}, func(c *runner.Config) {
			c.Race, c.Tags, c.Cover, c.BuildFlags = true, "a,b", true, []string{"-covermode=atomic"}
		}},
		{[]string{"-coverpkg", "./..."}, func(c *runner.Config) { c.Cover, c.BuildFlags = true, []string{"-coverpkg=./..."} }},
		{[]string{"-ldflags", "-X main.v=1 -s", "-gcflags", "all=-N -l", "-gcflags=p=-m", "-trimpath", "-mod=mod", "-buildvcs=auto", "-a"}, func(c *runner.Config) {
			c.BuildFlags = []string{"-ldflags=-X main.v=1 -s", "-gcflags=all=-N -l", "-gcflags=p=-m", "-trimpath", "-mod=mod", "-buildvcs=auto", "-a"}
		}},
		{[]string{"-trimpath=false", "-buildvcs"}, func(c *runner.Config) { c.BuildFlags = []string{"-trimpath=false", "-buildvcs=true"} }},
		{[]string{"-coverprofile", "c.out"}, func(c *runner.Config) {
			c.Cover, c.CoverProfile = true, filepath.Join(wd, "c.out")
			c.OwnFiles = []string{c.CoverProfile}
		}},
		{[]string{"-C", dir, "-coverprofile", "c.out"}, func(c *runner.Config) {
			c.Dir, c.Cover, c.CoverProfile = dir, true, filepath.Join(realDir, "c.out")
			c.OwnFiles = []string{c.CoverProfile}
		}},
		{[]string{"-outputdir", dir, "-artifacts"}, func(c *runner.Config) {
			c.TestFlags = []string{"-test.outputdir=" + realDir, "-test.artifacts"}
		}},
		{[]string{"-C", dir, "-artifacts"}, func(c *runner.Config) {
			c.Dir, c.TestFlags = dir, []string{"-test.outputdir=" + realDir, "-test.artifacts"}
		}},
		{[]string{"-memprofilerate", "1", "-blockprofilerate=2"}, func(c *runner.Config) {
			c.TestFlags = []string{"-test.memprofilerate=1", "-test.blockprofilerate=2"}
		}},
		{[]string{"./a", "-v", "./b/...", "-x"}, func(c *runner.Config) { c.Patterns, c.MaxFail = []string{"./a", "./b/..."}, 1 }},
		{[]string{"./a", "--", "-x", "-v"}, func(c *runner.Config) { c.Patterns, c.TestArgs = []string{"./a"}, []string{"-x", "-v"} }},
		{[]string{"./a", "-args", "-x", "--", "b"}, func(c *runner.Config) { c.Patterns, c.TestArgs = []string{"./a"}, []string{"-x", "--", "b"} }},
		{[]string{"--cache-dir", dir}, func(c *runner.Config) { c.ResultCache = dir }},
		{[]string{"--keepalive", "3s"}, func(c *runner.Config) { c.Keepalive = 3 * time.Second }},
		{[]string{"--cache-dir", "off"}, func(c *runner.Config) { c.ResultCache = "" }}, // as GODIST_CACHE_DIR=off, not a directory "off"
		{[]string{"--dist=each", "--maxfail=3", "--rerun-fails", "2", "--shard", "2/3"}, func(c *runner.Config) {
			c.Mode, c.MaxFail, c.RerunFails, c.ShardI, c.ShardN = scheduler.Each, 3, 2, 2, 3
		}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			got, _, err := configFromArgs(append([]string{"-n", "1"}, c.args...))
			if err != nil {
				t.Fatal(err)
			}
			want := runner.Config{Timeout: 10 * time.Minute, Mode: scheduler.Load, Keepalive: gateway.DefaultKeepalive}
			c.want(&want)
			if len(got.Gateways) != 1 {
				t.Errorf("%d gateways for -n 1", len(got.Gateways))
			}
			got.Gateways = nil
			for _, s := range []*[]string{&got.Patterns, &got.TestArgs, &got.BuildFlags, &got.TestFlags} {
				if len(*s) == 0 {
					*s = nil
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// godist's own flags in go's syntax and cobra's: -n 4, -n=4, --numprocesses 4, -json.
func TestFlagGodistOwn(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-n", "3"}, {"-n=3"}, {"--n", "3"}, {"--numprocesses=3"}, {"-numprocesses", "3"}} {
		cfg, _, err := configFromArgs(args)
		if err != nil || len(cfg.Gateways) != 3 {
			t.Errorf("%q: %d gateways, %v", args, len(cfg.Gateways), err)
		}
	}
	_, o, err := configFromArgs([]string{"-json", "-v", "--jsonfile", "j", "-tx", "popen", "-test.v=false"})
	if err != nil || !o.json || o.verbose || o.jsonfile != "j" || !slices.Equal(o.tx, []string{"popen"}) {
		t.Errorf("got %+v, %v", o, err)
	}
}

func TestFlagCommandLine(t *testing.T) {
	t.Parallel()
	cmd := newRootCommand(io.Discard, io.Discard)
	for _, c := range []struct{ in, want []string }{
		{[]string{"-run", "X", "-run=Y", "-v", "-n", "2", "--tx", "popen", "-count=3", "./...", "--", "-run", "Z"},
			[]string{"--run=X", "--run=Y", "--verbose=true", "--numprocesses=2", "--tx=popen", "--count=3", "./...", "--", "-run", "Z"}},
		{[]string{"-h"}, []string{"--help"}},
		{[]string{"ping", "-tx", "popen", "-json"}, []string{"ping", "--tx", "popen", "--json"}},
		{[]string{"rsync", "-tx", "popen", "-exclude", "x", "a", "b"}, []string{"rsync", "--tx", "popen", "--exclude", "x", "a", "b"}},
		{[]string{"help", "-x"}, []string{"help", "-x"}},
	} {
		got, err := commandLine(cmd, c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q:\ngot  %q, %v\nwant %q", c.in, got, err, c.want)
		}
	}
}

// With -json, stdout is go test -json's stream and nothing else: every line an event
// with a Worker.
func TestCLIJSONStdout(t *testing.T) {
	t.Parallel()
	dir := fixturesDir(t)
	stdout, stderr, code := runCmd(t, dir, godistBin, "-json", "-n", "2", "--durations", filepath.Join(t.TempDir(), "d.json"), "./pass")
	if code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr)
	}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	n, pass := 0, false
	for sc.Scan() {
		var e struct{ Action, Package, Test, Worker string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", sc.Text(), err)
		}
		if e.Worker == "" && e.Action != "start" && e.Action != "build-output" && e.Action != "build-fail" {
			t.Errorf("event without Worker: %s", sc.Text())
		}
		n++
		pass = pass || e.Action == "pass" && e.Test == ""
	}
	if n == 0 || !pass {
		t.Errorf("stdout has %d events, package passed: %v:\n%s", n, pass, stdout)
	}
	if len(stderr) != 0 {
		t.Errorf("stderr of a passing -json run is not empty:\n%s", stderr)
	}
}

// The command-line parser never panics; what it refuses is one line of bad usage, and
// what it takes, it takes again unchanged.
func FuzzGoFlags(f *testing.F) {
	for _, s := range []string{
		"-parallel 4 ./...", "-vet off", "-cpu 1,2 -benchtime 1x", "-count 2 -bench . -benchmem",
		"-nosuch", "-n4", "-vx", "-n=4 -C . -x", "--tx popen -- -run X", "-test.v=false -args -x",
		"---x", "-=", "-", "-run", "-h", "-ldflags=-s -gcflags all=-N", "-covermode set -race",
		"-cpuprofile c.out", "-outputdir . -artifacts", "-\xff", "-C\x00", "-\x800",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		var o rootOptions
		var fs pflag.FlagSet
		addRootFlags(&fs, &o)
		norm, err := goStyleArgs(&fs, args)
		if err == nil {
			again, err := goStyleArgs(&fs, norm)
			if err != nil || !slices.Equal(again, norm) {
				t.Fatalf("%q -> %q -> %q, %v", args, norm, again, err)
			}
		}
		_, _, err = configFromArgs(args)
		if err != nil {
			if errors.Is(err, pflag.ErrHelp) {
				return
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("%q: error of more than one line: %q", args, err)
			}
			if s := exitStatus(err, io.Discard); s != 2 {
				t.Fatalf("%q: %v: exit status %d, want 2", args, err, s)
			}
		}
	})
}
