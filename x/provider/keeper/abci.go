package keeper

import (
	"context"
	"fmt"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/internal/sweep"
	"github.com/gpunet/gpunet/x/provider/types"
)

// EndBlocker pays out unbonding entries whose completion time has come, at
// most max_unbondings_per_block of them, oldest first; the rest wait for the
// next block. Its cost follows the entries due, never the registry's size.
// An entry that cannot be paid is logged, parked with an EventSweepFailed
// and taken off the queue with none of its writes, so it cannot halt the
// chain.
func (k *Keeper) EndBlocker(ctx context.Context) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	return k.unbondings().Run(ctx, k.blockTime(ctx).Add(time.Nanosecond), int(params.MaxUnbondingsPerBlock), k.completeUnbonding)
}

// unbondings is the sweep over the unbonding queue.
func (k *Keeper) unbondings() sweep.Queue[time.Time, uint64] {
	return sweep.Queue[time.Time, uint64]{Module: types.ModuleName, Name: "unbondings", Set: k.UnbondingQueue, Parked: k.Parked,
		Describe: func(id uint64) string { return fmt.Sprintf("unbonding entry %d", id) }}
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
