package keeper

import (
	"context"

	errorsmod "cosmossdk.io/errors"

	"github.com/gpunet/gpunet/x/provider/types"
)

// DeregisterProvider removes a provider that has no open bids and no live
// leases; its whole bond starts unbonding.
func (k msgServer) DeregisterProvider(ctx context.Context, msg *types.MsgDeregisterProvider) (*types.MsgDeregisterProviderResponse, error) {
	owner, err := k.parseAddress("owner", msg.Owner)
	if err != nil {
		return nil, err
	}
	p, err := k.GetProvider(ctx, owner)
	if err != nil {
		return nil, err
	}
	if k.market != nil {
		busy, err := k.market.ProviderHasLiveWork(ctx, owner)
		if err != nil {
			return nil, err
		}
		if busy {
			return nil, errorsmod.Wrapf(types.ErrProviderBusy, "%s: close its bids and leases first", msg.Owner)
		}
	}
	if err := k.removeProvider(ctx, owner, p); err != nil {
		return nil, err
	}
	if p.Bond.IsPositive() {
		if _, err := k.startUnbonding(ctx, owner, msg.Owner, p.Bond); err != nil {
			return nil, err
		}
	}
	return &types.MsgDeregisterProviderResponse{}, k.emit(ctx, &types.EventProviderDeregistered{Owner: msg.Owner, Unbonding: p.Bond})
}
