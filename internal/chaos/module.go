//go:build linux

package chaos

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FixturePackages are the packages of the fixtures module the chaos module copies: their
// outcomes under go test are deterministic (no parallel ordering, no timing, no
// crash), and between them they pass, fail, skip, nest subtests and run examples, fuzz
// seeds and a TestMain.
var FixturePackages = []string{"pass", "fail", "skip", "subtests", "slow", "examples", "fuzz", "testmain"}

// MarkedPackages is how many generated packages (m0, m1, ...) the chaos module has. Each
// test of them writes a marker file when it starts (see WriteModule), which is how the
// harness knows what runs where and when, without sleeping.
const MarkedPackages = 4

// WriteModule writes the module the chaos runs test into dir: FixturePackages copied from
// the fixtures module at fixtures, and MarkedPackages generated ones whose tests each
// start by writing a file MARKS/UID/PKG.TEST.PID holding GODIST_WORKER, where UID is
// the run's GODIST_TESTRUNUID (nothing is written without one, as under go test). marks
// must be an absolute path that every gateway's host sees as this machine does (local
// workers, and sshd on this machine without a chroot).
func WriteModule(dir, fixtures, marks string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module chaosmod\n\ngo 1.26\n"), 0o644); err != nil {
		return err
	}
	for _, p := range FixturePackages {
		if err := copyTree(filepath.Join(fixtures, p), filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("copying fixture %s: %w", p, err)
		}
	}
	for i := range MarkedPackages {
		name := fmt.Sprintf("m%d", i)
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name, name+".go"), []byte("package "+name+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name, name+"_test.go"), []byte(markedTests(name, i, marks)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// markedTests is the test file of generated package name: tests of different lengths
// (one long enough to be caught running), one failing, one skipping, one with a passing,
// a slow (marked) and a failing subtest. A subtest's marker has ~ for each / of its name.
func markedTests(name string, i int, marks string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `package %s

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mark records that t started, in this process, on this worker.
func mark(t *testing.T) {
	uid := os.Getenv("GODIST_TESTRUNUID")
	if uid == "" {
		return
	}
	dir := filepath.Join(%q, uid)
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, fmt.Sprintf("%s.%%s.%%d", strings.ReplaceAll(t.Name(), "/", "~"), os.Getpid()))
	os.WriteFile(file+".tmp", []byte(os.Getenv("GODIST_WORKER")), 0o644)
	os.Rename(file+".tmp", file)
}

func TestLong(t *testing.T) { mark(t); time.Sleep(1200 * time.Millisecond) }

func TestFails(t *testing.T) {
	mark(t)
	time.Sleep(100 * time.Millisecond)
	t.Errorf("fails, as it always does")
}

func TestSkips(t *testing.T) { mark(t); t.Skip("skips, as it always does") }

func TestSubs(t *testing.T) {
	mark(t)
	t.Run("ok", func(t *testing.T) { time.Sleep(100 * time.Millisecond) })
	t.Run("slow", func(t *testing.T) { mark(t); time.Sleep(700 * time.Millisecond) })
	t.Run("bad", func(t *testing.T) { t.Error("this subtest fails") })
}
`, name, marks, name)
	for j := range 6 {
		fmt.Fprintf(&b, "\nfunc TestQuick%d(t *testing.T) { mark(t); time.Sleep(%d * time.Millisecond) }\n", j, 60+40*((i+j)%5))
	}
	return b.String()
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
}

// Mark is one marker file: test Test of package Package started in process PID on
// gateway Worker.
type Mark struct {
	Package, Test, Worker string
	PID                   int
	At                    time.Time // when the file appeared
}

// readMarks lists the marker files under marks (of any run UID), oldest first.
func readMarks(marks string) []Mark {
	var out []Mark
	runs, _ := os.ReadDir(marks)
	for _, r := range runs {
		files, _ := os.ReadDir(filepath.Join(marks, r.Name()))
		for _, f := range files {
			name := f.Name()
			if strings.HasSuffix(name, ".tmp") {
				continue
			}
			parts := strings.Split(name, ".")
			if len(parts) != 3 {
				continue
			}
			var pid int
			if _, err := fmt.Sscanf(parts[2], "%d", &pid); err != nil {
				continue
			}
			file := filepath.Join(marks, r.Name(), name)
			w, _ := os.ReadFile(file)
			m := Mark{Package: "chaosmod/" + parts[0], Test: strings.ReplaceAll(parts[1], "~", "/"), Worker: string(w), PID: pid}
			if st, err := os.Stat(file); err == nil {
				m.At = st.ModTime()
			}
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}
