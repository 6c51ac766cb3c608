package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	sdkmath "cosmossdk.io/math"

	"github.com/gpunet/gpunet/testutil/localnet"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Billing only while attested (issue 22): the provider daemon attests its
// active leases every attest_interval blocks; a provider silent for
// attest_grace blocks loses its leases (provider_unresponsive), is paid
// only up to its last attestation and is slashed to the community pool; a
// lease whose containers are gone is attested down and stops paying.

// uptimeNetwork is adversarialNetwork (no community tax: the pool moves
// only by gpunet's fault rules) with quick attestations: every 2 blocks,
// silence after 12, a lease down twice in a row closes.
func uptimeNetwork(t *testing.T) *localnet.Network {
	t.Helper()
	return startNetworkEdited(t, localnet.Options{Validators: 1}, func(c *localnet.Config) {
		appState, _ := c.Genesis["app_state"].(map[string]any)
		appState["distribution"] = map[string]any{"params": map[string]any{"community_tax": "0.000000000000000000"}}
		provider, _ := appState["provider"].(map[string]any)
		params, _ := provider["params"].(map[string]any)
		params["attest_interval"], params["attest_grace"], params["max_down_attestations"] = "2", "12", 2
	})
}

// billing is what the ledger says of one lease's money: its price, when
// its payment started accruing (on its account's whole-second clock).
type billing struct {
	rate    sdkmath.LegacyDec
	runFrom time.Time
}

func leaseBilling(t *testing.T, lg *ledger, owner string, dseq uint64) billing {
	t.Helper()
	var created, started time.Time
	var rate sdkmath.LegacyDec
	for _, b := range lg.blocks {
		for _, ev := range b.Events {
			switch e := ev.(type) {
			case *escrowtypes.EventAccountCreated:
				if e.Id.Owner == owner && e.Id.Dseq == dseq {
					created = b.Time
				}
			case *markettypes.EventLeaseCreated:
				if e.Id.Order.Owner == owner && e.Id.Order.Dseq == dseq {
					rate = e.Price.Amount
				}
			case *markettypes.EventLeaseStarted:
				if e.Id.Order.Owner == owner && e.Id.Order.Dseq == dseq {
					started = b.Time
				}
			}
		}
	}
	if created.IsZero() || started.IsZero() || rate.IsNil() {
		t.Fatalf("deployment %d: account created %v, lease started %v, price %v: not all in the ledger", dseq, created, started, rate)
	}
	return billing{rate: rate, runFrom: created.Add(started.Sub(created).Truncate(time.Second))}
}

// owed is what the lease earned from its start to until, to the ugpn.
func (b billing) owed(until time.Time) int64 {
	paid, _ := escrowtypes.Accrue(b.rate, int64(until.Sub(b.runFrom)/time.Second), sdkmath.LegacyZeroDec())
	return paid.Int64()
}

// lastBlockWith is the time and height of the last block before height
// before whose events satisfy match.
func lastBlockWith(lg *ledger, before int64, match func(any) bool) (time.Time, int64) {
	var at time.Time
	var h int64
	for _, b := range lg.blocks {
		if b.Height >= before {
			break
		}
		for _, ev := range b.Events {
			if match(ev) {
				at, h = b.Time, b.Height
			}
		}
	}
	return at, h
}

func attestedBy(provider string) func(any) bool {
	return func(ev any) bool {
		a, ok := ev.(*markettypes.EventProviderAttested)
		return ok && a.Provider == provider
	}
}

// TestUptimeSilentProviderIsClosedAndPaidToItsLastAttestation: a daemon
// frozen (SIGSTOP) for less than the grace changes nothing once it is
// thawed; frozen past the grace, its lease closes as provider_unresponsive,
// the tenant pays only up to the last attestation, to the ugpn, and the
// provider is slashed silence_slash of its bond to the community pool.
func TestUptimeSilentProviderIsClosedAndPaidToItsLastAttestation(t *testing.T) {
	nw := uptimeNetwork(t)
	prov := startProvider(t, nw, "2000000000")
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr := nw.Keys["tenant"]
	escrow, market := moduleAccounts(t, nw)
	bond := bondOf(t, nw, prov.addr)
	h0 := chain.height()

	res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "900", "-interval", "1s"`, "")), "--deposit", "50000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	t.Logf("deployment %d running by height %d", res.DSeq, chain.height())
	freeze := func() {
		if err := prov.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatalf("freeze the daemon: %v (has it exited? its log follows)", err)
		}
	}
	thaw := func() { _ = prov.cmd.Process.Signal(syscall.SIGCONT) }
	t.Cleanup(thaw) // before the harness stops it
	prov.waitLog(30*time.Second, "transaction sent; waiting for its block", "MsgAttest")

	// Frozen for half the grace: thawed, it attests again and nothing
	// happens to the lease or the bond.
	freeze()
	t.Logf("daemon frozen at height %d for 6 blocks", chain.height())
	waitBlocks(t, nw, 6)
	thaw()
	hThaw := chain.height()
	t.Logf("daemon thawed at height %d", hThaw)
	waitBlocks(t, nw, 14) // past where the grace would have ended
	if leases, ok := deploymentLeases(t, nw, tenantAddr, res.DSeq); !ok || len(leases) != 1 || leases[0].State != "LEASE_STATE_ACTIVE" {
		t.Fatalf("after a freeze shorter than the grace the lease is %+v (deployment there: %v), want it running", leases, ok)
	}
	mid := chain.ledger(hThaw, chain.height())
	if a := events[*markettypes.EventProviderAttested](mid); len(a) == 0 {
		t.Fatal("the thawed daemon did not attest again")
	}
	expectNoSlash(t, mid)

	// Frozen past the grace: the lease closes on the chain's own. Its
	// operator, overdue, withdraws by hand meanwhile: nothing past the last
	// attestation may come out (the exact total below would show it).
	freeze()
	t.Logf("daemon frozen at height %d past the grace", chain.height())
	waitBlocks(t, nw, 6)
	txAs(t, nw, "provider", "tx", "market", "withdraw-lease", "--lease", leaseFlag(tenantAddr, res.DSeq, 1, 1, prov.addr))
	awaitDeploymentGone(t, nw, tenantAddr, res.DSeq, 60*time.Second)
	thaw()
	h1 := chain.height()
	lg := chain.ledger(h0, h1)
	hClose := closedAs(t, lg, tenantAddr, res.DSeq, markettypes.CLOSE_REASON_PROVIDER_UNRESPONSIVE)
	lastAttest, _ := lastBlockWith(lg, hClose, attestedBy(prov.addr))
	owed := leaseBilling(t, lg, tenantAddr, res.DSeq).owed(lastAttest)
	paid := lg.paid(tenantAddr, res.DSeq)
	if paid.Gross != owed {
		t.Errorf("escrow paid %d gross; the lease earned %d up to the provider's last attestation at %s", paid.Gross, owed, lastAttest)
	}
	if cb := events[*escrowtypes.EventPaymentClawedBack](lg); len(cb) != 1 || cb[0].BilledUntil != lastAttest.Unix() || !cb[0].ClawedBack.IsPositive() {
		t.Errorf("claw-backs %+v: want one, billed until %d", cb, lastAttest.Unix())
	}
	lg.expect("tenant", tenantAddr, -owed)
	lg.expect("provider", prov.addr, paid.Net) // its bid deposit came back too
	slash := bond / 100
	slashes := events[*providertypes.EventProviderSlashed](lg)
	if len(slashes) != 1 || slashes[0].Reason != "provider_unresponsive" || slashes[0].Amount.Amount.Int64() != slash || slashes[0].Recipient != "community_pool" {
		t.Errorf("slashes %+v: want one of %d for provider_unresponsive, to the community pool", slashes, slash)
	}
	lg.expectPool(slash)
	lg.expect("escrow module", escrow, 0)
	lg.expect("market module", market, 0)
	if b := bondOf(t, nw, prov.addr); b != bond-slash {
		t.Errorf("provider bond %d, want %d after the silence slash", b, bond-slash)
	}
	var view struct {
		Provider struct {
			Uptime   string `json:"uptime"`
			Provider struct {
				Stats struct {
					Unresponsive flexInt `json:"leases_unresponsive"`
					Silences     flexInt `json:"silences"`
				} `json:"stats"`
			} `json:"provider"`
		} `json:"provider"`
	}
	cli(t, nw, nw.Nodes[0], &view, "query", "provider", "provider", prov.addr, "--output", "json")
	if s := view.Provider.Provider.Stats; s.Unresponsive != 1 || s.Silences != 1 {
		t.Errorf("provider stats %+v: want one unresponsive lease and one silence", s)
	}
	if u, err := sdkmath.LegacyNewDecFromStr(view.Provider.Uptime); err != nil || !u.LT(sdkmath.LegacyOneDec()) {
		t.Errorf("uptime %q after a silence: want below 1", view.Provider.Uptime)
	}
	// The thawed daemon learns of the close and removes the containers.
	prov.waitLog(30*time.Second, "lease closed", "reason=provider_unresponsive")
}

// TestUptimeKilledContainerIsAttestedDownAndStopsPaying: a container
// stopped behind the daemon's back (crash-loop closing off, so only the
// attestation can tell) is attested down: its payment stops at that
// attestation, and down twice in a row the lease closes as
// workload_failed, paid for the time it ran.
func TestUptimeKilledContainerIsAttestedDownAndStopsPaying(t *testing.T) {
	ensureWorkloadImage(t)
	nw := uptimeNetwork(t)
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{
		"crash_loop_restarts: 5     #": "crash_loop_restarts: -1    #",
	}})
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr := nw.Keys["tenant"]
	escrow, market := moduleAccounts(t, nw)
	h0 := chain.height()
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("64Mi", "", svcDef{"app", `"-sleep", "1h"`, ""})), "--deposit", "50000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	prov.waitLog(30*time.Second, "transaction sent; waiting for its block", "MsgAttest")
	c := serviceContainer(t, tenantAddr, res.DSeq, "app")
	timeout := 5
	if err := dockerClient(t).ContainerStop(context.Background(), c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	awaitDeploymentGone(t, nw, tenantAddr, res.DSeq, 60*time.Second)
	h1 := chain.height()
	lg := chain.ledger(h0, h1)
	hClose := closedAs(t, lg, tenantAddr, res.DSeq, markettypes.CLOSE_REASON_WORKLOAD_FAILED)
	var downs []*markettypes.EventLeaseHealth
	for _, e := range events[*markettypes.EventLeaseHealth](lg) {
		if e.Lease.Order.Dseq == res.DSeq && e.Health == markettypes.LEASE_HEALTH_DOWN {
			downs = append(downs, e)
		}
	}
	if len(downs) != 2 || downs[1].DownCount != 2 {
		t.Fatalf("down attestations %+v: want two in a row", downs)
	}
	if p := events[*escrowtypes.EventPaymentPaused](lg); len(p) != 1 {
		t.Errorf("payment paused %d times, want once", len(p))
	}
	firstDown, _ := lastBlockWith(lg, hClose, func(ev any) bool {
		e, ok := ev.(*markettypes.EventLeaseHealth)
		return ok && e.Lease.Order.Dseq == res.DSeq && e.DownCount == 1
	})
	owed := leaseBilling(t, lg, tenantAddr, res.DSeq).owed(firstDown)
	paid := lg.paid(tenantAddr, res.DSeq)
	if paid.Gross != owed {
		t.Errorf("escrow paid %d gross; the lease earned %d up to its first down attestation at %s", paid.Gross, owed, firstDown)
	}
	lg.expect("tenant", tenantAddr, -owed)
	lg.expect("provider", prov.addr, paid.Net)
	expectNoSlash(t, lg)
	lg.expect("escrow module", escrow, 0)
	lg.expect("market module", market, 0)
}

// attestationView is `query market attestation` as JSON.
type attestationView struct {
	Found       bool `json:"found"`
	Attestation struct {
		Height       flexInt `json:"height"`
		ActiveLeases flexInt `json:"active_leases"`
		Attestations flexInt `json:"attestations"`
	} `json:"attestation"`
	Down []struct {
		Lease chainLease `json:"lease"`
	} `json:"down"`
}

func attestationOf(t *testing.T, nw *localnet.Network, provider string) attestationView {
	t.Helper()
	var v attestationView
	cli(t, nw, nw.Nodes[0], &v, "query", "market", "attestation", provider, "--output", "json")
	return v
}

// awaitAttestationAfter waits for an attestation by provider at a height
// above h, and returns it.
func awaitAttestationAfter(t *testing.T, nw *localnet.Network, provider string, h int64, timeout time.Duration) attestationView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := attestationOf(t, nw, provider)
		if v.Found && int64(v.Attestation.Height) > h {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attestation by %s above height %d within %s (last: %+v)", provider, h, timeout, v)
		}
		time.Sleep(time.Second)
	}
}
