package keeper

import (
	"context"

	errorsmod "cosmossdk.io/errors"

	"github.com/gpunet/gpunet/x/market/types"
)

// UpdateParams sets the params; only the authority may.
func (k msgServer) UpdateParams(ctx context.Context, msg *types.MsgUpdateParams) (*types.MsgUpdateParamsResponse, error) {
	if msg.Authority != k.authority {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "expected %s, got %s", k.authority, msg.Authority)
	}
	if err := msg.Params.Validate(); err != nil {
		return nil, errorsmod.Wrap(types.ErrInvalidParams, err.Error())
	}
	return &types.MsgUpdateParamsResponse{}, k.Params.Set(ctx, msg.Params)
}

// RetryParked puts the entries an EndBlock sweep parked in a queue back
// on it; only the authority may.
func (k msgServer) RetryParked(ctx context.Context, msg *types.MsgRetryParked) (*types.MsgRetryParkedResponse, error) {
	if msg.Authority != k.authority {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "expected %s, got %s", k.authority, msg.Authority)
	}
	n, err := k.retryParked(ctx, msg.Queue)
	if err != nil {
		return nil, err
	}
	return &types.MsgRetryParkedResponse{Retried: uint32(n)}, nil
}
