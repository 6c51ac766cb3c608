package keeper

import (
	"context"
	"fmt"
	"time"

	"cosmossdk.io/collections"

	"github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/sweep"
)

// EndBlocker closes the accounts that ran dry by this block's time: at most
// max_depletions_per_block of them, earliest first, the rest in the next
// blocks. Each is settled to the last second its balance paid for, its
// providers are paid, the market is told, and the dust is refunded. The work
// follows the accounts due, never the number of live accounts. An account
// that cannot be processed is logged, emitted as a sweep_failed event and
// taken off the queue with none of its writes, so it cannot halt the chain.
func (k *Keeper) EndBlocker(ctx context.Context) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	due, err := k.dueAccounts(ctx, k.now(ctx), int(params.MaxDepletionsPerBlock))
	if err != nil {
		return err
	}
	for _, e := range due {
		key := e.K2()
		name := func() string { return fmt.Sprintf("depletion of account %s/%d", key.K1(), key.K2()) }
		if err := sweep.Item(ctx, types.ModuleName, name, func(ctx context.Context) error {
			return k.deplete(ctx, key)
		}, func(ctx context.Context) error { return k.DepletionQueue.Remove(ctx, e) }); err != nil {
			return err
		}
	}
	return nil
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

func (k *Keeper) dueAccounts(ctx context.Context, now time.Time, limit int) ([]collections.Pair[time.Time, AccountKey], error) {
	var keys []collections.Pair[time.Time, AccountKey]
	rng := new(collections.Range[collections.Pair[time.Time, AccountKey]]).
		EndExclusive(collections.PairPrefix[time.Time, AccountKey](now.Add(time.Nanosecond)))
	err := k.DepletionQueue.Walk(ctx, rng, func(key collections.Pair[time.Time, AccountKey]) (bool, error) {
		keys = append(keys, key)
		return len(keys) >= limit, nil
	})
	return keys, err
}
