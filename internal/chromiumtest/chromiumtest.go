// Package chromiumtest opens HTML files that godist writes (--timeline) in a real headless
// Chromium, for tests: the DOM after the page's load with the JavaScript errors it raised
// counted, and screenshots.
//
// Each call runs its own Chromium, with a profile in a directory of the test's, host name
// resolution turned off and a proxy on a closed loopback port, so a page that tried to
// load anything from the network could not. Chromium is Debian's package `chromium`; a
// test without it is skipped, unless GODIST_REQUIRE_SSHD is set (CI): then it fails.
package chromiumtest

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	pngdec "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godist/godist/internal/child"
)

// RequireEnv turns a missing Chromium into a failure (the same variable as sshd's).
const RequireEnv = "GODIST_REQUIRE_SSHD"

// Path is Chromium's executable; without one, t is skipped (or fails under RequireEnv).
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("chromium is not installed (%s is set: make deps installs it)", RequireEnv)
	}
	t.Skip("chromium is not installed (Debian package chromium)")
	return ""
}

// probe is the script that DumpDOM puts first in the page's <head>: it counts the page's
// JavaScript errors into the root element's data-errors (the last message into
// data-error), and on load writes the number of resources the page fetched into
// data-resources, then moves the pointer over the first element matching the selector of
// DumpDOM (if any) and writes into data-hovered the number of elements of class "hl".
const probe = `<script>
(function () {
  var d = document.documentElement, n = 0;
  d.setAttribute("data-errors", "0");
  window.addEventListener("error", function (e) { n++; d.setAttribute("data-errors", String(n)); d.setAttribute("data-error", String(e.message)); });
  window.addEventListener("load", function () {
    d.setAttribute("data-resources", String(performance.getEntriesByType("resource").length));
    var sel = d.getAttribute("data-hover"), el = sel ? document.querySelector(sel) : null;
    if (el) { el.dispatchEvent(new MouseEvent("mouseover", {bubbles: true})); d.setAttribute("data-hovered", String(document.querySelectorAll(".hl").length)); }
    d.setAttribute("data-loaded", "1");
  });
})();
</script>
`

// DOM is what DumpDOM read back.
type DOM struct {
	HTML      string // the serialized DOM after load
	Errors    int    // JavaScript errors raised
	LastError string // the last one's message
	Resources int    // resources fetched (images, scripts, styles, fonts)
	Hovered   int    // elements of class "hl" after the hover (-1: no element to hover)
}

// DumpDOM opens a copy of the HTML file page, with the probe script in it, in headless
// Chromium and reads back the DOM after load. hover, if not "", is a CSS selector of an
// element to move the pointer over once loaded.
func DumpDOM(ctx context.Context, t testing.TB, page, hover string) DOM {
	t.Helper()
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("<head>"))
	if i < 0 {
		t.Fatalf("%s: no <head> to put the probe in", page)
	}
	i += len("<head>")
	var withProbe bytes.Buffer
	withProbe.Write(b[:i])
	withProbe.WriteString(probe)
	withProbe.Write(b[i:])
	if hover != "" {
		out := bytes.Replace(withProbe.Bytes(), []byte("<html"), []byte(`<html data-hover="`+strings.ReplaceAll(hover, `"`, "&quot;")+`"`), 1)
		withProbe.Reset()
		withProbe.Write(out)
	}
	copyPath := filepath.Join(t.TempDir(), "probe-"+filepath.Base(page))
	if err := os.WriteFile(copyPath, withProbe.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(ctx, t, "--dump-dom", fileURL(copyPath))
	dom := DOM{HTML: string(out), Hovered: -1}
	attr := func(name string) (string, bool) {
		// The root element's tag: <html lang="en" data-errors="0" ...>.
		start := strings.Index(dom.HTML, "<html")
		end := strings.Index(dom.HTML[max(start, 0):], ">")
		if start < 0 || end < 0 {
			return "", false
		}
		root := dom.HTML[start : start+end]
		k := strings.Index(root, " "+name+`="`)
		if k < 0 {
			return "", false
		}
		v := root[k+len(name)+3:]
		return v[:strings.IndexByte(v, '"')], true
	}
	if v, ok := attr("data-loaded"); !ok || v != "1" {
		t.Fatalf("chromium dumped %s before its load event ran the probe:\n%.2000s", page, dom.HTML)
	}
	num := func(name string) int {
		v, ok := attr(name)
		if !ok {
			return -1
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("probe attribute %s=%q is not a number", name, v)
		}
		return n
	}
	dom.Errors, dom.Resources, dom.Hovered = num("data-errors"), num("data-resources"), num("data-hovered")
	dom.LastError, _ = attr("data-error")
	return dom
}

// Screenshot writes a PNG of page, rendered in a window of width x height, to png.
func Screenshot(ctx context.Context, t testing.TB, page, png string, width, height int) {
	t.Helper()
	run(ctx, t, "--screenshot="+png, fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars", fileURL(page))
	if fi, err := os.Stat(png); err != nil || fi.Size() == 0 {
		t.Fatalf("chromium wrote no screenshot of %s to %s", page, png)
	}
}

func fileURL(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return "file://" + abs
}

// run runs headless Chromium with args and returns its stdout; it is killed, with what it
// started, when ctx ends or after a minute.
func run(ctx context.Context, t testing.TB, args ...string) []byte {
	t.Helper()
	bin := Path(t)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	base := []string{"--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--mute-audio",
		"--user-data-dir=" + t.TempDir(),
		// Nothing reaches the network: no host name resolves, and every request goes to a
		// closed port of this machine.
		"--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"}
	if os.Geteuid() == 0 {
		base = append(base, "--no-sandbox") // Chromium refuses to run as root with its sandbox
	}
	cmd := exec.Command(bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	p, err := child.Start(cmd)
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait(func() { p.Kill() }) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		p.Kill()
		<-done
		t.Fatalf("chromium %s: did not finish: %v; stderr:\n%s", strings.Join(args, " "), ctx.Err(), lastLines(stderr.String(), 10))
	}
	if err != nil {
		t.Fatalf("chromium %s: %v; stderr:\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 10))
	}
	return stdout.Bytes()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ArtifactPath is where a test keeps a file of name for people to look at after it: in
// $GODIST_TEST_ARTIFACTS if set, else in godist-test-artifacts under the temporary
// directory; the test log says where.
func ArtifactPath(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("GODIST_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "godist-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	t.Logf("artefact: %s", p)
	return p
}

// CountColor counts the pixels of the PNG file within tol of each channel of c.
func CountColor(t testing.TB, png string, c color.RGBA, tol int) int {
	t.Helper()
	f, err := os.Open(png)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := pngdec.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", png, err)
	}
	near := func(a uint32, b uint8) bool { d := int(a>>8) - int(b); return d <= tol && -d <= tol }
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(r, c.R) && near(g, c.G) && near(b, c.B) {
				n++
			}
		}
	}
	return n
}
