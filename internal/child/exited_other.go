//go:build unix && !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package child

// waitExited cannot wait without reaping here; Wait falls back to reaping first.
func waitExited(int) bool { return false }
