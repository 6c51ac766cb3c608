package keeper_test

import (
	"errors"
	"testing"
	"time"

	"cosmossdk.io/collections"

	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/market/types"
)

// TestDseqsAndBidSeqsComeFromTheBlock: the nth deployment of block h gets
// dseq h×10,000 + n, numbers keep rising from block to block, and bids are
// ordered the same way (the auction's tie-break reads them).
func TestDseqsAndBidSeqsComeFromTheBlock(t *testing.T) {
	w := newWorld(t)
	var first []uint64
	var h int64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		h = ctx.BlockHeight()
		for range 3 {
			first = append(first, w.deploy(ctx, 5_000_000, group()))
		}
		for p := range 2 {
			if err := w.bid(ctx, first[0], p, 1_000); err != nil {
				t.Fatal(err)
			}
		}
	})
	for i, d := range first {
		if want := uint64(h)*types.BlockSeqBase + uint64(i+1); d != want {
			t.Errorf("deployment %d of block %d: dseq %d, want %d", i+1, h, d, want)
		}
		if types.BlockOfSeq(d) != h {
			t.Errorf("dseq %d does not name its block %d", d, h)
		}
	}
	var next uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		next = w.deploy(ctx, 5_000_000, group())
		if err := w.bid(ctx, first[0], 2, 1_000); err != nil && !errors.Is(err, types.ErrSpecNotMatched) {
			t.Fatal(err)
		}
	})
	if next != uint64(h+1)*types.BlockSeqBase+1 {
		t.Errorf("first deployment of block %d: dseq %d", h+1, next)
	}
	res, err := marketQuery(w.c.App.MarketKeeper).BidsByOrder(w.c.Query(), &types.QueryOrderRequest{Owner: w.tenant.String(), Dseq: first[0], Gseq: 1, Oseq: 1})
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[string]uint64{}
	for _, b := range res.Bids {
		seqs[b.Id.Provider] = b.Seq
	}
	if a, b := seqs[w.provs[0].String()], seqs[w.provs[1].String()]; a != uint64(h)*types.BlockSeqBase+1 || b != a+1 {
		t.Errorf("bid seqs %d, %d: want %d and the next", a, b, uint64(h)*types.BlockSeqBase+1)
	}
}

// TestBlockHandsOutAtMostItsSequenceNumbers: past 9,999 deployments a
// block refuses the next with a clear error and moves no coins; the next
// block takes it.
func TestBlockHandsOutAtMostItsSequenceNumbers(t *testing.T) {
	w := newWorld(t)
	params, err := w.c.App.MarketKeeper.Params.Get(w.c.Query())
	if err != nil {
		t.Fatal(err)
	}
	deposit := params.MinDeposit.Amount.Int64()
	w.c.Do(time.Second, func(ctx sdk.Context) {
		for range types.BlockSeqBase - 1 {
			w.deploy(ctx, deposit, group())
		}
		before := w.c.App.BankKeeper.GetBalance(ctx, w.tenant, denom)
		_, err := w.market.CreateDeployment(ctx, &types.MsgCreateDeployment{Owner: w.tenant.String(), Groups: []types.GroupSpec{group()},
			ManifestHash: make([]byte, 32), Deposit: sdk.NewInt64Coin(denom, deposit)})
		if !errors.Is(err, types.ErrBlockFull) {
			t.Fatalf("deployment 10,000 of a block: %v, want ErrBlockFull", err)
		}
		if after := w.c.App.BankKeeper.GetBalance(ctx, w.tenant, denom); !after.Equal(before) {
			t.Errorf("a refused deployment moved coins: %s → %s", before, after)
		}
	})
	w.c.Do(time.Second, func(ctx sdk.Context) { w.deploy(ctx, deposit, group()) })
}

// TestMigrateToLeanLayout: a v1 store's open-orders index and stored
// counters are gone after the migration, the open orders are still listed,
// and deposits still reach the module accounts.
func TestMigrateToLeanLayout(t *testing.T) {
	w := newWorld(t)
	k := w.c.App.MarketKeeper
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, 5_000_000, group())
		// What a v1 store also held: the order in the open-orders index
		// and the two counters.
		st := ctx.KVStore(w.c.App.UnsafeFindStoreKey(types.StoreKey))
		key, err := collections.EncodeKeyWithPrefix(types.OpenOrdersKey, collections.TripleKeyCodec(sdk.AccAddressKey, collections.Uint64Key, collections.Uint64Key),
			collections.Join3(w.tenant, dseq, types.OrderID{Gseq: 1, Oseq: 1}.GroupOrder()))
		if err != nil {
			t.Fatal(err)
		}
		st.Set(key, []byte{})
		st.Set(types.NextDseqKey, []byte{0, 0, 0, 0, 0, 0, 0, 9})
		st.Set(types.NextBidSeqKey, []byte{0, 0, 0, 0, 0, 0, 0, 9})
		if err := k.MigrateToLeanLayout(ctx); err != nil {
			t.Fatal(err)
		}
		for _, gone := range [][]byte{key, types.NextDseqKey, types.NextBidSeqKey} {
			if st.Has(gone) {
				t.Errorf("key %x survived the migration", gone)
			}
		}
	})
	res, err := marketQuery(k).OpenOrders(w.c.Query(), &types.QueryOpenOrdersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Orders) != 1 || res.Orders[0].Id.Dseq != dseq {
		t.Errorf("open orders after the migration: %v", res.Orders)
	}
	for _, m := range []string{types.ModuleName, escrowtypes.ModuleName} {
		acc := w.c.App.AccountKeeper.GetAccount(w.c.Query(), authtypes.NewModuleAddress(m))
		if _, ok := acc.(sdk.ModuleAccountI); !ok {
			t.Errorf("%s: %T at the module address, want a module account", m, acc)
		}
	}
}
