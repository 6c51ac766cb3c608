package keeper_test

import (
	"strings"
	"testing"
	"time"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/internal/sweep"
	sweeptypes "github.com/gpunet/gpunet/x/internal/sweep/types"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	"github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// queued lists the order queue as (height, dseq) pairs.
func (w *world) queued(ctx sdk.Context) [][2]int64 {
	w.t.Helper()
	var out [][2]int64
	if err := w.c.App.MarketKeeper.OrderQueue.Walk(ctx, nil, func(e collections.Pair[int64, marketkeeper.OrderKey]) (bool, error) {
		out = append(out, [2]int64{e.K1(), int64(e.K2().K1())})
		return false, nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) order(ctx sdk.Context, dseq uint64) types.Order {
	w.t.Helper()
	res, err := marketQuery(w.c.App.MarketKeeper).Order(ctx, &types.QueryOrderRequest{Owner: w.tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 1})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.Order
}

func (w *world) checkOrderQueue(when string) {
	w.t.Helper()
	if msg, err := w.c.App.MarketKeeper.OrderQueueInvariant(w.c.Query()); err != nil || msg != "" {
		w.t.Fatalf("%s: order queue invariant: %q %v", when, msg, err)
	}
}

// shortOrders gives orders an order_ttl of ttl blocks and bid windows of at
// most 4, through governance's message.
func (w *world) shortOrders(ttl uint64) {
	w.t.Helper()
	w.c.Do(time.Second, func(ctx sdk.Context) {
		p := types.DefaultParams()
		p.OrderTtl = ttl
		p.MaxBidWindow = 4
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: p}); err != nil {
			w.t.Fatal(err)
		}
	})
}

// expireAll runs blocks through expires_at and checks that the queue is
// empty, deployments are left, and the tenant holds tenantWant.
func (w *world) expireAll(expiresAt int64, deployments int, tenantWant int64) {
	w.t.Helper()
	for w.c.Height < expiresAt {
		w.c.NextBlock(time.Second)
	}
	if got := w.queued(w.c.Query()); len(got) != 0 {
		w.t.Fatalf("queue after the expiry: %v, want empty", got)
	}
	if n := countDeployments(w.t, w); n != deployments {
		w.t.Fatalf("%d deployments after the expiry, want %d", n, deployments)
	}
	if got := w.balance(w.tenant); got != tenantWant {
		w.t.Errorf("tenant %d after the expiry, want %d: the deposits of the deployments that ended come back", got, tenantWant)
	}
	w.checkOrderQueue("after the expiry")
}

// TestOrderQueueHoldsOneEntryPerOpenOrder: an open order waits in the order
// queue once, at its next deadline. Opening it writes one entry, at the
// auction's close; an auction without bids moves it to the expiry; a late
// bid moves it to the bid's block, where the lease is made and the entry is
// gone; a tenant closing a deployment whose order waits for its expiry
// leaves nothing queued; an order nobody bids on expires at expires_at and
// refunds the tenant.
func TestOrderQueueHoldsOneEntryPerOpenOrder(t *testing.T) {
	w := newWorld(t)
	w.shortOrders(8)
	tenant0 := w.balance(w.tenant)
	var late, closed, expires uint64
	var o types.Order
	w.c.Do(time.Second, func(ctx sdk.Context) {
		late = w.deploy(ctx, 5_000_000, group())
		closed = w.deploy(ctx, 5_000_000, group())
		expires = w.deploy(ctx, 5_000_000, group())
		o = w.order(ctx, late)
		want := [][2]int64{{o.BidClosesAt, int64(late)}, {o.BidClosesAt, int64(closed)}, {o.BidClosesAt, int64(expires)}}
		if got := w.queued(ctx); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("queue after three deployments: %v, want %v (one entry each, at the auction's close)", got, want)
		}
		// Nothing in the old auction queue's prefix.
		st := ctx.KVStore(w.c.App.UnsafeFindStoreKey(types.StoreKey))
		it := st.Iterator(types.AuctionQueueKey, storetypes.PrefixEndBytes(types.AuctionQueueKey))
		if it.Valid() {
			t.Errorf("an order was written under the retired auction-queue prefix: %x", it.Key())
		}
		it.Close()
	})
	w.checkOrderQueue("after deploying")
	for w.c.Height <= o.BidClosesAt {
		w.c.NextBlock(time.Second) // the windows pass with no bids
	}
	ctx := w.c.Query()
	if got := w.queued(ctx); len(got) != 3 || got[0][0] != o.ExpiresAt || got[1][0] != o.ExpiresAt || got[2][0] != o.ExpiresAt {
		t.Fatalf("queue after empty auctions: %v, want all three at expires_at %d", got, o.ExpiresAt)
	}
	if res, err := marketQuery(w.c.App.MarketKeeper).OpenOrders(ctx, &types.QueryOpenOrdersRequest{}); err != nil || len(res.Orders) != 3 {
		t.Fatalf("open orders after empty auctions: %v %v, want the three", res, err)
	}
	w.checkOrderQueue("after empty auctions")

	var bidAt int64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if err := w.bid(ctx, late, 1, 1_000); err != nil {
			t.Fatal(err)
		}
		bidAt = ctx.BlockHeight()
		if got := w.queued(ctx); len(got) != 3 || got[0] != [2]int64{bidAt, int64(late)} {
			t.Errorf("queue after a late bid: %v, want the order at the bid's block %d first", got, bidAt)
		}
		if _, err := w.market.CloseDeployment(ctx, &types.MsgCloseDeployment{Owner: w.tenant.String(), Dseq: closed}); err != nil {
			t.Fatal(err)
		}
	})
	ctx = w.c.Query()
	if has, _ := w.c.App.MarketKeeper.Leases.Has(ctx, mustLeaseKey(t, w, late, 1)); !has {
		t.Fatal("the late bid did not win at the end of its block")
	}
	if got := w.queued(ctx); len(got) != 1 || got[0] != [2]int64{o.ExpiresAt, int64(expires)} {
		t.Fatalf("queue after the late lease and the close: %v, want only the unbid order at %d", got, o.ExpiresAt)
	}
	w.checkOrderQueue("after the late lease and the close")

	w.expireAll(o.ExpiresAt, 1, tenant0-5_000_000) // the leased one is left
}

// TestOrderQueueCarriesOverAnAuctionThatIsDueLate: with one sweep per
// block, of two auctions due in the same block the second runs a block
// later, still at its own entry, and is decided the same way.
func TestOrderQueueCarriesOverAnAuctionThatIsDueLate(t *testing.T) {
	w := newWorld(t)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		p := types.DefaultParams()
		p.MaxSweepsPerBlock = 1
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: p}); err != nil {
			t.Fatal(err)
		}
	})
	var a, b uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		a = w.deploy(ctx, 5_000_000, group())
		b = w.deploy(ctx, 5_000_000, group())
		for _, d := range []uint64{a, b} {
			if err := w.bid(ctx, d, 0, 1_000); err != nil {
				t.Fatal(err)
			}
		}
	})
	closes := w.order(w.c.Query(), a).BidClosesAt
	for w.c.Height < closes {
		w.c.NextBlock(time.Second)
	}
	ctx := w.c.Query()
	leased := func(d uint64) bool {
		has, _ := w.c.App.MarketKeeper.Leases.Has(ctx, mustLeaseKey(t, w, d, 0))
		return has
	}
	if !leased(a) || leased(b) {
		t.Fatalf("after the close: leased a %v b %v, want only a (one sweep per block)", leased(a), leased(b))
	}
	w.c.NextBlock(time.Second)
	ctx = w.c.Query()
	if !leased(b) {
		t.Fatal("the auction carried over was not decided in the next block")
	}
	w.checkOrderQueue("after the carried-over auction")
}

// TestMigrateToOrderQueue: a v3 store kept each open order twice, in the
// auction queue (prefix 4) until its auction ran and in the expiry queue
// (prefix 5) until it closed. After the migration an order still to be
// auctioned is queued once at its auction, one already auctioned once at
// its expiry; the old prefix is empty; parked auctions and expiries are
// filed under "orders"; and the next blocks decide the auction as before.
func TestMigrateToOrderQueue(t *testing.T) {
	w := newWorld(t)
	k := w.c.App.MarketKeeper
	var pending, auctioned uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		auctioned = w.deploy(ctx, 5_000_000, group())
	})
	for w.c.Height <= w.order(w.c.Query(), auctioned).BidClosesAt {
		w.c.NextBlock(time.Second) // its auction runs, with no bids
	}
	kc := k.OrderQueue.KeyCodec()
	w.c.Do(time.Second, func(ctx sdk.Context) {
		pending = w.deploy(ctx, 5_000_000, group())
		if err := w.bid(ctx, pending, 0, 1_000); err != nil {
			t.Fatal(err)
		}
		// Rewrite the pending order's entries as v3 kept them: its auction
		// under prefix 4, its expiry under prefix 5.
		o := w.order(ctx, pending)
		key := collections.Join3(pending, w.tenant, types.OrderID{Gseq: 1, Oseq: 1}.GroupOrder())
		st := ctx.KVStore(w.c.App.UnsafeFindStoreKey(types.StoreKey))
		raw, err := collections.EncodeKeyWithPrefix(types.AuctionQueueKey, kc, collections.Join(o.BidClosesAt, key))
		if err != nil {
			t.Fatal(err)
		}
		st.Set(raw, []byte{})
		if err := k.OrderQueue.Set(ctx, collections.Join(o.ExpiresAt, key)); err != nil {
			t.Fatal(err)
		}
		if err := k.OrderQueue.Remove(ctx, collections.Join(o.BidClosesAt, key)); err != nil {
			t.Fatal(err)
		}
		// A stale v3 auction entry of an order that is gone.
		stale, err := collections.EncodeKeyWithPrefix(types.AuctionQueueKey, kc, collections.Join(o.BidClosesAt, collections.Join3(uint64(999), w.tenant, key.K3())))
		if err != nil {
			t.Fatal(err)
		}
		st.Set(stale, []byte{})
		// Parked items of the two old queues.
		for i, q := range []string{"auctions", "expiries"} {
			pk, err := collections.EncodeKeyWithPrefix(nil, kc, collections.Join(int64(i+1), collections.Join3(uint64(998), w.tenant, key.K3())))
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Parked.Set(ctx, collections.Join(q, pk), sweeptypes.ParkedItem{Queue: q, Key: pk, Item: "order 998", Error: "test", Height: 1}); err != nil {
				t.Fatal(err)
			}
		}

		if err := k.MigrateToOrderQueue(ctx); err != nil {
			t.Fatal(err)
		}
		it := st.Iterator(types.AuctionQueueKey, storetypes.PrefixEndBytes(types.AuctionQueueKey))
		if it.Valid() {
			t.Errorf("the old auction queue still holds %x", it.Key())
		}
		it.Close()
		want := [][2]int64{{o.BidClosesAt, int64(pending)}, {w.order(ctx, auctioned).ExpiresAt, int64(auctioned)}}
		if got := w.queued(ctx); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("order queue after the migration: %v, want %v", got, want)
		}
		items, err := sweep.List(ctx, k.Parked)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != 2 || items[0].Queue != marketkeeper.OrdersQueue || items[1].Queue != marketkeeper.OrdersQueue {
			t.Errorf("parked items after the migration: %v, want both under %q", items, marketkeeper.OrdersQueue)
		}
	})
	closes := w.order(w.c.Query(), pending).BidClosesAt
	for w.c.Height <= closes {
		w.c.NextBlock(time.Second)
	}
	if has, _ := k.Leases.Has(w.c.Query(), mustLeaseKey(t, w, pending, 0)); !has {
		t.Fatal("the migrated auction was not decided")
	}
	// The parked items point at an order that does not exist: retrying
	// them puts them back on the order queue, whose sweep drops them.
	w.c.Do(time.Second, func(ctx sdk.Context) {
		r, err := w.market.RetryParked(ctx, &types.MsgRetryParked{Authority: k.Authority(), Queue: marketkeeper.OrdersQueue})
		if err != nil || r.Retried != 2 {
			t.Fatalf("retry: %v %v, want 2 retried", r, err)
		}
	})
	w.c.NextBlock(time.Second)
	if items, err := sweep.List(w.c.Query(), k.Parked); err != nil || len(items) != 0 {
		t.Errorf("parked after the retry: %v %v, want none", items, err)
	}
	w.checkOrderQueue("after the migration")
}

// TestFailedAuctionIsParkedAndTheOrderStillExpires: an auction that fails
// (here a bid from a provider whose registry record does not decode) is parked
// with none of its writes, and its order goes on to its expiry, which
// refunds the tenant; it does not sit open and unlisted for ever. Retrying
// a parked auction puts the order back at it in place of its expiry entry
// (once the bad record is gone, the auction is decided), and retrying one
// whose order a late bid has leased since drops it.
func TestFailedAuctionIsParkedAndTheOrderStillExpires(t *testing.T) {
	w := newWorld(t)
	k := w.c.App.MarketKeeper
	w.shortOrders(12)
	tenant0 := w.balance(w.tenant)
	var expires, retried, late uint64
	// The bad bidder: an account whose provider record is garbage.
	bad := w.c.Accounts[4]
	badKey := func(dseq uint64) marketkeeper.BidKey { return leaseKey(w.tenant, dseq, 1, 1, bad) }
	badBid := func(ctx sdk.Context, dseq uint64) {
		id := types.BidID{Order: types.OrderID{Owner: w.tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 1}, Provider: bad.String()}
		b := types.Bid{Id: id, Price: sdk.NewDecCoin(denom, sdkmath.NewInt(1_000)), Deposit: sdk.NewInt64Coin(denom, 1_000_000), Seq: 1}
		if err := k.Bids.Set(ctx, badKey(dseq), b); err != nil {
			t.Fatal(err)
		}
	}
	w.c.Do(time.Second, func(ctx sdk.Context) {
		key, err := collections.EncodeKeyWithPrefix(providertypes.ProvidersKey, sdk.AccAddressKey, bad)
		if err != nil {
			t.Fatal(err)
		}
		ctx.KVStore(w.c.App.UnsafeFindStoreKey(providertypes.StoreKey)).Set(key, []byte{0xff, 0xff, 0xff})
	})
	w.c.Do(time.Second, func(ctx sdk.Context) {
		expires = w.deploy(ctx, 5_000_000, group())
		retried = w.deploy(ctx, 5_000_000, group())
		late = w.deploy(ctx, 5_000_000, group())
		for _, d := range []uint64{expires, retried, late} {
			badBid(ctx, d)
		}
	})
	o := w.order(w.c.Query(), expires)
	for w.c.Height < o.BidClosesAt {
		w.c.NextBlock(time.Second)
	}
	ctx := w.c.Query()
	items, err := sweep.List(ctx, k.Parked)
	if err != nil || len(items) != 3 {
		t.Fatalf("parked after the failed auctions: %v %v, want the three", items, err)
	}
	for _, it := range items {
		if it.Queue != marketkeeper.OrdersQueue || !strings.Contains(it.Item, "auction") {
			t.Errorf("parked %+v, want an orders item for an auction", it)
		}
	}
	if got := w.queued(ctx); len(got) != 3 || got[0][0] != o.ExpiresAt {
		t.Fatalf("queue after the failed auctions: %v, want the three orders at their expiry %d", got, o.ExpiresAt)
	}
	if res, err := marketQuery(k).OpenOrders(ctx, &types.QueryOpenOrdersRequest{}); err != nil || len(res.Orders) != 3 {
		t.Fatalf("open orders after the failed auctions: %v %v, want the three still listed", res, err)
	}
	w.checkOrderQueue("after the failed auctions")

	w.c.Do(time.Second, func(ctx sdk.Context) {
		// The retried order's bad record is repaired in place (a bid
		// sent now would be a late bid, which moves the auction itself);
		// the late order gets a late bid, leased at this block's end.
		for _, d := range []uint64{retried, late} {
			if err := k.Bids.Remove(ctx, badKey(d)); err != nil {
				t.Fatal(err)
			}
		}
		good := types.Bid{Id: w.leaseID(retried, 0), Price: sdk.NewDecCoin(denom, sdkmath.NewInt(1_000)), Deposit: sdk.NewInt64Coin(denom, 1_000_000), Seq: 1}
		if err := k.Bids.Set(ctx, mustLeaseKey(t, w, retried, 0), good); err != nil {
			t.Fatal(err)
		}
		if err := w.bid(ctx, late, 1, 1_000); err != nil {
			t.Fatal(err)
		}
	})
	if has, _ := k.Leases.Has(w.c.Query(), mustLeaseKey(t, w, late, 1)); !has {
		t.Fatal("the late bid was not decided at the end of its block")
	}
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if has, _ := k.Leases.Has(ctx, mustLeaseKey(t, w, retried, 0)); has {
			t.Fatal("the order whose auction is parked was leased before the retry")
		}
		r, err := w.market.RetryParked(ctx, &types.MsgRetryParked{Authority: k.Authority(), Queue: marketkeeper.OrdersQueue})
		if err != nil || r.Retried != 3 {
			t.Fatalf("retry: %v %v, want 3 retried", r, err)
		}
	})
	ctx = w.c.Query()
	if has, _ := k.Leases.Has(ctx, mustLeaseKey(t, w, retried, 0)); !has {
		t.Fatal("the retried auction was not decided")
	}
	w.checkOrderQueue("after the retry")
	// The expiring order's bad bid still fails its retried auction: parked
	// again, and the order still waits for its expiry.
	if got := w.queued(ctx); len(got) != 1 || got[0] != [2]int64{o.ExpiresAt, int64(expires)} {
		t.Fatalf("queue after the retry: %v, want only the bad order at its expiry %d", got, o.ExpiresAt)
	}
	w.expireAll(o.ExpiresAt, 2, tenant0-10_000_000) // the two leased ones are left
}

// TestLateBidThatCannotWinDoesNotPostponeTheExpiry: a provider that bids
// late and then spends its deposit moves the auction to its block, sits it
// out, and the order goes back to its original expiry: bidding cannot keep
// an order (and the tenant's deposit) open past expires_at.
func TestLateBidThatCannotWinDoesNotPostponeTheExpiry(t *testing.T) {
	w := newWorld(t)
	w.shortOrders(8)
	tenant0 := w.balance(w.tenant)
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) { dseq = w.deploy(ctx, 5_000_000, group()) })
	o := w.order(w.c.Query(), dseq)
	for w.c.Height <= o.BidClosesAt {
		w.c.NextBlock(time.Second)
	}
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if err := w.bid(ctx, dseq, 0, 1_000); err != nil {
			t.Fatal(err)
		}
		w.drain(ctx, w.provs[0], 500_000) // half a deposit left
	})
	ctx := w.c.Query()
	if has, _ := w.c.App.MarketKeeper.Leases.Has(ctx, mustLeaseKey(t, w, dseq, 0)); has {
		t.Fatal("a bidder that cannot cover its deposit won")
	}
	if got := w.queued(ctx); len(got) != 1 || got[0] != [2]int64{o.ExpiresAt, int64(dseq)} {
		t.Fatalf("queue after the late auction: %v, want the order back at its expiry %d", got, o.ExpiresAt)
	}
	w.checkOrderQueue("after the late auction")
	w.expireAll(o.ExpiresAt, 0, tenant0)
}

// TestStaleOrderQueueEntryIsDropped: an entry at neither of an open order's
// heights (a bad genesis could leave one) is dropped when the order has its
// own entry, and becomes the order's expiry entry when it has none.
func TestStaleOrderQueueEntryIsDropped(t *testing.T) {
	w := newWorld(t)
	k := w.c.App.MarketKeeper
	var kept, lost uint64
	var o types.Order
	w.c.Do(time.Second, func(ctx sdk.Context) {
		kept = w.deploy(ctx, 5_000_000, group())
		lost = w.deploy(ctx, 5_000_000, group())
		o = w.order(ctx, kept)
		stale := ctx.BlockHeight() + 1 // due at this block's end, before the auctions
		for _, d := range []uint64{kept, lost} {
			key := collections.Join3(d, w.tenant, types.OrderID{Gseq: 1, Oseq: 1}.GroupOrder())
			if err := k.OrderQueue.Set(ctx, collections.Join(stale, key)); err != nil {
				t.Fatal(err)
			}
		}
		key := collections.Join3(lost, w.tenant, types.OrderID{Gseq: 1, Oseq: 1}.GroupOrder())
		if err := k.OrderQueue.Remove(ctx, collections.Join(o.BidClosesAt, key)); err != nil {
			t.Fatal(err)
		}
	})
	w.c.NextBlock(time.Second)
	want := [][2]int64{{o.BidClosesAt, int64(kept)}, {o.ExpiresAt, int64(lost)}}
	if got := w.queued(w.c.Query()); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("queue after the stale entries came due: %v, want %v", got, want)
	}
	w.checkOrderQueue("after the stale entries")
}
