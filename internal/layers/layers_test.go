package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/godist/godist/"

// layer of each package, bottom first; a package may import only packages of its own
// layer or below (and never one of the same layer it is not listed as allowed to).
var layer = map[string]int{
	"internal/child": 0, "internal/filesum": 0, "internal/treesnap": 0, "internal/tail": 0, "internal/proc": 0, "internal/mdtest": 0, "proto": 0, "gotest": 0, "xspec": 0, "channel": 0,
	"rsync":   1,             // sync
	"gateway": 2,             // transports
	"worker":  3, "serve": 3, // the worker side
	"gobuild": 4, "scheduler": 4, "scheduler/sim": 4, "ledger": 4, "report": 4, "resultcache": 4, "timeline": 4, "deploy": 5, "runner": 6, // the master side
	"cmd/godist": 7,
}

// forbidden are imports that the layers would allow but the design does not.
var forbidden = map[string][]string{
	"worker": {"gateway", "rsync"}, // the worker side does not import the master's transports
	"serve":  {"gateway", "rsync"},
}

func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		if strings.HasPrefix(pkg, "fixtures") || strings.HasPrefix(pkg, "internal/difftest") || strings.HasPrefix(pkg, "internal/benchreal") || strings.HasPrefix(pkg, "internal/sshdtest") || strings.HasPrefix(pkg, "internal/dockertest") || strings.HasPrefix(pkg, "internal/netnstest") || strings.HasPrefix(pkg, "internal/chromiumtest") || strings.HasPrefix(pkg, "internal/chaos") || strings.HasPrefix(pkg, "internal/layers") {
			continue // harnesses and test helpers, above everything
		}
		l, ok := layer[pkg]
		if !ok {
			t.Errorf("package %s has no layer: add it to this test and README.md's Layout", pkg)
			continue
		}
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			dep := strings.TrimPrefix(imp, mod)
			if dl, ok := layer[dep]; ok && dl > l {
				t.Errorf("%s (layer %d) imports %s (layer %d), above it", pkg, l, dep, dl)
			}
			for _, bad := range forbidden[pkg] {
				if dep == bad {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
