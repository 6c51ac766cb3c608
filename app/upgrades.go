package app

import (
	"context"
	"fmt"

	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	"github.com/cosmos/cosmos-sdk/types/module"
	upgradetypes "github.com/cosmos/cosmos-sdk/x/upgrade/types"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
)

// Upgrade describes one named software upgrade: the handler that migrates
// state and the stores it adds, renames or deletes. Every release that needs a
// governance-scheduled upgrade appends one entry to Upgrades.
type Upgrade struct {
	Name          string
	StoreUpgrades storetypes.StoreUpgrades
	// Handler runs after the module migrations; most upgrades need none.
	Handler func(app *App, ctx context.Context, plan upgradetypes.Plan, vm module.VersionMap) error
}

// LeanStateUpgrade is the plan name of the release whose x/market keeps a
// lighter state (migration 1 → 2) and whose escrow and market deposits go
// to their module addresses directly.
const LeanStateUpgrade = "v0.3-lean-state"

// DseqFirstUpgrade is the plan name of the release whose x/market and
// x/escrow keys lead with the dseq (x/market 4 → 5, x/escrow 1 → 2): the
// module migrations do all of it.
const DseqFirstUpgrade = "v0.4-dseq-first"

// Upgrades is the list of upgrades this binary knows how to apply.
// Cosmovisor swaps binaries at the plan height; this binary then runs the
// handler registered under the plan's name.
var Upgrades = []Upgrade{{
	Name: LeanStateUpgrade,
	// Deposits into escrow are sent to its module address: the module
	// account must exist first (x/market's migration does the same for its
	// own).
	Handler: func(app *App, ctx context.Context, _ upgradetypes.Plan, _ module.VersionMap) error {
		if app.AccountKeeper.GetModuleAccount(ctx, escrowtypes.ModuleName) == nil {
			return fmt.Errorf("no %s module account", escrowtypes.ModuleName)
		}
		return nil
	},
}, {Name: DseqFirstUpgrade}}

func (app *App) registerUpgradeHandlers() error {
	for _, u := range Upgrades {
		app.UpgradeKeeper.SetUpgradeHandler(u.Name, func(ctx context.Context, plan upgradetypes.Plan, fromVM module.VersionMap) (module.VersionMap, error) {
			vm, err := app.ModuleManager.RunMigrations(ctx, app.Configurator(), fromVM)
			if err != nil {
				return nil, fmt.Errorf("upgrade %s: module migrations: %w", u.Name, err)
			}
			if u.Handler != nil {
				if err := u.Handler(app, ctx, plan, vm); err != nil {
					return nil, fmt.Errorf("upgrade %s: %w", u.Name, err)
				}
			}
			return vm, nil
		})
	}

	plan, err := app.UpgradeKeeper.ReadUpgradeInfoFromDisk()
	if err != nil {
		return fmt.Errorf("read upgrade info from disk: %w", err)
	}
	if app.UpgradeKeeper.IsSkipHeight(plan.Height) {
		return nil
	}
	for _, u := range Upgrades {
		if plan.Name == u.Name {
			storeUpgrades := u.StoreUpgrades
			app.SetStoreLoader(upgradetypes.UpgradeStoreLoader(plan.Height, &storeUpgrades))
		}
	}
	return nil
}
