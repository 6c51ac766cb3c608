package keeper

import (
	"context"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/dseqfirst"
)

// MigrateToDseqFirst is x/escrow's state migration 1 → 2: account and
// payment keys, and the queues, index and parked entries that hold them,
// lead with the dseq instead of the owner (AccountKey). It is idempotent.
func (k *Keeper) MigrateToDseqFirst(ctx context.Context) error {
	timeSize := sdk.TimeKey.Size(time.Time{})
	at := dseqfirst.Fixed(timeSize)
	if err := dseqfirst.Collections(ctx, k.storeService, "x/escrow", []dseqfirst.Collection{
		{Prefix: types.AccountsKey, Lead: dseqfirst.None},
		{Prefix: types.PaymentsKey, Lead: dseqfirst.None},
		{Prefix: types.PaymentsByProviderKey, Lead: dseqfirst.Address},
		{Prefix: types.DepletionQueueKey, Lead: at},
		{Prefix: types.AutoTopUpsKey, Lead: dseqfirst.None},
		{Prefix: types.TopUpQueueKey, Lead: at},
	}); err != nil {
		return err
	}
	_, err := dseqfirst.Parked(ctx, k.Parked, parkedLeads())
	return err
}

// parkedLeads names the parked queues whose entries hold an account key,
// with the time that comes before it.
func parkedLeads() map[string]int {
	timeSize := sdk.TimeKey.Size(time.Time{})
	return map[string]int{"depletions": timeSize, "topups": timeSize}
}
