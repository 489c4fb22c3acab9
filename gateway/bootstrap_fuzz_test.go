package gateway

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzBootLine: whatever the far side prints, reading the bootstrap's answer and mapping
// a platform end in a value or a one-line error, never a panic.
func FuzzBootLine(f *testing.F) {
	f.Add("GODIST-BOOT1 HAVE Linux x86_64\n")
	f.Add("banner\nGODIST-BOOT1 FAIL checksum\n")
	f.Add("GODIST-BOOT1 NEED Plan9 mips\n")
	f.Add("GODIST-BOOT1 NOCHDIR cannot create directory '/x': Permission denied\n")
	f.Fuzz(func(t *testing.T, s string) {
		verb, rest, err := readBootLine(bufio.NewReader(strings.NewReader(s)))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		if verb == "FAIL" {
			t.Fatalf("FAIL returned as a verb")
		}
		if goos, goarch, err := platformOf(rest); err == nil && (goos == "" || goarch == "") {
			t.Fatalf("platformOf(%q) = %q, %q without an error", rest, goos, goarch)
		} else if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
	})
}
