package scheduler

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadDurations: any durations file loads or gives an error, never a panic, and a
// store that loads gives estimates and saves again.
func FuzzLoadDurations(f *testing.F) {
	f.Add([]byte(`{"version":1,"tests":{"p":{"TestA":0.5}},"startup":{"p":0.01}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"tests":{"p":null}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "d.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := LoadDurations(path)
		if err != nil {
			return
		}
		d.Estimates("p", []string{"TestA", "TestB"})
		d.Record("p", "TestC", 1)
		if err := d.Save(path); err != nil {
			t.Fatalf("a store that loaded does not save: %v", err)
		}
	})
}
