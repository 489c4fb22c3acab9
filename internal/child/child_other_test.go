//go:build !unix

package child

import (
	"errors"
	"os/exec"
	"testing"
)

func TestStartRefuses(t *testing.T) {
	cmd := exec.Command("cmd", "/c", "exit")
	if _, err := Start(cmd); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Start = %v, want ErrUnsupported", err)
	}
	if cmd.Process != nil {
		t.Fatal("Start started it anyway")
	}
}
