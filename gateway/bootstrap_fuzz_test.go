package gateway

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzBootLine: whatever the far side prints, reading the bootstrap's answer and mapping
// a platform end in a value or a one-line error, never a panic, having read no more than
// the banner limit.
func FuzzBootLine(f *testing.F) {
	f.Add("GODIST-BOOT1 HAVE Linux x86_64\n")
	f.Add("banner\nGODIST-BOOT1 FAIL checksum\n")
	f.Add("Welcome\nGODIST-BOOT1 NEED Plan9 mips\n")
	f.Add("GODIST-BOOT1 NOCHDIR cannot create directory '/x': Permission denied\n")
	f.Add("\x1b[1mWelcome\r\n\xff\xfe")
	f.Add("GODIST-BOOT1 NOCHDIR \r0\n")
	f.Add("GODIST-BOOT1 FAIL \x1b[2Jcleared\n")
	f.Fuzz(func(t *testing.T, s string) {
		r := strings.NewReader(s)
		b := newBooter(readOnly{r}, &bootstrapConfig{timeout: time.Minute})
		verb, rest, err := b.ask(context.Background(), "", "")
		if read := len(s) - r.Len(); read > maxBanner+8<<10 {
			t.Fatalf("read %d bytes", read)
		}
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		if verb == "FAIL" || verb == "NOCHDIR" {
			t.Fatalf("%s returned as a verb", verb)
		}
		if goos, goarch, err := platformOf(rest); err == nil && (goos == "" || goarch == "") {
			t.Fatalf("platformOf(%q) = %q, %q without an error", rest, goos, goarch)
		} else if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
	})
}

type readOnly struct{ r *strings.Reader }

func (r readOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
func (readOnly) Write(p []byte) (int, error)  { return len(p), nil }
func (readOnly) Close() error                 { return nil }
