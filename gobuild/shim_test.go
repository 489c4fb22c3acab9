package gobuild

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/godist/godist/gotest"
	"github.com/godist/godist/internal/filesum"
)

// A shim that cannot hand its binary over (here one that fails as a shim would when the
// socket is gone) costs nothing but time: go says the package failed without a build
// failure, and Build builds those packages with go test -c. No failure reaches the run.
func TestExecBuildFallsBackWhenTheShimFails(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":           goMod,
		"a/a_test.go":      "package a\n" + passTest,
		"x/util/u_test.go": "package util\n" + passTest,
		"y/util/u_test.go": "package util\n" + passTest,
		"plain/plain.go":   "package plain\n",
	})
	failing := filepath.Join(t.TempDir(), "shim")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'godist build shim: no socket'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opts := Options{Dir: root, Shim: failing}
	pkgs, err := Resolve(ctx, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs []gotest.Event
	ready := map[string]int{}
	opts.Ready = func(b Binary) { ready[b.Package.ImportPath]++ }
	res, err := Build(ctx, opts, pkgs, t.TempDir(), func(e gotest.Event) { evs = append(evs, e) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Binaries) != 3 || len(ready) != 3 {
		t.Errorf("binaries %v, Ready %v: want a's and both util's", res.Binaries, ready)
	}
	for _, b := range res.Binaries {
		if got := ldflagsOf(t, b.Path); got != "-s -w" {
			t.Errorf("%s: -ldflags %q: not go test -c's build", b.Package.ImportPath, got)
		}
		if ready[b.Package.ImportPath] != 1 {
			t.Errorf("%s: given to Ready %d times, want once", b.Package.ImportPath, ready[b.Package.ImportPath])
		}
	}
	for _, e := range evs {
		if e.Action == gotest.ActionFail || strings.Contains(e.Output, "no socket") {
			t.Errorf("event %+v: the shim's failure reached the run", e)
		}
	}
}

// go test -exec links only what changed: a build over the binaries of an earlier one keeps
// those that go's test cache vouches for (the same file, not linked again), links anew the
// package whose test changed, and one whose binary is gone; after a change is undone, the
// binary is the first one again, not the one of the change.
func TestExecBuildLinksOnlyWhatChanged(t *testing.T) {
	exe, _ := os.Executable()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":      goMod,
		"a/a_test.go": "package a\n" + passTest,
		"b/b_test.go": "package b\n" + passTest,
		"c/c_test.go": "package c\n" + passTest,
	})
	ctx := context.Background()
	opts := Options{Dir: root, Shim: exe}
	pkgs, err := Resolve(ctx, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	build := func() map[string]string {
		t.Helper()
		ready := map[string]int{}
		o := opts
		o.Ready = func(b Binary) { ready[b.Package.ImportPath]++ }
		res, err := Build(ctx, o, pkgs, outDir, func(e gotest.Event) {
			if e.Action == gotest.ActionFail || strings.Contains(e.Output, shimMarker) || strings.Contains(e.Output, "(cached)") {
				t.Errorf("event %+v reached the run", e)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]string{}
		for _, b := range res.Binaries {
			if ready[b.Package.ImportPath] != 1 {
				t.Errorf("%s: given to Ready %d times, want once", b.Package.ImportPath, ready[b.Package.ImportPath])
			}
			id, err := filesum.ContentID(b.Path)
			if err != nil {
				t.Fatal(err)
			}
			if got := ldflagsOf(t, b.Path); got != "" {
				t.Errorf("%s: -ldflags %q: not go test's own link", b.Package.ImportPath, got)
			}
			fi, _ := filesum.IDOf(b.Path)
			ids[b.Package.ImportPath] = fmt.Sprintf("%s %d", id, fi.Ino)
		}
		if len(ids) != 3 {
			t.Fatalf("binaries %v, want a, b and c", ids)
		}
		return ids
	}
	first := build()
	if again := build(); !reflect.DeepEqual(again, first) {
		t.Errorf("nothing changed, yet binaries changed:\n%v\n%v", first, again)
	}
	writeFiles(t, root, map[string]string{"b/b_test.go": "package b\n" + passTest + "\nfunc TestMore(t *testing.T) {}\n"})
	os.Remove(filepath.Join(outDir, "0", "c.test"))
	changed := build()
	for pkg, same := range map[string]bool{"example.com/m/a": true, "example.com/m/b": false, "example.com/m/c": false} {
		if (changed[pkg] == first[pkg]) != same {
			t.Errorf("%s: binary %s, was %s: want it kept %v", pkg, changed[pkg], first[pkg], same)
		}
	}
	writeFiles(t, root, map[string]string{"b/b_test.go": "package b\n" + passTest})
	undone := build()
	id := func(s string) string { return strings.Fields(s)[0] }
	if id(undone["example.com/m/b"]) != id(first["example.com/m/b"]) {
		t.Errorf("b after its change was undone: %s, want the first build's %s (the change's was %s)", undone["example.com/m/b"], first["example.com/m/b"], changed["example.com/m/b"])
	}
	if !canExec(opts) || canExec(Options{Dir: root, Shim: exe, Cover: true}) || canExec(Options{Dir: root}) ||
		canExec(Options{Dir: root, Shim: exe, Env: []string{"GOFLAGS=-mod=mod -count=1"}}) {
		t.Error("canExec: want the shim exactly when one is given, without -cover and with go's test cache")
	}
}

// The socket takes a binary only from a shim of its own build (the token) and only from go's
// work directory; anything else is refused with a reason and moves nothing.
func TestShimSocketRefusesForeignRequests(t *testing.T) {
	work := t.TempDir()
	var got []handoff
	srv, err := listenShim(work, func(h handoff) { got = append(got, h) })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	outside := filepath.Join(t.TempDir(), "x.test")
	inside := filepath.Join(work, "go-build1", "b001", "x.test")
	for _, f := range []string{outside, inside} {
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte("bin"), 0o755)
	}
	ask := func(line string) string {
		c, err := net.Dial("unix", srv.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(line + "\n"))
		reply, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(reply)
	}
	for _, c := range []struct{ line, want string }{
		{`{"token":"nope","dir":"/d","bin":"` + inside + `"}`, "not a request of this build"},
		{`not json`, "not a request of this build"},
		{`{"token":"` + srv.token + `","dir":"/d","bin":"` + outside + `"}`, "the test binary is not in the build's work directory"},
		{`{"token":"` + srv.token + `","dir":"/d","bin":"` + work + `/../x.test"}`, "the test binary is not in the build's work directory"},
	} {
		if r := ask(c.line); r != c.want {
			t.Errorf("request %s: reply %q, want %q", c.line, r, c.want)
		}
	}
	if len(got) != 0 {
		t.Fatalf("refused requests handed over %v", got)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a refused request moved a file: %v", err)
	}
	want, err := filesum.ContentID(inside)
	if err != nil {
		t.Fatal(err)
	}
	if r := ask(`{"token":"` + srv.token + `","dir":"/d","bin":"` + inside + `"}`); r != "ok "+want {
		t.Fatalf("the build's own request: %q", r)
	}
	if len(got) != 1 || got[0].dir != "/d" {
		t.Fatalf("handed over %v, want one binary for /d", got)
	}
	if _, err := os.Stat(got[0].staged); err != nil {
		t.Errorf("the staged binary: %v", err)
	}
}

// Whatever a connection sends, the socket answers one line and hands nothing over unless the
// request is its own.
func FuzzShimRequest(f *testing.F) {
	f.Add([]byte(`{"token":"t","dir":"/d","bin":"/w/x"}`))
	f.Add([]byte("\n"))
	f.Add([]byte(`{"token":`))
	work := f.TempDir()
	srv, err := listenShim(work, func(handoff) { f.Error("a fuzzed request was handed over") })
	if err != nil {
		f.Fatal(err)
	}
	defer srv.close()
	f.Fuzz(func(t *testing.T, req []byte) {
		a, b := net.Pipe()
		go func() {
			a.Write(append(req, '\n'))
		}()
		reply := srv.serve(b)
		a.Close()
		b.Close()
		if strings.HasPrefix(reply, "ok") || strings.Contains(reply, "\n") {
			t.Errorf("request %q: reply %q", req, reply)
		}
	})
}
