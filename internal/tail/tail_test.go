package tail

import "testing"

func TestBufferKeepsTheTail(t *testing.T) {
	b := New(8)
	b.Write([]byte("first line\n"))
	b.Write([]byte("last\n\n"))
	if got := string(b.Bytes()); got != "e\nlast\n\n" {
		t.Fatalf("Bytes %q, want the last 8 bytes", got)
	}
	if got := b.LastLine(); got != "last" {
		t.Fatalf("LastLine %q, want %q", got, "last")
	}
	if got := New(4).LastLine(); got != "" {
		t.Fatalf("empty buffer: LastLine %q", got)
	}
}
