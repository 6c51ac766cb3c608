package keeper

import (
	"context"
	"fmt"
	"time"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/dseqfirst"
	"github.com/gpunet/gpunet/x/internal/sweep"
)

// InitGenesis loads a validated genesis state and rebuilds the indexes.
func (k *Keeper) InitGenesis(ctx context.Context, gs types.GenesisState) error {
	if err := gs.Validate(k.addressCodec); err != nil {
		return err
	}
	if err := sweep.Import(ctx, k.Parked, gs.Parked); err != nil {
		return err
	}
	// Parked entries are the one part of a genesis that holds store keys
	// as bytes: one exported before v2 holds them owner first.
	if _, err := dseqfirst.Parked(ctx, k.Parked, parkedLeads()); err != nil {
		return err
	}
	if err := k.Params.Set(ctx, gs.Params); err != nil {
		return err
	}
	// Deposits go to the module address directly (toModule): the module
	// account must exist before the first one, or the bank would make a
	// plain account there.
	k.accounts.GetModuleAccount(ctx, types.ModuleName)
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
	for _, t := range gs.AutoTopups {
		key, err := k.accountKey(t.Id)
		if err != nil {
			return err
		}
		if err := k.AutoTopUps.Set(ctx, key, t); err != nil {
			return err
		}
		if t.QueuedAt != nil {
			if err := k.TopUpQueue.Set(ctx, collections.Join(*t.QueuedAt, key)); err != nil {
				return err
			}
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
	if err := k.AutoTopUps.Walk(ctx, nil, func(_ AccountKey, t types.AutoTopUp) (bool, error) {
		gs.AutoTopups = append(gs.AutoTopups, t)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if gs.Parked, err = sweep.List(ctx, k.Parked); err != nil {
		return nil, err
	}
	return gs, nil
}

// TopUpInvariant checks the refills' index: each refill's account exists,
// it has spent at most its limit, and the queue holds exactly the refills'
// due entries. It returns a description of the first mismatch, or "".
func (k *Keeper) TopUpInvariant(ctx context.Context) (string, error) {
	queued := 0
	var bad string
	if err := k.AutoTopUps.Walk(ctx, nil, func(key AccountKey, t types.AutoTopUp) (bool, error) {
		if has, err := k.Accounts.Has(ctx, key); err != nil || !has {
			bad = fmt.Sprintf("refill of %s has no account", t.Id.Name())
			return true, err
		}
		if t.Spent.GT(t.Limit.Amount) {
			bad = fmt.Sprintf("refill of %s spent %s past its limit %s", t.Id.Name(), t.Spent, t.Limit)
			return true, nil
		}
		if t.QueuedAt != nil {
			queued++
			if has, err := k.TopUpQueue.Has(ctx, collections.Join(*t.QueuedAt, key)); err != nil || !has {
				bad = fmt.Sprintf("refill of %s is due at %s but not queued", t.Id.Name(), t.QueuedAt)
				return true, err
			}
		}
		return false, nil
	}); err != nil || bad != "" {
		return bad, err
	}
	entries := 0
	if err := k.TopUpQueue.Walk(ctx, nil, func(collections.Pair[time.Time, AccountKey]) (bool, error) {
		entries++
		return false, nil
	}); err != nil {
		return "", err
	}
	if entries != queued {
		return fmt.Sprintf("the refill queue holds %d entries for %d queued refills", entries, queued), nil
	}
	return "", nil
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
	// Every denom the module holds is compared too, owed or not: coins in
	// the module with no account at all are coins nobody owns.
	held := k.bank.GetAllBalances(ctx, authtypes.NewModuleAddress(types.ModuleName))
	for _, c := range held {
		add(c.Denom, sdkmath.ZeroInt())
	}
	for _, d := range denoms {
		if has := held.AmountOf(d); !has.Equal(owed[d]) {
			return fmt.Sprintf("escrow module account holds %s, balances and unwithdrawn accruals add up to %s%s", sdk.NewCoin(d, has), owed[d], d), nil
		}
	}
	return "", nil
}
