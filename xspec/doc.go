// Package xspec parses and validates gateway specs, the values of godist's
// --tx flag, and expands them into one Gateway per worker.
//
// The package is pure: it does no I/O, resolves no names and reads no
// ~/.ssh/config. Whether an ssh HOST is a real host or an alias is decided
// later, by the gateway package.
//
// # Grammar
//
//	spec   = [ count "*" ] type { "//" key }
//	count  = decimal integer, 1 .. MaxCount
//	type   = "popen"
//	       | "ssh=" [ USER "@" ] HOST [ ":" PORT ]
//	       | "socket=" HOST ":" PORT
//	       | "exec=" COMMAND
//	       | "docker=" IMAGE
//	key    = "id=" ID | "chdir=" DIR | "nice=" INT | "env:" NAME "=" [ VALUE ]
//	       | "via=" ID | "goos=" GOOS | "goarch=" GOARCH
//	       | "network=" NETWORK | "pull=" ( "missing" | "always" | "never" )
//
// with
//
//   - HOST: a host name, an IPv4 address, an alias of ~/.ssh/config
//     (letters, digits, '.', '-', '_'; not starting with '-'), or an IPv6
//     address in brackets, "[::1]" (an optional %zone is allowed inside).
//     A bare IPv6 address is refused: "ssh=::1" is ambiguous.
//   - USER: letters, digits, '.', '-', '_'; not starting with '-'.
//   - PORT: 1 .. 65535. Port is 0 when an ssh HOST has none.
//   - COMMAND: any non-blank text; it may contain spaces, '=', '/' and '//'
//     (see "Where keys start" below).
//   - IMAGE: a docker image reference, [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST], as docker
//     takes it, or an image id: NAME is components of lower-case letters and digits
//     (joined inside by '.', '_', '__' or dashes) separated by '/', at most 255 bytes; a
//     first component with '.' or ':', or "localhost", is the REGISTRY (a host name and
//     an optional port); TAG is 1 to 128 letters, digits, '_', '.', '-', not starting
//     with '.' or '-'; DIGEST is ALGORITHM:HEX (sha256: 64 lower-case hex digits). It
//     never starts with '-' and never contains "//".
//   - NETWORK: the docker network the containers join: letters, digits, '.', '-', '_'
//     starting with a letter or digit (docker's container:NAME is refused: such
//     containers would share that container's hostname). network= and pull=
//     are keys of docker= specs only; any other type refuses them.
//   - ID: 1 to 64 letters, digits, '.', '-', '_', starting with a letter or
//     digit.
//   - INT: a decimal integer in -20 .. 19.
//   - NAME: an environment variable name, [A-Za-z_][A-Za-z0-9_]*. Each NAME
//     may appear once; VALUE may be empty and may contain '='.
//   - GOOS, GOARCH: as listed by "go tool dist list" (Go 1.26). Either may
//     be given alone; when both are given they must be one of the listed
//     pairs.
//   - DIR: any non-empty text: the worker's working directory. For popen it
//     must exist on this machine; the other types make it on the far side if
//     it is missing (relative to where a login starts there). The gateway
//     package checks it when the gateway starts, and a DIR that cannot be
//     entered fails that start with "chdir DIR: REASON".
//
// No key may appear twice (env:NAME counts as key "env:NAME"). A spec must
// be valid UTF-8 and no part of it may contain a control character (NUL,
// tab, newline, DEL, ...) or another non-printing one (such as U+202E, a
// bidi override, or U+2028, a line separator): specs are quoted in
// messages and logs, and must read the same there as they act.
//
// Examples:
//
//	popen
//	4*popen//nice=10
//	ssh=alice@build1:2222//chdir=/srv/work//env:GOFLAGS=-mod=mod
//	ssh=[2001:db8::1]:22//goos=linux//goarch=arm64
//	socket=10.0.0.7:8022//id=rack7
//	exec=kubectl exec -i pod-0 -- sh//id=k8s
//	2*popen//via=k8s
//	4*docker=golang:1.26//chdir=/work//pull=never
//
// # Where keys start
//
// Outside an exec COMMAND and outside key values nothing can contain "//"
// (a docker IMAGE has single slashes only), so there every "//" starts a key, and a malformed key is reported
// ("popen//foo" has no '=', "popen//" has an empty key).
//
// Inside an exec COMMAND and inside any key value, "//" starts the next key
// only when it is followed by something shaped like a key: an ASCII letter,
// then letters, digits, '_' or '-', then '=' (as in "//id="), or "env:".
// Every other "//" is literal text, so these need no escaping:
//
//	exec=sh -c 'exec curl -s https://example.com/boot.sh | sh'
//	popen//env:GOPROXY=https://proxy.golang.org,direct
//	popen//chdir=/srv//work
//
// A key-shaped word that is not a known key is an error, not text:
// "exec=sh//chdri=/tmp" reports the unknown key "chdri" instead of silently
// running the command "sh//chdri=/tmp". The price is that a COMMAND or value
// cannot contain "//" followed directly by such a word and '=' (or by
// "env:"); there is no escape for it. Write the text differently, for
// example with shell quoting (sh reads /""/x=1 as //x=1) or "/./" in a
// path.
//
// # Canonical form
//
// Spec.String writes the canonical form: the count only when it is more
// than 1, the target as given, then the keys in the order id, chdir, nice,
// env:NAME (sorted by NAME), via, goos, goarch, network, pull. Parse(s.String()) gives back
// a Spec equal to s except for Raw.
//
// # Gateway ids
//
// Expand numbers gateways in command-line order, counting every gateway,
// from 0. A gateway whose spec has no id= gets the id "gw<k>", k being its
// position in that order; so "--tx popen --tx popen//id=x --tx popen" gives
// gw0, x, gw2. A spec with id=X and count 1 gives the id X; with count N>1
// it gives, ... X-<N-1>. Duplicate ids are an error, also when a
// given id happens to equal a generated one.
//
// via=ID must name exactly one gateway (so "via=X" for a spec "3*...//id=X"
// must be written via=X-0, via=X-1 or via=X-2) and that gateway must come
// from another spec. Chains are allowed; cycles are not.
package xspec
