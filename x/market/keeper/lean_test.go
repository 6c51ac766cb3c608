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
// counters are gone after the migration, an open bid's held deposit is back
// with its provider, the open orders are still listed, and the module
// accounts exist.
func TestMigrateToLeanLayout(t *testing.T) {
	w := newWorld(t)
	k := w.c.App.MarketKeeper
	var dseq uint64
	prov0 := w.balance(w.provs[0])
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, 5_000_000, group())
		if err := w.bid(ctx, dseq, 0, 1_000); err != nil {
			t.Fatal(err)
		}
		// A v1 bid held its deposit in the market module account.
		if err := w.c.App.BankKeeper.SendCoins(ctx, w.provs[0], authtypes.NewModuleAddress(types.ModuleName), sdk.NewCoins(sdk.NewInt64Coin(denom, 1_000_000))); err != nil {
			t.Fatal(err)
		}
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
	if got := w.balance(w.provs[0]); got != prov0 || w.moduleBalance(types.ModuleName) != 0 {
		t.Errorf("after the migration the bidder has %d (want %d back) and the market holds %d", got, prov0, w.moduleBalance(types.ModuleName))
	}
	if msg, err := k.DepositInvariant(w.c.Query()); err != nil || msg != "" {
		t.Errorf("deposit invariant after the migration: %q %v", msg, err)
	}
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

// drain leaves addr with exactly left ugpn.
func (w *world) drain(ctx sdk.Context, addr sdk.AccAddress, left int64) {
	w.t.Helper()
	have := w.c.App.BankKeeper.GetBalance(ctx, addr, denom).Amount.Int64()
	if err := w.c.App.BankKeeper.SendCoins(ctx, addr, w.c.Accounts[4], sdk.NewCoins(sdk.NewInt64Coin(denom, have-left))); err != nil {
		w.t.Fatal(err)
	}
}

// TestBidDepositIsTakenFromTheWinnerOnly: a bid the provider cannot cover
// is refused; a cheapest bidder that spent its balance since bidding sits
// the auction out and the next one wins, paying its deposit then; a tenant
// cannot accept a bid its provider can no longer cover.
func TestBidDepositIsTakenFromTheWinnerOnly(t *testing.T) {
	w := newWorld(t)
	var dseq, accept uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, 5_000_000, group())
		accept = w.deploy(ctx, 5_000_000, group())
		for p, price := range []int64{1_000, 2_000} {
			if err := w.bid(ctx, dseq, p, price); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.bid(ctx, accept, 0, 1_000); err != nil {
			t.Fatal(err)
		}
		// The cheapest bidder spends all but half a deposit.
		w.drain(ctx, w.provs[0], 500_000)
		if err := w.bid(ctx, accept, 1, 500); err != nil {
			t.Fatal(err)
		}
	})
	// A provider that cannot cover the deposit cannot bid.
	w.c.Do(time.Second, func(ctx sdk.Context) {
		another := w.deploy(ctx, 5_000_000, group())
		if err := w.bid(ctx, another, 0, 1_000); !errors.Is(err, types.ErrDepositNotCovered) {
			t.Errorf("bid beyond the provider's balance: %v, want ErrDepositNotCovered", err)
		}
		_, err := w.market.AcceptBid(ctx, &types.MsgAcceptBid{Owner: w.tenant.String(), Bid: w.leaseID(accept, 0)})
		if !errors.Is(err, types.ErrDepositNotCovered) {
			t.Errorf("accepting a bid its provider cannot cover: %v, want ErrDepositNotCovered", err)
		}
	})
	prov1 := w.balance(w.provs[1])
	w.c.NextBlock(time.Second) // both windows (2 blocks) have closed
	leases, err := marketQuery(w.c.App.MarketKeeper).LeasesByOwner(w.c.Query(), &types.QueryByOwnerRequest{Owner: w.tenant.String()})
	if err != nil {
		t.Fatal(err)
	}
	won := map[uint64]string{}
	for _, l := range leases.Leases {
		won[l.Id.Order.Dseq] = l.Id.Provider
	}
	if won[dseq] != w.provs[1].String() || won[accept] != w.provs[1].String() {
		t.Fatalf("winners %v: want provider 1 on both orders (provider 0 cannot cover its deposit)", won)
	}
	if got := w.balance(w.provs[1]); got != prov1-2_000_000 {
		t.Errorf("winner's balance %d, want %d (two deposits taken)", got, prov1-2_000_000)
	}
	if got := w.balance(w.provs[0]); got != 500_000 {
		t.Errorf("the bidder that sat out has %d, want its 500000 untouched", got)
	}
	if msg, err := w.c.App.MarketKeeper.DepositInvariant(w.c.Query()); err != nil || msg != "" {
		t.Errorf("deposit invariant: %q %v", msg, err)
	}
}
