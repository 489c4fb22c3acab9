package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// goFlag is how godist takes one flag of go test (go help testflag, go help test) or of
// go build (go help build).
type goFlag struct {
	bool bool // takes no value: -name, or -name=true|false (never "-name value")
	// to says where a taken flag goes: toTest (Config.TestFlags as -test.NAME=VALUE),
	// toBuild (Config.BuildFlags as -NAME=VALUE), or toOwn (a field of rootOptions,
	// registered in newRootCommand).
	to    int
	check func(v string) error // validates the value up front; nil takes any value
	usage string               // help text of a toTest or toBuild flag
	// refuse, if not empty, is the whole one-line message refusing the flag.
	refuse string
}

const (
	toOwn = iota
	toTest
	toBuild
)

// goFlags is every flag of go test and go build, by name without dash. godist's own
// one-letter flags (-n -C -v -x) are godist's, and looked up first.
var goFlags = map[string]goFlag{
	// go help testflag: flags of the test binaries.
	"run":          {to: toOwn},
	"skip":         {to: toOwn},
	"count":        {to: toOwn, check: checkCount},
	"short":        {to: toOwn, bool: true},
	"timeout":      {to: toOwn, check: checkTimeout},
	"failfast":     {to: toOwn, bool: true},
	"v":            {to: toOwn, bool: true},
	"shuffle":      {to: toOwn, check: checkShuffle},
	"bench":        {to: toOwn},
	"list":         {to: toOwn},
	"outputdir":    {to: toOwn},
	"artifacts":    {to: toOwn, bool: true},
	"coverprofile": {to: toOwn},
	"benchtime":    {to: toTest, check: checkBenchtime, usage: "run each benchmark for `T`: a duration, or Nx for N iterations"},
	"benchmem":     {to: toTest, bool: true, usage: "print memory allocation statistics for benchmarks"},
	"cpu":          {to: toTest, check: checkCPU, usage: "run tests and benchmarks with each GOMAXPROCS in `LIST` (1,2,4)"},
	"parallel":     {to: toTest, check: positive("a number of parallel tests"), usage: "run at most `N` tests of a process in parallel (default GOMAXPROCS)"},
	"fullpath":     {to: toTest, bool: true, usage: "show full file names in error messages"},

	"blockprofilerate":     {to: toTest, check: integer, usage: "runtime.SetBlockProfileRate(`N`) in each test process"},
	"memprofilerate":       {to: toTest, check: integer, usage: "runtime.MemProfileRate = `N` in each test process"},
	"mutexprofilefraction": {to: toTest, check: integer, usage: "runtime.SetMutexProfileFraction(`N`) in each test process"},

	"cpuprofile":   {refuse: profileRefusal("cpuprofile")},
	"memprofile":   {refuse: profileRefusal("memprofile")},
	"blockprofile": {refuse: profileRefusal("blockprofile")},
	"mutexprofile": {refuse: profileRefusal("mutexprofile")},
	"trace":        {refuse: profileRefusal("trace")},
	"fuzz":         {refuse: "-fuzz: run fuzzing with go test -fuzz (godist runs fuzz seeds as tests)"},
	"fuzztime":     {refuse: "-fuzztime: run fuzzing with go test -fuzz (godist runs fuzz seeds as tests)"},
	"fuzzminimizetime": {
		refuse: "-fuzzminimizetime: run fuzzing with go test -fuzz (godist runs fuzz seeds as tests)"},

	// go help test: flags of go test itself.
	"json": {to: toOwn, bool: true},
	"vet":  {to: toOwn, check: checkVet},
	"c":    {bool: true, refuse: "-c: godist builds test binaries to run them; use go test -c to keep them"},
	"o":    {refuse: "-o: godist builds test binaries to run them; use go test -c -o to keep them"},
	"exec": {refuse: "-exec: godist runs the test binaries on its gateways (--tx exec=COMMAND runs a worker through a command); use go test -exec"},
	"i":    {bool: true, refuse: "-i: go test no longer has -i (removed in Go 1.20)"},

	// go help build: build flags.
	"race":          {to: toOwn, bool: true},
	"tags":          {to: toOwn},
	"cover":         {to: toOwn, bool: true},
	"covermode":     {to: toBuild, check: checkCovermode, usage: "coverage `MODE`: set, count or atomic (sets -cover)"},
	"coverpkg":      {to: toBuild, usage: "apply coverage analysis to packages matching `PATTERNS` (sets -cover)"},
	"a":             {to: toBuild, bool: true, usage: "force rebuilding of packages that are already up-to-date"},
	"asan":          {to: toBuild, bool: true, usage: "build with the address sanitizer"},
	"msan":          {to: toBuild, bool: true, usage: "build with the memory sanitizer"},
	"asmflags":      {to: toBuild, usage: "pass `[PATTERN=]ARGS` to each go tool asm, repeatable"},
	"gcflags":       {to: toBuild, usage: "pass `[PATTERN=]ARGS` to each go tool compile, repeatable"},
	"ldflags":       {to: toBuild, usage: "pass `[PATTERN=]ARGS` to each go tool link, repeatable"},
	"gccgoflags":    {to: toBuild, usage: "pass `[PATTERN=]ARGS` to each gccgo compile and link, repeatable"},
	"buildmode":     {to: toBuild, usage: "build `MODE` (see go help buildmode)"},
	"buildvcs":      {to: toBuild, bool: true, check: checkBuildvcs, usage: "stamp binaries with version control information: true, false or auto"},
	"compiler":      {to: toBuild, check: oneOf("compiler", "gc", "gccgo"), usage: "`NAME` of the compiler: gc or gccgo"},
	"installsuffix": {to: toBuild, usage: "`SUFFIX` for the package installation directory"},
	"linkshared":    {to: toBuild, bool: true, usage: "link against shared libraries made with -buildmode=shared"},
	"mod":           {to: toBuild, check: oneOf("module download mode", "readonly", "vendor", "mod"), usage: "module download `MODE`: readonly, vendor or mod"},
	"modcacherw":    {to: toBuild, bool: true, usage: "leave new module cache directories read-write"},
	"modfile":       {to: toBuild, usage: "read (and maybe write) `FILE` instead of go.mod"},
	"overlay":       {to: toBuild, usage: "read a build overlay from JSON `FILE`"},
	"pgo":           {to: toBuild, usage: "profile-guided optimization `FILE`, auto or off"},
	"pkgdir":        {to: toBuild, usage: "install and load all packages from `DIR`"},
	"toolexec":      {to: toBuild, usage: "run toolchain programs through `'CMD ARGS'`"},
	"trimpath":      {to: toBuild, bool: true, usage: "remove file system paths from the binaries"},
	"p":             {refuse: "-p: godist runs one test process per worker; use -n N (-n 1 runs one at a time), or go test -p"},
	"work":          {bool: true, refuse: "-work: godist builds in its own temporary directory; use go test -work"},
	// go build's -n (print the commands) and -x (print and run them) are godist's -n
	// (workers) and -x (exit first); -v is go test -v; -C is go's -C.
}

// testBinaryFlags are go test's flags that it also takes as -test.NAME (go help testflag:
// "Each of these flags is also recognized with an optional 'test.' prefix").
var testBinaryFlags = map[string]bool{
	"artifacts": true, "bench": true, "benchmem": true, "benchtime": true, "blockprofile": true,
	"blockprofilerate": true, "count": true, "coverprofile": true, "cpu": true, "cpuprofile": true,
	"failfast": true, "fullpath": true, "fuzz": true, "fuzzminimizetime": true, "fuzztime": true,
	"list": true, "memprofile": true, "memprofilerate": true, "mutexprofile": true,
	"mutexprofilefraction": true, "outputdir": true, "parallel": true, "run": true, "short": true,
	"shuffle": true, "skip": true, "timeout": true, "trace": true, "v": true,
}

func profileRefusal(name string) string {
	return fmt.Sprintf("-%s is not supported (a package's tests run in several processes); pass -test.%s=FILE after -- for one file per process, or use go test", name, name)
}

// vetAnalyzers are the analyzers go test -vet takes (cmd/go's passAnalyzersToVet, Go 1.26).
var vetAnalyzers = map[string]bool{
	"appends": true, "asmdecl": true, "assign": true, "atomic": true, "bool": true, "bools": true,
	"buildtag": true, "buildtags": true, "cgocall": true, "composites": true, "copylocks": true,
	"defers": true, "directive": true, "errorsas": true, "framepointer": true, "hostport": true,
	"httpresponse": true, "ifaceassert": true, "loopclosure": true, "lostcancel": true,
	"methods": true, "nilfunc": true, "printf": true, "rangeloops": true, "shift": true,
	"sigchanyzer": true, "slog": true, "stdmethods": true, "stdversion": true,
	"stringintconv": true, "structtag": true, "testinggoroutine": true, "tests": true,
	"timeformat": true, "unmarshal": true, "unreachable": true, "unsafeptr": true,
	"unusedresult": true, "waitgroup": true,
}

// A check of a flag's value returns nil or an error saying what is accepted ("a count of
// 1 or more"); the caller names the flag and the value.

func checkCount(v string) error {
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || n < 0:
		return errors.New("a count of 1 or more")
	case n == 0:
		return errors.New("a count of 1 or more (go test -count 0 runs only the examples)")
	}
	return nil
}

func checkTimeout(v string) error {
	if d, err := time.ParseDuration(v); err != nil || d < 0 {
		return errors.New("a duration such as 30s or 10m (0 disables the timeout)")
	}
	return nil
}

func checkShuffle(v string) error {
	if v == "on" || v == "off" {
		return nil
	}
	if _, err := strconv.ParseInt(v, 10, 64); err != nil {
		return errors.New("off, on, or an integer seed")
	}
	return nil
}

// checkBenchtime takes what testing's -test.benchtime takes: a positive duration or Nx.
func checkBenchtime(v string) error {
	if n, ok := strings.CutSuffix(v, "x"); ok {
		if i, err := strconv.ParseInt(n, 10, 0); err == nil && i > 0 {
			return nil
		}
	} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return nil
	}
	return errors.New("a duration such as 1s, or Nx for N iterations such as 100x")
}

// checkCPU takes what testing's -test.cpu takes: a comma-separated list of positive
// numbers (empty elements and spaces around numbers are ignored).
func checkCPU(v string) error {
	for e := range strings.SplitSeq(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if n, err := strconv.Atoi(e); err != nil || n < 1 {
			return errors.New("a comma-separated list of GOMAXPROCS values of 1 or more, such as 1,2,4")
		}
	}
	return nil
}

// checkVet takes what go test -vet takes: off, all, or a comma-separated list of analyzers.
func checkVet(v string) error {
	if v == "" {
		return nil
	}
	const accepted = `off, all, or a comma-separated list of vet analyzers (see go tool vet help)`
	var single string
	n := 0
	for a := range strings.SplitSeq(v, ",") {
		switch {
		case a == "off" || a == "all":
			single = a
		case vetAnalyzers[a]:
			n++
		default:
			return errors.New(accepted)
		}
	}
	if single != "" && n > 0 {
		return fmt.Errorf("%s alone, or a list of analyzers without it", single)
	}
	return nil
}

func checkCovermode(v string) error {
	switch v {
	case "set", "count", "atomic":
		return nil
	}
	return errors.New("set, count or atomic")
}

func checkBuildvcs(v string) error {
	if v == "auto" {
		return nil
	}
	if _, err := strconv.ParseBool(v); err != nil {
		return errors.New("true, false or auto")
	}
	return nil
}

func positive(what string) func(string) error {
	return func(v string) error {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return fmt.Errorf("%s of 1 or more", what)
		}
		return nil
	}
}

func integer(v string) error {
	if _, err := strconv.Atoi(v); err != nil {
		return errors.New("an integer")
	}
	return nil
}

func oneOf(what string, values ...string) func(string) error {
	return func(v string) error {
		for _, a := range values {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("a %s: %s", what, strings.Join(values, ", "))
	}
}

// passValue is the pflag.Value of a toTest or toBuild flag: each Set appends to one list
// in command-line order, so that repeated flags (-gcflags=a=-N -gcflags=b=-l) keep their
// order and go's "last match wins".
type passValue struct {
	name string
	bool bool
	dst  *[]flagValue
}

// flagValue is one go test or go build flag given on the command line.
type flagValue struct{ name, value string }

func (p *passValue) String() string { return "" }
func (p *passValue) Set(v string) error {
	*p.dst = append(*p.dst, flagValue{p.name, v})
	return nil
}
func (p *passValue) Type() string {
	if p.bool {
		return "bool"
	}
	return "string"
}

// addPassFlags registers every toTest and toBuild flag of goFlags on f, appending to dst.
func addPassFlags(f *pflag.FlagSet, dst *[]flagValue) {
	for name, g := range goFlags {
		if g.refuse != "" || g.to == toOwn {
			continue
		}
		fl := f.VarPF(&passValue{name: name, bool: g.bool, dst: dst}, name, "", g.usage)
		if g.bool {
			fl.NoOptDefVal = "true"
		}
	}
}
