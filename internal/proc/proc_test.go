package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestProcessTable(t *testing.T) {
	if !Alive(os.Getpid()) || Parent(os.Getpid()) != os.Getppid() {
		t.Fatalf("this process: alive %v, parent %d (want %d)", Alive(os.Getpid()), Parent(os.Getpid()), os.Getppid())
	}
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & wait", "proc-test-marker")
	cmd.Env = append(os.Environ(), "PROC_TEST_VAR=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sh := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for len(Descendants(sh)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	kids := Descendants(sh)
	if len(kids) != 1 || Parent(kids[0]) != sh {
		t.Fatalf("descendants of the shell: %v, want its sleep", kids)
	}
	if !slices.Contains(Descendants(os.Getpid()), kids[0]) {
		t.Error("the sleep is not a descendant of this process")
	}
	if got := Matching("proc-test-marker", "wait"); !slices.Contains(got, sh) {
		t.Errorf("Matching found %v, want the shell %d", got, sh)
	}
	if !HasEnv(sh, "PROC_TEST_VAR") || HasEnv(sh, "PROC_TEST_NOPE") {
		t.Error("HasEnv does not tell the shell's environment")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if p, err := os.FindProcess(kids[0]); err == nil {
		p.Kill()
	}
	if Alive(sh) {
		t.Error("a reaped process is alive")
	}
}
