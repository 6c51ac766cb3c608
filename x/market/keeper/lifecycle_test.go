package keeper_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/testutil/apptest"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	"github.com/gpunet/gpunet/x/market/types"
	providerkeeper "github.com/gpunet/gpunet/x/provider/keeper"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

const denom = "ugpn"

type world struct {
	t         *testing.T
	c         *apptest.Chain
	market    types.MsgServer
	providers providertypes.MsgServer
	tenant    sdk.AccAddress
	provs     []sdk.AccAddress
}

func newWorld(t *testing.T) *world {
	c := apptest.New(t, 5)
	w := &world{
		t: t, c: c,
		market:    marketkeeper.NewMsgServerImpl(c.App.MarketKeeper),
		providers: providerkeeper.NewMsgServerImpl(c.App.ProviderKeeper),
		tenant:    c.Accounts[0],
		provs:     c.Accounts[1:4],
	}
	c.Do(time.Second, func(ctx sdk.Context) {
		for i, p := range w.provs {
			gpu := providertypes.GPU{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Interface: "sxm", Count: 8}
			if i == 2 {
				gpu.Model = "a100"
			}
			_, err := w.providers.RegisterProvider(ctx, &providertypes.MsgRegisterProvider{
				Owner: p.String(), HostUri: "https://p.example.com", TlsCertSha256: hex64(),
				Attributes: []providertypes.Attribute{{Key: "region", Value: "eu"}},
				Gpus:       []providertypes.GPU{gpu},
				Capacity:   providertypes.Capacity{CpuMillis: 64_000, MemoryBytes: 256 << 30, StorageBytes: 1 << 40},
				Bond:       sdk.NewInt64Coin(denom, 600_000_000),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	return w
}

func hex64() string { return "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" }

func (w *world) balance(addr sdk.AccAddress) int64 {
	return w.c.App.BankKeeper.GetBalance(w.c.Query(), addr, denom).Amount.Int64()
}

func (w *world) moduleBalance(name string) int64 {
	return w.balance(authtypes.NewModuleAddress(name))
}

func group(models ...string) types.GroupSpec {
	return types.GroupSpec{
		Name:         "train",
		Requirements: []providertypes.Attribute{{Key: "region", Value: "eu"}},
		Resources: []types.ResourceUnit{{
			Count: 1, CpuMillis: 8_000, MemoryBytes: 32 << 30, StorageBytes: 100 << 30,
			Gpu: types.GPUSpec{Units: 2, Models: models, MinMemoryMib: 40_000},
		}},
		MaxPrice: sdk.NewDecCoin(denom, sdkmath.NewInt(5_000_000_000)),
	}
}

func (w *world) deploy(ctx sdk.Context, deposit int64, groups ...types.GroupSpec) uint64 {
	w.t.Helper()
	hash := sha256.Sum256([]byte("manifest"))
	res, err := w.market.CreateDeployment(ctx, &types.MsgCreateDeployment{
		Owner: w.tenant.String(), Groups: groups, ManifestHash: hash[:],
		Deposit: sdk.NewInt64Coin(denom, deposit), BidWindow: 2,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.Dseq
}

func (w *world) bid(ctx sdk.Context, dseq uint64, p int, price int64) error {
	_, err := w.market.CreateBid(ctx, &types.MsgCreateBid{
		Provider: w.provs[p].String(),
		Order:    types.OrderID{Owner: w.tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 1},
		Price:    sdk.NewDecCoin(denom, sdkmath.NewInt(price)),
		Deposit:  sdk.NewInt64Coin(denom, 1_000_000),
	})
	return err
}

func (w *world) leaseID(dseq uint64, p int) types.BidID {
	return types.BidID{Order: types.OrderID{Owner: w.tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 1}, Provider: w.provs[p].String()}
}

// TestWholeLife: deploy → three providers bid → the lowest wins when the
// window closes → start → rent accrues → tenant tops up → provider withdraws
// → escrow runs dry → the lease closes as insufficient_funds; every balance
// is checked to the ugpn.
func TestWholeLife(t *testing.T) {
	w := newWorld(t)
	tenant0 := w.balance(w.tenant)
	prov0 := []int64{w.balance(w.provs[0]), w.balance(w.provs[1]), w.balance(w.provs[2])}

	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) { dseq = w.deploy(ctx, 5_000_000, group()) })
	w.c.Do(time.Second, func(ctx sdk.Context) {
		for p, price := range []int64{4_000_000_000, 3_600_000_000, 3_800_000_000} {
			if err := w.bid(ctx, dseq, p, price); err != nil {
				t.Fatal(err)
			}
		}
	})
	// Open bids lock nothing: the winner's deposit is taken with its lease.
	if w.moduleBalance(types.ModuleName) != 0 {
		t.Fatalf("market holds %d after three bids, want nothing", w.moduleBalance(types.ModuleName))
	}
	for p := range 3 {
		if got := w.balance(w.provs[p]); got != prov0[p] {
			t.Errorf("bidder %d: balance %d after bidding, want %d", p, got, prov0[p])
		}
	}
	w.c.NextBlock(time.Second) // the window closes at the end of this block

	q := w.c.Query()
	leases, err := marketkeeper.NewQueryServerImpl(w.c.App.MarketKeeper).LeasesByOwner(q, &types.QueryByOwnerRequest{Owner: w.tenant.String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(leases.Leases) != 1 || leases.Leases[0].Id.Provider != w.provs[1].String() || leases.Leases[0].State != types.LEASE_STATE_PENDING {
		t.Fatalf("leases after the auction = %+v, want one pending lease with the lowest bidder", leases.Leases)
	}
	for _, p := range []int{0, 2} {
		if got := w.balance(w.provs[p]); got != prov0[p] {
			t.Errorf("losing bidder %d: balance %d, want it untouched (%d)", p, got, prov0[p])
		}
	}
	if w.moduleBalance(types.ModuleName) != 1_000_000 || w.balance(w.provs[1]) != prov0[1]-1_000_000 {
		t.Errorf("market holds %d, winner has %d: want the winner's 1 GPN deposit moved to the market", w.moduleBalance(types.ModuleName), w.balance(w.provs[1]))
	}

	// Start: 3.6e9 ugpn/h = 1,000,000 ugpn/s from this block's time.
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := w.market.StartLease(ctx, &types.MsgStartLease{Provider: w.provs[1].String(), Lease: w.leaseID(dseq, 1)}); err != nil {
			t.Fatal(err)
		}
	})
	w.c.Do(time.Second, func(ctx sdk.Context) { // 1 s in: top up 3 GPN
		if _, err := escrowMsgs(w).Deposit(ctx, &escrowtypes.MsgDeposit{Depositor: w.tenant.String(), Account: escrowtypes.AccountID{Owner: w.tenant.String(), Dseq: dseq}, Amount: sdk.NewInt64Coin(denom, 3_000_000)}); err != nil {
			t.Fatal(err)
		}
	})
	w.c.Do(time.Second, func(ctx sdk.Context) { // 2 s in: attest, then withdraw 2,000,000 gross
		// Nothing is paid past the provider's last attestation.
		if res, err := w.market.WithdrawLease(ctx, &types.MsgWithdrawLease{Provider: w.provs[1].String(), Lease: w.leaseID(dseq, 1)}); err != nil || !res.Net.IsZero() {
			t.Fatalf("withdraw before any attestation: %v, %v; want nothing paid", res, err)
		}
		if _, err := w.market.Attest(ctx, &types.MsgAttest{Provider: w.provs[1].String(), Leases: 1}); err != nil {
			t.Fatal(err)
		}
		res, err := w.market.WithdrawLease(ctx, &types.MsgWithdrawLease{Provider: w.provs[1].String(), Lease: w.leaseID(dseq, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Net.Amount.Int64() != 1_960_000 {
			t.Errorf("withdraw net %s, want 1960000 (2%% take)", res.Net)
		}
	})
	for range 12 { // 8,000,000 funds 8 s; the account closes at 9 s
		w.c.NextBlock(time.Second)
	}

	q = w.c.Query()
	if has, _ := w.c.App.MarketKeeper.Leases.Has(q, mustLeaseKey(t, w, dseq, 1)); has {
		t.Fatal("lease still open after the escrow ran dry")
	}
	if n := countDeployments(t, w); n != 0 {
		t.Fatalf("%d deployments left, want the drained one closed", n)
	}
	if got, want := w.balance(w.tenant), tenant0-8_000_000; got != want {
		t.Errorf("tenant balance %d, want %d (5 GPN deposit + 3 GPN top-up, nothing refunded)", got, want)
	}
	// 8,000,000 gross in two payouts: take 40,000 + 120,000.
	if got, want := w.balance(w.provs[1]), prov0[1]+8_000_000-160_000; got != want {
		t.Errorf("provider balance %d, want %d (8 GPN less 2%% take, bid deposit back)", got, want)
	}
	if w.moduleBalance(escrowtypes.ModuleName) != 0 || w.moduleBalance(types.ModuleName) != 0 {
		t.Errorf("escrow holds %d, market holds %d; want both empty", w.moduleBalance(escrowtypes.ModuleName), w.moduleBalance(types.ModuleName))
	}
	p, err := w.c.App.ProviderKeeper.GetProvider(q, w.provs[1])
	if err != nil {
		t.Fatal(err)
	}
	if p.Stats.LeasesWon != 1 || p.Stats.LeasesStartedOnTime != 1 {
		t.Errorf("winner stats = %+v", p.Stats)
	}
}

// TestStartTimeoutSlashesProvider: a winner that never starts is slashed to
// the community pool (not to the tenant), forfeits its bid deposit there too,
// and the group is auctioned again without it; the tenant pays nothing.
func TestStartTimeoutSlashesProvider(t *testing.T) {
	w := newWorld(t)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		params := types.DefaultParams()
		params.StartTimeout, params.ManifestTimeout = 3, 2
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: params}); err != nil {
			t.Fatal(err)
		}
	})
	tenant0, prov0 := w.balance(w.tenant), w.balance(w.provs[0])
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) { dseq = w.deploy(ctx, 5_000_000, group("h100")) })
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if err := w.bid(ctx, dseq, 0, 1_000_000_000); err != nil {
			t.Fatal(err)
		}
	})
	for range 6 {
		w.c.NextBlock(time.Second)
	}
	q := w.c.Query()
	p, err := w.c.App.ProviderKeeper.GetProvider(q, w.provs[0])
	if err != nil {
		t.Fatal(err)
	}
	// 5% of 600 GPN.
	if p.Bond.Amount.Int64() != 570_000_000 || p.Stats.StartFailures != 1 {
		t.Errorf("provider after timeout: bond %s, stats %+v", p.Bond, p.Stats)
	}
	// Nobody on the other side gains: the tenant's deposit is still in
	// escrow for the next round, the provider lost its bid deposit.
	if got, want := w.balance(w.tenant), tenant0-5_000_000; got != want {
		t.Errorf("tenant balance %d, want %d", got, want)
	}
	if got, want := w.balance(w.provs[0]), prov0-1_000_000; got != want {
		t.Errorf("provider balance %d, want %d (deposit forfeited)", got, want)
	}
	if b := w.moduleBalance(types.ModuleName); b != 0 {
		t.Errorf("market module holds %d", b)
	}
	// Re-auctioned under oseq 2 without the provider that failed.
	o, err := marketQuery(w.c.App.MarketKeeper).Order(q, &types.QueryOrderRequest{Owner: w.tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 2})
	if err != nil {
		t.Fatalf("re-auctioned order: %v", err)
	}
	if o.Order.State != types.ORDER_STATE_OPEN || len(o.Order.ExcludedProviders) != 1 || o.Order.ExcludedProviders[0] != w.provs[0].String() {
		t.Errorf("re-auctioned order %+v", o.Order)
	}
	if n := countDeployments(t, w); n != 1 {
		t.Errorf("%d deployments after a provider fault, want the deployment kept", n)
	}
}

func TestCreateBidChecksInOrder(t *testing.T) {
	w := newWorld(t)
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) { dseq = w.deploy(ctx, 5_000_000, group("h100")) })
	w.c.Do(time.Second, func(ctx sdk.Context) {
		order := types.OrderID{Owner: w.tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 1}
		price := sdk.NewDecCoin(denom, sdkmath.NewInt(1_000))
		dep := sdk.NewInt64Coin(denom, 1_000_000)
		cases := []struct {
			name string
			msg  types.MsgCreateBid
			want error
		}{
			{"unknown order", types.MsgCreateBid{Provider: w.provs[0].String(), Order: types.OrderID{Owner: w.tenant.String(), Dseq: 99, Gseq: 1, Oseq: 1}, Price: price, Deposit: dep}, types.ErrOrderNotFound},
			{"not a provider", types.MsgCreateBid{Provider: w.c.Accounts[4].String(), Order: order, Price: price, Deposit: dep}, types.ErrProviderNotEligible},
			{"wrong gpu model", types.MsgCreateBid{Provider: w.provs[2].String(), Order: order, Price: price, Deposit: dep}, types.ErrSpecNotMatched},
			{"price above max", types.MsgCreateBid{Provider: w.provs[0].String(), Order: order, Price: sdk.NewDecCoin(denom, sdkmath.NewInt(6_000_000_000)), Deposit: dep}, types.ErrPriceTooHigh},
			{"foreign price denom", types.MsgCreateBid{Provider: w.provs[0].String(), Order: order, Price: sdk.NewDecCoin("uatom", sdkmath.NewInt(1)), Deposit: dep}, types.ErrInvalidPrice},
			{"deposit too low", types.MsgCreateBid{Provider: w.provs[0].String(), Order: order, Price: price, Deposit: sdk.NewInt64Coin(denom, 1)}, types.ErrBidDepositTooLow},
		}
		for _, c := range cases {
			if _, err := w.market.CreateBid(ctx, &c.msg); !errors.Is(err, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			}
		}
		if err := w.bid(ctx, dseq, 0, 1_000); err != nil {
			t.Fatal(err)
		}
		if err := w.bid(ctx, dseq, 0, 900); !errors.Is(err, types.ErrBidExists) {
			t.Errorf("second bid by the same provider: %v", err)
		}
		// The tenant may accept early; a stranger may not.
		if _, err := w.market.AcceptBid(ctx, &types.MsgAcceptBid{Owner: w.provs[1].String(), Bid: w.leaseID(dseq, 0)}); !errors.Is(err, types.ErrUnauthorized) {
			t.Errorf("accept by a stranger: %v", err)
		}
		if _, err := w.market.AcceptBid(ctx, &types.MsgAcceptBid{Owner: w.tenant.String(), Bid: w.leaseID(dseq, 1)}); !errors.Is(err, types.ErrBidNotFound) {
			t.Errorf("accepting a bid that does not exist: %v", err)
		}
		if _, err := w.market.AcceptBid(ctx, &types.MsgAcceptBid{Owner: w.tenant.String(), Bid: w.leaseID(dseq, 0)}); err != nil {
			t.Fatal(err)
		}
		if err := w.bid(ctx, dseq, 1, 800); !errors.Is(err, types.ErrOrderNotOpen) {
			t.Errorf("bid on a matched order: %v", err)
		}
		// Provider-only reasons are refused from the tenant.
		if _, err := w.market.CloseLease(ctx, &types.MsgCloseLease{Sender: w.tenant.String(), Lease: w.leaseID(dseq, 0), Reason: types.CLOSE_REASON_WORKLOAD_COMPLETED}); !errors.Is(err, types.ErrInvalidReason) {
			t.Errorf("tenant closing as workload_completed: %v", err)
		}
		// Deregistering with a live lease is refused by x/provider.
		if _, err := w.providers.DeregisterProvider(ctx, &providertypes.MsgDeregisterProvider{Owner: w.provs[0].String()}); !errors.Is(err, providertypes.ErrProviderBusy) {
			t.Errorf("deregister with a lease: %v", err)
		}
	})
}

func TestBidLimit(t *testing.T) {
	w := newWorld(t)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		p := types.DefaultParams()
		p.MaxBidsPerOrder = 1
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: p}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.tenant.String(), Params: p}); !errors.Is(err, types.ErrUnauthorized) {
			t.Errorf("params from a non-authority: %v", err)
		}
		p.MinBidWindow = 0
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: p}); !errors.Is(err, types.ErrInvalidParams) {
			t.Errorf("invalid params: %v", err)
		}
	})
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq := w.deploy(ctx, 5_000_000, group())
		if err := w.bid(ctx, dseq, 0, 1_000); err != nil {
			t.Fatal(err)
		}
		if err := w.bid(ctx, dseq, 1, 1_000); !errors.Is(err, types.ErrTooManyBids) {
			t.Errorf("an equal bid beyond max_bids_per_order: %v", err)
		}
		// A strictly cheaper bid evicts the most expensive one; neither
		// bid holds coins, so the evicted bidder's balance is untouched.
		before := w.c.App.BankKeeper.GetBalance(ctx, w.provs[0], denom).Amount.Int64()
		if err := w.bid(ctx, dseq, 1, 900); err != nil {
			t.Errorf("cheaper bid on a full order: %v", err)
		}
		if got := w.c.App.BankKeeper.GetBalance(ctx, w.provs[0], denom).Amount.Int64(); got != before {
			t.Errorf("evicted bidder's balance moved by %d", got-before)
		}
		bids, err := marketQuery(w.c.App.MarketKeeper).BidsByOrder(ctx, &types.QueryOrderRequest{Owner: w.tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 1})
		if err != nil || len(bids.Bids) != 1 || bids.Bids[0].Id.Provider != w.provs[1].String() {
			t.Errorf("bids after eviction: %+v %v", bids, err)
		}
	})
}

func escrowMsgs(w *world) escrowtypes.MsgServer { return escrowMsgServer(w.c.App.EscrowKeeper) }

func mustLeaseKey(t *testing.T, w *world, dseq uint64, p int) marketkeeper.BidKey {
	t.Helper()
	return leaseKey(w.tenant, dseq, 1, 1, w.provs[p])
}

func countDeployments(t *testing.T, w *world) int {
	t.Helper()
	n := 0
	if err := w.c.App.MarketKeeper.Deployments.Walk(w.c.Query(), nil, func(marketkeeper.DeploymentKey, types.Deployment) (bool, error) {
		n++
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// The start-deadline sweep handles at most max_sweeps_per_block leases and
// carries the rest over; a provider whose lease was carried over cannot
// slip its start in late: the start is refused and the slash still comes.
func TestLateStartIsRefusedWhenTheSweepCarriesOver(t *testing.T) {
	w := newWorld(t)
	setParams := func(ctx sdk.Context, edit func(*types.Params)) {
		params, err := w.c.App.MarketKeeper.Params.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		edit(&params)
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: params}); err != nil {
			t.Fatal(err)
		}
	}
	w.c.Do(time.Second, func(ctx sdk.Context) {
		setParams(ctx, func(p *types.Params) { p.StartTimeout, p.ManifestTimeout = 3, 2 })
	})
	var a, b uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		a = w.deploy(ctx, 5_000_000, group("h100"))
		b = w.deploy(ctx, 5_000_000, group("h100"))
	})
	// Both bids accepted in one block: both leases must start by the same height.
	w.c.Do(time.Second, func(ctx sdk.Context) {
		for _, dseq := range []uint64{a, b} {
			if err := w.bid(ctx, dseq, 0, 1_000_000_000); err != nil {
				t.Fatal(err)
			}
			if _, err := w.market.AcceptBid(ctx, &types.MsgAcceptBid{Owner: w.tenant.String(), Bid: w.leaseID(dseq, 0)}); err != nil {
				t.Fatal(err)
			}
		}
		setParams(ctx, func(p *types.Params) { p.MaxSweepsPerBlock = 1 })
	})
	failures := func() uint64 {
		p, err := w.c.App.ProviderKeeper.GetProvider(w.c.Query(), w.provs[0])
		if err != nil {
			t.Fatal(err)
		}
		return p.Stats.StartFailures
	}
	w.c.NextBlock(time.Second)
	w.c.NextBlock(time.Second)
	if n := failures(); n != 0 {
		t.Fatalf("%d start failures before the deadline", n)
	}
	w.c.NextBlock(time.Second) // the deadline: one lease swept, one carried over
	if n := failures(); n != 1 {
		t.Fatalf("%d start failures at the deadline with max_sweeps_per_block 1, want 1", n)
	}
	w.c.Do(time.Second, func(ctx sdk.Context) {
		var lateErr error
		for _, dseq := range []uint64{a, b} {
			_, err := w.market.StartLease(ctx, &types.MsgStartLease{Provider: w.provs[0].String(), Lease: w.leaseID(dseq, 0)})
			if errors.Is(err, types.ErrStartDeadlinePassed) {
				lateErr = err
			} else if !errors.Is(err, types.ErrLeaseNotFound) {
				t.Errorf("start of %d after the deadline: %v", dseq, err)
			}
		}
		if lateErr == nil {
			t.Error("the carried-over lease was started after its deadline")
		}
	})
	if n := failures(); n != 2 {
		t.Fatalf("%d start failures after the carry-over block, want 2", n)
	}
}

// TestEndBlockSkipsBrokenEntriesAndCarriesOn: index entries that point at
// nothing (a bug or a bad genesis could leave them) once made EndBlock fail,
// which halts the chain for every validator. Now each is logged, dropped
// with none of its writes, and the rest of the block's work goes on.
func TestEndBlockSkipsBrokenEntriesAndCarriesOn(t *testing.T) {
	w := newWorld(t)
	k := w.c.App.MarketKeeper
	var dseq uint64
	staleOrder := collections.Join3(uint64(999), w.tenant, uint64(1)<<32|1)
	staleLease := leaseKey(w.tenant, 999, 1, 1, w.provs[0])
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, 5_000_000, group("h100"))
		if err := w.bid(ctx, dseq, 0, 1_000_000_000); err != nil {
			t.Fatal(err)
		}
		h := ctx.BlockHeight() + 1
		for _, err := range []error{
			k.OrderQueue.Set(ctx, collections.Join(h, staleOrder)),
			k.StartDeadlines.Set(ctx, collections.Join(h, staleLease)),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	for range 2 {
		w.c.NextBlock(time.Second) // would fail the test if FinalizeBlock failed
	}
	ctx := w.c.Query()
	if _, err := k.Leases.Get(ctx, leaseKey(w.tenant, dseq, 1, 1, w.provs[0])); err != nil {
		t.Fatalf("the sound auction in the same block was not decided: %v", err)
	}
	for name, has := range map[string]func() (bool, error){
		"order queue":    func() (bool, error) { return k.OrderQueue.Has(ctx, collections.Join(w.c.Height-1, staleOrder)) },
		"start deadline": func() (bool, error) { return k.StartDeadlines.Has(ctx, collections.Join(w.c.Height-1, staleLease)) },
	} {
		if ok, err := has(); err != nil || ok {
			t.Errorf("stale %s entry still queued (err %v)", name, err)
		}
	}
}

// TestDeploymentGroupBound: a deployment may have at most
// max_groups_per_deployment groups, which bounds the per-deployment work
// of closing it and of its orders.
func TestDeploymentGroupBound(t *testing.T) {
	w := newWorld(t)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		params, err := w.c.App.MarketKeeper.Params.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		groups := func(n int) []types.GroupSpec {
			var gs []types.GroupSpec
			for i := range n {
				g := group("h100")
				g.Name = fmt.Sprintf("g%d", i)
				gs = append(gs, g)
			}
			return gs
		}
		hash := sha256.Sum256([]byte("m"))
		msg := func(n int) *types.MsgCreateDeployment {
			return &types.MsgCreateDeployment{Owner: w.tenant.String(), Groups: groups(n), ManifestHash: hash[:],
				Deposit: sdk.NewInt64Coin(denom, 5_000_000), BidWindow: 2}
		}
		balance := func() sdkmath.Int { return w.c.App.BankKeeper.GetBalance(ctx, w.tenant, denom).Amount }
		before := balance()
		if _, err := w.market.CreateDeployment(ctx, msg(int(params.MaxGroupsPerDeployment)+1)); err == nil || !strings.Contains(err.Error(), "group") {
			t.Fatalf("%d groups accepted (err %v)", params.MaxGroupsPerDeployment+1, err)
		}
		if !balance().Equal(before) {
			t.Fatal("a refused deployment moved funds")
		}
		if _, err := w.market.CreateDeployment(ctx, msg(int(params.MaxGroupsPerDeployment))); err != nil {
			t.Fatalf("%d groups refused: %v", params.MaxGroupsPerDeployment, err)
		}
	})
}

// TestAuctionPassesOverAnUnderbondedProvider: a provider whose bond fell
// below min_bond after bidding cannot win the auction, however cheap its
// bid; the next best eligible bid wins.
func TestAuctionPassesOverAnUnderbondedProvider(t *testing.T) {
	w := newWorld(t)
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, 5_000_000, group("h100"))
		if err := w.bid(ctx, dseq, 0, 1_000_000); err != nil { // the cheapest
			t.Fatal(err)
		}
		if err := w.bid(ctx, dseq, 1, 2_000_000); err != nil {
			t.Fatal(err)
		}
		if _, err := w.providers.Unbond(ctx, &providertypes.MsgUnbond{Owner: w.provs[0].String(), Amount: sdk.NewInt64Coin(denom, 200_000_000)}); err != nil {
			t.Fatal(err)
		}
	})
	for range 3 {
		w.c.NextBlock(time.Second)
	}
	ctx := w.c.Query()
	if _, err := w.c.App.MarketKeeper.Leases.Get(ctx, leaseKey(w.tenant, dseq, 1, 1, w.provs[1])); err != nil {
		t.Fatalf("the eligible provider did not win: %v", err)
	}
	if has, _ := w.c.App.MarketKeeper.Leases.Has(ctx, leaseKey(w.tenant, dseq, 1, 1, w.provs[0])); has {
		t.Fatal("the underbonded provider won")
	}
}

// TestAuctionAndExpirySweepsAreBounded: with max_sweeps_per_block 2, five
// auctions due in one block are decided two per block, oldest first, and
// five orders expiring in one block expire two per block; none is lost.
func TestAuctionAndExpirySweepsAreBounded(t *testing.T) {
	w := newWorld(t)
	k := w.c.App.MarketKeeper
	var bidOn, idle []uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		params, err := k.Params.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		params.MaxSweepsPerBlock = 2
		params.MaxBidWindow, params.DefaultBidWindow, params.OrderTtl = 3, 2, 4
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: k.Authority(), Params: params}); err != nil {
			t.Fatal(err)
		}
	})
	w.c.Do(time.Second, func(ctx sdk.Context) {
		for range 5 {
			d := w.deploy(ctx, 5_000_000, group("h100"))
			if err := w.bid(ctx, d, 0, 1_000_000); err != nil {
				t.Fatal(err)
			}
			bidOn = append(bidOn, d)
		}
	})
	// Orders nobody bids on, one block later: their auctions queue behind.
	w.c.Do(time.Second, func(ctx sdk.Context) {
		for range 5 {
			idle = append(idle, w.deploy(ctx, 5_000_000, group("h100")))
		}
	})
	count := func(dseqs []uint64, has func(ctx sdk.Context, d uint64) bool) int {
		n := 0
		for _, d := range dseqs {
			if has(w.c.Query(), d) {
				n++
			}
		}
		return n
	}
	leased := func(ctx sdk.Context, d uint64) bool {
		ok, _ := k.Leases.Has(ctx, leaseKey(w.tenant, d, 1, 1, w.provs[0]))
		return ok
	}
	open := func(ctx sdk.Context, d uint64) bool {
		ok, _ := k.Deployments.Has(ctx, collections.Join(w.tenant, d))
		return ok
	}
	var leases, alive []int
	for range 5 {
		w.c.NextBlock(time.Second)
		leases = append(leases, count(bidOn, leased))
		alive = append(alive, count(idle, open))
	}
	if want := []int{2, 4, 5, 5, 5}; fmt.Sprint(leases) != fmt.Sprint(want) {
		t.Errorf("leases after each block %v, want %v", leases, want)
	}
	// The idle orders expire at creation + 4 (the TTL); two per block.
	for range 3 {
		w.c.NextBlock(time.Second)
		alive = append(alive, count(idle, open))
	}
	t.Logf("idle deployments alive after each block: %v", alive)
	last := alive[len(alive)-1]
	if last != 0 {
		t.Fatalf("%d idle deployments never expired: %v", last, alive)
	}
	for i := 1; i < len(alive); i++ {
		if alive[i-1]-alive[i] > 2 {
			t.Fatalf("%d orders expired in one block, more than max_sweeps_per_block: %v", alive[i-1]-alive[i], alive)
		}
	}
}
