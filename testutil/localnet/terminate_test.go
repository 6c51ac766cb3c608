package localnet

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A node run by cosmovisor is a child of the process whose pid the network
// holds; cosmovisor may exit on SIGTERM before its child has. terminate
// must not return while the child still runs (the next test step opens the
// node's databases): here a shell that dies on SIGTERM leaves a child that
// ignores it, which terminate has to find and stop.
func TestTerminateStopsTheChildOfTheProcessItSignals(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sh -c 'trap "" TERM; while :; do sleep 0.05; done' & echo $!; wait`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if !alive(child) {
		t.Fatal("the child is not running")
	}
	start := time.Now()
	if err := terminate(cmd.Process.Pid, time.Second); err != nil {
		t.Fatal(err)
	}
	for range 20 { // SIGKILL is delivered, the kernel needs a moment
		if !alive(child) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if alive(child) {
		t.Errorf("terminate returned after %s with the child %d still running", time.Since(start), child)
	}
}
