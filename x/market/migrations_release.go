package market

import (
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/module"

	"github.com/gpunet/gpunet/x/market/keeper"
	"github.com/gpunet/gpunet/x/market/types"
)

// registerReleaseMigrations registers the migrations every build carries:
// 1 → 2 drops what the lighter state layout no longer keeps (the open-orders
// index, the stored dseq and bid-seq counters); 2 → 3 starts attestations
// (their params, a record for every provider with active leases); 3 → 4
// keeps one queue entry per open order instead of two; 4 → 5 keys orders,
// bids and leases by dseq first. The earlier ones read orders and bids with
// today's key codecs, so each moves the keys first (MigrateToDseqFirst is
// idempotent: only the first that runs moves anything).
func registerReleaseMigrations(cfg module.Configurator, k *keeper.Keeper) error {
	steps := []func(ctx sdk.Context) error{
		1: func(ctx sdk.Context) error { return k.MigrateToLeanLayout(ctx) },
		2: func(ctx sdk.Context) error { return k.MigrateToAttestations(ctx) },
		3: func(ctx sdk.Context) error { return k.MigrateToOrderQueue(ctx) },
		4: func(sdk.Context) error { return nil },
	}
	for from := uint64(1); from < uint64(len(steps)); from++ {
		step := steps[from]
		if err := cfg.RegisterMigration(types.ModuleName, from, func(ctx sdk.Context) error {
			if err := k.MigrateToDseqFirst(ctx); err != nil {
				return err
			}
			return step(ctx)
		}); err != nil {
			return err
		}
	}
	return nil
}
