package keeper

import (
	"context"
	"time"

	"cosmossdk.io/collections"

	"github.com/gpunet/gpunet/x/escrow/types"
)

// EndBlocker closes the accounts that ran dry by this block's time: at most
// max_depletions_per_block of them, earliest first, the rest in the next
// blocks. Each is settled to the last second its balance paid for, its
// providers are paid, the market is told, and the dust is refunded. The work
// follows the accounts due, never the number of live accounts.
func (k *Keeper) EndBlocker(ctx context.Context) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	due, err := k.dueAccounts(ctx, k.now(ctx), int(params.MaxDepletionsPerBlock))
	if err != nil {
		return err
	}
	for _, key := range due {
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
			if err := k.hooks.OnAccountDepleted(ctx, l.account.Id, ids); err != nil {
				return err
			}
		}
	}
	return nil
}

func (k *Keeper) dueAccounts(ctx context.Context, now time.Time, limit int) ([]AccountKey, error) {
	var keys []AccountKey
	rng := new(collections.Range[collections.Pair[time.Time, AccountKey]]).
		EndExclusive(collections.PairPrefix[time.Time, AccountKey](now.Add(time.Nanosecond)))
	err := k.DepletionQueue.Walk(ctx, rng, func(key collections.Pair[time.Time, AccountKey]) (bool, error) {
		keys = append(keys, key.K2())
		return len(keys) >= limit, nil
	})
	return keys, err
}
