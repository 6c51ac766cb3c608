package keeper

import (
	"context"
	"fmt"
	"github.com/gpunet/gpunet/x/internal/sweep"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/x/escrow/types"
)

// InitGenesis loads a validated genesis state and rebuilds the indexes.
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
	for _, a := range gs.Accounts {
		key, err := k.accountKey(a.Id)
		if err != nil {
			return err
		}
		if err := k.Accounts.Set(ctx, key, a); err != nil {
			return err
		}
		if a.DepletesAt != nil {
			if err := k.DepletionQueue.Set(ctx, collections.Join(*a.DepletesAt, key)); err != nil {
				return err
			}
		}
	}
	for _, p := range gs.Payments {
		pk, provider, err := k.paymentKey(p.Id)
		if err != nil {
			return err
		}
		if err := k.Payments.Set(ctx, pk, p); err != nil {
			return err
		}
		if err := k.PaymentsByProvider.Set(ctx, collections.Join(provider, pk)); err != nil {
			return err
		}
	}
	return nil
}

// ExportGenesis writes the state out as stored (not settled), so an import
// continues exactly where the chain stopped.
func (k *Keeper) ExportGenesis(ctx context.Context) (*types.GenesisState, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	gs := &types.GenesisState{Params: params}
	if err := k.Accounts.Walk(ctx, nil, func(_ AccountKey, a types.Account) (bool, error) {
		gs.Accounts = append(gs.Accounts, a)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.Payments.Walk(ctx, nil, func(_ PaymentKey, p types.Payment) (bool, error) {
		gs.Payments = append(gs.Payments, p)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if gs.Parked, err = sweep.List(ctx, k.Parked); err != nil {
		return nil, err
	}
	return gs, nil
}

// BalanceInvariant checks that the module account holds exactly Σ account
// balances + Σ unwithdrawn accruals, per denom. It returns a description of
// the first mismatch, or "".
func (k *Keeper) BalanceInvariant(ctx context.Context) (string, error) {
	owed := map[string]sdkmath.Int{}
	var denoms []string
	add := func(denom string, amt sdkmath.Int) {
		if _, ok := owed[denom]; !ok {
			owed[denom] = sdkmath.ZeroInt()
			denoms = append(denoms, denom)
		}
		owed[denom] = owed[denom].Add(amt)
	}
	accountDenom := map[string]string{}
	if err := k.Accounts.Walk(ctx, nil, func(_ AccountKey, a types.Account) (bool, error) {
		add(a.Denom, a.Balance)
		accountDenom[a.Id.Name()] = a.Denom
		return false, nil
	}); err != nil {
		return "", err
	}
	if err := k.Payments.Walk(ctx, nil, func(_ PaymentKey, p types.Payment) (bool, error) {
		add(accountDenom[p.Id.Account.Name()], p.Accrued.Sub(p.Withdrawn))
		return false, nil
	}); err != nil {
		return "", err
	}
	for _, d := range denoms {
		held := k.bank.GetBalance(ctx, authtypes.NewModuleAddress(types.ModuleName), d)
		if !held.Amount.Equal(owed[d]) {
			return fmt.Sprintf("escrow module account holds %s, balances and unwithdrawn accruals add up to %s%s", held, owed[d], d), nil
		}
	}
	return "", nil
}
