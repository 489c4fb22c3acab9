package main

import (
	"io"
	"os"
)

// readKeys delivers the bytes typed on stdin, one key at a time: on a terminal it turns off
// line buffering and echo (restore turns them back on); elsewhere it reads what comes.
// At the end of stdin no more keys come (the channel stays open: --watch < /dev/null
// watches on).
func readKeys(stdin io.Reader) (keys <-chan byte, restore func()) {
	ch := make(chan byte, 16)
	restore = func() {}
	if f, ok := stdin.(*os.File); ok {
		restore = keyMode(f)
	}
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := stdin.Read(buf)
			for _, b := range buf[:n] {
				if b == '\n' || b == '\r' {
					continue
				}
				select {
				case ch <- b:
				default: // keys typed faster than read: the surplus is dropped
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, restore
}
