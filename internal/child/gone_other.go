//go:build !unix && !windows

package child

func gone(int) bool { return false }
