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
// keeps one queue entry per open order instead of two.
func registerReleaseMigrations(cfg module.Configurator, k *keeper.Keeper) error {
	if err := cfg.RegisterMigration(types.ModuleName, 1, func(ctx sdk.Context) error { return k.MigrateToLeanLayout(ctx) }); err != nil {
		return err
	}
	if err := cfg.RegisterMigration(types.ModuleName, 2, func(ctx sdk.Context) error { return k.MigrateToAttestations(ctx) }); err != nil {
		return err
	}
	return cfg.RegisterMigration(types.ModuleName, 3, func(ctx sdk.Context) error { return k.MigrateToOrderQueue(ctx) })
}
