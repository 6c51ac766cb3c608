//go:build upgradetest

package market

import (
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/module"

	"github.com/gpunet/gpunet/x/market/keeper"
	"github.com/gpunet/gpunet/x/market/types"
)

// consensusVersion: the rehearsal build is one version ahead.
const consensusVersion = 6

// RehearsalMaxBidsPerOrder is the new default the rehearsal migration
// gives max_bids_per_order.
const RehearsalMaxBidsPerOrder = 32

// registerMigrations registers the release's migrations and the
// rehearsal's 5 → 6: it raises
// max_bids_per_order to a new default where the chain still has the old
// one (a chain that chose its own keeps it), the shape of a real release's
// param migration.
func registerMigrations(cfg module.Configurator, k *keeper.Keeper) error {
	if err := registerReleaseMigrations(cfg, k); err != nil {
		return err
	}
	return cfg.RegisterMigration(types.ModuleName, 5, func(ctx sdk.Context) error {
		p, err := k.Params.Get(ctx)
		if err != nil {
			return err
		}
		if p.MaxBidsPerOrder == types.DefaultParams().MaxBidsPerOrder {
			p.MaxBidsPerOrder = RehearsalMaxBidsPerOrder
		}
		if err := p.Validate(); err != nil {
			return err
		}
		return k.Params.Set(ctx, p)
	})
}
