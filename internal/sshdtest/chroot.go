package sshdtest

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
)

// checkTestUser says whether TestUser is there and may log in with a key: the tests touch
// only users they were given, and `make deps` makes this one (useradd -M -d
// /home/godisttest -s /bin/sh -p '*' godisttest). With UsePAM no, sshd refuses even key
// logins to an account whose password field starts with '!'.
func checkTestUser() error {
	if _, err := user.Lookup(TestUser); err != nil {
		return fmt.Errorf("the test user %s does not exist (make deps creates it)", TestUser)
	}
	locked, err := accountLocked(TestUser)
	if err != nil {
		return err
	}
	if locked {
		return fmt.Errorf("the test user %s is locked (make deps unlocks it: usermod -p '*' %s)", TestUser, TestUser)
	}
	return nil
}

func accountLocked(name string) (bool, error) {
	b, err := os.ReadFile("/etc/shadow")
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := bytes.SplitN(line, []byte(":"), 3)
		if len(f) >= 2 && string(f[0]) == name {
			return bytes.HasPrefix(f[1], []byte("!")), nil
		}
	}
	return false, nil
}

// makeChroot makes a chroot for u under ChrootBase: /bin/busybox (static) with the applets
// linked, /tmp (1777), /dev/null, /dev/zero, /dev/urandom, and u's home directory owned by u.
// Every directory up to and including the chroot itself is root-owned and mode 0755, as
// sshd's ChrootDirectory demands.
func makeChroot(u *user.User, applets []string) (string, error) {
	if applets == nil {
		applets = DefaultApplets
	}
	busybox, err := StaticBusybox()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(ChrootBase, 0o755); err != nil {
		return "", err
	}
	if err := checkChrootPath(ChrootBase); err != nil {
		return "", err
	}
	root, err := os.MkdirTemp(ChrootBase, "root-")
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(root)
		return "", err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return fail(err)
	}
	for _, d := range []string{"bin", "dev", "tmp", "home"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			return fail(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return fail(err)
	}
	if err := copyFile(busybox, filepath.Join(root, "bin", "busybox"), 0o755); err != nil {
		return fail(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			return fail(err)
		}
	}
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"urandom", 1, 9}} {
		p := filepath.Join(root, "dev", d.name)
		if err := mknodChar(p, d.major, d.minor); err != nil {
			return fail(fmt.Errorf("mknod %s: %w", p, err))
		}
		if err := os.Chmod(p, 0o666); err != nil { // against the umask
			return fail(err)
		}
	}
	if !filepath.IsAbs(u.HomeDir) || u.HomeDir == "/" {
		return fail(fmt.Errorf("user %s has home directory %q; want an absolute path below /", u.Username, u.HomeDir))
	}
	home := filepath.Join(root, u.HomeDir)
	if err := os.MkdirAll(filepath.Dir(home), 0o755); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(home, 0o755); err != nil {
		return fail(err)
	}
	if err := chownTo(home, u); err != nil {
		return fail(err)
	}
	return root, nil
}

// StaticBusybox finds a busybox executable that is statically linked (no PT_INTERP), so it
// runs in a chroot without libc.
func StaticBusybox() (string, error) {
	cands := []string{"/bin/busybox", "/usr/bin/busybox", "/usr/lib/busybox/busybox-static"}
	if p, err := exec.LookPath("busybox"); err == nil {
		cands = append(cands, p)
	}
	var why []string
	for _, p := range cands {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		dynamic := false
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				dynamic = true
			}
		}
		f.Close()
		if !dynamic {
			return p, nil
		}
		why = append(why, p+" is dynamically linked")
	}
	return "", fmt.Errorf("no statically linked busybox found (install busybox-static) %v", why)
}

func chownTo(path string, u *user.User) error {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	if uid == os.Geteuid() {
		return nil
	}
	return os.Chown(path, uid, gid)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
