package gotest

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// canWaitDrained reports whether waitDrained works on this system.
const canWaitDrained = true

// ensurePipeBuffer makes sure that pipe f holds at least n bytes, so that a write of n bytes
// reaches its reader whole: a pipe made while its user has many pipe pages gets only two
// pages (fs.pipe-user-pages-soft).
func ensurePipeBuffer(f *os.File, n int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var size uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		size, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETPIPE_SZ, 0)
		if errno == 0 && int(size) < n {
			size, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETPIPE_SZ, uintptr(n))
		}
	}); err != nil {
		return err
	}
	if errno != 0 {
		return fmt.Errorf("%s: a pipe buffer of %d bytes: %w", f.Name(), n, errno)
	}
	return nil
}

// waitDrained waits until the reader of pipe f has read everything written to it, polling
// the bytes left in the pipe (FIONREAD, which Linux answers on either end of a pipe), for
// at most timeout.
func waitDrained(f *os.File, timeout time.Duration) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for pause := 20 * time.Microsecond; ; pause = min(2*pause, time.Millisecond) {
		var n int32
		var errno syscall.Errno
		if err := rc.Control(func(fd uintptr) {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
		}); err != nil {
			return err
		}
		if errno != 0 {
			return fmt.Errorf("FIONREAD on %s: %w", f.Name(), errno)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the reader of %s left %d bytes unread for %v", f.Name(), n, timeout)
		}
		time.Sleep(pause)
	}
}

// TestWaitDrained checks the replay's synchronisation: waitDrained returns once the reader
// has taken every byte, and not before.
func TestWaitDrained(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := ensurePipeBuffer(w, maxReplayChunk); err != nil {
		t.Fatal(err)
	}
	if err := waitDrained(w, time.Second); err != nil {
		t.Fatalf("empty pipe: %v", err)
	}
	if _, err := w.Write([]byte("half a line")); err != nil {
		t.Fatal(err)
	}
	if err := waitDrained(w, 10*time.Millisecond); err == nil {
		t.Fatal("returned with 11 bytes unread")
	}
	read := make(chan []byte)
	go func() {
		b := make([]byte, 64)
		n, _ := r.Read(b)
		read <- b[:n]
	}()
	if err := waitDrained(w, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := <-read; string(got) != "half a line" {
		t.Fatalf("read %q", got)
	}
}
