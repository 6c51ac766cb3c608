package keeper

import (
	"context"
	"fmt"

	"cosmossdk.io/collections"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/sweep"
	"github.com/gpunet/gpunet/x/market/types"
)

// EndBlocker runs four sweeps, each from a height-keyed index and each at
// most max_sweeps_per_block entries (the rest carry over): auctions whose
// window closes now, orders expiring now, leases whose start deadline is
// now, manifest_missing closes whose dispute window ends now. Its cost follows what is due, never the number of live objects. Each
// entry is processed on its own branch: one that fails is logged, emitted
// as a sweep_failed event and taken off its queue with none of its writes,
// so a bad record cannot halt the chain.
func (k *Keeper) EndBlocker(ctx context.Context) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	h := k.height(ctx)
	limit := int(params.MaxSweepsPerBlock)
	if err := sweepQueue(ctx, k.AuctionQueue, h, limit, "auction of order", orderName, func(ctx context.Context, key OrderKey) error {
		return k.closeAuction(ctx, key)
	}); err != nil {
		return err
	}
	if err := sweepQueue(ctx, k.ExpiryQueue, h, limit, "expiry of order", orderName, func(ctx context.Context, key OrderKey) error {
		o, err := k.Orders.Get(ctx, key)
		if err != nil {
			return err
		}
		return k.expireOrder(ctx, key, o)
	}); err != nil {
		return err
	}
	if err := sweepQueue(ctx, k.StartDeadlines, h, limit, "start deadline of lease", bidName, k.startTimedOut); err != nil {
		return err
	}
	return sweepQueue(ctx, k.DisputeQueue, h, limit, "dispute window of lease", bidName, k.endDisputeWindow)
}

// sweepQueue handles the entries of a height-keyed queue that are due by
// height h, at most limit of them, each on its own branch (x/internal/
// sweep). An entry leaves the queue either as part of its handling (fn
// closes the order or lease, which unqueues it) or, for an auction, here;
// one whose handling fails is dropped.
func sweepQueue[K any](ctx context.Context, q collections.KeySet[collections.Pair[int64, K]], h int64, limit int,
	what string, name func(K) string, fn func(ctx context.Context, key K) error,
) error {
	due, err := dueHeights(ctx, q, h, limit)
	if err != nil {
		return err
	}
	for _, e := range due {
		drop := func(ctx context.Context) error { return q.Remove(ctx, e) }
		if err := sweep.Item(ctx, types.ModuleName, func() string { return what + " " + name(e.K2()) }, func(ctx context.Context) error {
			if err := drop(ctx); err != nil { // an auction runs once; the others unqueue themselves anyway
				return err
			}
			return fn(ctx, e.K2())
		}, drop); err != nil {
			return err
		}
	}
	return nil
}

// orderName and bidName name index keys in logs and events.
func orderName(k OrderKey) string {
	gseq, oseq := types.UnpackGroupOrder(k.K3())
	return types.OrderID{Owner: k.K1().String(), Dseq: k.K2(), Gseq: gseq, Oseq: oseq}.Name()
}

func bidName(k BidKey) string {
	return fmt.Sprintf("%s/%d/%s", k.K1(), k.K2(), k.K3())
}

func dueHeights[K any](ctx context.Context, set collections.KeySet[collections.Pair[int64, K]], h int64, limit int) ([]collections.Pair[int64, K], error) {
	var out []collections.Pair[int64, K]
	rng := new(collections.Range[collections.Pair[int64, K]]).EndExclusive(collections.PairPrefix[int64, K](h + 1))
	err := set.Walk(ctx, rng, func(key collections.Pair[int64, K]) (bool, error) {
		out = append(out, key)
		return len(out) >= limit, nil
	})
	return out, err
}

// Hooks returns x/escrow's view of the market.
func (k *Keeper) Hooks() escrowtypes.Hooks { return escrowHooks{k} }

type escrowHooks struct{ k *Keeper }

// OnAccountDepleted closes the deployment whose escrow ran dry: its leases
// end as insufficient_funds. Escrow has settled and paid them already.
func (h escrowHooks) OnAccountDepleted(ctx context.Context, id escrowtypes.AccountID, _ []escrowtypes.PaymentID) error {
	owner, err := h.k.addr("owner", id.Owner)
	if err != nil {
		return err
	}
	key := collections.Join(owner, id.Dseq)
	if has, err := h.k.Deployments.Has(ctx, key); err != nil || !has {
		return err
	}
	return h.k.closeDeployment(ctx, key, id.Owner, types.CLOSE_REASON_INSUFFICIENT_FUNDS, "")
}
