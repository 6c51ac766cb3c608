package keeper

import (
	"context"
	"fmt"
	"time"

	"github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/sweep"
)

// EndBlocker refills the accounts whose automatic top-up is due (at most
// max_topups_per_block), then closes the accounts that ran dry by this
// block's time: at most
// max_depletions_per_block of them, earliest first, the rest in the next
// blocks. Each is settled to the last second its balance paid for, its
// providers are paid, the market is told, and the dust is refunded. The work
// follows the accounts due, never the number of live accounts. An account
// that cannot be processed is logged, parked with an EventSweepFailed, none
// of its writes kept, so it cannot halt the chain.
func (k *Keeper) EndBlocker(ctx context.Context) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	// Refills first: an account due for both is refilled, not closed.
	bound := k.now(ctx).Add(time.Nanosecond)
	if err := k.topUps().Run(ctx, bound, int(params.MaxTopupsPerBlock), k.refill); err != nil {
		return err
	}
	return k.depletions().Run(ctx, bound, int(params.MaxDepletionsPerBlock), k.deplete)
}

// depletions is the sweep over the depletion queue.
func (k *Keeper) depletions() sweep.Queue[time.Time, AccountKey] {
	return sweep.Queue[time.Time, AccountKey]{Module: types.ModuleName, Name: "depletions", Set: k.DepletionQueue, Parked: k.Parked,
		Describe: func(key AccountKey) string { return fmt.Sprintf("depletion of account %s/%d", key.K2(), key.K1()) }}
}

// deplete settles a due account to its last paid second, closes it and
// tells the market.
func (k *Keeper) deplete(ctx context.Context, key AccountKey) error {
	l, err := k.loadKey(ctx, key, "due account")
	if err != nil {
		return err
	}
	types.Settle(&l.account, l.payments, k.now(ctx))
	ids := make([]types.PaymentID, len(l.payments))
	for i, p := range l.payments {
		ids[i] = p.Id
	}
	if _, err := k.closeAccount(ctx, l, types.ReasonInsufficientFunds); err != nil {
		return err
	}
	if k.hooks != nil {
		return k.hooks.OnAccountDepleted(ctx, l.account.Id, ids)
	}
	return nil
}
