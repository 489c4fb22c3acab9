package gotest

import (
	"bufio"
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// List is what a test binary run with -test.list reports: the names of its top-level tests,
// fuzz targets, examples and benchmarks, each in source order.
//
// Examples without an output comment are compiled but never run, and not listed. Fuzz targets
// are listed: without -test.fuzz a fuzz target runs as a test of its seed corpus, with one
// subtest per seed ("FuzzX/seed#0" for f.Add, "FuzzX/<file>" for testdata/fuzz/FuzzX/<file>).
type List struct {
	Tests      []string
	Fuzz       []string
	Examples   []string
	Benchmarks []string
}

// Runnable returns the names -test.run selects from, in the order the binary runs them:
// tests, then fuzz targets, then examples. Benchmarks are not among them.
func (l List) Runnable() []string {
	n := make([]string, 0, len(l.Tests)+len(l.Fuzz)+len(l.Examples))
	n = append(n, l.Tests...)
	n = append(n, l.Fuzz...)
	return append(n, l.Examples...)
}

// ParseList parses the output of `pkg.test -test.list .`. The binary runs TestMain for
// -test.list, so the output may hold lines TestMain printed; ParseList keeps only lines that
// are the name of a test, fuzz target, example or benchmark, and cannot tell those from a
// TestMain line that looks just like one.
func ParseList(out []byte) List {
	var l List
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name := strings.TrimSuffix(sc.Text(), "\r")
		if !isIdentifier(name) {
			continue
		}
		switch {
		case hasTestPrefix(name, "Test"):
			l.Tests = append(l.Tests, name)
		case hasTestPrefix(name, "Fuzz"):
			l.Fuzz = append(l.Fuzz, name)
		case hasTestPrefix(name, "Example"):
			l.Examples = append(l.Examples, name)
		case hasTestPrefix(name, "Benchmark"):
			l.Benchmarks = append(l.Benchmarks, name)
		}
	}
	return l
}

// hasTestPrefix reports whether name is prefix alone or prefix and then anything but a
// lower-case letter, the rule by which go test finds TestX, FuzzX, ExampleX and BenchmarkX.
func hasTestPrefix(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return !unicode.IsLower(r)
}

// isIdentifier reports whether s is a Go identifier.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !unicode.IsLetter(r) && r != '_' && (i == 0 || !unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}
