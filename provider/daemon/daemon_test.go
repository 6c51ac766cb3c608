package daemon

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"
	abci "github.com/cometbft/cometbft/abci/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/provider/runtime"
	audittypes "github.com/gpunet/gpunet/x/audit/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// The daemon around the lease managers: bidding, reconciling with the chain
// and the engine, routing block events, withdrawing.

func openOrder(oseq uint32, spec markettypes.GroupSpec) markettypes.Order {
	return markettypes.Order{Id: testOrderID(oseq), State: markettypes.ORDER_STATE_OPEN, Spec: spec, BidClosesAt: 10, ExpiresAt: 100}
}

func TestBidsOnWhatFitsAndSkipsTheRest(t *testing.T) {
	w := newWorld(t)
	spec, _, _ := testDeployment(t, false, 1)
	excluded := openOrder(2, spec)
	excluded.Id.Dseq = 8
	excluded.ExcludedProviders = []string{testProvider}
	tooBig := openOrder(1, spec)
	tooBig.Id.Dseq = 9
	tooBig.Spec.Resources = append([]markettypes.ResourceUnit(nil), spec.Resources...)
	tooBig.Spec.Resources[0].Gpu.Units = 8
	w.chain.open = []markettypes.Order{openOrder(1, spec), excluded, tooBig}
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bid sent", func() bool { return len(sentOf[*markettypes.MsgCreateBid](w.tx)) >= 1 })
	bids := sentOf[*markettypes.MsgCreateBid](w.tx)
	if len(bids) != 1 || bids[0].Order != testOrderID(1) || !bids[0].Deposit.Equal(markettypes.DefaultParams().BidMinDeposit) {
		t.Fatalf("bids %+v", bids)
	}
	if _, held := w.d.engine.Get(orderKey(testOrderID(1))); !held {
		t.Error("no reservation for the bid")
	}
	// Considering the same order again (the watcher and reconcile both see
	// it) bids once.
	if err := w.d.considerOrder(context.Background(), openOrder(1, spec)); err != nil {
		t.Fatal(err)
	}
	if n := len(sentOf[*markettypes.MsgCreateBid](w.tx)); n != 1 {
		t.Errorf("%d bids on one order", n)
	}
	if !strings.Contains(w.logs(), "insufficient gpus") {
		t.Errorf("the skipped order's reason is not logged:\n%s", w.logs())
	}
}

func TestRefusedBidFreesItsReservationAndRereadsParams(t *testing.T) {
	w := newWorld(t)
	spec, _, _ := testDeployment(t, false, 1)
	// The daemon read the params once; governance has raised the deposit
	// since.
	if _, err := w.d.marketParams(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	w.chain.mu.Lock()
	w.chain.params.BidMinDeposit = sdk.NewInt64Coin("ugpn", 2_000_000)
	w.chain.mu.Unlock()
	w.tx.failNext(&markettypes.MsgCreateBid{}, markettypes.ErrBidDepositTooLow.Wrap("deposit 1000000ugpn is below 2000000ugpn"))
	if err := w.d.considerOrder(context.Background(), openOrder(1, spec)); err != nil {
		t.Fatal(err)
	}
	if bids := sentOf[*markettypes.MsgCreateBid](w.tx); len(bids) != 1 || bids[0].Deposit.Amount.Int64() != 1_000_000 {
		t.Fatalf("bids %+v", bids)
	}
	eventually(t, "reservation released", func() bool { _, held := w.d.engine.Get(orderKey(testOrderID(1))); return !held })
	eventually(t, "params re-read", func() bool {
		dep, err := w.d.bidDeposit(context.Background())
		return err == nil && dep.Amount.Int64() == 2_000_000
	})
}

// activeLeaseOnChain puts an active lease of deployment 7 on the fake chain,
// its manifest in the store; it returns the lease and its group.
func activeLeaseOnChain(t *testing.T, w *world) (markettypes.Lease, markettypes.GroupSpec) {
	t.Helper()
	spec, _, raw := testDeployment(t, false, 0)
	live := testLease(1, markettypes.LEASE_STATE_ACTIVE)
	_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
	w.chain.leases = []markettypes.Lease{live}
	w.chain.orders[orderKey(live.Id.Order)] = markettypes.Order{Id: live.Id.Order, State: markettypes.ORDER_STATE_MATCHED, Spec: spec}
	return live, spec
}

// runningLease is an active lease on the fake chain whose containers run
// and whose manager reconcile made.
func runningLease(t *testing.T, w *world) (markettypes.Lease, *leaseManager) {
	t.Helper()
	live, _ := activeLeaseOnChain(t, w)
	w.rt.running[live.Id.Order.Name()] = live.Id
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, ok := w.d.managed(orderKey(live.Id.Order))
	if !ok {
		t.Fatal("live lease not managed")
	}
	w.phase(m, PhaseRunning)
	return live, m
}

// tornDownAfter reconciles n times, with m's lease still managed after
// them, and once more, which tears it down.
func tornDownAfter(t *testing.T, w *world, m *leaseManager, n int) {
	t.Helper()
	for range n {
		if err := w.d.reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := w.d.managed(m.key); !ok {
		t.Fatalf("torn down before %d reconciles missed it", missingLimit)
	}
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "lease torn down", func() bool { _, ok := w.d.managed(m.key); return !ok })
}

func TestReconcileManagesLeasesAndCleansUp(t *testing.T) {
	w := newWorld(t)
	live, spec := activeLeaseOnChain(t, w)
	// Containers of a lease closed while the daemon was away, and of the
	// live one.
	stale := runtime.LeaseRef{Order: markettypes.OrderID{Owner: testOwner, Dseq: 3, Gseq: 1, Oseq: 1}, Provider: testProvider}
	w.rt.running[stale.Order.Name()] = stale
	w.rt.running[live.Id.Order.Name()] = live.Id
	// A reservation nothing stands behind any more.
	if dec := w.d.engine.EvaluateAndReserve("gpunet1tenant/5/1/1", spec); !dec.Bid {
		t.Fatal(dec.Reason)
	}
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, ok := w.d.managed(orderKey(live.Id.Order))
	if !ok {
		t.Fatal("live lease not managed")
	}
	w.phase(m, PhaseRunning) // adopted
	if _, removed, _ := w.rt.counts(); removed != 1 {
		t.Errorf("removed %d leases' containers, want the stale one", removed)
	}
	if _, held := w.d.engine.Get("gpunet1tenant/5/1/1"); held {
		t.Error("an orphaned reservation was kept")
	}
	// withdraw pays out the active lease.
	if err := w.d.withdrawAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ws := sentOf[*markettypes.MsgWithdrawLease](w.tx); len(ws) != 1 || ws[0].Lease != live.Id {
		t.Errorf("withdrawals %+v", ws)
	}
	// Gone from the chain at height 40 while the watcher has handled only
	// up to 30: the block that closed it is still to come and will say
	// why, so no reconcile tears it down yet.
	var processed atomic.Int64
	processed.Store(30)
	w.d.processed = processed.Load
	w.chain.mu.Lock()
	w.chain.leases, w.chain.height = nil, 40
	w.chain.mu.Unlock()
	for range 3 {
		if err := w.d.reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := w.d.managed(m.key); !ok {
		t.Fatal("torn down while the watcher was behind the block that closed it")
	}
	// The watcher went past 40 and no closing event came: torn down.
	processed.Store(40)
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-m.done
	if !strings.Contains(w.logs(), `reason="not on chain any more"`) {
		t.Errorf("the teardown does not say why:\n%s", w.logs())
	}
	eventually(t, "manifest deleted", func() bool {
		raw, _ := w.d.store.loadManifest(deploymentKey(testOwner, 7))
		return raw == nil
	})
}

// TestReconcileTearsDownWhatAStuckWatcherNeverReports: a watcher that
// never gets past some block (a query it keeps failing) does not keep a
// closed lease's containers running for ever.
func TestReconcileTearsDownWhatAStuckWatcherNeverReports(t *testing.T) {
	w := newWorld(t)
	w.d.processed = func() int64 { return 12 }
	live, m := runningLease(t, w)
	w.chain.mu.Lock()
	w.chain.leases, w.chain.height = nil, 40
	w.chain.mu.Unlock()
	tornDownAfter(t, w, m, missingLimit)
	// Its manager removed them (and reconcile may too, having listed them
	// before the manager was done: removing is idempotent).
	w.rt.mu.Lock()
	defer w.rt.mu.Unlock()
	if _, still := w.rt.running[live.Id.Order.Name()]; still || len(w.rt.removed) == 0 {
		t.Errorf("the closed lease's containers are still there (removed %+v)", w.rt.removed)
	}
}

// TestReconcileWithoutTheHeightWaitsForTheCount: a lease first missed
// while the node's height cannot be read has no height for the watcher to
// pass; reconcile goes on, and only missingLimit reconciles tear it down.
func TestReconcileWithoutTheHeightWaitsForTheCount(t *testing.T) {
	w := newWorld(t)
	w.d.processed = func() int64 { return 100 } // past any height the node had
	_, m := runningLease(t, w)
	w.chain.mu.Lock()
	w.chain.leases, w.chain.height, w.chain.heightErr = nil, 40, errOutage
	w.chain.mu.Unlock()
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile without the node's height: %v", err)
	}
	w.chain.mu.Lock()
	w.chain.heightErr = nil
	w.chain.mu.Unlock()
	tornDownAfter(t, w, m, missingLimit-1)
}

func TestReconcileFailsWithoutParams(t *testing.T) {
	w := newWorld(t)
	w.chain.paramsErr = errOutage
	if err := w.d.reconcile(context.Background()); err == nil || !strings.Contains(err.Error(), "market params") {
		t.Fatalf("reconcile with the node away: %v", err)
	}
}

func event(t *testing.T, msg sdk.Msg) abci.Event {
	t.Helper()
	ev, err := sdk.TypedEventToEvent(msg)
	if err != nil {
		t.Fatal(err)
	}
	return abci.Event(ev)
}

func TestBlockEventsDriveTheLeases(t *testing.T) {
	w := newWorld(t)
	spec, _, _ := testDeployment(t, false, 0)
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	w.chain.orders[orderKey(l.Id.Order)] = markettypes.Order{Id: l.Id.Order, State: markettypes.ORDER_STATE_MATCHED, Spec: spec}
	gone := testLease(2, markettypes.LEASE_STATE_PENDING) // its order is not on the chain
	other := l
	other.Id.Provider = "gpunet1other"
	block := chain.Block{Height: 100, Events: []abci.Event{
		event(t, &markettypes.EventLeaseCreated{Id: l.Id, Price: l.Price, StartDeadline: 220}),
		event(t, &markettypes.EventLeaseCreated{Id: gone.Id, Price: gone.Price, StartDeadline: 220}),
		event(t, &markettypes.EventLeaseCreated{Id: other.Id, Price: other.Price, StartDeadline: 220}),
	}}
	if err := w.d.handleBlock(context.Background(), block); err != nil {
		t.Fatalf("a lease already gone stopped the watcher: %v", err)
	}
	m, ok := w.d.managed(orderKey(l.Id.Order))
	if !ok || m.view().CreatedAt != 100 {
		t.Fatalf("lease won in block 100 not managed (%v)", ok)
	}
	if len(w.d.leaseManagers()) != 1 {
		t.Errorf("managing %d leases, want ours only", len(w.d.leaseManagers()))
	}
	// manifest_timeout blocks later, no manifest: closed as the tenant's fault.
	due := chain.Block{Height: 100 + int64(markettypes.DefaultParams().ManifestTimeout)}
	if err := w.d.handleBlock(context.Background(), due); err != nil {
		t.Fatal(err)
	}
	w.closedAs(markettypes.CLOSE_REASON_MANIFEST_MISSING)
	closed := chain.Block{Height: due.Height + 1, Events: []abci.Event{
		event(t, &markettypes.EventLeaseStarted{Id: l.Id}),
		event(t, &markettypes.EventLeaseClosed{Id: l.Id, Reason: markettypes.CLOSE_REASON_MANIFEST_MISSING}),
		event(t, &markettypes.EventBidClosed{Id: markettypes.BidID{Order: testOrderID(9), Provider: testProvider}, Reason: "lost"}),
		event(t, &markettypes.EventOrderClosed{Id: testOrderID(9), Reason: "expired"}),
	}}
	if err := w.d.handleBlock(context.Background(), closed); err != nil {
		t.Fatal(err)
	}
	<-m.done
	if !strings.Contains(w.logs(), "reason=manifest_missing") {
		t.Error("the close is not logged with its reason")
	}
}

func TestOrderCreatedEventBids(t *testing.T) {
	w := newWorld(t)
	spec, _, _ := testDeployment(t, false, 0)
	o := openOrder(1, spec)
	w.chain.orders[orderKey(o.Id)] = o
	block := chain.Block{Height: 5, Events: []abci.Event{
		event(t, &markettypes.EventOrderCreated{Id: o.Id, BidClosesAt: 10}),
		event(t, &markettypes.EventOrderCreated{Id: testOrderID(4), BidClosesAt: 10}), // closed again before we looked
	}}
	if err := w.d.handleBlock(context.Background(), block); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bid", func() bool { return len(sentOf[*markettypes.MsgCreateBid](w.tx)) == 1 })
	if p := sentOf[*markettypes.MsgCreateBid](w.tx)[0].Price; !p.Amount.GT(sdkmath.LegacyZeroDec()) {
		t.Errorf("bid price %s", p)
	}
}

func TestConfiguredBidDepositAndStoredReservations(t *testing.T) {
	w := newWorld(t)
	w.d.cfg.Pricing.BidDeposit = "3000000ugpn"
	if dep, err := w.d.bidDeposit(context.Background()); err != nil || dep.Amount.Int64() != 3_000_000 {
		t.Fatalf("configured deposit: %v %v", dep, err)
	}
	w.d.cfg.Pricing.BidDeposit = "three"
	if _, err := w.d.bidDeposit(context.Background()); err == nil {
		t.Error("a bad configured deposit was used")
	}
	spec, _, _ := testDeployment(t, false, 1)
	if dec := w.d.engine.EvaluateAndReserve("gpunet1tenant/5/1/1", spec); !dec.Bid {
		t.Fatal(dec.Reason)
	}
	w.d.persistReservations()
	rs, err := w.d.store.loadReservations()
	if err != nil || len(rs) != 1 || rs[0].Key != "gpunet1tenant/5/1/1" || len(rs[0].GPUs) != 1 {
		t.Fatalf("stored reservations %+v %v", rs, err)
	}
}

func TestEveryRunsUntilCancelled(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.d.every(ctx, time.Millisecond, "test", func(context.Context) error {
			calls <- struct{}{}
			return errOutage
		})
	}()
	<-calls
	<-calls
	cancel()
	<-done
	if !strings.Contains(w.logs(), "test failed; will retry") {
		t.Error("a failing periodic job is not logged")
	}
	if err := w.d.shutdown(); err != nil {
		t.Error(err)
	}
}

func TestGPULeaseWithoutReservationIsNotDeployed(t *testing.T) {
	w := newWorld(t)
	spec, man, _ := testDeployment(t, false, 2)
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	m := w.manage(l, spec) // takes a reservation: both GPUs
	w.d.engine.Release(m.key)
	g, _ := groupFor(man, spec)
	m.send(inManifest{group: g})
	eventually(t, "refused", func() bool { return strings.Contains(w.logs(), "no reservation holds GPUs") })
	if d, _, _ := w.rt.counts(); d != 0 {
		t.Errorf("deployed %d times without GPUs", d)
	}
}

// eachPage follows the chain's next keys to the last page.
func TestEachPageFollowsNextKeys(t *testing.T) {
	pages := map[string][]int{"": {1, 2}, "k2": {3}}
	next := map[string]string{"": "k2"}
	var got []int
	err := eachPage(context.Background(), func(_ context.Context, p *query.PageRequest) ([]int, *query.PageResponse, error) {
		if p.Limit != pageSize {
			t.Errorf("page limit %d", p.Limit)
		}
		return pages[string(p.Key)], &query.PageResponse{NextKey: []byte(next[string(p.Key)])}, nil
	}, func(i int) error { got = append(got, i); return nil })
	if err != nil || len(got) != 3 || got[2] != 3 {
		t.Fatalf("got %v %v", got, err)
	}
}

func TestOrdersNamingAuditorsAreBidOnOnlyWhenSigned(t *testing.T) {
	w := newWorld(t)
	spec, _, _ := testDeployment(t, false, 1)
	auditor := sdk.AccAddress(make([]byte, 20)).String()
	spec.SignedBy = markettypes.SignedBy{AnyOf: []string{auditor}}
	o := openOrder(1, spec)
	if err := w.d.considerOrder(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if n := len(sentOf[*markettypes.MsgCreateBid](w.tx)); n != 0 {
		t.Fatalf("%d bids without the auditor's signature (the chain would refuse them, fee and all)", n)
	}
	if _, held := w.d.engine.Get(orderKey(o.Id)); held {
		t.Fatal("a reservation for an order not bid on")
	}
	if !strings.Contains(w.logs(), "needs the attributes signed by auditors") {
		t.Fatalf("skip not logged:\n%s", w.logs())
	}
	w.chain.mu.Lock()
	w.chain.signed = []audittypes.AuditedAttributes{{Owner: testProvider, Auditor: auditor, Attributes: spec.Requirements}}
	if len(spec.Requirements) == 0 {
		w.chain.signed[0].Attributes = []providertypes.Attribute{{Key: "tier", Value: "audited"}}
	}
	w.chain.mu.Unlock()
	w.d.mu.Lock()
	w.d.signedAt = time.Time{} // signedTTL has passed
	w.d.mu.Unlock()
	if err := w.d.considerOrder(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bid sent once signed", func() bool { return len(sentOf[*markettypes.MsgCreateBid](w.tx)) == 1 })
}

// TestOrdersAskingMoreReliabilityAreSkipped: the daemon does not bid on a
// group asking for a reliability score above its own (the chain would
// refuse the bid and keep the fee), and bids once its score is enough.
func TestOrdersAskingMoreReliabilityAreSkipped(t *testing.T) {
	w := newWorld(t)
	spec, _, _ := testDeployment(t, false, 0)
	least := sdkmath.LegacyMustNewDecFromStr("0.9")
	spec.MinReliability = &least
	w.chain.mu.Lock()
	w.chain.reliability = sdkmath.LegacyMustNewDecFromStr("0.25")
	w.chain.mu.Unlock()
	o := openOrder(1, spec)
	if err := w.d.considerOrder(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if n := len(sentOf[*markettypes.MsgCreateBid](w.tx)); n != 0 {
		t.Fatalf("%d bids on a group asking 0.9 from a provider scoring 0.25", n)
	}
	if !strings.Contains(w.logs(), "asks a reliability of at least 0.9") {
		t.Fatalf("skip not logged:\n%s", w.logs())
	}
	w.chain.mu.Lock()
	w.chain.reliability = sdkmath.LegacyMustNewDecFromStr("0.95")
	w.chain.mu.Unlock()
	w.d.mu.Lock()
	w.d.reliabilityAt = time.Time{} // the cache has expired
	w.d.mu.Unlock()
	if err := w.d.considerOrder(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bid sent once reliable enough", func() bool { return len(sentOf[*markettypes.MsgCreateBid](w.tx)) == 1 })
}

// A job whose containers the engine lists but cannot count (a cluster whose
// pod listing failed) is not taken for ended: only a count of none running
// makes the daemon ask how the job ended and close the lease.
func TestReconcileLeavesAnUncountedJobRunning(t *testing.T) {
	w := newWorld(t)
	spec, _, raw := testDeployment(t, true, 0)
	live := testLease(1, markettypes.LEASE_STATE_ACTIVE)
	_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
	w.chain.leases = []markettypes.Lease{live}
	w.chain.orders[orderKey(live.Id.Order)] = markettypes.Order{Id: live.Id.Order, State: markettypes.ORDER_STATE_MATCHED, Spec: spec}
	w.rt.running[live.Id.Order.Name()] = live.Id
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "job watched", func() bool { _, _, checks := w.rt.counts(); return checks == 1 })

	w.rt.endJob(runtime.JobResult{Succeeded: false, ExitCodes: map[string]int{"app/0": 2}})
	w.rt.mu.Lock()
	w.rt.uncounted = true
	w.rt.mu.Unlock()
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile with the containers uncounted: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // what a wrong check would take to close it
	if _, _, checks := w.rt.counts(); checks != 1 || len(sentOf[*markettypes.MsgCloseLease](w.tx)) != 0 {
		t.Fatalf("uncounted: %d job checks, closes %+v; want the job left alone", checks, sentOf[*markettypes.MsgCloseLease](w.tx))
	}

	w.rt.mu.Lock()
	w.rt.uncounted = false
	w.rt.mu.Unlock()
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.closedAs(markettypes.CLOSE_REASON_WORKLOAD_FAILED)
}
