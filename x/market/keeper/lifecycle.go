package keeper

// Every state transition of x/market is here: matching an order to a bid
// (by auction or acceptance), closing a lease (with who pays for it),
// re-auctioning a group, closing an order or a whole deployment, an order
// expiring, a lease missing its start deadline, a dispute window ending.

import (
	"context"
	"errors"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/x/internal/sweep"
	"github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// closeOrder ends an order that never got a lease, refunding its bids.
func (k *Keeper) closeOrder(ctx context.Context, key OrderKey, o types.Order, reason string) error {
	bids, err := k.orderBids(ctx, key)
	if err != nil {
		return err
	}
	for _, b := range bids {
		bk, _, err := k.bidKey(b.Id)
		if err != nil {
			return err
		}
		if err := k.removeBid(ctx, bk, b, "order_closed"); err != nil {
			return err
		}
	}
	if err := k.Orders.Remove(ctx, key); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventOrderClosed{Id: o.Id, Reason: reason})
}

// closeDeployment ends every lease (with reason) and order of a deployment
// and removes it. With an escrowReason the escrow account is closed and
// refunded too; "" leaves it alone (a depleted account is gone already).
func (k *Keeper) closeDeployment(ctx context.Context, key DeploymentKey, owner string, reason types.CloseReason, escrowReason string) error {
	iter, err := k.Leases.Iterate(ctx, leasesOf(key))
	if err != nil {
		return err
	}
	leases, err := iter.KeyValues()
	if err != nil {
		return err
	}
	for _, kv := range leases {
		if err := k.closeLease(ctx, kv.Key, kv.Value, reason, false); err != nil {
			return err
		}
	}
	orders, err := k.Orders.KeyValues(ctx, ordersOf(key))
	if err != nil {
		return err
	}
	for _, kv := range orders {
		if kv.Value.State == types.ORDER_STATE_OPEN {
			if err := k.unqueueOrder(ctx, kv.Key, kv.Value); err != nil {
				return err
			}
		}
		if err := k.closeOrder(ctx, kv.Key, kv.Value, "deployment_closed"); err != nil {
			return err
		}
	}
	if escrowReason != "" {
		if _, err := k.escrow.CloseAccount(ctx, accountID(owner, key.K2()), escrowReason); err != nil {
			return err
		}
	}
	if err := k.Deployments.Remove(ctx, key); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventDeploymentClosed{Owner: owner, Dseq: key.K2()})
}

// closeDeploymentIfEmpty closes a deployment with no order left.
func (k *Keeper) closeDeploymentIfEmpty(ctx context.Context, key DeploymentKey, owner string, reason types.CloseReason) error {
	any, err := nonEmpty(k.Orders.Keys(ctx, ordersOf(key)))
	if err != nil {
		return err
	}
	if any {
		return nil
	}
	return k.closeDeployment(ctx, key, owner, reason, reason.ReasonString())
}

// closeLease ends a lease and settles who pays for it:
//
//   - an active lease: its escrow payment is settled and paid (when
//     settleEscrow; a depleted account has done it already) and the bid
//     deposit goes back to the provider;
//   - a pending lease closed for a tenant fault (TenantFault): the deposit
//     goes back to the provider and the tenant's escrow pays the
//     reservation fee — held for dispute_window after a manifest_missing
//     close, otherwise to the community pool at once;
//   - a pending lease closed for a provider fault (ProviderFault): the
//     deposit is forfeited to the community pool and, while max_reauctions
//     allows, the group is auctioned again under the next oseq without that
//     provider;
//   - any other pending close (the tenant's, a whole deployment's): the
//     deposit goes back to the provider.
//
// The lease and its order are removed; a deployment left with nothing is
// closed and its escrow refunded. settleEscrow is false only while a whole
// deployment is being closed (which refunds escrow itself): then nothing is
// re-auctioned and no fee is taken.
func (k *Keeper) closeLease(ctx context.Context, key BidKey, lease types.Lease, reason types.CloseReason, settleEscrow bool) error {
	provider, err := k.addr("provider", lease.Id.Provider)
	if err != nil {
		return err
	}
	pending := lease.State == types.LEASE_STATE_PENDING
	if !pending && settleEscrow {
		if err := k.escrow.ClosePayment(ctx, paymentID(lease.Id), reason.ReasonString()); err != nil {
			return err
		}
	}
	if pending {
		if err := k.StartDeadlines.Remove(ctx, collections.Join(lease.StartDeadline, key)); err != nil {
			return err
		}
	} else if err := k.leaseEnded(ctx, provider, key); err != nil {
		return err
	}
	forfeit := pending && reason.ProviderFault()
	if lease.BidDeposit.IsPositive() {
		if forfeit {
			if err := k.toCommunityPool(ctx, lease.BidDeposit); err != nil {
				return err
			}
			if err := k.emit(ctx, &types.EventBidDepositForfeited{Lease: lease.Id, Deposit: lease.BidDeposit}); err != nil {
				return err
			}
		} else if err := k.bank.SendCoinsFromModuleToAccount(ctx, types.ModuleName, provider, sdk.NewCoins(lease.BidDeposit)); err != nil {
			return err
		}
	}
	if pending && settleEscrow && reason.TenantFault() {
		if err := k.chargeReservationFee(ctx, key, lease, reason); err != nil {
			return err
		}
	}
	if err := k.Leases.Remove(ctx, key); err != nil {
		return err
	}
	switch reason {
	case types.CLOSE_REASON_PROVIDER:
		if err := k.providers.RecordClosedByProvider(ctx, provider); err != nil {
			return err
		}
	case types.CLOSE_REASON_PROVIDER_UNRESPONSIVE:
		if err := k.providers.RecordUnresponsive(ctx, provider); err != nil {
			return err
		}
	}
	if err := k.emit(ctx, &types.EventLeaseClosed{Id: lease.Id, Reason: reason}); err != nil {
		return err
	}
	orderKey := collections.Join3(key.K1(), key.K2(), lease.Id.Order.GroupOrder())
	if forfeit && settleEscrow {
		again, err := k.reauction(ctx, orderKey, lease.Id.Provider)
		if err != nil || again {
			return err
		}
	}
	if err := k.Orders.Remove(ctx, orderKey); err != nil {
		return err
	}
	if settleEscrow {
		return k.closeDeploymentIfEmpty(ctx, deploymentOf(key), lease.Id.Order.Owner, reason)
	}
	return nil
}

// reauction replaces the matched order of a failed pending lease with a new
// open order for the same group under the next oseq, excluding every
// provider that failed it so far. It reports false (and changes nothing)
// once the group has been auctioned max_reauctions times again.
func (k *Keeper) reauction(ctx context.Context, key OrderKey, failed string) (bool, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return false, err
	}
	o, err := k.Orders.Get(ctx, key)
	if err != nil {
		return false, err
	}
	if o.Id.Oseq > params.MaxReauctions { // oseq 1 is the first auction
		return false, nil
	}
	if err := k.Orders.Remove(ctx, key); err != nil {
		return false, err
	}
	h := k.height(ctx)
	next := types.Order{
		Id:    types.OrderID{Owner: o.Id.Owner, Dseq: o.Id.Dseq, Gseq: o.Id.Gseq, Oseq: o.Id.Oseq + 1},
		State: types.ORDER_STATE_OPEN, Spec: o.Spec, CreatedAt: h,
		BidClosesAt: h + int64(params.DefaultBidWindow), ExpiresAt: h + int64(params.OrderTtl),
		ExcludedProviders: append(append([]string(nil), o.ExcludedProviders...), failed),
	}
	return true, k.openOrder(ctx, collections.Join3(key.K1(), key.K2(), next.Id.GroupOrder()), next, true)
}

// openOrder stores an open order and queues its auction (its expiry is
// queued when the auction finds no winner: sweepOrder).
func (k *Keeper) openOrder(ctx context.Context, key OrderKey, o types.Order, reauction bool) error {
	if err := k.Orders.Set(ctx, key, o); err != nil {
		return err
	}
	if err := k.OrderQueue.Set(ctx, collections.Join(o.BidClosesAt, key)); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventOrderCreated{Id: o.Id, BidClosesAt: o.BidClosesAt, Reauction: reauction})
}

// eligibleProvider is a bidder that may still win: registered and bonded
// at min_bond. Anything else is ErrProviderNotEligible, saying why; a store
// failure is returned as it is (it must not quietly change a winner).
func (k *Keeper) eligibleProvider(ctx context.Context, addr string) (providertypes.Provider, error) {
	provider, err := k.addr("provider", addr)
	if err != nil {
		return providertypes.Provider{}, err
	}
	p, err := k.providers.GetProvider(ctx, provider)
	if errors.Is(err, providertypes.ErrProviderNotFound) {
		return p, errorsmod.Wrapf(types.ErrProviderNotEligible, "%s is not a registered provider", addr)
	}
	if err != nil {
		return p, err
	}
	if ok, err := k.providers.HasMinBond(ctx, p); err != nil {
		return p, err
	} else if !ok {
		return p, errorsmod.Wrapf(types.ErrProviderNotEligible, "bond %s of %s is below min_bond", p.Bond, addr)
	}
	return p, nil
}

// audited refuses a provider whose attributes lack the auditors'
// signatures the group's signed_by names (x/audit).
func (k *Keeper) audited(ctx context.Context, spec types.GroupSpec, provider string) error {
	sb := spec.SignedBy
	if len(sb.AllOf) == 0 && len(sb.AnyOf) == 0 {
		return nil
	}
	owner, err := k.addr("provider", provider)
	if err != nil {
		return err
	}
	ok, err := k.audit.Satisfies(ctx, owner, spec.Requirements, sb.AllOf, sb.AnyOf)
	if err != nil {
		return err
	}
	if !ok {
		return errorsmod.Wrapf(types.ErrProviderNotEligible, "%s lacks the auditor signatures the group requires (all of %v, any of %v)", provider, sb.AllOf, sb.AnyOf)
	}
	return nil
}

// chargeReservationFee takes the reservation fee out of the tenant's
// escrow (at most what it holds). After a manifest_missing close the
// market holds it for dispute_window blocks; otherwise it goes to the
// community pool now.
func (k *Keeper) chargeReservationFee(ctx context.Context, key BidKey, lease types.Lease, reason types.CloseReason) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	fee, err := k.escrow.Charge(ctx, accountID(lease.Id.Order.Owner, lease.Id.Order.Dseq), types.ReservationFee(lease.Price, params.ReservationFeeSeconds), types.ModuleName)
	if err != nil {
		return err
	}
	var heldUntil int64
	if reason == types.CLOSE_REASON_MANIFEST_MISSING {
		d, err := k.Deployments.Get(ctx, deploymentOf(key))
		if err != nil {
			return err
		}
		h := k.height(ctx)
		heldUntil = h + int64(params.DisputeWindow)
		rec := types.DisputableClose{Lease: lease.Id, ManifestHash: d.ManifestHash, Fee: fee, ClosedAt: h, DisputeUntil: heldUntil}
		if err := k.Disputable.Set(ctx, key, rec); err != nil {
			return err
		}
		if err := k.DisputeQueue.Set(ctx, collections.Join(heldUntil, key)); err != nil {
			return err
		}
	} else if err := k.toCommunityPool(ctx, fee); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventReservationFeeCharged{Lease: lease.Id, Reason: reason, Fee: fee, HeldUntil: heldUntil})
}

// toCommunityPool moves coins the market module holds to the community pool.
func (k *Keeper) toCommunityPool(ctx context.Context, c sdk.Coin) error {
	if !c.IsPositive() {
		return nil
	}
	return k.pool.FundCommunityPool(ctx, sdk.NewCoins(c), authtypes.NewModuleAddress(types.ModuleName))
}

// endDisputeWindow releases a manifest_missing close nobody disputed: its
// held fee goes to the community pool.
func (k *Keeper) endDisputeWindow(ctx context.Context, key BidKey) error {
	rec, err := k.Disputable.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := k.Disputable.Remove(ctx, key); err != nil {
		return err
	}
	if err := k.toCommunityPool(ctx, rec.Fee); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventDisputeWindowClosed{Lease: rec.Lease, Fee: rec.Fee})
}

// depositCovered reports whether a bid's provider can pay its deposit now.
func (k *Keeper) depositCovered(ctx context.Context, b types.Bid) (bool, error) {
	provider, err := k.addr("provider", b.Id.Provider)
	if err != nil {
		return false, err
	}
	return !k.bank.SpendableCoin(ctx, provider, b.Deposit.Denom).Amount.LT(b.Deposit.Amount), nil
}

// match turns winner into a pending lease, taking its bid deposit, and
// deletes every other bid.
func (k *Keeper) match(ctx context.Context, orderKey OrderKey, order types.Order, winner types.Bid) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	// The deposit first: a winner that cannot pay it changes nothing.
	if winner.Deposit.IsPositive() {
		provider, err := k.addr("provider", winner.Id.Provider)
		if err != nil {
			return err
		}
		if err := k.bank.SendCoins(ctx, provider, k.moduleAddr, sdk.NewCoins(winner.Deposit)); err != nil {
			return errorsmod.Wrapf(types.ErrDepositNotCovered, "%s: %v", winner.Id.Name(), err)
		}
	}
	bids, err := k.orderBids(ctx, orderKey)
	if err != nil {
		return err
	}
	for _, b := range bids {
		key, _, err := k.bidKey(b.Id)
		if err != nil {
			return err
		}
		if b.Id.Provider == winner.Id.Provider {
			if err := k.Bids.Remove(ctx, key); err != nil {
				return err
			}
			continue
		}
		if err := k.removeBid(ctx, key, b, "lost"); err != nil {
			return err
		}
	}
	order.State = types.ORDER_STATE_MATCHED
	if err := k.Orders.Set(ctx, orderKey, order); err != nil {
		return err
	}
	h := k.height(ctx)
	lease := types.Lease{
		Id: winner.Id, Price: winner.Price, State: types.LEASE_STATE_PENDING, CreatedAt: h,
		StartDeadline: h + int64(params.StartTimeout), BidDeposit: winner.Deposit,
	}
	leaseKey, provider, err := k.bidKey(lease.Id)
	if err != nil {
		return err
	}
	if err := k.Leases.Set(ctx, leaseKey, lease); err != nil {
		return err
	}
	if err := k.StartDeadlines.Set(ctx, collections.Join(lease.StartDeadline, leaseKey)); err != nil {
		return err
	}
	if err := k.providers.RecordLeaseWon(ctx, provider); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventLeaseCreated{Id: lease.Id, Price: lease.Price, StartDeadline: lease.StartDeadline})
}

// unqueueOrder takes an open order off the order queue (which is also the
// open-orders index), where it waits at its bid_closes_at for its auction
// or, once an auction found no winner, at its expires_at.
func (k *Keeper) unqueueOrder(ctx context.Context, key OrderKey, o types.Order) error {
	at := collections.Join(o.BidClosesAt, key)
	if has, err := k.OrderQueue.Has(ctx, at); err != nil {
		return err
	} else if !has {
		at = collections.Join(o.ExpiresAt, key)
	}
	return k.OrderQueue.Remove(ctx, at)
}

// sweepOrder handles an open order's entry in the order queue, due at
// height at (the sweep took it off the queue): the order's auction when
// at is its bid_closes_at, then its expiry when at has reached
// expires_at; an order the auction left open waits at expires_at for a
// late bid (CreateBid moves it back) or its expiry.
//
// The auction runs on its own branch: one that fails (a bug one record
// meets, say) is parked as an auction, with none of its writes, and the
// order still goes on to its expiry, which refunds the tenant; retrying
// the parked auction moves the order back to it (requeueOrder).
func (k *Keeper) sweepOrder(ctx context.Context, e collections.Pair[int64, OrderKey]) error {
	at, key := e.K1(), e.K2()
	o, err := k.Orders.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil
	}
	if err != nil || o.State != types.ORDER_STATE_OPEN {
		return err
	}
	switch {
	case at == o.BidClosesAt:
		var matched bool
		if err := sweep.Try(ctx, func(ctx context.Context) (err error) {
			matched, err = k.closeAuction(ctx, key, o)
			return err
		}); err != nil {
			if err := k.orders().Park(ctx, e, err); err != nil {
				return err
			}
		} else if matched {
			return nil
		}
	case at < o.ExpiresAt:
		// Neither of the order's heights: a stale entry. The order keeps
		// the entry it has; one with none waits for its expiry.
		for _, h := range []int64{o.BidClosesAt, o.ExpiresAt} {
			if has, err := k.OrderQueue.Has(ctx, collections.Join(h, key)); err != nil || has {
				return err
			}
		}
	}
	if at >= o.ExpiresAt {
		return k.expireOrder(ctx, key, o)
	}
	return k.OrderQueue.Set(ctx, collections.Join(o.ExpiresAt, key))
}

// requeueOrder puts a parked entry of the order queue back in place of
// the order's current entry, so the order stays queued once. A parked
// auction or expiry goes back where it was; one whose height is no longer
// the order's (a late bid moved the auction since) goes back at the
// order's current auction. An entry of an order no longer open is dropped.
func (k *Keeper) requeueOrder(ctx context.Context, e collections.Pair[int64, OrderKey]) error {
	key := e.K2()
	o, err := k.Orders.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil
	}
	if err != nil || o.State != types.ORDER_STATE_OPEN {
		return err
	}
	if err := k.unqueueOrder(ctx, key, o); err != nil {
		return err
	}
	if e.K1() != o.BidClosesAt && e.K1() < o.ExpiresAt {
		e = collections.Join(o.BidClosesAt, key)
	}
	return k.OrderQueue.Set(ctx, e)
}

// expireOrder closes an order nobody bid on: its group's share of the
// initial deposit goes back to the tenant, and a deployment with nothing
// left closes altogether (refunding the rest).
func (k *Keeper) expireOrder(ctx context.Context, key OrderKey, o types.Order) error {
	if err := k.closeOrder(ctx, key, o, "expired"); err != nil {
		return err
	}
	dkey := deploymentOf(key)
	d, err := k.Deployments.Get(ctx, dkey)
	if err != nil {
		return err
	}
	remaining, err := nonEmpty(k.Orders.Keys(ctx, ordersOf(dkey)))
	if err != nil {
		return err
	}
	if !remaining {
		return k.closeDeployment(ctx, dkey, o.Id.Owner, types.CLOSE_REASON_UNSPECIFIED, "order_expired")
	}
	if d.Groups == 0 || !d.Deposit.IsPositive() {
		return nil
	}
	share := sdk.NewCoin(d.Deposit.Denom, d.Deposit.Amount.QuoRaw(int64(d.Groups)))
	_, err = k.escrow.Refund(ctx, accountID(o.Id.Owner, o.Id.Dseq), share)
	return err
}

// closeAuction matches an open order to its best bid from an eligible
// provider, if it has any; an order without one stays open for late bids
// until it expires.
func (k *Keeper) closeAuction(ctx context.Context, key OrderKey, o types.Order) (matched bool, err error) {
	bids, err := k.orderBids(ctx, key)
	if err != nil || len(bids) == 0 {
		return false, err
	}
	// Only a provider still registered and bonded at min_bond may win: a
	// bond slashed or unbonded since the bid leaves the bid in place but out
	// of this round. The order stays open: a later bid on it moves its
	// auction to that block (and the topped-up provider's bid is considered
	// again then); otherwise it expires.
	var cands []types.Candidate
	var eligible []types.Bid
	for _, b := range bids {
		p, err := k.eligibleProvider(ctx, b.Id.Provider)
		if err == nil {
			// An auditor who withdrew its signature since the bid takes the
			// provider out of the round.
			err = k.audited(ctx, o.Spec, b.Id.Provider)
		}
		if err == nil {
			// A provider whose score fell below the group's minimum since
			// it bid sits this round out too.
			err = reliable(o.Spec, p)
		}
		if errors.Is(err, types.ErrProviderNotEligible) || errors.Is(err, types.ErrBelowReliability) {
			continue
		}
		if err != nil {
			return false, err
		}
		// The winner's deposit is taken when its lease is made: a provider
		// that can no longer cover it sits this round out.
		if covered, err := k.depositCovered(ctx, b); err != nil {
			return false, err
		} else if !covered {
			continue
		}
		cands = append(cands, types.Candidate{Price: b.Price.Amount, Reliability: p.Stats.Reliability(), Seq: b.Seq})
		eligible = append(eligible, b)
	}
	if len(eligible) == 0 {
		return false, nil
	}
	return true, k.match(ctx, key, o, eligible[types.BestCandidate(cands)])
}

// startTimedOut closes a lease its provider did not start in time: the
// provider is slashed to the community pool, its bid deposit forfeited
// there too, the tenant pays nothing and the group is auctioned again
// without that provider (closeLease).
func (k *Keeper) startTimedOut(ctx context.Context, key BidKey) error {
	lease, err := k.Leases.Get(ctx, key)
	if err != nil {
		return err
	}
	provider, err := k.addr("provider", lease.Id.Provider)
	if err != nil {
		return err
	}
	fraction, err := k.providers.StartFailureSlash(ctx)
	if err != nil {
		return err
	}
	if _, err := k.providers.Slash(ctx, provider, fraction, types.CLOSE_REASON_PROVIDER_START_TIMEOUT.ReasonString(), lease.Id.Name()); err != nil {
		return err
	}
	if err := k.providers.RecordStartFailure(ctx, provider); err != nil {
		return err
	}
	return k.closeLease(ctx, key, lease, types.CLOSE_REASON_PROVIDER_START_TIMEOUT, true)
}
