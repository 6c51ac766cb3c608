//go:build !upgradetest

package market

import (
	"github.com/cosmos/cosmos-sdk/types/module"

	"github.com/gpunet/gpunet/x/market/keeper"
)

// consensusVersion is x/market's state version in this build.
const consensusVersion = 1

// registerMigrations registers the state migrations between versions;
// there are none yet.
func registerMigrations(module.Configurator, *keeper.Keeper) error { return nil }
