package keeper_test

import (
	"testing"
	"time"

	"cosmossdk.io/collections"
	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	sdk "github.com/cosmos/cosmos-sdk/types"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	sweeptypes "github.com/gpunet/gpunet/x/internal/sweep/types"
	"github.com/gpunet/gpunet/x/market/types"
)

// ownerFirst is every collection whose keys hold an owner and a dseq, and
// how many bytes come before them: the layout before x/market 5 and
// x/escrow 2.
var ownerFirst = []struct {
	store     string
	prefix    collections.Prefix
	lead      func(key []byte) int
	ownerLast bool
}{
	{types.StoreKey, types.OrdersKey, none, false},
	{types.StoreKey, types.OrderQueueKey, fixed(8), false},
	{types.StoreKey, types.BidsKey, none, false},
	{types.StoreKey, types.BidsByProviderKey, address, false},
	{types.StoreKey, types.LeasesKey, none, false},
	{types.StoreKey, types.LeasesByProviderKey, address, false},
	{types.StoreKey, types.StartDeadlinesKey, fixed(8), false},
	{types.StoreKey, types.DisputableKey, none, false},
	{types.StoreKey, types.DisputeQueueKey, fixed(8), false},
	{types.StoreKey, types.DownLeasesKey, address, false},
	{escrowtypes.StoreKey, escrowtypes.AccountsKey, none, true},
	{escrowtypes.StoreKey, escrowtypes.PaymentsKey, none, false},
	{escrowtypes.StoreKey, escrowtypes.PaymentsByProviderKey, address, false},
	{escrowtypes.StoreKey, escrowtypes.DepletionQueueKey, fixed(timeSize), true},
	{escrowtypes.StoreKey, escrowtypes.AutoTopUpsKey, none, true},
	{escrowtypes.StoreKey, escrowtypes.TopUpQueueKey, fixed(timeSize), true},
}

const timeSize = len("2006-01-02T15:04:05.000000000")

func none([]byte) int              { return 0 }
func fixed(n int) func([]byte) int { return func([]byte) int { return n } }
func address(key []byte) int       { return 1 + int(key[0]) }

// toOwnerFirst rewrites a dseq-first key (dseq, then the owner, at
// key[at:]) the way it was stored before: the owner, length-prefixed, then
// the dseq. An escrow account key ends with its owner, stored without its
// length (ownerLast).
func toOwnerFirst(key []byte, at int, ownerLast bool) []byte {
	out := append([]byte(nil), key[:at]...)
	if ownerLast {
		owner := key[at+8:]
		out = append(append(out, byte(len(owner))), owner...)
		return append(out, key[at:at+8]...)
	}
	n := int(key[at+8])
	out = append(out, key[at+8:at+8+1+n]...)
	out = append(out, key[at:at+8]...)
	return append(out, key[at+8+1+n:]...)
}

func dump(st storetypes.KVStore) map[string]string {
	out := map[string]string{}
	it := st.Iterator(nil, nil)
	defer it.Close()
	for ; it.Valid(); it.Next() {
		out[string(it.Key())] = string(it.Value())
	}
	return out
}

// TestMigrateToDseqFirst turns a live market's keys back into the owner-
// first layout (leases running, pending, attested down, an open order with
// a bid, an automatic refill, parked entries of both modules), runs the registered migrations
// from x/market 4 and x/escrow 1, and requires the stores to come out byte
// for byte as the chain wrote them; a second run changes nothing.
func TestMigrateToDseqFirst(t *testing.T) {
	w := newWorld(t)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		p, _ := w.c.App.MarketKeeper.Params.Get(ctx)
		p.ManifestTimeout, p.DisputeWindow = 3, 100
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: p}); err != nil {
			t.Fatal(err)
		}
	})
	running := w.startWon(0)
	paying := w.startWon(0) // paying: a depletion entry, and a refill below
	missing := w.win(1)
	w.blocks(2)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		// A manifest_missing close stays disputable for its window.
		if err := w.closeAs(ctx, missing, 1, types.CLOSE_REASON_MANIFEST_MISSING); err != nil {
			t.Fatal(err)
		}
	})
	w.win(1) // pending: a start deadline
	if _, _, err := w.attest(0, 2, types.OrderID{Owner: w.tenant.String(), Dseq: running, Gseq: 1, Oseq: 1}); err != nil {
		t.Fatal(err)
	}
	var open uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		open = w.deploy(ctx, 5_000_000, group())
		if err := w.bid(ctx, open, 2, 1_000); err != nil {
			t.Fatal(err)
		}
	})
	app := w.c.App
	mk, ek := app.MarketKeeper, app.EscrowKeeper
	w.c.Do(time.Second, func(ctx sdk.Context) {
		// Parked entries of a market and an escrow queue.
		okey := collections.Join3(open, w.tenant, types.OrderID{Gseq: 1, Oseq: 1}.GroupOrder())
		raw, err := collections.EncodeKeyWithPrefix(nil, mk.OrderQueue.KeyCodec(), collections.Join(int64(7), okey))
		if err != nil {
			t.Fatal(err)
		}
		if err := mk.Parked.Set(ctx, collections.Join("orders", raw), sweeptypes.ParkedItem{Queue: "orders", Key: raw, Item: "order", Error: "test", Height: 3}); err != nil {
			t.Fatal(err)
		}
		eraw, err := collections.EncodeKeyWithPrefix(nil, ek.DepletionQueue.KeyCodec(), collections.Join(ctx.BlockTime(), collections.Join(open, w.tenant)))
		if err != nil {
			t.Fatal(err)
		}
		if err := ek.Parked.Set(ctx, collections.Join("depletions", eraw), sweeptypes.ParkedItem{Queue: "depletions", Key: eraw, Item: "account", Error: "test", Height: 3}); err != nil {
			t.Fatal(err)
		}

		// An automatic refill: its record and its queue entry.
		if err := ek.SetAutoTopUp(ctx, escrowtypes.AccountID{Owner: w.tenant.String(), Dseq: paying}, w.tenant, sdk.NewInt64Coin(denom, 1_000), sdk.NewInt64Coin(denom, 5_000)); err != nil {
			t.Fatal(err)
		}

		stores := map[string]storetypes.KVStore{}
		before := map[string]map[string]string{}
		for _, name := range []string{types.StoreKey, escrowtypes.StoreKey} {
			stores[name] = ctx.KVStore(app.UnsafeFindStoreKey(name))
			before[name] = dump(stores[name])
		}
		// Back to the old layout.
		for _, c := range ownerFirst {
			st := stores[c.store]
			var keys, vals [][]byte
			it := st.Iterator(c.prefix, storetypes.PrefixEndBytes(c.prefix))
			for ; it.Valid(); it.Next() {
				keys, vals = append(keys, it.Key()), append(vals, it.Value())
			}
			it.Close()
			if len(keys) == 0 {
				t.Fatalf("store %s has nothing under prefix %x: the test state misses a collection", c.store, c.prefix.Bytes())
			}
			for i, k := range keys {
				rest := k[len(c.prefix):]
				st.Delete(k)
				st.Set(append(append([]byte(nil), c.prefix...), toOwnerFirst(rest, c.lead(rest), c.ownerLast)...), vals[i])
			}
		}
		for _, p := range []struct {
			store, queue string
			prefix       collections.Prefix
			lead         int
			ownerLast    bool
		}{{types.StoreKey, "orders", types.ParkedKey, 8, false}, {escrowtypes.StoreKey, "depletions", escrowtypes.ParkedKey, timeSize, true}} {
			parked := mk.Parked
			if p.store == escrowtypes.StoreKey {
				parked = ek.Parked
			}
			var items []sweeptypes.ParkedItem
			if err := parked.Walk(ctx, collections.NewPrefixedPairRange[string, []byte](p.queue), func(_ collections.Pair[string, []byte], v sweeptypes.ParkedItem) (bool, error) {
				items = append(items, v)
				return false, nil
			}); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if err := parked.Remove(ctx, collections.Join(it.Queue, it.Key)); err != nil {
					t.Fatal(err)
				}
				it.Key = toOwnerFirst(it.Key, p.lead, p.ownerLast)
				if err := parked.Set(ctx, collections.Join(it.Queue, it.Key), it); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := mk.Leases.Get(ctx, mustLeaseKey(t, w, running, 0)); err == nil {
			t.Fatal("the lease still reads with today's key after the rewrite to the old layout")
		}

		vm := app.ModuleManager.GetVersionMap()
		vm[types.ModuleName], vm[escrowtypes.ModuleName] = 4, 1
		if _, err := app.ModuleManager.RunMigrations(ctx, app.Configurator(), vm); err != nil {
			t.Fatal(err)
		}
		same := func(when string) {
			for name, st := range stores {
				after := dump(st)
				for k, v := range before[name] {
					if got, ok := after[k]; !ok || got != v {
						t.Errorf("%s: store %s key %x: missing or changed", when, name, k)
					}
				}
				for k := range after {
					if _, ok := before[name][k]; !ok {
						t.Errorf("%s: store %s has key %x the chain never wrote", when, name, k)
					}
				}
			}
		}
		same("after the migrations")
		if err := mk.MigrateToDseqFirst(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ek.MigrateToDseqFirst(ctx); err != nil {
			t.Fatal(err)
		}
		same("after running them again")
		if err := app.CheckInvariants(ctx); err != nil {
			t.Error(err)
		}
	})
	// The chain goes on: the running lease is paid, the open order's
	// auction closes with its bid.
	w.blocks(2)
	if _, err := mk.Leases.Get(w.c.Query(), mustLeaseKey(t, w, open, 2)); err != nil {
		t.Errorf("the open order's auction made no lease after the migration: %v", err)
	}
	if p := w.payment(running, 0); !p.Paused {
		t.Error("the lease attested down lost its paused payment in the migration")
	}
	res, err := marketQuery(mk).LeasesByOwner(w.c.Query(), &types.QueryByOwnerRequest{Owner: w.tenant.String()})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, l := range res.Leases {
		got = append(got, l.Id.Order.Dseq)
	}
	if len(got) != 4 {
		t.Errorf("the tenant's leases after the migration: dseqs %v, want its four", got)
	}
}

// TestGenesisFromBeforeDseqFirstParksDseqFirst: parked entries are the
// one part of a genesis that holds store keys as bytes. A genesis exported
// before x/market 5 holds them owner first; importing it files them dseq
// first, as the migration would have, and leaves today's alone.
func TestGenesisFromBeforeDseqFirstParksDseqFirst(t *testing.T) {
	w := newWorld(t)
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) { dseq = w.deploy(ctx, 5_000_000, group()) })
	k := w.c.App.MarketKeeper
	gs, err := k.ExportGenesis(w.c.Query())
	if err != nil {
		t.Fatal(err)
	}
	kc := k.OrderQueue.KeyCodec()
	entry := func(h int64, d uint64) []byte {
		key, err := collections.EncodeKeyWithPrefix(nil, kc, collections.Join(h, collections.Join3(d, w.tenant, types.OrderID{Gseq: 1, Oseq: 1}.GroupOrder())))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	old, today := entry(7, dseq), entry(9, dseq+1)
	gs.Parked = append(gs.Parked,
		sweeptypes.ParkedItem{Queue: "expiries", Key: toOwnerFirst(old, 8, false), Item: "order from before", Error: "test", Height: 2},
		sweeptypes.ParkedItem{Queue: "orders", Key: today, Item: "order of today", Error: "test", Height: 3})

	fresh := newWorld(t)
	cache, _ := fresh.c.Query().CacheContext()
	fk := fresh.c.App.MarketKeeper
	if err := fk.InitGenesis(cache, *gs); err != nil {
		t.Fatal(err)
	}
	again, err := fk.ExportGenesis(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Parked) != 2 {
		t.Fatalf("parked after import: %+v, want two", again.Parked)
	}
	for _, it := range again.Parked {
		want := today
		if it.Height == 2 {
			want = old
		}
		if it.Queue != "orders" || string(it.Key) != string(want) {
			t.Errorf("parked %q at height %d: queue %q key %x, want orders %x", it.Item, it.Height, it.Queue, it.Key, want)
		}
		if _, _, err := kc.Decode(it.Key); err != nil {
			t.Errorf("parked %q: key %x does not decode: %v", it.Item, it.Key, err)
		}
	}
}
