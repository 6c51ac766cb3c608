package keeper_test

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/collections"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/testutil/apptest"
	"github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Fault economics: nobody profits from the other side's failure. Prices
// here are 1,000 GPN/h, so the default reservation fee (600 s) is
// 166,666,666ugpn.
const (
	faultPrice   = 1_000_000_000
	faultDeposit = 500_000_000
	faultFee     = 166_666_666
)

// win deploys one group, has provider p bid, and closes the auction.
func (w *world) win(p int) uint64 {
	w.t.Helper()
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) { dseq = w.deploy(ctx, faultDeposit, group("h100")) })
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if err := w.bid(ctx, dseq, p, faultPrice); err != nil {
			w.t.Fatal(err)
		}
	})
	w.c.NextBlock(time.Second)
	w.c.NextBlock(time.Second)
	if _, err := w.c.App.MarketKeeper.Leases.Get(w.c.Query(), mustLeaseKey(w.t, w, dseq, p)); err != nil {
		w.t.Fatalf("no lease after the auction: %v", err)
	}
	return dseq
}

func (w *world) pool(ctx sdk.Context) int64 {
	fp, err := w.c.App.DistrKeeper.FeePool.Get(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return fp.CommunityPool.AmountOf(denom).TruncateInt64()
}

func (w *world) bank(ctx sdk.Context, addr sdk.AccAddress) int64 {
	return w.c.App.BankKeeper.GetBalance(ctx, addr, denom).Amount.Int64()
}

func (w *world) closeAs(ctx sdk.Context, dseq uint64, p int, r types.CloseReason) error {
	_, err := w.market.CloseLease(ctx, &types.MsgCloseLease{Sender: w.provs[p].String(), Lease: w.leaseID(dseq, p), Reason: r})
	return err
}

func TestTenantFaultCostsTheTenantNotTheProvider(t *testing.T) {
	w := newWorld(t)
	dseq := w.win(0)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if err := w.closeAs(ctx, dseq, 0, types.CLOSE_REASON_WORKLOAD_COMPLETED); !errors.Is(err, types.ErrInvalidReason) {
			t.Errorf("workload_completed for a lease that never started: %v", err)
		}
		if err := w.closeAs(ctx, dseq, 0, types.CLOSE_REASON_MANIFEST_MISSING); !errors.Is(err, types.ErrManifestTimeout) {
			t.Errorf("manifest_missing before manifest_timeout: %v", err)
		}
		tenant, prov, pool := w.bank(ctx, w.tenant), w.bank(ctx, w.provs[0]), w.pool(ctx)
		if err := w.closeAs(ctx, dseq, 0, types.CLOSE_REASON_IMAGE_UNAVAILABLE); err != nil {
			t.Fatal(err)
		}
		// The provider: deposit back, no slash. The tenant: escrow back
		// less the fee, which went to the community pool.
		if got := w.bank(ctx, w.provs[0]) - prov; got != 1_000_000 {
			t.Errorf("provider got %d back, want its 1000000 deposit", got)
		}
		if got := w.bank(ctx, w.tenant) - tenant; got != faultDeposit-faultFee {
			t.Errorf("tenant got %d back, want %d", got, faultDeposit-faultFee)
		}
		if got := w.pool(ctx) - pool; got != faultFee {
			t.Errorf("community pool got %d, want %d", got, faultFee)
		}
		p, _ := w.c.App.ProviderKeeper.GetProvider(ctx, w.provs[0])
		if p.Bond.Amount.Int64() != 600_000_000 || p.Stats.StartFailures != 0 {
			t.Errorf("provider after a tenant fault: bond %s stats %+v", p.Bond, p.Stats)
		}
	})
	if n := countDeployments(t, w); n != 0 {
		t.Errorf("%d deployments left", n)
	}
	if b := w.moduleBalance(types.ModuleName); b != 0 {
		t.Errorf("market module holds %d", b)
	}
}

// manifestMissing wins a lease for provider 0 and closes it as
// manifest_missing once the timeout allows; it returns the lease.
func manifestMissing(t *testing.T, w *world) types.BidID {
	t.Helper()
	w.c.Do(time.Second, func(ctx sdk.Context) {
		p, _ := w.c.App.MarketKeeper.Params.Get(ctx)
		p.ManifestTimeout, p.DisputeWindow = 3, 5
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: p}); err != nil {
			t.Fatal(err)
		}
		// The provider's key is on chain once it has signed a tx.
		acc := w.c.App.AccountKeeper.GetAccount(ctx, w.provs[0])
		if err := acc.SetPubKey(w.c.Keys[1].PubKey()); err != nil {
			t.Fatal(err)
		}
		w.c.App.AccountKeeper.SetAccount(ctx, acc)
	})
	dseq := w.win(0)
	w.c.NextBlock(time.Second)
	w.c.NextBlock(time.Second)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if err := w.closeAs(ctx, dseq, 0, types.CLOSE_REASON_MANIFEST_MISSING); err != nil {
			t.Fatal(err)
		}
	})
	// The fee is held for the dispute window.
	if b := w.moduleBalance(types.ModuleName); b != faultFee {
		t.Fatalf("market module holds %d, want the %d fee", b, faultFee)
	}
	return w.leaseID(dseq, 0)
}

func receipt(w *world, lease types.BidID, hash []byte, signer int) types.ManifestReceipt {
	r := types.ManifestReceipt{Lease: lease, ManifestHash: hash, IssuedAt: 1_700_000_000}
	sig, err := w.c.Keys[signer].Sign(types.ReceiptSignBytes(apptest.ChainID, lease, hash, r.IssuedAt))
	if err != nil {
		w.t.Fatal(err)
	}
	r.Signature = sig
	return r
}

func TestReceiptDisprovesManifestMissing(t *testing.T) {
	w := newWorld(t)
	lease := manifestMissing(t, w)
	hash := sha256.Sum256([]byte("manifest"))
	other := sha256.Sum256([]byte("another manifest"))
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dispute := func(r types.ManifestReceipt) (*types.MsgDisputeLeaseResponse, error) {
			return w.market.DisputeLease(ctx, &types.MsgDisputeLease{Owner: w.tenant.String(), Receipt: r})
		}
		forged := receipt(w, lease, hash[:], 0) // signed by the tenant's own key
		if _, err := dispute(forged); !errors.Is(err, types.ErrInvalidReceipt) {
			t.Errorf("receipt signed by another key: %v", err)
		}
		if _, err := dispute(receipt(w, lease, other[:], 1)); !errors.Is(err, types.ErrInvalidReceipt) {
			t.Errorf("receipt for another manifest: %v", err)
		}
		tampered := receipt(w, lease, hash[:], 1)
		tampered.IssuedAt++
		if _, err := dispute(tampered); !errors.Is(err, types.ErrInvalidReceipt) {
			t.Errorf("tampered receipt: %v", err)
		}
		if _, err := w.market.DisputeLease(ctx, &types.MsgDisputeLease{Owner: w.provs[1].String(), Receipt: receipt(w, lease, hash[:], 1)}); !errors.Is(err, types.ErrUnauthorized) {
			t.Errorf("dispute by a stranger: %v", err)
		}
		tenant, pool := w.bank(ctx, w.tenant), w.pool(ctx)
		res, err := dispute(receipt(w, lease, hash[:], 1))
		if err != nil {
			t.Fatal(err)
		}
		if res.Slashed.Amount.Int64() != 30_000_000 || res.FeeReturned.Amount.Int64() != faultFee {
			t.Errorf("dispute result %+v", res)
		}
		if got := w.bank(ctx, w.tenant) - tenant; got != faultFee {
			t.Errorf("tenant got %d back, want the fee %d", got, faultFee)
		}
		if got := w.pool(ctx) - pool; got != 30_000_000 {
			t.Errorf("community pool got %d, want the 30000000 slash", got)
		}
		p, _ := w.c.App.ProviderKeeper.GetProvider(ctx, w.provs[0])
		if p.Bond.Amount.Int64() != 570_000_000 || p.Stats.StartFailures != 1 {
			t.Errorf("provider after a lost dispute: bond %s stats %+v", p.Bond, p.Stats)
		}
		if _, err := dispute(receipt(w, lease, hash[:], 1)); !errors.Is(err, types.ErrNotDisputable) {
			t.Errorf("second dispute: %v", err)
		}
	})
	if b := w.moduleBalance(types.ModuleName); b != 0 {
		t.Errorf("market module holds %d", b)
	}
}

func TestUndisputedFeeGoesToPoolAfterWindow(t *testing.T) {
	w := newWorld(t)
	lease := manifestMissing(t, w)
	for range 6 {
		w.c.NextBlock(time.Second)
	}
	if b := w.moduleBalance(types.ModuleName); b != 0 {
		t.Errorf("market module still holds %d after the dispute window", b)
	}
	hash := sha256.Sum256([]byte("manifest"))
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := w.market.DisputeLease(ctx, &types.MsgDisputeLease{Owner: w.tenant.String(), Receipt: receipt(w, lease, hash[:], 1)}); !errors.Is(err, types.ErrNotDisputable) {
			t.Errorf("dispute after the window: %v", err)
		}
	})
}

func TestProviderWalkAwayForfeitsAndReauctions(t *testing.T) {
	w := newWorld(t)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		p, _ := w.c.App.MarketKeeper.Params.Get(ctx)
		p.MaxReauctions = 1
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: p}); err != nil {
			t.Fatal(err)
		}
	})
	dseq := w.win(0)
	order2 := types.OrderID{Owner: w.tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 2}
	w.c.Do(time.Second, func(ctx sdk.Context) {
		tenant, prov, pool := w.bank(ctx, w.tenant), w.bank(ctx, w.provs[0]), w.pool(ctx)
		if err := w.closeAs(ctx, dseq, 0, types.CLOSE_REASON_PROVIDER); err != nil {
			t.Fatal(err)
		}
		if w.bank(ctx, w.tenant) != tenant || w.bank(ctx, w.provs[0]) != prov {
			t.Errorf("a walk-away moved the tenant's or provider's balance")
		}
		if got := w.pool(ctx) - pool; got != 1_000_000 {
			t.Errorf("community pool got %d, want the forfeited 1000000 deposit", got)
		}
		bid := func(p int) error {
			_, err := w.market.CreateBid(ctx, &types.MsgCreateBid{Provider: w.provs[p].String(), Order: order2,
				Price: sdk.NewInt64DecCoin(denom, faultPrice), Deposit: sdk.NewInt64Coin(denom, 1_000_000)})
			return err
		}
		if err := bid(0); !errors.Is(err, types.ErrProviderExcluded) {
			t.Errorf("the provider that walked away bids again: %v", err)
		}
		if err := bid(1); err != nil {
			t.Errorf("another provider bids on the re-auction: %v", err)
		}
	})
	w.c.NextBlock(time.Second)
	w.c.NextBlock(time.Second)
	second := types.BidID{Order: order2, Provider: w.provs[1].String()}
	if _, err := w.c.App.MarketKeeper.Leases.Get(w.c.Query(), leaseKey(w.tenant, dseq, 1, 2, w.provs[1])); err != nil {
		t.Fatalf("no lease after the re-auction: %v", err)
	}
	// max_reauctions is 1: a second walk-away ends the deployment and
	// refunds the escrow in full.
	tenant := w.balance(w.tenant)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := w.market.CloseLease(ctx, &types.MsgCloseLease{Sender: w.provs[1].String(), Lease: second, Reason: types.CLOSE_REASON_PROVIDER}); err != nil {
			t.Fatal(err)
		}
	})
	if got := w.balance(w.tenant) - tenant; got != faultDeposit {
		t.Errorf("tenant got %d back after the last round failed, want %d", got, faultDeposit)
	}
	if n := countDeployments(t, w); n != 0 {
		t.Errorf("%d deployments after max_reauctions", n)
	}
}

func TestAcceptBidRefusesUnderbondedProvider(t *testing.T) {
	w := newWorld(t)
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		dseq = w.deploy(ctx, faultDeposit, group("h100"))
		if err := w.bid(ctx, dseq, 0, faultPrice); err != nil {
			t.Fatal(err)
		}
		if _, err := w.providers.Unbond(ctx, &providertypes.MsgUnbond{Owner: w.provs[0].String(), Amount: sdk.NewInt64Coin(denom, 500_000_000)}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.market.AcceptBid(ctx, &types.MsgAcceptBid{Owner: w.tenant.String(), Bid: w.leaseID(dseq, 0)}); !errors.Is(err, types.ErrProviderNotEligible) {
			t.Errorf("accepting the bid of an underbonded provider: %v", err)
		}
	})
}

// A start deadline whose handling fails is parked, not dropped: the parked
// query shows it, only governance retries it, and the retried entry is
// handled by the next EndBlock.
func TestFailedSweepEntryIsParkedAndRetried(t *testing.T) {
	w := newWorld(t)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		// A start deadline for a lease that does not exist: its handling fails.
		key := leaseKey(w.tenant, 99, 1, 1, w.provs[0])
		if err := w.c.App.MarketKeeper.StartDeadlines.Set(ctx, collections.Join(ctx.BlockHeight(), key)); err != nil {
			t.Fatal(err)
		}
	})
	w.c.NextBlock(time.Second)
	q := marketQuery(w.c.App.MarketKeeper)
	res, err := q.Parked(w.c.Query(), &types.QueryParkedRequest{})
	if err != nil || len(res.Items) != 1 || res.Items[0].Queue != "start_deadlines" || !strings.Contains(res.Items[0].Item, "/99/") {
		t.Fatalf("parked %+v %v", res, err)
	}
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := w.market.RetryParked(ctx, &types.MsgRetryParked{Authority: w.tenant.String(), Queue: "start_deadlines"}); !errors.Is(err, types.ErrUnauthorized) {
			t.Errorf("retry by a tenant: %v", err)
		}
		if _, err := w.market.RetryParked(ctx, &types.MsgRetryParked{Authority: w.c.App.MarketKeeper.Authority(), Queue: "nope"}); err == nil {
			t.Error("retry of an unknown queue accepted")
		}
		r, err := w.market.RetryParked(ctx, &types.MsgRetryParked{Authority: w.c.App.MarketKeeper.Authority(), Queue: "start_deadlines"})
		if err != nil || r.Retried != 1 {
			t.Fatalf("retry: %+v %v", r, err)
		}
	})
	// Still broken: parked again by the next sweep (not lost, not a halt).
	w.c.NextBlock(time.Second)
	if res, _ := q.Parked(w.c.Query(), &types.QueryParkedRequest{}); len(res.Items) != 1 {
		t.Errorf("after the retry: %+v", res)
	}
}
