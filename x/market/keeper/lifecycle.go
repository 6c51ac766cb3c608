package keeper

import (
	"context"

	"cosmossdk.io/collections"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/market/types"
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
	if err := k.unqueueOrder(ctx, key, o); err != nil {
		return err
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
	rngBids := collections.NewSuperPrefixedTripleRange[sdk.AccAddress, uint64, string](key.K1(), key.K2())
	iter, err := k.Leases.Iterate(ctx, rngBids)
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
	orderIter, err := k.Orders.Iterate(ctx, collections.NewSuperPrefixedTripleRange[sdk.AccAddress, uint64, uint64](key.K1(), key.K2()))
	if err != nil {
		return err
	}
	orders, err := orderIter.KeyValues()
	if err != nil {
		return err
	}
	for _, kv := range orders {
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
	it, err := k.Orders.Iterate(ctx, collections.NewSuperPrefixedTripleRange[sdk.AccAddress, uint64, uint64](key.K1(), key.K2()))
	if err != nil {
		return err
	}
	any := it.Valid()
	it.Close()
	if any {
		return nil
	}
	return k.closeDeployment(ctx, key, owner, reason, reason.ReasonString())
}
