package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// claimChildEnv names the port TestClaimPortAcrossProcesses's second
// process tries to claim; it exits 0 if the claim is refused, 3 if it
// got the port.
const claimChildEnv = "REPLICAD_E2E_CLAIM_CHILD"

func claimChild(p string) {
	port, err := strconv.Atoi(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if claimPort(port) {
		os.Exit(3)
	}
	os.Exit(0)
}

// TestClaimPortAcrossProcesses: a port freeAddr handed out is never
// handed out again, by this process or by another test process running
// meanwhile (a second go test run on the machine); a port nobody claimed
// is.
func TestClaimPortAcrossProcesses(t *testing.T) {
	addr := freeAddr(t)
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	if claimed.file == nil {
		t.Skip("the shared claim file cannot be opened here: claims are per process only")
	}
	if claimPort(port) {
		t.Fatalf("port %d handed out twice in one process", port)
	}
	run := func(port int) int {
		cmd := exec.Command(os.Args[0], "-test.run", "^$")
		cmd.Env = append(os.Environ(), claimChildEnv+"="+strconv.Itoa(port))
		err := cmd.Run()
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
		return -1
	}
	if code := run(port); code != 0 {
		t.Fatalf("another process claimed port %d, held here (exit %d)", port, code)
	}
	other := port + 1
	if other >= 32768 {
		other = port - 1
	}
	if claimed.ports[other] {
		t.Skipf("port %d is claimed here already", other)
	}
	if code := run(other); code != 3 {
		t.Fatalf("another process could not claim port %d, unclaimed here (exit %d)", other, code)
	}
}
