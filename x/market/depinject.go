package market

import (
	"cosmossdk.io/core/address"
	"cosmossdk.io/core/appmodule"
	"cosmossdk.io/core/event"
	"cosmossdk.io/core/header"
	"cosmossdk.io/core/store"
	"cosmossdk.io/depinject"
	"cosmossdk.io/depinject/appconfig"

	"github.com/cosmos/cosmos-sdk/codec"
	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"

	"github.com/gpunet/gpunet/internal/wiring"
	auditkeeper "github.com/gpunet/gpunet/x/audit/keeper"
	escrowkeeper "github.com/gpunet/gpunet/x/escrow/keeper"
	"github.com/gpunet/gpunet/x/market/keeper"
	"github.com/gpunet/gpunet/x/market/types"
	modulev1 "github.com/gpunet/gpunet/x/market/types/module"
	providerkeeper "github.com/gpunet/gpunet/x/provider/keeper"
)

func init() {
	appconfig.RegisterModule(&modulev1.Module{}, appconfig.Provide(ProvideModule), appconfig.Invoke(ConnectModules))
}

// ModuleInputs are what x/market needs from the app.
type ModuleInputs struct {
	depinject.In

	Config         *modulev1.Module
	Cdc            codec.Codec
	AddressCodec   address.Codec
	StoreService   store.KVStoreService
	Transient      *storetypes.TransientStoreKey
	Events         event.Service
	Headers        header.Service
	BankKeeper     types.BankKeeper
	ProviderKeeper *providerkeeper.Keeper
	EscrowKeeper   *escrowkeeper.Keeper
	Pool           types.CommunityPool
	AccountKeeper  types.AccountKeeper
	AuditKeeper    *auditkeeper.Keeper
}

// ModuleOutputs are what x/market gives the app.
type ModuleOutputs struct {
	depinject.Out

	Keeper *keeper.Keeper
	Module appmodule.AppModule
}

// ProvideModule builds the keeper and module for depinject.
func ProvideModule(in ModuleInputs) (ModuleOutputs, error) {
	authority, err := wiring.Authority(in.AddressCodec, in.Config.Authority)
	if err != nil {
		return ModuleOutputs{}, err
	}
	k, err := keeper.NewKeeper(in.Cdc, in.AddressCodec, in.StoreService, in.Transient, in.Events, in.Headers, in.BankKeeper, in.ProviderKeeper, in.EscrowKeeper, in.Pool, in.AccountKeeper, in.AuditKeeper, authority)
	if err != nil {
		return ModuleOutputs{}, err
	}
	return ModuleOutputs{Keeper: k, Module: NewAppModule(in.Cdc, k)}, nil
}

// ConnectModules wires the two explicit hooks: x/escrow tells the market
// when an account runs dry, x/provider asks it whether a provider is busy.
func ConnectModules(market *keeper.Keeper, escrow *escrowkeeper.Keeper, provider *providerkeeper.Keeper) {
	escrow.SetHooks(market.Hooks())
	provider.SetMarketKeeper(market)
}
