//go:build linux

package netnstest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A relay link is what Options.RelayLinks gives a host instead of a veth pair: a TAP
// device at each end (one in the host's namespace, one at the far end: on the bridge or
// in the bastion's namespace), and this process copying Ethernet frames between them, in
// each direction through a queue that delays them, paces them to a rate and drops a share
// of them as the link's Shape says. It is netem in user space, for kernels without
// sch_netem. A TAP device lives as long as its file is open: closing both ends (Close)
// removes the link.

// relayQueueMax bounds how long a frame may wait for its turn at the rate (tbf's latency):
// past it, frames are dropped, as a full queue drops them.
const relayQueueMax = 200 * time.Millisecond

type relay struct {
	ends [2]*os.File // [0] the far end, [1] the host's

	mu    sync.Mutex
	shape Shape

	wg sync.WaitGroup
}

// openTap makes TAP device name in namespace ns and returns its file (non-blocking, so that
// Close unblocks a Read).
func openTap(ns, name string) (*os.File, error) {
	var f *os.File
	err := inNS(ns, func() error {
		// The device is made in the namespace the file was opened in.
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("/dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s in %s: %w", name, ns, err)
		}
		f = os.NewFile(uintptr(fd), "tap "+name+" in "+ns)
		return nil
	})
	return f, err
}

// newRelay makes the two TAP devices (farDev in farNS, nearDev in ns) and starts copying.
func newRelay(farNS, farDev, ns, nearDev string) (*relay, error) {
	far, err := openTap(farNS, farDev)
	if err != nil {
		return nil, err
	}
	near, err := openTap(ns, nearDev)
	if err != nil {
		far.Close()
		return nil, err
	}
	r := &relay{ends: [2]*os.File{far, near}}
	r.wg.Add(2)
	go r.pump(far, near)
	go r.pump(near, far)
	return r, nil
}

func (r *relay) setShape(s Shape) {
	r.mu.Lock()
	r.shape = s
	r.mu.Unlock()
}

// bitsPerSecond parses a tc rate ("100mbit", "1gbit", "500kbit", "8000bit"); 0 for "".
func bitsPerSecond(rate string) (float64, error) {
	if rate == "" {
		return 0, nil
	}
	var v float64
	var unit string
	if n, _ := fmt.Sscanf(rate, "%g%s", &v, &unit); n < 1 || v <= 0 {
		return 0, fmt.Errorf("netnstest: rate %q: want a number and a unit, as 100mbit", rate)
	}
	mult := map[string]float64{"": 1, "bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("netnstest: rate %q: the unit is one of bit, kbit, mbit, gbit", rate)
	}
	return v * mult, nil
}

type frame struct {
	due time.Time
	b   []byte
}

// pump copies frames from src to dst until src is closed: a reader that stamps each frame
// with when it may leave, and a writer that holds it until then.
func (r *relay) pump(src, dst *os.File) {
	defer r.wg.Done()
	q := make(chan frame, 8192)
	var wdone sync.WaitGroup
	wdone.Add(1)
	go func() {
		defer wdone.Done()
		var t *time.Timer
		for f := range q {
			if d := time.Until(f.due); d > 0 {
				if t == nil {
					t = time.NewTimer(d)
				} else {
					t.Reset(d)
				}
				<-t.C
			}
			// A device that is down (Cut) refuses frames: they are lost, as on a wire.
			dst.Write(f.b)
		}
	}()
	defer wdone.Wait()
	defer close(q)
	var next time.Time // when the link is free again, at its rate
	buf := make([]byte, 65536)
	for {
		n, err := src.Read(buf)
		if err != nil {
			// Closed (or broken): the link is gone. A device that is down does not fail a
			// Read; it has nothing to read.
			return
		}
		r.mu.Lock()
		s := r.shape
		r.mu.Unlock()
		if s.Loss > 0 && rand.Float64()*100 < s.Loss {
			continue
		}
		now := time.Now()
		dep := now
		if bps, _ := bitsPerSecond(s.Rate); bps > 0 {
			if next.After(dep) {
				dep = next
			}
			if dep.Sub(now) > relayQueueMax {
				continue // the queue is full
			}
			next = dep.Add(time.Duration(float64(n*8) / bps * float64(time.Second)))
		}
		select {
		case q <- frame{due: dep.Add(s.Delay), b: append([]byte(nil), buf[:n]...)}:
		default: // the queue is full
		}
	}
}

// close removes both devices and waits for the copying to end.
func (r *relay) close() {
	for _, f := range r.ends {
		f.Close()
	}
	r.wg.Wait()
}
