package keeper

import (
	"context"
	"fmt"
	"time"

	"cosmossdk.io/collections"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/internal/sweep"
	"github.com/gpunet/gpunet/x/provider/types"
)

// EndBlocker pays out unbonding entries whose completion time has come, at
// most max_unbondings_per_block of them, oldest first; the rest wait for the
// next block. Its cost follows the entries due, never the registry's size.
// An entry that cannot be paid is logged, emitted as a sweep_failed event
// and taken off the queue with none of its writes, so it cannot halt the
// chain.
func (k *Keeper) EndBlocker(ctx context.Context) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	now := k.blockTime(ctx)
	due, err := k.dueUnbondings(ctx, now, int(params.MaxUnbondingsPerBlock))
	if err != nil {
		return err
	}
	for _, e := range due {
		name := func() string { return fmt.Sprintf("unbonding entry %d", e.K2()) }
		if err := sweep.Item(ctx, types.ModuleName, name, func(ctx context.Context) error {
			return k.completeUnbonding(ctx, e.K2())
		}, func(ctx context.Context) error { return k.UnbondingQueue.Remove(ctx, e) }); err != nil {
			return err
		}
	}
	return nil
}

// dueUnbondings returns up to limit queue entries whose completion time is
// not after now, in queue order.
func (k *Keeper) dueUnbondings(ctx context.Context, now time.Time, limit int) ([]collections.Pair[time.Time, uint64], error) {
	var ids []collections.Pair[time.Time, uint64]
	rng := new(collections.Range[collections.Pair[time.Time, uint64]]).
		EndExclusive(collections.Join(now.Add(time.Nanosecond), uint64(0)))
	err := k.UnbondingQueue.Walk(ctx, rng, func(key collections.Pair[time.Time, uint64]) (bool, error) {
		ids = append(ids, key)
		return len(ids) >= limit, nil
	})
	return ids, err
}

func (k *Keeper) completeUnbonding(ctx context.Context, id uint64) error {
	e, err := k.Unbondings.Get(ctx, id)
	if err != nil {
		return err
	}
	owner, err := k.parseAddress("owner", e.Owner)
	if err != nil {
		return err
	}
	if err := k.removeUnbonding(ctx, owner, e); err != nil {
		return err
	}
	if err := k.bank.SendCoinsFromModuleToAccount(ctx, types.ModuleName, owner, sdk.NewCoins(e.Amount)); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventUnbondingCompleted{Owner: e.Owner, EntryId: e.Id, Amount: e.Amount})
}
