//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package child

import "golang.org/x/sys/unix"

// waitExited blocks until process pid, a child of this process, has exited, without
// reaping it (kqueue's NOTE_EXIT), and reports whether it could. A pid that kqueue no
// longer knows (ESRCH) has exited already: only this package's Wait reaps it.
func waitExited(pid int) bool {
	kq, err := unix.Kqueue()
	if err != nil {
		return false
	}
	defer unix.Close(kq)
	var ev unix.Kevent_t
	unix.SetKevent(&ev, pid, unix.EVFILT_PROC, unix.EV_ADD|unix.EV_ONESHOT)
	ev.Fflags = unix.NOTE_EXIT
	changes := []unix.Kevent_t{ev}
	out := make([]unix.Kevent_t, 1)
	for {
		n, err := unix.Kevent(kq, changes, out, nil)
		switch {
		case err == unix.EINTR || n == 0:
			continue // adding the event again is harmless
		case err == unix.ESRCH:
			return true
		case err != nil:
			return false
		case out[0].Flags&unix.EV_ERROR != 0:
			return unix.Errno(out[0].Data) == unix.ESRCH
		}
		return true
	}
}
