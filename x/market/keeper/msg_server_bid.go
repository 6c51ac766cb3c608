package keeper

import (
	"context"
	"errors"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/market/types"
)

// CreateBid places a provider's bid. Checks run in this order: not excluded
// from this group, open order, registered provider, bond at least
// min_bond, declared inventory and attributes satisfy the spec, price ≤ max,
// deposit ≥ bid_min_deposit and within the provider's balance, one bid per
// provider, bid limit. A full order takes a strictly cheaper bid by
// evicting its most expensive one (the latest of equals): twenty bids at
// max_price cannot squat an order.
//
// An open bid locks no coins: the deposit is taken from the winner when its
// lease is made (match), and forfeited if it walks away from that lease. So
// a bid costs one write, losing bids are never refunded, and a provider may
// bid on many orders without tying up a deposit for each.
func (k msgServer) CreateBid(ctx context.Context, msg *types.MsgCreateBid) (*types.MsgCreateBidResponse, error) {
	provider, err := k.addr("provider", msg.Provider)
	if err != nil {
		return nil, err
	}
	orderKey, order, err := k.getOrder(ctx, msg.Order)
	if err != nil {
		return nil, err
	}
	for _, ex := range order.ExcludedProviders {
		if ex == msg.Provider {
			return nil, errorsmod.Wrapf(types.ErrProviderExcluded, "%s failed an earlier lease of %s's group %d", msg.Provider, msg.Order.Owner, msg.Order.Gseq)
		}
	}
	if order.State != types.ORDER_STATE_OPEN {
		return nil, errorsmod.Wrapf(types.ErrOrderNotOpen, "%s is %s", msg.Order.Name(), order.State)
	}
	// 1. Registered, 2. bonded.
	p, err := k.eligibleProvider(ctx, msg.Provider)
	if err != nil {
		return nil, err
	}
	// 3. Inventory and attributes.
	if err := types.MatchSpec(order.Spec, p); err != nil {
		return nil, errorsmod.Wrapf(types.ErrSpecNotMatched, "%s: %v", msg.Order.Name(), err)
	}
	if err := k.audited(ctx, order.Spec, msg.Provider); err != nil {
		return nil, err
	}
	if err := reliable(order.Spec, p); err != nil {
		return nil, err
	}
	// 4. Price.
	if msg.Price.Denom != order.Spec.MaxPrice.Denom || msg.Price.Amount.IsNil() || !msg.Price.Amount.IsPositive() {
		return nil, errorsmod.Wrapf(types.ErrInvalidPrice, "price %s must be positive and in %s", msg.Price, order.Spec.MaxPrice.Denom)
	}
	if msg.Price.Amount.GT(order.Spec.MaxPrice.Amount) {
		return nil, errorsmod.Wrapf(types.ErrPriceTooHigh, "price %s is above max_price %s", msg.Price, order.Spec.MaxPrice)
	}
	params, err := k.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	// 5. Deposit.
	if msg.Deposit.Denom != params.BidMinDeposit.Denom || msg.Deposit.Amount.IsNil() || msg.Deposit.Amount.LT(params.BidMinDeposit.Amount) {
		return nil, errorsmod.Wrapf(types.ErrBidDepositTooLow, "deposit %s is below %s", msg.Deposit, params.BidMinDeposit)
	}
	if have := k.bank.GetBalance(ctx, provider, msg.Deposit.Denom); have.Amount.LT(msg.Deposit.Amount) {
		return nil, errorsmod.Wrapf(types.ErrDepositNotCovered, "deposit %s, balance %s: the winner's deposit is taken when its lease is made", msg.Deposit, have)
	}
	// 6. One bid per provider, 7. bid limit.
	bids, err := k.orderBids(ctx, orderKey)
	if err != nil {
		return nil, err
	}
	id := types.BidID{Order: msg.Order, Provider: msg.Provider}
	for _, b := range bids { // the order's bids are in hand: no extra read
		if b.Id.Provider == msg.Provider {
			return nil, errorsmod.Wrapf(types.ErrBidExists, "%s", id.Name())
		}
	}
	if len(bids) >= int(params.MaxBidsPerOrder) {
		worst := -1
		for i, b := range bids {
			if worst < 0 || b.Price.Amount.GT(bids[worst].Price.Amount) || (b.Price.Amount.Equal(bids[worst].Price.Amount) && b.Seq > bids[worst].Seq) {
				worst = i
			}
		}
		if !msg.Price.Amount.LT(bids[worst].Price.Amount) {
			return nil, errorsmod.Wrapf(types.ErrTooManyBids, "%s has %d bids; a new bid must be cheaper than the most expensive, %s", msg.Order.Name(), len(bids), bids[worst].Price)
		}
		wkey, _, err := k.bidKey(bids[worst].Id)
		if err != nil {
			return nil, err
		}
		if err := k.removeBid(ctx, wkey, bids[worst], "evicted"); err != nil {
			return nil, err
		}
	}
	bidKey, _, err := k.bidKey(id)
	if err != nil {
		return nil, err
	}

	seq, err := k.blockSeq(ctx, types.BidSeqCounterKey, "bid")
	if err != nil {
		return nil, err
	}
	h := k.height(ctx)
	if err := k.Bids.Set(ctx, bidKey, types.Bid{Id: id, Price: msg.Price, Deposit: msg.Deposit, Seq: seq, CreatedAt: h}); err != nil {
		return nil, err
	}
	// A bid after an empty window is decided at the end of this block: the
	// order's auction moves to this height, in the order as in the queue.
	if h > order.BidClosesAt {
		if err := k.unqueueOrder(ctx, orderKey, order); err != nil {
			return nil, err
		}
		order.BidClosesAt = h
		if err := k.Orders.Set(ctx, orderKey, order); err != nil {
			return nil, err
		}
		if err := k.OrderQueue.Set(ctx, collections.Join(h, orderKey)); err != nil {
			return nil, err
		}
	}
	return &types.MsgCreateBidResponse{}, k.emit(ctx, &types.EventBidCreated{Id: id, Price: msg.Price})
}

// CloseBid withdraws an open bid (which holds no coins).
func (k msgServer) CloseBid(ctx context.Context, msg *types.MsgCloseBid) (*types.MsgCloseBidResponse, error) {
	id := types.BidID{Order: msg.Order, Provider: msg.Provider}
	key, _, err := k.bidKey(id)
	if err != nil {
		return nil, err
	}
	bid, err := k.Bids.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil, errorsmod.Wrapf(types.ErrBidNotFound, "%s", id.Name())
	} else if err != nil {
		return nil, err
	}
	if err := k.removeBid(ctx, key, bid, "withdrawn"); err != nil {
		return nil, err
	}
	return &types.MsgCloseBidResponse{}, nil
}

// AcceptBid lets the tenant take any open bid before the window closes,
// from a provider that is still registered and bonded at min_bond.
func (k msgServer) AcceptBid(ctx context.Context, msg *types.MsgAcceptBid) (*types.MsgAcceptBidResponse, error) {
	if msg.Owner != msg.Bid.Order.Owner {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "%s does not own %s", msg.Owner, msg.Bid.Order.Name())
	}
	orderKey, order, err := k.getOrder(ctx, msg.Bid.Order)
	if err != nil {
		return nil, err
	}
	if order.State != types.ORDER_STATE_OPEN {
		return nil, errorsmod.Wrapf(types.ErrOrderNotOpen, "%s is %s", msg.Bid.Order.Name(), order.State)
	}
	key, _, err := k.bidKey(msg.Bid)
	if err != nil {
		return nil, err
	}
	bid, err := k.Bids.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil, errorsmod.Wrapf(types.ErrBidNotFound, "%s", msg.Bid.Name())
	} else if err != nil {
		return nil, err
	}
	if _, err := k.eligibleProvider(ctx, bid.Id.Provider); err != nil {
		return nil, err
	}
	// match changes nothing when it fails (a winner that cannot pay its
	// deposit); the order leaves its queue only once matched.
	if err := k.match(ctx, orderKey, order, bid); err != nil {
		return nil, err
	}
	return &types.MsgAcceptBidResponse{}, k.unqueueOrder(ctx, orderKey, order)
}

// orderBids lists the open bids on an order: a range over the bid keys
// (owner, dseq, gseq<<32|oseq, …), so the cost follows this order's bids
// (at most max_bids_per_order), not the whole deployment's.
func (k *Keeper) orderBids(ctx context.Context, orderKey OrderKey) ([]types.Bid, error) {
	var out []types.Bid
	rng := collections.NewSuperPrefixedQuadRange3[uint64, sdk.AccAddress, uint64, sdk.AccAddress](orderKey.K1(), orderKey.K2(), orderKey.K3())
	err := k.Bids.Walk(ctx, rng, func(_ BidKey, b types.Bid) (bool, error) {
		out = append(out, b)
		return false, nil
	})
	return out, err
}

// removeBid deletes a bid; an open bid holds no coins.
func (k *Keeper) removeBid(ctx context.Context, key BidKey, bid types.Bid, reason string) error {
	if err := k.Bids.Remove(ctx, key); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventBidClosed{Id: bid.Id, Reason: reason})
}
