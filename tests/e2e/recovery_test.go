package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpunet/gpunet/testutil/localnet"
)

// TestProviderCrashRecovery kills the daemon with SIGKILL while it runs two
// leases; while it is down one lease closes on chain and a new order
// appears. After a restart the live container is untouched, the closed
// lease's container is gone, the new order gets a bid and runs, and no
// container exists twice. Then the chain's RPC goes away for a while: the
// daemon waits, tears nothing down, and catches up.
func TestProviderCrashRecovery(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	tenant := nw.Keys["tenant"]
	long := jobSDL(jobImage, `"-steps", "900", "-interval", "1s"`, "")
	flags := []string{"--from", "tenant", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID}

	a, out, err := deploy(t, nw, writeSDL(t, long), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy A: %v\n%s", err, out)
	}
	b, out, err := deploy(t, nw, writeSDL(t, long), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy B: %v\n%s", err, out)
	}
	before := leaseContainers(t, tenant, a.DSeq)
	if len(before) != 1 || len(leaseContainers(t, tenant, b.DSeq)) != 1 {
		t.Fatal("A or B is not running one container")
	}

	prov.stop(syscall.SIGKILL)
	if _, err := nw.CLI(context.Background(), append([]string{"tx", "market", "close-deployment", strconv.FormatUint(b.DSeq, 10), "--fees", "10000ugpn", "--gas", "400000", "--yes"}, flags...)...); err != nil {
		t.Fatal(err)
	}
	cDone := deployAsync(t, nw, writeSDL(t, long), "--deposit", "5000000ugpn", "--bid-window", "12")
	waitBlocks(t, nw, 3) // B's close and C's order are committed while the daemon is down
	hRestart := mustHeight(t, nw)
	prov.start()

	var c deployOutcome
	select {
	case c = <-cDone:
	case <-time.After(90 * time.Second):
		t.Fatal("deployment C did not run after the restart")
	}
	if c.err != nil {
		t.Fatalf("deploy C: %v\n%s", c.err, c.out)
	}
	waitNoContainers(t, tenant, b.DSeq)
	after := leaseContainers(t, tenant, a.DSeq)
	if len(after) != 1 || after[0].ID != before[0].ID || after[0].State.StartedAt != before[0].State.StartedAt ||
		after[0].State.Status != "running" || after[0].RestartCount != 0 {
		t.Fatalf("A's container changed across the crash:\nbefore %+v\nafter  %+v", before[0], after)
	}
	if cs := leaseContainers(t, tenant, c.res.DSeq); len(cs) != 1 {
		t.Fatalf("C has %d containers, want 1", len(cs))
	}
	prov.waitLog(5*time.Second, "containers adopted", fmt.Sprintf("/%d/1/1", a.DSeq))
	prov.waitLog(5*time.Second, "removing containers of a lease closed while away", fmt.Sprintf("/%d/1/1", b.DSeq))
	// The restarted daemon attests the lease it adopted, running.
	if v := awaitAttestationAfter(t, nw, prov.addr, hRestart, 30*time.Second); v.Attestation.ActiveLeases < 1 || len(v.Down) != 0 {
		t.Errorf("first attestation after the restart: %+v; want A (adopted) attested running", v)
	}

	// C's start is on chain before the node goes away, so this phase is
	// about the outage alone (a start in flight across a node restart is
	// TestLeaseStartLostInANodeRestartIsSentAgain).
	for deadline := time.Now().Add(30 * time.Second); ; {
		leases, _ := deploymentLeases(t, nw, tenant, c.res.DSeq)
		if len(leases) == 1 && leases[0].State == "LEASE_STATE_ACTIVE" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("C's lease is not active on chain: %+v", leases)
		}
		time.Sleep(500 * time.Millisecond)
	}

	t.Run("chain RPC outage", func(t *testing.T) {
		node := nw.Nodes[0]
		h := mustHeight(t, nw)
		if err := nw.StopNode(node); err != nil {
			t.Fatal(err)
		}
		time.Sleep(8 * time.Second)
		if cs := leaseContainers(t, tenant, a.DSeq); len(cs) != 1 || cs[0].ID != before[0].ID || cs[0].State.Status != "running" {
			t.Fatalf("A's container touched during the outage: %+v", cs)
		}
		if err := nw.StartNode(node, false); err != nil {
			t.Fatal(err)
		}
		if err := nw.WaitForHeight(context.Background(), h+3, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		d, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "1"`, "")), "--deposit", "5000000ugpn", "--follow")
		if err != nil {
			t.Fatalf("deploy after the outage: %v\n%s", err, out)
		}
		if len(d.Closed) != 1 || d.Closed[0].Reason != "workload_completed" {
			t.Fatalf("after the outage: closed %+v", d.Closed)
		}
		if cs := leaseContainers(t, tenant, a.DSeq); len(cs) != 1 || cs[0].ID != before[0].ID || cs[0].State.Status != "running" {
			t.Fatalf("A's container touched after the outage: %+v", cs)
		}
		dKey := fmt.Sprintf("/%d/1/1", d.DSeq)
		prov.waitLog(10*time.Second, "lease closed", dKey, "reason=workload_completed")
		// The bid sent while the node was coming back is placed once, not
		// again by each reconcile that did not see it on chain yet.
		if n := countLines(prov.log(), "bid placed", dKey); n != 1 {
			t.Errorf("%d bids placed on D's order, want 1; daemon log:\n%s", n, prov.log())
		}
	})
}

// countLines counts the log lines that contain every part.
func countLines(log string, parts ...string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if lineHas(line, parts) {
			n++
		}
	}
	return n
}

func mustHeight(t *testing.T, nw *localnet.Network) int64 {
	t.Helper()
	h, err := nw.Nodes[0].Height(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLeaseStartLostInANodeRestartIsSentAgain: the provider's lease start
// waits in its node's mempool (the chain is halted: one of two validators
// is down) when that node restarts, which empties the mempool. When the
// chain moves again the daemon offers the same signed transaction to the
// node again, and the lease starts with no failed start and no retry at a
// later reconcile (which came 30 s later, past a 20-block start deadline).
//
// Two races make an attempt show nothing, and the scenario is then run
// again on a new deployment: the start lands in a block before the halt,
// or node0 had already put it in a block it proposed while the chain was
// halted and proposes that block again after its restart (CometBFT keeps
// its own proposals across a restart), so it was never lost. Each attempt
// reads only what the daemon logged since it began.
func TestLeaseStartLostInANodeRestartIsSentAgain(t *testing.T) {
	nw := startNetwork(t, 2)
	prov := startProvider(t, nw, "2000000000")
	tenant := nw.Keys["tenant"]
	long := jobSDL(jobImage, `"-steps", "900", "-interval", "1s"`, "")
	const resentLine = "no longer in the node's mempool; sent it again"

	for try := 1; ; try++ {
		if try > 3 {
			t.Fatalf("no attempt of three had its lease start lost in the restart; daemon log:\n%s", prov.log())
		}
		from := len(prov.log())
		done := make(chan deployed, 1)
		go func() {
			res, out, err := deploy(t, nw, writeSDL(t, long), "--deposit", "5000000ugpn", "--wait", "150s")
			done <- deployed{res, out, err}
		}()
		order, err := awaitOpenOrder(nw, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		dseq, _ := strconv.ParseUint(order.Dseq, 10, 64)
		key := fmt.Sprintf("/%d/1/1", dseq)
		// Halt the chain the moment the lease exists: the daemon's start
		// comes after the manifest and the container, seconds later.
		var leases []chainLease
		for deadline := time.Now().Add(60 * time.Second); len(leases) == 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no lease within 60 s")
			}
			leases, _ = deploymentLeases(t, nw, tenant, dseq)
		}
		if err := nw.StopNode(nw.Nodes[1]); err != nil {
			t.Fatal(err)
		}
		if leases, _ = deploymentLeases(t, nw, tenant, dseq); leases[0].State != "LEASE_STATE_PENDING" {
			t.Logf("try %d: the lease started before the chain halted", try)
			if err := nw.StartNode(nw.Nodes[1], false); err != nil {
				t.Fatal(err)
			}
			if d := <-done; d.err != nil {
				t.Fatalf("deploy: %v\n%s", d.err, d.out)
			}
			continue
		}
		sent := prov.waitLogAfter(from, 30*time.Second, "transaction sent; waiting for its block", "MsgStartLease")

		// node0 restarts, emptying its mempool, and both validators come back.
		halted := mustHeight(t, nw)
		if err := nw.StopNode(nw.Nodes[0]); err != nil {
			t.Fatal(err)
		}
		for _, n := range []*localnet.Node{nw.Nodes[1], nw.Nodes[0]} {
			if err := nw.StartNode(n, false); err != nil {
				t.Fatal(err)
			}
		}
		if err := nw.WaitForHeight(context.Background(), halted+1, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		// The daemon logs a resend as soon as the node takes the transaction
		// back, before a block can hold it: once the lease is active, the
		// line is there if the start was sent again.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
			leases, _ := deploymentLeases(t, nw, tenant, dseq)
			if len(leases) == 1 && leases[0].State == "LEASE_STATE_ACTIVE" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("try %d: lease not active 30 s after the restart: %+v; daemon log:\n%s", try, leases, prov.logAfter(from))
			}
		}
		if n := countLines(prov.logAfter(from), "start lease failed"); n != 0 {
			t.Fatalf("try %d: %d failed starts; daemon log:\n%s", try, n, prov.logAfter(from))
		}
		resent, ok := findLine(prov.logAfter(from), []string{resentLine})
		if !ok {
			t.Logf("try %d: the lease started with no resend: node0 proposed the start's block again after its restart", try)
			if d := <-done; d.err != nil {
				t.Fatalf("deploy: %v\n%s", d.err, d.out)
			}
			continue
		}
		t.Logf("try %d: start in flight: %s\nafter the restart: %s", try, sent, resent)
		prov.waitLogAfter(from, 10*time.Second, "lease started", key)
		if cs := leaseContainers(t, tenant, dseq); len(cs) != 1 || cs[0].State.Status != "running" {
			t.Fatalf("lease containers: %+v", cs)
		}
		if d := <-done; d.err != nil {
			t.Fatalf("deploy: %v\n%s", d.err, d.out)
		}
		return
	}
}
