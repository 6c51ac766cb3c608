package keeper

import (
	"context"
	"fmt"
	"github.com/gpunet/gpunet/x/internal/sweep"

	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/x/provider/types"
)

// InitGenesis loads a validated genesis state.
func (k *Keeper) InitGenesis(ctx context.Context, gs types.GenesisState) error {
	if err := gs.Validate(k.addressCodec); err != nil {
		return err
	}
	if err := sweep.Import(ctx, k.Parked, gs.Parked); err != nil {
		return err
	}
	if err := k.Params.Set(ctx, gs.Params); err != nil {
		return err
	}
	for _, p := range gs.Providers {
		owner, err := k.parseAddress("owner", p.Owner)
		if err != nil {
			return err
		}
		if err := k.setProvider(ctx, owner, nil, p); err != nil {
			return err
		}
	}
	for _, e := range gs.UnbondingEntries {
		owner, err := k.parseAddress("owner", e.Owner)
		if err != nil {
			return err
		}
		if err := k.setUnbonding(ctx, owner, e); err != nil {
			return err
		}
	}
	return k.NextUnbondingID.Set(ctx, gs.NextUnbondingId)
}

// ExportGenesis writes the whole state out.
func (k *Keeper) ExportGenesis(ctx context.Context) (*types.GenesisState, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	gs := &types.GenesisState{Params: params}
	if err := k.Providers.Walk(ctx, nil, func(_ sdk.AccAddress, p types.Provider) (bool, error) {
		gs.Providers = append(gs.Providers, p)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.Unbondings.Walk(ctx, nil, func(_ uint64, e types.UnbondingEntry) (bool, error) {
		gs.UnbondingEntries = append(gs.UnbondingEntries, e)
		return false, nil
	}); err != nil {
		return nil, err
	}
	next, err := k.NextUnbondingID.Peek(ctx)
	if err != nil {
		return nil, err
	}
	gs.NextUnbondingId = next
	if gs.Parked, err = sweep.List(ctx, k.Parked); err != nil {
		return nil, err
	}
	return gs, nil
}

// BondInvariant checks that the module account holds exactly the active
// bonds plus the unbonding entries. It returns a description of the
// mismatch, or "" when the books balance.
func (k *Keeper) BondInvariant(ctx context.Context) (string, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return "", err
	}
	denom := params.MinBond.Denom
	total := sdkmath.ZeroInt()
	if err := k.Providers.Walk(ctx, nil, func(_ sdk.AccAddress, p types.Provider) (bool, error) {
		total = total.Add(p.Bond.Amount)
		return false, nil
	}); err != nil {
		return "", err
	}
	if err := k.Unbondings.Walk(ctx, nil, func(_ uint64, e types.UnbondingEntry) (bool, error) {
		total = total.Add(e.Amount.Amount)
		return false, nil
	}); err != nil {
		return "", err
	}
	held := k.bank.GetBalance(ctx, authtypes.NewModuleAddress(types.ModuleName), denom)
	if !held.Amount.Equal(total) {
		return fmt.Sprintf("provider module account holds %s, bonds and unbonding entries add up to %s%s", held, total, denom), nil
	}
	return "", nil
}
