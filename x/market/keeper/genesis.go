package keeper

import (
	"context"
	"fmt"

	"cosmossdk.io/collections"

	"github.com/gpunet/gpunet/x/market/types"
)

// InitGenesis loads the state and rebuilds every index.
func (k *Keeper) InitGenesis(ctx context.Context, gs types.GenesisState) error {
	if err := gs.Params.Validate(); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	if gs.NextDseq == 0 || gs.NextBidSeq == 0 {
		return fmt.Errorf("next_dseq and next_bid_seq must be at least 1")
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
	for _, o := range gs.Orders {
		key, err := k.orderKey(o.Id)
		if err != nil {
			return err
		}
		if err := k.Orders.Set(ctx, key, o); err != nil {
			return err
		}
		if o.State == types.ORDER_STATE_OPEN {
			for _, set := range []error{
				k.OpenOrders.Set(ctx, key),
				k.AuctionQueue.Set(ctx, collections.Join(o.BidClosesAt, key)),
				k.ExpiryQueue.Set(ctx, collections.Join(o.ExpiresAt, key)),
			} {
				if set != nil {
					return set
				}
			}
		}
	}
	for _, b := range gs.Bids {
		key, provider, err := k.bidKey(b.Id)
		if err != nil {
			return err
		}
		if err := k.Bids.Set(ctx, key, b); err != nil {
			return err
		}
		if err := k.BidsByProvider.Set(ctx, collections.Join(provider, key)); err != nil {
			return err
		}
	}
	for _, l := range gs.Leases {
		key, provider, err := k.bidKey(l.Id)
		if err != nil {
			return err
		}
		if err := k.Leases.Set(ctx, key, l); err != nil {
			return err
		}
		if err := k.LeasesByProv.Set(ctx, collections.Join(provider, key)); err != nil {
			return err
		}
		if l.State == types.LEASE_STATE_PENDING {
			if err := k.StartDeadlines.Set(ctx, collections.Join(l.StartDeadline, key)); err != nil {
				return err
			}
		}
	}
	if err := k.NextDseq.Set(ctx, gs.NextDseq); err != nil {
		return err
	}
	return k.NextBidSeq.Set(ctx, gs.NextBidSeq)
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
	if gs.NextDseq, err = k.NextDseq.Peek(ctx); err != nil {
		return nil, err
	}
	if gs.NextBidSeq, err = k.NextBidSeq.Peek(ctx); err != nil {
		return nil, err
	}
	return gs, nil
}
