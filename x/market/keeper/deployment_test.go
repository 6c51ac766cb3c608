package keeper_test

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/market/types"
)

func TestCloseBidUpdateAndCloseDeployment(t *testing.T) {
	w := newWorld(t)
	tenant0, prov0 := w.balance(w.tenant), w.balance(w.provs[0])
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, 7_000_000, group())
		if err := w.bid(ctx, dseq, 0, 1_000); err != nil {
			t.Fatal(err)
		}
		order := types.OrderID{Owner: w.tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 1}
		if _, err := w.market.CloseBid(ctx, &types.MsgCloseBid{Provider: w.provs[0].String(), Order: order}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.market.CloseBid(ctx, &types.MsgCloseBid{Provider: w.provs[0].String(), Order: order}); !errors.Is(err, types.ErrBidNotFound) {
			t.Errorf("closing a closed bid: %v", err)
		}
		hash := sha256.Sum256([]byte("v2"))
		if _, err := w.market.UpdateDeployment(ctx, &types.MsgUpdateDeployment{Owner: w.tenant.String(), Dseq: dseq, ManifestHash: hash[:]}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.market.UpdateDeployment(ctx, &types.MsgUpdateDeployment{Owner: w.tenant.String(), Dseq: dseq, ManifestHash: []byte("short")}); !errors.Is(err, types.ErrInvalidManifestHash) {
			t.Errorf("short manifest hash: %v", err)
		}
		if _, err := w.market.UpdateDeployment(ctx, &types.MsgUpdateDeployment{Owner: w.provs[0].String(), Dseq: dseq, ManifestHash: hash[:]}); !errors.Is(err, types.ErrDeploymentNotFound) {
			t.Errorf("update of someone else's deployment: %v", err)
		}
	})
	if got := w.balance(w.provs[0]); got != prov0 {
		t.Errorf("withdrawn bid's deposit not refunded: %d vs %d", got, prov0)
	}
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := w.market.CloseDeployment(ctx, &types.MsgCloseDeployment{Owner: w.tenant.String(), Dseq: dseq}); err != nil {
			t.Fatal(err)
		}
	})
	if got := w.balance(w.tenant); got != tenant0 {
		t.Errorf("tenant after closing an unleased deployment: %d, want the whole deposit back (%d)", got, tenant0)
	}
	if countDeployments(t, w) != 0 || w.moduleBalance(escrowtypes.ModuleName) != 0 {
		t.Error("closed deployment left state or escrow behind")
	}
}

func TestCreateDeploymentRejectsBadInput(t *testing.T) {
	w := newWorld(t)
	hash := sha256.Sum256([]byte("m"))
	w.c.Do(time.Second, func(ctx sdk.Context) {
		base := func() *types.MsgCreateDeployment {
			return &types.MsgCreateDeployment{Owner: w.tenant.String(), Groups: []types.GroupSpec{group()}, ManifestHash: hash[:], Deposit: sdk.NewInt64Coin(denom, 5_000_000)}
		}
		cases := []struct {
			name   string
			mutate func(*types.MsgCreateDeployment)
			want   error
		}{
			{"no groups", func(m *types.MsgCreateDeployment) { m.Groups = nil }, types.ErrInvalidGroups},
			{"zero replicas", func(m *types.MsgCreateDeployment) { m.Groups[0].Resources[0].Count = 0 }, types.ErrResourcesTooLarge},
			{"gpu model not a slug", func(m *types.MsgCreateDeployment) { m.Groups[0].Resources[0].Gpu.Models = []string{"NVIDIA H100"} }, types.ErrInvalidGroups},
			{"foreign max price", func(m *types.MsgCreateDeployment) { m.Groups[0].MaxPrice = sdk.NewInt64DecCoin("uatom", 5) }, types.ErrInvalidGroups},
			{"bad hash", func(m *types.MsgCreateDeployment) { m.ManifestHash = []byte{1} }, types.ErrInvalidManifestHash},
			{"deposit too small", func(m *types.MsgCreateDeployment) { m.Deposit = sdk.NewInt64Coin(denom, 1) }, types.ErrInvalidDeposit},
			{"foreign deposit", func(m *types.MsgCreateDeployment) { m.Deposit = sdk.NewInt64Coin("uatom", 5_000_000) }, types.ErrInvalidDeposit},
			{"bid window too long", func(m *types.MsgCreateDeployment) { m.BidWindow = 100_000 }, types.ErrInvalidBidWindow},
		}
		before := w.c.App.BankKeeper.GetBalance(ctx, w.tenant, denom)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				m := base()
				c.mutate(m)
				if _, err := w.market.CreateDeployment(ctx, m); !errors.Is(err, c.want) {
					t.Errorf("got %v, want %v", err, c.want)
				}
			})
		}
		if after := w.c.App.BankKeeper.GetBalance(ctx, w.tenant, denom); !after.Equal(before) {
			t.Errorf("refused deployments moved %s", before.Sub(after))
		}
	})
}

// An order without bids stays open after its window; a late bid wins at the
// end of its block; an order nobody bids on expires and refunds the tenant.
func TestLateBidAndExpiry(t *testing.T) {
	w := newWorld(t)
	w.shortOrders(8)
	tenant0 := w.balance(w.tenant)
	var late uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		late = w.deploy(ctx, 5_000_000, group())
		w.deploy(ctx, 5_000_000, group()) // nobody bids on this one
	})
	for range 4 {
		w.c.NextBlock(time.Second) // both windows pass with no bids
	}
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if err := w.bid(ctx, late, 1, 1_000); err != nil {
			t.Fatal(err)
		}
	})
	if has, _ := w.c.App.MarketKeeper.Leases.Has(w.c.Query(), mustLeaseKey(t, w, late, 1)); !has {
		t.Fatal("late bid on an open order did not win at the end of its block")
	}
	for range 6 {
		w.c.NextBlock(time.Second)
	}
	if countDeployments(t, w) != 1 {
		t.Fatalf("%d deployments, want only the leased one (the other expired)", countDeployments(t, w))
	}
	if got, want := w.balance(w.tenant), tenant0-5_000_000; got != want {
		t.Errorf("tenant %d, want %d: the expired deployment's deposit comes back", got, want)
	}
}

func TestGenesisRoundTrip(t *testing.T) {
	w := newWorld(t)
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, 5_000_000, group(), func() types.GroupSpec { g := group(); g.Name = "infer"; return g }())
		if err := w.bid(ctx, dseq, 0, 1_000); err != nil {
			t.Fatal(err)
		}
	})
	w.c.NextBlock(time.Second)
	w.c.NextBlock(time.Second) // one group leased, one open without bids
	k := w.c.App.MarketKeeper
	gs, err := k.ExportGenesis(w.c.Query())
	if err != nil {
		t.Fatal(err)
	}
	if len(gs.Deployments) != 1 || len(gs.Orders) != 2 || len(gs.Leases) != 1 {
		t.Fatalf("exported %d deployments, %d orders, %d leases", len(gs.Deployments), len(gs.Orders), len(gs.Leases))
	}
	fresh := newWorld(t)
	ctx := fresh.c.Query()
	freshKeeper := fresh.c.App.MarketKeeper
	// Load into a cache of the fresh chain (it has its own, empty market state).
	cache, _ := ctx.CacheContext()
	if err := freshKeeper.InitGenesis(cache, *gs); err != nil {
		t.Fatal(err)
	}
	again, err := freshKeeper.ExportGenesis(cache)
	if err != nil {
		t.Fatal(err)
	}
	if gs.String() != again.String() {
		t.Fatalf("genesis changed across import")
	}
	open, err := marketQuery(freshKeeper).OpenOrders(cache, &types.QueryOpenOrdersRequest{})
	if err != nil || len(open.Orders) != 1 {
		t.Fatalf("open-order index not rebuilt: %v %v", open, err)
	}
}

// A two-group deployment where one group is leased and the other expires:
// the expired group's half of the initial deposit comes back at once.
func TestExpiredGroupRefundsItsShare(t *testing.T) {
	w := newWorld(t)
	w.shortOrders(8)
	tenant0 := w.balance(w.tenant)
	infer := group()
	infer.Name = "infer"
	infer.Resources[0].Gpu.Models = []string{"rtx4090"} // nobody offers it
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, 6_000_000, group(), infer)
		if err := w.bid(ctx, dseq, 0, 1_000); err != nil {
			t.Fatal(err)
		}
	})
	for range 9 {
		w.c.NextBlock(time.Second)
	}
	if countDeployments(t, w) != 1 {
		t.Fatal("the leased deployment should stay")
	}
	if got, want := w.balance(w.tenant), tenant0-3_000_000; got != want {
		t.Errorf("tenant %d, want %d: half of the 6 GPN deposit back for the expired group", got, want)
	}
	acc, err := w.c.App.EscrowKeeper.Accounts.Get(w.c.Query(), escrowAccountKey(w.tenant, dseq))
	if err != nil {
		t.Fatal(err)
	}
	if acc.Balance.Int64() != 3_000_000 || !acc.Balance.Add(acc.Transferred).Equal(acc.Deposited) {
		t.Errorf("escrow after the refund: balance %s transferred %s deposited %s", acc.Balance, acc.Transferred, acc.Deposited)
	}
}

func TestLeaseErrorsAndClosing(t *testing.T) {
	w := newWorld(t)
	tenant0, prov0 := w.balance(w.tenant), w.balance(w.provs[0])
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, 10_000_000, group("h100"))
		if err := w.bid(ctx, dseq, 0, 3_600_000_000); err != nil {
			t.Fatal(err)
		}
	})
	w.c.NextBlock(time.Second)
	w.c.NextBlock(time.Second) // the window closes
	lease := w.leaseID(dseq, 0)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := w.market.WithdrawLease(ctx, &types.MsgWithdrawLease{Provider: lease.Provider, Lease: lease}); !errors.Is(err, types.ErrLeaseNotActive) {
			t.Errorf("withdraw before start: %v", err)
		}
		if _, err := w.market.StartLease(ctx, &types.MsgStartLease{Provider: w.provs[1].String(), Lease: lease}); !errors.Is(err, types.ErrUnauthorized) {
			t.Errorf("start by another provider: %v", err)
		}
		if _, err := w.market.StartLease(ctx, &types.MsgStartLease{Provider: lease.Provider, Lease: lease}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.market.StartLease(ctx, &types.MsgStartLease{Provider: lease.Provider, Lease: lease}); !errors.Is(err, types.ErrLeaseNotPending) {
			t.Errorf("second start: %v", err)
		}
		if _, err := w.market.CloseLease(ctx, &types.MsgCloseLease{Sender: w.provs[2].String(), Lease: lease}); !errors.Is(err, types.ErrUnauthorized) {
			t.Errorf("close by a stranger: %v", err)
		}
		if _, err := w.market.CloseLease(ctx, &types.MsgCloseLease{Sender: lease.Provider, Lease: lease, Reason: types.CLOSE_REASON_INSUFFICIENT_FUNDS}); !errors.Is(err, types.ErrInvalidReason) {
			t.Errorf("provider claiming insufficient_funds: %v", err)
		}
		other := lease
		other.Order.Dseq = 999
		if _, err := w.market.StartLease(ctx, &types.MsgStartLease{Provider: lease.Provider, Lease: other}); !errors.Is(err, types.ErrLeaseNotFound) {
			t.Errorf("start of an unknown lease: %v", err)
		}
	})
	w.c.NextBlock(4 * time.Second)              // rent: 1,000,000 ugpn/s
	w.c.Do(time.Second, func(ctx sdk.Context) { // 5 s in: the job is done
		if _, err := w.market.CloseLease(ctx, &types.MsgCloseLease{Sender: lease.Provider, Lease: lease, Reason: types.CLOSE_REASON_WORKLOAD_COMPLETED}); err != nil {
			t.Fatal(err)
		}
	})
	// The only group closed, so the deployment closed and the rest came back.
	if countDeployments(t, w) != 0 {
		t.Fatal("deployment still open after its only lease completed")
	}
	if got, want := w.balance(w.tenant), tenant0-5_000_000; got != want {
		t.Errorf("tenant %d, want %d (5 s of rent; the rest refunded)", got, want)
	}
	if got, want := w.balance(w.provs[0]), prov0+5_000_000-100_000; got != want {
		t.Errorf("provider %d, want %d (5 s less 2%%, bid deposit back)", got, want)
	}
	p, _ := w.c.App.ProviderKeeper.GetProvider(w.c.Query(), w.provs[0])
	if p.Stats.LeasesClosedByProvider != 0 {
		t.Error("a completed job counted against the provider")
	}
}
