//go:build !upgradetest

package market

import (
	"github.com/cosmos/cosmos-sdk/types/module"

	"github.com/gpunet/gpunet/x/market/keeper"
)

// consensusVersion is x/market's state version in this build.
const consensusVersion = 5

// registerMigrations registers the state migrations between versions.
func registerMigrations(cfg module.Configurator, k *keeper.Keeper) error {
	return registerReleaseMigrations(cfg, k)
}
