package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/report"
)

// parsePostRunCommand splits --post-run-command's CMD into a command and its arguments
// as sh splits a simple command: words separated by blanks, quoted with '...', "..." and
// backslashes. It is not run by a shell: anything that would need one — variables ($X),
// command substitution, redirections, pipes, lists (;, &&, ||, &), assignments — is refused,
// with a pointer to sh -c. An empty CMD is refused too. The error says what is wrong.
func parsePostRunCommand(cmd string) ([]string, error) {
	const accepted = "expected a command and its arguments, quoted as sh quotes them"
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(cmd), "")
	if err != nil {
		var pe syntax.ParseError
		if errors.As(err, &pe) {
			at := fmt.Sprintf("column %d", pe.Pos.Col())
			if pe.Pos.Line() > 1 {
				at = fmt.Sprintf("line %d, column %d", pe.Pos.Line(), pe.Pos.Col())
			}
			return nil, fmt.Errorf("%s at %s (%s)", pe.Text, at, accepted)
		}
		return nil, fmt.Errorf("%v (%s)", err, accepted)
	}
	needsShell := fmt.Errorf("a shell would be needed for this: run it with sh -c '...' (%s)", accepted)
	switch {
	case len(f.Stmts) == 0:
		return nil, fmt.Errorf("no command (%s)", accepted)
	case len(f.Stmts) > 1:
		return nil, needsShell
	}
	st := f.Stmts[0]
	call, ok := st.Cmd.(*syntax.CallExpr)
	if !ok || st.Negated || st.Background || st.Coprocess || st.Disown || len(st.Redirs) > 0 || len(call.Assigns) > 0 || len(call.Args) == 0 {
		return nil, needsShell
	}
	for _, w := range call.Args {
		for i, p := range w.Parts {
			if lit, ok := p.(*syntax.Lit); (ok && i == 0 && strings.HasPrefix(lit.Value, "~")) || !literalPart(p) {
				return nil, needsShell // ~ too: sh would expand it
			}
		}
	}
	// Quote removal only: nothing is left that would expand.
	args, err := expand.Fields(&expand.Config{}, call.Args...)
	if err != nil {
		return nil, fmt.Errorf("%v (%s)", err, accepted)
	}
	if len(args) == 0 || args[0] == "" {
		return nil, fmt.Errorf("no command (%s)", accepted)
	}
	return args, nil
}

// literalPart reports whether a part of a word is text, quoted or not, with nothing in it
// that a shell would expand.
func literalPart(p syntax.WordPart) bool {
	switch p := p.(type) {
	case *syntax.Lit:
		return true
	case *syntax.SglQuoted:
		return !p.Dollar
	case *syntax.DblQuoted:
		if p.Dollar {
			return false
		}
		for _, q := range p.Parts {
			if _, ok := q.(*syntax.Lit); !ok {
				return false
			}
		}
		return true
	}
	return false
}

// postRunEnv is what --post-run-command finds in its environment besides godist's own:
// gotestsum's names where it has them (TESTS_TOTAL, TESTS_FAILED, TESTS_SKIPPED,
// TESTS_ERRORS), godist's for the rest. CONTRACT.md lists them.
func postRunEnv(s report.Summary, status int, jsonfile, junitfile string) []string {
	return []string{
		"TESTS_TOTAL=" + strconv.Itoa(s.Passed+s.Failed+s.Skipped),
		"TESTS_PASSED=" + strconv.Itoa(s.Passed),
		"TESTS_FAILED=" + strconv.Itoa(s.Failed),
		"TESTS_SKIPPED=" + strconv.Itoa(s.Skipped),
		"TESTS_ERRORS=" + strconv.Itoa(s.BuildFailures+s.PackageErrors),
		"TESTS_NOT_RUN=" + strconv.Itoa(s.NotRun),
		"TESTS_FLAKY=" + strconv.Itoa(s.Flaky),
		"TESTS_BUILD_FAILURES=" + strconv.Itoa(s.BuildFailures),
		"GODIST_ELAPSED=" + fmt.Sprintf("%.3fs", s.Elapsed.Seconds()),
		"GODIST_EXIT_STATUS=" + strconv.Itoa(status),
		"GODIST_JSONFILE=" + jsonfile,
		"GODIST_JUNITFILE=" + junitfile,
	}
}

// postRunError is a --post-run-command that failed: exit status 3, as gotestsum exits
// when its post-run command fails.
type postRunError struct{ err error }

func (e *postRunError) Error() string { return "--post-run-command: " + e.err.Error() }
func (e *postRunError) Unwrap() error { return e.err }

// runPostRunCommand runs argv with env added to godist's environment, its output to
// stdout and stderr, no input, and waits for it. It runs in a process group of its own,
// killed whole when ctx ends (Ctrl-C reaches godist, not it), which is ctx's error. A
// command that cannot start, fails or is killed otherwise is a *postRunError.
func runPostRunCommand(ctx context.Context, argv, env []string, stdout, stderr io.Writer) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	var p *child.Process
	var err error
	if child.Supported() == nil {
		p, err = child.Start(cmd)
	} else {
		// No process groups here (windows): a plain child, which ends with godist's console.
		err = cmd.Start()
	}
	if err != nil {
		return &postRunError{err}
	}
	done := make(chan struct{})
	defer close(done)
	if p != nil {
		go func() {
			select {
			case <-ctx.Done():
				p.Kill()
			case <-done:
			}
		}()
		err = p.Wait(nil)
	} else {
		err = cmd.Wait()
	}
	if ctx.Err() != nil {
		return ctx.Err() // interrupted: killed, as the run would have been
	}
	if err != nil {
		return &postRunError{err}
	}
	return nil
}

// commandFlag is the value of --post-run-command: set even when given empty, which is an
// error rather than no command.
type commandFlag struct {
	value string
	set   bool
}

func (c *commandFlag) String() string     { return c.value }
func (c *commandFlag) Type() string       { return "string" }
func (c *commandFlag) Set(v string) error { c.value, c.set = v, true; return nil }
