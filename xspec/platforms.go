package xspec

import (
	"sort"
	"strings"
)

// ports lists the GOOS/GOARCH pairs of `go tool dist list` for Go 1.26.
var ports = []string{
	"aix/ppc64",
	"android/386",
	"android/amd64",
	"android/arm",
	"android/arm64",
	"darwin/amd64",
	"darwin/arm64",
	"dragonfly/amd64",
	"freebsd/386",
	"freebsd/amd64",
	"freebsd/arm",
	"freebsd/arm64",
	"illumos/amd64",
	"ios/amd64",
	"ios/arm64",
	"js/wasm",
	"linux/386",
	"linux/amd64",
	"linux/arm",
	"linux/arm64",
	"linux/loong64",
	"linux/mips",
	"linux/mips64",
	"linux/mips64le",
	"linux/mipsle",
	"linux/ppc64",
	"linux/ppc64le",
	"linux/riscv64",
	"linux/s390x",
	"netbsd/386",
	"netbsd/amd64",
	"netbsd/arm",
	"netbsd/arm64",
	"openbsd/386",
	"openbsd/amd64",
	"openbsd/arm",
	"openbsd/arm64",
	"openbsd/ppc64",
	"openbsd/riscv64",
	"plan9/386",
	"plan9/amd64",
	"plan9/arm",
	"solaris/amd64",
	"wasip1/wasm",
	"windows/386",
	"windows/amd64",
	"windows/arm64",
}

var (
	portSet   = map[string]bool{}
	goosSet   = map[string]bool{}
	goarchSet = map[string]bool{}

	// goosList and goarchList are the sorted, comma-separated known values,
	// for error messages.
	goosList, goarchList string
)

func init() {
	var oses, arches []string
	for _, p := range ports {
		goos, goarch, _ := strings.Cut(p, "/")
		portSet[p] = true
		if !goosSet[goos] {
			goosSet[goos] = true
			oses = append(oses, goos)
		}
		if !goarchSet[goarch] {
			goarchSet[goarch] = true
			arches = append(arches, goarch)
		}
	}
	sort.Strings(oses)
	sort.Strings(arches)
	goosList = strings.Join(oses, ", ")
	goarchList = strings.Join(arches, ", ")
}

// isPort reports whether goos/goarch is a port of `go tool dist list`.
func isPort(goos, goarch string) bool { return portSet[goos+"/"+goarch] }
