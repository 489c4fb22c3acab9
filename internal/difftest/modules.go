package difftest

import (
	"path/filepath"
	"strings"
)

// Module is one test suite to compare.
type Module struct {
	// Path and Version name a module fetched through the module proxy.
	Path, Version string
	// Dir, instead, is a local module (it is copied before every run).
	Dir string
	// Packages are the package patterns (default ./...).
	Packages []string
	// Flags are go test flags given to go test and godist alike, before the patterns.
	Flags []string
	// Ignore maps packages whose results are not compared to the reason.
	Ignore map[string]string
	// Flaky maps tests known to be flaky under plain go test too to the evidence.
	Flaky map[Key]string
	// Shape says what the suite exercises.
	Shape string
}

// Name is path@version, or the local directory's base name.
func (m Module) Name() string {
	if m.Dir != "" {
		return filepath.Base(m.Dir)
	}
	return m.Path + "@" + m.Version
}

// Modules are the public modules the harness knows, versions pinned. Each one's
// `go test ./...` passes or fails deterministically offline (as root: some suites have
// tests that fail when permissions do not apply) in well under a minute on 2 cores.
var Modules = []Module{
	{Path: "github.com/cespare/xxhash/v2", Version: "v2.3.0",
		Shape: "/v2 root package; dynamic/ has a heavy TestMain (it builds a Go plugin)"},
	{Path: "github.com/go-chi/chi/v5", Version: "v5.5.0",
		Shape: "/v5 root package; HTTP middleware tests on loopback with real sleeps and timeouts, t.Parallel"},
	{Path: "github.com/pelletier/go-toml/v2", Version: "v2.4.3",
		Shape: "/v2; many small packages, testdata readers, ~3000 subtests"},
	{Path: "github.com/golang-jwt/jwt/v5", Version: "v5.3.1",
		Shape: "/v5 root package dominant; reads key files from ../test"},
	{Path: "gopkg.in/yaml.v3", Version: "v3.0.1",
		Shape: "gopkg.in .v3 path; one gocheck Test function runs a whole suite"},
	{Path: "github.com/stretchr/testify", Version: "v1.12.1",
		Shape: "suite/ runs nested testing.RunTests (failing inner tests in a passing package); t.Parallel-heavy assert/; two assert tests fail as root"},
	{Path: "github.com/google/go-cmp", Version: "v0.7.0",
		Shape: "many small packages, internal/ ones, testdata golden file"},
	{Path: "github.com/BurntSushi/toml", Version: "v1.6.0",
		Shape: "one package with ~1200 subtests over the embedded toml-test corpus, seven without tests"},
	{Path: "github.com/spf13/cobra", Version: "v1.10.2",
		Shape: "one dominant package; as root a test panics (nil file) and strands the tests after it"},
	{Path: "go.uber.org/zap", Version: "v1.28.0",
		Shape: "many packages, goleak TestMain"},
	{Path: "github.com/spf13/afero", Version: "v1.15.0",
		Shape: "TestMain reading testdata (tarfs), zip testdata, t.Parallel"},
	{Path: "github.com/go-viper/mapstructure/v2", Version: "v2.5.0",
		Shape: "/v2 root package only; t.Parallel-heavy, ~1100 subtests"},
	{Path: "github.com/Masterminds/semver/v3", Version: "v3.5.0",
		Shape: "/v3 root package only"},
	{Path: "github.com/hashicorp/golang-lru/v2", Version: "v2.0.7",
		Shape: "/v2 root package and subpackages (simplelru, expirable with timers)",
		Flaky: map[Key]string{
			{"github.com/hashicorp/golang-lru/v2/expirable", "ExampleLRU"}:         lruFlaky,
			{"github.com/hashicorp/golang-lru/v2/expirable", "TestLoadingExpired"}: lruFlaky,
			{"github.com/hashicorp/golang-lru/v2/expirable", "TestLRUWithPurge"}:   lruFlaky,
		}},
	{Path: "github.com/fxamacker/cbor/v2", Version: "v2.10.0",
		Shape: "/v2 root package only, ~5800 tests and subtests"},
	{Path: "github.com/samber/lo", Version: "v1.53.0",
		Shape: "the two main packages' tests do not compile here (build failures); mutable/ passes"},
	{Path: "github.com/google/uuid", Version: "v1.6.0",
		Shape: "one small package"},
	{Path: "github.com/pkg/errors", Version: "v0.9.1",
		Shape: "no go.mod (one is written); its stack-trace tests want the source in a github.com/pkg/errors directory, so they fail in a copy"},
	{Path: "github.com/spf13/pflag", Version: "v1.0.9",
		Shape: "one package, many small tests"},
}

// lruFlaky is the evidence on golang-lru's expirable tests, which wait a fixed 100 ms for a
// background reaper.
const lruFlaky = "waits a fixed 100 ms for a background reaper; the package's own test binary, run alone 60 times " +
	"on the 2-core machine under load (load average 14), failed ExampleLRU 33, TestLoadingExpired 22, TestLRUWithPurge 9 times " +
	"(unloaded: ExampleLRU 1 in 40)"

// Fixtures is godist's fixtures module at dir: failing, crashing and hanging tests, run
// with -timeout 3s as the end-to-end tests run it.
func Fixtures(dir string) Module {
	return Module{Dir: dir, Flags: []string{"-timeout", "3s"},
		Ignore: map[string]string{
			"github.com/godist/godist/fixtures/flaky": "TestFlaky fails on its first attempt on each godist worker, by design (for --rerun-fails)",
		},
		Shape: "godist's fixtures: failures, panics, os.Exit, a hang, build failure, parallel, examples, fuzz seeds"}
}

// Lookup finds a module of Modules by path or path@version. An unknown path@version is a
// module of its own, with no shape; an unknown path without version is not found.
func Lookup(name string) (Module, bool) {
	path, version, hasVersion := strings.Cut(name, "@")
	for _, m := range Modules {
		if m.Path == path && (!hasVersion || m.Version == version) {
			return m, true
		}
	}
	if hasVersion && path != "" && version != "" {
		return Module{Path: path, Version: version}, true
	}
	return Module{}, false
}
