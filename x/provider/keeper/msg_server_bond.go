package keeper

import (
	"context"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/provider/types"
)

// Bond adds to the provider's active bond.
func (k msgServer) Bond(ctx context.Context, msg *types.MsgBond) (*types.MsgBondResponse, error) {
	owner, err := k.parseAddress("owner", msg.Owner)
	if err != nil {
		return nil, err
	}
	old, err := k.GetProvider(ctx, owner)
	if err != nil {
		return nil, err
	}
	if _, err := k.checkBondCoin(ctx, "amount", msg.Amount); err != nil {
		return nil, err
	}
	if err := k.bank.SendCoinsFromAccountToModule(ctx, owner, types.ModuleName, sdk.NewCoins(msg.Amount)); err != nil {
		return nil, errorsmod.Wrap(err, "bond")
	}
	p := old
	p.Bond = p.Bond.Add(msg.Amount)
	if err := k.setProvider(ctx, owner, &old, p); err != nil {
		return nil, err
	}
	return &types.MsgBondResponse{}, k.emit(ctx, &types.EventProviderBonded{Owner: msg.Owner, Amount: msg.Amount, Bond: p.Bond})
}

// MaxUnbondingEntries is how many unbonding entries one provider may have
// waiting at once. Slash walks a provider's entries, so they must be few;
// a deregistration may add one more.
const MaxUnbondingEntries = 7

// Unbond moves part of the bond into an unbonding entry that pays out after
// unbonding_period and stays slashable until then. A provider may have at
// most MaxUnbondingEntries waiting.
func (k msgServer) Unbond(ctx context.Context, msg *types.MsgUnbond) (*types.MsgUnbondResponse, error) {
	owner, err := k.parseAddress("owner", msg.Owner)
	if err != nil {
		return nil, err
	}
	old, err := k.GetProvider(ctx, owner)
	if err != nil {
		return nil, err
	}
	if _, err := k.checkBondCoin(ctx, "amount", msg.Amount); err != nil {
		return nil, err
	}
	if msg.Amount.Amount.GT(old.Bond.Amount) {
		return nil, errorsmod.Wrapf(types.ErrInsufficientBond, "cannot unbond %s: bond is %s", msg.Amount, old.Bond)
	}
	n := 0
	if err := k.UnbondingsByOwner.Walk(ctx, collections.NewPrefixedPairRange[sdk.AccAddress, uint64](owner), func(collections.Pair[sdk.AccAddress, uint64]) (bool, error) {
		n++
		return n >= MaxUnbondingEntries, nil
	}); err != nil {
		return nil, err
	}
	if n >= MaxUnbondingEntries {
		return nil, errorsmod.Wrapf(types.ErrTooManyUnbondings, "%s has %d unbonding entries waiting, the most allowed; wait for one to complete", msg.Owner, n)
	}
	p := old
	p.Bond = p.Bond.Sub(msg.Amount)
	if err := k.setProvider(ctx, owner, &old, p); err != nil {
		return nil, err
	}
	entry, err := k.startUnbonding(ctx, owner, msg.Owner, msg.Amount)
	if err != nil {
		return nil, err
	}
	return &types.MsgUnbondResponse{CompletionTimeUnix: entry.CompletionTime.Unix()}, nil
}

// startUnbonding queues amount for owner, maturing after unbonding_period.
func (k *Keeper) startUnbonding(ctx context.Context, owner sdk.AccAddress, ownerStr string, amount sdk.Coin) (types.UnbondingEntry, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return types.UnbondingEntry{}, err
	}
	id, err := k.NextUnbondingID.Next(ctx)
	if err != nil {
		return types.UnbondingEntry{}, err
	}
	info := k.headers.GetHeaderInfo(ctx)
	entry := types.UnbondingEntry{
		Owner:          ownerStr,
		Id:             id,
		Amount:         amount,
		CreationHeight: info.Height,
		CompletionTime: info.Time.Add(params.UnbondingPeriod).UTC(),
	}
	if err := k.setUnbonding(ctx, owner, entry); err != nil {
		return types.UnbondingEntry{}, err
	}
	return entry, k.emit(ctx, &types.EventProviderUnbonded{Owner: ownerStr, EntryId: id, Amount: amount, CompletionTime: entry.CompletionTime})
}

func (k *Keeper) setUnbonding(ctx context.Context, owner sdk.AccAddress, e types.UnbondingEntry) error {
	if err := k.Unbondings.Set(ctx, e.Id, e); err != nil {
		return err
	}
	if err := k.UnbondingQueue.Set(ctx, collections.Join(e.CompletionTime, e.Id)); err != nil {
		return err
	}
	return k.UnbondingsByOwner.Set(ctx, collections.Join(owner, e.Id))
}

func (k *Keeper) removeUnbonding(ctx context.Context, owner sdk.AccAddress, e types.UnbondingEntry) error {
	if err := k.Unbondings.Remove(ctx, e.Id); err != nil {
		return err
	}
	if err := k.UnbondingQueue.Remove(ctx, collections.Join(e.CompletionTime, e.Id)); err != nil {
		return err
	}
	return k.UnbondingsByOwner.Remove(ctx, collections.Join(owner, e.Id))
}

// OwnerUnbondings returns owner's unbonding entries, oldest first.
func (k *Keeper) OwnerUnbondings(ctx context.Context, owner sdk.AccAddress) ([]types.UnbondingEntry, error) {
	var out []types.UnbondingEntry
	rng := collections.NewPrefixedPairRange[sdk.AccAddress, uint64](owner)
	err := k.UnbondingsByOwner.Walk(ctx, rng, func(key collections.Pair[sdk.AccAddress, uint64]) (bool, error) {
		e, err := k.Unbondings.Get(ctx, key.K2())
		if err != nil {
			return true, err
		}
		out = append(out, e)
		return false, nil
	})
	return out, err
}
