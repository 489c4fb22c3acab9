package main

import (
	"runtime"
	"runtime/debug"

	"github.com/godist/godist/proto"
)

// versionLine is what godist --version prints: the release (proto.Release; "dev" for a
// build from source, then with the commit it was built from when go recorded it), the Go
// version that built it, and its platform, e.g.
//
//	godist dev (3f2a9c1d0b7e, modified) go1.26.8 linux/amd64
func versionLine() string {
	rel := proto.Release
	if vcs := vcsOf(); vcs != "" {
		rel += " (" + vcs + ")"
	}
	return "godist " + rel + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// vcsOf is the commit this binary was built from, as go build stamped it (-buildvcs),
// with ", modified" for a tree with changes; "" when not stamped.
func vcsOf() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += ", modified"
	}
	return rev
}
