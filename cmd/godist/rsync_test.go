package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

func sameTrees(t *testing.T, want, got string) {
	t.Helper()
	a, b := treeOf(t, want), treeOf(t, got)
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
	src := rsyncTree(t)
	for _, args := range [][]string{
		{"rsync", "--tx", "popen", src},
		{"rsync", "--tx", "popen", src, "a", "b"},
		{"rsync", src, "dest"},
		{"rsync", "--tx", "popen", filepath.Join(src, "missing"), "dest"},
		{"rsync", "--tx", "popen", filepath.Join(src, "go.mod"), "dest"},
		{"rsync", "--tx", "nosuchtype", src, "dest"},
		{"rsync", "--bogus", "--tx", "popen", src, "dest"},
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
