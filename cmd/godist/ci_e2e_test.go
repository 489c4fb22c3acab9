package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/internal/mdtest"
)

// ciRepo writes a repository whose Go module lies in a subdirectory (sub/mod), as a
// monorepo has it, and returns the repository root and the module directory. Its tests:
//
//	p:      TestPass, TestFails (t.Errorf, line 9), TestSub (TestSub/ok, TestSub/bad: line 15),
//	        TestSlow (passes after 300ms)
//	skip:   TestSkip
//	flaky:  TestFlaky, failing (line 14) on its first attempt when $CI_FLAKY_DIR is set
//	        (a marker file there), passing after
//	broken: a compile error at line 5, column 40
func ciRepo(t *testing.T) (repo, mod string) {
	t.Helper()
	repo = t.TempDir()
	mod = filepath.Join(repo, "sub", "mod")
	write := func(name, body string) { writeTestFile(t, mod, name, body) }
	write("go.mod", "module example.com/ci\n\ngo 1.26\n")
	write("p/p_test.go", `package p

import (
	"testing"
	"time"
)

func TestPass(t *testing.T)  {}
func TestFails(t *testing.T) { t.Errorf("got %d, want %d", 1, 2) }

func TestSub(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) {
		t.Log("about to fail")
		t.Fatal("bad input")
	})
}

func TestSlow(t *testing.T) { time.Sleep(300 * time.Millisecond) }
`)
	write("skip/skip_test.go", "package skip\n\nimport \"testing\"\n\nfunc TestSkip(t *testing.T) { t.Skip(\"not here\") }\n")
	write("flaky/flaky_test.go", `package flaky

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFlaky(t *testing.T) {
	dir := os.Getenv("CI_FLAKY_DIR")
	marker := filepath.Join(dir, "failed-once")
	if _, err := os.Stat(marker); dir != "" && err != nil {
		os.WriteFile(marker, nil, 0o644)
		t.Errorf("first attempt: failing")
	}
}
`)
	write("broken/b_test.go", "package broken\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) { var x int = \"s\"; _ = x }\n")
	return repo, mod
}

// githubEnv is the environment of a GitHub Actions step whose workspace is repo.
func githubEnv(repo, summary string) []string {
	return []string{"NO_COLOR=1", "GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=" + repo, "GITHUB_STEP_SUMMARY=" + summary,
		"GITHUB_SERVER_URL=https://github.example", "GITHUB_REPOSITORY=acme/mono", "GITHUB_SHA=0123456789abcdef"}
}

const ciBlob = "https://github.example/acme/mono/blob/0123456789abcdef/"

// Under GitHub Actions, with the module in a subdirectory of the repository: annotations
// and the job summary's links name files relative to the repository root, whether godist
// runs in the module, with -C from the root, or with -C from elsewhere; the summary is
// appended to $GITHUB_STEP_SUMMARY and renders with the failures' links, the flaky test,
// the slowest tests and the gateways.
func TestEndToEndGitHubSummary(t *testing.T) {
	t.Parallel()
	repo, mod := ciRepo(t)
	elsewhere := t.TempDir()
	rel, err := filepath.Rel(elsewhere, mod)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dir string
		args      []string
		bin       string
	}{
		{"in the module", mod, nil, godistBin},
		// The race-built godist: the annotator is told of events and test processes from
		// the run's goroutines.
		{"-C from the repository root", repo, []string{"-C", filepath.Join("sub", "mod")}, godistRaceBin},
		{"-C from elsewhere", elsewhere, []string{"-C", rel}, godistBin},
	} {
		t.Run(c.name, func(t *testing.T) {
			summary := filepath.Join(t.TempDir(), "step-summary.md")
			// The step's summary so far: appended to, not replaced.
			if err := os.WriteFile(summary, []byte("# Earlier step output\n\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			env := append(githubEnv(repo, summary), "CI_FLAKY_DIR="+t.TempDir())
			args := append(append([]string{"-n", "2", "--rerun-fails", "1", "--durations", filepath.Join(t.TempDir(), "d.json")}, c.args...), "./...")
			stdout, stderr, code := runCmdEnv(t, c.dir, env, c.bin, args...)
			output := string(stdout) + string(stderr)
			if strings.Contains(output, "DATA RACE") {
				t.Errorf("the race detector found a data race in godist:\n%s", output)
			}
			if code != 1 {
				t.Fatalf("exit status %d, want 1\n%s", code, output)
			}
			for _, want := range []string{
				"::error file=sub/mod/p/p_test.go,line=9,title=TestFails::",
				"::error file=sub/mod/p/p_test.go,line=15,title=TestSub/bad::",
				"::error file=sub/mod/broken/b_test.go,line=5,col=40,title=build failed%3A example.com/ci/broken::",
				"::warning file=sub/mod/flaky/flaky_test.go,line=14,title=flaky%3A TestFlaky::",
			} {
				if !strings.Contains(output, want) {
					t.Errorf("no annotation %s\n%s", want, output)
				}
			}
			data, err := os.ReadFile(summary)
			if err != nil {
				t.Fatal(err)
			}
			md, ok := strings.CutPrefix(string(data), "# Earlier step output\n\n")
			if !ok {
				t.Fatalf("the step summary was not appended to:\n%s", data)
			}
			checkCISummary(t, md, output)
		})
	}
}

// checkCISummary checks the job summary of a run of ciRepo's module with --rerun-fails 1
// on two workers; output is godist's.
func checkCISummary(t *testing.T, md, output string) {
	t.Helper()
	doc, page, err := mdtest.Render(md)
	if err != nil {
		t.Fatalf("the summary does not render: %v\n%s", err, md)
	}
	h2 := doc.All("h2")
	// The heading carries the summary line godist printed.
	line := regexp.MustCompile(`(?m)^\d+ passed, \d+ failed, \d+ skipped in [0-9.]+s.*$`).FindString(output)
	counts, _, _ := strings.Cut(line, " in ")
	if len(h2) != 1 || line == "" || !strings.Contains(h2[0].TextContent(), counts) || !strings.HasPrefix(h2[0].TextContent(), "❌ godist ./...") {
		t.Errorf("heading %q, want the run's summary %q\n%s", doc.TextContent(), line, page)
	}
	rows := doc.TableRows()
	if len(rows) != 2 || len(rows[1]) != 9 || rows[0][4] != "Flaky" || rows[1][4] != "1" || rows[0][5] != "Build failures" || rows[1][5] != "1" {
		t.Errorf("totals: %q", rows)
	}

	items := doc.Section("h3", "Failures").Items()
	link := func(li *mdtest.Node) (string, string) {
		if as := li.All("a"); len(as) == 1 {
			return as[0].Attrs["href"], as[0].TextContent()
		}
		return "", ""
	}
	want := map[string][2]string{ // item's start -> link, its text
		"❌ TestFails in example.com/ci/p":             {ciBlob + "sub/mod/p/p_test.go#L9", "sub/mod/p/p_test.go:9"},
		"❌ TestSub/bad in example.com/ci/p":           {ciBlob + "sub/mod/p/p_test.go#L15", "sub/mod/p/p_test.go:15"},
		"❌ build of example.com/ci/broken at sub/mod": {ciBlob + "sub/mod/broken/b_test.go#L5", "sub/mod/broken/b_test.go:5:40"},
	}
	for prefix, w := range want {
		found := false
		for _, li := range items {
			if strings.HasPrefix(li.TextContent(), prefix) {
				found = true
				if href, text := link(li); href != w[0] || text != w[1] {
					t.Errorf("%q links to %q (%q), want %q (%q)", li.TextContent(), href, text, w[0], w[1])
				}
			}
		}
		if !found {
			t.Errorf("no failure item %q in:\n%s", prefix, page)
		}
	}
	if len(items) != 3 {
		t.Errorf("%d failure items, want 3 (TestFails, TestSub/bad, the build):\n%s", len(items), page)
	}
	flaky := doc.Section("h3", "Flaky tests").Items()
	if len(flaky) != 1 || !strings.HasPrefix(flaky[0].TextContent(), "⚠️ TestFlaky in example.com/ci/flaky: failed on gw") {
		t.Errorf("flaky tests: want TestFlaky\n%s", page)
	} else if href, _ := link(flaky[0]); href != ciBlob+"sub/mod/flaky/flaky_test.go#L14" {
		t.Errorf("TestFlaky links to %q", href)
	}
	if rows := doc.Section("h3", "Slowest tests").TableRows(); len(rows) < 2 || rows[1][1] != "TestSlow" || !strings.HasPrefix(rows[1][3], "gw") {
		t.Errorf("slowest tests: %q, want TestSlow first", rows)
	}
	gws := doc.Section("h3", "Gateways").TableRows()
	procs := 0
	for _, r := range gws[1:] {
		var n int
		fmt.Sscan(r[1], &n)
		procs += n
	}
	if len(gws) != 3 || gws[1][0] != "gw0" || gws[2][0] != "gw1" || procs < 4 {
		t.Errorf("gateways: %q, want gw0 and gw1 with the test processes of 4 packages or more", gws)
	}
}

// --post-run-command runs after the run with its totals in the environment, its output
// godist's; its failure is exit status 3 in one line; with -json its stdout goes to stderr.
func TestEndToEndPostRunCommand(t *testing.T) {
	t.Parallel()
	_, mod := ciRepo(t)
	tmp := t.TempDir()
	jf, junit := filepath.Join(tmp, "run.json"), filepath.Join(tmp, "junit.xml")
	copyOf := filepath.Join(tmp, "copy.json")
	// The command prints its variables, copies the --jsonfile as it finds it, and exits
	// with $EXIT.
	hook := `sh -c 'env | grep -E "^(TESTS|GODIST)_" | sort; cp "$GODIST_JSONFILE" ` + copyOf + `; echo hook-stderr >&2; exit ${EXIT:-0}'`
	noGitHub := []string{"NO_COLOR=1", "GITHUB_ACTIONS="} // the same outside GitHub Actions and in
	base := []string{"-n", "2", "--durations", filepath.Join(tmp, "d.json"), "--jsonfile", jf, "--junitfile", junit, "--post-run-command", hook}

	stdout, stderr, code := runCmdEnv(t, mod, noGitHub, godistBin, append(base, "./p", "./skip", "./broken")...)
	if code != 1 {
		t.Fatalf("exit status %d, want 1 (tests failed, the command did not)\n%s%s", code, stdout, stderr)
	}
	vars := hookVars(stdout)
	for k, v := range map[string]string{
		"TESTS_TOTAL": "7", "TESTS_PASSED": "3", "TESTS_FAILED": "3", "TESTS_SKIPPED": "1", "TESTS_ERRORS": "1",
		"TESTS_BUILD_FAILURES": "1", "TESTS_NOT_RUN": "0", "TESTS_FLAKY": "0", "GODIST_EXIT_STATUS": "1",
		"GODIST_JSONFILE": jf, "GODIST_JUNITFILE": junit,
	} {
		if vars[k] != v {
			t.Errorf("%s=%q, want %q\n%s", k, vars[k], v, stdout)
		}
	}
	if !regexp.MustCompile(`^[0-9]+\.[0-9]{3}s$`).MatchString(vars["GODIST_ELAPSED"]) {
		t.Errorf("GODIST_ELAPSED=%q, want seconds as 1.234s", vars["GODIST_ELAPSED"])
	}
	// After everything: the summary line is printed before it, the JSON file is whole.
	if i, j := bytes.Index(stdout, []byte("3 passed, 3 failed, 1 skipped")), bytes.Index(stdout, []byte("TESTS_")); i < 0 || j < i {
		t.Errorf("the command ran before godist's summary line:\n%s", stdout)
	}
	if !bytes.Contains(stderr, []byte("hook-stderr\n")) {
		t.Errorf("the command's stderr is not godist's:\n%s", stderr)
	}
	final, _ := os.ReadFile(jf)
	seen, _ := os.ReadFile(copyOf)
	if len(final) == 0 || !bytes.Equal(final, seen) {
		t.Errorf("the command saw a --jsonfile of %d bytes, the run wrote %d", len(seen), len(final))
	}

	// A failing command: exit status 3, one line saying so, whatever the tests did.
	for _, pkgs := range [][]string{{"./p"}, {"./skip"}} {
		_, stderr, code = runCmdEnv(t, mod, append(noGitHub, "EXIT=7"), godistBin, append(base, pkgs...)...)
		if code != 3 || !bytes.Contains(stderr, []byte("\ngodist: --post-run-command: exit status 7\n")) {
			t.Errorf("%s, command exits 7: exit status %d, want 3 with one line\n%s", pkgs, code, stderr)
		}
	}
	// One that cannot start.
	_, stderr, code = runCmdEnv(t, mod, noGitHub, godistBin, "-n", "1", "--post-run-command", "./no-such-command", "./skip")
	if code != 3 || !bytes.Contains(stderr, []byte("godist: --post-run-command: fork/exec ./no-such-command: no such file or directory\n")) {
		t.Errorf("a command that cannot start: exit status %d\n%s", code, stderr)
	}
	// Passing tests, a passing command: 0. With -json, stdout is the JSON stream alone.
	stdout, stderr, code = runCmdEnv(t, mod, noGitHub, godistBin, append(base, "-json", "./skip")...)
	if code != 0 {
		t.Errorf("exit status %d, want 0\n%s", code, stderr)
	}
	if bytes.Contains(stdout, []byte("TESTS_")) || hookVars(stderr)["TESTS_SKIPPED"] != "1" {
		t.Errorf("with -json the command's output belongs on stderr:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	// Interrupted runs and runs that could not be done run no command (as gotestsum):
	// a gateway that cannot start.
	_, stderr, code = runCmdEnv(t, mod, noGitHub, godistBin, "--tx", "exec=exit 7", "--post-run-command", hook, "./skip")
	if code != 3 || bytes.Contains(stderr, []byte("hook-stderr")) {
		t.Errorf("no gateway: exit status %d, and the command must not run\n%s", code, stderr)
	}
}

// Ctrl-C while the post-run command runs: it is killed (it runs in a process group of its
// own, which the terminal's signal does not reach), and godist exits as interrupted.
func TestEndToEndPostRunCommandInterrupted(t *testing.T) {
	t.Parallel()
	_, mod := ciRepo(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The command says its pid, then becomes a process that would outlive the test.
	hook := `sh -c 'echo $$ > ` + pidFile + `.tmp && mv ` + pidFile + `.tmp ` + pidFile + ` && exec sleep 600'`
	cmd := exec.Command(godistBin, "-n", "1", "--durations", filepath.Join(t.TempDir(), "d.json"), "--post-run-command", hook, "./skip")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "GITHUB_ACTIONS=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if !waitFor(time.Minute, func() bool {
		b, err := os.ReadFile(pidFile)
		_, serr := fmt.Sscan(string(b), &pid)
		return err == nil && serr == nil
	}) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the post-run command never started:\n%s", out.String())
	}
	cmd.Process.Signal(os.Interrupt)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(15 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Process.Kill()
		<-exited
		t.Fatalf("godist did not exit within 15s of SIGINT: it waits for a command it should have killed\n%s", out.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(out.String(), "godist: interrupted\n") {
		t.Errorf("godist: %v, want exit status 130 saying it was interrupted\n%s", err, out.String())
	}
	if !waitFor(10*time.Second, func() bool { return child.Gone(pid) }) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the post-run command (pid %d) outlived godist", pid)
	}
}

// hookVars are the NAME=VALUE lines of out.
func hookVars(out []byte) map[string]string {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && (strings.HasPrefix(k, "TESTS_") || strings.HasPrefix(k, "GODIST_")) {
			vars[k] = v
		}
	}
	return vars
}

// A GITHUB_STEP_SUMMARY that cannot be written: one line says so, the run goes on, and
// its exit status is the tests'.
func TestEndToEndStepSummaryUnwritable(t *testing.T) {
	t.Parallel()
	repo, mod := ciRepo(t)
	bad := filepath.Join(t.TempDir(), "no", "such", "dir", "summary.md")
	stdout, stderr, code := runCmdEnv(t, mod, githubEnv(repo, bad), godistBin, "-n", "1", "--durations", filepath.Join(t.TempDir(), "d.json"), "./skip")
	if code != 0 {
		t.Errorf("exit status %d, want 0 (the tests passed)\n%s%s", code, stdout, stderr)
	}
	want := "godist: GITHUB_STEP_SUMMARY: open " + bad + ": no such file or directory: no job summary is written\n"
	if strings.Count(string(stderr), "GITHUB_STEP_SUMMARY") != 1 || !strings.Contains(string(stderr), want) {
		t.Errorf("stderr does not say, in one line, %q:\n%s", want, stderr)
	}
	if !bytes.Contains(stdout, []byte("0 passed, 0 failed, 1 skipped")) {
		t.Errorf("the run did not go on:\n%s", stdout)
	}
}
