package keeper

import (
	"context"
	"errors"
	"fmt"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	sdk "github.com/cosmos/cosmos-sdk/types"

	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/x/internal/dseqfirst"
	"github.com/gpunet/gpunet/x/internal/sweep"
	sweeptypes "github.com/gpunet/gpunet/x/internal/sweep/types"
	"github.com/gpunet/gpunet/x/market/types"
)

// InitGenesis loads the state and rebuilds every index.
func (k *Keeper) InitGenesis(ctx context.Context, gs types.GenesisState) error {
	if err := gs.Validate(k.addressCodec); err != nil {
		return err
	}
	// A genesis exported before v4 may park auctions and expiries, which
	// are the order queue's now.
	parked := make([]sweeptypes.ParkedItem, 0, len(gs.Parked))
	for _, it := range gs.Parked {
		it.Queue = parkedQueueName(it.Queue)
		parked = append(parked, it)
	}
	if err := sweep.Import(ctx, k.Parked, parked); err != nil {
		return err
	}
	// Parked entries are the one part of a genesis that holds store keys
	// as bytes: one exported before v5 holds them owner first.
	if _, err := dseqfirst.Parked(ctx, k.Parked, parkedLeads()); err != nil {
		return err
	}
	if err := k.Params.Set(ctx, gs.Params); err != nil {
		return err
	}
	for _, d := range gs.Deployments {
		owner, err := k.addr("owner", d.Owner)
		if err != nil {
			return err
		}
		if err := k.Deployments.Set(ctx, collections.Join(owner, d.Dseq), d); err != nil {
			return err
		}
	}
	withBids := map[string]bool{}
	for _, b := range gs.Bids {
		withBids[b.Id.Order.Name()] = true
	}
	for _, o := range gs.Orders {
		key, err := k.orderKey(o.Id)
		if err != nil {
			return err
		}
		if err := k.Orders.Set(ctx, key, o); err != nil {
			return err
		}
		if o.State == types.ORDER_STATE_OPEN {
			// An auction still to come, or one due with bids to decide
			// (carried over by the sweep bound), is queued at its close;
			// an order whose auction ran and found no bids waits at its
			// expiry for a late bid, as on the live chain.
			at := o.ExpiresAt
			if o.BidClosesAt >= k.height(ctx) || withBids[o.Id.Name()] {
				at = o.BidClosesAt
			}
			if err := k.OrderQueue.Set(ctx, collections.Join(at, key)); err != nil {
				return err
			}
		}
	}
	for _, b := range gs.Bids {
		key, _, err := k.bidKey(b.Id)
		if err != nil {
			return err
		}
		if err := k.Bids.Set(ctx, key, b); err != nil {
			return err
		}
	}
	for _, l := range gs.Leases {
		key, _, err := k.bidKey(l.Id)
		if err != nil {
			return err
		}
		if err := k.Leases.Set(ctx, key, l); err != nil {
			return err
		}
		if l.State == types.LEASE_STATE_PENDING {
			if err := k.StartDeadlines.Set(ctx, collections.Join(l.StartDeadline, key)); err != nil {
				return err
			}
		}
	}
	for _, d := range gs.DisputableCloses {
		key, _, err := k.bidKey(d.Lease)
		if err != nil {
			return err
		}
		if err := k.Disputable.Set(ctx, key, d); err != nil {
			return err
		}
		if err := k.DisputeQueue.Set(ctx, collections.Join(d.DisputeUntil, key)); err != nil {
			return err
		}
	}
	for _, d := range gs.DownLeases {
		key, provider, err := k.bidKey(d.Lease)
		if err != nil {
			return err
		}
		if err := k.DownLeases.Set(ctx, collections.Join(provider, key), d.Down); err != nil {
			return err
		}
	}
	if err := k.rebuildAttestations(ctx, gs.Attestations, 1); err != nil {
		return err
	}
	// next_dseq and next_bid_seq are checked above (every dseq and seq is
	// below them) and not stored: new ones come from per-block counters,
	// above any earlier block's.
	return k.ensureModuleAccount(ctx)
}

// rebuildAttestations stores the providers' attestation records, counting
// their active leases from the leases themselves, and queues their silence
// deadlines. A provider with active leases and no record (state from
// before attestations) starts answering for them now, with attest_grace
// blocks to attest.
func (k *Keeper) rebuildAttestations(ctx context.Context, recs []types.ProviderAttestation, graces int64) error {
	params, err := k.providers.LivenessParams(ctx)
	if err != nil {
		return err
	}
	// Migrations run market before provider: a chain upgraded from before
	// attestations has no liveness params yet.
	params = params.WithLivenessDefaults()
	h, now := k.height(ctx), k.headers.GetHeaderInfo(ctx).Time
	byProvider := map[string]*types.Attestation{}
	var order []string // deterministic: the order records and leases come in
	for _, r := range recs {
		a := r.Attestation
		a.ActiveLeases = 0
		byProvider[r.Provider] = &a
		order = append(order, r.Provider)
	}
	if err := k.Leases.Walk(ctx, nil, func(_ BidKey, l types.Lease) (bool, error) {
		if l.State != types.LEASE_STATE_ACTIVE {
			return false, nil
		}
		a, ok := byProvider[l.Id.Provider]
		if !ok {
			a = &types.Attestation{Height: h, Time: now}
			byProvider[l.Id.Provider] = a
			order = append(order, l.Id.Provider)
		}
		a.ActiveLeases++
		return false, nil
	}); err != nil {
		return err
	}
	for _, p := range order {
		a := byProvider[p]
		provider, err := k.addr("provider", p)
		if err != nil {
			return err
		}
		if old, err := k.Attestations.Get(ctx, provider); err == nil && old.Deadline != 0 {
			if err := k.SilenceQueue.Remove(ctx, collections.Join(old.Deadline, provider)); err != nil {
				return err
			}
		}
		switch {
		case a.ActiveLeases == 0:
			a.Deadline = 0
		case a.Deadline == 0:
			a.Deadline = a.Height + graces*int64(params.AttestGrace)
		}
		if a.Deadline != 0 {
			if err := k.SilenceQueue.Set(ctx, collections.Join(a.Deadline, provider)); err != nil {
				return err
			}
		}
		if err := k.Attestations.Set(ctx, provider, *a); err != nil {
			return err
		}
	}
	return nil
}

// migrationGraces: after the upgrade that starts attestations, providers
// have this many attest_grace to upgrade their daemons and attest.
const migrationGraces = 10

// MigrateToAttestations is x/market's state migration 2 → 3: every
// provider with active leases gets an attestation record, with
// migrationGraces × attest_grace blocks from the upgrade to attest them (x/provider's
// migration 1 → 2 gives the liveness params their defaults).
func (k *Keeper) MigrateToAttestations(ctx context.Context) error {
	return k.rebuildAttestations(ctx, nil, migrationGraces)
}

// MigrateToOrderQueue is x/market's state migration 3 → 4: an open order
// keeps one queue entry instead of two. An order still in the old auction
// queue (prefix 4) moves to the order queue at that height, in place of
// its expiry entry (the order queue is the former expiry queue, prefix 5);
// an order whose auction ran already keeps its expiry entry. Parked items
// of the old "auctions" and "expiries" queues are filed under "orders",
// whose retry puts them back on the order queue.
func (k *Keeper) MigrateToOrderQueue(ctx context.Context) error {
	st := k.storeService.OpenKVStore(ctx)
	it, err := st.Iterator(types.AuctionQueueKey, storetypes.PrefixEndBytes(types.AuctionQueueKey))
	if err != nil {
		return err
	}
	var old [][]byte
	for ; it.Valid(); it.Next() {
		old = append(old, it.Key())
	}
	if err := it.Close(); err != nil {
		return err
	}
	kc := k.OrderQueue.KeyCodec()
	for _, raw := range old {
		n, e, err := kc.Decode(raw[len(types.AuctionQueueKey):])
		if err != nil || n != len(raw)-len(types.AuctionQueueKey) {
			return fmt.Errorf("auction queue entry %x does not decode: %v", raw, err)
		}
		o, err := k.Orders.Get(ctx, e.K2())
		if err == nil && o.State == types.ORDER_STATE_OPEN {
			if err := k.OrderQueue.Remove(ctx, collections.Join(o.ExpiresAt, e.K2())); err != nil {
				return err
			}
			if err := k.OrderQueue.Set(ctx, e); err != nil {
				return err
			}
		} else if err != nil && !errors.Is(err, collections.ErrNotFound) {
			return err
		}
		if err := st.Delete(raw); err != nil {
			return err
		}
	}
	for _, q := range retiredOrderQueues {
		var items []sweeptypes.ParkedItem
		if err := k.Parked.Walk(ctx, collections.NewPrefixedPairRange[string, []byte](q), func(_ sweep.ParkedKey, v sweeptypes.ParkedItem) (bool, error) {
			items = append(items, v)
			return false, nil
		}); err != nil {
			return err
		}
		for _, it := range items {
			if err := k.Parked.Remove(ctx, collections.Join(q, it.Key)); err != nil {
				return err
			}
			it.Queue = parkedQueueName(q)
			if err := k.Parked.Set(ctx, collections.Join(it.Queue, it.Key), it); err != nil {
				return err
			}
		}
	}
	return nil
}

// ExportGenesis writes the whole state out.
func (k *Keeper) ExportGenesis(ctx context.Context) (*types.GenesisState, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	gs := &types.GenesisState{Params: params}
	if err := k.Deployments.Walk(ctx, nil, func(_ DeploymentKey, d types.Deployment) (bool, error) {
		gs.Deployments = append(gs.Deployments, d)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.Orders.Walk(ctx, nil, func(_ OrderKey, o types.Order) (bool, error) {
		gs.Orders = append(gs.Orders, o)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.Bids.Walk(ctx, nil, func(_ BidKey, b types.Bid) (bool, error) {
		gs.Bids = append(gs.Bids, b)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.Leases.Walk(ctx, nil, func(_ BidKey, l types.Lease) (bool, error) {
		gs.Leases = append(gs.Leases, l)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.Disputable.Walk(ctx, nil, func(_ BidKey, d types.DisputableClose) (bool, error) {
		gs.DisputableCloses = append(gs.DisputableCloses, d)
		return false, nil
	}); err != nil {
		return nil, err
	}
	// The lowest numbers not yet handed out, as genesis validation reads them.
	gs.NextDseq, gs.NextBidSeq = 1, 1
	for _, d := range gs.Deployments {
		gs.NextDseq = max(gs.NextDseq, d.Dseq+1)
	}
	for _, b := range gs.Bids {
		gs.NextBidSeq = max(gs.NextBidSeq, b.Seq+1)
	}
	if gs.Parked, err = sweep.List(ctx, k.Parked); err != nil {
		return nil, err
	}
	if err := k.Attestations.Walk(ctx, nil, func(p sdk.AccAddress, a types.Attestation) (bool, error) {
		gs.Attestations = append(gs.Attestations, types.ProviderAttestation{Provider: p.String(), Attestation: a})
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.DownLeases.Walk(ctx, nil, func(key collections.Pair[sdk.AccAddress, BidKey], d types.DownLease) (bool, error) {
		gs.DownLeases = append(gs.DownLeases, types.GenesisDownLease{Lease: bidID(key.K2()), Down: d})
		return false, nil
	}); err != nil {
		return nil, err
	}
	return gs, nil
}

// DepositInvariant checks that the module account holds exactly the
// leases' bid deposits (open bids hold none) and the reservation fees held
// for disputes. It returns a description of
// the mismatch, or "" when the books balance.
func (k *Keeper) DepositInvariant(ctx context.Context) (string, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return "", err
	}
	denom := params.BidMinDeposit.Denom
	total := sdkmath.ZeroInt()
	if err := k.Leases.Walk(ctx, nil, func(_ BidKey, l types.Lease) (bool, error) {
		total = total.Add(l.BidDeposit.Amount)
		return false, nil
	}); err != nil {
		return "", err
	}
	if err := k.Disputable.Walk(ctx, nil, func(_ BidKey, d types.DisputableClose) (bool, error) {
		total = total.Add(d.Fee.Amount)
		return false, nil
	}); err != nil {
		return "", err
	}
	held := k.bank.GetBalance(ctx, authtypes.NewModuleAddress(types.ModuleName), denom)
	if !held.Amount.Equal(total) {
		return fmt.Sprintf("market module account holds %s, lease deposits and held reservation fees add up to %s%s", held, total, denom), nil
	}
	return "", nil
}

// OrderQueueInvariant checks the order queue against the orders: each
// entry is an open order's, at its bid_closes_at or its expires_at; and
// each open order has one entry, or a parked one (an EndBlock sweep gave
// up on it).
func (k *Keeper) OrderQueueInvariant(ctx context.Context) (string, error) {
	var broken string
	seen := map[string]bool{}
	if err := k.OrderQueue.Walk(ctx, nil, func(e collections.Pair[int64, OrderKey]) (bool, error) {
		name := orderName(e.K2())
		o, err := k.Orders.Get(ctx, e.K2())
		switch {
		case errors.Is(err, collections.ErrNotFound):
			broken = fmt.Sprintf("order queue entry at %d for order %s, which does not exist", e.K1(), name)
		case err != nil:
			return true, err
		case o.State != types.ORDER_STATE_OPEN:
			broken = fmt.Sprintf("order queue entry at %d for order %s, which is %s", e.K1(), name, o.State)
		case e.K1() != o.BidClosesAt && e.K1() != o.ExpiresAt:
			broken = fmt.Sprintf("order %s is queued at %d, neither its bid_closes_at %d nor its expires_at %d", name, e.K1(), o.BidClosesAt, o.ExpiresAt)
		case seen[name]:
			broken = fmt.Sprintf("order %s is queued twice", name)
		}
		seen[name] = true
		return broken != "", nil
	}); err != nil || broken != "" {
		return broken, err
	}
	parked := map[string]bool{}
	if err := k.Parked.Walk(ctx, collections.NewPrefixedPairRange[string, []byte](OrdersQueue), func(key sweep.ParkedKey, _ sweeptypes.ParkedItem) (bool, error) {
		_, e, err := k.OrderQueue.KeyCodec().Decode(key.K2())
		if err != nil {
			return true, err
		}
		parked[orderName(e.K2())] = true
		return false, nil
	}); err != nil {
		return "", err
	}
	err := k.Orders.Walk(ctx, nil, func(key OrderKey, o types.Order) (bool, error) {
		if name := orderName(key); o.State == types.ORDER_STATE_OPEN && !seen[name] && !parked[name] {
			broken = fmt.Sprintf("open order %s is not on the order queue", name)
		}
		return broken != "", nil
	})
	return broken, err
}

// MigrateToLeanLayout is x/market's state migration 1 → 2. The open-orders
// index is dropped (the expiry queue holds exactly the open orders) and so
// are the stored dseq and bid-seq counters (per-block counters in the
// transient store replace them). Open bids no longer hold deposits (the
// winner's is taken when its lease is made): theirs go back to their
// providers. It makes sure the module account exists, as InitGenesis now
// does.
func (k *Keeper) MigrateToLeanLayout(ctx context.Context) error {
	if err := k.ensureModuleAccount(ctx); err != nil {
		return err
	}
	var refunds []types.Bid
	if err := k.Bids.Walk(ctx, nil, func(_ BidKey, b types.Bid) (bool, error) {
		refunds = append(refunds, b)
		return false, nil
	}); err != nil {
		return err
	}
	for _, b := range refunds {
		if !b.Deposit.IsPositive() {
			continue
		}
		provider, err := k.addr("provider", b.Id.Provider)
		if err != nil {
			return err
		}
		if err := k.bank.SendCoinsFromModuleToAccount(ctx, types.ModuleName, provider, sdk.NewCoins(b.Deposit)); err != nil {
			return fmt.Errorf("refund the deposit of bid %s: %w", b.Id.Name(), err)
		}
	}
	st := k.storeService.OpenKVStore(ctx)
	var stale [][]byte
	it, err := st.Iterator(types.OpenOrdersKey, storetypes.PrefixEndBytes(types.OpenOrdersKey))
	if err != nil {
		return err
	}
	for ; it.Valid(); it.Next() {
		stale = append(stale, it.Key())
	}
	if err := it.Close(); err != nil {
		return err
	}
	stale = append(stale, types.NextDseqKey, types.NextBidSeqKey)
	for _, key := range stale {
		if err := st.Delete(key); err != nil {
			return err
		}
	}
	return nil
}
