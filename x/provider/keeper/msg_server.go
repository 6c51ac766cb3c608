package keeper

import (
	"context"

	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/provider/types"
)

type msgServer struct{ *Keeper }

var _ types.MsgServer = msgServer{}

// NewMsgServerImpl returns the x/provider Msg service.
func NewMsgServerImpl(k *Keeper) types.MsgServer { return msgServer{k} }

// checkBondCoin checks that c is a positive amount in the bond denom.
func (k *Keeper) checkBondCoin(ctx context.Context, field string, c sdk.Coin) (types.Params, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return params, err
	}
	if c.Denom != params.MinBond.Denom {
		return params, errorsmod.Wrapf(types.ErrInvalidDenom, "%s is in %q; provider bonds are in %s", field, c.Denom, params.MinBond.Denom)
	}
	if c.Amount.IsNil() || !c.Amount.IsPositive() {
		return params, errorsmod.Wrapf(types.ErrInvalidAmount, "%s must be positive, got %s", field, c.Amount)
	}
	return params, nil
}
