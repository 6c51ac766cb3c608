package app

import (
	runtimev1alpha1 "cosmossdk.io/api/cosmos/app/runtime/v1alpha1"
	appv1alpha1 "cosmossdk.io/api/cosmos/app/v1alpha1"
	authmodulev1 "cosmossdk.io/api/cosmos/auth/module/v1"
	authzmodulev1 "cosmossdk.io/api/cosmos/authz/module/v1"
	bankmodulev1 "cosmossdk.io/api/cosmos/bank/module/v1"
	consensusmodulev1 "cosmossdk.io/api/cosmos/consensus/module/v1"
	distrmodulev1 "cosmossdk.io/api/cosmos/distribution/module/v1"
	evidencemodulev1 "cosmossdk.io/api/cosmos/evidence/module/v1"
	feegrantmodulev1 "cosmossdk.io/api/cosmos/feegrant/module/v1"
	genutilmodulev1 "cosmossdk.io/api/cosmos/genutil/module/v1"
	govmodulev1 "cosmossdk.io/api/cosmos/gov/module/v1"
	mintmodulev1 "cosmossdk.io/api/cosmos/mint/module/v1"
	slashingmodulev1 "cosmossdk.io/api/cosmos/slashing/module/v1"
	stakingmodulev1 "cosmossdk.io/api/cosmos/staking/module/v1"
	txconfigv1 "cosmossdk.io/api/cosmos/tx/config/v1"
	upgrademodulev1 "cosmossdk.io/api/cosmos/upgrade/module/v1"
	"cosmossdk.io/core/appconfig"
	"cosmossdk.io/depinject"

	"github.com/cosmos/cosmos-sdk/types/module"
	_ "github.com/cosmos/cosmos-sdk/x/auth"           // registers auth with depinject
	_ "github.com/cosmos/cosmos-sdk/x/auth/tx/config" // registers the tx config module
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	"github.com/cosmos/cosmos-sdk/x/authz"
	_ "github.com/cosmos/cosmos-sdk/x/authz/module" // registers authz with depinject
	_ "github.com/cosmos/cosmos-sdk/x/bank"         // registers bank with depinject
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
	_ "github.com/cosmos/cosmos-sdk/x/consensus" // registers consensus with depinject
	consensustypes "github.com/cosmos/cosmos-sdk/x/consensus/types"
	_ "github.com/cosmos/cosmos-sdk/x/distribution" // registers distribution with depinject
	distrtypes "github.com/cosmos/cosmos-sdk/x/distribution/types"
	_ "github.com/cosmos/cosmos-sdk/x/evidence" // registers evidence with depinject
	evidencetypes "github.com/cosmos/cosmos-sdk/x/evidence/types"
	"github.com/cosmos/cosmos-sdk/x/feegrant"
	_ "github.com/cosmos/cosmos-sdk/x/feegrant/module" // registers feegrant with depinject
	"github.com/cosmos/cosmos-sdk/x/genutil"
	genutiltypes "github.com/cosmos/cosmos-sdk/x/genutil/types"
	"github.com/cosmos/cosmos-sdk/x/gov"
	govclient "github.com/cosmos/cosmos-sdk/x/gov/client"
	govtypes "github.com/cosmos/cosmos-sdk/x/gov/types"
	_ "github.com/cosmos/cosmos-sdk/x/mint" // registers mint with depinject
	minttypes "github.com/cosmos/cosmos-sdk/x/mint/types"
	_ "github.com/cosmos/cosmos-sdk/x/slashing" // registers slashing with depinject
	slashingtypes "github.com/cosmos/cosmos-sdk/x/slashing/types"
	_ "github.com/cosmos/cosmos-sdk/x/staking" // registers staking with depinject
	stakingtypes "github.com/cosmos/cosmos-sdk/x/staking/types"
	_ "github.com/cosmos/cosmos-sdk/x/upgrade" // registers upgrade with depinject
	upgradetypes "github.com/cosmos/cosmos-sdk/x/upgrade/types"

	"github.com/cosmos/cosmos-sdk/runtime"

	audittypes "github.com/gpunet/gpunet/x/audit/types"
	auditmodulev1 "github.com/gpunet/gpunet/x/audit/types/module"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	escrowmodulev1 "github.com/gpunet/gpunet/x/escrow/types/module"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	marketmodulev1 "github.com/gpunet/gpunet/x/market/types/module"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
	providermodulev1 "github.com/gpunet/gpunet/x/provider/types/module"

	_ "github.com/gpunet/gpunet/x/audit"    // registers x/audit with depinject
	_ "github.com/gpunet/gpunet/x/escrow"   // registers x/escrow with depinject
	_ "github.com/gpunet/gpunet/x/market"   // registers x/market with depinject
	_ "github.com/gpunet/gpunet/x/provider" // registers x/provider with depinject
)

// moduleAccountPerms lists every module account and what it may do with coins.
var moduleAccountPerms = []*authmodulev1.ModuleAccountPermission{
	{Account: authtypes.FeeCollectorName},
	{Account: distrtypes.ModuleName},
	{Account: minttypes.ModuleName, Permissions: []string{authtypes.Minter}},
	{Account: stakingtypes.BondedPoolName, Permissions: []string{authtypes.Burner, stakingtypes.ModuleName}},
	{Account: stakingtypes.NotBondedPoolName, Permissions: []string{authtypes.Burner, stakingtypes.ModuleName}},
	{Account: govtypes.ModuleName, Permissions: []string{authtypes.Burner}},
	{Account: providertypes.ModuleName}, // holds provider bonds
	{Account: escrowtypes.ModuleName},   // holds deployment deposits
	{Account: markettypes.ModuleName},   // holds bid deposits
}

// blockedModuleAccounts may not receive coins from users. The gov account is
// left open so that deposits can be sent to it.
var blockedModuleAccounts = []string{
	authtypes.FeeCollectorName,
	distrtypes.ModuleName,
	minttypes.ModuleName,
	stakingtypes.BondedPoolName,
	stakingtypes.NotBondedPoolName,
	providertypes.ModuleName,
	escrowtypes.ModuleName,
	markettypes.ModuleName,
}

// AppConfig is the declarative module configuration of gpunet.
func AppConfig() depinject.Config {
	return depinject.Configs(
		appconfig.Compose(&appv1alpha1.Config{Modules: moduleConfigs()}),
		depinject.Supply(
			// Module basics that need arguments depinject cannot provide.
			map[string]module.AppModuleBasic{
				genutiltypes.ModuleName: genutil.NewAppModuleBasic(genutiltypes.DefaultMessageValidator),
				govtypes.ModuleName:     gov.NewAppModuleBasic([]govclient.ProposalHandler{}),
			},
		),
	)
}

func moduleConfigs() []*appv1alpha1.ModuleConfig {
	return []*appv1alpha1.ModuleConfig{
		{
			Name: runtime.ModuleName,
			Config: appconfig.WrapAny(&runtimev1alpha1.Module{
				AppName: Name,
				// upgrade must run first so a scheduled upgrade halts before
				// anything else executes in the upgrade block.
				PreBlockers: []string{upgradetypes.ModuleName, authtypes.ModuleName},
				// distribution before slashing so the fee pool is empty when
				// slashing runs; staking after them for historical info.
				BeginBlockers: []string{
					minttypes.ModuleName,
					distrtypes.ModuleName,
					slashingtypes.ModuleName,
					evidencetypes.ModuleName,
					stakingtypes.ModuleName,
					authz.ModuleName,
				},
				// bank first: required from SDK v0.54 on.
				EndBlockers: []string{
					banktypes.ModuleName,
					govtypes.ModuleName,
					stakingtypes.ModuleName,
					feegrant.ModuleName,
					providertypes.ModuleName,
					markettypes.ModuleName, // auctions and start deadlines before escrow depletion
					escrowtypes.ModuleName,
				},
				OverrideStoreKeys: []*runtimev1alpha1.StoreKeyConfig{
					{ModuleName: authtypes.ModuleName, KvStoreKey: "acc"},
				},
				// genutil after staking (pools funded from genesis accounts)
				// and after auth (it reads auth params).
				InitGenesis: []string{
					authtypes.ModuleName,
					banktypes.ModuleName,
					distrtypes.ModuleName,
					stakingtypes.ModuleName,
					slashingtypes.ModuleName,
					govtypes.ModuleName,
					minttypes.ModuleName,
					genutiltypes.ModuleName,
					evidencetypes.ModuleName,
					authz.ModuleName,
					feegrant.ModuleName,
					upgradetypes.ModuleName,
					consensustypes.ModuleName,
					providertypes.ModuleName,
					audittypes.ModuleName,
					escrowtypes.ModuleName,
					markettypes.ModuleName,
				},
			}),
		},
		{
			Name: authtypes.ModuleName,
			Config: appconfig.WrapAny(&authmodulev1.Module{
				Bech32Prefix:             AccountAddressPrefix,
				ModuleAccountPermissions: moduleAccountPerms,
			}),
		},
		{
			Name:   banktypes.ModuleName,
			Config: appconfig.WrapAny(&bankmodulev1.Module{BlockedModuleAccountsOverride: blockedModuleAccounts}),
		},
		{
			Name: stakingtypes.ModuleName,
			Config: appconfig.WrapAny(&stakingmodulev1.Module{
				Bech32PrefixValidator: ValidatorAddressPrefix,
				Bech32PrefixConsensus: ConsensusAddressPrefix,
			}),
		},
		{Name: slashingtypes.ModuleName, Config: appconfig.WrapAny(&slashingmodulev1.Module{})},
		// The ante chain is built in app.New (see ante.go).
		{Name: "tx", Config: appconfig.WrapAny(&txconfigv1.Config{SkipAnteHandler: true})},
		{Name: genutiltypes.ModuleName, Config: appconfig.WrapAny(&genutilmodulev1.Module{})},
		{Name: authz.ModuleName, Config: appconfig.WrapAny(&authzmodulev1.Module{})},
		{Name: upgradetypes.ModuleName, Config: appconfig.WrapAny(&upgrademodulev1.Module{})},
		{Name: distrtypes.ModuleName, Config: appconfig.WrapAny(&distrmodulev1.Module{})},
		{Name: evidencetypes.ModuleName, Config: appconfig.WrapAny(&evidencemodulev1.Module{})},
		{
			Name:   minttypes.ModuleName,
			Config: appconfig.WrapAny(&mintmodulev1.Module{}),
			GolangBindings: []*appv1alpha1.GolangBinding{{
				InterfaceType:  "github.com/cosmos/cosmos-sdk/x/mint/types/types.StakingKeeper",
				Implementation: "github.com/cosmos/cosmos-sdk/x/staking/keeper/*keeper.Keeper",
			}},
		},
		{Name: feegrant.ModuleName, Config: appconfig.WrapAny(&feegrantmodulev1.Module{})},
		{Name: govtypes.ModuleName, Config: appconfig.WrapAny(&govmodulev1.Module{})},
		{Name: consensustypes.ModuleName, Config: appconfig.WrapAny(&consensusmodulev1.Module{})},
		{Name: providertypes.ModuleName, Config: appconfig.WrapAny(&providermodulev1.Module{})},
		{Name: audittypes.ModuleName, Config: appconfig.WrapAny(&auditmodulev1.Module{})},
		{Name: escrowtypes.ModuleName, Config: appconfig.WrapAny(&escrowmodulev1.Module{})},
		{Name: markettypes.ModuleName, Config: appconfig.WrapAny(&marketmodulev1.Module{})},
	}
}
