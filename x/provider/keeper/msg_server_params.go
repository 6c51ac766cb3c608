package keeper

import (
	"context"

	errorsmod "cosmossdk.io/errors"

	"github.com/gpunet/gpunet/x/provider/types"
)

// UpdateParams sets the module params; only the authority may.
func (k msgServer) UpdateParams(ctx context.Context, msg *types.MsgUpdateParams) (*types.MsgUpdateParamsResponse, error) {
	if msg.Authority != k.authority {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "expected %s, got %s", k.authority, msg.Authority)
	}
	if err := msg.Params.Validate(); err != nil {
		return nil, errorsmod.Wrap(types.ErrInvalidParams, err.Error())
	}
	old, err := k.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	if msg.Params.MinBond.Denom != old.MinBond.Denom {
		return nil, errorsmod.Wrapf(types.ErrInvalidParams, "min_bond denom cannot change from %s to %s: existing bonds are in %s", old.MinBond.Denom, msg.Params.MinBond.Denom, old.MinBond.Denom)
	}
	if err := k.Params.Set(ctx, msg.Params); err != nil {
		return nil, err
	}
	return &types.MsgUpdateParamsResponse{}, k.emit(ctx, &types.EventParamsUpdated{Authority: msg.Authority, Params: msg.Params})
}

// RetryParked puts the entries an EndBlock sweep parked back on their
// queue ("unbondings"); only the authority may.
func (k msgServer) RetryParked(ctx context.Context, msg *types.MsgRetryParked) (*types.MsgRetryParkedResponse, error) {
	if msg.Authority != k.authority {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "expected %s, got %s", k.authority, msg.Authority)
	}
	if msg.Queue != "unbondings" {
		return nil, errorsmod.Wrapf(types.ErrInvalidParams, "no queue %q: unbondings", msg.Queue)
	}
	n, err := k.unbondings().Retry(ctx)
	if err != nil {
		return nil, err
	}
	return &types.MsgRetryParkedResponse{Retried: uint32(n)}, nil
}
