package serve

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultHost is the address a listen address without a host binds: loopback only.
const DefaultHost = "127.0.0.1"

// ParseListenAddr checks a --listen address and returns it as net.Listen takes it:
//
//   - ":PORT" and "PORT" bind DefaultHost (127.0.0.1), never every interface;
//   - "HOST:PORT" and "[IPV6]:PORT" bind HOST ("0.0.0.0:PORT" or "[::]:PORT" for every
//     interface: that has to be asked for by name);
//   - PORT is a number 0..65535 (0: any free port), not a service name.
func ParseListenAddr(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty listen address (expected HOST:PORT or :PORT)")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r > 0x7e {
			return "", fmt.Errorf("listen address %q: unexpected character %q (expected HOST:PORT or :PORT)", s, r)
		}
	}
	if len(s) > 300 {
		return "", fmt.Errorf("listen address %.40q...: too long", s)
	}
	host, port := "", s
	if strings.Contains(s, ":") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", fmt.Errorf("listen address %q: expected HOST:PORT, :PORT or [IPV6]:PORT", s)
		}
	}
	if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return "", fmt.Errorf("listen address %q: bad port %q (expected a number 0..65535)", s, port)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n > 65535 {
		return "", fmt.Errorf("listen address %q: bad port %q (expected a number 0..65535)", s, port)
	}
	switch {
	case host == "":
		host = DefaultHost
	case strings.HasPrefix(s, "["):
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return "", fmt.Errorf("listen address %q: %q is not an IPv6 address", s, host)
		}
	default:
		if _, err := netip.ParseAddr(host); err != nil && !isHostName(host) {
			return "", fmt.Errorf("listen address %q: bad host %q (expected an IP address or a host name)", s, host)
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// isHostName reports whether h looks like a DNS name: labels of letters, digits, '-' and
// '_', not starting with '-'.
func isHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// IsWildcard reports whether the host of a listen address (as ParseListenAddr returns it)
// binds every interface.
func IsWildcard(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}
