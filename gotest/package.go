package gotest

import (
	"fmt"
	"time"
)

// NoTestFiles returns the events go test -json writes for a package without test files, for
// which no binary is built or run: start, the "?   \tpkg\t[no test files]" line, and skip.
func NoTestFiles(pkg string, now func() time.Time) []Event {
	return packageOnly(pkg, now, fmt.Sprintf("?   \t%s\t[no test files]\n", pkg), ActionSkip, "")
}

// BuildFailed returns the events go test -json writes for a package whose test binary did
// not build, after the build-output and build-fail events of the build itself: start, the
// "FAIL\tpkg [build failed]" line, and fail with FailedBuild set to failedBuild, the ImportPath
// of the build-fail event (such as "example.com/p [example.com/p.test]").
func BuildFailed(pkg, failedBuild string, now func() time.Time) []Event {
	return packageOnly(pkg, now, fmt.Sprintf("FAIL\t%s [build failed]\n", pkg), ActionFail, failedBuild)
}

func packageOnly(pkg string, now func() time.Time, line, action, failedBuild string) []Event {
	if now == nil {
		now = time.Now
	}
	ev := func(e Event) Event {
		t := now()
		e.Time = &t
		e.Package = pkg
		return e
	}
	zero := 0.0
	return []Event{
		ev(Event{Action: ActionStart}),
		ev(Event{Action: ActionOutput, Output: validUTF8(line)}),
		ev(Event{Action: action, Elapsed: &zero, FailedBuild: failedBuild}),
	}
}
