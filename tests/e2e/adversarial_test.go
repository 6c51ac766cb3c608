package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpunet/gpunet/tenant"
	"github.com/gpunet/gpunet/testutil/localnet"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// rivalPool is the lease subnet pool of a rival daemon that cannot start
// anything: blockLeaseSubnets takes all of it.
const rivalPool = "10.239.254.0/24"

// tenantCLI runs a tenant command (`gpunetd lease ...`) with the tenant's key.
func tenantCLI(t *testing.T, nw *localnet.Network, args ...string) (string, error) {
	t.Helper()
	return nw.CLI(context.Background(), append(args, "--from", "tenant", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID)...)
}

// moduleAccounts are the escrow and market module addresses.
func moduleAccounts(t *testing.T, nw *localnet.Network) (escrow, market string) {
	return moduleAddress(t, nw, "escrow"), moduleAddress(t, nw, "market")
}

// expectNoSlash fails if the ledger holds a slash.
func expectNoSlash(t *testing.T, lg *ledger) {
	t.Helper()
	if s := events[*providertypes.EventProviderSlashed](lg); len(s) != 0 {
		t.Errorf("a provider was slashed: %+v", s)
	}
}

// expectTenantPaidTheFee checks the ledger of a pending lease closed for
// the tenant's fault: no slash, the tenant paid the reservation fee of a
// CPU job to the community pool, and the provider's balance (its bid
// deposit back), its bond and the escrow and market modules are as before.
func expectTenantPaidTheFee(t *testing.T, nw *localnet.Network, lg *ledger, prov *providerProc, bond int64) {
	t.Helper()
	escrow, market := moduleAccounts(t, nw)
	expectNoSlash(t, lg)
	fee := reservationFee(t, cpuJobPrice)
	lg.expect("tenant", nw.Keys["tenant"], -fee)
	lg.expect("provider", prov.addr, 0)
	lg.expectPool(fee)
	lg.expect("escrow module", escrow, 0)
	lg.expect("market module", market, 0)
	if b := bondOf(t, nw, prov.addr); b != bond {
		t.Errorf("provider bond %d, was %d", b, bond)
	}
}

// closedAs returns the height of the deployment's lease close and checks
// its reason.
func closedAs(t *testing.T, lg *ledger, owner string, dseq uint64, want markettypes.CloseReason) int64 {
	t.Helper()
	h, ev := leaseEventHeight(lg.blocks, isLeaseClosed(owner, dseq))
	if ev == nil {
		t.Fatalf("no lease of deployment %d closed between %d and %d", dseq, lg.h0, lg.h1)
	}
	if r := ev.(*markettypes.EventLeaseClosed).Reason; r != want {
		t.Errorf("lease closed as %s, want %s", r.ReasonString(), want.ReasonString())
	}
	return h
}

// awaitModuleEmpty waits until a module account holds nothing.
func awaitModuleEmpty(t *testing.T, nw *localnet.Network, module string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for moduleBalance(t, nw, module) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("module %s still holds %d after %s", module, moduleBalance(t, nw, module), timeout)
		}
		time.Sleep(time.Second)
	}
}

// TestAdversarialTenantNeverSendsManifest: a tenant wins a provider's
// reservation and never sends its manifest (the griefing that used to get
// honest providers slashed). The daemon closes the pending lease itself
// after manifest_timeout, long before the start deadline: no slash, the
// provider's bond and balance intact, and the tenant pays the reservation
// fee — to the community pool (after the dispute window), not to anybody
// on the other side.
func TestAdversarialTenantNeverSendsManifest(t *testing.T) {
	nw := adversarialNetwork(t)
	prov := startProvider(t, nw, "2000000000")
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr := nw.Keys["tenant"]
	escrow, market := moduleAccounts(t, nw)
	bond := bondOf(t, nw, prov.addr)
	h0 := chain.height()

	// The tenant walks off before the auction ends: no manifest, ever.
	res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "1"`, "")), "--deposit", "5000000ugpn", "--bid-window", "5", "--wait", "2s")
	if err == nil {
		t.Fatalf("deploy returned before a lease, yet succeeded:\n%s", out)
	}
	lease := awaitLease(t, nw, tenantAddr, res.DSeq, prov.addr, 30*time.Second)
	prov.waitLog(40*time.Second, "no manifest within manifest_timeout")
	prov.waitLog(20*time.Second, "lease closed", "reason=manifest_missing")
	awaitDeploymentGone(t, nw, tenantAddr, res.DSeq, 20*time.Second)
	awaitModuleEmpty(t, nw, "market", 40*time.Second) // the fee leaves after dispute_window
	h1 := chain.height()

	lg := chain.ledger(h0, h1)
	if h := closedAs(t, lg, tenantAddr, res.DSeq, markettypes.CLOSE_REASON_MANIFEST_MISSING); h >= int64(lease.Deadline) {
		t.Errorf("closed at height %d, not before the start deadline %d", h, lease.Deadline)
	}
	expectNoSlash(t, lg)
	if w := events[*markettypes.EventDisputeWindowClosed](lg); len(w) != 1 {
		t.Errorf("dispute window events %+v, want one", w)
	}
	fee := reservationFee(t, cpuJobPrice)
	lg.expect("tenant", tenantAddr, -fee)
	lg.expect("provider", prov.addr, 0) // its bid deposit came back
	lg.expectPool(fee)
	lg.expect("escrow module", escrow, 0)
	lg.expect("market module", market, 0)
	if b := bondOf(t, nw, prov.addr); b != bond {
		t.Errorf("provider bond %d, was %d", b, bond)
	}
}

// TestAdversarialTenantWorkloadCannotStart: an image that cannot be pulled
// and a command the engine cannot run are the tenant's faults. The daemon
// closes at once with the typed reason; the provider loses nothing and the
// tenant pays the reservation fee to the community pool.
func TestAdversarialTenantWorkloadCannotStart(t *testing.T) {
	nw := adversarialNetwork(t)
	prov := startProvider(t, nw, "2000000000")
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr := nw.Keys["tenant"]
	bond := bondOf(t, nw, prov.addr)
	for _, c := range []struct {
		name, sdl string
		reason    markettypes.CloseReason
	}{
		{"image that cannot be pulled", jobSDL("gpunet/no-such-image:1", `"-steps", "1"`, ""), markettypes.CLOSE_REASON_IMAGE_UNAVAILABLE},
		{"command that cannot run", jobCommandSDL(jobImage, "/nonexistent"), markettypes.CLOSE_REASON_WORKLOAD_INVALID},
	} {
		t.Run(c.name, func(t *testing.T) {
			h0 := chain.height()
			res, out, err := deploy(t, nw, writeSDL(t, c.sdl), "--deposit", "5000000ugpn", "--follow", "--wait", "40s")
			if err == nil {
				t.Fatalf("deploy succeeded:\n%s", out)
			}
			prov.waitLog(20*time.Second, "lease closed", "reason="+c.reason.ReasonString())
			awaitDeploymentGone(t, nw, tenantAddr, res.DSeq, 20*time.Second)
			waitBlocks(t, nw, 1)
			lg := chain.ledger(h0, chain.height())
			closedAs(t, lg, tenantAddr, res.DSeq, c.reason)
			expectTenantPaidTheFee(t, nw, lg, prov, bond)
			if cs := leaseContainers(t, tenantAddr, res.DSeq); len(cs) != 0 {
				t.Errorf("containers left: %+v", cs)
			}
		})
	}
}

// startRival starts a second, cheaper daemon that takes manifests (and
// signs receipts for them) but can never start a workload: every lease
// subnet it may use is taken.
func startRival(t *testing.T, nw *localnet.Network) *providerProc {
	t.Helper()
	blockLeaseSubnets(t, rivalPool)
	return startProviderWith(t, nw, providerOpts{Key: "rival", GPUPrice: "2000000000", CPUPrice: "10000",
		Edits: map[string]string{"lease_subnets: 10.240.0.0/12": "lease_subnets: " + rivalPool}})
}

// keptReceipt is the tenant's kept manifest receipt from provider.
func keptReceipt(t *testing.T, nw *localnet.Network, dseq uint64, provider string) {
	t.Helper()
	rs, err := tenant.NewStore(nw.KeyringHome()).LoadReceipts(nw.Keys["tenant"], dseq)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Provider == provider && len(r.Signature) > 0 {
			return
		}
	}
	t.Fatalf("no receipt from %s kept for deployment %d: %+v", provider, dseq, rs)
}

// TestAdversarialProviderNeverStarts: a provider wins, accepts the manifest
// (and signs a receipt for it), then never starts. At the start deadline it
// is slashed and loses its bid deposit, both to the community pool; the
// group is auctioned again without it, an honest provider wins, and the
// workload runs there, paid from the same escrow.
func TestAdversarialProviderNeverStarts(t *testing.T) {
	nw := adversarialNetwork(t, "rival")
	honest := startProvider(t, nw, "2000000000")
	rival := startRival(t, nw)
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr := nw.Keys["tenant"]
	escrow, market := moduleAccounts(t, nw)
	rivalBond := bondOf(t, nw, rival.addr)
	h0 := chain.height()

	res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "1"`, "")), "--deposit", "5000000ugpn", "--bid-window", "5", "--follow", "--wait", "15s")
	if err == nil {
		t.Fatalf("deploy to a provider that cannot start succeeded:\n%s", out)
	}
	first := awaitLease(t, nw, tenantAddr, res.DSeq, rival.addr, 10*time.Second)
	if first.ID.Order.Oseq != 1 {
		t.Fatalf("first lease %+v", first)
	}
	rival.waitLog(10*time.Second, "manifest received")
	keptReceipt(t, nw, res.DSeq, rival.addr)
	rival.waitLog(10*time.Second, "deploy failed; will retry")

	// At the deadline: slashed, and the group goes to auction again.
	second := awaitLease(t, nw, tenantAddr, res.DSeq, honest.addr, 60*time.Second)
	if second.ID.Order.Oseq != 2 {
		t.Fatalf("re-auctioned lease %+v, want oseq 2", second)
	}
	if out, err := tenantCLI(t, nw, "lease", "send-manifest", fmt.Sprint(res.DSeq)); err != nil {
		t.Fatalf("send-manifest to the new winner: %v\n%s", err, out)
	}
	honest.waitLog(60*time.Second, "lease closed", "reason=workload_completed")
	awaitDeploymentGone(t, nw, tenantAddr, res.DSeq, 20*time.Second)
	waitBlocks(t, nw, 1)

	lg := chain.ledger(h0, chain.height())
	slashes := events[*providertypes.EventProviderSlashed](lg)
	slash := rivalBond * 5 / 100
	if len(slashes) != 1 || slashes[0].Owner != rival.addr || slashes[0].Amount.Amount.Int64() != slash || slashes[0].Recipient != "community_pool" {
		t.Fatalf("slashes %+v, want %d of the rival's bond to the community pool", slashes, slash)
	}
	if b := bondOf(t, nw, rival.addr); b != rivalBond-slash {
		t.Errorf("rival bond %d, want %d", b, rivalBond-slash)
	}
	if f := events[*markettypes.EventBidDepositForfeited](lg); len(f) != 1 || f[0].Lease.Provider != rival.addr {
		t.Errorf("forfeits %+v", f)
	}
	p := lg.paid(tenantAddr, res.DSeq)
	if p.Gross <= 0 {
		t.Fatalf("the workload was never paid for: %+v", p)
	}
	lg.expect("rival", rival.addr, -1_000_000) // its bid deposit
	lg.expect("honest provider", honest.addr, p.Net)
	lg.expect("tenant", tenantAddr, -p.Gross)
	lg.expectPool(slash + 1_000_000)
	lg.expect("escrow module", escrow, 0)
	lg.expect("market module", market, 0)
}

// TestAdversarialFalseManifestMissing: a provider accepts the manifest and
// signs a receipt, then closes the lease as manifest_missing to blame the
// tenant. The tenant disputes with the receipt: the provider is slashed to
// the community pool and the reservation fee comes back; the tenant is
// whole.
func TestAdversarialFalseManifestMissing(t *testing.T) {
	nw := adversarialNetwork(t, "rival")
	rival := startRival(t, nw)
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr := nw.Keys["tenant"]
	escrow, market := moduleAccounts(t, nw)
	rivalBond := bondOf(t, nw, rival.addr)
	h0 := chain.height()

	res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "1"`, "")), "--deposit", "5000000ugpn", "--bid-window", "3", "--follow", "--wait", "8s")
	if err == nil {
		t.Fatalf("deploy succeeded:\n%s", out)
	}
	lease := awaitLease(t, nw, tenantAddr, res.DSeq, rival.addr, 10*time.Second)
	rival.waitLog(10*time.Second, "manifest received")
	keptReceipt(t, nw, res.DSeq, rival.addr)

	// manifest_timeout (10 blocks) after the win, before the start deadline.
	chain.waitHeight(int64(lease.CreatedAt) + 10)
	txAs(t, nw, "rival", "tx", "market", "close-lease", "--lease", leaseFlag(tenantAddr, res.DSeq, 1, 1, rival.addr), "--reason", "manifest-missing")
	if b := moduleBalance(t, nw, "market"); b != reservationFee(t, "5600ugpn") {
		t.Errorf("market module holds %d after the close, want the held fee", b)
	}
	out, err = tenantCLI(t, nw, "lease", "dispute", fmt.Sprint(res.DSeq))
	if err != nil || !strings.Contains(out, "disputed in block") {
		t.Fatalf("lease dispute: %v\n%s", err, out)
	}
	waitBlocks(t, nw, 1)
	// A second dispute of the same close is refused.
	if out, err := tenantCLI(t, nw, "lease", "dispute", fmt.Sprint(res.DSeq)); err == nil {
		t.Errorf("second dispute succeeded:\n%s", out)
	}

	lg := chain.ledger(h0, chain.height())
	closedAs(t, lg, tenantAddr, res.DSeq, markettypes.CLOSE_REASON_MANIFEST_MISSING)
	d := events[*markettypes.EventLeaseDisputed](lg)
	slash := rivalBond * 5 / 100
	if len(d) != 1 || d[0].Slashed.Amount.Int64() != slash || d[0].FeeReturned.Amount.Int64() != reservationFee(t, "5600ugpn") {
		t.Fatalf("disputes %+v, want one slashing %d and returning the fee", d, slash)
	}
	if b := bondOf(t, nw, rival.addr); b != rivalBond-slash {
		t.Errorf("rival bond %d, want %d", b, rivalBond-slash)
	}
	lg.expect("tenant", tenantAddr, 0) // fee charged, then returned; escrow refunded
	lg.expect("rival", rival.addr, 0)  // bid deposit back; the slash is from its bond
	lg.expectPool(slash)
	lg.expect("escrow module", escrow, 0)
	lg.expect("market module", market, 0)
}

// openOrderID is an open order as `query market open-orders` shows it.
type openOrderID struct {
	Owner string `json:"owner"`
	Dseq  string `json:"dseq"`
	Gseq  int    `json:"gseq"`
	Oseq  int    `json:"oseq"`
}

// awaitOpenOrder returns the first open order once one appears.
func awaitOpenOrder(nw *localnet.Network, within time.Duration) (openOrderID, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var orders struct {
			Orders []struct {
				ID openOrderID `json:"id"`
			} `json:"orders"`
		}
		out, err := nw.CLI(context.Background(), "query", "market", "open-orders", "--output", "json")
		if err == nil && json.Unmarshal([]byte(localnet.LastJSON(out)), &orders) == nil && len(orders.Orders) > 0 {
			return orders.Orders[0].ID, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return openOrderID{}, fmt.Errorf("no open order appeared within %s", within)
}

// bidWhenOpen bids price from account `from` on the tenant's first open
// order as soon as one appears.
func bidWhenOpen(t *testing.T, nw *localnet.Network, from, price string) <-chan error {
	done := make(chan error, 1)
	go func() {
		id, err := awaitOpenOrder(nw, 60*time.Second)
		if err != nil {
			done <- err
			return
		}
		out, err := nw.CLI(context.Background(), "tx", "market", "create-bid", id.Owner, id.Dseq, fmt.Sprint(id.Gseq), fmt.Sprint(id.Oseq), price,
			"--deposit", "1000000ugpn", "--from", from, "--keyring-backend", "test", "--chain-id", nw.Config.ChainID,
			"--gas", "400000", "--fees", "10000ugpn", "--yes", "--output", "json")
		if err == nil && strings.Contains(out, `"code":0`) {
			done <- nil
		} else {
			done <- fmt.Errorf("bid from %s: %v %s", from, err, out)
		}
	}()
	return done
}

// TestAdversarialProviderWalksAway: a provider bids lowest, wins, and closes
// the pending lease (as a griefer would, to kill the tenant's deployment for
// the price of gas). Its bid deposit is forfeited to the community pool, the
// group is auctioned again without it, and the workload runs elsewhere.
func TestAdversarialProviderWalksAway(t *testing.T) {
	nw := adversarialNetwork(t, "rival")
	honest := startProvider(t, nw, "2000000000")
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr, rivalAddr := nw.Keys["tenant"], nw.Keys["rival"]
	escrow, market := moduleAccounts(t, nw)
	txAs(t, nw, "rival", "tx", "provider", "register", filepath.Join(repoRoot(), "examples", "provider.yaml"), "--bond", "600000000ugpn")
	h0 := chain.height()

	bid := bidWhenOpen(t, nw, "rival", "5000ugpn")
	res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "1"`, "")), "--deposit", "5000000ugpn", "--bid-window", "5", "--wait", "12s")
	if err := <-bid; err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatalf("deploy to a provider that is not there succeeded:\n%s", out)
	}
	awaitLease(t, nw, tenantAddr, res.DSeq, rivalAddr, 20*time.Second)
	txAs(t, nw, "rival", "tx", "market", "close-lease", "--lease", leaseFlag(tenantAddr, res.DSeq, 1, 1, rivalAddr), "--reason", "provider")
	// The rival may not bid on the group again.
	txFails(t, nw, "rival", "failed an earlier lease", "tx", "market", "create-bid", tenantAddr, fmt.Sprint(res.DSeq), "1", "2", "1ugpn", "--deposit", "1000000ugpn")

	second := awaitLease(t, nw, tenantAddr, res.DSeq, honest.addr, 30*time.Second)
	if second.ID.Order.Oseq != 2 {
		t.Fatalf("re-auctioned lease %+v, want oseq 2", second)
	}
	if out, err := tenantCLI(t, nw, "lease", "send-manifest", fmt.Sprint(res.DSeq)); err != nil {
		t.Fatalf("send-manifest to the new winner: %v\n%s", err, out)
	}
	honest.waitLog(60*time.Second, "lease closed", "reason=workload_completed")
	awaitDeploymentGone(t, nw, tenantAddr, res.DSeq, 20*time.Second)
	waitBlocks(t, nw, 1)

	lg := chain.ledger(h0, chain.height())
	expectNoSlash(t, lg) // walking away costs the deposit, not the bond
	p := lg.paid(tenantAddr, res.DSeq)
	if p.Gross <= 0 {
		t.Fatalf("the workload was never paid for: %+v", p)
	}
	lg.expect("rival", rivalAddr, -1_000_000)
	lg.expect("honest provider", honest.addr, p.Net)
	lg.expect("tenant", tenantAddr, -p.Gross)
	lg.expectPool(1_000_000)
	lg.expect("escrow module", escrow, 0)
	lg.expect("market module", market, 0)
}

// TestAdversarialBidSquatting: twenty providers fill an order with bids at
// the tenant's max price, the most the order takes. A provider that comes
// later with a cheaper bid still gets in (the most expensive bid is evicted;
// open bids hold no coins), wins, and runs the workload; a squatter trying
// again at max price is refused.
func TestAdversarialBidSquatting(t *testing.T) {
	var squatters []string
	for i := range 20 {
		squatters = append(squatters, fmt.Sprintf("squat%02d", i))
	}
	nw := adversarialNetwork(t, squatters...)
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr := nw.Keys["tenant"]
	escrow, market := moduleAccounts(t, nw)
	parallel := func(f func(name string)) {
		var wg sync.WaitGroup
		for _, s := range squatters {
			wg.Add(1)
			go func() { defer wg.Done(); f(s) }()
		}
		wg.Wait()
	}
	parallel(func(s string) {
		txAs(t, nw, s, "tx", "provider", "register", filepath.Join(repoRoot(), "examples", "provider.yaml"), "--bond", "500000000ugpn")
	})
	h0 := chain.height()
	done, order := deployJobInBackground(t, nw, "40")
	dseq := order.Dseq
	maxPrice := "5000000000ugpn" // the SDL's price: the order's max
	parallel(func(s string) {
		txAs(t, nw, s, "tx", "market", "create-bid", tenantAddr, dseq, "1", "1", maxPrice, "--deposit", "1000000ugpn")
	})
	var bids struct {
		Bids []struct {
			ID struct {
				Provider string `json:"provider"`
			} `json:"id"`
		} `json:"bids"`
	}
	cli(t, nw, nw.Nodes[0], &bids, "query", "market", "bids", tenantAddr, dseq, "1", "1", "--output", "json")
	if len(bids.Bids) != 20 {
		t.Fatalf("%d bids on the order, want 20", len(bids.Bids))
	}

	// An honest provider arrives with the order full: its cheaper bid
	// evicts one squatter's.
	honest := startProvider(t, nw, "2000000000")
	honest.waitLog(20*time.Second, "bid placed")
	var evicted string
	deadline := time.Now().Add(20 * time.Second)
	for evicted == "" && time.Now().Before(deadline) {
		cli(t, nw, nw.Nodes[0], &bids, "query", "market", "bids", tenantAddr, dseq, "1", "1", "--output", "json")
		left := map[string]bool{}
		for _, b := range bids.Bids {
			left[b.ID.Provider] = true
		}
		if left[honest.addr] {
			for _, s := range squatters {
				if !left[nw.Keys[s]] {
					evicted = s
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if evicted == "" || len(bids.Bids) != 20 {
		t.Fatalf("after the honest bid: %d bids, evicted %q", len(bids.Bids), evicted)
	}
	// The evicted squatter cannot come back at max price.
	txFails(t, nw, evicted, "must be cheaper", "tx", "market", "create-bid", tenantAddr, dseq, "1", "1", maxPrice, "--deposit", "1000000ugpn")
	d := awaitCompletedBy(t, nw, done, honest.addr)

	lg := chain.ledger(h0, chain.height())
	var closed []string
	for _, e := range events[*markettypes.EventBidClosed](lg) {
		if e.Reason == "evicted" {
			closed = append(closed, e.Id.Provider)
		}
	}
	if len(closed) != 1 || closed[0] != nw.Keys[evicted] {
		t.Errorf("evicted bids %v, want only %s's", closed, evicted)
	}
	p := lg.paid(tenantAddr, d.res.DSeq)
	lg.expect("evicted squatter", nw.Keys[evicted], 0)                          // its bid held nothing; a failed re-bid costs only its fee
	lg.expect("honest provider", honest.addr, p.Net-bondOf(t, nw, honest.addr)) // it registered (and bonded) mid-way
	lg.expect("tenant", tenantAddr, -p.Gross)
	lg.expectPool(0)
	lg.expect("escrow module", escrow, 0)
	lg.expect("market module", market, 0)
}

// TestAdversarialOverflowingSpec: a deployment whose resources overflow
// (256 replicas of 2^64-1 CPU millis) is signed and broadcast as raw bytes,
// past the CLI's own checks: CheckTx refuses it with x/market's named
// error, and nothing changes on chain (no fee, no deployment).
func TestAdversarialOverflowingSpec(t *testing.T) {
	nw := startNetwork(t, 1)
	node := nw.Nodes[0]
	tenantAddr := nw.Keys["tenant"]
	before := balanceCLI(t, nw, node, tenantAddr)

	hash := base64.StdEncoding.EncodeToString(make([]byte, 32))
	unsigned := fmt.Sprintf(`{"body":{"messages":[{"@type":"/gpunet.market.v1.MsgCreateDeployment","owner":%q,
	"groups":[{"name":"g","requirements":[],"resources":[{"count":256,"cpu_millis":"18446744073709551615","memory_bytes":"1073741824","storage_bytes":"0",
	"gpu":{"units":0,"models":[],"min_memory_mib":"0"}}],"max_price":{"denom":"ugpn","amount":"1000.000000000000000000"}}],
	"manifest_hash":%q,"deposit":{"denom":"ugpn","amount":"5000000"},"bid_window":"0"}],
	"memo":"","timeout_height":"0","extension_options":[],"non_critical_extension_options":[]},
	"auth_info":{"signer_infos":[],"fee":{"amount":[{"denom":"ugpn","amount":"10000"}],"gas_limit":"400000","payer":"","granter":""}},"signatures":[]}`, tenantAddr, hash)
	dir := t.TempDir()
	unsignedPath, signedPath := filepath.Join(dir, "unsigned.json"), filepath.Join(dir, "signed.json")
	if err := os.WriteFile(unsignedPath, []byte(unsigned), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if out, err := nw.CLI(ctx, "tx", "sign", unsignedPath, "--from", "tenant", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID, "--output-document", signedPath); err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	encoded, err := nw.CLI(ctx, "tx", "encode", signedPath)
	if err != nil {
		t.Fatalf("encode: %v\n%s", err, encoded)
	}
	var res struct {
		TxResponse struct {
			Code      uint32 `json:"code"`
			Codespace string `json:"codespace"`
			RawLog    string `json:"raw_log"`
		} `json:"tx_response"`
	}
	httpJSON(t, "POST", node.APIURL()+"/cosmos/tx/v1beta1/txs", map[string]string{"tx_bytes": strings.TrimSpace(encoded), "mode": "BROADCAST_MODE_SYNC"}, &res)
	if res.TxResponse.Codespace != markettypes.ModuleName || res.TxResponse.Code != markettypes.ErrResourcesTooLarge.ABCICode() || !strings.Contains(res.TxResponse.RawLog, "cpu_millis") {
		t.Fatalf("CheckTx answered %+v, want %s code %d naming cpu_millis", res.TxResponse, markettypes.ModuleName, markettypes.ErrResourcesTooLarge.ABCICode())
	}
	waitBlocks(t, nw, 2)
	if after := balanceCLI(t, nw, node, tenantAddr); after != before {
		t.Errorf("tenant balance moved %d for a refused transaction", after-before)
	}
	var deps struct {
		Deployments []json.RawMessage `json:"deployments"`
	}
	cli(t, nw, node, &deps, "query", "market", "deployments", tenantAddr, "--output", "json")
	if len(deps.Deployments) != 0 {
		t.Errorf("deployments after a refused create: %d", len(deps.Deployments))
	}
}

// TestAdversarialBidderCannotCoverItsDeposit: an open bid locks no coins
// (the winner's deposit is taken with its lease), so a provider might bid
// low and then spend its balance, hoping to win a lease it cannot be made
// to answer for. It cannot: when the window closes it no longer covers its
// deposit and sits the auction out; the honest provider wins, its deposit
// goes to the market module with the lease and comes back when the lease
// ends. Coins move only by the rules.
func TestAdversarialBidderCannotCoverItsDeposit(t *testing.T) {
	nw := adversarialNetwork(t, "cheap", "sink")
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr, cheap, sink := nw.Keys["tenant"], nw.Keys["cheap"], nw.Keys["sink"]
	escrow, market := moduleAccounts(t, nw)
	txAs(t, nw, "cheap", "tx", "provider", "register", filepath.Join(repoRoot(), "examples", "provider.yaml"), "--bond", "500000000ugpn")
	h0 := chain.height()
	done, order := deployJobInBackground(t, nw, "20")
	// The lowest bid by far, covered when placed...
	txAs(t, nw, "cheap", "tx", "market", "create-bid", tenantAddr, order.Dseq, "1", "1", "1000000ugpn", "--deposit", "1000000ugpn")
	// ...then all but half a deposit sent away (10,000 ugpn pays the fee).
	sent := chain.balanceAt(cheap, chain.height()) - 500_000 - 10_000
	txAs(t, nw, "cheap", "tx", "bank", "send", cheap, sink, fmt.Sprintf("%dugpn", sent))
	honest := startProvider(t, nw, "2000000000")
	honest.waitLog(20*time.Second, "bid placed")

	d := awaitCompletedBy(t, nw, done, honest.addr)

	lg := chain.ledger(h0, chain.height())
	lost := false
	for _, e := range events[*markettypes.EventBidClosed](lg) {
		if e.Id.Provider == cheap {
			lost = e.Reason == "lost"
		}
	}
	if !lost {
		t.Errorf("the uncovered bid did not close as lost")
	}
	p := lg.paid(tenantAddr, d.res.DSeq)
	lg.expect("cheap bidder", cheap, -sent) // what it sent away, nothing else
	lg.expect("sink", sink, sent)
	lg.expect("honest provider", honest.addr, p.Net-bondOf(t, nw, honest.addr))
	lg.expect("tenant", tenantAddr, -p.Gross)
	lg.expectPool(0)
	lg.expect("escrow module", escrow, 0)
	lg.expect("market module", market, 0)
}

// deployed is what a deploy run in the background ended with.
type deployed struct {
	res deployResult
	out string
	err error
}

// deployJobInBackground deploys a one-step job with the given bid window
// (in blocks), following it to the end, and returns once its order is open:
// the test bids or acts on the order while the tenant waits.
func deployJobInBackground(t *testing.T, nw *localnet.Network, bidWindow string) (<-chan deployed, openOrderID) {
	t.Helper()
	done := make(chan deployed, 1)
	go func() {
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "1"`, "")), "--deposit", "5000000ugpn", "--bid-window", bidWindow, "--follow", "--wait", "150s")
		done <- deployed{res, out, err}
	}()
	order, err := awaitOpenOrder(nw, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return done, order
}

// awaitCompletedBy waits for the background deploy to end with one lease,
// held by provider and completed, and for the deployment to be gone.
func awaitCompletedBy(t *testing.T, nw *localnet.Network, done <-chan deployed, provider string) deployed {
	t.Helper()
	d := <-done
	if d.err != nil {
		t.Fatalf("deploy: %v\n%s", d.err, d.out)
	}
	if len(d.res.Leases) != 1 || d.res.Leases[0].Provider != provider || len(d.res.Closed) != 1 || d.res.Closed[0].Reason != "workload_completed" {
		t.Fatalf("leases %+v closed %+v: want one lease with %s, completed", d.res.Leases, d.res.Closed, provider)
	}
	awaitDeploymentGone(t, nw, nw.Keys["tenant"], d.res.DSeq, 20*time.Second)
	waitBlocks(t, nw, 1)
	return d
}
