package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/godist/godist/internal/sshdtest"
)

// rsyncTree makes a small tree with what a module tree has: sources, a testdata directory,
// an executable, a symlink, an empty directory.
func rsyncTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for path, body := range map[string]string{
		"go.mod":                      "module example.com/m\n",
		"pkg/a.go":                    "package pkg\n",
		"pkg/a_test.go":               "package pkg\n",
		"pkg/testdata/input.txt":      strings.Repeat("input line\n", 500),
		"pkg/testdata/golden/out.txt": "golden\n",
		"other/b.go":                  "package other\n",
	} {
		p := filepath.Join(src, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pkg/testdata", filepath.Join(src, "td")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	return src
}

// treeOf describes a tree for comparison: kind, mode, content or target of each entry.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "link " + target
		case fi.IsDir():
			out[rel] = "dir " + fi.Mode().String()
		default:
			b, _ := os.ReadFile(p)
			out[rel] = "file " + fi.Mode().String() + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTrees fails t unless the tree got is a copy of want; the sync marker at the top of
// got is not part of the tree.
func sameTrees(t *testing.T, want, got string) {
	t.Helper()
	a, b := treeOf(t, want), treeOf(t, got)
	if _, ok := b[".godist-sync"]; !ok {
		t.Errorf("%s: no .godist-sync marker", got)
	}
	delete(b, ".godist-sync")
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: %q in the copy, want %q", k, firstN(b[k], 60), firstN(v, 60))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: extra in the copy", k)
		}
	}
}

func firstN(s string, n int) string { return s[:min(n, len(s))] }

func rsyncJSON(t *testing.T, out []byte) []rsyncResult {
	t.Helper()
	var res []rsyncResult
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var r rsyncResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("rsync --json line %q: %v", line, err)
		}
		res = append(res, r)
	}
	return res
}

// godist rsync over two popen gateways: a relative DEST is relative to the workers' cwd;
// the two gateways are one directory on one machine, so it is synced once; the second
// run sends nothing; a deleted source file goes.
func TestRsyncPopen(t *testing.T) {
	t.Parallel()
	src := rsyncTree(t)
	cwd := t.TempDir()
	out, errOut, code := runCmd(t, cwd, godistBin, "rsync", "--json", "--tx", "popen", "--tx", "popen", src, "copy/of/tree")
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	res := rsyncJSON(t, out)
	if len(res) != 2 || res[0].ID != "gw0" || res[1].ID != "gw1" {
		t.Fatalf("results %+v", res)
	}
	sent, dup := res[0], res[1]
	if sent.SameAs != "" {
		sent, dup = dup, sent
	}
	if sent.FilesSent != 7 || sent.BytesSent == 0 || dup.SameAs != sent.ID || dup.FilesSent != 0 {
		t.Errorf("results %+v", res)
	}
	dest := filepath.Join(cwd, "copy/of/tree")
	sameTrees(t, src, dest)

	os.Remove(filepath.Join(src, "other/b.go"))
	out, errOut, code = runCmd(t, cwd, godistBin, "rsync", "--json", "--tx", "popen", src, "copy/of/tree")
	res = rsyncJSON(t, out)
	if code != 0 || len(res) != 1 || res[0].FilesSent != 0 || res[0].Deleted != 1 || res[0].BytesSent > 2000 {
		t.Fatalf("second run: exit %d %+v\n%s", code, res, errOut)
	}
	sameTrees(t, src, dest)
	// The text form.
	out, _, code = runCmd(t, cwd, godistBin, "rsync", "--tx", "popen", src, "copy/of/tree")
	if code != 0 || !strings.Contains(string(out), "gw0\tpopen\t") || !strings.Contains(string(out), "0 sent") {
		t.Errorf("text output (exit %d): %s", code, out)
	}
}

func TestRsyncBadUsage(t *testing.T) {
	t.Parallel()
	src := rsyncTree(t)
	for _, args := range [][]string{
		{"rsync", "--tx", "popen", src},
		{"rsync", "--tx", "popen", src, "a", "b"},
		{"rsync", src, "dest"},
		{"rsync", "--tx", "popen", filepath.Join(src, "missing"), "dest"},
		{"rsync", "--tx", "popen", filepath.Join(src, "go.mod"), "dest"},
		{"rsync", "--tx", "nosuchtype", src, "dest"},
		{"rsync", "--bogus", "--tx", "popen", src, "dest"},
		{"rsync", "--tx", "popen", src, ""},
		{"rsync", "--tx", "popen", src, ".."},
		{"rsync", "--tx", "popen", src, "../.."},
		{"rsync", "--tx", "popen", src, "a/../../b"},
		{"rsync", "--tx", "popen", src, "./../x"},
		// A gateway that cannot start: were / not refused before, the exit would be 3.
		{"rsync", "--tx", "exec=exit 7", src, "/"},
		{"rsync", "--tx", "exec=exit 7", src, "//"},
		{"rsync", "--tx", "exec=exit 7", src, "/tmp/.."},
		{"rsync", "--tx", "exec=exit 7", "--delete", src, "/."},
	} {
		out, errOut, code := runCmd(t, t.TempDir(), godistBin, args...)
		if code != 2 || len(out) != 0 || strings.Count(strings.TrimSpace(string(errOut)), "\n") != 0 || len(errOut) == 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and one line", args, code, out, errOut)
		}
	}
}

// A gateway whose sync fails makes the exit status 3, with its error; the others still
// get their copy.
func TestRsyncGatewayFails(t *testing.T) {
	t.Parallel()
	src := rsyncTree(t)
	cwd := t.TempDir()
	good := filepath.Join(cwd, "good")
	out, errOut, code := runCmd(t, cwd, godistBin, "rsync", "--json",
		"--tx", "popen", "--tx", "popen//chdir=/proc/self", src, "dest")
	if code != 3 {
		t.Fatalf("exit %d, want 3:\n%s%s", code, out, errOut)
	}
	res := rsyncJSON(t, out)
	if len(res) != 2 || res[0].Error != "" || res[1].Error == "" {
		t.Fatalf("results %+v", res)
	}
	if !strings.Contains(string(errOut), "gw1") || !strings.Contains(string(errOut), res[1].Error) {
		t.Errorf("stderr does not name the failed gateway and its error: %s", errOut)
	}
	sameTrees(t, src, filepath.Join(cwd, "dest"))
	// A gateway that does not start.
	_, errOut, code = runCmd(t, cwd, godistBin, "rsync", "--tx", "exec=exit 7", src, good)
	if code != 3 || !strings.Contains(string(errOut), "gw0") {
		t.Errorf("a gateway that does not start: exit %d: %s", code, errOut)
	}
}

// Over a real sshd: two gateways on one host sync once; a change goes as a delta.
func TestRsyncSSH(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	env := sshEnv(t, s)
	src := rsyncTree(t)
	dest := filepath.Join(t.TempDir(), "remote-copy")
	out, errOut, code := runWithEnv(t, env, t.TempDir(), "rsync", "--json", "--tx", "ssh="+s.Alias, "--tx", "ssh="+s.Alias, src, dest)
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	res := rsyncJSON(t, out)
	if len(res) != 2 || res[0].FilesSent+res[1].FilesSent != 7 || (res[0].SameAs == "") == (res[1].SameAs == "") {
		t.Errorf("results %+v: want one gateway to sync, the other the same directory", res)
	}
	sameTrees(t, src, dest)
	// A small change to a large file: a delta, far smaller than the file.
	big := strings.Repeat("0123456789abcdef", 1<<16)
	os.WriteFile(filepath.Join(src, "pkg/testdata/big"), []byte(big), 0o644)
	if _, errOut, code := runWithEnv(t, env, t.TempDir(), "rsync", "--tx", "ssh="+s.Alias, src, dest); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	os.WriteFile(filepath.Join(src, "pkg/testdata/big"), []byte(big[:500000]+"an edit"+big[500000:]), 0o644)
	out, errOut, code = runWithEnv(t, env, t.TempDir(), "rsync", "--json", "--tx", "ssh="+s.Alias, src, dest)
	res = rsyncJSON(t, out)
	if code != 0 || len(res) != 1 || res[0].FilesSent != 1 || res[0].BytesSent > 20000 {
		t.Errorf("delta: exit %d %+v %s", code, res, errOut)
	}
	sameTrees(t, src, dest)
}

// The zero-install host: sessions chrooted into a directory with only a static busybox.
// DEST is relative to the worker's cwd (its home in the chroot).
func TestRsyncSSHChrootedBusybox(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	s := sshdtest.Start(t, sshdtest.Options{Chroot: true})
	env := sshEnv(t, s)
	src := rsyncTree(t)
	out, errOut, code := runWithEnv(t, env, t.TempDir(), "rsync", "--json", "--tx", "ssh="+s.Alias, "--tx", "ssh="+s.Alias, src, "work/tree")
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	res := rsyncJSON(t, out)
	if len(res) != 2 || res[0].FilesSent+res[1].FilesSent != 7 {
		t.Errorf("results %+v", res)
	}
	onHost := filepath.Join(s.Chroot, s.RemoteHome, "work/tree")
	sameTrees(t, src, onHost)
	// Again: nothing sent.
	out, _, code = runWithEnv(t, env, t.TempDir(), "rsync", "--json", "--tx", "ssh="+s.Alias, src, "work/tree")
	if res := rsyncJSON(t, out); code != 0 || len(res) != 1 || res[0].FilesSent != 0 {
		t.Errorf("second run: exit %d %+v", code, res)
	}
}

// keepFiles writes files a sync must leave alone below dir and returns a check that fails
// t unless each is there still, byte for byte, with its mode and mtime.
func keepFiles(t *testing.T, dir string, files ...string) func() {
	t.Helper()
	describe := func(p string) string {
		fi, err := os.Lstat(p)
		if err != nil {
			return "missing"
		}
		b, _ := os.ReadFile(p)
		return fi.Mode().String() + " " + fi.ModTime().String() + " " + string(b)
	}
	before := map[string]string{}
	for i, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("mine, not godist's: %s %d\n", f, i)), 0o600); err != nil {
			t.Fatal(err)
		}
		before[f] = describe(p)
	}
	return func() {
		t.Helper()
		for _, f := range files {
			if got := describe(filepath.Join(dir, f)); got != before[f] {
				t.Errorf("%s: %q, want it untouched: %q", f, got, before[f])
			}
		}
	}
}

// oneStderrLine fails t unless stderr is exactly one line that holds each of want.
func oneStderrLine(t *testing.T, stderr []byte, want ...string) {
	t.Helper()
	s := strings.TrimSuffix(string(stderr), "\n")
	if s == "" || strings.Contains(s, "\n") {
		t.Errorf("stderr is not one line: %q", stderr)
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("stderr %q does not say %q", s, w)
		}
	}
}

// A DESTDIR no godist sync wrote: files are copied, nothing is deleted, godist says what
// it kept; later syncs delete only what godist wrote; --delete deletes the rest.
func TestRsyncForeignDestination(t *testing.T) {
	t.Parallel()
	src := rsyncTree(t)
	cwd := t.TempDir()
	dest := filepath.Join(cwd, "dest")
	check := keepFiles(t, dest, "notes.txt", "pkg/mine.go", "deep/dir/file", ".hidden")
	if err := os.WriteFile(filepath.Join(dest, "go.mod"), []byte("overwritten"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCmd(t, cwd, godistBin, "rsync", "--json", "--tx", "popen", src, "dest")
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	check()
	oneStderrLine(t, errOut, "godist rsync: gw0: dest was not synced by godist before: 4 extra entries kept (give --delete to remove them)")
	res := rsyncJSON(t, out)
	if len(res) != 1 || res[0].Kept != 4 || res[0].Owned || res[0].Deleted != 0 {
		t.Errorf("results %+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "go.mod")); string(b) != "module example.com/m\n" {
		t.Errorf("go.mod not overwritten: %q", b)
	}
	// Now godist's; what it wrote and the source lost goes, nothing else.
	if err := os.Remove(filepath.Join(src, "other/b.go")); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCmd(t, cwd, godistBin, "rsync", "--json", "--tx", "popen", src, "dest")
	check()
	res = rsyncJSON(t, out)
	if code != 0 || len(res) != 1 || res[0].Kept != 4 || !res[0].Owned || res[0].Deleted != 1 {
		t.Errorf("second run: exit %d %+v\n%s", code, res, errOut)
	}
	oneStderrLine(t, errOut, "godist rsync: gw0: dest: 4 entries that godist did not write kept (give --delete to remove them)")
	if _, err := os.Lstat(filepath.Join(dest, "other/b.go")); err == nil {
		t.Error("other/b.go: still there")
	}
	// --delete: an exact copy.
	out, errOut, code = runCmd(t, cwd, godistBin, "rsync", "--delete", "--tx", "popen", src, "dest")
	if code != 0 || len(errOut) != 0 || !strings.Contains(string(out), "0 kept") {
		t.Fatalf("--delete: exit %d:\n%s%s", code, out, errOut)
	}
	sameTrees(t, src, dest)
}

// Destinations refused on the gateway, as the gateway resolves them: its $HOME, its cache
// root and directories holding them, through symlinks; a relative path that climbs out
// through a symlink. Exit 2, one line, nothing written. HOME and XDG_CACHE_HOME are made
// up for the test, and the gateways (popen, exec=sh) inherit them.
func TestRsyncRefusedDestinations(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	home := filepath.Join(base, "home", "me")
	cache := filepath.Join(base, "xdg")
	cwd := filepath.Join(base, "cwd")
	outside := filepath.Join(base, "outside")
	checks := []func(){
		keepFiles(t, home, "precious", "proj/x.go"),
		keepFiles(t, cache, "godist/blobs/keep", "other/keep"),
		keepFiles(t, outside, "o"),
		keepFiles(t, cwd, "c"),
	}
	os.Symlink(home, filepath.Join(cwd, "tohome"))
	os.Symlink(outside, filepath.Join(cwd, "toout"))
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CACHE_HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+home, "XDG_CACHE_HOME="+cache, "NO_COLOR=1")
	src := rsyncTree(t)
	for _, tc := range []struct{ dest, want string }{
		{home, "it is $HOME"},
		{"tohome", "it is $HOME"},
		{"tohome/../me", "climbs out of the working directory"},
		{filepath.Dir(home), "it holds $HOME"},
		{filepath.Join(cache, "godist"), "it is the godist cache root"},
		{cache, "it holds the godist cache root"},
		{"toout/..", "climbs out of the working directory"},
	} {
		for _, tx := range []string{"popen", "exec=sh"} {
			t.Run(tx+" "+tc.dest, func(t *testing.T) {
				out, errOut, code := runWithEnv(t, env, cwd, "rsync", "--delete", "--tx", tx, src, tc.dest)
				if code != 2 {
					t.Fatalf("exit %d, want 2:\n%s%s", code, out, errOut)
				}
				oneStderrLine(t, errOut, "godist: rsync: gw0: destination", "refused: "+tc.want)
				for _, c := range checks {
					c()
				}
			})
		}
	}
	for _, p := range []string{filepath.Join(home, "go.mod"), filepath.Join(cache, "go.mod"), filepath.Join(base, "go.mod"), filepath.Join(base, "home", "go.mod")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	// Below them is fine: the runner's trees live in the cache root.
	for _, d := range []string{filepath.Join(cache, "godist", "work", "m"), filepath.Join(home, "proj", "copy"), "toout/copy"} {
		if out, errOut, code := runWithEnv(t, env, cwd, "rsync", "--tx", "popen", src, d); code != 0 {
			t.Errorf("%s: exit %d:\n%s%s", d, code, out, errOut)
		}
	}
	for _, c := range checks {
		c()
	}
}

// Names with a newline, a colon, a backslash are legal: they travel.
func TestRsyncStrangeNames(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	for _, n := range []string{"new\nline", "co:lon", `back\slash`, `..\..\up`, "C:drive", "esc\x1b[0m", "dir\nname/in:side"} {
		p := filepath.Join(src, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("content of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cwd := t.TempDir()
	out, errOut, code := runCmd(t, cwd, godistBin, "rsync", "--tx", "exec=sh", src, "copy")
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	sameTrees(t, src, filepath.Join(cwd, "copy"))
	if entries, _ := os.ReadDir(cwd); len(entries) != 1 {
		t.Errorf("next to the copy: %v", entries)
	}
}

// Entries that cannot be synced are an error naming them (exit 2), before anything is
// sent: nothing in DESTDIR changes.
func TestRsyncCannotCarry(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("d/", 257) + "f"
	for name, tc := range map[string]struct {
		make  func(src string) error
		entry string
	}{
		"too deep": {func(src string) error {
			p := filepath.Join(src, deep)
			os.MkdirAll(filepath.Dir(p), 0o755)
			return os.WriteFile(p, []byte("deep"), 0o644)
		}, strings.Repeat("d/", 256) + "d"},
		"named pipe": {func(src string) error { return syscall.Mkfifo(filepath.Join(src, "pkg", "fifo"), 0o644) }, "pkg/fifo"},
	} {
		t.Run(name, func(t *testing.T) {
			src := rsyncTree(t)
			if err := tc.make(src); err != nil {
				t.Fatal(err)
			}
			cwd := t.TempDir()
			check := keepFiles(t, filepath.Join(cwd, "dest"), "mine", "go.mod")
			out, errOut, code := runCmd(t, cwd, godistBin, "rsync", "--delete", "--tx", "popen", src, "dest")
			if code != 2 || len(out) != 0 {
				t.Fatalf("exit %d, want 2:\n%s%s", code, out, errOut)
			}
			oneStderrLine(t, errOut, fmt.Sprintf("godist: rsync: cannot sync %q", filepath.Join(src, tc.entry)), "exclude it")
			check()
			if entries, _ := os.ReadDir(filepath.Join(cwd, "dest")); len(entries) != 2 {
				t.Errorf("destination: %v", entries)
			}
		})
	}
}
