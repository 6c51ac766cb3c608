package keeper

import (
	"context"

	"github.com/gpunet/gpunet/x/internal/dseqfirst"
	"github.com/gpunet/gpunet/x/market/types"
)

// MigrateToDseqFirst is x/market's state migration 4 → 5: order, bid and
// lease keys, and every queue, index and parked entry that holds one, lead
// with the dseq instead of the owner (OrderKey). It is idempotent, so the
// earlier migrations, which read orders and bids with today's key codecs,
// run it first too: a chain that upgrades from an older layout is moved
// once, before them.
func (k *Keeper) MigrateToDseqFirst(ctx context.Context) error {
	height := dseqfirst.Fixed(8)
	if err := dseqfirst.Collections(ctx, k.storeService, "x/market", []dseqfirst.Collection{
		{Prefix: types.OrdersKey, Lead: dseqfirst.None},
		{Prefix: types.AuctionQueueKey, Lead: height}, // retired by 3 → 4, which reads it
		{Prefix: types.OrderQueueKey, Lead: height},
		{Prefix: types.BidsKey, Lead: dseqfirst.None},
		{Prefix: types.BidsByProviderKey, Lead: dseqfirst.Address},
		{Prefix: types.LeasesKey, Lead: dseqfirst.None},
		{Prefix: types.LeasesByProviderKey, Lead: dseqfirst.Address},
		{Prefix: types.StartDeadlinesKey, Lead: height},
		{Prefix: types.DisputableKey, Lead: dseqfirst.None},
		{Prefix: types.DisputeQueueKey, Lead: height},
		{Prefix: types.DownLeasesKey, Lead: dseqfirst.Address},
	}); err != nil {
		return err
	}
	_, err := dseqfirst.Parked(ctx, k.Parked, parkedLeads())
	return err
}

// parkedLeads names the parked queues whose entries hold an order or lease
// key, with the height that comes before it.
func parkedLeads() map[string]int {
	leads := map[string]int{OrdersQueue: 8, "start_deadlines": 8, "dispute_windows": 8}
	for _, q := range retiredOrderQueues {
		leads[q] = 8
	}
	return leads
}
