//go:build !unix

package runner

import "os"

// lockDir makes dir; without flock there is no lock: concurrent runs of one module share
// its binary directory unguarded.
func lockDir(dir string) (func(), error) {
	return func() {}, os.MkdirAll(dir, 0o755)
}
